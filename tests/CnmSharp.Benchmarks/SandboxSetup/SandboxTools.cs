using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text.Json.Nodes;
using CnmSharp.Diagnostics;
using CnmSharp.Sandboxes;
using CnmSharp.Sandboxes.Files;
using CnmSharp.Store;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace CnmSharp.Benchmarks.SandboxSetup;

/// <summary>One tool that attaches containers to a bridge network with its firewall work on.</summary>
internal abstract class SandboxTool
{
    public abstract string Key { get; }

    public abstract string Name { get; }

    /// <summary>Container operations in flight at once.</summary>
    public virtual int Parallelism => 1;

    /// <summary>Creates the network inside <paramref name="host"/> (not timed).</summary>
    public abstract Task<SandboxSession> StartAsync(PrivateHost host, int count);
}

/// <summary>One network of one tool in one pass: attach and detach container i, check, clean up.</summary>
internal abstract class SandboxSession(PrivateHost host) : IAsyncDisposable
{
    public PrivateHost Host { get; } = host;

    /// <summary>The bridge of the network in H.</summary>
    public abstract string Bridge { get; }

    public abstract string Gateway { get; }

    public abstract Task AttachAsync(int i);

    public abstract Task DetachAsync(int i);

    /// <summary>After every container is detached: waits for work the tool finishes in the background (timed).</summary>
    public virtual Task SettleAsync() => Task.CompletedTask;

    /// <summary>The namespace file of container i (while attached).</summary>
    public abstract string ContainerPath(int i);

    /// <summary>Peak RSS (KiB) of the tool's processes for one extra container, or null when the tool runs in-process.</summary>
    public virtual Task<long?> ChildPeakRssKibAsync(int extra) => Task.FromResult<long?>(null);

    public virtual ValueTask DisposeAsync() => ValueTask.CompletedTask;

    protected static string Id(string tag, int i) => string.Create(CultureInfo.InvariantCulture, $"{tag}-c{i}");

    /// <summary>Container i of a /16 whose gateway is x.y.0.1: x.y.0.2 + i.</summary>
    protected static string AddressIn(string gateway, int i)
    {
        var b = IPAddress.Parse(gateway).GetAddressBytes();
        var n = i + 2;
        return new IPAddress([b[0], b[1], (byte)(n >> 8), (byte)n]).ToString();
    }
}

/// <summary>
/// CnmSharp in process: a <see cref="NetworkController"/> whose host namespace is H, its default iptables firewall
/// backend (acting in H), the embedded store under the pass's directory, one bridge network with default options
/// (ICC + masquerade). Attach: create sandbox + create endpoint + join; detach: <see cref="Sandbox.DeleteAsync"/>.
/// The controller's own seams (namespaces, sandbox files, store) are the real implementations wrapped in stopwatches,
/// and its activity spans are collected, to show where its time goes.
/// </summary>
internal sealed class CnmSharpSandboxTool(int parallelism) : SandboxTool
{
    public override string Key => parallelism == 1 ? "cnmsharp-seq" : "cnmsharp";

    public override string Name => parallelism == 1 ? "CnmSharp (sequential)" : string.Create(CultureInfo.InvariantCulture, $"CnmSharp ({parallelism} in flight)");

    public override int Parallelism => parallelism;

    /// <summary>Durations (ms) of controller operations (activity spans) and of its seams, by name.</summary>
    public SpanRecorder Spans { get; } = new();

    /// <summary>The controller's warnings (a reap timeout, a failed teardown) go to stderr: a run that had one says so.</summary>
    private static ILoggerFactory Warnings { get; } = LoggerFactory.Create(b => b.AddSimpleConsole(o => o.SingleLine = true).AddFilter(l => l >= LogLevel.Warning));

    public override async Task<SandboxSession> StartAsync(PrivateHost host, int count)
    {
        Spans.Pass++;
        var stateDirectory = Path.Combine(host.Directory, "cnm-state");
        Directory.CreateDirectory(stateDirectory);

        // The same store the builder opens by default (SqliteDurability.ProcessCrash), behind a stopwatch.
        var store = new TimedStore(await SqliteKeyValueStore.OpenAsync(new SqliteStoreOptions { Path = Path.Combine(stateDirectory, "cnm.db"), Durability = SqliteDurability.ProcessCrash }).ConfigureAwait(false), Spans);
        var runDirectory = Path.Combine(host.Directory, "cnm-run");
        var networking = new TimedSandboxNetworking(new LinuxSandboxNetworking(host.HostPath, Path.Combine(runDirectory, "netns"), NullLoggerFactory.Instance), Spans);
        NetworkController controller;
        try
        {
            controller = await new NetworkControllerBuilder()
                .Configure(o =>
                {
                    o.HostNamespacePath = host.HostPath;
                    o.RunDirectory = runDirectory;
                    o.StateDirectory = stateDirectory;
                    o.CreateDefaultNetworks = false;
                })
                .UseStore(_ => ValueTask.FromResult<IKeyValueStore>(store))
                .UseSandboxNetworking(networking)
                .UseSandboxFiles(new TimedSandboxFiles(new SandboxFiles(Path.Combine(runDirectory, "sandboxes")), Spans))
                .UseLoggerFactory(Warnings)
                .BuildAsync().ConfigureAwait(false);
        }
        catch
        {
            await store.DisposeAsync().ConfigureAwait(false);
            await networking.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        try
        {
            var network = await controller.CreateNetworkAsync("sbnet", "bridge", new NetworkCreateOptions
            {
                IPv4Config = [new IpamConfig { Subnet = "10.88.0.0/16", Gateway = "10.88.0.1" }],
                DriverOptions = new Dictionary<string, string>(StringComparer.Ordinal) { ["com.docker.network.bridge.name"] = "cnmbr0" },
            }).ConfigureAwait(false);
            return new Session(host, controller, networking, network, count, Spans);
        }
        catch
        {
            await controller.DisposeAsync().ConfigureAwait(false);
            await networking.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private sealed class Session : SandboxSession
    {
        private readonly NetworkController _controller;
        private readonly TimedSandboxNetworking _networking;
        private readonly Network _network;
        private readonly Sandbox?[] _sandboxes;
        private readonly string?[] _paths;
        private readonly ActivityListener _listener;

        public Session(PrivateHost host, NetworkController controller, TimedSandboxNetworking networking, Network network, int count, SpanRecorder spans)
            : base(host)
        {
            _controller = controller;
            _networking = networking;
            _network = network;
            _sandboxes = new Sandbox?[count + 1];
            _paths = new string?[count + 1];
            _listener = new ActivityListener
            {
                ShouldListenTo = s => s.Name == CnmTelemetry.ActivitySourceName,
                Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllData,
                ActivityStopped = a => spans.Add(a.OperationName, a.Duration.TotalMilliseconds),
            };
            ActivitySource.AddActivityListener(_listener);
        }

        public override string Bridge => "cnmbr0";

        public override string Gateway => "10.88.0.1";

        public override string ContainerPath(int i) => _paths[i]!;

        public override async Task AttachAsync(int i)
        {
            var sandbox = await _controller.CreateSandboxAsync(Id(Host.Tag, i)).ConfigureAwait(false);
            _sandboxes[i] = sandbox;
            _paths[i] = sandbox.Key;
            var endpoint = await _network.CreateEndpointAsync(string.Create(CultureInfo.InvariantCulture, $"ep{i}")).ConfigureAwait(false);
            await endpoint.JoinAsync(sandbox).ConfigureAwait(false);
        }

        public override async Task DetachAsync(int i)
        {
            await _sandboxes[i]!.DeleteAsync().ConfigureAwait(false);
            _sandboxes[i] = null;
        }

        /// <summary>The endpoints' teardowns (kernel reap, record, address release) run after the sandbox deletes
        /// return; the detach phase includes them.</summary>
        public override async Task SettleAsync() => await _controller.WaitForTeardownsAsync().ConfigureAwait(false);

        public override async ValueTask DisposeAsync()
        {
            _listener.Dispose();
            try
            {
                await _network.DeleteAsync().ConfigureAwait(false);
            }
            finally
            {
                await _controller.DisposeAsync().ConfigureAwait(false);
                await _networking.DisposeAsync().ConfigureAwait(false);
                await base.DisposeAsync().ConfigureAwait(false);
            }
        }
    }
}

/// <summary>
/// netavark with <c>NETAVARK_FW=iptables</c>, one process per container operation as podman runs it, under
/// <c>nsenter --net=H</c> so that H is its host namespace; its config and firewall state go to a directory of the
/// pass. Network <c>internal: false</c> (masquerade + forward rules). Container namespaces are made and deleted in
/// process, as podman does.
/// </summary>
internal sealed class NetavarkTool : SandboxTool
{
    public const string Binary = "/usr/lib/podman/netavark";

    public override string Key => "netavark";

    public override string Name => "netavark (iptables)";

    public override Task<SandboxSession> StartAsync(PrivateHost host, int count)
    {
        var config = Path.Combine(host.Directory, "netavark");
        Directory.CreateDirectory(config);
        return Task.FromResult<SandboxSession>(new Session(host, config));
    }

    private sealed class Session(PrivateHost host, string config) : PeerSession(host)
    {
        private static readonly Dictionary<string, string> s_environment = new(StringComparer.Ordinal) { ["NETAVARK_FW"] = "iptables" };

        public override string Bridge => "navbr0";

        public override string Gateway => "10.89.0.1";

        private string Options(int i) => new JsonObject
        {
            ["container_id"] = Id(Host.Tag, i),
            ["container_name"] = Id(Host.Tag, i),
            ["networks"] = new JsonObject { ["sbnet"] = new JsonObject { ["interface_name"] = "eth0", ["static_ips"] = new JsonArray(AddressIn(Gateway, i)) } },
            ["network_info"] = new JsonObject
            {
                ["sbnet"] = new JsonObject
                {
                    ["name"] = "sbnet",
                    ["id"] = new string('a', 64),
                    ["driver"] = "bridge",
                    ["network_interface"] = Bridge,
                    ["subnets"] = new JsonArray(new JsonObject { ["subnet"] = "10.89.0.0/16", ["gateway"] = Gateway }),
                    ["ipv6_enabled"] = false,
                    ["internal"] = false,
                    ["dns_enabled"] = false,
                },
            },
        }.ToJsonString();

        protected override (IReadOnlyList<string> Command, string Stdin, IReadOnlyDictionary<string, string> Environment) Command(int i, bool add) =>
            (["nsenter", $"--net={Host.HostPath}", Binary, "--config", config, add ? "setup" : "teardown", ContainerPath(i)], Options(i), s_environment);
    }
}

/// <summary>
/// The CNI bridge plugin (<c>ipMasq: true</c>, host-local IPAM with its data directory in the pass's directory), one
/// process per container operation, under <c>nsenter --net=H</c>. Container namespaces are made and deleted in
/// process, as a CNI runtime does.
/// </summary>
internal sealed class CniBridgeTool : SandboxTool
{
    public override string Key => "cni";

    public override string Name => "CNI bridge + host-local (ipMasq)";

    public override Task<SandboxSession> StartAsync(PrivateHost host, int count)
    {
        var dataDir = Path.Combine(host.Directory, "cni-ipam");
        Directory.CreateDirectory(dataDir);
        return Task.FromResult<SandboxSession>(new Session(host, dataDir));
    }

    private sealed class Session(PrivateHost host, string dataDir) : PeerSession(host)
    {
        public override string Bridge => "cnibr0";

        public override string Gateway => "10.90.0.1";

        private string Conf => new JsonObject
        {
            ["cniVersion"] = "1.0.0",
            ["name"] = "sbnet",
            ["type"] = "bridge",
            ["bridge"] = Bridge,
            ["isGateway"] = true,
            ["ipMasq"] = true,
            ["ipam"] = new JsonObject
            {
                ["type"] = "host-local",
                ["dataDir"] = dataDir,
                ["ranges"] = new JsonArray(new JsonArray(new JsonObject { ["subnet"] = "10.90.0.0/16", ["gateway"] = Gateway })),
                ["routes"] = new JsonArray(new JsonObject { ["dst"] = "0.0.0.0/0" }),
            },
        }.ToJsonString();

        protected override (IReadOnlyList<string> Command, string Stdin, IReadOnlyDictionary<string, string> Environment) Command(int i, bool add) =>
            (["nsenter", $"--net={Host.HostPath}", "/usr/lib/cni/bridge"],
             Conf,
             new Dictionary<string, string>(StringComparer.Ordinal)
             {
                 ["CNI_COMMAND"] = add ? "ADD" : "DEL",
                 ["CNI_CONTAINERID"] = Id(Host.Tag, i),
                 ["CNI_NETNS"] = ContainerPath(i),
                 ["CNI_IFNAME"] = "eth0",
                 ["CNI_PATH"] = "/usr/lib/cni",
             });
    }
}

/// <summary>A peer tool run as one process per operation; its container namespaces live in the private directory.</summary>
internal abstract class PeerSession(PrivateHost host) : SandboxSession(host)
{
    public override string ContainerPath(int i) => Host.Manager.GetPath(Id(Host.Tag, i));

    protected abstract (IReadOnlyList<string> Command, string Stdin, IReadOnlyDictionary<string, string> Environment) Command(int i, bool add);

    public override async Task AttachAsync(int i)
    {
        using (await Host.Manager.CreateAsync(Id(Host.Tag, i)).ConfigureAwait(false))
        {
        }

        var (command, stdin, environment) = Command(i, add: true);
        await Exec.RunAsync(command[0], command.Skip(1).ToArray(), stdin, environment).ConfigureAwait(false);
    }

    public override async Task DetachAsync(int i)
    {
        var (command, stdin, environment) = Command(i, add: false);
        await Exec.RunAsync(command[0], command.Skip(1).ToArray(), stdin, environment).ConfigureAwait(false);
        await Host.Manager.DeleteAsync(Id(Host.Tag, i)).ConfigureAwait(false);
    }

    /// <summary>The larger of the peak RSS of one setup and one teardown process, for an extra container.</summary>
    public override async Task<long?> ChildPeakRssKibAsync(int extra)
    {
        using (await Host.Manager.CreateAsync(Id(Host.Tag, extra)).ConfigureAwait(false))
        {
        }

        var (add, addStdin, addEnvironment) = Command(extra, add: true);
        var setup = await Exec.PeakRssKibAsync(add, addStdin, addEnvironment).ConfigureAwait(false);
        var (del, delStdin, delEnvironment) = Command(extra, add: false);
        var teardown = await Exec.PeakRssKibAsync(del, delStdin, delEnvironment).ConfigureAwait(false);
        await Host.Manager.DeleteAsync(Id(Host.Tag, extra)).ConfigureAwait(false);
        return setup is null && teardown is null ? null : Math.Max(setup ?? 0, teardown ?? 0);
    }
}
