using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using CnmSharp.Diagnostics;
using CnmSharp.Drivers.Bridge;
using CnmSharp.Firewall;
using CnmSharp.Ipam.Default;
using CnmSharp.Plugins.Hosting;
using CnmSharp.Store;
using CnmSharp.TestHost;
using CnmSharp.Testing;

namespace CnmSharp.IntegrationTests.Core;

/// <summary>
/// The kill harness (issue 16, docs/reliability.md, "Kill harness"): for each scenario of <see cref="FaultScenarios"/>
/// a recording run of the child (CnmSharp.TestHost) lists the fault points the operation reaches, in order; then, for
/// each of them, a child runs the operation again from the same state and kills itself with SIGKILL exactly there, a new
/// controller starts in this process on the same store, run directory and host namespace (its start recovers), and
/// <see cref="CheckInvariantsAsync"/> checks it (its own kernel and store checks, then the public checker); the operation is then completed on the recovered controller (proving
/// the state usable), everything is removed, and the same check must find the kernel and the store exactly as before
/// the scenario. Prints <c>fault points: N exercised, L leaks, D duplicate addresses</c>.
/// </summary>
[RequiresRoot]
[NonParallelizable]
public sealed partial class FaultPointKillTests
{
    private const string MacvlanParent = "fkp0";
    private static readonly TimeSpan ChildTimeout = TimeSpan.FromSeconds(60);

    [Test]
    public async Task A_controller_killed_at_every_fault_point_of_every_scenario_recovers_without_leaks_or_duplicate_addresses()
    {
        // Not while the stress test (Cli.Tests, run in parallel by CI) counts its operations.
        using var heavy = await HeavyTestLock.AcquireAsync(TimeSpan.FromMinutes(5));
        var testHost = HelperProgram.Locate(typeof(FaultPointKillTests).Assembly, "CnmSharp.TestHost");
        await using var host = await TestHostNamespace.CreateAsync();
        await IpTool.RunAsync(host.Path, "link", "add", MacvlanParent, "type", "veth", "peer", "name", "fkp1");
        await IpTool.RunAsync(host.Path, "link", "set", MacvlanParent, "up");
        var sharedContext = new FaultScenarioContext(MacvlanParent);
        var only = Environment.GetEnvironmentVariable("CNM_FAULT_SCENARIO");
        var exercised = 0;
        var leaks = new List<string>();
        var duplicates = new List<string>();
        var reached = new SortedSet<string>(StringComparer.Ordinal);
        var clock = Stopwatch.StartNew();
        var inChildren = TimeSpan.Zero;
        var inRecovery = TimeSpan.Zero;
        var inChecks = TimeSpan.Zero;
        var scenarios = FaultScenarios.All.Where(s => string.IsNullOrEmpty(only) || s.Name.Contains(only, StringComparison.Ordinal)).ToList();

        // The overlay scenarios' etcd (one member on loopback, killed by PID and its directory removed at the end) and
        // the host namespace's underlay address (FaultPointKillTests.Overlay.cs).
        await AddUnderlayAsync(host.Path);
        await using var etcd = scenarios.Any(s => s.NeedsGlobalStore) ? await EtcdCluster.StartAsync() : null;
        foreach (var scenario in scenarios)
        {
            var started = clock.Elapsed;
            var context = ContextFor(scenario, sharedContext, etcd);
            var global = Global(scenario, context);
            var temp = Directory.CreateTempSubdirectory("cnmfault-").FullName;
            var state = Path.Combine(temp, "state");
            var run = Path.Combine(temp, "run");
            PluginServer? plugin = null;
            try
            {
                // A remote scenario's plugin runs in this process, for the whole scenario: it outlives the killed children.
                if (scenario.Firewall == FirewallBackendChoice.None)
                {
                    plugin = await StartPluginAsync(temp, host.Path);
                }

                // The recording run, then the clean state it leaves once everything is removed: the baseline.
                var (recordOutput, recordExit, recordError) = await RunChildAsync(testHost, scenario, context, state, run, host.Path, "record");
                Assert.That(recordOutput.LastOrDefault(), Is.EqualTo("done"), $"{scenario.Name}: the recording run failed (exit {recordExit}): {recordError}");
                var points = Occurrences(recordOutput.Where(l => l.StartsWith("point ", StringComparison.Ordinal)).Select(l => l["point ".Length..]).ToList());
                await CompleteAndRemoveAsync(scenario, context, host.Path, state, run);
                var baseline = await KernelSnapshot.TakeAsync(host.Path, run, state, global);

                // The setup runs here, on a warm process, before each point; the child's (idempotent) setup then finds
                // everything in place and only starts its controller and runs the operation.
                await SetUpAsync(scenario, context, host.Path, state, run);

                foreach (var (point, occurrence) in points)
                {
                    reached.Add(point);
                    var at = $"{scenario.Name} at {point}#{occurrence}";
                    var childStarted = clock.Elapsed;
                    var (output, exit, error) = await RunChildAsync(testHost, scenario, context, state, run, host.Path, $"{point}#{occurrence}");
                    inChildren += clock.Elapsed - childStarted;
                    if (output.Contains("done") || exit != 137)
                    {
                        leaks.Add($"{at}: the child was not killed there (exit {exit}, last line {output.LastOrDefault()}): {Tail(error)}");
                        try
                        {
                            await CompleteAndRemoveAsync(scenario, context, host.Path, state, run);
                            await SetUpAsync(scenario, context, host.Path, state, run);
                        }
                        catch (CnmException ex)
                        {
                            leaks.Add($"{at}: the state is not usable after that: {ex.GetType().Name}: {ex.Message}");
                        }

                        continue;
                    }

                    exercised++;
                    var recoveryStarted = clock.Elapsed;
                    var controller = await FaultScenarios.BuildAsync(host.Path, state, run, scenario.Firewall, faults: null, global: global);
                    try
                    {
                        await controller.WaitForTeardownsAsync();
                        inRecovery += clock.Elapsed - recoveryStarted;
                        var checkStarted = clock.Elapsed;
                        var found = await CheckInvariantsAsync(controller, host.Path, run, state, baseline, plugin?.Store, global);
                        inChecks += clock.Elapsed - checkStarted;
                        leaks.AddRange(found.Leaks.Select(f => $"{at}, after recovery: {f}"));
                        duplicates.AddRange(found.Duplicates.Select(f => $"{at}, after recovery: {f}"));
                        await scenario.Complete(controller, context);
                        await RemoveAllAsync(controller);
                        found = await CheckInvariantsAsync(controller, host.Path, run, state, baseline, plugin?.Store, global);
                        leaks.AddRange(found.Leaks.Select(f => $"{at}, after completing and removing everything: {f}"));
                        duplicates.AddRange(found.Duplicates.Select(f => $"{at}, after completing and removing everything: {f}"));
                        await scenario.Setup(controller, context);
                    }
                    catch (Exception ex) when (ex is CnmException or InvalidOperationException)
                    {
                        leaks.Add($"{at}: the recovered state is not usable: {ex.GetType().Name}: {ex.Message}");
                        await RemoveAllQuietlyAsync(controller);
                    }
                    finally
                    {
                        await controller.DisposeAsync();
                    }
                }

                // The last point's setup is removed too, and the scenario must leave the namespace as it found it
                // (else the next scenario's baseline would hide what it left).
                await using (var last = await FaultScenarios.BuildAsync(host.Path, state, run, scenario.Firewall, faults: null, global: global))
                {
                    await RemoveAllAsync(last);
                }

                var end = await KernelSnapshot.TakeAsync(host.Path, run, state, global);
                leaks.AddRange(end.KernelDifferencesFrom(baseline).Select(f => $"{scenario.Name}, at its end: {f}"));
                TestContext.Out.WriteLine($"{scenario.Name}: {points.Count} fault points ({string.Join(", ", points.Select(p => p.Occurrence > 1 ? $"{p.Point}#{p.Occurrence}" : p.Point))}) in {(clock.Elapsed - started).TotalSeconds:F1} s");
            }
            finally
            {
                if (plugin is not null)
                {
                    await plugin.DisposeAsync();
                }

                await StopInvariants.UnmountSandboxesAsync(run);
                await UnmountOverlayNamespacesAsync(run);
                Directory.Delete(temp, recursive: true);
            }
        }

        // Coverage (an unfiltered run only): every catalogued point is reached by some scenario, except those whose
        // device kind this kernel lacks (probed in the test's namespace).
        var notOnThisKernel = await PointsNotReachableOnThisKernelAsync(host.Path);
        foreach (var (point, why) in notOnThisKernel)
        {
            TestContext.Out.WriteLine($"not reachable on this kernel: {point} ({why})");
        }

        var unreached = CnmSharp.Diagnostics.FaultPoint.All.Except(reached).Where(p => !notOnThisKernel.ContainsKey(p)).ToList();
        TestContext.Out.WriteLine($"fault points reached: {reached.Count} of {CnmSharp.Diagnostics.FaultPoint.All.Count}{(unreached.Count > 0 ? "; not reached: " + string.Join(", ", unreached) : string.Empty)}");
        TestContext.Out.WriteLine($"total {clock.Elapsed.TotalSeconds:F1} s: children {inChildren.TotalSeconds:F1} s, recovery {inRecovery.TotalSeconds:F1} s, one check {inChecks.TotalSeconds:F1} s");
        foreach (var finding in leaks.Concat(duplicates))
        {
            TestContext.Out.WriteLine(finding);
        }

        TestContext.Out.WriteLine($"fault points: {exercised} exercised, {leaks.Count} leaks, {duplicates.Count} duplicate addresses");
        Assert.Multiple(() =>
        {
            Assert.That(leaks, Is.Empty);
            Assert.That(duplicates, Is.Empty);
            Assert.That(exercised, Is.GreaterThan(scenarios.Count), "every scenario reached fault points");
            if (string.IsNullOrEmpty(only))
            {
                Assert.That(unreached, Is.Empty, "every fault point of the catalog is reached by some scenario (except those whose device kind this kernel lacks)");
            }
        });
    }

    /// <summary>
    /// The invariants after a restart (the one place the harness checks them). Leaks: a kernel object in the host
    /// namespace (link, address, firewall rule), a sandbox namespace, a bind mount or a sandbox directory that is not in
    /// the baseline and that no object of the store owns, or one the store owns that is missing; a baseline object that
    /// is gone; an intent or a quarantined record left (no operation runs now, so every owner is dead); a driver record
    /// without its network; an IPAM allocation whose owner does not exist, or an endpoint address without its
    /// allocation; with nothing left in the store, any store key the baseline does not have. Duplicates: an address or
    /// MAC held by two endpoints.
    /// </summary>
    private static async Task<(List<string> Leaks, List<string> Duplicates)> CheckInvariantsAsync(NetworkController controller, string hostNamespacePath, string runDirectory, string stateDirectory, KernelSnapshot baseline, IKeyValueStore? pluginStore, FaultScenarioContext? global = null)
    {
        var leaks = new List<string>();
        var duplicates = new List<string>();
        var now = await KernelSnapshot.TakeAsync(hostNamespacePath, runDirectory, stateDirectory, global);
        await using var store = await SqliteKeyValueStore.OpenAsync(new SqliteStoreOptions { Path = Path.Combine(stateDirectory, "cnm.db") });

        // What the store owns in the host namespace: bridges, host veths of joined endpoints, parents a driver made.
        var networks = controller.Networks.ToDictionary(n => n.Id, StringComparer.Ordinal);
        var joined = controller.Sandboxes.SelectMany(s => s.Endpoints).Select(e => e.Id).ToHashSet(StringComparer.Ordinal);
        var owned = new Dictionary<string, string>(StringComparer.Ordinal); // link -> why
        var gateways = new Dictionary<string, string>(StringComparer.Ordinal); // bridge -> gateway address
        var driverRecords = (await store.ListAsync("cnm/v1/driver/")).Select(e => (Entry: e, Path: e.Key["cnm/v1/driver/".Length..])).ToList();
        if (pluginStore is not null)
        {
            // The plugin's bridge driver keeps its records in the plugin's store: it owns the bridges and veths.
            driverRecords.AddRange((await pluginStore.ListAsync(PluginDriverPrefix)).Select(e => (Entry: e, Path: "bridge/" + e.Key[PluginDriverPrefix.Length..])));
        }

        foreach (var (entry, path) in driverRecords)
        {
            var parts = path.Split('/');
            if (parts.Length < 3 || parts[1] is not ("network" or "endpoint"))
            {
                continue;
            }

            using var json = JsonDocument.Parse(entry.Value);
            var root = json.RootElement;

            var networkId = parts[2];
            if (!networks.TryGetValue(networkId, out var network))
            {
                leaks.Add($"driver record {entry.Key} of a network the controller does not have");
                continue;
            }

            if (parts[0] == "overlay")
            {
                // Its devices are in the network's namespace, not the host's: CheckOverlayAsync.
                continue;
            }

            if (parts[1] == "network" && root.TryGetProperty("bridgeName", out var bridge))
            {
                owned[bridge.GetString()!] = "bridge of network " + network.Name;
                if (network.IPv4Info.Count > 0 && network.IPv4Info[0].Gateway is { } gateway)
                {
                    gateways[bridge.GetString()!] = gateway.Address.ToString();
                }
            }
            else if (parts[1] == "network" && root.TryGetProperty("createdParent", out var createdParent) && root.TryGetProperty("parent", out var parent))
            {
                owned[parent.GetString()!] = "parent made for network " + network.Name;

                // The internal parent's stand-in where the kernel has no dummy: a veth pair, its far end "dp-..." too
                // (ParentLinkDriver.InternalPeer).
                if (createdParent.TryGetProperty("kind", out var madeKind) && madeKind.GetString() == "veth" && now.Links.ContainsKey(CnmSharp.Drivers.Common.ParentLinkDriver.InternalPeer(parent.GetString()!)))
                {
                    owned[CnmSharp.Drivers.Common.ParentLinkDriver.InternalPeer(parent.GetString()!)] = "far end of the internal parent of network " + network.Name;
                }
            }
            else if (parts[1] == "endpoint" && root.TryGetProperty("hostVeth", out var veth) && joined.Contains(root.GetProperty("id").GetString()!))
            {
                owned[veth.GetString()!] = "host veth of joined endpoint " + root.GetProperty("id").GetString();
            }
            else if (parts[1] == "endpoint" && entry.Key.StartsWith(PluginDriverPrefix, StringComparison.Ordinal) && root.TryGetProperty("hostVeth", out var pluginVeth)
                && controller.Networks.SelectMany(n => n.Endpoints).Any(e => e.Id == root.GetProperty("id").GetString()))
            {
                // A plugin's bridge endpoint whose interface the caller moves: the pair may stay in the host namespace
                // until DeleteEndpoint (a rolled-back join), both ends owned by the endpoint.
                foreach (var name in new[] { pluginVeth.GetString(), root.TryGetProperty("containerVeth", out var c) ? c.GetString() : null }.OfType<string>())
                {
                    if (now.Links.ContainsKey(name))
                    {
                        owned[name] = "veth of plugin endpoint " + root.GetProperty("id").GetString();
                    }
                }
            }
        }

        foreach (var (link, kind) in now.Links.Where(l => !baseline.Links.ContainsKey(l.Key) && !owned.ContainsKey(l.Key)))
        {
            leaks.Add($"host link {link} ({kind}) that nothing in the store owns");
        }

        foreach (var (link, why) in owned.Where(o => !now.Links.ContainsKey(o.Key)))
        {
            leaks.Add($"host link {link} is missing ({why})");
        }

        foreach (var link in baseline.Links.Keys.Where(l => !now.Links.ContainsKey(l)))
        {
            leaks.Add($"host link {link} of the baseline is gone");
        }

        foreach (var (link, addresses) in now.Addresses)
        {
            var expected = baseline.Addresses.TryGetValue(link, out var before) ? before
                : gateways.TryGetValue(link, out var gateway) ? [gateway]
                : [];
            foreach (var extra in addresses.Except(expected))
            {
                leaks.Add($"address {extra} on host link {link} that nothing owns");
            }

            foreach (var missing in expected.Except(addresses))
            {
                leaks.Add($"address {missing} missing on host link {link}");
            }
        }

        // Sandboxes: namespace files, bind mounts and files directories are exactly the sandboxes'.
        var sandboxKeys = controller.Sandboxes.Select(s => Path.GetFileName(s.Key)).ToHashSet(StringComparer.Ordinal);
        foreach (var file in now.NamespaceFiles.Where(f => !sandboxKeys.Contains(f)))
        {
            leaks.Add($"sandbox namespace file {file} of no sandbox");
        }

        foreach (var key in sandboxKeys.Where(k => !now.NamespaceFiles.Contains(k)))
        {
            leaks.Add($"sandbox namespace {key} is missing");
        }

        foreach (var mount in now.Mounts.Where(m => !now.NamespaceFiles.Contains(Path.GetFileName(m)) && !IsOverlayMount(m, runDirectory)))
        {
            leaks.Add($"bind mount {mount} of no namespace file");
        }

        var sandboxIds = controller.Sandboxes.Select(s => s.Id).ToHashSet(StringComparer.Ordinal);
        foreach (var directory in now.SandboxDirectories.Where(d => !sandboxIds.Contains(d)))
        {
            leaks.Add($"sandbox files directory {directory} of no sandbox");
        }

        // Each joined endpoint's interface is in its sandbox with its address, and a sandbox holds nothing else.
        foreach (var sandbox in controller.Sandboxes)
        {
            var kernel = (await IpTool.JsonAsync(sandbox.Key, "address", "show")).EnumerateArray()
                .Where(l => l.GetProperty("ifname").GetString() != "lo")
                .ToDictionary(
                    l => l.GetProperty("ifname").GetString()!,
                    l => l.TryGetProperty("addr_info", out var a) ? a.EnumerateArray().Select(x => x.GetProperty("local").GetString()!).ToArray() : []);
            var wanted = sandbox.Endpoints.ToDictionary(e => e.InterfaceName!, e => e.Address?.Address.ToString());
            foreach (var (name, address) in wanted)
            {
                if (!kernel.TryGetValue(name, out var present))
                {
                    leaks.Add($"sandbox {sandbox.ContainerId}: the joined interface {name} is missing");
                }
                else if (address is not null && !present.Contains(address))
                {
                    leaks.Add($"sandbox {sandbox.ContainerId}: {name} lacks {address} (has {string.Join(",", present)})");
                }
            }

            foreach (var name in kernel.Keys.Where(k => !wanted.ContainsKey(k)))
            {
                leaks.Add($"sandbox {sandbox.ContainerId}: interface {name} that no endpoint names");
            }
        }

        // Firewall: with no network left, exactly the baseline's rules.
        if (networks.Count == 0 && now.Rules != baseline.Rules)
        {
            leaks.Add("firewall rules differ from the baseline with no network left:\n" + Diff(baseline.Rules, now.Rules));
        }

        // Addresses and MACs: each held once, each allocation owned by what holds it.
        var endpoints = controller.Networks.SelectMany(n => n.Endpoints).ToList();
        foreach (var group in endpoints.Where(e => e.Address is not null).GroupBy(e => e.Address!.Value.Address.ToString()).Where(g => g.Count() > 1))
        {
            duplicates.Add($"address {group.Key} held by endpoints {string.Join(", ", group.Select(e => e.Name))}");
        }

        foreach (var group in endpoints.Where(e => e.MacAddress is not null).GroupBy(e => e.MacAddress!.ToString()).Where(g => g.Count() > 1))
        {
            duplicates.Add($"MAC {group.Key} held by endpoints {string.Join(", ", group.Select(e => e.Name))}");
        }

        var allocations = new Dictionary<string, string?>(StringComparer.Ordinal); // address -> owner
        foreach (var entry in await store.ListAsync("cnm/v1/ipam/default/addr/"))
        {
            using var json = JsonDocument.Parse(entry.Value);
            var address = entry.Key[(entry.Key.LastIndexOf('/') + 1)..];
            var owner = json.RootElement.TryGetProperty("owner", out var o) ? o.GetString() : null;
            if (!allocations.TryAdd(address, owner))
            {
                duplicates.Add($"address {address} allocated twice in the IPAM");
            }

            var holder = endpoints.FirstOrDefault(e => string.Equals(e.Id, owner, StringComparison.Ordinal));
            var ownedByNetwork = owner is not null && owner.StartsWith("network:", StringComparison.Ordinal) && networks.ContainsKey(owner["network:".Length..]);
            if (!ownedByNetwork && (holder is null || holder.Address?.Address.ToString() != address))
            {
                leaks.Add($"IPAM allocation {address} owned by {owner ?? "nobody"}, which does not hold it");
            }
        }

        if (pluginStore is not null)
        {
            await CheckPluginAsync(pluginStore, controller, endpoints, allocations, leaks, duplicates);
        }

        if (global is not null)
        {
            await CheckOverlayAsync(controller, runDirectory, store, baseline, now, global, allocations, leaks, duplicates);
        }

        foreach (var endpoint in endpoints.Where(e => e.Address is not null && !allocations.ContainsKey(e.Address.Value.Address.ToString())))
        {
            duplicates.Add($"endpoint {endpoint.Name} holds {endpoint.Address} which the IPAM does not count as allocated (it could be handed out again)");
        }

        foreach (var key in (await store.ListAsync("cnm/v1/intent/")).Select(e => e.Key).Concat((await store.ListAsync("cnm/v1/quarantine/")).Select(e => e.Key)))
        {
            leaks.Add($"{key} left in the store with no operation running");
        }

        // With nothing left, the store holds what it held before the scenario.
        if (networks.Count == 0 && controller.Sandboxes.Count == 0)
        {
            foreach (var key in now.StoreKeys.Except(baseline.StoreKeys))
            {
                leaks.Add($"store key {key} left with no network and no sandbox");
            }
        }

        // The public checker must agree: it reports nothing on a recovered state (and repairs nothing).
        var report = await controller.CheckAsync();
        foreach (var finding in report.Findings)
        {
            (finding.Kind is InvariantKinds.DuplicateAddress or InvariantKinds.DuplicateMac ? duplicates : leaks).Add($"checker: {finding}");
        }

        return (leaks, duplicates);
    }

    /// <summary>The plugin's side (the remote scenarios): every network and endpoint the plugin host records, every pool
    /// and address its IPAM holds, belongs to a network or endpoint the controller has (the gateway, or the address the
    /// endpoint holds), and each address is allocated once. Adds the plugin's allocations to
    /// <paramref name="allocations"/>.</summary>
    private static async Task CheckPluginAsync(IKeyValueStore pluginStore, NetworkController controller, List<Endpoint> endpoints, Dictionary<string, string?> allocations, List<string> leaks, List<string> duplicates)
    {
        var networks = controller.Networks.ToDictionary(n => n.Id, StringComparer.Ordinal);
        var endpointIds = endpoints.Select(e => e.Id).ToHashSet(StringComparer.Ordinal);
        foreach (var entry in await pluginStore.ListAsync("plugin-host/networks/"))
        {
            if (!networks.ContainsKey(entry.Key[(entry.Key.LastIndexOf('/') + 1)..]))
            {
                leaks.Add($"plugin: network record {entry.Key} of a network the controller does not have");
            }
        }

        foreach (var entry in await pluginStore.ListAsync("plugin-host/endpoints/"))
        {
            if (!endpointIds.Contains(entry.Key[(entry.Key.LastIndexOf('/') + 1)..]))
            {
                leaks.Add($"plugin: endpoint record {entry.Key} of an endpoint the controller does not have");
            }
        }

        var poolIds = controller.Networks.SelectMany(n => n.IPv4Info.Concat(n.IPv6Info)).Select(p => p.PoolId).ToHashSet(StringComparer.Ordinal);
        foreach (var entry in await pluginStore.ListAsync(PluginIpamPrefix + "pool/"))
        {
            var poolId = entry.Key[(PluginIpamPrefix + "pool/").Length..];
            if (!poolIds.Contains(poolId))
            {
                leaks.Add($"plugin: IPAM pool {poolId} that no network of the controller uses");
            }
        }

        var gateways = controller.Networks.SelectMany(n => n.IPv4Info.Concat(n.IPv6Info)).Where(p => p.Gateway is not null).Select(p => p.Gateway!.Value.Address.ToString()).ToHashSet(StringComparer.Ordinal);
        foreach (var entry in await pluginStore.ListAsync(PluginIpamPrefix + "addr/"))
        {
            var address = entry.Key[(entry.Key.LastIndexOf('/') + 1)..];
            var holder = endpoints.FirstOrDefault(e => e.Address?.Address.ToString() == address);
            if (!allocations.TryAdd(address, holder?.Id))
            {
                duplicates.Add($"plugin: address {address} allocated twice");
            }

            if (holder is null && !gateways.Contains(address))
            {
                leaks.Add($"plugin: IPAM allocation {address} that no endpoint or gateway of the controller holds");
            }
        }
    }

    /// <summary>Where the plugin's bridge driver keeps its records in the plugin's store.</summary>
    private const string PluginDriverPrefix = "plugin-driver/bridge/";

    /// <summary>Where the plugin's default IPAM keeps its records in the plugin's store.</summary>
    private const string PluginIpamPrefix = "plugin-ipam/default/";

    /// <summary>Serves the remote scenarios' plugin (the bridge driver and the default IPAM, on iptables) on a unix socket
    /// where the scenario's controllers look (<see cref="FaultScenarios.PluginSocketDirectory"/>).</summary>
    private static async Task<PluginServer> StartPluginAsync(string temp, string hostNamespacePath)
    {
        var sockets = FaultScenarios.PluginSocketDirectory(Path.Combine(temp, "state"));
        Directory.CreateDirectory(sockets);
        return await PluginServer.StartAsync(new PluginServerOptions
        {
            Host = new PluginHostOptions { Name = FaultScenarios.PluginName, SocketPath = Path.Combine(sockets, FaultScenarios.PluginName + ".sock") },
            Driver = new BridgeDriverFactory(new BridgeDriverOptions { ReapTimeout = TimeSpan.FromSeconds(3) }),
            Ipam = new DefaultIpamFactory(),
            StateDirectory = Path.Combine(temp, "plugin-state"),
            RunDirectory = Path.Combine(temp, "plugin-run"),
            HostNamespacePath = hostNamespacePath,
            Firewall = FirewallBackendChoice.Iptables,
        }, Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance);
    }

    /// <summary>Starts a controller on the state (it recovers), completes the scenario's operation and removes
    /// everything.</summary>
    private static async Task CompleteAndRemoveAsync(FaultScenario scenario, FaultScenarioContext context, string hostNamespacePath, string state, string run)
    {
        await using var controller = await FaultScenarios.BuildAsync(hostNamespacePath, state, run, scenario.Firewall, faults: null, global: Global(scenario, context));
        await scenario.Complete(controller, context);
        await RemoveAllAsync(controller);
    }

    private static async Task SetUpAsync(FaultScenario scenario, FaultScenarioContext context, string hostNamespacePath, string state, string run)
    {
        await using var controller = await FaultScenarios.BuildAsync(hostNamespacePath, state, run, scenario.Firewall, faults: null, global: Global(scenario, context));
        await scenario.Setup(controller, context);
    }

    private static async Task RemoveAllAsync(NetworkController controller)
    {
        foreach (var sandbox in controller.Sandboxes.ToArray())
        {
            await sandbox.DeleteAsync();
        }

        await controller.WaitForTeardownsAsync();
        foreach (var network in controller.Networks.ToArray())
        {
            foreach (var endpoint in network.Endpoints.ToArray())
            {
                await endpoint.DeleteAsync(false);
            }

            await controller.WaitForTeardownsAsync();
            await network.DeleteAsync();
        }
    }

    private static async Task RemoveAllQuietlyAsync(NetworkController controller)
    {
        try
        {
            await RemoveAllAsync(controller);
        }
        catch (Exception ex) when (ex is CnmException or InvalidOperationException)
        {
            TestContext.Out.WriteLine($"cleanup failed: {ex.Message}");
        }
    }

    /// <summary>Each point with its occurrence number (1 for the first time it is reached).</summary>
    private static List<(string Point, int Occurrence)> Occurrences(List<string> points)
    {
        var seen = new Dictionary<string, int>(StringComparer.Ordinal);
        return [.. points.Select(p => (p, seen[p] = seen.GetValueOrDefault(p) + 1))];
    }

    /// <summary>Runs the child in the given mode; returns its stdout lines, exit code (137 when SIGKILLed) and stderr.</summary>
    private static async Task<(List<string> Output, int ExitCode, string Error)> RunChildAsync(string testHost, FaultScenario scenario, FaultScenarioContext context, string state, string run, string hostNamespacePath, string spec)
    {
        var start = new ProcessStartInfo(HelperProgram.DotnetHost())
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in new[] { testHost, "fault", scenario.Name, state, run, hostNamespacePath, MacvlanParent, spec }.Concat(scenario.NeedsGlobalStore ? context.GlobalArguments() : []))
        {
            start.ArgumentList.Add(argument);
        }

        // The child's .NET start is the harness's main cost: no tiered compilation of the whole library up front.
        start.Environment["DOTNET_TieredPGO"] = "0";
        start.Environment["DOTNET_TC_QuickJitForLoops"] = "1";
        using var process = Process.Start(start) ?? throw new InvalidOperationException("cannot start the test host");
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(ChildTimeout);
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill();
            await process.WaitForExitAsync(CancellationToken.None);
        }

        return ([.. (await output).Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)], process.ExitCode, await error);
    }

    private static string Tail(string text) => text.Length > 1500 ? text[^1500..] : text;

    private static string Diff(string before, string after)
    {
        var a = before.Split('\n').ToHashSet(StringComparer.Ordinal);
        var b = after.Split('\n').ToHashSet(StringComparer.Ordinal);
        return string.Join('\n', b.Except(a).Select(l => "+ " + l).Concat(a.Except(b).Select(l => "- " + l)));
    }

    /// <summary>What the harness compares: the host namespace's links (name to kind) and addresses, its firewall rules
    /// (iptables and ip6tables in every table, and the nftables ruleset, counters removed), the namespace files and bind
    /// mounts under the run directory, the sandbox files directories, and the store's keys.</summary>
    internal sealed partial record KernelSnapshot(
        Dictionary<string, string> Links,
        Dictionary<string, string[]> Addresses,
        string Rules,
        HashSet<string> NamespaceFiles,
        HashSet<string> Mounts,
        HashSet<string> SandboxDirectories,
        HashSet<string> StoreKeys)
    {
        /// <summary>The overlay network namespace files under the run directory.</summary>
        public HashSet<string> OverlayNamespaces { get; init; } = [];

        /// <summary>The keys under the scenario's prefix in the global store (empty without one).</summary>
        public HashSet<string> GlobalKeys { get; init; } = [];

        public static async Task<KernelSnapshot> TakeAsync(string hostNamespacePath, string runDirectory, string stateDirectory, FaultScenarioContext? global = null)
        {
            var links = new Dictionary<string, string>(StringComparer.Ordinal);
            var addresses = new Dictionary<string, string[]>(StringComparer.Ordinal);
            foreach (var link in (await IpTool.JsonAsync(hostNamespacePath, "address", "show")).EnumerateArray())
            {
                var name = link.GetProperty("ifname").GetString()!;
                links[name] = link.TryGetProperty("linkinfo", out var info) && info.TryGetProperty("info_kind", out var kind) ? kind.GetString()! : "-";
                addresses[name] = link.TryGetProperty("addr_info", out var a)
                    ? [.. a.EnumerateArray().Where(x => x.GetProperty("scope").GetString() != "link").Select(x => x.GetProperty("local").GetString()!).Order(StringComparer.Ordinal)]
                    : [];
            }

            var rules = new StringBuilder();
            foreach (var tool in new[] { "iptables-save", "ip6tables-save" })
            {
                rules.AppendLine(Counters().Replace(await ExecAsync("nsenter", $"--net={hostNamespacePath}", tool), string.Empty));
            }

            rules.AppendLine(NftCounters().Replace(await ExecAsync("nsenter", $"--net={hostNamespacePath}", "nft", "list", "ruleset"), string.Empty));
            var text = string.Join('\n', rules.ToString().Split('\n').Where(l => !l.StartsWith('#')).Select(l => l.TrimEnd()));

            var netns = Path.Combine(runDirectory, "netns");
            var files = Directory.Exists(netns) ? Directory.GetFiles(netns).Select(Path.GetFileName).OfType<string>().ToHashSet(StringComparer.Ordinal) : [];
            var mounts = MountTable.LinesUnder(runDirectory).Select(l => l.Split(' ')[4]).ToHashSet(StringComparer.Ordinal);
            var sandboxes = Path.Combine(runDirectory, "sandboxes");
            var directories = Directory.Exists(sandboxes) ? Directory.GetDirectories(sandboxes).Select(Path.GetFileName).OfType<string>().ToHashSet(StringComparer.Ordinal) : [];
            var keys = new HashSet<string>(StringComparer.Ordinal);
            if (File.Exists(Path.Combine(stateDirectory, "cnm.db")))
            {
                await using var store = await SqliteKeyValueStore.OpenAsync(new SqliteStoreOptions { Path = Path.Combine(stateDirectory, "cnm.db") });
                keys.UnionWith((await store.ListAsync("cnm/")).Select(e => e.Key).Where(k => k != "cnm/v1/controller"));
            }

            return new KernelSnapshot(links, addresses, text, files, mounts, directories, keys)
            {
                OverlayNamespaces = OverlayNamespaceFiles(runDirectory),
                GlobalKeys = await GlobalKeysAsync(global),
            };
        }

        /// <summary>The kernel differences (links, addresses, rules, namespaces, mounts, sandbox directories) from
        /// <paramref name="before"/>; the store is not compared.</summary>
        public List<string> KernelDifferencesFrom(KernelSnapshot before)
        {
            var found = new List<string>();
            found.AddRange(Links.Keys.Except(before.Links.Keys).Select(l => $"link {l} appeared"));
            found.AddRange(before.Links.Keys.Except(Links.Keys).Select(l => $"link {l} is gone"));
            foreach (var (link, addresses) in Addresses.Where(a => before.Addresses.ContainsKey(a.Key)))
            {
                found.AddRange(addresses.Except(before.Addresses[link]).Select(a => $"address {a} appeared on {link}"));
                found.AddRange(before.Addresses[link].Except(addresses).Select(a => $"address {a} is gone from {link}"));
            }

            if (Rules != before.Rules)
            {
                found.Add("firewall rules changed:\n" + Diff(before.Rules, Rules));
            }

            found.AddRange(NamespaceFiles.Except(before.NamespaceFiles).Select(f => $"namespace file {f} appeared"));
            found.AddRange(Mounts.Except(before.Mounts).Select(m => $"mount {m} appeared"));
            found.AddRange(SandboxDirectories.Except(before.SandboxDirectories).Select(d => $"sandbox directory {d} appeared"));
            found.AddRange(OverlayNamespaces.Except(before.OverlayNamespaces).Select(f => $"overlay namespace {f} appeared"));
            found.AddRange(GlobalKeys.Except(before.GlobalKeys).Select(k => $"global store key {k} appeared"));
            return found;
        }

        private static async Task<string> ExecAsync(string file, params string[] args)
        {
            var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (var arg in args)
            {
                start.ArgumentList.Add(arg);
            }

            using var process = Process.Start(start)!;
            var output = await process.StandardOutput.ReadToEndAsync();
            await process.StandardError.ReadToEndAsync();
            await process.WaitForExitAsync();
            return output;
        }

        [GeneratedRegex(@"\[\d+:\d+\]")]
        private static partial Regex Counters();

        [GeneratedRegex(@"counter packets \d+ bytes \d+")]
        private static partial Regex NftCounters();
    }
}

