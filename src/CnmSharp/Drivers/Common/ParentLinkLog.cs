using Microsoft.Extensions.Logging;

namespace CnmSharp.Drivers.Common;

/// <summary>Source-generated log messages of the link-on-a-parent drivers (macvlan, ipvlan).</summary>
internal static partial class ParentLinkLog
{
    [LoggerMessage(700, LogLevel.Information, "{Driver} driver: network {NetworkId} created on parent {Parent} ({How})")]
    public static partial void NetworkCreated(ILogger logger, string driver, string networkId, string parent, string how);

    [LoggerMessage(701, LogLevel.Information, "{Driver} driver: network {NetworkId} deleted (parent {Parent})")]
    public static partial void NetworkDeleted(ILogger logger, string driver, string networkId, string parent);

    [LoggerMessage(702, LogLevel.Warning, "{Driver} driver: link {Parent} is not the one network {NetworkId} made ({Found}); left alone")]
    public static partial void ParentNotOwned(ILogger logger, string driver, string parent, string networkId, string found);

    [LoggerMessage(703, LogLevel.Warning, "{Driver} driver: undo of {What} failed; continuing")]
    public static partial void UndoFailed(ILogger logger, Exception exception, string driver, string what);

    [LoggerMessage(704, LogLevel.Warning, "{Driver} driver: restoring network {NetworkId} (parent {Parent}) failed")]
    public static partial void RestoreFailed(ILogger logger, Exception exception, string driver, string networkId, string parent);

    [LoggerMessage(705, LogLevel.Information, "{Driver} driver: restored {Networks} networks and {Endpoints} endpoints")]
    public static partial void Restored(ILogger logger, string driver, int networks, int endpoints);

    [LoggerMessage(706, LogLevel.Debug, "{Driver} driver: reloaded {Networks} networks and {Endpoints} endpoints from the store")]
    public static partial void Reloaded(ILogger logger, string driver, int networks, int endpoints);

    [LoggerMessage(707, LogLevel.Information, "{Driver} driver: the kernel has no {Kind} device; internal parent {Parent} is {StandIn} instead")]
    public static partial void InternalParentStandIn(ILogger logger, string driver, string kind, string parent, string standIn);
}
