namespace CnmSharp.Diagnostics;

/// <summary>
/// The catalog of fault points (docs/reliability.md, "Fault points"): every name a controller, its drivers, its
/// firewall backend and its sandbox networking pass to <see cref="FaultPoints"/>. A point is reached after the step
/// its name says is done, so "killed at X" means "X happened, the next step did not". A point that runs several times
/// in one operation (a plugin call, an endpoint left in a sandbox delete) is told apart by its occurrence.
/// </summary>
internal static class FaultPoint
{
    // Core: network create

    /// <summary>The CreateNetwork intent is in the store; nothing reserved yet.</summary>
    public const string NetworkCreateIntentRecorded = "network.create.intent-recorded";

    /// <summary>Pools, gateways and auxiliary addresses reserved through IPAM; the driver not called.</summary>
    public const string NetworkCreatePoolsReserved = "network.create.pools-reserved";

    /// <summary>The driver created the network (bridge, rules, parent); the network record not committed.</summary>
    public const string NetworkCreateDriverCreated = "network.create.driver-created";

    /// <summary>The network record committed and the intent deleted in one transaction.</summary>
    public const string NetworkCreateCommitted = "network.create.committed";

    // Core: network delete

    /// <summary>The network record is marked tearingDown; the driver not called.</summary>
    public const string NetworkDeleteMarked = "network.delete.marked";

    /// <summary>The driver deleted the network; the record is still there (marked).</summary>
    public const string NetworkDeleteDriverDeleted = "network.delete.driver-deleted";

    /// <summary>The network record is deleted; pools and addresses not yet released (the IPAM sweep's case).</summary>
    public const string NetworkDeleteRecordRemoved = "network.delete.record-removed";

    // Core: endpoint create and delete

    /// <summary>The CreateEndpoint intent is in the store; no address yet.</summary>
    public const string EndpointCreateIntentRecorded = "endpoint.create.intent-recorded";

    /// <summary>The endpoint's addresses are reserved (owner = the endpoint id); the driver not called.</summary>
    public const string EndpointCreateAddressesReserved = "endpoint.create.addresses-reserved";

    /// <summary>The driver created the endpoint (its own record); the core's record not committed.</summary>
    public const string EndpointCreateDriverCreated = "endpoint.create.driver-created";

    /// <summary>The endpoint record committed and the intent deleted.</summary>
    public const string EndpointCreateCommitted = "endpoint.create.committed";

    /// <summary>The endpoint record is marked tearingDown; the driver not called.</summary>
    public const string EndpointDeleteMarked = "endpoint.delete.marked";

    /// <summary>The driver deleted the endpoint (veth, ports); the record is still there (marked).</summary>
    public const string EndpointDeleteDriverDeleted = "endpoint.delete.driver-deleted";

    /// <summary>The endpoint record is deleted; its addresses not yet released.</summary>
    public const string EndpointDeleteRecordRemoved = "endpoint.delete.record-removed";

    // Core: join

    /// <summary>The Join intent is in the store; the driver not called.</summary>
    public const string JoinIntentRecorded = "join.intent-recorded";

    /// <summary>The driver made the interface (in the sandbox or the host namespace); its name is not in the intent yet.</summary>
    public const string JoinDriverJoined = "join.driver-joined";

    /// <summary>The intent names the interface (driver's name and eth&lt;N&gt;); it is not configured yet.</summary>
    public const string JoinInterfaceRecorded = "join.interface-recorded";

    /// <summary>The interface is renamed, addressed and up in the sandbox.</summary>
    public const string JoinInterfaceConfigured = "join.interface-configured";

    /// <summary>The gateway election is applied (default routes, external connectivity).</summary>
    public const string JoinGatewayConverged = "join.gateway-converged";

    /// <summary>The endpoint and sandbox records committed with the intent's removal.</summary>
    public const string JoinCommitted = "join.committed";

    // Core: leave

    /// <summary>The Leave intent is in the store (rolled forward by recovery).</summary>
    public const string LeaveIntentRecorded = "leave.intent-recorded";

    /// <summary>The gateway moved away from the leaving endpoint (its routes and ports revoked).</summary>
    public const string LeaveGatewayConverged = "leave.gateway-converged";

    /// <summary>The driver's Leave returned.</summary>
    public const string LeaveDriverLeft = "leave.driver-left";

    /// <summary>The endpoint's interface is removed from the sandbox.</summary>
    public const string LeaveInterfaceRemoved = "leave.interface-removed";

    /// <summary>The endpoint and sandbox records committed with the intent's removal.</summary>
    public const string LeaveCommitted = "leave.committed";

    // Core: gateway convergence (inside join, leave and sandbox delete)

    /// <summary>The previous gateway endpoint's external connectivity (NAT, published ports) is revoked.</summary>
    public const string GatewayConnectivityRevoked = "gateway.connectivity-revoked";

    /// <summary>The sandbox's default routes are changed.</summary>
    public const string GatewayRoutesChanged = "gateway.routes-changed";

    /// <summary>The elected endpoint's external connectivity is programmed.</summary>
    public const string GatewayConnectivityProgrammed = "gateway.connectivity-programmed";

    // Core: sandbox create and delete

    /// <summary>The sandbox record is in the store; no namespace yet.</summary>
    public const string SandboxCreateRecorded = "sandbox.create.recorded";

    /// <summary>The sandbox's namespace exists (bind-mounted, loopback up).</summary>
    public const string SandboxCreateNamespaceCreated = "sandbox.create.namespace-created";

    /// <summary>The sandbox's hosts and resolv.conf are written.</summary>
    public const string SandboxCreateFilesWritten = "sandbox.create.files-written";

    /// <summary>The sandbox record is marked tearingDown.</summary>
    public const string SandboxDeleteMarked = "sandbox.delete.marked";

    /// <summary>One endpoint left (committed tearingDown, its teardown not yet scheduled).</summary>
    public const string SandboxDeleteEndpointLeft = "sandbox.delete.endpoint-left";

    /// <summary>The sandbox's namespace is unmounted and its file removed.</summary>
    public const string SandboxDeleteNamespaceDeleted = "sandbox.delete.namespace-deleted";

    /// <summary>The sandbox's files directory is removed; the record not yet.</summary>
    public const string SandboxDeleteFilesDeleted = "sandbox.delete.files-deleted";

    // Sandbox networking (kernel side of sandboxes)

    /// <summary>Inside namespace creation: the namespace is bind-mounted, its loopback not yet up.</summary>
    public const string SandboxNamespaceMounted = "sandbox.namespace.mounted";

    /// <summary>Inside interface setup: a host-namespace interface moved into the sandbox, not renamed yet.</summary>
    public const string SandboxInterfaceMoved = "sandbox.interface.moved";

    /// <summary>Inside interface setup: the interface carries its eth&lt;N&gt; name, no address yet.</summary>
    public const string SandboxInterfaceRenamed = "sandbox.interface.renamed";

    // Firewall (any backend: iptables and nftables each apply a call as one atomic batch per family)

    /// <summary>A network's rules are in the kernel; the caller does not know yet.</summary>
    public const string FirewallNetworkSetUp = "firewall.network-set-up";

    /// <summary>A network's rules are removed.</summary>
    public const string FirewallNetworkTornDown = "firewall.network-torn-down";

    /// <summary>An endpoint's port forwards are in the kernel; its ports not yet recorded.</summary>
    public const string FirewallPortsSetUp = "firewall.ports-set-up";

    /// <summary>An endpoint's port forwards are removed.</summary>
    public const string FirewallPortsTornDown = "firewall.ports-torn-down";

    // Bridge driver

    /// <summary>Create network: the driver's network record is written; no bridge yet.</summary>
    public const string BridgeNetworkRecordPersisted = "bridge.network.record-persisted";

    /// <summary>Create network: the bridge device exists, not configured.</summary>
    public const string BridgeNetworkBridgeCreated = "bridge.network.bridge-created";

    /// <summary>Create network: the bridge has its addresses, MTU and is up; no rules yet.</summary>
    public const string BridgeNetworkBridgeConfigured = "bridge.network.bridge-configured";

    /// <summary>Delete network: one leftover endpoint's ports and veth are gone.</summary>
    public const string BridgeNetworkEndpointRemoved = "bridge.network.endpoint-removed";

    /// <summary>Delete network: the bridge (or the addresses of an adopted one) is gone; the driver's records remain.</summary>
    public const string BridgeNetworkBridgeDeleted = "bridge.network.bridge-deleted";

    /// <summary>Create endpoint: the driver's endpoint record (veth names, MAC) is written.</summary>
    public const string BridgeEndpointRecordPersisted = "bridge.endpoint.record-persisted";

    /// <summary>Join: the veth pair exists (host end on the bridge, container end in the sandbox).</summary>
    public const string BridgeJoinVethCreated = "bridge.join.veth-created";

    /// <summary>External connectivity: the forwards are set up and the chosen host ports recorded.</summary>
    public const string BridgePortsRecorded = "bridge.ports.recorded";

    /// <summary>Delete endpoint: its forwards are removed and its host ports freed.</summary>
    public const string BridgeEndpointPortsUnpublished = "bridge.endpoint.ports-unpublished";

    /// <summary>Delete endpoint: its host veth is gone; the driver's record remains.</summary>
    public const string BridgeEndpointVethDeleted = "bridge.endpoint.veth-deleted";

    // macvlan and ipvlan (the shared parent-link driver)

    /// <summary>Create network: the record is written; the parent (dummy or 802.1Q) not made yet.</summary>
    public const string ParentLinkNetworkRecordPersisted = "parentlink.network.record-persisted";

    /// <summary>Create network: the parent this driver makes exists and is recorded.</summary>
    public const string ParentLinkNetworkParentCreated = "parentlink.network.parent-created";

    /// <summary>Delete network: the parent it made is gone; the records remain.</summary>
    public const string ParentLinkNetworkParentDeleted = "parentlink.network.parent-deleted";

    /// <summary>Create endpoint: the driver's endpoint record is written.</summary>
    public const string ParentLinkEndpointRecordPersisted = "parentlink.endpoint.record-persisted";

    /// <summary>Join: the macvlan/ipvlan device exists inside the sandbox.</summary>
    public const string ParentLinkJoinDeviceCreated = "parentlink.join.device-created";

    // Overlay driver

    /// <summary>Create network: the local record is written; no namespace yet.</summary>
    public const string OverlayNetworkRecordPersisted = "overlay.network.record-persisted";

    /// <summary>Create network: the network's namespace exists; no bridge or VXLAN device yet.</summary>
    public const string OverlayNetworkNamespaceCreated = "overlay.network.namespace-created";

    /// <summary>Create network: bridges and VXLAN devices exist; not announced to the cluster yet.</summary>
    public const string OverlayNetworkKernelCreated = "overlay.network.kernel-created";

    /// <summary>Delete network: the namespace is gone; the records remain.</summary>
    public const string OverlayNetworkKernelDeleted = "overlay.network.kernel-deleted";

    /// <summary>Join: the veth pair exists (host end in the network's namespace).</summary>
    public const string OverlayJoinVethCreated = "overlay.join.veth-created";

    // Remote plugins (driver and IPAM clients)

    /// <summary>A NetworkDriver.* call to a plugin returned; the caller has not used the reply yet.</summary>
    public const string PluginDriverReplied = "plugin.driver.replied";

    /// <summary>An IpamDriver.* call to a plugin returned; the caller has not used the reply yet.</summary>
    public const string PluginIpamReplied = "plugin.ipam.replied";

    /// <summary>Every fault point, in catalog order.</summary>
    public static IReadOnlyList<string> All { get; } =
    [
        NetworkCreateIntentRecorded,
        NetworkCreatePoolsReserved,
        NetworkCreateDriverCreated,
        NetworkCreateCommitted,
        NetworkDeleteMarked,
        NetworkDeleteDriverDeleted,
        NetworkDeleteRecordRemoved,
        EndpointCreateIntentRecorded,
        EndpointCreateAddressesReserved,
        EndpointCreateDriverCreated,
        EndpointCreateCommitted,
        EndpointDeleteMarked,
        EndpointDeleteDriverDeleted,
        EndpointDeleteRecordRemoved,
        JoinIntentRecorded,
        JoinDriverJoined,
        JoinInterfaceRecorded,
        JoinInterfaceConfigured,
        JoinGatewayConverged,
        JoinCommitted,
        LeaveIntentRecorded,
        LeaveGatewayConverged,
        LeaveDriverLeft,
        LeaveInterfaceRemoved,
        LeaveCommitted,
        GatewayConnectivityRevoked,
        GatewayRoutesChanged,
        GatewayConnectivityProgrammed,
        SandboxCreateRecorded,
        SandboxCreateNamespaceCreated,
        SandboxCreateFilesWritten,
        SandboxDeleteMarked,
        SandboxDeleteEndpointLeft,
        SandboxDeleteNamespaceDeleted,
        SandboxDeleteFilesDeleted,
        SandboxNamespaceMounted,
        SandboxInterfaceMoved,
        SandboxInterfaceRenamed,
        FirewallNetworkSetUp,
        FirewallNetworkTornDown,
        FirewallPortsSetUp,
        FirewallPortsTornDown,
        BridgeNetworkRecordPersisted,
        BridgeNetworkBridgeCreated,
        BridgeNetworkBridgeConfigured,
        BridgeNetworkEndpointRemoved,
        BridgeNetworkBridgeDeleted,
        BridgeEndpointRecordPersisted,
        BridgeJoinVethCreated,
        BridgePortsRecorded,
        BridgeEndpointPortsUnpublished,
        BridgeEndpointVethDeleted,
        ParentLinkNetworkRecordPersisted,
        ParentLinkNetworkParentCreated,
        ParentLinkNetworkParentDeleted,
        ParentLinkEndpointRecordPersisted,
        ParentLinkJoinDeviceCreated,
        OverlayNetworkRecordPersisted,
        OverlayNetworkNamespaceCreated,
        OverlayNetworkKernelCreated,
        OverlayNetworkKernelDeleted,
        OverlayJoinVethCreated,
        PluginDriverReplied,
        PluginIpamReplied,
    ];
}
