using CnmSharp.Drivers;

namespace CnmSharp.Core;

/// <summary>
/// What a read-only controller (<see cref="CnmOptions.ReadOnly"/>) registers in place of a driver: its name only, so
/// that the driver's networks load from the store. The driver itself is never created (no kernel, firewall or host
/// port work); every call is refused. The core refuses changes before they reach a driver; this is the second line.
/// </summary>
internal sealed class ReadOnlyDriver(string name) : INetworkDriver
{
    public DriverCapability Capability => DriverCapability.LocalScope;

    public ValueTask CreateNetworkAsync(NetworkCreateRequest request, CancellationToken cancellationToken = default) => throw Refused();

    public ValueTask DeleteNetworkAsync(string networkId, CancellationToken cancellationToken = default) => throw Refused();

    public ValueTask CreateEndpointAsync(EndpointCreateRequest request, IInterfaceInfo interfaceInfo, CancellationToken cancellationToken = default) => throw Refused();

    public ValueTask DeleteEndpointAsync(string networkId, string endpointId, CancellationToken cancellationToken = default) => throw Refused();

    public ValueTask<IReadOnlyDictionary<string, string>> GetEndpointOperationalInfoAsync(string networkId, string endpointId, CancellationToken cancellationToken = default) => throw Refused();

    public ValueTask JoinAsync(JoinRequest request, IJoinInfo joinInfo, CancellationToken cancellationToken = default) => throw Refused();

    public ValueTask LeaveAsync(string networkId, string endpointId, CancellationToken cancellationToken = default) => throw Refused();

    private CnmConflictException Refused() => NetworkController.ReadOnlyRefusal($"driver \"{name}\"");
}
