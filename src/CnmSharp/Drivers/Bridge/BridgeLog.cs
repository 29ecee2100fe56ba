using Microsoft.Extensions.Logging;

namespace CnmSharp.Drivers.Bridge;

/// <summary>Source-generated log messages of the bridge driver.</summary>
internal static partial class BridgeLog
{
    [LoggerMessage(500, LogLevel.Warning, "Bridge driver: step {Step} of {Operation} failed; undoing the steps done")]
    public static partial void StepFailed(ILogger logger, Exception exception, string operation, string step);

    [LoggerMessage(501, LogLevel.Warning, "Bridge driver: undo of step {Step} of {Operation} failed; continuing")]
    public static partial void UndoFailed(ILogger logger, Exception exception, string operation, string step);

    [LoggerMessage(502, LogLevel.Information, "Bridge driver: sysctl {Key} does not exist in the host namespace; continuing without it")]
    public static partial void SysctlMissing(ILogger logger, string key);

    [LoggerMessage(503, LogLevel.Information, "Bridge network {NetworkId} created on bridge {Bridge} ({Adopted})")]
    public static partial void NetworkCreated(ILogger logger, string networkId, string bridge, string adopted);

    [LoggerMessage(504, LogLevel.Information, "Bridge network {NetworkId} deleted (bridge {Bridge})")]
    public static partial void NetworkDeleted(ILogger logger, string networkId, string bridge);

    [LoggerMessage(505, LogLevel.Debug, "Host veth {Veth} reaped by the kernel after {Milliseconds} ms")]
    public static partial void VethReaped(ILogger logger, string veth, long milliseconds);

    [LoggerMessage(506, LogLevel.Warning, "Host veth {Veth} still present {Milliseconds} ms after its sandbox's namespace {SandboxKey} went (something still holds that namespace); deleting it")]
    public static partial void ReapTimedOut(ILogger logger, string veth, long milliseconds, string sandboxKey);

    [LoggerMessage(507, LogLevel.Information, "Bridge driver restored {Networks} networks and {Endpoints} endpoints from the store")]
    public static partial void Restored(ILogger logger, int networks, int endpoints);

    [LoggerMessage(508, LogLevel.Warning, "Bridge driver: restoring network {NetworkId} (bridge {Bridge}) in the kernel failed")]
    public static partial void RestoreFailed(ILogger logger, Exception exception, string networkId, string bridge);

    [LoggerMessage(509, LogLevel.Warning, "Bridge driver: cleanup of {What} failed; continuing")]
    public static partial void CleanupFailed(ILogger logger, Exception exception, string what);

    [LoggerMessage(510, LogLevel.Warning, "Bridge driver: interface name {Name} of endpoint {EndpointId} is taken by a link the driver does not own; using {NewName} instead")]
    public static partial void VethNameTaken(ILogger logger, string name, string endpointId, string newName);

    [LoggerMessage(511, LogLevel.Warning, "Bridge driver: link {Name} (kind {Kind}, master {MasterIndex}) is named by the record of endpoint {EndpointId} but is not a veth of its bridge; leaving it alone")]
    public static partial void LinkNotOwned(ILogger logger, string name, string kind, int masterIndex, string endpointId);

    [LoggerMessage(512, LogLevel.Warning, "Bridge driver: device {Name} of network {NetworkId} is not a bridge ({Kind}); leaving it alone")]
    public static partial void BridgeNotOwned(ILogger logger, string name, string networkId, string kind);

    [LoggerMessage(513, LogLevel.Warning, "Bridge driver: reload could not take published port {Binding} of endpoint {EndpointId} again")]
    public static partial void ReloadPortConflict(ILogger logger, Exception exception, string binding, string endpointId);

    [LoggerMessage(514, LogLevel.Debug, "Bridge driver reloaded {Networks} networks and {Endpoints} endpoints from the store")]
    public static partial void Reloaded(ILogger logger, int networks, int endpoints);

    [LoggerMessage(515, LogLevel.Debug, "Bridge driver adopted {Networks} networks and {Endpoints} endpoints: host namespace {Instance} was restored by an earlier start")]
    public static partial void Adopted(ILogger logger, int networks, int endpoints, string instance);
}
