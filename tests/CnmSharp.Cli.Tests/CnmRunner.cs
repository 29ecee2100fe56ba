using System.Diagnostics;
using System.Reflection;

namespace CnmSharp.Cli.Tests;

/// <summary>The result of one process.</summary>
internal sealed record ProcessResult(int ExitCode, string StdOut, string StdErr)
{
    public string[] StdErrLines => StdErr.Split('\n', StringSplitOptions.RemoveEmptyEntries);

    public override string ToString() => $"exit {ExitCode}\n--- stdout\n{StdOut}\n--- stderr\n{StdErr}";
}

/// <summary>Runs <c>cnm</c> (and other tools) as separate processes, the way a user does.</summary>
internal static class CnmRunner
{
    public static string CnmDll { get; } = Metadata("CnmDll");

    public static string RepoRoot { get; } = Metadata("RepoRoot");

    public static string Configuration { get; } = Metadata("Configuration");

    public static Task<ProcessResult> CnmAsync(IEnumerable<string> globalArgs, params string[] args) =>
        RunAsync("dotnet", [CnmDll, .. globalArgs, .. args], TimeSpan.FromMinutes(2));

    /// <summary>Starts one <c>cnm</c> process and returns at once (its output is collected in the background).</summary>
    public static StartedProcess StartCnm(IEnumerable<string> globalArgs, IReadOnlyList<string> args) =>
        StartedProcess.Start("dotnet", [CnmDll, .. globalArgs, .. args], "cnm " + string.Join(' ', args));

    /// <summary>Runs <c>cnm</c> with extra environment variables (a value of null removes the variable).</summary>
    public static Task<ProcessResult> CnmWithEnvironmentAsync(IReadOnlyDictionary<string, string?> environment, IEnumerable<string> globalArgs, params string[] args) =>
        RunAsync("dotnet", [CnmDll, .. globalArgs, .. args], TimeSpan.FromMinutes(2), environment: environment);

    public static async Task<ProcessResult> RunAsync(string file, IEnumerable<string> args, TimeSpan timeout, string? workingDirectory = null, IReadOnlyDictionary<string, string?>? environment = null)
    {
        var start = new ProcessStartInfo(file)
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = workingDirectory ?? RepoRoot,
        };
        foreach (var a in args)
        {
            start.ArgumentList.Add(a);
        }

        start.Environment.Remove("CNM_STATE_DIR");
        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        start.Environment["DOTNET_NOLOGO"] = "1";
        foreach (var (key, value) in environment ?? new Dictionary<string, string?>())
        {
            if (value is null)
            {
                start.Environment.Remove(key);
            }
            else
            {
                start.Environment[key] = value;
            }
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException($"cannot start {file}");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} {string.Join(' ', args)} did not finish within {timeout}");
        }

        return new ProcessResult(process.ExitCode, await stdout, await stderr);
    }

    private static string Metadata(string key) =>
        typeof(CnmRunner).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == key).Value
        ?? throw new InvalidOperationException(key);
}

/// <summary>A process this test started: its output is read in the background; it can be SIGKILLed by its PID.</summary>
internal sealed class StartedProcess : IDisposable
{
    private readonly Process _process;
    private readonly Task<string> _stdout;
    private readonly Task<string> _stderr;
    private int _killed;

    private StartedProcess(Process process, string description)
    {
        _process = process;
        Description = description;
        Pid = process.Id;
        _stdout = process.StandardOutput.ReadToEndAsync();
        _stderr = process.StandardError.ReadToEndAsync();
    }

    /// <summary>The command line, for messages.</summary>
    public string Description { get; }

    public int Pid { get; }

    /// <summary>True when <see cref="Kill"/> sent SIGKILL while the process was still running.</summary>
    public bool Killed => Volatile.Read(ref _killed) == 1;

    public bool HasExited
    {
        get
        {
            try
            {
                return _process.HasExited;
            }
            catch (InvalidOperationException)
            {
                return true;
            }
        }
    }

    public static StartedProcess Start(string file, IEnumerable<string> args, string description)
    {
        var start = new ProcessStartInfo(file)
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = CnmRunner.RepoRoot,
        };
        foreach (var a in args)
        {
            start.ArgumentList.Add(a);
        }

        start.Environment.Remove("CNM_STATE_DIR");
        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        start.Environment["DOTNET_NOLOGO"] = "1";
        var process = Process.Start(start) ?? throw new InvalidOperationException($"cannot start {file}");
        return new StartedProcess(process, description);
    }

    /// <summary>SIGKILL to this process only (its PID; children it started are left to finish), when it still runs.
    /// Returns whether the signal was sent.</summary>
    public bool Kill()
    {
        if (HasExited)
        {
            return false;
        }

        try
        {
            _process.Kill(entireProcessTree: false);
            Volatile.Write(ref _killed, 1);
            return true;
        }
        catch (InvalidOperationException)
        {
            return false; // it exited in between
        }
    }

    /// <summary>Waits for the exit; past <paramref name="timeout"/> the process is killed and a
    /// <see cref="TimeoutException"/> thrown.</summary>
    public async Task<ProcessResult> WaitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            Kill();
            await _process.WaitForExitAsync(CancellationToken.None);
            throw new TimeoutException($"{Description} (pid {Pid}) did not finish within {timeout}");
        }

        return new ProcessResult(_process.ExitCode, await _stdout, await _stderr);
    }

    public void Dispose() => _process.Dispose();
}
