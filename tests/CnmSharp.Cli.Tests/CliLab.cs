using System.Security.Cryptography;
using System.Text;
using CnmSharp.Testing;

namespace CnmSharp.Cli.Tests;

/// <summary>
/// One test's world: a private host namespace, a fresh temporary folder holding the state and run directories, the
/// global <c>cnm</c> options pointing at them, and every process and library controller the test started. Disposing
/// SIGKILLs the processes still running (by PID, only those), disposes the controllers, removes the sandbox namespaces
/// of the run directory, the folder and the host namespace (with every bridge, veth and rule in it), also after a
/// failed test.
/// </summary>
internal sealed class CliLab : IAsyncDisposable
{
    private readonly List<StartedProcess> _processes = [];
    private readonly List<IAsyncDisposable> _owned = [];
    private readonly Lock _lock = new();

    private CliLab(TestHostNamespace host, string root)
    {
        Host = host;
        Root = root;
        StateDirectory = Path.Combine(root, "state");
        RunDirectory = Path.Combine(root, "run");
        GlobalArgs = ["--state-dir", StateDirectory, "--run-dir", RunDirectory, "--host-netns", host.Path];
        Suffix = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(3));
    }

    /// <summary>The exit code <see cref="RunBatchAsync"/> reports for a process that did not finish in time.</summary>
    public const int TimedOutExitCode = -1;

    public TestHostNamespace Host { get; }

    public string Root { get; }

    public string StateDirectory { get; }

    public string RunDirectory { get; }

    public string[] GlobalArgs { get; }

    /// <summary>Six hex digits unique to this lab: names of networks and containers end with it.</summary>
    public string Suffix { get; }

    public static async Task<CliLab> CreateAsync()
    {
        var host = await TestHostNamespace.CreateAsync();
        var root = Path.Combine(Path.GetTempPath(), "cnmcc-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4)));
        Directory.CreateDirectory(root);
        return new CliLab(host, root);
    }

    /// <summary>Runs one <c>cnm</c> command and waits for it (2 minutes at most).</summary>
    public async Task<ProcessResult> CnmAsync(params string[] args)
    {
        var p = Start(args);
        return await p.WaitAsync(TimeSpan.FromMinutes(2));
    }

    /// <summary>Starts one <c>cnm</c> command; the lab kills it at dispose if it still runs.</summary>
    public StartedProcess Start(IReadOnlyList<string> args)
    {
        var p = CnmRunner.StartCnm(GlobalArgs, args);
        lock (_lock)
        {
            _processes.Add(p);
        }

        return p;
    }

    /// <summary>Starts every command at once (one process each) and waits for all; each gets
    /// <paramref name="timeout"/> from the start of the batch.</summary>
    public async Task<IReadOnlyList<BatchResult>> RunBatchAsync(IReadOnlyList<string[]> commands, TimeSpan timeout)
    {
        var started = commands.Select(Start).ToList();
        var results = await Task.WhenAll(started.Select(p => WaitOrTimeOutAsync(p, timeout)));
        return [.. commands.Select((c, i) => new BatchResult(c, started[i], results[i]))];
    }

    /// <summary>The process's result; one that does not finish within <paramref name="timeout"/> is SIGKILLed and
    /// reported with <see cref="TimedOutExitCode"/>.</summary>
    public static async Task<ProcessResult> WaitOrTimeOutAsync(StartedProcess process, TimeSpan timeout)
    {
        try
        {
            return await process.WaitAsync(timeout);
        }
        catch (TimeoutException ex)
        {
            return new ProcessResult(TimedOutExitCode, "", ex.Message + "; killed");
        }
    }

    /// <summary>Something the lab disposes at teardown, before the directories go (a library controller).</summary>
    public T Own<T>(T resource)
        where T : IAsyncDisposable
    {
        lock (_lock)
        {
            _owned.Add(resource);
        }

        return resource;
    }

    /// <summary>A library controller on this lab's state directory, run directory and host namespace.</summary>
    public async Task<NetworkController> OpenControllerAsync() =>
        Own(await new NetworkControllerBuilder()
            .Configure(o =>
            {
                o.StateDirectory = StateDirectory;
                o.RunDirectory = RunDirectory;
                o.HostNamespacePath = Host.Path;
            })
            .BuildAsync());

    /// <summary>The failures among <paramref name="results"/> (exit code not 0), described with their output; the
    /// first few in full, the others by their first stderr line.</summary>
    public static string DescribeFailures(IEnumerable<BatchResult> results, int full = 4)
    {
        var failed = results.Where(r => r.Result.ExitCode != 0).ToList();
        if (failed.Count == 0)
        {
            return "";
        }

        var text = new StringBuilder($"{failed.Count} process(es) failed:\n");
        foreach (var (r, i) in failed.Select((r, i) => (r, i)))
        {
            text.Append(i < full
                ? $"  {r.Process.Description}: {Indent(r.Result.ToString())}\n"
                : $"  {r.Process.Description}: exit {r.Result.ExitCode}: {r.Result.StdErrLines.FirstOrDefault()}\n");
        }

        return text.ToString();
    }

    /// <summary>The PID of this lab's <c>cnm dns serve</c> (from its run directory's <c>dns.pid</c>, checked against
    /// the process's command line), or null when none runs.</summary>
    public int? DnsResolverPid()
    {
        var pidFile = Path.Combine(RunDirectory, "dns.pid");
        try
        {
            if (!File.Exists(pidFile) || !int.TryParse(File.ReadAllText(pidFile).Trim(), System.Globalization.CultureInfo.InvariantCulture, out var pid))
            {
                return null;
            }

            var cmdline = File.ReadAllText($"/proc/{pid}/cmdline").Split('\0');
            return cmdline.Contains(RunDirectory) && cmdline.Contains("serve") ? pid : null;
        }
        catch (IOException)
        {
            return null;
        }
    }

    /// <summary>Stops this lab's resolver process, if one runs: SIGTERM by its PID, then SIGKILL after 10 s.</summary>
    public async Task StopDnsResolverAsync()
    {
        if (DnsResolverPid() is not { } pid)
        {
            return;
        }

        using var process = System.Diagnostics.Process.GetProcessById(pid);
        await IpTool.ExecAsync("kill", "-TERM", pid.ToString(System.Globalization.CultureInfo.InvariantCulture));
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill();
        }
    }

    private static string Indent(string s) => s.TrimEnd().Replace("\n", "\n      ", StringComparison.Ordinal);

    public async ValueTask DisposeAsync()
    {
        List<StartedProcess> processes;
        List<IAsyncDisposable> owned;
        lock (_lock)
        {
            processes = [.. _processes];
            owned = [.. _owned];
        }

        foreach (var p in processes)
        {
            p.Kill();
        }

        try
        {
            await StopDnsResolverAsync();
        }
        catch (Exception ex) when (ex is IOException or InvalidOperationException or ArgumentException or System.ComponentModel.Win32Exception)
        {
            await TestContext.Progress.WriteLineAsync($"teardown: stopping the DNS resolver failed: {ex.Message}");
        }

        foreach (var p in processes)
        {
            try
            {
                await p.WaitAsync(TimeSpan.FromSeconds(20));
            }
            catch (TimeoutException)
            {
                // Reported by nothing else: the directories below still go.
            }

            p.Dispose();
        }

        foreach (var o in owned)
        {
            try
            {
                await o.DisposeAsync();
            }
            catch (Exception ex) when (ex is CnmException or InvalidOperationException or ObjectDisposedException or IOException)
            {
                await TestContext.Progress.WriteLineAsync($"teardown: disposing {o.GetType().Name} failed: {ex.Message}");
            }
        }

        try
        {
            await Cleanup.RemoveRunDirectoryAsync(RunDirectory);

            // Namespaces other drivers keep in the run directory (overlay networks: run/overlay/ov-*).
            foreach (var line in MountTable.LinesUnder(Root).Reverse())
            {
                await CnmRunner.RunAsync("umount", ["-l", line.Split(' ')[4]], TimeSpan.FromSeconds(10));
            }

            Directory.Delete(Root, recursive: true);
        }
        finally
        {
            await Host.DisposeAsync();
        }
    }
}

/// <summary>One process of a batch.</summary>
internal sealed record BatchResult(string[] Args, StartedProcess Process, ProcessResult Result);
