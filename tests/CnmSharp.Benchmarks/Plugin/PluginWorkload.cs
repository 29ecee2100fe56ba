using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Reflection;
using System.Runtime.InteropServices;
using CnmSharp.Plugins;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace CnmSharp.Benchmarks.Plugin;

/// <summary>
/// <c>plugin [--count N] [--calls M] [--concurrency C] [--runs R] [--cnm PATH]</c>: what Docker's plugin protocol costs.
/// <list type="number">
/// <item>One plugin call: <c>IpamDriver.GetDefaultAddressSpaces</c> (empty request, small reply) through
/// <see cref="PluginClient"/> (<see cref="RemoteIpam"/>) to <c>cnm plugin serve</c> over its unix socket, M calls one
/// after another after activation and a warm-up; median and p99 of the round trip.</item>
/// <item>Join throughput: N containers attached (endpoint create + join, C at once) by a controller whose network's
/// driver and IPAM are the plugin host (remote driver and remote IPAM, the plugin host wrapping the bridge driver and
/// the default IPAM in a separate <c>cnm plugin serve</c> process), and the same N attached by a controller with the
/// bridge driver and default IPAM in process. Each side has its own private host namespace; the sandboxes are made
/// before the timed region and removed after it, with the network.</item>
/// </list>
/// Nothing is made in the root namespace; the plugin host is stopped by its PID (SIGTERM, then SIGKILL).
/// </summary>
internal static class PluginWorkload
{
    public const string Name = "plugin";

    private const string PluginName = "cnmbp";

    private static ILoggerFactory Warnings { get; } = LoggerFactory.Create(b => b.AddSimpleConsole(o => o.SingleLine = true).AddFilter(l => l >= LogLevel.Warning));

    public static async Task<int> RunAsync(string[] args)
    {
        var count = 200;
        var calls = 5000;
        var concurrency = 4;
        var runs = 3;
        string? cnmPath = null;
        for (var a = 0; a < args.Length; a++)
        {
            switch (args[a])
            {
                case "--count" when a + 1 < args.Length:
                    count = int.Parse(args[++a], CultureInfo.InvariantCulture);
                    break;
                case "--calls" when a + 1 < args.Length:
                    calls = int.Parse(args[++a], CultureInfo.InvariantCulture);
                    break;
                case "--concurrency" when a + 1 < args.Length:
                    concurrency = int.Parse(args[++a], CultureInfo.InvariantCulture);
                    break;
                case "--runs" when a + 1 < args.Length:
                    runs = int.Parse(args[++a], CultureInfo.InvariantCulture);
                    break;
                case "--cnm" when a + 1 < args.Length:
                    cnmPath = Path.GetFullPath(args[++a]);
                    break;
                default:
                    await Console.Error.WriteLineAsync("usage: plugin [--count N] [--calls M] [--concurrency C] [--runs R] [--cnm PATH-to-cnm-or-cnm.dll]").ConfigureAwait(false);
                    return 2;
            }
        }

        if (count < 1 || count > 10000 || calls < 1 || concurrency < 1 || runs < 1)
        {
            await Console.Error.WriteLineAsync("--count must be 1..10000; --calls, --concurrency and --runs at least 1").ConfigureAwait(false);
            return 2;
        }

        if (!Environment.IsPrivilegedProcess)
        {
            await Console.Error.WriteLineAsync("plugin needs root (network namespaces).").ConfigureAwait(false);
            return 1;
        }

        var cnm = CnmCommand(cnmPath);
        if (!File.Exists(cnm.Target))
        {
            await Console.Error.WriteLineAsync($"plugin: missing {cnm.Target} (publish it: dotnet publish samples/CnmSharp.Cli -c Release; or give --cnm)").ConfigureAwait(false);
            return 1;
        }

        EndpointSetup.Interrupt.Install();
        var ct = EndpointSetup.Interrupt.Token;
        try
        {
            return await RunCoreAsync(cnm, count, calls, concurrency, runs, ct).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            await Console.Error.WriteLineAsync("plugin: interrupted; everything it made was removed").ConfigureAwait(false);
            return 130;
        }
    }

    private static async Task<int> RunCoreAsync((string File, string[] Prefix, string Target) cnm, int count, int calls, int concurrency, int runs, CancellationToken ct)
    {
        var load = (await File.ReadAllTextAsync("/proc/loadavg", ct).ConfigureAwait(false)).Trim();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{Name}: n={count} calls={calls} concurrency={concurrency} runs={runs} plugin host=\"{string.Join(' ', [cnm.File, .. cnm.Prefix])} plugin serve --driver bridge --ipam-driver default\" cores={Environment.ProcessorCount} kernel={Environment.OSVersion.Version} runtime={RuntimeInformation.FrameworkDescription} {DateTime.UtcNow:yyyy-MM-dd HH:mm}Z load={load}"));

        await using var remoteHost = await PrivateHost.CreateAsync("cnmpl").ConfigureAwait(false);
        await using var localHost = await PrivateHost.CreateAsync("cnmpi").ConfigureAwait(false);
        var pluginDirectory = Path.Combine(remoteHost.Directory, "plugins");
        Directory.CreateDirectory(pluginDirectory);
        var socket = Path.Combine(pluginDirectory, PluginName + ".sock");
        await using var pluginHost = await PluginHostProcess.StartAsync(cnm, remoteHost, socket, ct).ConfigureAwait(false);

        // 1. One call over the socket.
        var (medianUs, p99Us) = await MeasureCallsAsync(socket, calls, ct).ConfigureAwait(false);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  call IpamDriver.GetDefaultAddressSpaces: median {medianUs:F1} us, p99 {p99Us:F1} us over {calls} calls"));

        // 2. Joins: remote (through the plugin host) and in process, alternating, R runs each.
        await using var remote = await JoinSide.StartAsync("remote", remoteHost, PluginName, PluginName, "10.90.0.0/16", pluginDirectory, ct).ConfigureAwait(false);
        await using var local = await JoinSide.StartAsync("in-process", localHost, "bridge", null, "10.91.0.0/16", null, ct).ConfigureAwait(false);

        // Warm-up, not reported: JIT, the plugin host's first calls.
        _ = await remote.RunAsync(Math.Min(count, 5), concurrency, 0, ct).ConfigureAwait(false);
        _ = await local.RunAsync(Math.Min(count, 5), concurrency, 0, ct).ConfigureAwait(false);
        var remoteRates = new List<double>();
        var localRates = new List<double>();
        for (var run = 1; run <= runs; run++)
        {
            foreach (var (side, rates) in new[] { (remote, remoteRates), (local, localRates) })
            {
                var rate = await side.RunAsync(count, concurrency, run, ct).ConfigureAwait(false);
                rates.Add(rate);
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  run {run} {side.Name,-10} {count} joins, {concurrency} at once: {rate:F1} joins/s"));
            }
        }

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{Name} n={count} calls={calls} concurrency={concurrency} call_median_us={medianUs:F1} call_p99_us={p99Us:F1} remote_join_per_s={Stats.Median(remoteRates):F1} inprocess_join_per_s={Stats.Median(localRates):F1}"));
        return 0;
    }

    private static async Task<(double MedianUs, double P99Us)> MeasureCallsAsync(string socket, int calls, CancellationToken ct)
    {
        var spec = new PluginSpec(PluginName, new Uri("unix://" + socket), socket);
        using var client = new PluginClient(spec, new PluginOptions { RetryDelays = [] }, NullLogger.Instance);
        var ipam = await RemoteIpam.CreateAsync(client, NullLogger.Instance, ct).ConfigureAwait(false);
        for (var i = 0; i < Math.Min(calls, 200); i++)
        {
            _ = await ipam.GetDefaultAddressSpacesAsync(ct).ConfigureAwait(false);
        }

        var times = new double[calls];
        for (var i = 0; i < calls; i++)
        {
            var start = Stopwatch.GetTimestamp();
            _ = await ipam.GetDefaultAddressSpacesAsync(ct).ConfigureAwait(false);
            times[i] = Stopwatch.GetElapsedTime(start).TotalMicroseconds;
        }

        return (Stats.Median(times), Stats.Percentile(times, 99));
    }

    private static (string File, string[] Prefix, string Target) CnmCommand(string? given)
    {
        if (given is null)
        {
            // The Native AOT executable users install (docs/cli.md): `dotnet publish samples/CnmSharp.Cli -c Release`.
            var dir = typeof(PluginWorkload).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == "CnmPublishDirectory").Value!;
            given = Path.Combine(dir, "cnm");
        }

        return given.EndsWith(".dll", StringComparison.Ordinal) ? ("dotnet", [given], given) : (given, [], given);
    }

    /// <summary>One side of the join comparison: a controller in its own private host namespace with one network.</summary>
    private sealed class JoinSide : IAsyncDisposable
    {
        private readonly PrivateHost _host;
        private readonly NetworkController _controller;
        private readonly Network _network;
        private readonly string _subnetPrefix;

        private JoinSide(string name, PrivateHost host, NetworkController controller, Network network, string subnetPrefix)
        {
            Name = name;
            _host = host;
            _controller = controller;
            _network = network;
            _subnetPrefix = subnetPrefix;
        }

        public string Name { get; }

        public static async Task<JoinSide> StartAsync(string name, PrivateHost host, string driver, string? ipam, string subnet, string? pluginDirectory, CancellationToken ct)
        {
            var stateDirectory = Path.Combine(host.Directory, "client-state");
            var runDirectory = Path.Combine(host.Directory, "client-run");
            Directory.CreateDirectory(stateDirectory);
            var controller = await new NetworkControllerBuilder()
                .Configure(o =>
                {
                    o.HostNamespacePath = host.HostPath;
                    o.RunDirectory = runDirectory;
                    o.StateDirectory = stateDirectory;
                    o.CreateDefaultNetworks = false;
                    o.Plugins.SocketDirectories = pluginDirectory is null ? [] : [pluginDirectory];
                    o.Plugins.SpecDirectories = [];
                    o.Plugins.RetryDelays = [];
                })
                .UseLoggerFactory(Warnings)
                .BuildAsync(ct).ConfigureAwait(false);
            try
            {
                var network = await controller.CreateNetworkAsync("pjoin", driver, new NetworkCreateOptions
                {
                    IpamDriver = ipam,
                    IPv4Config = [new IpamConfig { Subnet = subnet }],
                }, ct).ConfigureAwait(false);
                return new JoinSide(name, host, controller, network, subnet[..subnet.IndexOf(".0.0/", StringComparison.Ordinal)] + ".");
            }
            catch
            {
                await controller.DisposeAsync().ConfigureAwait(false);
                throw;
            }
        }

        /// <summary>Makes <paramref name="count"/> sandboxes (not timed), attaches each (endpoint create + join,
        /// <paramref name="concurrency"/> at once; timed), checks one, removes them all (not timed). Returns joins/s.</summary>
        public async Task<double> RunAsync(int count, int concurrency, int run, CancellationToken ct)
        {
            var sandboxes = new Sandbox?[count];
            try
            {
                for (var i = 0; i < count; i++)
                {
                    sandboxes[i] = await _controller.CreateSandboxAsync(string.Create(CultureInfo.InvariantCulture, $"{_host.Tag}-r{run}-{i}"), cancellationToken: ct).ConfigureAwait(false);
                }

                var next = -1;
                var watch = Stopwatch.StartNew();
                await Task.WhenAll(Enumerable.Range(0, concurrency).Select(async _ =>
                {
                    int i;
                    while ((i = Interlocked.Increment(ref next)) < count)
                    {
                        var endpoint = await _network.CreateEndpointAsync(string.Create(CultureInfo.InvariantCulture, $"r{run}e{i}"), cancellationToken: ct).ConfigureAwait(false);
                        await endpoint.JoinAsync(sandboxes[i]!, cancellationToken: ct).ConfigureAwait(false);
                    }
                })).ConfigureAwait(false);
                var seconds = watch.Elapsed.TotalSeconds;

                var addresses = await Exec.RunAsync("nsenter", [$"--net={sandboxes[count - 1]!.Key}", "ip", "-o", "-4", "addr", "show"], cancellationToken: ct).ConfigureAwait(false);
                if (!addresses.Contains("inet " + _subnetPrefix, StringComparison.Ordinal))
                {
                    throw new InvalidOperationException($"{Name}: the last sandbox has no address in {_subnetPrefix}0.0/16: {addresses}");
                }

                return count / seconds;
            }
            finally
            {
                foreach (var sandbox in sandboxes.OfType<Sandbox>())
                {
                    await sandbox.DeleteAsync(CancellationToken.None).ConfigureAwait(false);
                }

                await _controller.WaitForTeardownsAsync(CancellationToken.None).ConfigureAwait(false);
            }
        }

        public async ValueTask DisposeAsync()
        {
            try
            {
                await _controller.WaitForTeardownsAsync(CancellationToken.None).ConfigureAwait(false);
                await _network.DeleteAsync(CancellationToken.None).ConfigureAwait(false);
            }
            finally
            {
                await _controller.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    /// <summary><c>cnm plugin serve</c> as a separate process in the private host namespace, with its own state and
    /// run directories; stopped by its PID.</summary>
    private sealed class PluginHostProcess : IAsyncDisposable
    {
        private readonly Process _process;
        private readonly Task<string> _stderr;

        private PluginHostProcess(Process process)
        {
            _process = process;
            _stderr = process.StandardError.ReadToEndAsync(CancellationToken.None);
            _ = process.StandardOutput.ReadToEndAsync(CancellationToken.None);
        }

        public static async Task<PluginHostProcess> StartAsync((string File, string[] Prefix, string Target) cnm, PrivateHost host, string socket, CancellationToken ct)
        {
            var start = new ProcessStartInfo(cnm.File)
            {
                UseShellExecute = false,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            };
            foreach (var arg in (string[])[
                .. cnm.Prefix,
                "--state-dir", Path.Combine(host.Directory, "plugin-state"), "--run-dir", Path.Combine(host.Directory, "plugin-run"), "--host-netns", host.HostPath,
                "plugin", "serve", "--name", PluginName, "--driver", "bridge", "--ipam-driver", "default", "--socket", socket])
            {
                start.ArgumentList.Add(arg);
            }

            var plugin = new PluginHostProcess(Process.Start(start) ?? throw new InvalidOperationException("cannot start cnm plugin serve"));
            try
            {
                var watch = Stopwatch.StartNew();
                while (!Accepts(socket))
                {
                    if (plugin._process.HasExited)
                    {
                        throw new InvalidOperationException($"cnm plugin serve exited {plugin._process.ExitCode} at start: {await plugin._stderr.ConfigureAwait(false)}");
                    }

                    if (watch.Elapsed > TimeSpan.FromSeconds(60))
                    {
                        throw new InvalidOperationException($"cnm plugin serve did not listen on {socket} within 60 s");
                    }

                    await Task.Delay(20, ct).ConfigureAwait(false);
                }
            }
            catch
            {
                await plugin.DisposeAsync().ConfigureAwait(false);
                throw;
            }

            return plugin;
        }

        private static bool Accepts(string socket)
        {
            if (!File.Exists(socket))
            {
                return false;
            }

            try
            {
                using var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                s.Connect(new UnixDomainSocketEndPoint(socket));
                return true;
            }
            catch (SocketException)
            {
                return false;
            }
        }

        public async ValueTask DisposeAsync()
        {
            if (!_process.HasExited)
            {
                await Exec.RunAsync("kill", ["-TERM", _process.Id.ToString(CultureInfo.InvariantCulture)]).ConfigureAwait(false);
                using var wait = new CancellationTokenSource(TimeSpan.FromSeconds(30));
                try
                {
                    await _process.WaitForExitAsync(wait.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    await Console.Error.WriteLineAsync("plugin: cnm plugin serve still running 30 s after SIGTERM: SIGKILL").ConfigureAwait(false);
                    _process.Kill();
                    await _process.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
                }
            }

            if (_process.ExitCode != 0)
            {
                await Console.Error.WriteLineAsync($"plugin: cnm plugin serve exited {_process.ExitCode}: {await _stderr.ConfigureAwait(false)}").ConfigureAwait(false);
            }

            _process.Dispose();
        }
    }
}
