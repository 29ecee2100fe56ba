using System.Text.Json;
using CnmSharp.Drivers.Overlay;
using CnmSharp.Store.Etcd;
using CnmSharp.TestHost;
using CnmSharp.Testing;

namespace CnmSharp.IntegrationTests.Core;

/// <summary>
/// The overlay part of the kill harness (docs/reliability.md, "Kill harness"): the scenarios that
/// <see cref="FaultScenario.NeedsGlobalStore"/> run on an etcd the test starts (one member on loopback, killed by PID and
/// its directory removed at the end), each under its own key prefix, with the host namespace's underlay address
/// <see cref="UnderlayAddress"/> (on the dummy link <see cref="UnderlayLink"/>) as the advertise address. After each kill
/// the check also covers the overlay's own state: the global store's keys (against the baseline, and each owned by a
/// network, endpoint or join the controller has), the overlay network namespaces and their bind mounts, the bridges,
/// VXLAN devices and veths in them, and their FDB and neighbour entries (no remote peer exists, so none may be left).
/// </summary>
public sealed partial class FaultPointKillTests
{
    /// <summary>The host namespace's underlay link (one end of a veth pair: this kernel has no dummy kind) and its
    /// address, the overlay's VTEP.</summary>
    private const string UnderlayLink = "fkul0";

    private const string UnderlayAddress = "192.168.79.1";

    /// <summary>The overlay driver's records in the local store.</summary>
    private const string OverlayLocalPrefix = "cnm/v1/driver/overlay/";

    /// <summary>The overlay driver's keys in the global store.</summary>
    private const string OverlayGlobalPrefix = "cnm/v1/driver/overlay/";

    /// <summary>The context of a scenario's controllers: the global one for the scenarios that need it, else none.</summary>
    private static FaultScenarioContext? Global(FaultScenario scenario, FaultScenarioContext context) => scenario.NeedsGlobalStore ? context : null;

    /// <summary>Makes the underlay link in the host namespace (part of every scenario's baseline).</summary>
    private static async Task AddUnderlayAsync(string hostNamespacePath)
    {
        await IpTool.RunAsync(hostNamespacePath, "link", "add", UnderlayLink, "type", "veth", "peer", "name", "fkul1");
        await IpTool.RunAsync(hostNamespacePath, "address", "add", UnderlayAddress + "/24", "dev", UnderlayLink);
        await IpTool.RunAsync(hostNamespacePath, "link", "set", UnderlayLink, "up");
    }

    /// <summary>The scenario's context: for a global-store scenario, the etcd endpoint, a fresh key prefix and the
    /// advertise address.</summary>
    private static FaultScenarioContext ContextFor(FaultScenario scenario, FaultScenarioContext context, EtcdCluster? etcd) =>
        scenario.NeedsGlobalStore && etcd is not null
            ? context with
            {
                EtcdEndpoint = etcd.Members[0].ClientUrl,
                EtcdKeyPrefix = "cnmfk-" + Guid.NewGuid().ToString("N")[..8] + "/",
                AdvertiseAddress = UnderlayAddress,
            }
            : context;

    /// <summary>Every key under the scenario's prefix in etcd (empty without a global store).</summary>
    private static async Task<HashSet<string>> GlobalKeysAsync(FaultScenarioContext? global) =>
        [.. (await GlobalEntriesAsync(global)).Select(e => e.Key)];

    private static async Task<IReadOnlyList<CnmSharp.Store.StoreEntry>> GlobalEntriesAsync(FaultScenarioContext? global)
    {
        if (global?.EtcdEndpoint is not { } endpoint)
        {
            return [];
        }

        var options = new EtcdStoreOptions { KeyPrefix = global.EtcdKeyPrefix ?? string.Empty, RequestTimeout = TimeSpan.FromSeconds(5) };
        options.Endpoints.Add(endpoint);
        await using var store = await EtcdKeyValueStore.ConnectAsync(options);
        return await store.ListAsync("cnm/");
    }

    /// <summary>The overlay namespace files under the run directory.</summary>
    private static HashSet<string> OverlayNamespaceFiles(string runDirectory)
    {
        var directory = Path.Combine(runDirectory, OverlayDriverFactory.NamespaceDirectory);
        return Directory.Exists(directory) ? Directory.GetFiles(directory).Select(Path.GetFileName).OfType<string>().ToHashSet(StringComparer.Ordinal) : [];
    }

    private static bool IsOverlayMount(string mount, string runDirectory) =>
        string.Equals(Path.GetDirectoryName(mount), Path.Combine(runDirectory, OverlayDriverFactory.NamespaceDirectory), StringComparison.Ordinal);

    /// <summary>Unmounts the overlay network namespaces a failed round left under the run directory (every file there was
    /// made by the test's controllers).</summary>
    private static async Task UnmountOverlayNamespacesAsync(string runDirectory)
    {
        var directory = Path.Combine(runDirectory, OverlayDriverFactory.NamespaceDirectory);
        if (Directory.Exists(directory))
        {
            var manager = new CnmSharp.Netlink.NetworkNamespaceManager(new CnmSharp.Netlink.NetworkNamespaceManagerOptions { RunDirectory = directory, MakeRunDirectoryShared = false });
            foreach (var file in Directory.GetFiles(directory))
            {
                await manager.DeleteAsync(Path.GetFileName(file));
            }
        }
    }

    /// <summary>
    /// The overlay's state after a restart: its namespaces (files and bind mounts) are exactly those of its network
    /// records, each holding exactly the bridge and VXLAN device of each subnet (the record's VNI, enslaved, the gateway on
    /// the bridge) and the host veth of each joined endpoint, with no remote FDB or neighbour entry (there is no other
    /// host); and the global store holds exactly what the controller's networks, endpoints and joins own (with nothing
    /// left: exactly the baseline's keys). Adds the global IPAM's allocations to <paramref name="allocations"/>.
    /// </summary>
    private static async Task CheckOverlayAsync(NetworkController controller, string runDirectory, CnmSharp.Store.IKeyValueStore local, KernelSnapshot baseline, KernelSnapshot now, FaultScenarioContext global, Dictionary<string, string?> allocations, List<string> leaks, List<string> duplicates)
    {
        var networks = controller.Networks.ToDictionary(n => n.Id, StringComparer.Ordinal);
        var joined = controller.Sandboxes.SelectMany(s => s.Endpoints).Select(e => e.Id).ToHashSet(StringComparer.Ordinal);
        var records = new List<JsonElement>();
        foreach (var entry in await local.ListAsync(OverlayLocalPrefix + "network/"))
        {
            using var json = JsonDocument.Parse(entry.Value);
            records.Add(json.RootElement.Clone());
        }

        var endpointRecords = new List<JsonElement>();
        foreach (var entry in await local.ListAsync(OverlayLocalPrefix + "endpoint/"))
        {
            using var json = JsonDocument.Parse(entry.Value);
            endpointRecords.Add(json.RootElement.Clone());
        }

        // Namespaces: files and bind mounts are exactly the records'.
        var named = records.ToDictionary(r => r.GetProperty("namespace").GetString()!, r => r.GetProperty("id").GetString()!, StringComparer.Ordinal);
        foreach (var file in now.OverlayNamespaces.Where(f => !named.ContainsKey(f)))
        {
            leaks.Add($"overlay namespace {file} that no overlay network record names");
        }

        foreach (var (name, id) in named.Where(n => !now.OverlayNamespaces.Contains(n.Key)))
        {
            leaks.Add($"overlay namespace {name} of network {id[..12]} is missing");
        }

        foreach (var mount in now.Mounts.Where(m => IsOverlayMount(m, runDirectory) && !now.OverlayNamespaces.Contains(Path.GetFileName(m))))
        {
            leaks.Add($"bind mount {mount} of no overlay namespace file");
        }

        // Each namespace: lo, each subnet's bridge and VXLAN device, the host veth of each joined endpoint; nothing else.
        foreach (var record in records)
        {
            var id = record.GetProperty("id").GetString()!;
            if (!now.OverlayNamespaces.Contains(record.GetProperty("namespace").GetString()!))
            {
                continue;
            }

            var path = OverlayDriverFactory.NetworkNamespacePath(runDirectory, id);
            var links = (await IpTool.JsonAsync(path, "address", "show")).EnumerateArray().ToDictionary(l => l.GetProperty("ifname").GetString()!, l => l.Clone(), StringComparer.Ordinal);
            var wanted = new Dictionary<string, string>(StringComparer.Ordinal) { ["lo"] = "loopback" };
            foreach (var subnet in record.GetProperty("subnets").EnumerateArray())
            {
                var bridge = subnet.GetProperty("bridge").GetString()!;
                var vxlan = subnet.GetProperty("vxlan").GetString()!;
                wanted[bridge] = "bridge of subnet " + subnet.GetProperty("subnet").GetString();
                wanted[vxlan] = "VXLAN device of subnet " + subnet.GetProperty("subnet").GetString();
                if (links.TryGetValue(vxlan, out var device))
                {
                    var info = device.GetProperty("linkinfo").GetProperty("info_data");
                    if (info.GetProperty("id").GetUInt32() != subnet.GetProperty("vni").GetUInt32())
                    {
                        leaks.Add($"overlay {id[..12]}: {vxlan} has VNI {info.GetProperty("id")}, the record says {subnet.GetProperty("vni")}");
                    }

                    if (!device.TryGetProperty("master", out var master) || master.GetString() != bridge)
                    {
                        leaks.Add($"overlay {id[..12]}: {vxlan} is not enslaved to {bridge}");
                    }

                    // No other host exists: no remote FDB entry and no proxy neighbour may be programmed.
                    var fdb = await IpTool.ExecAsync("nsenter", $"--net={path}", "bridge", "-json", "fdb", "show", "dev", vxlan);
                    foreach (var entry in JsonDocument.Parse(string.IsNullOrWhiteSpace(fdb.StandardOutput) ? "[]" : fdb.StandardOutput).RootElement.EnumerateArray().Where(e => e.TryGetProperty("dst", out _)))
                    {
                        leaks.Add($"overlay {id[..12]}: FDB entry {entry.GetProperty("mac")} -> {entry.GetProperty("dst")} on {vxlan} with no peer");
                    }

                    foreach (var neighbour in (await IpTool.JsonAsync(path, "neigh", "show", "dev", vxlan)).EnumerateArray())
                    {
                        leaks.Add($"overlay {id[..12]}: neighbour {neighbour.GetProperty("dst")} on {vxlan} with no peer");
                    }
                }

                if (subnet.TryGetProperty("gateway", out var gateway) && links.TryGetValue(bridge, out var bridgeLink))
                {
                    var address = gateway.GetString()!.Split('/')[0];
                    if (!bridgeLink.GetProperty("addr_info").EnumerateArray().Any(a => a.GetProperty("local").GetString() == address))
                    {
                        leaks.Add($"overlay {id[..12]}: {bridge} lacks its gateway {address}");
                    }
                }
            }

            foreach (var endpoint in endpointRecords.Where(e => e.GetProperty("networkId").GetString() == id && joined.Contains(e.GetProperty("id").GetString()!)))
            {
                wanted[endpoint.GetProperty("hostVeth").GetString()!] = "host veth of joined endpoint " + endpoint.GetProperty("id").GetString();
            }

            foreach (var link in links.Keys.Where(l => !wanted.ContainsKey(l)))
            {
                leaks.Add($"overlay {id[..12]}: link {link} in the network's namespace that nothing owns");
            }

            foreach (var (link, why) in wanted.Where(w => !links.ContainsKey(w.Key)))
            {
                leaks.Add($"overlay {id[..12]}: link {link} is missing ({why})");
            }
        }

        // The global store: with nothing left, exactly the baseline's keys; else each key owned by what the controller has.
        var entries = await GlobalEntriesAsync(global);
        if (networks.Count == 0 && controller.Sandboxes.Count == 0)
        {
            foreach (var key in entries.Select(e => e.Key).Except(baseline.GlobalKeys))
            {
                leaks.Add($"global store key {key} left with no network and no sandbox");
            }
        }

        foreach (var key in baseline.GlobalKeys.Except(entries.Select(e => e.Key)))
        {
            leaks.Add($"global store key {key} of the baseline is gone");
        }

        var globalNetworks = controller.Networks.Where(n => string.Equals(n.Driver, "overlay", StringComparison.Ordinal)).ToList();
        var endpoints = globalNetworks.SelectMany(n => n.Endpoints).ToDictionary(e => e.Id, StringComparer.Ordinal);
        var keys = entries.Select(e => e.Key).ToHashSet(StringComparer.Ordinal);
        foreach (var entry in entries)
        {
            var key = entry.Key;
            var parts = key.Split('/');
            if (key.StartsWith("cnm/v1/network/", StringComparison.Ordinal) && !networks.ContainsKey(parts[3]))
            {
                leaks.Add($"global store key {key}: a network the controller does not have");
            }
            else if (key.StartsWith("cnm/v1/endpoint/", StringComparison.Ordinal) && !endpoints.ContainsKey(parts[4]))
            {
                leaks.Add($"global store key {key}: an endpoint the controller does not have");
            }
            else if (key.StartsWith(OverlayGlobalPrefix + "vni/", StringComparison.Ordinal))
            {
                using var json = JsonDocument.Parse(entry.Value);
                if (!networks.ContainsKey(json.RootElement.GetProperty("networkId").GetString()!))
                {
                    leaks.Add($"global store key {key}: a VNI claimed for a network the controller does not have");
                }
            }
            else if ((key.StartsWith(OverlayGlobalPrefix + "network/", StringComparison.Ordinal) || key.StartsWith(OverlayGlobalPrefix + "node/", StringComparison.Ordinal)) && !networks.ContainsKey(parts[5]))
            {
                leaks.Add($"global store key {key}: overlay state of a network the controller does not have");
            }
            else if (key.StartsWith(OverlayGlobalPrefix + "peer/", StringComparison.Ordinal) && !joined.Contains(parts[7]))
            {
                leaks.Add($"global store key {key}: a peer record of an endpoint that is not joined");
            }
            else if (key.StartsWith("cnm/v1/ipam/default/addr/", StringComparison.Ordinal))
            {
                using var json = JsonDocument.Parse(entry.Value);
                var address = key[(key.LastIndexOf('/') + 1)..];
                var owner = json.RootElement.TryGetProperty("owner", out var o) ? o.GetString() : null;
                if (!allocations.TryAdd(address, owner))
                {
                    duplicates.Add($"address {address} allocated twice (local and global IPAM)");
                }

                var ownedByNetwork = owner is not null && owner.StartsWith("network:", StringComparison.Ordinal) && networks.ContainsKey(owner["network:".Length..]);
                if (!ownedByNetwork && (owner is null || !endpoints.TryGetValue(owner, out var holder) || holder.Address?.Address.ToString() != address))
                {
                    leaks.Add($"global IPAM allocation {address} owned by {owner ?? "nobody"}, which does not hold it");
                }
            }
        }

        // And the other way: what the controller has is published.
        foreach (var network in globalNetworks)
        {
            foreach (var key in new[] { "cnm/v1/network/" + network.Id, OverlayGlobalPrefix + "network/" + network.Id, OverlayGlobalPrefix + "node/" + network.Id + "/" + FaultScenarios.OverlayNodeName }.Where(k => !keys.Contains(k)))
            {
                leaks.Add($"global store key {key} of network {network.Name} is missing");
            }

            foreach (var endpoint in network.Endpoints)
            {
                if (!keys.Contains($"cnm/v1/endpoint/{network.Id}/{endpoint.Id}"))
                {
                    leaks.Add($"global endpoint record of {endpoint.Name} is missing");
                }

                if (joined.Contains(endpoint.Id) && !keys.Contains($"{OverlayGlobalPrefix}peer/{network.Id}/{FaultScenarios.OverlayNodeName}/{endpoint.Id}"))
                {
                    leaks.Add($"peer record of joined endpoint {endpoint.Name} is missing");
                }
            }
        }
    }
}
