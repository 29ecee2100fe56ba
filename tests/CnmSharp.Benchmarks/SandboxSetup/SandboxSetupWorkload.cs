using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;

namespace CnmSharp.Benchmarks.SandboxSetup;

/// <summary>
/// <c>sandbox-setup --count N [--runs R] [--concurrency C] [--tools cnmsharp,cnmsharp-seq,netavark,cni]</c>:
/// N containers attached to and detached from one bridge network with its firewall work on, by CnmSharp's controller
/// (in process, C operations in flight, and sequentially), netavark and the CNI bridge plugin (one process per
/// container operation), interleaved in one run, each pass in its own private host namespace H.
/// </summary>
internal static class SandboxSetupWorkload
{
    public const string Name = "sandbox-setup";

    private const string Usage = "usage: sandbox-setup --count N [--runs R] [--concurrency C] [--tools cnmsharp,cnmsharp-seq,netavark,cni]";

    public static async Task<int> RunAsync(string[] args)
    {
        var count = 200;
        var runs = 3;
        var concurrency = 4;
        var tools = new List<string> { "cnmsharp", "cnmsharp-seq", "netavark", "cni" };
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
            selected.Add(key switch
            {
                "cnmsharp" => new CnmSharpSandboxTool(concurrency),
                "cnmsharp-seq" => new CnmSharpSandboxTool(1),
                "netavark" => new NetavarkTool(),
                "cni" => new CniBridgeTool(),
                _ => throw new ArgumentException($"unknown tool '{key}'"),
            });
        }

        var netavarkVersion = File.Exists(NetavarkTool.Binary) ? (await Exec.RunAsync(NetavarkTool.Binary, ["--version"]).ConfigureAwait(false)).Trim() : "netavark missing";
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"sandbox-setup: n={count} runs={runs} cnmsharp-concurrency={concurrency} cores={Environment.ProcessorCount} kernel={Environment.OSVersion.Version} runtime={RuntimeInformation.FrameworkDescription} {netavarkVersion} {DateTime.UtcNow:yyyy-MM-dd HH:mm}Z"));

        // Warm-up, not reported: JIT of the in-process path, page cache of the peers' binaries and of iptables.
        foreach (var tool in selected)
        {
            _ = await RunPassAsync(tool, Math.Min(count, 5)).ConfigureAwait(false);
        }

        foreach (var tool in selected.OfType<CnmSharpSandboxTool>())
        {
            tool.Spans.Spans.Clear();
        }

        var results = selected.ToDictionary(t => t.Key, _ => new List<Pass>());
        for (var run = 1; run <= runs; run++)
        {
            foreach (var tool in selected)
            {
                var pass = await RunPassAsync(tool, count).ConfigureAwait(false);
                results[tool.Key].Add(pass);
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"  run {run} {tool.Name,-34} attach {pass.Attach.WallSeconds,8:F3} s ({pass.Attach.MedianMs:F2} ms median)   detach {pass.Detach.WallSeconds,8:F3} s ({pass.Detach.MedianMs:F2} ms median)   rules in H {pass.RulesInHost}"));
            }
        }

        PrintTable(selected, results, count, runs);
        foreach (var tool in selected.OfType<CnmSharpSandboxTool>())
        {
            PrintSpans(tool, count * runs);
        }

        string Med(string key, Func<Pass, double> f) =>
            results.TryGetValue(key, out var r) ? Stats.Median([.. r.Select(f)]).ToString("F3", CultureInfo.InvariantCulture) : "NA";
        Console.WriteLine(
            $"sandbox-setup n={count} " +
            $"cnmsharp_attach_s={Med("cnmsharp", p => p.Attach.WallSeconds)} cnmsharp_detach_s={Med("cnmsharp", p => p.Detach.WallSeconds)} " +
            $"netavark_attach_s={Med("netavark", p => p.Attach.WallSeconds)} netavark_detach_s={Med("netavark", p => p.Detach.WallSeconds)} " +
            $"cni_attach_s={Med("cni", p => p.Attach.WallSeconds)} cni_detach_s={Med("cni", p => p.Detach.WallSeconds)}");
        return 0;
    }

    private sealed record Pass(PhaseResult Attach, PhaseResult Detach, int RulesInHost);

    /// <summary>
    /// One pass in a fresh private host namespace H: network (not timed), attach all (timed), check, detach all and
    /// wait until H has no veth left (timed), then delete H and check the root namespace is untouched.
    /// </summary>
    private static async Task<Pass> RunPassAsync(SandboxTool tool, int count)
    {
        var root = await RootNamespaceCheck.TakeAsync().ConfigureAwait(false);
        string directory;
        string hostPath;
        Pass pass;
        await using (var host = await PrivateHost.CreateAsync("cnmsb").ConfigureAwait(false))
        {
            directory = host.Directory;
            hostPath = host.HostPath;
            await using var session = await tool.StartAsync(host, count).ConfigureAwait(false);
            var attach = await PhaseResult.MeasureAsync(() => PhaseResult.TimeEachAsync(count, tool.Parallelism, session.AttachAsync)).ConfigureAwait(false);
            var rules = await VerifyAsync(tool, session, count).ConfigureAwait(false);
            var detach = await PhaseResult.MeasureAsync(async () =>
            {
                var times = await PhaseResult.TimeEachAsync(count, tool.Parallelism, session.DetachAsync).ConfigureAwait(false);
                await session.SettleAsync().ConfigureAwait(false);

                // Done when the kernel has really removed every container's host-side veth from H.
                await PrivateHost.WaitUntilAsync(host.VethCountAsync, 0, tool.Name).ConfigureAwait(false);
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

        var rules = await RootNamespaceCheck.RuleCountAsync(session.Host.HostPath).ConfigureAwait(false);
        if (rules == 0)
        {
            throw new InvalidOperationException($"{tool.Name}: no firewall rules in H: its firewall work did not run");
        }

        return rules;
    }

    private static void PrintTable(List<SandboxTool> tools, Dictionary<string, List<Pass>> results, int count, int runs)
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
    private static void PrintSpans(CnmSharpSandboxTool tool, int containers)
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
