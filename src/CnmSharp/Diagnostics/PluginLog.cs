using Microsoft.Extensions.Logging;

namespace CnmSharp.Diagnostics;

/// <summary>Source-generated log messages of node discovery, network allocation and remote plugins (ids 1100-1199).</summary>
internal static partial class PluginLog
{
    [LoggerMessage(1100, LogLevel.Warning, "Driver {Driver} refused node discovery ({Kind} {Address}); it goes on without it")]
    public static partial void DiscoveryFailed(ILogger logger, Exception exception, string driver, string kind, string address);

    [LoggerMessage(1101, LogLevel.Warning, "Driver {Driver} could not free network {NetworkId}")]
    public static partial void FreeNetworkFailed(ILogger logger, Exception exception, string driver, string networkId);

    [LoggerMessage(1102, LogLevel.Information, "Plugin {Name} found at {Address} ({Source})")]
    public static partial void PluginFound(ILogger logger, string name, string address, string source);

    [LoggerMessage(1103, LogLevel.Warning, "Plugin {Name} is reached over plain HTTP at {Address}, which is not a loopback address: its traffic (and any container's network configuration) is neither encrypted nor authenticated")]
    public static partial void InsecurePlugin(ILogger logger, string name, string address);

    [LoggerMessage(1104, LogLevel.Information, "Plugin {Name} activated: implements {Interfaces}")]
    public static partial void PluginActivated(ILogger logger, string name, string interfaces);

    [LoggerMessage(1105, LogLevel.Warning, "Plugin {Name}: {Method} failed (attempt {Attempt}), retrying in {Delay}")]
    public static partial void PluginRetry(ILogger logger, Exception exception, string name, string method, int attempt, TimeSpan delay);

    [LoggerMessage(1106, LogLevel.Warning, "Plugin {Name} is back after a restart; it is activated again")]
    public static partial void PluginReactivated(ILogger logger, string name);

    [LoggerMessage(1107, LogLevel.Warning, "IPAM plugin {Name} asks for request replay: {Pools} pools and {Addresses} addresses requested again")]
    public static partial void IpamReplayed(ILogger logger, string name, int pools, int addresses);

    [LoggerMessage(1108, LogLevel.Warning, "IPAM plugin {Name}: replaying {What} failed")]
    public static partial void IpamReplayFailed(ILogger logger, Exception exception, string name, string what);

    [LoggerMessage(1109, LogLevel.Warning, "Remote driver {Name}: rolling back endpoint {EndpointId} after a reply that could not be applied")]
    public static partial void EndpointRollback(ILogger logger, Exception exception, string name, string endpointId);

    [LoggerMessage(1110, LogLevel.Information, "Plugin {Name} registered as {Kind}")]
    public static partial void PluginRegistered(ILogger logger, string name, string kind);

    [LoggerMessage(1112, LogLevel.Warning, "Plugin {Name} ({Kind}) of stored networks could not be resolved at start; its networks stay unloaded until it is")]
    public static partial void PluginRestoreFailed(ILogger logger, Exception exception, string name, string kind);

    [LoggerMessage(1111, LogLevel.Warning, "Plugin discovery file {Path} is ignored: {Reason}")]
    public static partial void BadSpecFile(ILogger logger, string path, string reason);
}
