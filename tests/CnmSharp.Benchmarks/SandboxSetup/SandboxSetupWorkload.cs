using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;

namespace CnmSharp.Benchmarks.SandboxSetup;

/// <summary>
/// <c>sandbox-setup --count N [--runs R] [--concurrency C] [--ports] [--tools ...]</c>:
/// N containers attached to and detached from one bridge network with its firewall work on, by CnmSharp's controller
/// (in process), netavark and the CNI bridge plugin (one process per container operation), each sequentially and with
/// C operations at once, interleaved in one run, each pass in its own private host namespace H. The network's creation
/// and removal are inside the timed phases for every tool. With <c>--ports</c> every container publishes one TCP port.
/// </summary>
internal static class SandboxSetupWorkload
{
    public const string Name = "sandbox-setup";

    private static readonly string[] AllTools = ["cnmsharp", "netavark", "cni", "cnmsharp-parallel", "netavark-parallel", "cni-parallel"];

    private static readonly string Usage = "usage: sandbox-setup --count N [--runs R] [--concurrency C] [--ports] [--firewall iptables|nftables] [--tools " + string.Join(',', AllTools) + "]";

    public static async Task<int> RunAsync(string[] args)
    {
        try
        {
            return await RunCoreAsync(args).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (EndpointSetup.Interrupt.Token.IsCancellationRequested)
        {
            await Console.Error.WriteLineAsync("sandbox-setup: interrupted; everything it made was removed").ConfigureAwait(false);
            return 130;
        }
    }

    private static async Task<int> RunCoreAsync(string[] args)
    {
        var count = 200;
        var runs = 3;
        var concurrency = 4;
        var tools = new List<string>(AllTools);
        var ports = false;
        var nftables = false;
        for (var a = 0; a < args.Length; a++)
        {
            switch (args[a])
            {
                case "--count" when a + 1 < args.Length:
                    count = int.Parse(args[++a], CultureInfo.InvariantCulture);
                    break;
                case "--runs" when a + 1 < args.Length:
                    runs = int.Parse(args[++a], CultureInfo.InvariantCulture);
                    break;
                case "--concurrency" when a + 1 < args.Length:
                    concurrency = int.Parse(args[++a], CultureInfo.InvariantCulture);
                    break;
                case "--ports":
                    ports = true;
                    break;
                case "--firewall" when a + 1 < args.Length && args[a + 1] is "iptables" or "nftables":
                    // CnmSharp's backend; the peers stay on iptables (netavark 1.4.0 has no nftables driver).
                    nftables = args[++a] == "nftables";
                    break;
                case "--tools" when a + 1 < args.Length:
                    tools = [.. args[++a].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)];
                    break;
                default:
                    await Console.Error.WriteLineAsync(Usage).ConfigureAwait(false);
                    return 2;
            }
        }

        if (!Environment.IsPrivilegedProcess)
        {
            await Console.Error.WriteLineAsync("sandbox-setup needs root (it creates network namespaces).").ConfigureAwait(false);
            return 1;
        }

        if (count < 1 || count > 60000 || runs < 1 || concurrency < 1)
        {
            await Console.Error.WriteLineAsync("--count must be 1..60000, --runs and --concurrency at least 1").ConfigureAwait(false);
            return 2;
        }

        var selected = new List<SandboxTool>();
        foreach (var key in tools)
        {
            SandboxTool? tool = key switch
            {
                "cnmsharp" => new CnmSharpSandboxTool(1, nftables),
                "cnmsharp-parallel" => new CnmSharpSandboxTool(concurrency, nftables),
                // netavark 1.4.0 (Debian 12) has no nftables driver (NETAVARK_FW=nftables exits 1): it stays on iptables.
                "netavark" => new NetavarkTool(1),
                "netavark-parallel" => new NetavarkTool(concurrency),
                "cni" => new CniBridgeTool(1),
                "cni-parallel" => new CniBridgeTool(concurrency),
                _ => null,
            };
            if (tool is null)
            {
                await Console.Error.WriteLineAsync($"sandbox-setup: unknown tool '{key}' (known: {string.Join(',', AllTools)})").ConfigureAwait(false);
                return 2;
            }

            selected.Add(tool);
        }

        EndpointSetup.Interrupt.Install();

        // Prerequisites: one line saying what to run, not a stack trace in the middle of a run.
        var missing = MissingPrerequisites(selected, ports);
        if (missing.Count > 0)
        {
            await Console.Error.WriteLineAsync(
                $"sandbox-setup: missing {string.Join(", ", missing)}; install the peers with `sudo CNM_SETUP_PEERS=1 bash .ci/setup` (or run only CnmSharp: --tools cnmsharp,cnmsharp-parallel)").ConfigureAwait(false);
            return 1;
        }

        var netavarkVersion = File.Exists(NetavarkTool.Binary) ? (await Exec.RunAsync(NetavarkTool.Binary, ["--version"]).ConfigureAwait(false)).Trim() : "netavark not used";
        var summary = (ports ? "sandbox-ports" : "sandbox-setup") + (nftables ? "-nft" : "");
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{summary}: n={count} runs={runs} ports={(ports ? "one TCP port per container" : "none")} concurrency: sequential tools 1, parallel tools {concurrency}; cores={Environment.ProcessorCount} kernel={Environment.OSVersion.Version} runtime={RuntimeInformation.FrameworkDescription} {netavarkVersion} {DateTime.UtcNow:yyyy-MM-dd HH:mm}Z"));

        // Warm-up, not reported: JIT of the in-process path, page cache of the peers' binaries and of iptables.
        foreach (var tool in selected)
        {
            _ = await RunPassAsync(tool, Math.Min(count, 5), ports).ConfigureAwait(false);
        }

        var mode = Mode(selected, concurrency, ports);
        Console.WriteLine(mode);

        foreach (var tool in selected.OfType<CnmSharpSandboxTool>())
        {
            tool.Spans.Spans.Clear();
        }

        var results = selected.ToDictionary(t => t.Key, _ => new List<Pass>());
        for (var run = 1; run <= runs; run++)
        {
            foreach (var tool in selected)
            {
                var pass = await RunPassAsync(tool, count, ports).ConfigureAwait(false);
                results[tool.Key].Add(pass);
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"  run {run} {tool.Name,-34} attach {pass.Attach.WallSeconds,8:F3} s ({pass.Attach.MedianMs:F2} ms median)   detach {pass.Detach.WallSeconds,8:F3} s ({pass.Detach.MedianMs:F2} ms median)   rules in H {pass.RulesInHost}"));
            }
        }

        PrintTable([.. selected.Select(t => (t.Key, t.Name))], results, count, runs);
        foreach (var tool in selected.OfType<CnmSharpSandboxTool>())
        {
            PrintSpans(tool, count * runs);
        }

        string Med(string key, Func<Pass, double> f) =>
            results.TryGetValue(key, out var r) ? Stats.Median([.. r.Select(f)]).ToString("F3", CultureInfo.InvariantCulture) : "NA";
        // Sequential against sequential (the headline keys), then C at once against C at once.
        Console.WriteLine(mode);
        Console.WriteLine(
            $"{summary} n={count} " +
            $"cnmsharp_attach_s={Med("cnmsharp", p => p.Attach.WallSeconds)} cnmsharp_detach_s={Med("cnmsharp", p => p.Detach.WallSeconds)} " +
            $"netavark_attach_s={Med("netavark", p => p.Attach.WallSeconds)} netavark_detach_s={Med("netavark", p => p.Detach.WallSeconds)} " +
            $"cni_attach_s={Med("cni", p => p.Attach.WallSeconds)} cni_detach_s={Med("cni", p => p.Detach.WallSeconds)}");
        Console.WriteLine(
            $"{summary}-parallel n={count} concurrency={concurrency} " +
            $"cnmsharp_parallel_attach_s={Med("cnmsharp-parallel", p => p.Attach.WallSeconds)} cnmsharp_parallel_detach_s={Med("cnmsharp-parallel", p => p.Detach.WallSeconds)} " +
            $"netavark_parallel_attach_s={Med("netavark-parallel", p => p.Attach.WallSeconds)} netavark_parallel_detach_s={Med("netavark-parallel", p => p.Detach.WallSeconds)} " +
            $"cni_parallel_attach_s={Med("cni-parallel", p => p.Attach.WallSeconds)} cni_parallel_detach_s={Med("cni-parallel", p => p.Detach.WallSeconds)}");
        return 0;
    }

    /// <summary>The binaries the selected tools need that are not there.</summary>
    private static List<string> MissingPrerequisites(List<SandboxTool> tools, bool ports)
    {
        var needed = new List<string> { "/usr/bin/nsenter" };
        if (tools.Any(t => t is NetavarkTool))
        {
            needed.Add(NetavarkTool.Binary);
        }

        if (tools.Any(t => t is CniBridgeTool))
        {
            needed.Add(CniBridgeTool.Directory + "/bridge");
            needed.Add(CniBridgeTool.Directory + "/host-local");
            if (ports)
            {
                needed.Add(CniBridgeTool.Directory + "/portmap");
            }
        }

        var missing = needed.Where(p => !File.Exists(p)).ToList();
        if (!File.Exists("/usr/sbin/iptables-save") && !File.Exists("/sbin/iptables-save"))
        {
            missing.Add("iptables-save");
        }

        return missing;
    }

    /// <summary>The mode of the run: CnmSharp's store durability (as its store reports it), every tool's firewall
    /// backend, the concurrency, the ports, and the completion wait.</summary>
    private static string Mode(List<SandboxTool> tools, int concurrency, bool ports)
    {
        var cnm = tools.OfType<CnmSharpSandboxTool>().FirstOrDefault();
        var firewalls = string.Join(", ", tools.Where(t => t.Parallelism == 1 || !tools.Any(s => s.Parallelism == 1 && s.GetType() == t.GetType()))
            .Select(t => $"{t.Key.Replace("-parallel", "", StringComparison.Ordinal)} {t.Firewall}"));
        return string.Create(CultureInfo.InvariantCulture,
            $"mode: cnmsharp store=sqlite durability={(cnm?.Durability?.ToString() ?? "n/a")}; firewall: {firewalls}; concurrency: sequential 1, parallel {concurrency}; ports={(ports ? "1 TCP per container" : "none")}; network create/remove timed for all; completion wait: in-process link monitor of H for all");
    }

    /// <summary>One tool's measured pass: its attach and detach phases and the firewall rules in H after attach.</summary>
    internal sealed record Pass(PhaseResult Attach, PhaseResult Detach, int RulesInHost);

    /// <summary>
    /// Runs the operations with <paramref name="parallelism"/> in flight, except the first (attach) or the last
    /// (detach), which runs alone: the first attach makes the peers' bridge and shared chains, the last detach of
    /// netavark removes them, and two at once would race. The same for every tool.
    /// </summary>
    private static async Task<IReadOnlyList<double>> EdgesAloneAsync(int count, int parallelism, Func<int, Task> step, bool last = false)
    {
        // SIGINT/SIGTERM stop the pass at the next container; the pass's cleanup then removes everything it made.
        Task operation(int i)
        {
            EndpointSetup.Interrupt.ThrowIfRequested();
            return step(i);
        }

        if (parallelism == 1 || count == 1)
        {
            return await PhaseResult.TimeEachAsync(count, 1, operation).ConfigureAwait(false);
        }

        var alone = last ? count - 1 : 0;
        var times = new double[count];
        if (!last)
        {
            times[alone] = (await PhaseResult.TimeEachAsync(1, 1, _ => operation(alone)).ConfigureAwait(false))[0];
        }

        var offset = last ? 0 : 1;
        var rest = await PhaseResult.TimeEachAsync(count - 1, parallelism, i => operation(i + offset)).ConfigureAwait(false);
        for (var i = 0; i < rest.Count; i++)
        {
            times[i + offset] = rest[i];
        }

        if (last)
        {
            times[alone] = (await PhaseResult.TimeEachAsync(1, 1, _ => operation(alone)).ConfigureAwait(false))[0];
        }

        return times;
    }

    /// <summary>
    /// One pass in a fresh private host namespace H: network (not timed), attach all (timed), check, detach all and
    /// wait until H has no veth left (timed), then delete H and check the root namespace is untouched.
    /// </summary>
    private static async Task<Pass> RunPassAsync(SandboxTool tool, int count, bool ports)
    {
        var root = await RootNamespaceCheck.TakeAsync().ConfigureAwait(false);
        string directory;
        string hostPath;
        Pass pass;
        await using (var host = await PrivateHost.CreateAsync("cnmsb").ConfigureAwait(false))
        {
            directory = host.Directory;
            hostPath = host.HostPath;
            await using var session = await tool.StartAsync(host, count, ports).ConfigureAwait(false);
            var attach = await PhaseResult.MeasureAsync(async () =>
            {
                // The network (bridge and its rules) is part of the attach for every tool; the peers make theirs in
                // their first setup. The first container goes alone, then C at once (a C-at-once pass would otherwise
                // race the peers' creation of their bridge and chains).
                await session.CreateNetworkAsync().ConfigureAwait(false);
                return await EdgesAloneAsync(count, tool.Parallelism, session.AttachAsync).ConfigureAwait(false);
            }).ConfigureAwait(false);
            var rules = await VerifyAsync(tool, session, count).ConfigureAwait(false);

            // The same completion wait for every tool: subscribed before the timed phase, awaited inside it.
            await using var waiter = await VethWaiter.StartAsync(host.Host).ConfigureAwait(false);
            var detach = await PhaseResult.MeasureAsync(async () =>
            {
                var times = await EdgesAloneAsync(count, tool.Parallelism, session.DetachAsync, last: true).ConfigureAwait(false);
                await session.SettleAsync().ConfigureAwait(false);
                await session.DeleteNetworkAsync().ConfigureAwait(false);

                // Done when the kernel has really removed every container's host-side veth from H.
                await waiter.WaitAsync(tool.Name).ConfigureAwait(false);
                return times;
            }).ConfigureAwait(false);
            var childRss = await session.ChildPeakRssKibAsync(count).ConfigureAwait(false);
            pass = new Pass(attach with { ChildPeakRssKib = childRss }, detach with { ChildPeakRssKib = childRss }, rules);
        }

        await root.AssertUnchangedAsync(directory, hostPath, tool.Name).ConfigureAwait(false);
        return pass;
    }

    /// <summary>
    /// H has the bridge and one veth per container; the first and last containers have eth0 with an address in the
    /// subnet and a default route; container 0 pings the gateway (traffic only between our namespaces); the tool's
    /// firewall rules are in H. Returns the number of rules in H.
    /// </summary>
    private static async Task<int> VerifyAsync(SandboxTool tool, SandboxSession session, int count)
    {
        var veths = await session.Host.VethCountAsync().ConfigureAwait(false);
        var bridge = await Exec.IpAsync(session.Host.HostPath, "-o", "link", "show", "dev", session.Bridge).ConfigureAwait(false);
        if (veths != count || !bridge.Contains(",UP", StringComparison.Ordinal))
        {
            throw new InvalidOperationException($"{tool.Name}: H has {veths} veths after attach (expected {count}); bridge: {bridge}");
        }

        var prefix = session.Gateway[..(session.Gateway.IndexOf('.', session.Gateway.IndexOf('.') + 1) + 1)];
        foreach (var i in new[] { 0, count - 1 }.Distinct())
        {
            var path = session.ContainerPath(i);
            var addr = await Exec.IpAsync(path, "-o", "-4", "addr", "show", "dev", "eth0").ConfigureAwait(false);
            var route = await Exec.IpAsync(path, "route", "show", "default").ConfigureAwait(false);
            if (!addr.Contains("inet " + prefix, StringComparison.Ordinal) || !route.Contains($"default via {session.Gateway}", StringComparison.Ordinal))
            {
                throw new InvalidOperationException($"{tool.Name}: container {i} is not attached as expected:\n{addr}{route}");
            }
        }

        await Exec.RunAsync("nsenter", [$"--net={session.ContainerPath(0)}", "ping", "-c", "1", "-W", "2", "-q", session.Gateway]).ConfigureAwait(false);
        if (Environment.GetEnvironmentVariable("CNM_BENCH_VERBOSE") == "1")
        {
            await Console.Error.WriteLineAsync($"{tool.Name}: checked containers {session.ContainerPath(0)} and {session.ContainerPath(count - 1)}").ConfigureAwait(false);
        }

        var nft = tool.Firewall == "nftables";
        if (session.Ports)
        {
            // Each container's published port has its DNAT rule (iptables) or map element or rule (nftables) in H.
            var nat = nft
                ? await Exec.RunAsync("nsenter", [$"--net={session.Host.HostPath}", "nft", "list", "ruleset"]).ConfigureAwait(false)
                : await Exec.RunAsync("nsenter", [$"--net={session.Host.HostPath}", "iptables-save", "-t", "nat"]).ConfigureAwait(false);
            foreach (var i in new[] { 0, count - 1 }.Distinct())
            {
                var hostPort = SandboxSession.HostPort(i).ToString(CultureInfo.InvariantCulture);
                var port = nft ? hostPort : $"--dport {hostPort} ";
                if (!nat.Split('\n').Any(l => l.Contains(port, StringComparison.Ordinal) && (nft || l.Contains("DNAT", StringComparison.Ordinal))))
                {
                    throw new InvalidOperationException($"{tool.Name}: no DNAT for container {i}'s host port {SandboxSession.HostPort(i)} in H");
                }
            }
        }

        var rules = nft
            ? (await Exec.RunAsync("nsenter", [$"--net={session.Host.HostPath}", "nft", "-a", "list", "ruleset"]).ConfigureAwait(false))
                .Split('\n').Count(l => l.Contains("# handle", StringComparison.Ordinal) && !l.TrimStart().StartsWith("chain", StringComparison.Ordinal) && !l.TrimStart().StartsWith("table", StringComparison.Ordinal))
            : await RootNamespaceCheck.RuleCountAsync(session.Host.HostPath).ConfigureAwait(false);
        if (rules == 0)
        {
            throw new InvalidOperationException($"{tool.Name}: no firewall rules in H: its firewall work did not run");
        }

        return rules;
    }

    /// <summary>The per-tool, per-phase table (medians over the runs); also printed by <c>macvlan-setup</c>.</summary>
    internal static void PrintTable(IReadOnlyList<(string Key, string Name)> tools, Dictionary<string, List<Pass>> results, int count, int runs)
    {
        var sb = new StringBuilder();
        sb.AppendLine(CultureInfo.InvariantCulture, $"Medians over {runs} run(s), n={count}. Per container: wall/N, and the median and p99 of single operations; first/last tenth: the median of the first and of the last N/10 operations (growth with N). CPU = this process + children (getrusage deltas). Peak RSS: CnmSharp = this process (VmHWM, reset per phase); peers = the largest single tool process (/usr/bin/time -f %M).");
        sb.AppendLine("| tool | phase | wall s | wall/N ms | median ms | p99 ms | first/last tenth ms | CPU s (self + children) | peak RSS MiB | rules in H |");
        sb.AppendLine("|---|---|---|---|---|---|---|---|---|---|");
        foreach (var tool in tools)
        {
            foreach (var (phase, pick) in new (string, Func<Pass, PhaseResult>)[] { ("attach", p => p.Attach), ("detach", p => p.Detach) })
            {
                var r = results[tool.Key];
                double M(Func<PhaseResult, double> f) => Stats.Median([.. r.Select(p => f(pick(p)))]);
                var rss = r[0].Attach.ChildPeakRssKib is null ? M(p => p.PeakRssKib) : M(p => p.ChildPeakRssKib ?? 0);
                sb.AppendLine(CultureInfo.InvariantCulture,
                    $"| {tool.Name} | {phase} | {M(p => p.WallSeconds):F3} | {M(p => p.WallPerContainerMs):F2} | {M(p => p.MedianMs):F2} | {M(p => p.P99Ms):F2} | {M(p => p.FirstTenthMedianMs):F2} / {M(p => p.LastTenthMedianMs):F2} | {M(p => p.CpuSeconds):F2} ({M(p => p.CpuSelfSeconds):F2} + {M(p => p.CpuChildrenSeconds):F2}) | {rss / 1024:F1} | {Stats.Median([.. r.Select(p => (double)p.RulesInHost)]):F0} |");
            }
        }

        Console.Write(sb.ToString());
    }

    /// <summary>Where CnmSharp's time goes: the controller's own spans (one per operation, nested ones included).</summary>
    internal static void PrintSpans(CnmSharpSandboxTool tool, int containers)
    {
        Console.WriteLine($"{tool.Name}: controller spans and seams over all measured passes ({containers} containers; nested spans overlap their parents)");
        Console.WriteLine("| span | count | median ms | p99 ms | first/last tenth ms | total s |");
        Console.WriteLine("|---|---|---|---|---|---|");
        foreach (var (name, queue) in tool.Spans.Spans.OrderByDescending(s => s.Value.Sum(x => x.Ms)))
        {
            var entries = queue.ToArray();
            var values = entries.Select(e => e.Ms).ToArray();

            // Growth with N: within each pass, the first and the last tenth of the calls (in the order they ended).
            var passes = entries.GroupBy(e => e.Pass).Select(g => g.Select(e => e.Ms).ToArray()).Where(v => v.Length >= 10).ToArray();
            var tenths = passes.Length == 0
                ? "n/a"
                : string.Create(CultureInfo.InvariantCulture, $"{Stats.Median([.. passes.Select(v => Stats.Median([.. v.Take(v.Length / 10)]))]):F2} / {Stats.Median([.. passes.Select(v => Stats.Median([.. v.Skip(v.Length - (v.Length / 10))]))]):F2}");
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {name} | {values.Length} | {Stats.Median(values):F2} | {Stats.Percentile(values, 99):F2} | {tenths} | {values.Sum() / 1000:F2} |"));
        }
    }
}
