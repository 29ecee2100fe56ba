using System.Net;
using CnmSharp.Drivers;
using CnmSharp.Netlink;

namespace CnmSharp.IntegrationTests.Core;

/// <summary>
/// A test-only driver that does at join what the ipvlan driver does in l3 mode: it creates the endpoint's device
/// directly inside the sandbox's namespace (here the sandbox end of a veth pair whose other end stays, unattached, in
/// the host namespace), disables the gateway service and reports a connected default route (<c>0.0.0.0/0</c>, no next
/// hop) on that device instead of a gateway. It keeps no state: the core deletes the sandbox end at leave (which takes
/// the pair with it); deleting the endpoint removes the host end if it is still there.
/// </summary>
internal sealed class ConnectedRouteDriverFactory : INetworkDriverFactory
{
    public const string DriverName = "l3test";

    public string Name => DriverName;

    /// <summary>The host end of an endpoint's pair.</summary>
    public static string HostEnd(string endpointId) => "lh" + endpointId[..10];

    /// <summary>The sandbox end of an endpoint's pair, before the core renames it.</summary>
    public static string SandboxEnd(string endpointId) => "lc" + endpointId[..10];

    public ValueTask<INetworkDriver> CreateAsync(DriverContext context, CancellationToken cancellationToken = default) =>
        ValueTask.FromResult<INetworkDriver>(new ConnectedRouteDriver(context.HostNamespacePath ?? throw new InvalidOperationException("the test driver runs only in a private host namespace")));

    private sealed class ConnectedRouteDriver(string hostNamespacePath) : INetworkDriver
    {
        public DriverCapability Capability => DriverCapability.LocalScope;

        public ValueTask CreateNetworkAsync(NetworkCreateRequest request, CancellationToken cancellationToken = default) => ValueTask.CompletedTask;

        public ValueTask DeleteNetworkAsync(string networkId, CancellationToken cancellationToken = default) => ValueTask.CompletedTask;

        public ValueTask CreateEndpointAsync(EndpointCreateRequest request, IInterfaceInfo interfaceInfo, CancellationToken cancellationToken = default) => ValueTask.CompletedTask;

        public async ValueTask DeleteEndpointAsync(string networkId, string endpointId, CancellationToken cancellationToken = default)
        {
            using var ns = Open(hostNamespacePath);
            using var host = RtnetlinkClient.Open(ns.Handle);
            if (await host.GetLinkAsync(HostEnd(endpointId), cancellationToken) is { } link)
            {
                await host.DeleteLinkAsync(link.Index, cancellationToken);
            }
        }

        public ValueTask<IReadOnlyDictionary<string, string>> GetEndpointOperationalInfoAsync(string networkId, string endpointId, CancellationToken cancellationToken = default) =>
            ValueTask.FromResult(EmptyOptions.Instance);

        public async ValueTask JoinAsync(JoinRequest request, IJoinInfo joinInfo, CancellationToken cancellationToken = default)
        {
            using var sandbox = Open(request.SandboxKey);
            using var ns = Open(hostNamespacePath);
            using var host = RtnetlinkClient.Open(ns.Handle);
            await host.CreateLinkAsync(new VethLinkSpec(HostEnd(request.EndpointId), SandboxEnd(request.EndpointId)) { PeerNamespace = sandbox.Handle, Up = true }, cancellationToken);

            joinInfo.SetInterfaceName(SandboxEnd(request.EndpointId), "eth", InterfacePlacement.Sandbox);
            joinInfo.DisableGatewayService();
            joinInfo.AddStaticRoute(new StaticRoute(new IPNetwork(IPAddress.Any, 0), Drivers.RouteType.Connected, null));
        }

        public ValueTask LeaveAsync(string networkId, string endpointId, CancellationToken cancellationToken = default) => ValueTask.CompletedTask;

        /// <summary>Opens a namespace file (opening by path touches no run directory).</summary>
        private static NetworkNamespace Open(string path) =>
            new NetworkNamespaceManager(new NetworkNamespaceManagerOptions { RunDirectory = Path.GetDirectoryName(path)!, MakeRunDirectoryShared = false }).Open(path);
    }
}
