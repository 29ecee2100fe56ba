using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;

namespace CnmSharp.Benchmarks.EndpointSetup;

/// <summary>
/// <c>endpoint-setup --count N [--runs R] [--concurrency C] [--tools ...] [--growth]</c>:
/// N containers (namespace + veth + bridge port + eth0 + MAC + address + up + lo up + default route) set up and torn
/// down by CnmSharp and by ip two ways, each sequentially and with C at once, interleaved in one run, each pass in its
/// own private host namespace.
/// </summary>
internal static class EndpointSetupWorkload
{
    public const string Name = "endpoint-setup";

    private static readonly string[] AllTools = ["cnmsharp", "ip-naive", "ip-batch", "cnmsharp-parallel", "ip-naive-parallel", "ip-batch-parallel"];

    public static async Task<int> RunAsync(string[] args)
    {
        try
        {
            return await RunCoreAsync(args).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (Interrupt.Token.IsCancellationRequested)
        {
            await Console.Error.WriteLineAsync("endpoint-setup: interrupted; everything it made was removed").ConfigureAwait(false);
            return 130;
        }
    }

    private static async Task<int> RunCoreAsync(string[] args)
    {
        var count = 100;
        var runs = 3;
        var workers = 4;
        var growth = false;
        var tools = new List<string>(AllTools);
        for (var a = 0; a < args.Length; a++)
        {
            switch (args[a])
            {
                case "--count":
                    count = int.Parse(args[++a], CultureInfo.InvariantCulture);
                    break;
                case "--runs":
                    runs = int.Parse(args[++a], CultureInfo.InvariantCulture);
                    break;
                case "--workers":
                case "--concurrency":
                    workers = int.Parse(args[++a], CultureInfo.InvariantCulture);
                    break;
                case "--tools":
                    tools = [.. args[++a].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)];
                    break;
                case "--growth":
                    growth = true;
                    break;
                default:
                    await Console.Error.WriteLineAsync(
                        "usage: endpoint-setup --count N [--runs R] [--concurrency C] [--tools " + string.Join(',', AllTools) + "] [--growth]").ConfigureAwait(false);
                    return 2;
            }
        }

        if (!Environment.IsPrivilegedProcess)
        {
            await Console.Error.WriteLineAsync("endpoint-setup needs root (it creates network namespaces).").ConfigureAwait(false);
            return 1;
        }

        if (count < 1 || count > 60000 || runs < 1 || workers < 1)
        {
            await Console.Error.WriteLineAsync("--count must be 1..60000, --runs and --concurrency at least 1").ConfigureAwait(false);
            return 2;
        }

        Interrupt.Install();
        if (growth)
        {
            return await GrowthWorkload.RunAsync(args.Contains("--count") ? count : 1000).ConfigureAwait(false);
        }

        var selected = new List<(string Key, EndpointTool Tool)>();
        foreach (var key in tools)
        {
            EndpointTool? tool = key switch
            {
                "cnmsharp" => new CnmSharpTool(1),
                "cnmsharp-parallel" => new CnmSharpTool(workers),
                "ip-naive" => new IpNaiveTool(1),
                "ip-naive-parallel" => new IpNaiveTool(workers),
                "ip-batch" => new IpBatchTool(1),
                "ip-batch-parallel" => new IpBatchTool(workers),
                _ => null,
            };
            if (tool is null)
            {
                await Console.Error.WriteLineAsync($"endpoint-setup: unknown tool '{key}' (known: {string.Join(',', AllTools)})").ConfigureAwait(false);
                return 2;
            }

            selected.Add((key, tool));
        }

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"endpoint-setup: n={count} runs={runs} mode: sequential tools 1 at a time, parallel tools concurrency={workers}; store=none firewall=none (netlink layer only, no controller); completion wait=in-process link monitor of H for every tool, inside the timed teardown; cores={Environment.ProcessorCount} kernel={Environment.OSVersion.Version} runtime={RuntimeInformation.FrameworkDescription} {DateTime.UtcNow:yyyy-MM-dd HH:mm}Z"));
        // Warm-up, not reported: JIT of the in-process path, page cache of the ip binaries.
        foreach (var (_, tool) in selected)
        {
            _ = await RunOnceAsync(tool, Math.Min(count, 5)).ConfigureAwait(false);
        }

        var results = selected.ToDictionary(t => t.Key, _ => new List<(PhaseResult Setup, PhaseResult Teardown)>());
        for (var run = 1; run <= runs; run++)
        {
            foreach (var (key, tool) in selected)
            {
                var (setup, teardown) = await RunOnceAsync(tool, count).ConfigureAwait(false);
                results[key].Add((setup, teardown));
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"  run {run} {tool.Name,-40} setup {setup.WallSeconds,8:F3} s ({setup.MedianMs:F2} ms/container median)   teardown {teardown.WallSeconds,8:F3} s"));
            }
        }

        PrintTable(selected, results, count, runs);
        string Med(string key, Func<(PhaseResult Setup, PhaseResult Teardown), double> f) =>
            results.TryGetValue(key, out var r) ? Stats.Median([.. r.Select(f)]).ToString("F3", CultureInfo.InvariantCulture) : "NA";
        // Sequential against sequential (the headline keys), then C at once against C at once.
        Console.WriteLine(
            $"endpoint-setup n={count} " +
            $"cnmsharp_setup_s={Med("cnmsharp", r => r.Setup.WallSeconds)} cnmsharp_teardown_s={Med("cnmsharp", r => r.Teardown.WallSeconds)} " +
            $"ip_naive_setup_s={Med("ip-naive", r => r.Setup.WallSeconds)} ip_naive_teardown_s={Med("ip-naive", r => r.Teardown.WallSeconds)} " +
            $"ip_batch_setup_s={Med("ip-batch", r => r.Setup.WallSeconds)} ip_batch_teardown_s={Med("ip-batch", r => r.Teardown.WallSeconds)}");
        Console.WriteLine(
            $"endpoint-setup-parallel n={count} concurrency={workers} " +
            $"cnmsharp_parallel_setup_s={Med("cnmsharp-parallel", r => r.Setup.WallSeconds)} cnmsharp_parallel_teardown_s={Med("cnmsharp-parallel", r => r.Teardown.WallSeconds)} " +
            $"ip_naive_parallel_setup_s={Med("ip-naive-parallel", r => r.Setup.WallSeconds)} ip_naive_parallel_teardown_s={Med("ip-naive-parallel", r => r.Teardown.WallSeconds)} " +
            $"ip_batch_parallel_setup_s={Med("ip-batch-parallel", r => r.Setup.WallSeconds)} ip_batch_parallel_teardown_s={Med("ip-batch-parallel", r => r.Teardown.WallSeconds)}");
        return 0;
    }

    private static async Task<(PhaseResult Setup, PhaseResult Teardown)> RunOnceAsync(EndpointTool tool, int count)
    {
        await using var fixture = await Fixture.CreateAsync(count).ConfigureAwait(false);
        var setup = await PhaseResult.MeasureAsync(() => tool.SetupAllAsync(fixture)).ConfigureAwait(false);
        await fixture.VerifyAsync(tool.Name).ConfigureAwait(false);

        // The same completion wait for every tool: subscribed before the timed phase, awaited inside it.
        await using var waiter = await VethWaiter.StartAsync(fixture.Host).ConfigureAwait(false);
        var teardown = await PhaseResult.MeasureAsync(async () =>
        {
            var times = await tool.TeardownAsync(fixture).ConfigureAwait(false);
            await waiter.WaitAsync(tool.Name).ConfigureAwait(false);
            return times;
        }).ConfigureAwait(false);
        var left = await fixture.HostLinkCountByIpAsync().ConfigureAwait(false);
        if (left != 2)
        {
            throw new InvalidOperationException($"{tool.Name}: {left} links left in H after teardown (expected lo and br0)");
        }

        var childRss = await tool.ChildPeakRssKibAsync(fixture).ConfigureAwait(false);
        return (setup with { ChildPeakRssKib = childRss }, teardown with { ChildPeakRssKib = childRss });
    }

    private static void PrintTable(List<(string Key, EndpointTool Tool)> tools, Dictionary<string, List<(PhaseResult Setup, PhaseResult Teardown)>> results, int count, int runs)
    {
        var sb = new StringBuilder();
        sb.AppendLine(CultureInfo.InvariantCulture, $"Medians over {runs} run(s), n={count}. CPU = this process + children (getrusage deltas). Peak RSS: the runner (VmHWM, reset per phase) / one process of the peer tool (/usr/bin/time -f %M).");
        sb.AppendLine("| tool | phase | wall s | per-container median ms | p99 ms | CPU s (self + children) | peak RSS MiB (runner / one ip process) |");
        sb.AppendLine("|---|---|---|---|---|---|---|");
        foreach (var (key, tool) in tools)
        {
            foreach (var (phase, pick) in new (string, Func<(PhaseResult Setup, PhaseResult Teardown), PhaseResult>)[] { ("setup", r => r.Setup), ("teardown", r => r.Teardown) })
            {
                var r = results[key].Select(pick).ToList();
                double M(Func<PhaseResult, double> f) => Stats.Median([.. r.Select(f)]);
                sb.AppendLine(CultureInfo.InvariantCulture,
                    $"| {tool.Name} | {phase} | {M(p => p.WallSeconds):F3} | {M(p => p.MedianMs):F2} | {M(p => p.P99Ms):F2} | {M(p => p.CpuSeconds):F2} ({M(p => p.CpuSelfSeconds):F2} + {M(p => p.CpuChildrenSeconds):F2}) | {M(p => p.PeakRssKib) / 1024:F0} / {(r[0].ChildPeakRssKib is null ? "-" : (M(p => p.ChildPeakRssKib ?? 0) / 1024).ToString("F1", CultureInfo.InvariantCulture))} |");
            }
        }

        Console.Write(sb.ToString());
    }
}
