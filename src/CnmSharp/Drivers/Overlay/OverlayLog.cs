using Microsoft.Extensions.Logging;

namespace CnmSharp.Drivers.Overlay;

/// <summary>Source-generated log messages of the overlay driver.</summary>
internal static partial class OverlayLog
{
    [LoggerMessage(1350, LogLevel.Information, "overlay driver: network {NetworkId} created (VNIs {Vnis}, MTU {Mtu}) on node {Node}")]
    public static partial void NetworkCreated(ILogger logger, string networkId, string vnis, int mtu, string node);

    [LoggerMessage(1351, LogLevel.Information, "overlay driver: network {NetworkId} deleted")]
    public static partial void NetworkDeleted(ILogger logger, string networkId);

    [LoggerMessage(1352, LogLevel.Warning, "overlay driver: restoring network {NetworkId} failed")]
    public static partial void RestoreFailed(ILogger logger, Exception exception, string networkId);

    [LoggerMessage(1353, LogLevel.Warning, "overlay driver: undo of {What} failed; continuing")]
    public static partial void UndoFailed(ILogger logger, Exception exception, string what);

    [LoggerMessage(1354, LogLevel.Warning, "overlay driver: global store unavailable ({Reason}); retrying")]
    public static partial void GlobalStoreUnavailable(ILogger logger, string reason);

    [LoggerMessage(1355, LogLevel.Warning, "overlay driver: writing {Key} to the global store failed")]
    public static partial void GlobalWriteFailed(ILogger logger, Exception exception, string key);

    [LoggerMessage(1356, LogLevel.Information, "overlay driver: lease {LeaseId} granted ({Ttl} s), {Keys} keys written on it")]
    public static partial void LeaseGranted(ILogger logger, long leaseId, double ttl, int keys);

    [LoggerMessage(1357, LogLevel.Warning, "overlay driver: lease {LeaseId} expired; publishing everything again on a new one")]
    public static partial void LeaseLost(ILogger logger, long leaseId);

    [LoggerMessage(1358, LogLevel.Debug, "overlay driver: network {NetworkId}: peer {Address} ({Mac}) at {Vtep} (node {Node}) programmed")]
    public static partial void PeerAdded(ILogger logger, string networkId, string address, string mac, string vtep, string node);

    [LoggerMessage(1359, LogLevel.Debug, "overlay driver: network {NetworkId}: peer {Address} (node {Node}) removed")]
    public static partial void PeerRemoved(ILogger logger, string networkId, string address, string node);

    [LoggerMessage(1360, LogLevel.Warning, "overlay driver: network {NetworkId}: programming peer {Address} (node {Node}) failed")]
    public static partial void PeerFailed(ILogger logger, Exception exception, string networkId, string address, string node);

    [LoggerMessage(1361, LogLevel.Information, "overlay driver: clean stop: {Keys} keys kept without a lease (lease {LeaseId} revoked)")]
    public static partial void Parked(ILogger logger, int keys, long leaseId);

    [LoggerMessage(1362, LogLevel.Warning, "overlay driver: clean stop: keeping this host's keys without a lease failed (they go when lease {LeaseId} expires)")]
    public static partial void ParkFailed(ILogger logger, Exception exception, long leaseId);
}
