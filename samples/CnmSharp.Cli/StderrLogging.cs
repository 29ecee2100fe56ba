using Microsoft.Extensions.Logging;

namespace CnmSharp.Cli;

/// <summary>
/// What the controller and its drivers log at <see cref="LogLevel.Warning"/> and above reaches the user: one line on
/// stderr each, <c>cnm: warning: MESSAGE</c> (or <c>cnm: error: ...</c>), the exception's message appended when there
/// is one, control characters escaped. Recovery reports this way each object it removes or rolls back. Nothing below Warning is written.
/// </summary>
internal sealed class StderrLoggerProvider : ILoggerProvider
{
    private readonly TextWriter _writer;
    private readonly Lock _lock = new();

    /// <summary>Writes to <paramref name="writer"/>, or to <see cref="Console.Error"/> when null.</summary>
    public StderrLoggerProvider(TextWriter? writer = null) => _writer = writer ?? Console.Error;

    public ILogger CreateLogger(string categoryName) => new StderrLogger(this);

    public void Dispose()
    {
    }

    /// <summary>The text of one log line (no newline), or null when <paramref name="level"/> is not reported.</summary>
    internal static string? Format(LogLevel level, string message, Exception? exception)
    {
        var label = level switch
        {
            LogLevel.Warning => "warning",
            LogLevel.Error => "error",
            LogLevel.Critical => "critical",
            _ => null,
        };
        if (label is null)
        {
            return null;
        }

        var text = exception is null || message.Contains(exception.Message, StringComparison.Ordinal)
            ? message
            : $"{message}: {exception.Message}";
        return $"cnm: {label}: {CliText.Escape(text.Trim())}";
    }

    private void Write(string line)
    {
        lock (_lock)
        {
            _writer.WriteLine(line);
            _writer.Flush();
        }
    }

    private sealed class StderrLogger(StderrLoggerProvider provider) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel is >= LogLevel.Warning and < LogLevel.None;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (!IsEnabled(logLevel))
            {
                return;
            }

            var line = Format(logLevel, formatter(state, exception), exception);
            if (line is not null)
            {
                provider.Write(line);
            }
        }
    }
}

/// <summary>The smallest <see cref="ILoggerFactory"/> over one <see cref="StderrLoggerProvider"/> (the CLI needs no
/// logging framework beyond the abstractions the library already uses).</summary>
internal sealed class StderrLoggerFactory(StderrLoggerProvider provider) : ILoggerFactory
{
    /// <summary>The factory the CLI gives every controller it builds.</summary>
    public static StderrLoggerFactory Instance { get; } = new(new StderrLoggerProvider());

    public ILogger CreateLogger(string categoryName) => provider.CreateLogger(categoryName);

    public void AddProvider(ILoggerProvider provider) =>
        throw new NotSupportedException("the cnm logger factory writes to stderr only");

    public void Dispose()
    {
    }
}
