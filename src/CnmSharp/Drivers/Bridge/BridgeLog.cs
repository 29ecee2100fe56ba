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
}
