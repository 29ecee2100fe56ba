using System.Net;
using CnmSharp.Diagnostics;
using CnmSharp.Drivers;
using CnmSharp.Drivers.Bridge;
using CnmSharp.Firewall;

namespace CnmSharp.TestHost;

/// <summary>
/// The operations of the kill harness (compiled into CnmSharp.TestHost and, linked, into CnmSharp.IntegrationTests;
/// docs/reliability.md, "Kill harness"). Each scenario has a setup (run by the child before its fault points are armed),
/// the operation the child runs armed (and is killed in), and a completion that the test runs on the recovered
/// controller to bring the state, whatever the kill left, to "the operation done" (which proves the state usable).
/// Objects are found by name, so every step is idempotent over what recovery kept or undid.
/// </summary>
internal sealed record FaultScenario(
    string Name,
    FirewallBackendChoice Firewall,
    Func<NetworkController, FaultScenarioContext, Task> Setup,
    Func<NetworkController, FaultScenarioContext, Task> Operation,
    Func<NetworkController, FaultScenarioContext, Task> Complete)
{
    /// <summary>The scenario needs a global store (etcd, started by the harness) and the overlay driver: its controllers
    /// get <see cref="FaultScenarioContext.EtcdEndpoint"/>, the node name and the advertise address.</summary>
    public bool NeedsGlobalStore { get; init; }
}

/// <summary>What a scenario needs besides the controller: the parent link of the macvlan scenarios; for the scenarios
/// that need a global store, the etcd endpoint, the key prefix (one per scenario) and this host's advertise address.</summary>
internal sealed record FaultScenarioContext(string MacvlanParent)
{
    /// <summary>The etcd client URL (the harness's etcd), or null.</summary>
    public string? EtcdEndpoint { get; init; }

    /// <summary>The key prefix in etcd (one per scenario, so its baseline is its own).</summary>
    public string? EtcdKeyPrefix { get; init; }

    /// <summary>The host namespace's underlay address (the overlay's VTEP).</summary>
    public string? AdvertiseAddress { get; init; }

    /// <summary>The child's extra arguments for these (none without a global store).</summary>
    public IEnumerable<string> GlobalArguments() =>
        EtcdEndpoint is null ? [] : [EtcdEndpoint, EtcdKeyPrefix ?? string.Empty, AdvertiseAddress ?? string.Empty];

    /// <summary>The context the child rebuilds from its arguments.</summary>
    public static FaultScenarioContext FromArguments(string macvlanParent, IReadOnlyList<string> global) =>
        global is [var endpoint, var prefix, var advertise]
            ? new FaultScenarioContext(macvlanParent) { EtcdEndpoint = endpoint, EtcdKeyPrefix = prefix, AdvertiseAddress = advertise }
            : new FaultScenarioContext(macvlanParent);
}

/// <summary>The scenarios, and the controller they run on.</summary>
internal static class FaultScenarios
{
    /// <summary>The network every scenario uses.</summary>
    public const string NetworkName = "fk";

    /// <summary>Its subnet.</summary>
    public const string Subnet = "10.98.0.0/24";

    /// <summary>The endpoint, and the container id of the sandbox.</summary>
    public const string EndpointName = "fke";

    /// <summary>The sandbox's container id.</summary>
    public const string ContainerId = "fkc";

    /// <summary>The host port published by the endpoints of the bridge scenarios.</summary>
    public const ushort HostPort = 18480;

    /// <summary>Every scenario, in the order the harness runs them.</summary>
    public static IReadOnlyList<FaultScenario> All { get; } =
    [
        new("bridge network create", FirewallBackendChoice.Iptables, None, CreateBridgeNetworkAsync, CreateBridgeNetworkAsync),
        new("bridge network delete", FirewallBackendChoice.Iptables, CreateBridgeNetworkAsync, DeleteNetworkAsync, DeleteNetworkAsync),
        new("bridge endpoint create (iptables)", FirewallBackendChoice.Iptables, CreateBridgeNetworkAsync, CreateEndpointAsync, CreateEndpointAsync),
        new("bridge join (iptables)", FirewallBackendChoice.Iptables, Then(CreateBridgeNetworkAsync, CreateSandboxAsync, CreateEndpointAsync), JoinAsync, JoinAsync),
        new("bridge leave (iptables)", FirewallBackendChoice.Iptables, Then(CreateBridgeNetworkAsync, CreateSandboxAsync, CreateEndpointAsync, JoinAsync), LeaveAsync, LeaveAsync),
        new("bridge endpoint delete (iptables)", FirewallBackendChoice.Iptables, Then(CreateBridgeNetworkAsync, CreateEndpointAsync), DeleteEndpointAsync, DeleteEndpointAsync),
        new("bridge network create (nftables)", FirewallBackendChoice.Nftables, None, CreateBridgeNetworkAsync, CreateBridgeNetworkAsync),
        new("bridge join (nftables)", FirewallBackendChoice.Nftables, Then(CreateBridgeNetworkAsync, CreateSandboxAsync, CreateEndpointAsync), JoinAsync, JoinAsync),
        new("bridge leave (nftables)", FirewallBackendChoice.Nftables, Then(CreateBridgeNetworkAsync, CreateSandboxAsync, CreateEndpointAsync, JoinAsync), LeaveAsync, LeaveAsync),
        new("sandbox create", FirewallBackendChoice.Iptables, None, CreateSandboxAsync, CreateSandboxAsync),
        new("sandbox delete", FirewallBackendChoice.Iptables, Then(CreateBridgeNetworkAsync, CreateSandboxAsync, CreateEndpointAsync, JoinAsync), DeleteSandboxAsync, DeleteSandboxAsync),
        new("macvlan network create", FirewallBackendChoice.Iptables, None, CreateMacvlanNetworkAsync, CreateMacvlanNetworkAsync),
        new("macvlan join", FirewallBackendChoice.Iptables, Then(CreateMacvlanNetworkAsync, CreateSandboxAsync, CreateEndpointAsync), JoinAsync, JoinAsync),

        // Coverage of every reachable point of the bridge and parent-link drivers (docs/reliability.md, "Kill harness").
        // The internal parent (no "parent" option) is a dummy, or a veth pair where the kernel has no dummy: both reach
        // parentlink.network.parent-created / parent-deleted.
        new("macvlan endpoint create", FirewallBackendChoice.Iptables, CreateMacvlanNetworkAsync, CreateEndpointAsync, CreateEndpointAsync),
        new("macvlan leave", FirewallBackendChoice.Iptables, Then(CreateMacvlanNetworkAsync, CreateSandboxAsync, CreateEndpointAsync, JoinAsync), LeaveAsync, LeaveAsync),
        new("macvlan network create (internal parent)", FirewallBackendChoice.Iptables, None, CreateInternalParentMacvlanNetworkAsync, CreateInternalParentMacvlanNetworkAsync),
        new("macvlan network delete (internal parent)", FirewallBackendChoice.Iptables, CreateInternalParentMacvlanNetworkAsync, DeleteNetworkAsync, DeleteNetworkAsync),
        new("bridge network delete (leftover driver endpoint)", FirewallBackendChoice.Iptables, Then(CreateBridgeNetworkAsync, LeaveDriverOnlyEndpointAsync), DeleteNetworkAsync, DeleteNetworkAsync),

        // Remote: driver and IPAM are the plugin PluginName, which the test serves from its own process (it outlives the
        // killed child); the controller programs no firewall (the plugin's bridge driver does). The plugin's IPAM
        // releases by owner (IpamDriver.ReleaseOwner), which closes the window between its reply and the intent.
        new("remote network create", FirewallBackendChoice.None, None, CreateRemoteNetworkAsync, CreateRemoteNetworkAsync),
        new("remote endpoint create and join", FirewallBackendChoice.None, Then(CreateRemoteNetworkAsync, CreateSandboxAsync), Then(CreateEndpointAsync, JoinAsync), Then(CreateEndpointAsync, JoinAsync)),
        new("remote leave and endpoint delete", FirewallBackendChoice.None, Then(CreateRemoteNetworkAsync, CreateSandboxAsync, CreateEndpointAsync, JoinAsync), Then(LeaveAsync, DeleteEndpointAsync), Then(LeaveAsync, DeleteEndpointAsync)),
        new("remote network delete", FirewallBackendChoice.None, CreateRemoteNetworkAsync, DeleteNetworkAsync, DeleteNetworkAsync),

        // Overlay: the controller has the harness's etcd as its global store (the scenario's own key prefix), node name
        // OverlayNodeName and the host namespace's underlay address as its advertise address. The network has no gateway
        // network (NetLabels.NoGatewayNetwork): the bridge scenarios cover that join.
        new("overlay network create", FirewallBackendChoice.Iptables, None, CreateOverlayNetworkAsync, CreateOverlayNetworkAsync) { NeedsGlobalStore = true },
        new("overlay endpoint create and join", FirewallBackendChoice.Iptables, Then(CreateOverlayNetworkAsync, CreateSandboxAsync), Then(CreateEndpointAsync, JoinAsync), Then(CreateEndpointAsync, JoinAsync)) { NeedsGlobalStore = true },
        new("overlay leave and endpoint delete", FirewallBackendChoice.Iptables, Then(CreateOverlayNetworkAsync, CreateSandboxAsync, CreateEndpointAsync, JoinAsync), Then(LeaveAsync, DeleteEndpointAsync), Then(LeaveAsync, DeleteEndpointAsync)) { NeedsGlobalStore = true },
        new("overlay network delete", FirewallBackendChoice.Iptables, CreateOverlayNetworkAsync, DeleteNetworkAsync, DeleteNetworkAsync) { NeedsGlobalStore = true },

        // Overlay with the gateway network: the join also makes the gateway bridge network (the first time) and joins
        // the sandbox to it (the gateway.* points on an overlay endpoint); the leave takes the gateway endpoint away.
        new("overlay join with the gateway network", FirewallBackendChoice.Iptables, Then(CreateOverlayNetworkWithGatewayAsync, CreateSandboxAsync, CreateEndpointAsync), JoinAsync, JoinAsync) { NeedsGlobalStore = true },
        new("overlay leave with the gateway network", FirewallBackendChoice.Iptables, Then(CreateOverlayNetworkWithGatewayAsync, CreateSandboxAsync, CreateEndpointAsync, JoinAsync), LeaveAsync, LeaveAsync) { NeedsGlobalStore = true },
    ];

    /// <summary>The node name of the overlay scenarios' controllers.</summary>
    public const string OverlayNodeName = "fkhost1";

    /// <summary>The plugin (network driver and IPAM) of the remote scenarios.</summary>
    public const string PluginName = "fkplug";

    /// <summary>Where the controller looks for plugin sockets: beside the state directory, so the child finds the
    /// test's plugin with no extra argument.</summary>
    public static string PluginSocketDirectory(string stateDirectory) => Path.GetFullPath(Path.Combine(stateDirectory, "..", "plugins"));

    /// <summary>Builds (starts, so recovers) a controller for a scenario: the bridge and macvlan drivers, the given
    /// firewall backend, no default networks, no embedded DNS, the SQLite store under the state directory; with
    /// <paramref name="faults"/> (the child only) its fault points call it.</summary>
    /// <param name="global">With an etcd endpoint (scenarios that <see cref="FaultScenario.NeedsGlobalStore"/>): the
    /// global store, the overlay driver, node name <see cref="OverlayNodeName"/> and the advertise address.</param>
    public static ValueTask<NetworkController> BuildAsync(string hostNamespacePath, string stateDirectory, string runDirectory, FirewallBackendChoice firewall, FaultPoints? faults, Microsoft.Extensions.Logging.ILoggerFactory? loggerFactory = null, FaultScenarioContext? global = null)
    {
        var options = new CnmOptions
        {
            HostNamespacePath = hostNamespacePath,
            RunDirectory = runDirectory,
            StateDirectory = stateDirectory,
            CreateDefaultNetworks = false,
            Firewall = firewall,
            Plugins = new CnmSharp.Plugins.PluginOptions
            {
                SocketDirectories = [PluginSocketDirectory(stateDirectory)],
                SpecDirectories = [],
                RetryDelays = [TimeSpan.FromMilliseconds(100), TimeSpan.FromMilliseconds(200)],
                CallTimeout = TimeSpan.FromSeconds(10),
            },
        };
        options.Dns.Mode = EmbeddedDnsMode.Disabled;
        if (global?.EtcdEndpoint is not null)
        {
            options.AdvertiseAddress = global.AdvertiseAddress;
            options.Cluster = new ClusterOptions { NodeName = OverlayNodeName };
        }

        var builder = new NetworkControllerBuilder(options)
            .AddDriver(new BridgeDriverFactory(new BridgeDriverOptions { ReapTimeout = TimeSpan.FromSeconds(3) }));
        if (global?.EtcdEndpoint is { } etcd)
        {
            var etcdOptions = new CnmSharp.Store.Etcd.EtcdStoreOptions { KeyPrefix = global.EtcdKeyPrefix ?? string.Empty, RequestTimeout = TimeSpan.FromSeconds(5) };
            etcdOptions.Endpoints.Add(etcd);
            builder.AddDriver(new CnmSharp.Drivers.Overlay.OverlayDriverFactory(new CnmSharp.Drivers.Overlay.OverlayDriverOptions { RetryDelay = TimeSpan.FromMilliseconds(300) }));
            CnmSharp.Store.Etcd.EtcdNetworkControllerBuilderExtensions.UseEtcdGlobalStore(builder, etcdOptions);
        }

        if (loggerFactory is not null)
        {
            builder.UseLoggerFactory(loggerFactory);
        }

        if (faults is not null)
        {
            builder.UseFaultPoints(faults);
        }

        return builder.BuildAsync();
    }

    /// <summary>Finds a scenario by name.</summary>
    public static FaultScenario Find(string name) =>
        All.FirstOrDefault(s => string.Equals(s.Name, name, StringComparison.Ordinal)) ?? throw new ArgumentException($"no scenario \"{name}\"", nameof(name));

    private static Task None(NetworkController controller, FaultScenarioContext context) => Task.CompletedTask;

    private static Func<NetworkController, FaultScenarioContext, Task> Then(params Func<NetworkController, FaultScenarioContext, Task>[] steps) =>
        async (controller, context) =>
        {
            foreach (var step in steps)
            {
                await step(controller, context).ConfigureAwait(false);
            }
        };

    private static async Task CreateBridgeNetworkAsync(NetworkController controller, FaultScenarioContext context)
    {
        if (controller.FindNetworkByName(NetworkName) is null)
        {
            await controller.CreateNetworkAsync(NetworkName, "bridge", new NetworkCreateOptions { IPv4Config = [new IpamConfig { Subnet = Subnet }] }).ConfigureAwait(false);
        }
    }

    private static async Task CreateMacvlanNetworkAsync(NetworkController controller, FaultScenarioContext context)
    {
        if (controller.FindNetworkByName(NetworkName) is null)
        {
            await controller.CreateNetworkAsync(NetworkName, "macvlan", new NetworkCreateOptions
            {
                IPv4Config = [new IpamConfig { Subnet = Subnet }],
                DriverOptions = new Dictionary<string, string>(StringComparer.Ordinal) { ["parent"] = context.MacvlanParent },
            }).ConfigureAwait(false);
        }
    }

    private static async Task CreateInternalParentMacvlanNetworkAsync(NetworkController controller, FaultScenarioContext context)
    {
        if (controller.FindNetworkByName(NetworkName) is null)
        {
            await controller.CreateNetworkAsync(NetworkName, "macvlan", new NetworkCreateOptions { IPv4Config = [new IpamConfig { Subnet = Subnet }] }).ConfigureAwait(false);
        }
    }

    /// <summary>The endpoint of the leftover scenario: the bridge driver has it, the core does not.</summary>
    public const string LeftoverEndpointName = "fkl";

    /// <summary>
    /// Plants a state no operation of the core leaves, but a store from an older version, a hand edit or an interrupted
    /// repair can: a bridge endpoint that the driver records and the core does not. The endpoint is created, then the
    /// core's record is deleted behind the controller's back (its address is then an orphan, which the next start
    /// sweeps). The network's delete must remove it in the driver (bridge.network.endpoint-removed).
    /// </summary>
    private static async Task LeaveDriverOnlyEndpointAsync(NetworkController controller, FaultScenarioContext context)
    {
        var network = Network(controller);
        var store = controller.StateStore;
        if ((await store.ListAsync($"cnm/v1/driver/bridge/endpoint/{network.Id}/").ConfigureAwait(false)).Count > 0)
        {
            return;
        }

        var endpoint = network.FindEndpointByName(LeftoverEndpointName)
            ?? await network.CreateEndpointAsync(LeftoverEndpointName, new EndpointCreateOptions()).ConfigureAwait(false);
        await store.DeleteAsync($"cnm/v1/endpoint/{network.Id}/{endpoint.Id}").ConfigureAwait(false);
    }

    private static async Task CreateRemoteNetworkAsync(NetworkController controller, FaultScenarioContext context)
    {
        if (controller.FindNetworkByName(NetworkName) is null)
        {
            await controller.CreateNetworkAsync(NetworkName, PluginName, new NetworkCreateOptions { IpamDriver = PluginName, IPv4Config = [new IpamConfig { Subnet = Subnet }] }).ConfigureAwait(false);
        }
    }

    /// <summary>The overlay network, without the gateway network (the bridge scenarios cover that join).</summary>
    private static Task CreateOverlayNetworkAsync(NetworkController controller, FaultScenarioContext context) =>
        CreateOverlayAsync(controller, new Dictionary<string, string>(StringComparer.Ordinal) { [NetLabels.NoGatewayNetwork] = "true" });

    private static Task CreateOverlayNetworkWithGatewayAsync(NetworkController controller, FaultScenarioContext context) =>
        CreateOverlayAsync(controller, new Dictionary<string, string>(StringComparer.Ordinal));

    private static async Task CreateOverlayAsync(NetworkController controller, Dictionary<string, string> labels)
    {
        if (controller.FindNetworkByName(NetworkName) is null)
        {
            await controller.CreateNetworkAsync(NetworkName, "overlay", new NetworkCreateOptions { IPv4Config = [new IpamConfig { Subnet = Subnet }], Labels = labels }).ConfigureAwait(false);
        }
    }

    private static async Task DeleteNetworkAsync(NetworkController controller, FaultScenarioContext context)
    {
        if (controller.FindNetworkByName(NetworkName) is { } network)
        {
            await network.DeleteAsync().ConfigureAwait(false);
        }
    }

    private static async Task CreateSandboxAsync(NetworkController controller, FaultScenarioContext context)
    {
        if (controller.FindSandboxByContainerId(ContainerId) is null)
        {
            await controller.CreateSandboxAsync(ContainerId, null).ConfigureAwait(false);
        }
    }

    private static async Task DeleteSandboxAsync(NetworkController controller, FaultScenarioContext context)
    {
        if (controller.FindSandboxByContainerId(ContainerId) is { } sandbox)
        {
            await sandbox.DeleteAsync().ConfigureAwait(false);
        }

        await controller.WaitForTeardownsAsync().ConfigureAwait(false);
    }

    private static async Task CreateEndpointAsync(NetworkController controller, FaultScenarioContext context)
    {
        var network = Network(controller);
        if (network.FindEndpointByName(EndpointName) is null)
        {
            var bridge = string.Equals(network.Driver, "bridge", StringComparison.Ordinal);
            await network.CreateEndpointAsync(EndpointName, new EndpointCreateOptions
            {
                PortBindings = bridge ? [new PortBinding(TransportProtocol.Tcp, 80, IPAddress.Any, HostPort)] : [],
            }).ConfigureAwait(false);
        }
    }

    private static async Task DeleteEndpointAsync(NetworkController controller, FaultScenarioContext context)
    {
        if (Network(controller).FindEndpointByName(EndpointName) is { } endpoint)
        {
            await endpoint.DeleteAsync(false).ConfigureAwait(false);
        }

        await controller.WaitForTeardownsAsync().ConfigureAwait(false);
    }

    private static async Task JoinAsync(NetworkController controller, FaultScenarioContext context)
    {
        var endpoint = Network(controller).FindEndpointByName(EndpointName) ?? throw new InvalidOperationException("no endpoint " + EndpointName);
        if (endpoint.Sandbox is null)
        {
            var sandbox = controller.FindSandboxByContainerId(ContainerId) ?? throw new InvalidOperationException("no sandbox " + ContainerId);
            await endpoint.JoinAsync(sandbox, null).ConfigureAwait(false);
        }
    }

    private static async Task LeaveAsync(NetworkController controller, FaultScenarioContext context)
    {
        // Nothing to leave once the endpoint is gone (a leave followed by its endpoint's delete).
        if (Network(controller).FindEndpointByName(EndpointName) is { Sandbox: { } sandbox } endpoint)
        {
            await endpoint.LeaveAsync(sandbox).ConfigureAwait(false);
        }
    }

    private static Network Network(NetworkController controller) =>
        controller.FindNetworkByName(NetworkName) ?? throw new InvalidOperationException("no network " + NetworkName);
}
