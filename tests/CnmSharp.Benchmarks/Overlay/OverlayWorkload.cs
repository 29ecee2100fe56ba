using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Runtime.InteropServices;
using CnmSharp.Netlink;
using CnmSharp.Store;
using CnmSharp.Store.Etcd;
using CnmSharp.Testing;

namespace CnmSharp.Benchmarks.Overlay;

/// <summary>
/// <c>overlay [--n N[,N...]] [--joins J]</c>: three simulated hosts (a namespace each, with a leg on a bridge in a
/// private underlay namespace H, 192.168.77.1-3), one etcd on loopback (Debian's <c>etcd-server</c>, started and killed
/// by the workload), three controllers in this process (each with its own in-memory local store and etcd connection),
/// one overlay network. N sandboxes per host are joined first; then J sandboxes are joined on host 1, one at a time,
/// and for each the time from the join's call (<c>Endpoint.JoinAsync</c>) to the first echo reply a sandbox on host 3
/// gets from it is taken: echo requests every 2 ms from a raw socket inside that sandbox, from just before the join
/// (the address is known at endpoint create); the probe's ARP retransmit time is set to 2 ms (and its tries to 1000),
/// so a request made before host 3 programmed the peer does not wait the default second. Also the etcd revisions (committed write transactions,
/// whoever made them) per attach (endpoint create + join). One summary line per N.
/// </summary>
internal static class OverlayWorkload
{
    public const string Name = "overlay";

    private const string Usage = "usage: overlay [--n N[,N...]] [--joins J]";

    public static async Task<int> RunAsync(string[] args)
    {
        var counts = new List<int> { 10, 200 };
        var joins = 20;
        for (var a = 0; a < args.Length; a++)
        {
            switch (args[a])
            {
                case "--n" when a + 1 < args.Length:
                    counts = [];
                    foreach (var part in args[++a].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
                    {
                        if (!int.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out var n) || n < 1 || n > 1000)
                        {
                            await Console.Error.WriteLineAsync("overlay: each --n must be 1..1000").ConfigureAwait(false);
                            return 2;
                        }

                        counts.Add(n);
                    }

                    break;
                case "--joins" when a + 1 < args.Length && int.TryParse(args[a + 1], NumberStyles.None, CultureInfo.InvariantCulture, out joins) && joins >= 1:
                    a++;
                    break;
                default:
                    await Console.Error.WriteLineAsync(Usage).ConfigureAwait(false);
                    return 2;
            }
        }

        if (!Environment.IsPrivilegedProcess)
        {
            await Console.Error.WriteLineAsync("overlay needs root (it creates network namespaces).").ConfigureAwait(false);
            return 1;
        }

        if (!File.Exists("/usr/bin/etcd"))
        {
            await Console.Error.WriteLineAsync("overlay: /usr/bin/etcd is missing; install etcd-server (`sudo bash .ci/setup`)").ConfigureAwait(false);
            return 1;
        }

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{Name}: n={string.Join(',', counts)} joins={joins} 3 hosts (namespaces on an underlay bridge), 1 etcd member on loopback, 3 controllers in process; cores={Environment.ProcessorCount} kernel={Environment.OSVersion.Version} runtime={RuntimeInformation.FrameworkDescription} {DateTime.UtcNow:yyyy-MM-dd HH:mm}Z"));
        var summaries = new List<string>();
        foreach (var n in counts)
        {
            var root = await RootNamespaceCheck.TakeAsync().ConfigureAwait(false);
            string directory;
            string hostPath;
            Result result;
            await using (var lab = await OverlayBenchLab.CreateAsync().ConfigureAwait(false))
            {
                directory = lab.Host.Directory;
                hostPath = lab.Host.HostPath;
                result = await RunPassAsync(lab, n, joins).ConfigureAwait(false);
            }

            await root.AssertUnchangedAsync(directory, hostPath, Name).ConfigureAwait(false);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  n={n}: preload {result.PreloadSeconds:F1} s; join median {Stats.Median(result.JoinMs):F2} ms p99 {Stats.Percentile(result.JoinMs, 99):F2} ms; etcd writes per endpoint create {result.CreateWrites:F2}, per join {result.JoinWrites:F2}"));
            summaries.Add(string.Create(CultureInfo.InvariantCulture,
                $"overlay n={n} joins={joins} first_ping_median_ms={Stats.Median(result.FirstPingMs):F2} first_ping_p99_ms={Stats.Percentile(result.FirstPingMs, 99):F2} etcd_writes_per_join={result.CreateWrites + result.JoinWrites:F2}"));
        }

        foreach (var line in summaries)
        {
            Console.WriteLine(line);
        }

        return 0;
    }

    private sealed record Result(double PreloadSeconds, IReadOnlyList<double> JoinMs, IReadOnlyList<double> FirstPingMs, double CreateWrites, double JoinWrites);

    private static async Task<Result> RunPassAsync(OverlayBenchLab lab, int n, int joins)
    {
        var c1 = lab.Controllers[0];
        var network = await c1.CreateNetworkAsync("bench-ov", "overlay", new NetworkCreateOptions { IPv4Config = [new IpamConfig { Subnet = "10.96.0.0/16" }] }).ConfigureAwait(false);

        // The other hosts learn the network from etcd.
        var networks = new Network[3];
        networks[0] = network;
        for (var i = 1; i < 3; i++)
        {
            var deadline = Stopwatch.StartNew();
            while ((networks[i] = lab.Controllers[i].FindNetworkByName("bench-ov")!) is null)
            {
                if (deadline.Elapsed > TimeSpan.FromSeconds(30))
                {
                    throw new InvalidOperationException($"host{i + 1} never saw the overlay network");
                }

                await Task.Delay(20).ConfigureAwait(false);
            }
        }

        var preload = Stopwatch.StartNew();
        var probes = await Task.WhenAll(Enumerable.Range(0, 3).Select(async h =>
        {
            Sandbox? first = null;
            for (var i = 0; i < n; i++)
            {
                var sandbox = await AttachAsync(lab.Controllers[h], networks[h], $"pre-h{h + 1}-{i}").ConfigureAwait(false);
                first ??= sandbox;
            }

            return first!;
        })).ConfigureAwait(false);
        var preloadSeconds = preload.Elapsed.TotalSeconds;

        // The probe: host 3's first sandbox, its ARP retransmit time made short (its own namespace).
        var probe = probes[2];
        var probeInterface = probe.Endpoints.First(e => e.Network.Id == network.Id).InterfaceName!;
        await Exec.RunAsync("nsenter", [$"--net={probe.Key}", "sysctl", "-q", "-w", $"net.ipv4.neigh.{probeInterface}.retrans_time_ms=2"]).ConfigureAwait(false);
        await Exec.RunAsync("nsenter", [$"--net={probe.Key}", "sysctl", "-q", "-w", $"net.ipv4.neigh.{probeInterface}.mcast_solicit=1000"]).ConfigureAwait(false);
        using var pinger = NamespacePinger.Open(probe.Key);

        // Host 3's sandboxes must already be reachable from host 1 (a preloaded pair answers).
        var warm = await AttachAsync(c1, network, "warm").ConfigureAwait(false);
        var warmAddress = warm.Endpoints.First(e => e.Network.Id == network.Id).Address!.Value.Address;
        try
        {
            _ = await pinger.PingUntilAnsweredAsync(warmAddress, TimeSpan.FromSeconds(30)).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            var (ping, _) = await Exec.RunWithErrorAsync("sh", ["-c", $"nsenter --net={probe.Key} ping -c2 -W1 {warmAddress}; nsenter --net={probe.Key} ip neigh; nsenter --net={probe.Key} ip -br addr; nsenter --net={probe.Key} ip route; true"]).ConfigureAwait(false);
            throw new InvalidOperationException($"no echo reply from {warmAddress} (host 1) to host 3's probe in 30 s; ping(8) from the probe says:\n{ping}");
        }

        var revisions = lab.Revisions;
        var joinMs = new List<double>();
        var pingMs = new List<double>();
        long createWrites = 0, joinWrites = 0;
        for (var j = 0; j < joins; j++)
        {
            var sandbox = await c1.CreateSandboxAsync($"m-{j}").ConfigureAwait(false);
            var r0 = await revisions.GetRevisionAsync().ConfigureAwait(false);
            var endpoint = await network.CreateEndpointAsync($"m-{j}").ConfigureAwait(false);
            var r1 = await revisions.GetRevisionAsync().ConfigureAwait(false);
            // The probe asks from just before the join: the first reply tells when the path really works.
            var start = Stopwatch.GetTimestamp();
            var ping = pinger.PingUntilAnsweredAsync(endpoint.Address!.Value.Address, TimeSpan.FromSeconds(30));
            await endpoint.JoinAsync(sandbox).ConfigureAwait(false);
            var joined = Stopwatch.GetTimestamp();
            var answered = await ping.ConfigureAwait(false);
            var r2 = await revisions.GetRevisionAsync().ConfigureAwait(false);
            joinMs.Add(Stopwatch.GetElapsedTime(start, joined).TotalMilliseconds);
            pingMs.Add(Stopwatch.GetElapsedTime(start, answered).TotalMilliseconds);
            createWrites += r1 - r0;
            joinWrites += r2 - r1;
        }

        // Teardown through the API, so the pass's check finds nothing left.
        foreach (var controller in lab.Controllers)
        {
            foreach (var sandbox in controller.Sandboxes.ToArray())
            {
                await sandbox.DeleteAsync().ConfigureAwait(false);
            }

            await controller.WaitForTeardownsAsync().ConfigureAwait(false);
        }

        return new Result(preloadSeconds, joinMs, pingMs, (double)createWrites / joins, (double)joinWrites / joins);
    }

    private static async Task<Sandbox> AttachAsync(NetworkController controller, Network network, string name)
    {
        var sandbox = await controller.CreateSandboxAsync(name).ConfigureAwait(false);
        var endpoint = await network.CreateEndpointAsync(name).ConfigureAwait(false);
        await endpoint.JoinAsync(sandbox).ConfigureAwait(false);
        return sandbox;
    }
}

/// <summary>
/// The three hosts: H (a <see cref="PrivateHost"/>) holds the underlay bridge <c>ulbr</c>; each host namespace (made in
/// H's private directory) has a veth leg <c>ul0</c> on it; etcd runs on loopback with its own temporary directory.
/// Disposing stops the controllers, etcd, and removes every namespace and directory it made.
/// </summary>
internal sealed class OverlayBenchLab : IAsyncDisposable
{
    private readonly List<NetworkNamespace> _hosts = [];
    private EtcdCluster? _etcd;

    private OverlayBenchLab(PrivateHost host) => Host = host;

    public PrivateHost Host { get; }

    public List<NetworkController> Controllers { get; } = [];

    /// <summary>A connection of the workload's own, for the store revision.</summary>
    public EtcdKeyValueStore Revisions { get; private set; } = null!;

    public static async Task<OverlayBenchLab> CreateAsync()
    {
        var lab = new OverlayBenchLab(await PrivateHost.CreateAsync("cnmbov").ConfigureAwait(false));
        try
        {
            await lab.BuildAsync().ConfigureAwait(false);
            return lab;
        }
        catch
        {
            await lab.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private async Task BuildAsync()
    {
        using (var underlay = RtnetlinkClient.Open(Host.Host.Handle))
        {
            await underlay.CreateLinkAsync(new BridgeLinkSpec("ulbr") { Up = true }).ConfigureAwait(false);
        }

        _etcd = await EtcdCluster.StartAsync(1).ConfigureAwait(false);
        var prefix = Host.Tag + "/";
        for (var i = 1; i <= 3; i++)
        {
            var ns = await Host.Manager.CreateAsync($"{Host.Tag}-h{i}").ConfigureAwait(false);
            _hosts.Add(ns);
            using (var underlay = RtnetlinkClient.Open(Host.Host.Handle))
            {
                var bridge = await underlay.GetLinkAsync("ulbr").ConfigureAwait(false) ?? throw new InvalidOperationException("no ulbr");
                await underlay.CreateLinkAsync(new VethLinkSpec("ulp" + i, "ul0") { PeerNamespace = ns.Handle, MasterIndex = bridge.Index, Up = true }).ConfigureAwait(false);
            }

            await Exec.IpAsync(ns.Path!, "link", "set", "lo", "up").ConfigureAwait(false);
            await Exec.IpAsync(ns.Path!, "addr", "add", $"192.168.77.{i}/24", "dev", "ul0").ConfigureAwait(false);
            await Exec.IpAsync(ns.Path!, "link", "set", "ul0", "up").ConfigureAwait(false);

            var etcdOptions = new EtcdStoreOptions { KeyPrefix = prefix };
            etcdOptions.Endpoints.Add(_etcd.ClientUrls[0]);
            var dir = Path.Combine(Host.Directory, "h" + i);
            Controllers.Add(await new NetworkControllerBuilder(new CnmOptions
            {
                HostNamespacePath = ns.Path,
                RunDirectory = Path.Combine(dir, "run"),
                StateDirectory = Path.Combine(dir, "state"),
                CreateDefaultNetworks = false,
                AdvertiseAddress = $"192.168.77.{i}",
                Cluster = { NodeName = "host" + i },
            })
                .UseStore(new InMemoryKeyValueStore())
                .UseEtcdGlobalStore(etcdOptions)
                .BuildAsync().ConfigureAwait(false));
        }

        var options = new EtcdStoreOptions { KeyPrefix = prefix };
        options.Endpoints.Add(_etcd.ClientUrls[0]);
        Revisions = await EtcdKeyValueStore.ConnectAsync(options).ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        // The networks go through the API (their namespaces and devices with them); the last host frees the VNI.
        foreach (var controller in Controllers)
        {
            foreach (var network in controller.Networks.ToArray())
            {
                try
                {
                    await network.DeleteAsync().ConfigureAwait(false);
                }
                catch (CnmException)
                {
                    // The namespaces go below anyway.
                }
            }
        }

        foreach (var controller in Controllers)
        {
            await controller.DisposeAsync().ConfigureAwait(false);
        }

        if (Revisions is not null)
        {
            await Revisions.DisposeAsync().ConfigureAwait(false);
        }

        if (_etcd is not null)
        {
            await _etcd.DisposeAsync().ConfigureAwait(false);
        }

        foreach (var ns in _hosts)
        {
            ns.Dispose();
        }

        await Host.DisposeAsync().ConfigureAwait(false);
    }
}

/// <summary>A raw ICMP socket made inside a sandbox's namespace (on a thread of its own that enters the namespace and
/// then ends), for echo requests from that sandbox.</summary>
internal sealed partial class NamespacePinger : IDisposable
{
    private const int CloneNewNet = 0x40000000;
    private readonly System.Net.Sockets.Socket _socket;
    private readonly ushort _id = (ushort)Random.Shared.Next(1, ushort.MaxValue);
    private ushort _sequence;

    private NamespacePinger(System.Net.Sockets.Socket socket) => _socket = socket;

    public static NamespacePinger Open(string namespacePath)
    {
        System.Net.Sockets.Socket? socket = null;
        Exception? error = null;
        var thread = new Thread(() =>
        {
            var fd = OpenFile(namespacePath, 0x80000 /* O_RDONLY | O_CLOEXEC */);
            try
            {
                if (fd < 0 || SetNamespace(fd, CloneNewNet) != 0)
                {
                    throw new IOException($"cannot enter {namespacePath}: errno {Marshal.GetLastPInvokeError()}");
                }

                socket = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.InterNetwork, System.Net.Sockets.SocketType.Raw, System.Net.Sockets.ProtocolType.Icmp);
            }
            catch (Exception ex)
            {
                error = ex;
            }
            finally
            {
                if (fd >= 0)
                {
                    _ = CloseFile(fd);
                }
            }
        });
        thread.Start();
        thread.Join();
        return socket is not null ? new NamespacePinger(socket) : throw new InvalidOperationException("cannot open the ping socket", error);
    }

    /// <summary>Sends an echo request every 2 ms until a reply from <paramref name="target"/> arrives; returns the
    /// <see cref="Stopwatch"/> timestamp of its arrival.</summary>
    public async Task<long> PingUntilAnsweredAsync(IPAddress target, TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        var receive = ReceiveReplyAsync(target, cts.Token);
        var request = new byte[16];
        while (!receive.IsCompleted)
        {
            var sequence = ++_sequence;
            request.AsSpan().Clear();
            request[0] = 8;
            request[4] = (byte)(_id >> 8);
            request[5] = (byte)_id;
            request[6] = (byte)(sequence >> 8);
            request[7] = (byte)sequence;
            var checksum = Checksum(request);
            request[2] = (byte)(checksum >> 8);
            request[3] = (byte)checksum;
            try
            {
                await _socket.SendToAsync(request, System.Net.Sockets.SocketFlags.None, new IPEndPoint(target, 0), cts.Token).ConfigureAwait(false);
            }
            catch (System.Net.Sockets.SocketException)
            {
                // EHOSTUNREACH after a failed ARP round: keep asking.
            }
            catch (OperationCanceledException)
            {
                break;
            }

            await Task.WhenAny(receive, Task.Delay(2, CancellationToken.None)).ConfigureAwait(false);
        }

        return await receive.ConfigureAwait(false);
    }

    private async Task<long> ReceiveReplyAsync(IPAddress target, CancellationToken cancellationToken)
    {
        var buffer = new byte[1500];
        var wanted = target.GetAddressBytes();
        while (true)
        {
            var received = await _socket.ReceiveAsync(buffer, System.Net.Sockets.SocketFlags.None, cancellationToken).ConfigureAwait(false);
            var at = Stopwatch.GetTimestamp();
            var headerLength = (buffer[0] & 0x0f) * 4;
            if (received >= headerLength + 8
                && buffer[headerLength] == 0
                && buffer[headerLength + 4] == (byte)(_id >> 8) && buffer[headerLength + 5] == (byte)_id
                && buffer.AsSpan(12, 4).SequenceEqual(wanted))
            {
                return at;
            }
        }
    }

    private static ushort Checksum(ReadOnlySpan<byte> data)
    {
        uint sum = 0;
        for (var i = 0; i + 1 < data.Length; i += 2)
        {
            sum += (uint)(data[i] << 8 | data[i + 1]);
        }

        while (sum >> 16 != 0)
        {
            sum = (sum & 0xffff) + (sum >> 16);
        }

        return (ushort)~sum;
    }

    public void Dispose() => _socket.Dispose();

    [LibraryImport("libc", EntryPoint = "setns", SetLastError = true)]
    private static partial int SetNamespace(int fd, int type);

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int OpenFile(string path, int flags);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int CloseFile(int fd);
}
