using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text.Json.Nodes;
using CnmSharp.Diagnostics;
using CnmSharp.Drivers;
using CnmSharp.Firewall.Iptables;
using CnmSharp.Sandboxes;
using CnmSharp.Sandboxes.Files;
using CnmSharp.Store;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace CnmSharp.Benchmarks.SandboxSetup;

/// <summary>One tool that attaches containers to a bridge network with its firewall work on.</summary>
/// <param name="key">The tool's key (<c>netavark</c>); <c>-parallel</c> is appended when it runs C at once.</param>
/// <param name="parallelism">Container operations in flight at once: 1 (sequential) or C.</param>
internal abstract class SandboxTool(string key, int parallelism)
{
    public string Key => parallelism == 1 ? key : key + "-parallel";

    public string Name => BaseName + (parallelism == 1 ? " (sequential)" : string.Create(CultureInfo.InvariantCulture, $" ({parallelism} at once)"));

    protected abstract string BaseName { get; }

    /// <summary>Container operations in flight at once.</summary>
    public int Parallelism => parallelism;

    /// <summary>The firewall backend the tool drives, as the output names it.</summary>
    public virtual string Firewall => "iptables";

    /// <summary>Prepares the tool's session in <paramref name="host"/> (not timed: a daemon's start, the peers' config
    /// files); the network itself is made in the timed attach phase (<see cref="SandboxSession.CreateNetworkAsync"/>).</summary>
    /// <param name="host">The private host namespace of the pass.</param>
    /// <param name="count">Containers of the pass.</param>
    /// <param name="ports">Every container publishes one TCP port (container port 80, host port <see cref="SandboxSession.HostPort"/>).</param>
    public abstract Task<SandboxSession> StartAsync(PrivateHost host, int count, bool ports);
}

/// <summary>One network of one tool in one pass: attach and detach container i, check, clean up.</summary>
internal abstract class SandboxSession(PrivateHost host, bool ports) : IAsyncDisposable
{
    public const int ContainerPort = 80;

    public PrivateHost Host { get; } = host;

    /// <summary>Every container publishes one TCP port.</summary>
    public bool Ports { get; } = ports;

    /// <summary>The host port container i publishes (30000 + i, below the ephemeral range).</summary>
    public static int HostPort(int i) => 30000 + i;

    /// <summary>Creates the network (bridge, its rules) where the tool does that itself (timed, in the attach
    /// phase); peers make theirs in their first setup.</summary>
    public virtual Task CreateNetworkAsync() => Task.CompletedTask;

    /// <summary>Removes the network (bridge, its rules) where the tool does that itself (timed, in the detach phase);
    /// netavark removes its bridge and rules in the last teardown, the CNI bridge plugin never removes its bridge.</summary>
    public virtual Task DeleteNetworkAsync() => Task.CompletedTask;

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

    internal static string Id(string tag, int i) => string.Create(CultureInfo.InvariantCulture, $"{tag}-c{i}");

    /// <summary>Container i of a /16 whose gateway is x.y.0.1: x.y.0.2 + i.</summary>
    internal static string AddressIn(string gateway, int i)
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
internal sealed class CnmSharpSandboxTool(int parallelism, bool nftables = false) : SandboxTool("cnmsharp", parallelism)
{
    /// <summary>The store durability every pass uses: the one <see cref="NetworkControllerBuilder"/> opens its default
    /// store with (<see cref="CnmOptions.Durability"/>'s default; the runner opens the store itself to time it).</summary>
    private static readonly SqliteDurability StoreDurability = new CnmOptions().Durability;

    /// <summary>The backend: iptables (the builder's default, set explicitly) or, with <c>--firewall nftables</c>, nftables.</summary>
    private readonly CnmSharp.Firewall.IFirewallBackendFactory _firewall = nftables ? new CnmSharp.Firewall.Nftables.NftablesFirewallBackendFactory() : new IptablesFirewallBackendFactory();

    protected override string BaseName => "CnmSharp";

    /// <summary>The firewall backend's own name.</summary>
    public override string Firewall => _firewall.Name;

    /// <summary>The durability of the store the last pass opened, as the store reports it (null before a pass).</summary>
    public SqliteDurability? Durability { get; private set; }

    /// <summary>Durations (ms) of controller operations (activity spans) and of its seams, by name.</summary>
    public SpanRecorder Spans { get; } = new();

    /// <summary>The controller's warnings (a reap timeout, a failed teardown) go to stderr: a run that had one says so.</summary>
    private static ILoggerFactory Warnings { get; } = LoggerFactory.Create(b => b.AddSimpleConsole(o => o.SingleLine = true).AddFilter(l => l >= LogLevel.Warning));

    public override async Task<SandboxSession> StartAsync(PrivateHost host, int count, bool ports)
    {
        var (controller, networking) = await StartControllerAsync(host).ConfigureAwait(false);
        return new Session(host, ports, controller, networking, count, Spans);
    }

    /// <summary>
    /// The controller of one pass (its start is not timed: a daemon's start): host namespace H, run and state
    /// directories in the pass's directory, the embedded store with the builder's default durability (recorded in
    /// <see cref="Durability"/>), the iptables firewall backend, no default networks, and the timed seams. Also used by
    /// other workloads that drive CnmSharp the same way (<c>macvlan-setup</c>).
    /// </summary>
    internal async Task<(NetworkController Controller, TimedSandboxNetworking Networking)> StartControllerAsync(PrivateHost host)
    {
        Spans.Pass++;
        var stateDirectory = Path.Combine(host.Directory, "cnm-state");
        Directory.CreateDirectory(stateDirectory);

        // The same store the builder opens by default, behind a stopwatch; the mode printed is what the store reports.
        var sqlite = await SqliteKeyValueStore.OpenAsync(new SqliteStoreOptions { Path = Path.Combine(stateDirectory, "cnm.db"), Durability = StoreDurability }).ConfigureAwait(false);
        Durability = sqlite.Durability;
        var store = new TimedStore(sqlite, Spans);
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
                .UseFirewall(_firewall)
                .UseLoggerFactory(Warnings)
                .BuildAsync().ConfigureAwait(false);
        }
        catch
        {
            await store.DisposeAsync().ConfigureAwait(false);
            await networking.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        return (controller, networking);
    }

    private sealed class Session : SandboxSession
    {
        private readonly NetworkController _controller;
        private readonly TimedSandboxNetworking _networking;
        private Network? _network;
        private readonly Sandbox?[] _sandboxes;
        private readonly string?[] _paths;
        private readonly ActivityListener _listener;

        public Session(PrivateHost host, bool ports, NetworkController controller, TimedSandboxNetworking networking, int count, SpanRecorder spans)
            : base(host, ports)
        {
            _controller = controller;
            _networking = networking;
            _sandboxes = new Sandbox?[count + 1];
            _paths = new string?[count + 1];
            _listener = spans.Listen();
        }

        public override string Bridge => "cnmbr0";

        public override string Gateway => "10.88.0.1";

        public override string ContainerPath(int i) => _paths[i]!;

        /// <summary>The bridge network with its rules (default options: ICC + masquerade).</summary>
        public override async Task CreateNetworkAsync() =>
            _network = await _controller.CreateNetworkAsync("sbnet", "bridge", new NetworkCreateOptions
            {
                IPv4Config = [new IpamConfig { Subnet = "10.88.0.0/16", Gateway = "10.88.0.1" }],
                DriverOptions = new Dictionary<string, string>(StringComparer.Ordinal) { ["com.docker.network.bridge.name"] = "cnmbr0" },
            }).ConfigureAwait(false);

        public override async Task DeleteNetworkAsync()
        {
            if (_network is { } network)
            {
                await network.DeleteAsync().ConfigureAwait(false);
                _network = null;
            }
        }

        public override async Task AttachAsync(int i)
        {
            var sandbox = await _controller.CreateSandboxAsync(Id(Host.Tag, i)).ConfigureAwait(false);
            _sandboxes[i] = sandbox;
            _paths[i] = sandbox.Key;
            var options = Ports
                ? new EndpointCreateOptions
                {
                    ExposedPorts = [new TransportPort(TransportProtocol.Tcp, (ushort)ContainerPort)],
                    PortBindings = [new PortBinding(TransportProtocol.Tcp, (ushort)ContainerPort, IPAddress.Any, (ushort)HostPort(i))],
                }
                : null;
            var endpoint = await _network!.CreateEndpointAsync(string.Create(CultureInfo.InvariantCulture, $"ep{i}"), options).ConfigureAwait(false);
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
                // Sandboxes left by a failed pass go first; their network after them.
                foreach (var sandbox in _sandboxes.OfType<Sandbox>())
                {
                    await sandbox.DeleteAsync().ConfigureAwait(false);
                }

                await _controller.WaitForTeardownsAsync().ConfigureAwait(false);
                await DeleteNetworkAsync().ConfigureAwait(false);
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
internal sealed class NetavarkTool(int parallelism, bool nftables = false) : SandboxTool("netavark", parallelism)
{
    /// <summary>netavark's firewall driver (<c>NETAVARK_FW</c>): iptables, or nftables with <c>--firewall nftables</c>.</summary>
    public override string Firewall => nftables ? "nftables" : "iptables";

    public const string Binary = "/usr/lib/podman/netavark";

    protected override string BaseName => "netavark";

    public override Task<SandboxSession> StartAsync(PrivateHost host, int count, bool ports)
    {
        var config = Path.Combine(host.Directory, "netavark");
        Directory.CreateDirectory(config);
        return Task.FromResult<SandboxSession>(new Session(host, ports, config, Firewall));
    }

    private sealed class Session(PrivateHost host, bool ports, string config, string firewall) : PeerSession(host, ports)
    {
        private readonly Dictionary<string, string> s_environment = new(StringComparer.Ordinal) { ["NETAVARK_FW"] = firewall };

        public override string Bridge => "navbr0";

        public override string Gateway => "10.89.0.1";

        private string Options(int i) => new JsonObject
        {
            ["container_id"] = Id(Host.Tag, i),
            ["container_name"] = Id(Host.Tag, i),
            ["port_mappings"] = Ports
                ? new JsonArray(new JsonObject { ["host_ip"] = "", ["container_port"] = ContainerPort, ["host_port"] = HostPort(i), ["range"] = 1, ["protocol"] = "tcp" })
                : null,
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

        protected override Task RunAsync(int i, bool add)
        {
            var (command, stdin, environment) = Command(i, add);
            return Exec.RunAsync(command[0], command.Skip(1).ToArray(), stdin, environment);
        }

        protected override (IReadOnlyList<string> Command, string Stdin, IReadOnlyDictionary<string, string> Environment) Command(int i, bool add) =>
            (["nsenter", $"--net={Host.HostPath}", Binary, "--config", config, add ? "setup" : "teardown", ContainerPath(i)], Options(i), s_environment);
    }
}

/// <summary>
/// The CNI bridge plugin (<c>ipMasq: true</c>, host-local IPAM with its data directory in the pass's directory), one
/// process per container operation, under <c>nsenter --net=H</c>. Container namespaces are made and deleted in
/// process, as a CNI runtime does.
/// </summary>
internal sealed class CniBridgeTool(int parallelism) : SandboxTool("cni", parallelism)
{
    public const string Directory = "/usr/lib/cni";

    protected override string BaseName => "CNI bridge + host-local (ipMasq)";

    public override Task<SandboxSession> StartAsync(PrivateHost host, int count, bool ports)
    {
        var dataDir = Path.Combine(host.Directory, "cni-ipam");
        System.IO.Directory.CreateDirectory(dataDir);
        return Task.FromResult<SandboxSession>(new Session(host, ports, dataDir, count));
    }

    private sealed class Session(PrivateHost host, bool ports, string dataDir, int count) : PeerSession(host, ports)
    {
        /// <summary>The bridge plugin's ADD result per container: the <c>prevResult</c> of portmap, as a runtime chains them.</summary>
        private readonly JsonNode?[] _results = new JsonNode?[count + 1];

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

        /// <summary>The portmap plugin's configuration for container i (chained after bridge, with its result).</summary>
        private string PortmapConf(int i) => new JsonObject
        {
            ["cniVersion"] = "1.0.0",
            ["name"] = "sbnet",
            ["type"] = "portmap",
            ["capabilities"] = new JsonObject { ["portMappings"] = true },
            ["runtimeConfig"] = new JsonObject
            {
                ["portMappings"] = new JsonArray(new JsonObject { ["hostPort"] = HostPort(i), ["containerPort"] = ContainerPort, ["protocol"] = "tcp" }),
            },
            ["prevResult"] = _results[i]?.DeepClone(),
        }.ToJsonString();

        private Dictionary<string, string> Environment(int i, bool add) => new(StringComparer.Ordinal)
        {
            ["CNI_COMMAND"] = add ? "ADD" : "DEL",
            ["CNI_CONTAINERID"] = Id(Host.Tag, i),
            ["CNI_NETNS"] = ContainerPath(i),
            ["CNI_IFNAME"] = "eth0",
            ["CNI_PATH"] = Directory,
        };

        /// <summary>The chain as a CNI runtime runs it: ADD bridge then portmap (given bridge's result), DEL in reverse.</summary>
        protected override async Task RunAsync(int i, bool add)
        {
            string[] nsenter = ["--net=" + Host.HostPath];
            if (add)
            {
                var result = await Exec.RunAsync("nsenter", [.. nsenter, Directory + "/bridge"], Conf, Environment(i, add)).ConfigureAwait(false);
                if (Ports)
                {
                    _results[i] = JsonNode.Parse(result);
                    await Exec.RunAsync("nsenter", [.. nsenter, Directory + "/portmap"], PortmapConf(i), Environment(i, add)).ConfigureAwait(false);
                }
            }
            else
            {
                if (Ports)
                {
                    await Exec.RunAsync("nsenter", [.. nsenter, Directory + "/portmap"], PortmapConf(i), Environment(i, add)).ConfigureAwait(false);
                    _results[i] = null;
                }

                await Exec.RunAsync("nsenter", [.. nsenter, Directory + "/bridge"], Conf, Environment(i, add)).ConfigureAwait(false);
            }
        }

        protected override (IReadOnlyList<string> Command, string Stdin, IReadOnlyDictionary<string, string> Environment) Command(int i, bool add) =>
            (["nsenter", $"--net={Host.HostPath}", Directory + "/bridge"], Conf, Environment(i, add));
    }
}

/// <summary>A peer tool run as one process per operation; its container namespaces live in the private directory.</summary>
internal abstract class PeerSession(PrivateHost host, bool ports) : SandboxSession(host, ports)
{
    public override string ContainerPath(int i) => Host.Manager.GetPath(Id(Host.Tag, i));

    /// <summary>One setup (or teardown) process of the main plugin, for the peak RSS measurement.</summary>
    protected abstract (IReadOnlyList<string> Command, string Stdin, IReadOnlyDictionary<string, string> Environment) Command(int i, bool add);

    /// <summary>What the tool runs to attach (or detach) container i: one or more processes.</summary>
    protected abstract Task RunAsync(int i, bool add);

    public override async Task AttachAsync(int i)
    {
        using (await Host.Manager.CreateAsync(Id(Host.Tag, i)).ConfigureAwait(false))
        {
        }

        await RunAsync(i, add: true).ConfigureAwait(false);
    }

    public override async Task DetachAsync(int i)
    {
        await RunAsync(i, add: false).ConfigureAwait(false);
        await Host.Manager.DeleteAsync(Id(Host.Tag, i)).ConfigureAwait(false);
    }

    /// <summary>The larger of the peak RSS of one setup and one teardown process (of the main plugin, without ports), for an extra container.</summary>
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
