namespace CnmSharp.Drivers.Common;

/// <summary>A driver with one network that cannot be deleted and no-op endpoints (what <c>null</c> and <c>host</c> share).</summary>
internal sealed class SingleNetworkDriver(string name, DriverCapability capability) : INetworkDriver
{
    private readonly Lock _lock = new();
    private string? _networkId;

    public DriverCapability Capability { get; } = capability;

    public ValueTask CreateNetworkAsync(NetworkCreateRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        lock (_lock)
        {
            if (_networkId is not null && !string.Equals(_networkId, request.NetworkId, StringComparison.Ordinal))
            {
                throw new CnmConflictException(CnmErrorCodes.DriverForbidden, $"network \"{request.NetworkName}\"", $"only one instance of \"{name}\" network is allowed");
            }

            _networkId = request.NetworkId;
        }

        return ValueTask.CompletedTask;
    }

    public ValueTask DeleteNetworkAsync(string networkId, CancellationToken cancellationToken = default) =>
        throw new CnmConflictException(CnmErrorCodes.DriverForbidden, $"network {networkId}", $"network of type \"{name}\" cannot be deleted");

    public ValueTask CreateEndpointAsync(EndpointCreateRequest request, IInterfaceInfo interfaceInfo, CancellationToken cancellationToken = default) => ValueTask.CompletedTask;

    public ValueTask DeleteEndpointAsync(string networkId, string endpointId, CancellationToken cancellationToken = default) => ValueTask.CompletedTask;

    public ValueTask<IReadOnlyDictionary<string, string>> GetEndpointOperationalInfoAsync(string networkId, string endpointId, CancellationToken cancellationToken = default) =>
        ValueTask.FromResult(EmptyOptions.Instance);

    public ValueTask JoinAsync(JoinRequest request, IJoinInfo joinInfo, CancellationToken cancellationToken = default) => ValueTask.CompletedTask;

    public ValueTask LeaveAsync(string networkId, string endpointId, CancellationToken cancellationToken = default) => ValueTask.CompletedTask;
}
