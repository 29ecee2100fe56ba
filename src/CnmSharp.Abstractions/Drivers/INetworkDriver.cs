namespace CnmSharp.Drivers;

/// <summary>
/// A network driver: it programs the data path of its networks and endpoints and nothing else. The core owns names,
/// addresses (through IPAM), sandboxes, persistence of the CNM objects and rollback; a driver owns only what it
/// creates in the kernel (and may keep its own records through <see cref="DriverContext.Store"/>).
/// </summary>
/// <remarks>
/// Every call may be repeated after a crash (reconciliation re-runs undo steps), so deletes of what is already gone
/// succeed. A driver signals refusal with a <see cref="CnmException"/>: <see cref="CnmConflictException"/> when the
/// state forbids it (the core treats that as fatal on delete), <see cref="CnmInvalidArgumentException"/> for bad options.
/// Optional abilities are separate interfaces: <see cref="IExternalConnectivityDriver"/>,
/// <see cref="IDiscoveryAwareDriver"/>, <see cref="INetworkAllocatorDriver"/>.
/// </remarks>
public interface INetworkDriver
{
    /// <summary>What the driver is and needs.</summary>
    DriverCapability Capability { get; }

    /// <summary>Creates a network's data path (for example a Linux bridge).</summary>
    /// <param name="request">The network and its pools.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when the network exists.</returns>
    ValueTask CreateNetworkAsync(NetworkCreateRequest request, CancellationToken cancellationToken = default);

    /// <summary>Deletes a network's data path. Deleting a network the driver does not know succeeds.</summary>
    /// <param name="networkId">The network.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when the network is gone.</returns>
    ValueTask DeleteNetworkAsync(string networkId, CancellationToken cancellationToken = default);

    /// <summary>Creates an endpoint. The driver may fill what the core left empty in <paramref name="interfaceInfo"/>
    /// (a MAC, an address); setters refuse to overwrite.</summary>
    /// <param name="request">The endpoint.</param>
    /// <param name="interfaceInfo">The endpoint's interface as the core and IPAM set it.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when the endpoint exists.</returns>
    ValueTask CreateEndpointAsync(EndpointCreateRequest request, IInterfaceInfo interfaceInfo, CancellationToken cancellationToken = default);

    /// <summary>Deletes an endpoint. Deleting an endpoint the driver does not know succeeds.</summary>
    /// <param name="networkId">The network.</param>
    /// <param name="endpointId">The endpoint.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when the endpoint is gone.</returns>
    ValueTask DeleteEndpointAsync(string networkId, string endpointId, CancellationToken cancellationToken = default);

    /// <summary>Operational data of an endpoint, for inspection (for example its port map).</summary>
    /// <param name="networkId">The network.</param>
    /// <param name="endpointId">The endpoint.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>Key/value data; empty when the driver has none.</returns>
    ValueTask<IReadOnlyDictionary<string, string>> GetEndpointOperationalInfoAsync(string networkId, string endpointId, CancellationToken cancellationToken = default);

    /// <summary>Joins an endpoint to a sandbox: the driver provides the interface (see
    /// <see cref="IJoinInfo.SetInterfaceName"/>), the gateway and static routes, and touches nothing inside the
    /// sandbox except creating the interface there when it says so.</summary>
    /// <param name="request">The endpoint and the sandbox.</param>
    /// <param name="joinInfo">Where the driver reports what the core must program.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when the driver's part of the join is done.</returns>
    ValueTask JoinAsync(JoinRequest request, IJoinInfo joinInfo, CancellationToken cancellationToken = default);

    /// <summary>Undoes <see cref="JoinAsync"/>. Leaving an endpoint that is not joined succeeds.</summary>
    /// <param name="networkId">The network.</param>
    /// <param name="endpointId">The endpoint.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when the driver's part of the leave is done.</returns>
    ValueTask LeaveAsync(string networkId, string endpointId, CancellationToken cancellationToken = default);
}

/// <summary>A driver that programs connectivity outside the host (NAT, published ports) for the endpoint that
/// provides a sandbox's gateway. The core calls it only on that endpoint, and moves it when the gateway moves.</summary>
public interface IExternalConnectivityDriver
{
    /// <summary>Programs external connectivity (masquerade, published ports) for an endpoint.</summary>
    /// <param name="networkId">The network.</param>
    /// <param name="endpointId">The endpoint.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when the rules are in place.</returns>
    ValueTask ProgramExternalConnectivityAsync(string networkId, string endpointId, CancellationToken cancellationToken = default);

    /// <summary>Removes what <see cref="ProgramExternalConnectivityAsync"/> programmed. Succeeds when nothing is programmed.</summary>
    /// <param name="networkId">The network.</param>
    /// <param name="endpointId">The endpoint.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when the rules are gone.</returns>
    ValueTask RevokeExternalConnectivityAsync(string networkId, string endpointId, CancellationToken cancellationToken = default);
}

/// <summary>A driver that wants node and datastore discovery events (multi-host drivers).</summary>
public interface IDiscoveryAwareDriver
{
    /// <summary>Something appeared: a node, a datastore, encryption keys.</summary>
    /// <param name="discovery">The event.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when the driver has taken the event in.</returns>
    ValueTask DiscoverNewAsync(DiscoveryEvent discovery, CancellationToken cancellationToken = default);

    /// <summary>Something went away.</summary>
    /// <param name="discovery">The event.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when the driver has taken the event in.</returns>
    ValueTask DiscoverDeleteAsync(DiscoveryEvent discovery, CancellationToken cancellationToken = default);
}

/// <summary>A driver that allocates cluster-wide network resources (for example VXLAN ids) on a manager node.</summary>
public interface INetworkAllocatorDriver
{
    /// <summary>Allocates a network's cluster-wide resources.</summary>
    /// <param name="networkId">The network.</param>
    /// <param name="options">The network's options.</param>
    /// <param name="ipv4">IPv4 pools.</param>
    /// <param name="ipv6">IPv6 pools.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>Options to pass on to <see cref="INetworkDriver.CreateNetworkAsync"/> on every node.</returns>
    ValueTask<IReadOnlyDictionary<string, string>> AllocateNetworkAsync(string networkId, IReadOnlyDictionary<string, string> options, IReadOnlyList<IpamData> ipv4, IReadOnlyList<IpamData> ipv6, CancellationToken cancellationToken = default);

    /// <summary>Frees what <see cref="AllocateNetworkAsync"/> allocated.</summary>
    /// <param name="networkId">The network.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when freed.</returns>
    ValueTask FreeNetworkAsync(string networkId, CancellationToken cancellationToken = default);
}
