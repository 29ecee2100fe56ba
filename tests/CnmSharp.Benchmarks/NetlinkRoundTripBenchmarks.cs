using System.Diagnostics;
using BenchmarkDotNet.Attributes;
using CnmSharp.Netlink;
using Microsoft.Win32.SafeHandles;

namespace CnmSharp.Benchmarks;

/// <summary>
/// Real request/ACK round trips on a NETLINK_ROUTE socket inside a private namespace made for the run (root only).
/// Shows the per-request cost and what a steady-state request allocates (async machinery included).
/// </summary>
[MemoryDiagnoser]
public class NetlinkRoundTripBenchmarks
{
    private string _namespace = null!;
    private SafeFileHandle _handle = null!;
    private RtnetlinkClient _client = null!;
    private int _bridge;

    [GlobalSetup]
    public void Setup()
    {
        _namespace = "cnmbench-" + Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(4));
        Run($"netns add {_namespace}");
        _handle = File.OpenHandle($"/run/netns/{_namespace}");
        _client = RtnetlinkClient.Open(_handle);
        _client.CreateLinkAsync(new BridgeLinkSpec("rt0")).AsTask().GetAwaiter().GetResult();
        _bridge = _client.GetLinkAsync("rt0").AsTask().GetAwaiter().GetResult()!.Index;
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _client.Dispose();
        _handle.Dispose();
        Run($"netns del {_namespace}");
    }

    [Benchmark(Description = "set link up (request + ACK)")]
    public ValueTask SetLinkUp() => _client.SetLinkUpAsync(_bridge);

    [Benchmark(Description = "get link by index")]
    public ValueTask<LinkInfo?> GetLink() => _client.GetLinkAsync(_bridge);

    [Benchmark(Description = "dump links (2)")]
    public ValueTask<IReadOnlyList<LinkInfo>> DumpLinks() => _client.GetLinksAsync();

    private static void Run(string args)
    {
        using var process = Process.Start("ip", args);
        process.WaitForExit();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"ip {args} exited {process.ExitCode}");
        }
    }
}
