using System.Text.Json.Nodes;
using CnmSharp.Diagnostics;
using CnmSharp.Drivers.Bridge;
using CnmSharp.Firewall;
using CnmSharp.Netlink;
using CnmSharp.Store;
using CnmSharp.Testing;

namespace CnmSharp.IntegrationTests.Core;

/// <summary>
/// <see cref="NetworkController.CheckAsync"/> against the kernel, for each firewall backend: leaks made on purpose in a
/// private host namespace (a veth on the network's bridge, a firewall rule in CnmSharp's chain or table, an orphan
/// namespace bind-mounted in the run directory, a duplicated endpoint record in the store) are each reported,
/// <see cref="CheckOptions.Repair"/> removes each, and a second check is clean.
/// </summary>
[RequiresRoot]
[NonParallelizable]
[TestFixture(FirewallBackendChoice.Iptables)]
[TestFixture(FirewallBackendChoice.Nftables)]
public sealed class CheckerIntegrationTests(FirewallBackendChoice firewall)
{
    [Test]
    public async Task Leaks_made_on_purpose_are_reported_repaired_and_gone()
    {
        await using var host = await TestHostNamespace.CreateAsync();
        var temp = Directory.CreateTempSubdirectory("cnmcheck-").FullName;
        var run = Path.Combine(temp, "run");
        await using var store = new InMemoryKeyValueStore();
        var leakNamespaces = new NetworkNamespaceManager(new NetworkNamespaceManagerOptions { RunDirectory = Path.Combine(run, "netns"), MakeRunDirectoryShared = false });
        NetworkController? controller = null;
        try
        {
            (controller, var network, var sandbox, var endpoint) = await StartAsync(host.Path, temp, store, "10.96.7.0/24");
            var clean = await controller.CheckAsync();
            Assert.That(clean.Findings, Is.Empty, "before the leaks:\n" + string.Join("\n", clean.Findings));

            // The leaks.
            var bridge = (await IpTool.JsonAsync(host.Path, "link", "show", "type", "bridge")).EnumerateArray().Single().GetProperty("ifname").GetString()!;
            await IpTool.RunAsync(host.Path, "link", "add", "ckleak0", "type", "veth", "peer", "name", "ckleak1");
            await IpTool.RunAsync(host.Path, "link", "set", "ckleak0", "master", bridge);
            await IpTool.RunAsync(host.Path, "link", "add", "ckmine0", "type", "veth", "peer", "name", "ckmine1");
            await AddRuleAsync(host.Path);
            await leakNamespaces.CreateAsync("ckleakns");
            var leakPath = Path.Combine(run, "netns", "ckleakns");
            var copyId = await CopyEndpointRecordAsync(store, network.Id, endpoint.Id);

            var report = await controller.CheckAsync();
            var text = string.Join("\n", report.Findings);
            Assert.That(report.Findings.Select(f => f.Kind).Order(), Is.EqualTo(new[]
            {
                InvariantKinds.DuplicateAddress, InvariantKinds.LeakedFirewallRule, InvariantKinds.LeakedLink, InvariantKinds.LeakedNamespace,
            }.Order()), text);
            Assert.That(report.Findings.Single(f => f.Kind == InvariantKinds.LeakedLink).Subject, Does.Contain("ckleak0"), text);
            Assert.That(report.Findings.Single(f => f.Kind == InvariantKinds.LeakedFirewallRule).Subject, Does.Contain(firewall == FirewallBackendChoice.Iptables ? "ckleak9" : "handle"), text);
            Assert.That(report.Findings.Single(f => f.Kind == InvariantKinds.LeakedNamespace).Subject, Does.Contain(leakPath), text);
            Assert.That(report.Findings.Single(f => f.Kind == InvariantKinds.DuplicateAddress).Subject, Does.Contain(copyId[..12]), text);
            Assert.That(report.Findings.Any(f => f.Repaired), Is.False);

            var repaired = await controller.CheckAsync(new CheckOptions { Repair = true });
            Assert.That(repaired.Findings, Has.Count.EqualTo(4), string.Join("\n", repaired.Findings));
            Assert.That(repaired.AllRepaired, Is.True, string.Join("\n", repaired.Findings));
            Assert.That(await IpTool.LinkAsync(host.Path, "ckleak0"), Is.Null);
            Assert.That(await IpTool.LinkAsync(host.Path, "ckmine0"), Is.Not.Null, "a veth on no bridge of ours is not proven ours and stays");
            Assert.That(File.Exists(leakPath), Is.False);
            Assert.That(await RulesetAsync(host.Path), Does.Not.Contain("ckleak9"));
            Assert.That(await IpTool.LinkAsync(host.Path, bridge), Is.Not.Null);

            var after = await controller.CheckAsync();
            Assert.That(after.Findings, Is.Empty, string.Join("\n", after.Findings));

            await sandbox.DeleteAsync();
            await controller.WaitForTeardownsAsync();
            await network.DeleteAsync();
        }
        finally
        {
            if (controller is not null)
            {
                await controller.DisposeAsync();
            }

            if (File.Exists(Path.Combine(run, "netns", "ckleakns")))
            {
                await leakNamespaces.DeleteAsync("ckleakns");
            }

            await CnmSharp.IntegrationTests.Core.StopInvariants.UnmountSandboxesAsync(run);
            Directory.Delete(temp, recursive: true);
        }
    }

    /// <summary>
    /// The driver's records out of step with the kernel and the core: the network's bridge deleted behind CnmSharp's
    /// back (repair creates it again from the driver's record, with its gateway address, the joined endpoint's veth
    /// enslaved again and the rules reconciled), a bridge driver network record the core has no network for, naming a
    /// bridge as made by the driver (repair deletes the record and that bridge, nothing else), and a core endpoint whose
    /// driver record is gone (missing-driver-record: reported, never repaired).
    /// </summary>
    [Test]
    public async Task A_missing_bridge_and_driver_records_out_of_step_are_reported_and_repaired_where_safe()
    {
        await using var host = await TestHostNamespace.CreateAsync();
        var temp = Directory.CreateTempSubdirectory("cnmcheck-").FullName;
        var run = Path.Combine(temp, "run");
        await using var store = new InMemoryKeyValueStore();
        NetworkController? controller = null;
        try
        {
            (controller, var network, var sandbox, _) = await StartAsync(host.Path, temp, store, "10.96.8.0/24");
            var unjoined = await network.CreateEndpointAsync("e2");
            Assert.That((await controller.CheckAsync()).Findings, Is.Empty);

            // The faults.
            var bridge = "br-" + network.Id[..12];
            Assert.That(await IpTool.LinkAsync(host.Path, bridge), Is.Not.Null);
            var hostVeth = (await IpTool.JsonAsync(host.Path, "link", "show", "master", bridge, "type", "veth")).EnumerateArray().Single().GetProperty("ifname").GetString()!;
            await IpTool.RunAsync(host.Path, "link", "del", bridge);
            var orphanId = await PlantOrphanNetworkRecordAsync(store, network.Id, "ckorph0");
            await IpTool.RunAsync(host.Path, "link", "add", "ckorph0", "type", "bridge");
            await IpTool.RunAsync(host.Path, "link", "add", "ckother0", "type", "bridge");
            Assert.That(await store.DeleteAsync($"cnm/v1/driver/bridge/endpoint/{network.Id}/{unjoined.Id}", StoreVersion.Any), Is.True);

            var report = await controller.CheckAsync();
            var text = string.Join("\n", report.Findings);
            Assert.That(report.Findings.Select(f => f.Kind).Order(), Is.EqualTo(new[]
            {
                InvariantKinds.MissingDriverRecord, InvariantKinds.MissingLink, InvariantKinds.OrphanDriverRecord,
            }.Order()), text);
            Assert.That(report.Findings.Single(f => f.Kind == InvariantKinds.MissingLink).Subject, Does.Contain(bridge), text);
            Assert.That(report.Findings.Single(f => f.Kind == InvariantKinds.OrphanDriverRecord).Subject, Does.Contain(orphanId[..12]), text);
            Assert.That(report.Findings.Single(f => f.Kind == InvariantKinds.MissingDriverRecord).Subject, Does.Contain(unjoined.Id[..12]), text);

            var repaired = await controller.CheckAsync(new CheckOptions { Repair = true });
            text = string.Join("\n", repaired.Findings);
            Assert.That(repaired.Findings, Has.Count.EqualTo(3), text);
            Assert.That(repaired.Findings.Where(f => f.Kind != InvariantKinds.MissingDriverRecord).All(f => f.Repaired), Is.True, text);
            Assert.That(repaired.Findings.Single(f => f.Kind == InvariantKinds.MissingDriverRecord).Repaired, Is.False, "reported only: " + text);

            // The bridge is back, with its gateway, the joined endpoint's veth on it, and the rules for it.
            var recreated = await IpTool.LinkAsync(host.Path, bridge);
            Assert.That(recreated, Is.Not.Null);
            Assert.That(IpTool.HasFlag(recreated!.Value, "UP"), Is.True);
            var addresses = await IpTool.RunAsync(host.Path, "-4", "-o", "address", "show", "dev", bridge);
            Assert.That(addresses, Does.Contain("10.96.8.1/24"));
            Assert.That((await IpTool.LinkAsync(host.Path, hostVeth))!.Value.GetProperty("master").GetString(), Is.EqualTo(bridge));
            Assert.That(await RulesetAsync(host.Path), Does.Contain(bridge));

            // The orphan record and the bridge it proves the driver made are gone; another bridge stays.
            Assert.That(await store.GetAsync($"cnm/v1/driver/bridge/network/{orphanId}"), Is.Null);
            Assert.That(await IpTool.LinkAsync(host.Path, "ckorph0"), Is.Null);
            Assert.That(await IpTool.LinkAsync(host.Path, "ckother0"), Is.Not.Null);

            // The endpoint the driver has no record of: what the finding says to do, then clean.
            await unjoined.DeleteAsync();
            var after = await controller.CheckAsync();
            Assert.That(after.Findings, Is.Empty, string.Join("\n", after.Findings));

            await sandbox.DeleteAsync();
            await controller.WaitForTeardownsAsync();
            await network.DeleteAsync();
        }
        finally
        {
            if (controller is not null)
            {
                await controller.DisposeAsync();
            }

            await CnmSharp.IntegrationTests.Core.StopInvariants.UnmountSandboxesAsync(run);
            Directory.Delete(temp, recursive: true);
        }
    }

    /// <summary>A controller on the host namespace with the bridge driver and the test's firewall backend, state under
    /// <paramref name="temp"/>, with network <c>n</c> on <paramref name="subnet"/> and endpoint <c>e1</c> joined to
    /// sandbox <c>c1</c>. A failure after the build disposes the controller.</summary>
    private async Task<(NetworkController Controller, Network Network, Sandbox Sandbox, Endpoint Endpoint)> StartAsync(string hostPath, string temp, IKeyValueStore store, string subnet)
    {
        var controller = await new NetworkControllerBuilder(new CnmOptions
            {
                HostNamespacePath = hostPath,
                RunDirectory = Path.Combine(temp, "run"),
                StateDirectory = Path.Combine(temp, "state"),
                CreateDefaultNetworks = false,
                Firewall = firewall,
            })
            .AddDriver(new BridgeDriverFactory())
            .UseStore(store)
            .BuildAsync();
        try
        {
            var network = await controller.CreateNetworkAsync("n", "bridge", new NetworkCreateOptions { IPv4Config = [new IpamConfig { Subnet = subnet }] });
            var sandbox = await controller.CreateSandboxAsync("c1");
            var endpoint = await network.CreateEndpointAsync("e1");
            await endpoint.JoinAsync(sandbox);
            return (controller, network, sandbox, endpoint);
        }
        catch
        {
            await controller.DisposeAsync();
            throw;
        }
    }

    /// <summary>A copy of the bridge driver's record of a network under a new id, naming another bridge (made by the
    /// driver, not adopted) and another subnet: a driver network record the core has no network for.</summary>
    private static async Task<string> PlantOrphanNetworkRecordAsync(IKeyValueStore store, string networkId, string bridgeName)
    {
        var entry = (await store.GetAsync($"cnm/v1/driver/bridge/network/{networkId}"))!;
        var node = JsonNode.Parse(entry.Value.Span)!.AsObject();
        var id = Convert.ToHexStringLower(Guid.NewGuid().ToByteArray()) + Convert.ToHexStringLower(Guid.NewGuid().ToByteArray());
        string Key(string name) => node.Select(p => p.Key).Single(k => string.Equals(k, name, StringComparison.OrdinalIgnoreCase));
        node[Key("id")] = id;
        node[Key("name")] = "orphan";
        node[Key("bridgeName")] = bridgeName;
        node[Key("ipv4Subnet")] = "10.96.19.0/24";
        node[Key("ipv4Gateway")] = "10.96.19.1/24";
        node.Remove("adoptedBridge");
        await store.PutAsync($"cnm/v1/driver/bridge/network/{id}", System.Text.Encoding.UTF8.GetBytes(node.ToJsonString()), StoreVersion.Absent);
        return id;
    }

    private async Task AddRuleAsync(string hostPath)
    {
        if (firewall == FirewallBackendChoice.Iptables)
        {
            await RunAsync("nsenter", $"--net={hostPath}", "iptables", "-t", "nat", "-A", "DOCKER", "-i", "ckleak9", "-j", "RETURN");
            return;
        }

        // A rule in CnmSharp's table, tagged as the bridge driver tags its rules, that no record produces.
        var chains = await RunAsync("nsenter", $"--net={hostPath}", "nft", "list", "table", "ip", "cnmsharp");
        var chain = chains.Split('\n').Select(l => l.Trim()).First(l => l.StartsWith("chain ", StringComparison.Ordinal)).Split(' ')[1];
        await RunAsync("nsenter", $"--net={hostPath}", "nft", "add", "rule", "ip", "cnmsharp", chain, "iifname", "ckleak9", "counter", "comment", "\"bridge:leak-test\"");
    }

    private async Task<string> RulesetAsync(string hostPath) =>
        firewall == FirewallBackendChoice.Iptables
            ? await RunAsync("nsenter", $"--net={hostPath}", "iptables-save")
            : await RunAsync("nsenter", $"--net={hostPath}", "nft", "list", "ruleset");

    private static async Task<string> RunAsync(string file, params string[] args)
    {
        var result = await IpTool.ExecAsync(file, args);
        Assert.That(result.ExitCode, Is.Zero, $"{file} {string.Join(' ', args)}: {result.StandardError}");
        return result.StandardOutput;
    }

    /// <summary>A copy of an endpoint record under a new id and name, without its join: one address and MAC held by
    /// two records of the store.</summary>
    private static async Task<string> CopyEndpointRecordAsync(IKeyValueStore store, string networkId, string endpointId)
    {
        var entry = (await store.GetAsync($"cnm/v1/endpoint/{networkId}/{endpointId}"))!;
        var node = JsonNode.Parse(entry.Value.Span)!.AsObject();
        var id = Convert.ToHexStringLower(Guid.NewGuid().ToByteArray()) + Convert.ToHexStringLower(Guid.NewGuid().ToByteArray());
        node["id"] = id;
        node["name"] = "e1-copy";
        node.Remove("join");
        await store.PutAsync($"cnm/v1/endpoint/{networkId}/{id}", System.Text.Encoding.UTF8.GetBytes(node.ToJsonString()), StoreVersion.Absent);
        return id;
    }
}
