using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using CnmSharp.Benchmarks.SandboxSetup;

namespace CnmSharp.Benchmarks.MacvlanSetup;

/// <summary>One tool that attaches containers to a macvlan network (bridge mode) on a parent in H.</summary>
internal abstract class MacvlanTool
{
    /// <summary>The tool's key in the summary line (<c>cnmsharp</c>, <c>netavark</c>, <c>cni</c>).</summary>
    public abstract string Key { get; }

    /// <summary>The tool's name in tables (sequential: the only mode of this workload).</summary>
    public abstract string Name { get; }

    /// <summary>The firewall backend the tool would drive; macvlan programs no rules with any of them.</summary>
    public virtual string Firewall => "iptables";

    /// <summary>Prepares the tool's session (not timed: a daemon's start, the peers' config files).</summary>
    /// <param name="host">The private host namespace of the pass.</param>
    /// <param name="parent">The parent device in H (a veth end, up).</param>
    /// <param name="count">Containers of the pass.</param>
    public abstract Task<MacvlanSession> StartAsync(PrivateHost host, string parent, int count);
}

/// <summary>
/// One macvlan network of one tool in one pass. The network (CnmSharp's record and parent check; the peers have no
/// network-wide work for macvlan) and the containers' namespaces are made before the timed attach and removed after
/// the timed detach, for every tool: the timed phases hold exactly the attach (detach) of each container.
/// </summary>
internal abstract class MacvlanSession(PrivateHost host, string parent) : IAsyncDisposable
{
    public PrivateHost Host { get; } = host;

    /// <summary>The parent device in H.</summary>
    public string Parent { get; } = parent;

    /// <summary>The subnet's gateway address (x.y.0.1 of a /16); the containers are x.y.0.2 + i.</summary>
    public abstract string Gateway { get; }

    /// <summary>The subnet (x.y.0.0/16).</summary>
    public string Subnet => Gateway[..^1] + "0/16";

    /// <summary>Creates the network where the tool has one (not timed).</summary>
    public virtual Task CreateNetworkAsync() => Task.CompletedTask;

    /// <summary>Removes the network where the tool has one (not timed).</summary>
    public virtual Task DeleteNetworkAsync() => Task.CompletedTask;

    /// <summary>Creates container i's network namespace (not timed): a CnmSharp sandbox, an in-process namespace for
    /// the peers (as podman and a CNI runtime make them).</summary>
    public abstract Task PrepareAsync(int i);

    /// <summary>Attaches container i (timed): its macvlan device, address and routes.</summary>
    public abstract Task AttachAsync(int i);

    /// <summary>Detaches container i (timed): its macvlan device goes.</summary>
    public abstract Task DetachAsync(int i);

    /// <summary>After every container is detached: waits for work the tool finishes in the background (timed).</summary>
    public virtual Task SettleAsync() => Task.CompletedTask;

    /// <summary>Deletes container i's namespace (not timed).</summary>
    public abstract Task ReleaseAsync(int i);

    /// <summary>The namespace file of container i (between <see cref="PrepareAsync"/> and <see cref="ReleaseAsync"/>).</summary>
    public abstract string ContainerPath(int i);

    /// <summary>Peak RSS (KiB) of the tool's processes for one extra container, or null when the tool runs in-process.</summary>
    public virtual Task<long?> ChildPeakRssKibAsync(int extra) => Task.FromResult<long?>(null);

    public virtual ValueTask DisposeAsync() => ValueTask.CompletedTask;
}

/// <summary>
/// CnmSharp in process, on the same controller as <c>sandbox-setup</c> (<see cref="CnmSharpSandboxTool.StartControllerAsync"/>:
/// embedded store with the builder's default durability, iptables backend, host namespace H), one network of driver
/// <c>macvlan</c> with <c>parent</c> and <c>macvlan_mode=bridge</c>. Sandboxes are made before the timed phase; attach:
/// <c>CreateEndpointAsync</c> + <c>JoinAsync</c> into the existing sandbox; detach: <c>LeaveAsync</c> +
/// <c>Endpoint.DeleteAsync</c>.
/// </summary>
internal sealed class CnmSharpMacvlanTool : MacvlanTool
{
    public CnmSharpSandboxTool Controllers { get; } = new(1);

    public override string Key => "cnmsharp";

    public override string Name => "CnmSharp (sequential)";

    public override string Firewall => Controllers.Firewall;

    public override async Task<MacvlanSession> StartAsync(PrivateHost host, string parent, int count)
    {
        var (controller, networking) = await Controllers.StartControllerAsync(host).ConfigureAwait(false);
        return new Session(host, parent, controller, networking, count, Controllers.Spans);
    }

    private sealed class Session(PrivateHost host, string parent, NetworkController controller, TimedSandboxNetworking networking, int count, SpanRecorder spans)
        : MacvlanSession(host, parent)
    {
        private readonly Sandbox?[] _sandboxes = new Sandbox?[count];
        private readonly Endpoint?[] _endpoints = new Endpoint?[count];
        private readonly string?[] _paths = new string?[count];
        private readonly ActivityListener _listener = spans.Listen();
        private Network? _network;

        public override string Gateway => "10.88.0.1";

        public override string ContainerPath(int i) => _paths[i]!;

        public override async Task CreateNetworkAsync() =>
            _network = await controller.CreateNetworkAsync("mvnet", "macvlan", new NetworkCreateOptions
            {
                IPv4Config = [new IpamConfig { Subnet = Subnet, Gateway = Gateway }],
                DriverOptions = new Dictionary<string, string>(StringComparer.Ordinal) { ["parent"] = Parent, ["macvlan_mode"] = "bridge" },
            }).ConfigureAwait(false);

        public override async Task DeleteNetworkAsync()
        {
            if (_network is { } network)
            {
                await network.DeleteAsync().ConfigureAwait(false);
                _network = null;
            }
        }

        public override async Task PrepareAsync(int i)
        {
            var sandbox = await controller.CreateSandboxAsync(SandboxSession.Id(Host.Tag, i)).ConfigureAwait(false);
            _sandboxes[i] = sandbox;
            _paths[i] = sandbox.Key;
        }

        public override async Task AttachAsync(int i)
        {
            var endpoint = await _network!.CreateEndpointAsync(string.Create(CultureInfo.InvariantCulture, $"ep{i}")).ConfigureAwait(false);
            _endpoints[i] = endpoint;
            await endpoint.JoinAsync(_sandboxes[i]!).ConfigureAwait(false);
        }

        public override async Task DetachAsync(int i)
        {
            var endpoint = _endpoints[i]!;
            await endpoint.LeaveAsync(_sandboxes[i]!).ConfigureAwait(false);
            await endpoint.DeleteAsync().ConfigureAwait(false);
            _endpoints[i] = null;
        }

        public override async Task SettleAsync() => await controller.WaitForTeardownsAsync().ConfigureAwait(false);

        public override async Task ReleaseAsync(int i)
        {
            if (_sandboxes[i] is { } sandbox)
            {
                await sandbox.DeleteAsync().ConfigureAwait(false);
                _sandboxes[i] = null;
            }
        }

        public override async ValueTask DisposeAsync()
        {
            _listener.Dispose();
            try
            {
                // What a failed pass left: endpoints (forced: they leave first), sandboxes, then the network.
                foreach (var endpoint in _endpoints.OfType<Endpoint>())
                {
                    await endpoint.DeleteAsync(force: true).ConfigureAwait(false);
                }

                foreach (var sandbox in _sandboxes.OfType<Sandbox>())
                {
                    await sandbox.DeleteAsync().ConfigureAwait(false);
                }

                await controller.WaitForTeardownsAsync().ConfigureAwait(false);
                await DeleteNetworkAsync().ConfigureAwait(false);
            }
            finally
            {
                await controller.DisposeAsync().ConfigureAwait(false);
                await networking.DisposeAsync().ConfigureAwait(false);
                await base.DisposeAsync().ConfigureAwait(false);
            }
        }
    }
}

/// <summary>A peer run as one process per container operation under <c>nsenter --net=H</c>; its container namespaces
/// are made and deleted in process in the pass's directory.</summary>
internal abstract class MacvlanPeerSession(PrivateHost host, string parent) : MacvlanSession(host, parent)
{
    public override string ContainerPath(int i) => Host.Manager.GetPath(SandboxSession.Id(Host.Tag, i));

    /// <summary>The process that attaches (or detaches) container i.</summary>
    protected abstract (IReadOnlyList<string> Command, string Stdin, IReadOnlyDictionary<string, string> Environment) Command(int i, bool add);

    public override async Task PrepareAsync(int i)
    {
        using (await Host.Manager.CreateAsync(SandboxSession.Id(Host.Tag, i)).ConfigureAwait(false))
        {
        }
    }

    public override Task AttachAsync(int i) => RunAsync(i, add: true);

    public override Task DetachAsync(int i) => RunAsync(i, add: false);

    public override Task ReleaseAsync(int i) => Host.Manager.DeleteAsync(SandboxSession.Id(Host.Tag, i));

    private Task RunAsync(int i, bool add)
    {
        var (command, stdin, environment) = Command(i, add);
        return Exec.RunAsync(command[0], command.Skip(1).ToArray(), stdin, environment);
    }

    /// <summary>The larger of the peak RSS of one setup and one teardown process, for an extra container.</summary>
    public override async Task<long?> ChildPeakRssKibAsync(int extra)
    {
        await PrepareAsync(extra).ConfigureAwait(false);
        try
        {
            var (add, addStdin, addEnvironment) = Command(extra, add: true);
            var setup = await Exec.PeakRssKibAsync(add, addStdin, addEnvironment).ConfigureAwait(false);
            var (del, delStdin, delEnvironment) = Command(extra, add: false);
            var teardown = await Exec.PeakRssKibAsync(del, delStdin, delEnvironment).ConfigureAwait(false);
            return setup is null && teardown is null ? null : Math.Max(setup ?? 0, teardown ?? 0);
        }
        finally
        {
            await ReleaseAsync(extra).ConfigureAwait(false);
        }
    }
}

/// <summary>
/// netavark (<c>NETAVARK_FW=iptables</c>, which it does not use for macvlan): <c>netavark setup|teardown</c> with
/// <c>"driver": "macvlan"</c>, <c>"network_interface": PARENT</c>, <c>"options": {"mode": "bridge"}</c> and a static IP
/// per container (netavark does no IPAM), config and state in the pass's directory.
/// </summary>
internal sealed class NetavarkMacvlanTool : MacvlanTool
{
    public override string Key => "netavark";

    public override string Name => "netavark macvlan (sequential)";

    public override Task<MacvlanSession> StartAsync(PrivateHost host, string parent, int count)
    {
        var config = Path.Combine(host.Directory, "netavark");
        Directory.CreateDirectory(config);
        return Task.FromResult<MacvlanSession>(new Session(host, parent, config));
    }

    private sealed class Session(PrivateHost host, string parent, string config) : MacvlanPeerSession(host, parent)
    {
        private static readonly Dictionary<string, string> s_environment = new(StringComparer.Ordinal) { ["NETAVARK_FW"] = "iptables" };

        public override string Gateway => "10.89.0.1";

        private string Options(int i) => new JsonObject
        {
            ["container_id"] = SandboxSession.Id(Host.Tag, i),
            ["container_name"] = SandboxSession.Id(Host.Tag, i),
            ["networks"] = new JsonObject { ["mvnet"] = new JsonObject { ["interface_name"] = "eth0", ["static_ips"] = new JsonArray(SandboxSession.AddressIn(Gateway, i)) } },
            ["network_info"] = new JsonObject
            {
                ["mvnet"] = new JsonObject
                {
                    ["name"] = "mvnet",
                    ["id"] = new string('b', 64),
                    ["driver"] = "macvlan",
                    ["network_interface"] = Parent,
                    ["subnets"] = new JsonArray(new JsonObject { ["subnet"] = Subnet, ["gateway"] = Gateway }),
                    ["ipv6_enabled"] = false,
                    ["internal"] = false,
                    ["dns_enabled"] = false,
                    ["options"] = new JsonObject { ["mode"] = "bridge" },
                },
            },
        }.ToJsonString();

        protected override (IReadOnlyList<string> Command, string Stdin, IReadOnlyDictionary<string, string> Environment) Command(int i, bool add) =>
            (["nsenter", $"--net={Host.HostPath}", NetavarkTool.Binary, "--config", config, add ? "setup" : "teardown", ContainerPath(i)], Options(i), s_environment);
    }
}

/// <summary>
/// The CNI <c>macvlan</c> plugin (<c>master</c> PARENT, <c>mode</c> bridge) with <c>host-local</c> IPAM (data directory
/// in the pass's directory) and a default route, <c>CNI_COMMAND=ADD|DEL</c>, one process per operation.
/// </summary>
internal sealed class CniMacvlanTool : MacvlanTool
{
    public override string Key => "cni";

    public override string Name => "CNI macvlan + host-local (sequential)";

    public override string Firewall => "none (the macvlan plugin has no firewall code)";

    public override Task<MacvlanSession> StartAsync(PrivateHost host, string parent, int count)
    {
        var dataDir = Path.Combine(host.Directory, "cni-ipam");
        Directory.CreateDirectory(dataDir);
        return Task.FromResult<MacvlanSession>(new Session(host, parent, dataDir));
    }

    private sealed class Session(PrivateHost host, string parent, string dataDir) : MacvlanPeerSession(host, parent)
    {
        public override string Gateway => "10.90.0.1";

        private string Conf => new JsonObject
        {
            ["cniVersion"] = "1.0.0",
            ["name"] = "mvnet",
            ["type"] = "macvlan",
            ["master"] = Parent,
            ["mode"] = "bridge",
            ["ipam"] = new JsonObject
            {
                ["type"] = "host-local",
                ["dataDir"] = dataDir,
                ["ranges"] = new JsonArray(new JsonArray(new JsonObject { ["subnet"] = Subnet, ["gateway"] = Gateway })),
                ["routes"] = new JsonArray(new JsonObject { ["dst"] = "0.0.0.0/0" }),
            },
        }.ToJsonString();

        protected override (IReadOnlyList<string> Command, string Stdin, IReadOnlyDictionary<string, string> Environment) Command(int i, bool add) =>
            (["nsenter", $"--net={Host.HostPath}", CniBridgeTool.Directory + "/macvlan"], Conf, new Dictionary<string, string>(StringComparer.Ordinal)
            {
                ["CNI_COMMAND"] = add ? "ADD" : "DEL",
                ["CNI_CONTAINERID"] = SandboxSession.Id(Host.Tag, i),
                ["CNI_NETNS"] = ContainerPath(i),
                ["CNI_IFNAME"] = "eth0",
                ["CNI_PATH"] = CniBridgeTool.Directory,
            });
    }
}
