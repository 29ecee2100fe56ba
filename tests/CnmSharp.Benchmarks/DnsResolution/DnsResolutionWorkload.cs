using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using CnmSharp.Drivers.Bridge;
using CnmSharp.Netlink;
using CnmSharp.Testing;

namespace CnmSharp.Benchmarks.DnsResolution;

/// <summary>
/// <c>dns [--count N] [--concurrency C]</c>: queries per second and latency (p50, p99) of the embedded DNS for a local
/// name and a forwarded one, side by side with aardvark-dns (Debian's, as netavark starts it: a config directory with
/// one file per network, listening on the network's gateway) answering the same names on the same machine. Everything
/// runs in a private host namespace: a bridge network with a client sandbox and a peer sandbox, a second network whose
/// gateway holds a fake upstream DNS server (the only upstream of both resolvers; nothing can leave the namespace).
/// The client sends from inside its sandbox: to 127.0.0.11 (CnmSharp, in this process) and to the gateway (aardvark-dns,
/// across the bridge, as podman containers reach it). C concurrent senders, one UDP socket each, one query in flight each.
/// </summary>
internal static class DnsResolutionWorkload
{
    public const string Name = "dns";
    private const string Aardvark = "/usr/lib/podman/aardvark-dns";
    private const string LocalName = "bench-peer";
    private const string ForwardedName = "www.example.test";

    public static async Task<int> RunAsync(string[] args)
    {
        var count = Option(args, "--count", 20_000);
        var concurrency = Option(args, "--concurrency", 8);
        await using var host = await PrivateHost.CreateAsync("cnmdns").ConfigureAwait(false);
        var hostResolv = Path.Combine(host.Directory, "host-resolv.conf");
        await File.WriteAllTextAsync(hostResolv, "nameserver 10.91.0.1\n").ConfigureAwait(false);
        await using var controller = await new NetworkControllerBuilder(new CnmOptions
        {
            HostNamespacePath = host.HostPath,
            RunDirectory = Path.Combine(host.Directory, "run"),
            StateDirectory = Path.Combine(host.Directory, "state"),
            CreateDefaultNetworks = false,
            HostResolvConfPath = hostResolv,
        }).AddDriver(new BridgeDriverFactory()).UseInMemoryStore().BuildAsync().ConfigureAwait(false);
        var front = await controller.CreateNetworkAsync("bench-dns", "bridge", new NetworkCreateOptions { IPv4Config = [new IpamConfig { Subnet = "10.90.0.0/24", Gateway = "10.90.0.1" }] }).ConfigureAwait(false);
        _ = await controller.CreateNetworkAsync("bench-up", "bridge", new NetworkCreateOptions { IPv4Config = [new IpamConfig { Subnet = "10.91.0.0/24", Gateway = "10.91.0.1" }] }).ConfigureAwait(false);
        await using var upstream = await FakeDnsServer.StartAsync(new IPEndPoint(IPAddress.Parse("10.91.0.1"), 53), host.Host, host.Manager).ConfigureAwait(false);
        var sandboxes = new List<Sandbox>();
        foreach (var name in new[] { "bench-client", LocalName })
        {
            var sandbox = await controller.CreateSandboxAsync(name, new SandboxCreateOptions { DnsServers = ["10.91.0.1"] }).ConfigureAwait(false);
            await (await front.CreateEndpointAsync(name).ConfigureAwait(false)).JoinAsync(sandbox).ConfigureAwait(false);
            sandboxes.Add(sandbox);
        }

        var peer = sandboxes[1].Endpoints[0].Address!.Value.Address;
        var configDirectory = Path.Combine(host.Directory, "aardvark");
        Directory.CreateDirectory(configDirectory);
        await File.WriteAllTextAsync(
            Path.Combine(configDirectory, front.Name),
            "10.90.0.1 10.91.0.1\n" + string.Concat(sandboxes.Select(s => $"{s.Id} {s.Endpoints[0].Address!.Value.Address}  {s.ContainerId}\n"))).ConfigureAwait(false);
        await Exec.RunAsync("nsenter", ["--net=" + host.HostPath, Aardvark, "--config", configDirectory, "-p", "53", "run"]).ConfigureAwait(false);
        var aardvarkPid = await WaitForPidAsync(Path.Combine(configDirectory, "aardvark.pid")).ConfigureAwait(false);
        try
        {
            var client = sandboxes[0];
            var targets = new (string Server, IPEndPoint Endpoint)[]
            {
                ("cnmsharp", new IPEndPoint(IPAddress.Parse("127.0.0.11"), 53)),
                ("aardvark-dns", new IPEndPoint(IPAddress.Parse("10.90.0.1"), 53)),
            };
            Console.WriteLine($"dns: {count} queries per row, {concurrency} concurrent senders, from inside a sandbox; local name '{LocalName}' ({peer}), forwarded name '{ForwardedName}' (fake upstream on 10.91.0.1)");
            Console.WriteLine("| server | name | queries/s | p50 ms | p99 ms | failed |");
            Console.WriteLine("|---|---|---:|---:|---:|---:|");
            foreach (var (label, name, expected) in new[] { ("local", LocalName, peer), ("forwarded", ForwardedName, FakeDnsServer.AddressOf(ForwardedName)) })
            {
                foreach (var (server, endpoint) in targets)
                {
                    await MeasureAsync(client.Key, endpoint, name, expected, Math.Min(200, count), concurrency).ConfigureAwait(false); // warm-up
                    var r = await MeasureAsync(client.Key, endpoint, name, expected, count, concurrency).ConfigureAwait(false);
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| {server} | {label} | {r.Qps:F0} | {r.P50:F3} | {r.P99:F3} | {r.Failed} |"));
                }
            }
        }
        finally
        {
            using var aardvark = Process.GetProcessById(aardvarkPid);
            aardvark.Kill();
            await aardvark.WaitForExitAsync().ConfigureAwait(false);
        }

        return 0;
    }

    private static async Task<int> WaitForPidAsync(string path)
    {
        for (var i = 0; i < 100; i++)
        {
            if (File.Exists(path) && int.TryParse((await File.ReadAllTextAsync(path).ConfigureAwait(false)).Trim(), CultureInfo.InvariantCulture, out var pid))
            {
                return pid;
            }

            await Task.Delay(50).ConfigureAwait(false);
        }

        throw new InvalidOperationException("aardvark-dns did not write its pid file " + path);
    }

    private static async Task<(double Qps, double P50, double P99, int Failed)> MeasureAsync(string sandboxKey, IPEndPoint server, string name, IPAddress expected, int count, int concurrency)
    {
        var manager = new NetworkNamespaceManager(new NetworkNamespaceManagerOptions { RunDirectory = Path.GetDirectoryName(sandboxKey)!, MakeRunDirectoryShared = false });
        using var ns = manager.Open(sandboxKey);
        var sockets = await manager.RunInsideAsync(ns, () => Enumerable.Range(0, concurrency).Select(_ => new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp)).ToArray()).ConfigureAwait(false);
        var latencies = new double[count];
        var expectedBytes = expected.GetAddressBytes();
        var failed = 0;
        var next = -1;
        var total = Stopwatch.StartNew();
        await Task.WhenAll(sockets.Select(socket => Task.Run(async () =>
        {
            var buffer = new byte[1500];
            int i;
            while ((i = Interlocked.Increment(ref next)) < count)
            {
                var query = DnsTestMessages.Query(name, 1, id: (ushort)i);
                var start = Stopwatch.GetTimestamp();
                await socket.SendToAsync(query, SocketFlags.None, server).ConfigureAwait(false);
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
                try
                {
                    int length;
                    while (true)
                    {
                        var received = await socket.ReceiveFromAsync(buffer, SocketFlags.None, new IPEndPoint(IPAddress.Any, 0), timeout.Token).ConfigureAwait(false);
                        if (received.ReceivedBytes >= 12 && buffer[0] == query[0] && buffer[1] == query[1])
                        {
                            length = received.ReceivedBytes;
                            break;
                        }
                    }

                    latencies[i] = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
                    if ((buffer[3] & 0xF) != 0 || buffer.AsSpan(query.Length, length - query.Length).IndexOf(expectedBytes) < 0)
                    {
                        Interlocked.Increment(ref failed);
                    }
                }
                catch (OperationCanceledException)
                {
                    latencies[i] = 2000;
                    Interlocked.Increment(ref failed);
                }
            }
        }))).ConfigureAwait(false);
        total.Stop();
        foreach (var socket in sockets)
        {
            socket.Dispose();
        }

        return (count / total.Elapsed.TotalSeconds, Stats.Median(latencies), Stats.Percentile(latencies, 99), failed);
    }

    private static int Option(string[] args, string name, int fallback)
    {
        var i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1], CultureInfo.InvariantCulture) : fallback;
    }
}
