using BenchmarkDotNet.Running;

namespace CnmSharp.Benchmarks;

/// <summary>Entry point: BenchmarkDotNet micro-benchmarks, or a named workload runner.</summary>
public static class Program
{
    /// <summary>Runs a workload (first argument names it) or the BenchmarkDotNet switcher.</summary>
    public static async Task<int> Main(string[] args)
    {
        ArgumentNullException.ThrowIfNull(args);
        if (args.Length > 0 && Workloads.TryGet(args[0], out var workload))
        {
            return await workload(args[1..]).ConfigureAwait(false);
        }

        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
        return 0;
    }
}

/// <summary>Whole-scenario workload runners, by name.</summary>
internal static class Workloads
{
    private static readonly Dictionary<string, Func<string[], Task<int>>> s_workloads = new(StringComparer.Ordinal)
    {
        [EndpointSetup.EndpointSetupWorkload.Name] = EndpointSetup.EndpointSetupWorkload.RunAsync,
        [SandboxSetup.SandboxSetupWorkload.Name] = SandboxSetup.SandboxSetupWorkload.RunAsync,
        [MacvlanSetup.MacvlanSetupWorkload.Name] = MacvlanSetup.MacvlanSetupWorkload.RunAsync,
        [CliLatency.CliLatencyWorkload.Name] = CliLatency.CliLatencyWorkload.RunAsync,
        [DnsResolution.DnsResolutionWorkload.Name] = DnsResolution.DnsResolutionWorkload.RunAsync,
        [Plugin.PluginWorkload.Name] = Plugin.PluginWorkload.RunAsync,
        [Overlay.OverlayWorkload.Name] = Overlay.OverlayWorkload.RunAsync,
    };

    public static bool TryGet(string name, out Func<string[], Task<int>> workload) =>
        s_workloads.TryGetValue(name, out workload!);
}
