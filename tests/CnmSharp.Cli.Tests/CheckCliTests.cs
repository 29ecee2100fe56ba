using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using CnmSharp.Store;
using CnmSharp.Testing;

namespace CnmSharp.Cli.Tests;

/// <summary>
/// <c>cnm check</c> and <c>cnm check --repair</c> on leaks made on purpose (a veth on a network's bridge, an iptables
/// rule in CnmSharp's chain, an orphan namespace bind-mounted in the run directory, a duplicated endpoint record), and
/// the stress test of issue 16: 8 workers (4 tasks on a library controller in this process, 4 <c>cnm</c>
/// processes at a time) doing create/join/leave/delete cycles on shared networks, then the checker.
/// </summary>
[TestFixture]
[RequiresRoot]
[NonParallelizable]
public sealed class CheckCliTests
{
    private CliLab _lab = null!;

    [SetUp]
    public async Task SetUp() => _lab = await CliLab.CreateAsync();

    [TearDown]
    public async Task TearDown() => await _lab.DisposeAsync();

    [Test]
    public async Task Cnm_check_reports_leaks_made_on_purpose_and_check_repair_removes_them()
    {
        var net = "ck-" + _lab.Suffix;
        var container = "ckc-" + _lab.Suffix;
        Expect(await _lab.CnmAsync("network", "create", "--disable-dns", "--subnet", "10.94.1.0/24", net), 0);
        Expect(await _lab.CnmAsync("sandbox", "create", container), 0);
        Expect(await _lab.CnmAsync("network", "connect", net, container), 0);
        var clean = await _lab.CnmAsync("check");
        Expect(clean, 0);
        Assert.That(clean.StdOut.Trim(), Is.EqualTo("clean"));

        var bridge = (await IpTool.JsonAsync(_lab.Host.Path, "link", "show", "dev", "br-" + await NetworkIdAsync(net))).EnumerateArray().Single().GetProperty("ifname").GetString()!;
        await IpTool.RunAsync(_lab.Host.Path, "link", "add", "cklk0", "type", "veth", "peer", "name", "cklk1");
        await IpTool.RunAsync(_lab.Host.Path, "link", "set", "cklk0", "master", bridge);
        Assert.That((await IpTool.ExecAsync("nsenter", $"--net={_lab.Host.Path}", "iptables", "-t", "nat", "-A", "DOCKER", "-i", "cklk9", "-j", "RETURN")).ExitCode, Is.Zero);
        var leakPath = Path.Combine(_lab.RunDirectory, "netns", "cklkns");
        var namespaces = new CnmSharp.Netlink.NetworkNamespaceManager(new CnmSharp.Netlink.NetworkNamespaceManagerOptions { RunDirectory = Path.Combine(_lab.RunDirectory, "netns"), MakeRunDirectoryShared = false });
        await namespaces.CreateAsync("cklkns");
        await DuplicateEndpointRecordAsync();

        var report = await _lab.CnmAsync("check");
        Expect(report, 3);
        foreach (var expected in new[] { "leaked-link link cklk0", "leaked-firewall-rule iptables -t nat -A DOCKER -i cklk9", "leaked-namespace namespace " + leakPath, "duplicate-address endpoint" })
        {
            Assert.That(report.StdOut, Does.Contain(expected), report.ToString());
        }

        var json = await _lab.CnmAsync("check", "--format", "json");
        Expect(json, 3);
        Assert.That(json.StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonNode.Parse(l)!["Kind"]!.GetValue<string>()).Order(),
            Is.EqualTo(new[] { "duplicate-address", "leaked-firewall-rule", "leaked-link", "leaked-namespace" }), json.ToString());

        var repair = await _lab.CnmAsync("check", "--repair");
        Expect(repair, 0);
        Assert.That(repair.StdOut, Does.Contain("4 finding(s), 4 repaired"), repair.ToString());
        Assert.That(await IpTool.LinkAsync(_lab.Host.Path, "cklk0"), Is.Null);
        Assert.That(File.Exists(leakPath), Is.False);

        var after = await _lab.CnmAsync("check");
        Expect(after, 0);
        Assert.That(after.StdOut.Trim(), Is.EqualTo("clean"));
        Expect(await _lab.CnmAsync("sandbox", "rm", container), 0);
        Expect(await _lab.CnmAsync("network", "rm", net), 0);
    }

    [Test]
    public async Task Cnm_check_repair_creates_a_deleted_bridge_again_and_removes_an_orphan_driver_record_and_a_quarantined_record_stays_until_discarded()
    {
        var net = "ckb-" + _lab.Suffix;
        var container = "ckbc-" + _lab.Suffix;
        Expect(await _lab.CnmAsync("network", "create", "--disable-dns", "--subnet", "10.94.2.0/24", net), 0);
        Expect(await _lab.CnmAsync("sandbox", "create", container), 0);
        Expect(await _lab.CnmAsync("network", "connect", net, container), 0);
        Expect(await _lab.CnmAsync("check"), 0);

        // The faults: the network's bridge deleted behind our back, a bridge driver network record the core has no
        // network for (naming a bridge as made by the driver), and a record the next start sets aside.
        var shortId = await NetworkIdAsync(net);
        var bridge = "br-" + shortId;
        var hostVeth = (await IpTool.JsonAsync(_lab.Host.Path, "link", "show", "master", bridge, "type", "veth")).EnumerateArray().Single().GetProperty("ifname").GetString()!;
        await IpTool.RunAsync(_lab.Host.Path, "link", "del", bridge);
        await IpTool.RunAsync(_lab.Host.Path, "link", "add", "ckob0", "type", "bridge");
        var garbage = "cnm/v1/intent/garbage-" + _lab.Suffix;
        string orphanId;
        await using (var store = await SqliteKeyValueStore.OpenAsync(new SqliteStoreOptions { Path = Path.Combine(_lab.StateDirectory, "cnm.db") }))
        {
            var entry = (await store.ListAsync("cnm/v1/driver/bridge/network/")).Single(e => e.Key.StartsWith("cnm/v1/driver/bridge/network/" + shortId, StringComparison.Ordinal));
            var node = JsonNode.Parse(entry.Value.Span)!.AsObject();
            string Key(string name) => node.Select(p => p.Key).Single(k => string.Equals(k, name, StringComparison.OrdinalIgnoreCase));
            orphanId = Convert.ToHexStringLower(Guid.NewGuid().ToByteArray()) + Convert.ToHexStringLower(Guid.NewGuid().ToByteArray());
            node[Key("id")] = orphanId;
            node[Key("name")] = "orphan";
            node[Key("bridgeName")] = "ckob0";
            node[Key("ipv4Subnet")] = "10.94.3.0/24";
            node[Key("ipv4Gateway")] = "10.94.3.1/24";
            await store.PutAsync("cnm/v1/driver/bridge/network/" + orphanId, System.Text.Encoding.UTF8.GetBytes(node.ToJsonString()), StoreVersion.Absent);
            await store.PutAsync(garbage, System.Text.Encoding.UTF8.GetBytes("{ not json"), StoreVersion.Absent);
        }

        var report = await _lab.CnmAsync("check");
        Expect(report, 3);
        foreach (var expected in new[] { "missing-link bridge " + bridge, "orphan-driver-record bridge network record " + orphanId[..12], "quarantined-record store key " + garbage })
        {
            Assert.That(report.StdOut, Does.Contain(expected), report.ToString());
        }

        var repair = await _lab.CnmAsync("check", "--repair");
        Expect(repair, 3);
        Assert.That(repair.StdOut, Does.Contain("3 finding(s), 2 repaired"), repair.ToString());
        Assert.That(repair.StdOut, Does.Contain("quarantined-record store key " + garbage).And.Contain("[not repaired: never automatic"), repair.ToString());
        Assert.That((await IpTool.LinkAsync(_lab.Host.Path, hostVeth))!.Value.GetProperty("master").GetString(), Is.EqualTo(bridge));
        Assert.That(await IpTool.RunAsync(_lab.Host.Path, "-4", "-o", "address", "show", "dev", bridge), Does.Contain("10.94.2.1/24"));
        Assert.That(await IpTool.LinkAsync(_lab.Host.Path, "ckob0"), Is.Null);

        var unknown = await _lab.CnmAsync("check", "--discard-quarantined", "cnm/v1/intent/nothing-" + _lab.Suffix);
        Expect(unknown, 1);
        var discard = await _lab.CnmAsync("check", "--discard-quarantined", garbage);
        Expect(discard, 0);
        Assert.That(discard.StdOut, Is.EqualTo($"discarded quarantined record {garbage}\nclean\n"), discard.ToString());

        Expect(await _lab.CnmAsync("sandbox", "rm", container), 0);
        Expect(await _lab.CnmAsync("network", "rm", net), 0);
        Expect(await _lab.CnmAsync("check"), 0);
    }

    private const int TargetOperations = 2000;
    private const int CliWorkers = 4;
    private const int LibraryWorkers = 4;
    private const int CliCycles = 8;

    /// <summary>After it, the workers stop after their current operation.</summary>
    private static readonly TimeSpan StressBudget = TimeSpan.FromSeconds(70);

    /// <summary>The hard bound: workers still running then are a deadlock.</summary>
    private static readonly TimeSpan StressTimeout = TimeSpan.FromSeconds(85);

    /// <summary>
    /// 8 workers on two shared networks: 4 tasks on one library controller of this process (it shares the state
    /// directory, and so the store and its lock, with the processes) and 4 workers running
    /// <c>cnm</c> processes one after the other. A library cycle is 4 operations (endpoint create, join, leave, delete);
    /// a <c>cnm network connect</c> is 2 (endpoint create and join), a <c>disconnect</c> 2 (leave and delete). The
    /// library workers go on until the <c>cnm</c> workers are done and at least 2,000 operations ran, or 70 s have
    /// passed (then the count fails the test); all must end within 85 s (a deadlock fails the test). No address is handed out twice among live endpoints; afterwards the checker (library
    /// and <c>cnm check</c>) finds nothing.
    /// </summary>
    [Test]
    public async Task Stress_8_workers_in_process_and_in_cnm_processes_leave_no_duplicate_and_no_leak()
    {
        // Not while the kill harness (IntegrationTests, run in parallel by CI) starts its hundreds of controllers.
        using var heavy = await HeavyTestLock.AcquireAsync(TimeSpan.FromMinutes(15));
        var networks = new[] { "sta-" + _lab.Suffix, "stb-" + _lab.Suffix };
        Expect(await _lab.CnmAsync("network", "create", "--disable-dns", "--subnet", "10.93.0.0/16", networks[0]), 0);
        Expect(await _lab.CnmAsync("network", "create", "--disable-dns", "--subnet", "10.92.0.0/16", networks[1]), 0);
        var controller = await _lab.OpenControllerAsync();
        var failures = new ConcurrentQueue<string>();
        var live = new ConcurrentDictionary<string, string>(StringComparer.Ordinal);
        var libraryOps = 0;
        var cliOps = 0;
        var cliCommands = 0;
        var cliDone = 0;
        using var budget = new CancellationTokenSource(StressBudget);
        var clock = Stopwatch.StartNew();

        async Task LibraryWorkerAsync(int w)
        {
            try
            {
                var sandbox = await controller.CreateSandboxAsync($"sl{w}-{_lab.Suffix}", null, CancellationToken.None);
                Interlocked.Increment(ref libraryOps);
                for (var i = 0; !budget.IsCancellationRequested && (Volatile.Read(ref cliDone) < CliWorkers || Volatile.Read(ref libraryOps) + Volatile.Read(ref cliOps) < TargetOperations); i++)
                {
                    var network = controller.FindNetworkByName(networks[(w + i) % 2]) ?? throw new InvalidOperationException("shared network not found");
                    var endpoint = await network.CreateEndpointAsync($"el{w}-{i}", null, CancellationToken.None);
                    var address = network.Name + " " + endpoint.Address!.Value.Address;
                    if (!live.TryAdd(address, endpoint.Id))
                    {
                        failures.Enqueue($"library worker {w}: {address} handed to {endpoint.Id[..12]} while {live[address][..12]} holds it");
                    }

                    await endpoint.JoinAsync(sandbox, null, CancellationToken.None);
                    await endpoint.LeaveAsync(sandbox, CancellationToken.None);
                    live.TryRemove(address, out _);
                    await endpoint.DeleteAsync(false, CancellationToken.None);
                    Interlocked.Add(ref libraryOps, 4);
                }

                await sandbox.DeleteAsync(CancellationToken.None);
                Interlocked.Increment(ref libraryOps);
            }
            catch (Exception ex)
            {
                failures.Enqueue($"library worker {w}: {ex.GetType().Name}: {ex.Message}");
            }
        }

        async Task CliWorkerAsync(int w)
        {
            var container = $"sc{w}-{_lab.Suffix}";
            async Task<bool> RunAsync(int ops, params string[] args)
            {
                var p = _lab.Start(args);
                var result = await CliLab.WaitOrTimeOutAsync(p, StressTimeout - clock.Elapsed > TimeSpan.FromSeconds(5) ? StressTimeout - clock.Elapsed : TimeSpan.FromSeconds(5));
                Interlocked.Increment(ref cliCommands);
                if (result.ExitCode != 0)
                {
                    failures.Enqueue($"cnm worker {w}: cnm {string.Join(' ', args)}: {result}");
                    return false;
                }

                Interlocked.Add(ref cliOps, ops);
                return true;
            }

            try
            {
                if (!await RunAsync(1, "sandbox", "create", container))
                {
                    return;
                }

                for (var i = 0; i < CliCycles && !budget.IsCancellationRequested; i++)
                {
                    var network = networks[(w + i) % 2];
                    if (!await RunAsync(2, "network", "connect", network, container) || !await RunAsync(2, "network", "disconnect", network, container))
                    {
                        return;
                    }
                }

                await RunAsync(1, "sandbox", "rm", container);
            }
            finally
            {
                Interlocked.Increment(ref cliDone);
            }
        }

        var workers = Enumerable.Range(0, LibraryWorkers).Select(w => Task.Run(() => LibraryWorkerAsync(w)))
            .Concat(Enumerable.Range(0, CliWorkers).Select(w => Task.Run(() => CliWorkerAsync(w))))
            .ToArray();
        var all = Task.WhenAll(workers);
        var finished = await Task.WhenAny(all, Task.Delay(StressTimeout));
        var elapsed = clock.Elapsed;
        Assert.That(finished, Is.SameAs(all), $"the workers did not finish within {StressTimeout.TotalSeconds} s (a deadlock?): {libraryOps} library and {cliOps} cnm operations done");

        await controller.WaitForTeardownsAsync();
        var report = await controller.CheckAsync();
        var cli = await _lab.CnmAsync("check");
        var total = libraryOps + cliOps;
        var summary = string.Create(CultureInfo.InvariantCulture,
            $"stress: {total} ops ({libraryOps} by 4 tasks on one library controller, {cliOps} by {cliCommands} cnm processes) by 8 workers in {elapsed.TotalSeconds:F1} s, {total / elapsed.TotalSeconds:F0} ops/s; checker: {(report.IsClean ? "clean" : $"{report.Findings.Count} finding(s)")}, cnm check exit {cli.ExitCode}");
        await TestContext.Progress.WriteLineAsync(summary);
        TestContext.Out.WriteLine(summary);

        Assert.That(failures, Is.Empty);
        Assert.That(total, Is.GreaterThanOrEqualTo(TargetOperations));
        Assert.That(cliCommands, Is.GreaterThanOrEqualTo(CliWorkers * 2), "every cnm worker ran");
        Assert.That(report.Findings, Is.Empty, string.Join("\n", report.Findings));
        Expect(cli, 0);
        Assert.That(controller.Sandboxes.Where(s => s.ContainerId.EndsWith(_lab.Suffix, StringComparison.Ordinal)), Is.Empty);
    }

    private async Task<string> NetworkIdAsync(string name)
    {
        var inspect = await _lab.CnmAsync("network", "inspect", "--format", "{{.Id}}", name);
        Expect(inspect, 0);
        return inspect.StdOut.Trim()[..12];
    }

    /// <summary>Copies the one endpoint record of the store under a new id and name, without its join (no <c>cnm</c>
    /// process runs meanwhile).</summary>
    private async Task DuplicateEndpointRecordAsync()
    {
        await using var store = await SqliteKeyValueStore.OpenAsync(new SqliteStoreOptions { Path = Path.Combine(_lab.StateDirectory, "cnm.db") });
        var entry = (await store.ListAsync("cnm/v1/endpoint/")).Single();
        var node = JsonNode.Parse(entry.Value.Span)!.AsObject();
        var id = Convert.ToHexStringLower(Guid.NewGuid().ToByteArray()) + Convert.ToHexStringLower(Guid.NewGuid().ToByteArray());
        var networkId = node["networkId"]!.GetValue<string>();
        node["id"] = id;
        node["name"] = "copy";
        node.Remove("join");
        await store.PutAsync($"cnm/v1/endpoint/{networkId}/{id}", System.Text.Encoding.UTF8.GetBytes(node.ToJsonString()), StoreVersion.Absent);
    }

    private static void Expect(ProcessResult result, int exitCode) => Assert.That(result.ExitCode, Is.EqualTo(exitCode), result.ToString());
}
