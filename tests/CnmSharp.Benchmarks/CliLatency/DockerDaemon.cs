using System.Diagnostics;
using System.Globalization;

namespace CnmSharp.Benchmarks.CliLatency;

/// <summary>
/// A dockerd this run starts for itself (docs: plugin-protocol.md section 7): inside a private network namespace
/// (<c>nsenter --net</c>, so the machine's firewall and forwarding are untouched) and a private UTS namespace with its
/// own hostname, with its own data root, exec root, socket and pidfile under the run's private directory. It starts
/// its own containerd. <see cref="DisposeAsync"/> removes the containers it made, stops dockerd by its PID (SIGTERM,
/// then SIGKILL), then its containerd by the PID in its pidfile if still running.
/// </summary>
internal sealed class DockerDaemon : IAsyncDisposable
{
    public const string Client = "/usr/bin/docker";

    public const string Daemon = "/usr/sbin/dockerd";

    private readonly Process _process;
    private readonly List<string> _containers = [];

    private DockerDaemon(Process process, string directory)
    {
        _process = process;
        Directory = directory;
        Socket = Path.Combine(directory, "docker.sock");
        Environment = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["DOCKER_HOST"] = "unix://" + Socket,
            ["DOCKER_CONFIG"] = Path.Combine(directory, "client-config"),
        };
    }

    /// <summary>The directory holding its data and exec roots, socket, pidfile and log.</summary>
    public string Directory { get; }

    public string Socket { get; }

    /// <summary>The client's environment: <c>DOCKER_HOST</c> (this daemon's socket) and a private, empty
    /// <c>DOCKER_CONFIG</c>.</summary>
    public IReadOnlyDictionary<string, string> Environment { get; }

    public int Pid => _process.Id;

    private string LogPath => Path.Combine(Directory, "dockerd.log");

    private string ExecRoot => Path.Combine(Directory, "exec");

    /// <summary>Starts dockerd in the network namespace <paramref name="netnsPath"/> and waits until it answers.</summary>
    public static async Task<DockerDaemon> StartAsync(string netnsPath, string directory, CancellationToken cancellationToken)
    {
        System.IO.Directory.CreateDirectory(directory);
        System.IO.Directory.CreateDirectory(Path.Combine(directory, "client-config"));
        var start = new ProcessStartInfo("nsenter") { UseShellExecute = false };
        // nsenter, unshare and sh each exec the next: the PID started here is dockerd's.
        foreach (var arg in new[]
        {
            $"--net={netnsPath}", "--", "unshare", "--uts", "--", "sh", "-c", "hostname \"$0\" && exec \"$@\" >>\"$DOCKERD_LOG\" 2>&1",
            "cnmcl-dockerd", Daemon,
            "--data-root", Path.Combine(directory, "data"), "--exec-root", Path.Combine(directory, "exec"),
            "-H", "unix://" + Path.Combine(directory, "docker.sock"), "--pidfile", Path.Combine(directory, "docker.pid"),
            "--log-level", "warn",
        })
        {
            start.ArgumentList.Add(arg);
        }

        start.Environment["DOCKERD_LOG"] = Path.Combine(directory, "dockerd.log");
        var process = Process.Start(start) ?? throw new InvalidOperationException("cannot start dockerd");
        var daemon = new DockerDaemon(process, directory);
        try
        {
            await daemon.WaitReadyAsync(cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await daemon.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        return daemon;
    }

    private async Task WaitReadyAsync(CancellationToken cancellationToken)
    {
        var watch = Stopwatch.StartNew();
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (_process.HasExited)
            {
                throw new InvalidOperationException($"dockerd exited with {_process.ExitCode} at start: {Tail()}");
            }

            if (File.Exists(Socket))
            {
                try
                {
                    _ = await DockerAsync(["version", "--format", "{{.Server.Version}}"], cancellationToken).ConfigureAwait(false);
                    return;
                }
                catch (InvalidOperationException) when (watch.Elapsed < TimeSpan.FromSeconds(60))
                {
                    // Not answering yet.
                }
            }

            if (watch.Elapsed > TimeSpan.FromSeconds(60))
            {
                throw new InvalidOperationException($"dockerd did not answer within 60 s: {Tail()}");
            }

            await Task.Delay(100, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Runs the client against this daemon; throws with its stderr when it fails.</summary>
    public Task<string> DockerAsync(IReadOnlyList<string> args, CancellationToken cancellationToken = default) =>
        Exec.RunAsync(Client, args, environment: Environment, cancellationToken: cancellationToken);

    /// <summary>Notes a container to remove (<c>docker rm -f</c>) before the daemon stops.</summary>
    public void Track(string container) => _containers.Add(container);

    /// <summary>A busybox image made without a registry: a root file system of <c>/bin/busybox</c> (busybox-static)
    /// with the applets it needs, imported with <c>docker import</c>.</summary>
    public async Task ImportBusyboxAsync(string image, CancellationToken cancellationToken)
    {
        var rootfs = Path.Combine(Directory, "rootfs");
        var bin = Path.Combine(rootfs, "bin");
        System.IO.Directory.CreateDirectory(bin);
        File.Copy("/bin/busybox", Path.Combine(bin, "busybox"));
        foreach (var applet in new[] { "sh", "sleep", "ip" })
        {
            File.CreateSymbolicLink(Path.Combine(bin, applet), "busybox");
        }

        var tar = Path.Combine(Directory, "rootfs.tar");
        await Exec.RunAsync("tar", ["-C", rootfs, "-cf", tar, "."], cancellationToken: cancellationToken).ConfigureAwait(false);
        await DockerAsync(["import", "-c", "CMD [\"/bin/sh\"]", tar, image], cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The client and server versions, as <c>docker version</c> reports them.</summary>
    public async Task<string> VersionsAsync() =>
        (await DockerAsync(["version", "--format", "client {{.Client.Version}}, daemon {{.Server.Version}}"]).ConfigureAwait(false)).Trim();

    private string Tail()
    {
        try
        {
            var lines = File.ReadAllLines(LogPath);
            return string.Join(" | ", lines.TakeLast(5));
        }
        catch (IOException)
        {
            return "(no log)";
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            foreach (var container in _containers)
            {
                try
                {
                    // SIGKILL at once: a sleeping PID 1 would cost the 10 s stop timeout.
                    _ = await DockerAsync(["rm", "-f", container]).ConfigureAwait(false);
                }
                catch (InvalidOperationException ex)
                {
                    await Console.Error.WriteLineAsync($"cli-latency: cleanup: docker rm -f {container}: {ex.Message}").ConfigureAwait(false);
                }
            }
        }

        var containerdPid = ReadPid(Path.Combine(ExecRoot, "containerd", "containerd.pid"));
        await StopAsync(_process.Id, "dockerd", () => _process.HasExited).ConfigureAwait(false);
        await _process.WaitForExitAsync().ConfigureAwait(false);
        _process.Dispose();

        // dockerd stops the containerd it started; after a SIGKILL it cannot.
        if (containerdPid is { } pid && IsRunning(pid, "containerd"))
        {
            await StopAsync(pid, "containerd", () => !IsRunning(pid, "containerd")).ConfigureAwait(false);
        }
    }

    /// <summary>SIGTERM to <paramref name="pid"/>, up to 30 s for it to go, then SIGKILL.</summary>
    private static async Task StopAsync(int pid, string what, Func<bool> gone)
    {
        if (gone())
        {
            return;
        }

        var pidText = pid.ToString(CultureInfo.InvariantCulture);
        await TrySignalAsync("-TERM", pidText).ConfigureAwait(false);
        var watch = Stopwatch.StartNew();
        while (!gone() && watch.Elapsed < TimeSpan.FromSeconds(30))
        {
            await Task.Delay(50).ConfigureAwait(false);
        }

        if (!gone())
        {
            await Console.Error.WriteLineAsync($"cli-latency: cleanup: {what} (pid {pid}) still running 30 s after SIGTERM: SIGKILL").ConfigureAwait(false);
            await TrySignalAsync("-KILL", pidText).ConfigureAwait(false);
        }
    }

    private static async Task TrySignalAsync(string signal, string pid)
    {
        try
        {
            await Exec.RunAsync("kill", [signal, pid]).ConfigureAwait(false);
        }
        catch (InvalidOperationException)
        {
            // It exited in between.
        }
    }

    private static int? ReadPid(string path)
    {
        try
        {
            return int.TryParse(File.ReadAllText(path).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var pid) ? pid : null;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>True when <paramref name="pid"/> runs a program whose name contains <paramref name="name"/> (a PID
    /// reused by another program is left alone).</summary>
    private static bool IsRunning(int pid, string name)
    {
        try
        {
            var comm = File.ReadAllText($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/comm").Trim();
            var state = File.ReadAllLines($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/status").FirstOrDefault(l => l.StartsWith("State:", StringComparison.Ordinal)) ?? "";
            return comm.Contains(name, StringComparison.Ordinal) && !state.Contains("zombie", StringComparison.Ordinal);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }
}
