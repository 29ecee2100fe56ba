using System.Diagnostics;
using System.Globalization;

namespace CnmSharp.Testing;

/// <summary>
/// A dockerd (Debian's <c>docker.io</c>) a test or benchmark starts for itself, as <c>plugin-protocol.md</c> section 7
/// of the shared docs says: inside a network namespace the caller created (<c>nsenter --net</c>, so the machine's
/// firewall and forwarding are untouched; dockerd's own iptables rules land in that namespace's tables only), a private
/// UTS namespace with its own hostname, and a private mount namespace (<c>unshare --mount</c>, propagation private)
/// in which
/// <list type="bullet">
/// <item><c>/run</c> is a fresh tmpfs (so dockerd starts its own containerd even when the machine runs one, and
/// nothing it puts under <c>/run</c> is seen outside), with <c>/run/docker/plugins</c> a bind mount of
/// <see cref="PluginDirectory"/>: a plugin socket the test writes there is the only legacy plugin this dockerd finds;</item>
/// <item><c>/etc/docker</c> and <c>/usr/lib/docker</c>, when they exist, are empty tmpfs: no machine
/// <c>daemon.json</c> or plugin spec file is read, and the trust key dockerd writes (<c>/etc/docker/key.json</c>)
/// stays in the namespace.</item>
/// </list>
/// Its data root, exec root, socket, pidfile and log are under <see cref="Directory"/>; the data root survives
/// <see cref="RestartAsync"/>. <see cref="StopAsync"/> (and <see cref="DisposeAsync"/>) removes the containers noted
/// with <see cref="Track"/>, stops dockerd by its PID (SIGTERM, SIGKILL after 30 s) and then its containerd by the PID
/// in its pidfile if it still runs. The caller removes <see cref="Directory"/> (it created it).
/// </summary>
public sealed class DockerDaemon : IAsyncDisposable
{
    /// <summary>Debian's client, matching the daemon (a newer <c>/usr/local/bin/docker</c> may exist).</summary>
    public const string Client = "/usr/bin/docker";

    /// <summary>Debian's daemon.</summary>
    public const string Daemon = "/usr/sbin/dockerd";

    // Run by sh inside the new UTS and mount namespaces: $0 is the hostname, "$@" dockerd and its arguments.
    private const string Script =
        "set -e; hostname \"$0\"; " +
        "mount -t tmpfs -o mode=0755 cnmt-run /run; mkdir -p /run/docker/plugins; " +
        "mount --bind \"$CNMT_PLUGINS\" /run/docker/plugins; " +
        "for d in /etc/docker /usr/lib/docker; do if [ -d \"$d\" ]; then mount -t tmpfs -o mode=0755 cnmt-docker \"$d\"; fi; done; " +
        "exec \"$@\" >>\"$CNMT_DOCKERD_LOG\" 2>&1";

    private readonly string _netnsPath;
    private readonly string _hostname;
    private readonly List<string> _containers = [];
    private Process? _process;

    private DockerDaemon(string netnsPath, string directory, string hostname)
    {
        _netnsPath = netnsPath;
        _hostname = hostname;
        Directory = directory;
        Socket = System.IO.Path.Combine(directory, "docker.sock");
        PluginDirectory = System.IO.Path.Combine(directory, "plugins");
        Environment = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["DOCKER_HOST"] = "unix://" + Socket,
            ["DOCKER_CONFIG"] = System.IO.Path.Combine(directory, "client-config"),
        };
    }

    /// <summary>The programs this needs (Debian packages docker.io, containerd, runc, busybox-static, util-linux).</summary>
    public static IReadOnlyList<string> RequiredFiles { get; } =
        [Client, Daemon, "/usr/bin/containerd", "/usr/sbin/runc", "/bin/busybox", "/usr/bin/nsenter", "/usr/bin/unshare"];

    /// <summary>The required programs that are missing on this machine (empty when all are there).</summary>
    public static IReadOnlyList<string> MissingFiles =>
        [.. RequiredFiles.Where(p => !File.Exists(p) && !(p == "/usr/sbin/runc" && File.Exists("/usr/bin/runc")))];

    /// <summary>The directory holding its data and exec roots, socket, pidfile, plugin directory and log.</summary>
    public string Directory { get; }

    /// <summary>The daemon's API socket.</summary>
    public string Socket { get; }

    /// <summary>Seen by this dockerd (only) as <c>/run/docker/plugins</c>: put a plugin's <c>NAME.sock</c> here.</summary>
    public string PluginDirectory { get; }

    /// <summary>The client's environment: <c>DOCKER_HOST</c> (this daemon's socket) and a private, empty
    /// <c>DOCKER_CONFIG</c>.</summary>
    public IReadOnlyDictionary<string, string> Environment { get; }

    /// <summary>dockerd's PID (0 when stopped).</summary>
    public int Pid => _process is { HasExited: false } p ? p.Id : 0;

    /// <summary>dockerd's log (stdout and stderr, appended across restarts).</summary>
    public string LogPath => System.IO.Path.Combine(Directory, "dockerd.log");

    private string ExecRoot => System.IO.Path.Combine(Directory, "exec");

    /// <summary>Starts dockerd in the network namespace <paramref name="netnsPath"/> and waits until it answers.</summary>
    /// <param name="netnsPath">The namespace file (the caller created it and removes it after this is disposed).</param>
    /// <param name="directory">A directory the caller owns (created when missing).</param>
    /// <param name="hostname">The hostname of its UTS namespace (two daemons on one kernel need distinct ones).</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>The running daemon; dispose it in teardown.</returns>
    public static async Task<DockerDaemon> StartAsync(string netnsPath, string directory, string hostname = "cnmt-dockerd", CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(netnsPath);
        ArgumentException.ThrowIfNullOrEmpty(directory);
        var daemon = new DockerDaemon(netnsPath, directory, hostname);
        System.IO.Directory.CreateDirectory(directory);
        System.IO.Directory.CreateDirectory(System.IO.Path.Combine(directory, "client-config"));
        System.IO.Directory.CreateDirectory(daemon.PluginDirectory);
        try
        {
            await daemon.LaunchAsync(cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await daemon.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        return daemon;
    }

    /// <summary>Stops dockerd (after removing the tracked containers) and starts it again on the same data root.</summary>
    /// <param name="cancellationToken">Cancels the wait for the new one.</param>
    public async Task RestartAsync(CancellationToken cancellationToken = default)
    {
        await StopAsync().ConfigureAwait(false);
        await LaunchAsync(cancellationToken).ConfigureAwait(false);
    }

    private async Task LaunchAsync(CancellationToken cancellationToken)
    {
        var start = new ProcessStartInfo("nsenter") { UseShellExecute = false };

        // nsenter, unshare and sh each exec the next: the PID started here is dockerd's.
        foreach (var arg in new[]
        {
            $"--net={_netnsPath}", "--", "unshare", "--uts", "--mount", "--propagation", "private", "--", "sh", "-c", Script,
            _hostname, Daemon,
            "--data-root", System.IO.Path.Combine(Directory, "data"), "--exec-root", ExecRoot,
            "-H", "unix://" + Socket, "--pidfile", System.IO.Path.Combine(Directory, "docker.pid"),
            "--log-level", "warn",
        })
        {
            start.ArgumentList.Add(arg);
        }

        start.Environment["CNMT_DOCKERD_LOG"] = LogPath;
        start.Environment["CNMT_PLUGINS"] = PluginDirectory;
        _process = Process.Start(start) ?? throw new InvalidOperationException("cannot start dockerd");
        await WaitReadyAsync(_process, cancellationToken).ConfigureAwait(false);
    }

    private async Task WaitReadyAsync(Process process, CancellationToken cancellationToken)
    {
        var watch = Stopwatch.StartNew();
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (process.HasExited)
            {
                throw new InvalidOperationException($"dockerd exited with {process.ExitCode} at start: {Tail()}");
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

    /// <summary>Runs the client against this daemon; throws <see cref="InvalidOperationException"/> with its stderr
    /// when it fails.</summary>
    /// <param name="args">The client's arguments.</param>
    /// <param name="cancellationToken">Cancels the wait (the client is killed).</param>
    /// <returns>Its standard output.</returns>
    public async Task<string> DockerAsync(IReadOnlyList<string> args, CancellationToken cancellationToken = default)
    {
        var result = await TryDockerAsync(args, cancellationToken).ConfigureAwait(false);
        return result.ExitCode == 0
            ? result.StandardOutput
            : throw new InvalidOperationException($"docker {string.Join(' ', args)} exited {result.ExitCode}: {result.StandardError.Trim()}");
    }

    /// <summary>Runs the client against this daemon and returns whatever happened.</summary>
    /// <param name="args">The client's arguments.</param>
    /// <param name="cancellationToken">Cancels the wait (the client is killed).</param>
    /// <returns>Exit code and output.</returns>
    public Task<ProcessResult> TryDockerAsync(IReadOnlyList<string> args, CancellationToken cancellationToken = default) =>
        RunAsync(Client, args, Environment, cancellationToken);

    /// <summary>Notes a container to remove (<c>docker rm -f</c>) before the daemon stops.</summary>
    /// <param name="container">Its name.</param>
    public void Track(string container) => _containers.Add(container);

    /// <summary>A busybox image made without a registry: a root file system of <c>/bin/busybox</c> (busybox-static)
    /// with one symlink per applet, imported with <c>docker import</c>.</summary>
    /// <param name="image">The image name.</param>
    /// <param name="cancellationToken">Cancels the import.</param>
    public async Task ImportBusyboxAsync(string image, CancellationToken cancellationToken = default)
    {
        var rootfs = System.IO.Path.Combine(Directory, "rootfs");
        var bin = System.IO.Path.Combine(rootfs, "bin");
        System.IO.Directory.CreateDirectory(bin);
        File.Copy("/bin/busybox", System.IO.Path.Combine(bin, "busybox"), overwrite: true);
        foreach (var applet in new[] { "sh", "sleep", "ip", "ping", "cat", "hostname" })
        {
            var link = System.IO.Path.Combine(bin, applet);
            if (!File.Exists(link))
            {
                File.CreateSymbolicLink(link, "busybox");
            }
        }

        var tar = System.IO.Path.Combine(Directory, "rootfs.tar");
        var packed = await RunAsync("tar", ["-C", rootfs, "-cf", tar, "."], null, cancellationToken).ConfigureAwait(false);
        if (packed.ExitCode != 0)
        {
            throw new InvalidOperationException($"tar exited {packed.ExitCode}: {packed.StandardError.Trim()}");
        }

        await DockerAsync(["import", "-c", "CMD [\"/bin/sh\"]", tar, image], cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The client and server versions, as <c>docker version</c> reports them.</summary>
    /// <returns><c>client X, daemon Y</c>.</returns>
    public async Task<string> VersionsAsync() =>
        (await DockerAsync(["version", "--format", "client {{.Client.Version}}, daemon {{.Server.Version}}"]).ConfigureAwait(false)).Trim();

    /// <summary>The last lines of dockerd's log, for failure messages.</summary>
    /// <param name="lines">How many.</param>
    /// <returns>The lines joined with <c> | </c>.</returns>
    public string Tail(int lines = 5)
    {
        try
        {
            return string.Join(" | ", File.ReadAllLines(LogPath).TakeLast(lines));
        }
        catch (IOException)
        {
            return "(no log)";
        }
    }

    /// <summary>Removes the tracked containers (<c>docker rm -f</c>), then stops dockerd by its PID and its containerd
    /// if it outlives it. Does nothing when already stopped.</summary>
    public async Task StopAsync()
    {
        if (_process is not { } process)
        {
            return;
        }

        if (!process.HasExited)
        {
            foreach (var container in _containers)
            {
                // SIGKILL at once: a sleeping PID 1 would cost the 10 s stop timeout. A container already gone is fine.
                var removed = await TryDockerAsync(["rm", "-f", container]).ConfigureAwait(false);
                if (removed.ExitCode != 0 && !removed.StandardError.Contains("No such container", StringComparison.Ordinal))
                {
                    await Console.Error.WriteLineAsync($"dockerd cleanup: docker rm -f {container}: {removed.StandardError.Trim()}").ConfigureAwait(false);
                }
            }
        }

        _containers.Clear();
        var containerdPid = ReadPid(System.IO.Path.Combine(ExecRoot, "containerd", "containerd.pid"));
        await StopAsync(process.Id, "dockerd", () => process.HasExited).ConfigureAwait(false);
        await process.WaitForExitAsync().ConfigureAwait(false);
        process.Dispose();
        _process = null;

        // dockerd stops the containerd it started; after a SIGKILL it cannot.
        if (containerdPid is { } pid && IsRunning(pid, "containerd"))
        {
            await StopAsync(pid, "containerd", () => !IsRunning(pid, "containerd")).ConfigureAwait(false);
        }
    }

    /// <inheritdoc/>
    public async ValueTask DisposeAsync() => await StopAsync().ConfigureAwait(false);

    /// <summary>SIGTERM to <paramref name="pid"/>, up to 30 s for it to go, then SIGKILL.</summary>
    private static async Task StopAsync(int pid, string what, Func<bool> gone)
    {
        if (gone())
        {
            return;
        }

        var pidText = pid.ToString(CultureInfo.InvariantCulture);
        _ = await RunAsync("kill", ["-TERM", pidText], null, CancellationToken.None).ConfigureAwait(false);
        var watch = Stopwatch.StartNew();
        while (!gone() && watch.Elapsed < TimeSpan.FromSeconds(30))
        {
            await Task.Delay(50).ConfigureAwait(false);
        }

        if (!gone())
        {
            await Console.Error.WriteLineAsync($"dockerd cleanup: {what} (pid {pid}) still running 30 s after SIGTERM: SIGKILL").ConfigureAwait(false);
            _ = await RunAsync("kill", ["-KILL", pidText], null, CancellationToken.None).ConfigureAwait(false);
        }
    }

    private static async Task<ProcessResult> RunAsync(string fileName, IReadOnlyList<string> args, IReadOnlyDictionary<string, string>? environment, CancellationToken cancellationToken)
    {
        var start = new ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
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
        var stdout = process.StandardOutput.ReadToEndAsync(CancellationToken.None);
        var stderr = process.StandardError.ReadToEndAsync(CancellationToken.None);
        try
        {
            await process.WaitForExitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            process.Kill();
            throw;
        }

        return new ProcessResult(process.ExitCode, await stdout.ConfigureAwait(false), await stderr.ConfigureAwait(false));
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
            var text = pid.ToString(CultureInfo.InvariantCulture);
            var comm = File.ReadAllText($"/proc/{text}/comm").Trim();
            var state = File.ReadAllLines($"/proc/{text}/status").FirstOrDefault(l => l.StartsWith("State:", StringComparison.Ordinal)) ?? "";
            return comm.Contains(name, StringComparison.Ordinal) && !state.Contains("zombie", StringComparison.Ordinal);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }
}
