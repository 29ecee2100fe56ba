using Microsoft.Extensions.Logging;

namespace CnmSharp.Diagnostics;

/// <summary>Source-generated log messages of the core.</summary>
internal static partial class Log
{
    [LoggerMessage(1, LogLevel.Information, "Controller {ControllerId} started on host namespace {HostNamespace}: {Networks} networks, {Endpoints} endpoints, {Sandboxes} sandboxes")]
    public static partial void ControllerStarted(ILogger logger, string controllerId, string hostNamespace, int networks, int endpoints, int sandboxes);

    [LoggerMessage(2, LogLevel.Information, "Network {Name} ({NetworkId}) created with driver {Driver}")]
    public static partial void NetworkCreated(ILogger logger, string name, string networkId, string driver);

    [LoggerMessage(3, LogLevel.Information, "Network {Name} ({NetworkId}) deleted")]
    public static partial void NetworkDeleted(ILogger logger, string name, string networkId);

    [LoggerMessage(4, LogLevel.Debug, "Endpoint {Name} ({EndpointId}) created on network {Network}")]
    public static partial void EndpointCreated(ILogger logger, string name, string endpointId, string network);

    [LoggerMessage(5, LogLevel.Debug, "Endpoint {Name} ({EndpointId}) deleted")]
    public static partial void EndpointDeleted(ILogger logger, string name, string endpointId);

    [LoggerMessage(6, LogLevel.Debug, "Endpoint {EndpointId} joined sandbox {SandboxId} as {Interface}")]
    public static partial void Joined(ILogger logger, string endpointId, string sandboxId, string? @interface);

    [LoggerMessage(7, LogLevel.Debug, "Endpoint {EndpointId} left sandbox {SandboxId}")]
    public static partial void Left(ILogger logger, string endpointId, string sandboxId);

    [LoggerMessage(8, LogLevel.Debug, "Sandbox {SandboxId} for container {ContainerId} created at {Key}")]
    public static partial void SandboxCreated(ILogger logger, string sandboxId, string containerId, string key);

    [LoggerMessage(9, LogLevel.Debug, "Sandbox {SandboxId} deleted")]
    public static partial void SandboxDeleted(ILogger logger, string sandboxId);

    [LoggerMessage(10, LogLevel.Warning, "Rollback step {Step} of {Operation} failed; continuing")]
    public static partial void RollbackStepFailed(ILogger logger, Exception exception, string step, string operation);

    [LoggerMessage(11, LogLevel.Warning, "Recovering interrupted operation {Kind} {IntentId} found at start")]
    public static partial void RecoveringIntent(ILogger logger, string kind, string intentId);

    [LoggerMessage(12, LogLevel.Warning, "Released address {Address} of pool {PoolId}: its owner {Owner} no longer exists")]
    public static partial void ReleasedOrphanAddress(ILogger logger, string address, string poolId, string? owner);

    [LoggerMessage(13, LogLevel.Warning, "Released IPAM pool {PoolId}: no network uses it")]
    public static partial void ReleasedOrphanPool(ILogger logger, string poolId);

    [LoggerMessage(14, LogLevel.Warning, "Sandbox {SandboxId}: its namespace {Key} is gone; removing the sandbox")]
    public static partial void StaleSandbox(ILogger logger, string sandboxId, string key);

    [LoggerMessage(15, LogLevel.Warning, "Driver {Driver} failed to delete network {NetworkId}; its record and pools stay and the delete is retried")]
    public static partial void DriverDeleteNetworkFailed(ILogger logger, Exception exception, string driver, string networkId);

    [LoggerMessage(16, LogLevel.Warning, "Driver {Driver} failed to delete endpoint {EndpointId}; its record and addresses stay and the delete is retried")]
    public static partial void DriverDeleteEndpointFailed(ILogger logger, Exception exception, string driver, string endpointId);

    [LoggerMessage(17, LogLevel.Warning, "Releasing {What} failed; the sweep at the next start will release it")]
    public static partial void ReleaseFailed(ILogger logger, Exception exception, string what);

    [LoggerMessage(110, LogLevel.Warning, "The published ports of endpoint {EndpointId} could not be read or recorded; it reports the requested bindings")]
    public static partial void PortMapUnavailable(ILogger logger, Exception exception, string endpointId);

    [LoggerMessage(111, LogLevel.Warning, "Sandbox {SandboxId} has no default gateway: an endpoint on a non-internal network got none from its driver, nor a default route, and did not disable the gateway service (and none of them is on a network whose driver makes it join the gateway network)")]
    public static partial void NoDefaultGateway(ILogger logger, string sandboxId);

    [LoggerMessage(18, LogLevel.Warning, "Teardown of {What} did not finish; its record stays marked and the next start finishes it")]
    public static partial void TeardownFailed(ILogger logger, Exception exception, string what);

    [LoggerMessage(19, LogLevel.Information, "Network {Name} ({NetworkId}) of driver {Driver}, registered after start, loaded with {Endpoints} endpoint(s)")]
    public static partial void NetworkAdopted(ILogger logger, string name, string networkId, string driver, int endpoints);

    [LoggerMessage(50, LogLevel.Warning, "Quarantined store record {Key}: {Reason}. It is kept under {QuarantineKey} for inspection and repair; nothing acts on it")]
    public static partial void Quarantined(ILogger logger, string key, string reason, string quarantineKey);

    [LoggerMessage(51, LogLevel.Warning, "Rolling back interrupted operation {Kind} {IntentId} of {Owner}, which is no longer running")]
    public static partial void RollingBackIntent(ILogger logger, string kind, string intentId, string owner);

    [LoggerMessage(52, LogLevel.Debug, "The store changed since this controller last held it (revision {Seen} to {Now}); reloading")]
    public static partial void Reloading(ILogger logger, long seen, long now);

    [LoggerMessage(53, LogLevel.Warning, "Endpoint {EndpointId} of network {NetworkId} was left marked for teardown by a controller that is no longer running; finishing it")]
    public static partial void AdoptedTeardown(ILogger logger, string endpointId, string networkId);

    [LoggerMessage(20, LogLevel.Warning, "Teardown of {What} failed {Attempts} times; its record stays marked and the next start tries again")]
    public static partial void TeardownGivenUp(ILogger logger, string what, int attempts);

    [LoggerMessage(21, LogLevel.Warning, "Finishing the interrupted delete of {Kind} {Id} found at start")]
    public static partial void RecoveringDelete(ILogger logger, string kind, string id);

    [LoggerMessage(112, LogLevel.Information, "Read-only controller: store record {Key} is not shown ({Reason}); a read-write controller sets it aside")]
    public static partial void SkippedUnreadableRecord(ILogger logger, string key, string reason);

    [LoggerMessage(130, LogLevel.Information, "Sandbox {SandboxId} joined gateway network endpoint {EndpointName} ({EndpointId}) for outbound access")]
    public static partial void GatewayNetworkJoined(ILogger logger, string sandboxId, string endpointName, string endpointId);

    [LoggerMessage(131, LogLevel.Information, "Sandbox {SandboxId} no longer needs its gateway network endpoint {EndpointId}: removed")]
    public static partial void GatewayNetworkLeft(ILogger logger, string sandboxId, string endpointId);

    [LoggerMessage(132, LogLevel.Warning, "Converging the gateway network endpoint of sandbox {SandboxId} failed; it is tried again at its next join or leave and at the next start")]
    public static partial void GatewayNetworkConvergeFailed(ILogger logger, Exception exception, string sandboxId);

    [LoggerMessage(133, LogLevel.Information, "Created gateway network {Name} ({NetworkId}) with driver {Driver}")]
    public static partial void GatewayNetworkCreated(ILogger logger, string name, string networkId, string driver);
}
