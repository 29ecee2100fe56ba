using System.Diagnostics;

namespace CnmSharp.Benchmarks.Common;

/// <summary>Runs external programs (no shell) for the peer tools and the checks.</summary>
internal static class Exec
{
    /// <summary>Runs a program; throws with its stderr when it exits non-zero.</summary>
    public static async Task<string> RunAsync(string fileName, IReadOnlyList<string> args, string? stdin = null, IReadOnlyDictionary<string, string>? environment = null, CancellationToken cancellationToken = default) =>
        (await RunWithErrorAsync(fileName, args, stdin, environment, cancellationToken).ConfigureAwait(false)).Output;

    /// <summary>
    /// Peak RSS in KiB of one command, measured by <c>/usr/bin/time -f %M</c> (its own wait4): the runner's
    /// getrusage(RUSAGE_CHILDREN) cannot tell, because a child forked from the runner inherits the runner's RSS
    /// high-water mark until it execs.
    /// </summary>
    public static async Task<long?> PeakRssKibAsync(IReadOnlyList<string> command, string? stdin = null, IReadOnlyDictionary<string, string>? environment = null)
    {
        if (!File.Exists("/usr/bin/time"))
        {
            return null;
        }

        var (_, error) = await RunWithErrorAsync("/usr/bin/time", ["-f", "%M", .. command], stdin, environment).ConfigureAwait(false);
        var last = error.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).LastOrDefault();
        return long.TryParse(last, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var kib) ? kib : null;
    }

    /// <summary>Runs a program; returns stdout and stderr; throws when it exits non-zero.</summary>
    public static async Task<(string Output, string Error)> RunWithErrorAsync(string fileName, IReadOnlyList<string> args, string? stdin = null, IReadOnlyDictionary<string, string>? environment = null, CancellationToken cancellationToken = default)
    {
        var start = new ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = stdin is not null,
            UseShellExecute = false,
        };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            start.Environment[key] = value;
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException($"cannot start {fileName}");
        var stdout = process.StandardOutput.ReadToEndAsync(cancellationToken);
        var stderr = process.StandardError.ReadToEndAsync(cancellationToken);
        if (stdin is not null)
        {
            await process.StandardInput.WriteAsync(stdin).ConfigureAwait(false);
            process.StandardInput.Close();
        }

        await process.WaitForExitAsync(cancellationToken).ConfigureAwait(false);
        var output = await stdout.ConfigureAwait(false);
        var error = await stderr.ConfigureAwait(false);
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{fileName} {string.Join(' ', args)} exited {process.ExitCode}: {error.Trim()}");
        }

        return (output, error);
    }

    /// <summary><c>nsenter --net=PATH ip ARGS</c>.</summary>
    public static Task<string> IpAsync(string netnsPath, params string[] args) =>
        RunAsync("nsenter", [$"--net={netnsPath}", "ip", .. args]);

    /// <summary><c>nsenter --net=PATH ip -batch -</c> with <paramref name="commands"/> on stdin.</summary>
    public static Task<string> IpBatchAsync(string netnsPath, string commands) =>
        RunAsync("nsenter", [$"--net={netnsPath}", "ip", "-batch", "-"], commands);
}
