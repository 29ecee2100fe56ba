using Microsoft.Extensions.Logging;

namespace CnmSharp.Dns;

/// <summary>Source-generated log messages of the embedded DNS.</summary>
internal static partial class DnsLog
{
    [LoggerMessage(200, LogLevel.Debug, "Embedded DNS listening in sandbox {SandboxId} ({Key})")]
    public static partial void Listening(ILogger logger, string sandboxId, string key);

    [LoggerMessage(201, LogLevel.Warning, "Embedded DNS could not listen in sandbox {SandboxId} ({Key}); retried at the next change")]
    public static partial void ListenFailed(ILogger logger, Exception exception, string sandboxId, string key);

    [LoggerMessage(202, LogLevel.Debug, "Embedded DNS stopped in sandbox {SandboxId}")]
    public static partial void Stopped(ILogger logger, string sandboxId);

    [LoggerMessage(203, LogLevel.Debug, "Embedded DNS in sandbox {SandboxId}: upstream {Upstream} failed")]
    public static partial void UpstreamFailed(ILogger logger, Exception? exception, string sandboxId, string upstream);

    [LoggerMessage(204, LogLevel.Warning, "Embedded DNS in sandbox {SandboxId}: a {Transport} loop failed")]
    public static partial void LoopFailed(ILogger logger, Exception exception, string sandboxId, string transport);

    [LoggerMessage(205, LogLevel.Warning, "The embedded DNS state could not be updated")]
    public static partial void ApplyFailed(ILogger logger, Exception exception);
}
