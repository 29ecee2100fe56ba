using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Text.Json;
using CnmSharp.Testing;

namespace CnmSharp.Benchmarks.CliLatency;

/// <summary>
/// <c>cli-latency [--n N] [--warmup W] [--cnm PATH]</c>: the whole-process latency of <c>cnm network ls</c>,
/// <c>cnm network connect</c> and <c>cnm network disconnect</c> against <c>docker network ls</c>, <c>connect</c> and
/// <c>disconnect</c> (Debian's <c>/usr/bin/docker</c> against a dockerd this run starts in a private network
/// namespace). Each call is a new process timed from its start to its exit; N calls of each, sequential, the two tools
/// interleaved in every iteration. The same work for both: list the networks (the three defaults and two of the run's),
/// connect one container that is already on network A to network B, disconnect it again.
/// </summary>
internal static class CliLatencyWorkload
{
    public const string Name = "cli-latency";

    private const string NetworkA = "cnmcl-a";
    private const string NetworkB = "cnmcl-b";
    private const string Container = "cnmcl-c";
    private const string Image = "cnmcl-busybox";

    private static readonly string Usage = "usage: cli-latency [--n N] [--warmup W] [--cnm PATH (the cnm executable, or cnm.dll run by dotnet; default: the published Native AOT cnm)]";

    private static readonly string[] Operations = ["ls", "connect", "disconnect"];

    public static async Task<int> RunAsync(string[] args)
    {
        try
        {
            return await RunCoreAsync(args).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (EndpointSetup.Interrupt.Token.IsCancellationRequested)
        {
            await Console.Error.WriteLineAsync("cli-latency: interrupted; everything it made was removed").ConfigureAwait(false);
            return 130;
        }
    }

    private static async Task<int> RunCoreAsync(string[] args)
    {
        var count = 60;
        var warmup = 3;
        string? cnmPath = null;
        for (var a = 0; a < args.Length; a++)
        {
            switch (args[a])
            {
                case "--n" or "--count" when a + 1 < args.Length && int.TryParse(args[a + 1], NumberStyles.None, CultureInfo.InvariantCulture, out count):
                    a++;
                    break;
                case "--warmup" when a + 1 < args.Length && int.TryParse(args[a + 1], NumberStyles.None, CultureInfo.InvariantCulture, out warmup):
                    a++;
                    break;
                case "--cnm" when a + 1 < args.Length:
                    cnmPath = Path.GetFullPath(args[++a]);
                    break;
                default:
                    await Console.Error.WriteLineAsync(Usage).ConfigureAwait(false);
                    return 2;
            }
        }

        if (count < 1 || count > 100000)
        {
            await Console.Error.WriteLineAsync("cli-latency: --n must be 1..100000").ConfigureAwait(false);
            return 2;
        }

        if (!Environment.IsPrivilegedProcess)
        {
            await Console.Error.WriteLineAsync("cli-latency needs root (namespaces, dockerd).").ConfigureAwait(false);
            return 1;
        }

        var cnm = CnmCommand(cnmPath);
        var missing = DockerDaemon.MissingFiles.ToList();
        if (!File.Exists(cnm.Target))
        {
            missing.Add(cnm.Target + " (publish it: dotnet publish samples/CnmSharp.Cli -c Release; or give --cnm)");
        }

        if (missing.Count > 0)
        {
            await Console.Error.WriteLineAsync(
                $"cli-latency: missing {string.Join(", ", missing)}; install the peers with `sudo CNM_SETUP_PEERS=1 bash .ci/setup` (Debian packages docker.io containerd runc busybox-static)").ConfigureAwait(false);
            return 1;
        }

        EndpointSetup.Interrupt.Install();
        var ct = EndpointSetup.Interrupt.Token;
        var root = await RootNamespaceCheck.TakeAsync().ConfigureAwait(false);
        string directory;
        string hostPath;
        Dictionary<string, List<double>> times;
        string versions;
        var load = await File.ReadAllTextAsync("/proc/loadavg", ct).ConfigureAwait(false);
        await using (var host = await PrivateHost.CreateAsync("cnmcl").ConfigureAwait(false))
        {
            directory = host.Directory;
            hostPath = host.HostPath;
            using var dockerNamespace = await host.Manager.CreateAsync(host.Tag + "-docker", ct).ConfigureAwait(false);
            await Exec.IpAsync(dockerNamespace.Path!, "link", "set", "lo", "up").ConfigureAwait(false);

            // cnm: its own state and run directories, the private host namespace H.
            string[] global = ["--state-dir", Path.Combine(directory, "cnm-state"), "--run-dir", Path.Combine(directory, "cnm-run"), "--host-netns", hostPath];
            var cnmTool = new Tool("cnm", cnm.File, [.. cnm.Prefix, .. global], new Dictionary<string, string>(StringComparer.Ordinal));
            await using var daemon = await DockerDaemon.StartAsync(dockerNamespace.Path!, Path.Combine(directory, "docker"), "cnmcl-dockerd", ct).ConfigureAwait(false);
            var dockerTool = new Tool("docker", DockerDaemon.Client, [], daemon.Environment);
            versions = await daemon.VersionsAsync().ConfigureAwait(false);
            try
            {
                // Not timed: the networks, the image and the container (docker) / sandbox (cnm), on network A.
                await daemon.ImportBusyboxAsync(Image, ct).ConfigureAwait(false);
                await daemon.DockerAsync(["network", "create", "--subnet", "10.96.0.0/24", NetworkA], ct).ConfigureAwait(false);
                await daemon.DockerAsync(["network", "create", "--subnet", "10.97.0.0/24", NetworkB], ct).ConfigureAwait(false);
                daemon.Track(Container);
                await daemon.DockerAsync(["run", "-d", "--name", Container, "--network", NetworkA, Image, "/bin/sleep", "1000000"], ct).ConfigureAwait(false);
                await cnmTool.RunAsync(["network", "create", "--subnet", "10.96.0.0/24", NetworkA], ct).ConfigureAwait(false);
                await cnmTool.RunAsync(["network", "create", "--subnet", "10.97.0.0/24", NetworkB], ct).ConfigureAwait(false);
                await cnmTool.RunAsync(["sandbox", "create", Container], ct).ConfigureAwait(false);
                await cnmTool.RunAsync(["network", "connect", NetworkA, Container], ct).ConfigureAwait(false);

                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{Name}: n={count} warmup={warmup} cnm=\"{string.Join(' ', [cnm.File, .. cnm.Prefix])}\" docker={DockerDaemon.Client} ({versions}) cores={Environment.ProcessorCount} kernel={Environment.OSVersion.Version} runtime={RuntimeInformation.FrameworkDescription} {DateTime.UtcNow:yyyy-MM-dd HH:mm}Z load={load.Trim()}"));
                Console.WriteLine(Mode);

                // Warm-up (page cache, the daemon's first calls), not reported; the first one checks the connect.
                for (var i = 0; i < warmup; i++)
                {
                    _ = await IterationAsync(cnmTool, dockerTool, i, i == 0 ? () => VerifyConnectedAsync(cnmTool, daemon, ct) : null, ct).ConfigureAwait(false);
                }

                times = Operations.SelectMany(o => new[] { "cnm " + o, "docker " + o }).ToDictionary(k => k, _ => new List<double>(), StringComparer.Ordinal);
                for (var i = 0; i < count; i++)
                {
                    foreach (var (key, ms) in await IterationAsync(cnmTool, dockerTool, i, null, ct).ConfigureAwait(false))
                    {
                        times[key].Add(ms);
                    }
                }
            }
            finally
            {
                // cnm's objects through cnm (its sandbox namespace is a mount under the run directory); the rest goes
                // with H and the private directory.
                await cnmTool.TryRunAsync(["sandbox", "rm", Container]).ConfigureAwait(false);
                await cnmTool.TryRunAsync(["network", "rm", NetworkB, NetworkA]).ConfigureAwait(false);
            }
        }

        await root.AssertUnchangedAsync(directory, hostPath, Name).ConfigureAwait(false);
        var loadEnd = (await File.ReadAllTextAsync("/proc/loadavg", CancellationToken.None).ConfigureAwait(false)).Trim();

        Console.WriteLine();
        Console.WriteLine($"{"command",-28} {"median ms",10} {"p99 ms",10} {"min ms",10} {"max ms",10}");
        foreach (var op in Operations)
        {
            foreach (var tool in new[] { "cnm", "docker" })
            {
                var t = times[$"{tool} {op}"];
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{tool + " network " + op,-28} {Stats.Median(t),10:F1} {Stats.Percentile(t, 99),10:F1} {t.Min(),10:F1} {t.Max(),10:F1}"));
            }
        }

        Console.WriteLine();
        foreach (var op in Operations)
        {
            foreach (var tool in new[] { "cnm", "docker" })
            {
                var t = times[$"{tool} {op}"];
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{Name} {tool} network {op}: median_ms={Stats.Median(t):F1} p99_ms={Stats.Percentile(t, 99):F1}"));
            }
        }

        Console.WriteLine($"load at end: {loadEnd}");
        Console.WriteLine(Mode);
        string Med(string key) => Stats.Median(times[key]).ToString("F1", CultureInfo.InvariantCulture);
        Console.WriteLine(
            $"{Name} n={count} cnm_ls_ms={Med("cnm ls")} docker_ls_ms={Med("docker ls")} " +
            $"cnm_connect_ms={Med("cnm connect")} docker_connect_ms={Med("docker connect")} " +
            $"cnm_disconnect_ms={Med("cnm disconnect")} docker_disconnect_ms={Med("docker disconnect")}");
        return 0;
    }

    private const string Mode =
        "mode: each call a new process, timed from its start to its exit (stdout and stderr read by the runner); sequential, one call at a time; " +
        "cnm and docker interleaved in every iteration (ls, ls, connect, connect, disconnect, disconnect; which tool goes first alternates); " +
        "the same work: ls of 5 networks, connect of one container/sandbox already on network A to network B, disconnect from B; " +
        "dockerd (private network, UTS and mount namespaces, own data/exec roots, its own containerd) and cnm (own state/run directories, private host namespace) and their objects set up outside the timed calls";

    /// <summary>One iteration: ls, connect, disconnect for both tools, interleaved, the first tool alternating.
    /// <paramref name="afterConnect"/> (not timed) runs between the connects and the disconnects.</summary>
    private static async Task<List<(string Key, double Ms)>> IterationAsync(Tool cnm, Tool docker, int iteration, Func<Task>? afterConnect, CancellationToken ct)
    {
        Tool[] order = iteration % 2 == 0 ? [cnm, docker] : [docker, cnm];
        var result = new List<(string, double)>();
        foreach (var op in Operations)
        {
            if (op == "disconnect" && afterConnect is not null)
            {
                await afterConnect().ConfigureAwait(false);
            }

            foreach (var tool in order)
            {
                ct.ThrowIfCancellationRequested();
                string[] args = op == "ls" ? ["network", "ls"] : ["network", op, NetworkB, Container];
                result.Add(($"{tool.Name} {op}", await tool.TimeAsync(args, ct).ConfigureAwait(false)));
            }
        }

        return result;
    }

    /// <summary>The connects did the real work: the container (docker) and the sandbox (cnm) each have an address
    /// of network B (10.97.0.0/24) on an interface inside their namespace.</summary>
    private static async Task VerifyConnectedAsync(Tool cnm, DockerDaemon daemon, CancellationToken ct)
    {
        var pid = (await daemon.DockerAsync(["inspect", "-f", "{{.State.Pid}}", Container], ct).ConfigureAwait(false)).Trim();
        var dockerAddresses = await Exec.RunAsync("nsenter", [$"--net=/proc/{pid}/ns/net", "ip", "-o", "-4", "addr", "show"], cancellationToken: ct).ConfigureAwait(false);
        using var inspect = JsonDocument.Parse(await cnm.RunAsync(["sandbox", "inspect", Container], ct).ConfigureAwait(false));
        var key = inspect.RootElement[0].GetProperty("Key").GetString()!;
        var cnmAddresses = await Exec.RunAsync("nsenter", [$"--net={key}", "ip", "-o", "-4", "addr", "show"], cancellationToken: ct).ConfigureAwait(false);
        foreach (var (tool, addresses) in new[] { ("docker", dockerAddresses), ("cnm", cnmAddresses) })
        {
            if (!addresses.Contains("inet 10.97.0.", StringComparison.Ordinal) || !addresses.Contains("inet 10.96.0.", StringComparison.Ordinal))
            {
                throw new InvalidOperationException($"cli-latency: after {tool} network connect the container has no address on both networks:\n{addresses}");
            }
        }
    }

    /// <summary>How <c>cnm</c> is started: <paramref name="given"/>, else the Release build of samples/CnmSharp.Cli
    /// (its apphost <c>cnm</c>, or <c>dotnet cnm.dll</c>). <c>Target</c> is the file that must exist.</summary>
    private static (string File, string[] Prefix, string Target) CnmCommand(string? given)
    {
        if (given is null)
        {
            // The Native AOT executable users install (docs/cli.md): `dotnet publish samples/CnmSharp.Cli -c Release`.
            // The JIT build (cnm.dll) is timed only when asked for with --cnm.
            var dir = typeof(CliLatencyWorkload).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == "CnmPublishDirectory").Value!;
            given = Path.Combine(dir, "cnm");
        }

        return given.EndsWith(".dll", StringComparison.Ordinal) ? ("dotnet", [given], given) : (given, [], given);
    }

    /// <summary>One command-line tool: its program, the arguments before each command, its environment.</summary>
    private sealed record Tool(string Name, string File, string[] Prefix, IReadOnlyDictionary<string, string> Environment)
    {
        /// <summary>Runs a command (not timed); throws when it fails.</summary>
        public Task<string> RunAsync(IReadOnlyList<string> args, CancellationToken ct) =>
            Exec.RunAsync(File, [.. Prefix, .. args], environment: Environment, cancellationToken: ct);

        /// <summary>Runs a command in cleanup: a failure is reported, not thrown.</summary>
        public async Task TryRunAsync(IReadOnlyList<string> args)
        {
            try
            {
                _ = await RunAsync(args, CancellationToken.None).ConfigureAwait(false);
            }
            catch (InvalidOperationException ex)
            {
                await Console.Error.WriteLineAsync($"cli-latency: cleanup: {Name} {string.Join(' ', args)}: {ex.Message}").ConfigureAwait(false);
            }
        }

        /// <summary>Milliseconds from the start of a new process for the command to its exit; throws when it fails.</summary>
        public async Task<double> TimeAsync(IReadOnlyList<string> args, CancellationToken ct)
        {
            var start = new ProcessStartInfo(File) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (var arg in Prefix.Concat(args))
            {
                start.ArgumentList.Add(arg);
            }

            foreach (var (key, value) in Environment)
            {
                start.Environment[key] = value;
            }

            var watch = Stopwatch.StartNew();
            using var process = Process.Start(start) ?? throw new InvalidOperationException($"cannot start {File}");
            var stdout = process.StandardOutput.ReadToEndAsync(ct);
            var stderr = process.StandardError.ReadToEndAsync(ct);
            await process.WaitForExitAsync(ct).ConfigureAwait(false);
            var elapsed = watch.Elapsed.TotalMilliseconds;
            _ = await stdout.ConfigureAwait(false);
            var error = await stderr.ConfigureAwait(false);
            if (process.ExitCode != 0)
            {
                throw new InvalidOperationException($"{Name} {string.Join(' ', args)} exited {process.ExitCode}: {error.Trim()}");
            }

            return elapsed;
        }
    }
}
