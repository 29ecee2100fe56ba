using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using CnmSharp.Netlink;

namespace CnmSharp.Cli;

/// <summary>
/// <c>cnm demo</c>: a private host namespace, a bridge network, two sandboxes that ping each other, then everything
/// removed. Safe to run twice and after being killed: leftovers of an earlier run are cleaned up first.
/// </summary>
internal static class DemoCommand
{
    public const string HostNamespaceName = "cnm-demo-host";
    public const string DefaultStateDirectory = "/var/lib/cnmsharp-demo";
    public const string DefaultRunDirectory = "/var/run/cnmsharp-demo";
    public const string NetworkName = "demo-net";
    public const string Subnet = "10.89.0.0/24";
    public const string Gateway = "10.89.0.1";
    private static readonly string[] SandboxNames = ["demo-a", "demo-b"];

    public static Command Build()
    {
        var keep = new Option<bool>("--keep") { Description = "Keep everything at the end (the next run removes it first)" };
        var cmd = new Command("demo", $"Self-contained demo: private host namespace '{HostNamespaceName}', bridge network {NetworkName} ({Subnet}), sandboxes demo-a and demo-b, ping, cleanup. Needs root.")
        {
            keep,
        };
        cmd.SetAction((parse, ct) => CliApp.RunAsync(parse, context => RunAsync(context, parse.GetValue(keep), ct)));
        return cmd;
    }

    private static async Task<int> RunAsync(CliContext context, bool keep, CancellationToken ct)
    {
        if (context.HostNamespacePath is not null)
        {
            throw new UsageException($"demo: --host-netns is not taken; the demo creates its own private host namespace '{HostNamespaceName}'");
        }

        if (!Environment.IsPrivilegedProcess)
        {
            throw new CliException("demo: needs root (network namespaces, mounts)");
        }

        var stateDir = context.StateDirectoryGiven ? context.StateDirectory : DefaultStateDirectory;
        var runDir = context.RunDirectoryGiven ? context.RunDirectory : DefaultRunDirectory;
        if (stateDir == GlobalOptions.DefaultStateDirectory || runDir == GlobalOptions.DefaultRunDirectory)
        {
            throw new UsageException("demo: refusing to use the default state or run directory of cnm (the demo deletes its directories at the end)");
        }

        var demo = new DemoContext(context with { StateDirectory = stateDir, RunDirectory = runDir });
        Console.WriteLine($"cnm demo: state {stateDir}, run {runDir}, host namespace {demo.HostNamespacePath}");
        var total = Stopwatch.StartNew();

        await Step("cleaned up leftovers of earlier runs", () => CleanupAsync(demo, ct)).ConfigureAwait(false);

        var status = 1;
        try
        {
            status = await RunStepsAsync(demo, keep, ct).ConfigureAwait(false);
        }
        finally
        {
            if (keep)
            {
                Console.WriteLine($"--keep: left in place; try: cnm --state-dir {stateDir} --run-dir {runDir} --host-netns {demo.HostNamespacePath} network inspect {NetworkName}");
            }
            else
            {
                await Step("removed sandboxes, network, host namespace, state and run directories", () => CleanupAsync(demo, CancellationToken.None)).ConfigureAwait(false);
            }
        }

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"[{total.Elapsed.TotalMilliseconds,8:0.0} ms] demo {(status == 0 ? "succeeded" : "FAILED")}"));
        return status;
    }

    private static async Task<int> RunStepsAsync(DemoContext demo, bool keep, CancellationToken ct)
    {
        await Step($"created private host namespace {HostNamespaceName}", async () =>
        {
            using var ns = await demo.Namespaces.CreateAsync(HostNamespaceName, ct).ConfigureAwait(false);
            await RunToolAsync("nsenter", [$"--net={demo.HostNamespacePath}", "ip", "link", "set", "dev", "lo", "up"], ct).ConfigureAwait(false);
            return "";
        }).ConfigureAwait(false);

        var controller = await Step("started controller (embedded store, recovery, default networks)", async () =>
            await demo.Cli.OpenControllerAsync(ct).ConfigureAwait(false), _ => "").ConfigureAwait(false);
        await using (controller.ConfigureAwait(false))
        {
            var network = await Step($"created network {NetworkName}", async () =>
                await controller.CreateNetworkAsync(NetworkName, "bridge", new NetworkCreateOptions
                {
                    IPv4Config = [new IpamConfig { Subnet = Subnet, Gateway = Gateway }],
                }, ct).ConfigureAwait(false), n => $"bridge, {Subnet}, id {NetworkCommands.Short(n.Id)}").ConfigureAwait(false);

            var sandboxes = new List<Sandbox>();
            foreach (var name in SandboxNames)
            {
                var sandbox = await Step($"created sandbox {name}", async () =>
                    await controller.CreateSandboxAsync(name, new SandboxCreateOptions { Hostname = name }, ct).ConfigureAwait(false),
                    s => s.Key).ConfigureAwait(false);
                sandboxes.Add(sandbox);
                await Step($"connected {name} to {NetworkName}", async () =>
                {
                    var endpoint = await network.CreateEndpointAsync(name, cancellationToken: ct).ConfigureAwait(false);
                    await endpoint.JoinAsync(sandbox, cancellationToken: ct).ConfigureAwait(false);
                    return endpoint;
                }, e => $"{e.InterfaceName} {e.Address}, gateway {e.Gateway}").ConfigureAwait(false);
            }

            Console.WriteLine($"network inspect {NetworkName}:");
            Console.WriteLine(InspectJson.Network([network]));

            var a = SandboxExec.Target.Of(sandboxes[0], demo.Cli);
            var bAddress = sandboxes[1].Endpoints[0].Address!.Value.Address.ToString();
            var ping = await Step($"pinged demo-b ({bAddress}) from demo-a", async () =>
                await SandboxExec.RunAsync(a, ["ping", "-c", "2", "-W", "2", bAddress], line => Console.WriteLine("           | " + line), ct).ConfigureAwait(false),
                code => code == 0 ? "ok" : $"FAILED, exit code {code}").ConfigureAwait(false);
            if (ping != 0)
            {
                return 1;
            }

            if (a.HostsFile is { } hosts && (await File.ReadAllLinesAsync(hosts, ct).ConfigureAwait(false)).Any(l => l.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries).Skip(1).Contains("demo-b")))
            {
                ping = await Step("pinged demo-b by name from demo-a", async () =>
                    await SandboxExec.RunAsync(a, ["ping", "-c", "2", "-W", "2", "demo-b"], line => Console.WriteLine("           | " + line), ct).ConfigureAwait(false),
                    code => code == 0 ? "ok" : $"FAILED, exit code {code}").ConfigureAwait(false);
                if (ping != 0)
                {
                    return 1;
                }
            }
            else
            {
                Console.WriteLine("           note: ping by name skipped: demo-a's /etc/hosts names only itself; other containers resolve through the embedded DNS, not built yet");
            }

            if (keep)
            {
                return 0;
            }

            foreach (var sandbox in sandboxes)
            {
                await Step($"removed sandbox {sandbox.ContainerId}", async () => { await sandbox.DeleteAsync(ct).ConfigureAwait(false); return ""; }).ConfigureAwait(false);
            }

            await Step($"removed network {NetworkName}", async () => { await network.DeleteAsync(ct).ConfigureAwait(false); return ""; }).ConfigureAwait(false);
        }

        return 0;
    }

    /// <summary>Removes what any earlier run left: objects through a controller on the old state (its recovery runs), then namespaces and directories.</summary>
    private static async Task<string> CleanupAsync(DemoContext demo, CancellationToken ct)
    {
        var found = new List<string>();
        if (File.Exists(Path.Combine(demo.Cli.StateDirectory, "cnm.db")) && demo.Namespaces.Exists(HostNamespaceName))
        {
            try
            {
                await using var controller = await demo.Cli.OpenControllerAsync(ct).ConfigureAwait(false);
                foreach (var sandbox in controller.Sandboxes)
                {
                    await sandbox.DeleteAsync(ct).ConfigureAwait(false);
                    found.Add("sandbox " + sandbox.ContainerId);
                }

                if (controller.FindNetworkByName(NetworkName) is { } network)
                {
                    await network.DeleteAsync(ct).ConfigureAwait(false);
                    found.Add("network " + NetworkName);
                }
            }
            catch (Exception ex) when (ex is CnmException or IOException or NamespaceException or InvalidOperationException)
            {
                found.Add($"(old state unusable: {CliApp.Describe(ex)})");
            }
        }

        // Sandbox namespaces the controller did not remove, and the shared bind mount of their directory.
        var sandboxDir = Path.Combine(demo.Cli.RunDirectory, "netns");
        if (Directory.Exists(sandboxDir))
        {
            var sandboxNamespaces = new NetworkNamespaceManager(new NetworkNamespaceManagerOptions { RunDirectory = sandboxDir, MakeRunDirectoryShared = false });
            foreach (var file in Directory.EnumerateFiles(sandboxDir))
            {
                await sandboxNamespaces.DeleteAsync(Path.GetFileName(file), ct).ConfigureAwait(false);
                found.Add("namespace " + file);
            }

            await UnmountIfMountPointAsync(sandboxDir, ct).ConfigureAwait(false);
        }

        if (demo.Namespaces.Exists(HostNamespaceName))
        {
            await demo.Namespaces.DeleteAsync(HostNamespaceName, ct).ConfigureAwait(false);
            found.Add("namespace " + HostNamespaceName);
        }

        foreach (var dir in new[] { demo.Cli.RunDirectory, demo.Cli.StateDirectory })
        {
            if (Directory.Exists(dir))
            {
                await UnmountIfMountPointAsync(dir, ct).ConfigureAwait(false);
                Directory.Delete(dir, recursive: true);
                found.Add("directory " + dir);
            }
        }

        return found.Count == 0 ? "nothing found" : string.Join(", ", found);
    }

    private static async Task UnmountIfMountPointAsync(string path, CancellationToken ct)
    {
        // mountpoint(1) resolves symlinks such as /var/run -> /run; a directory may carry more than one mount.
        for (var i = 0; i < 8 && await IsMountPointAsync(path, ct).ConfigureAwait(false); i++)
        {
            await RunToolAsync("umount", ["-l", path], ct).ConfigureAwait(false);
        }
    }

    private static async Task<bool> IsMountPointAsync(string path, CancellationToken ct)
    {
        using var process = Process.Start(new ProcessStartInfo("mountpoint", ["-q", path]) { UseShellExecute = false })
            ?? throw new CliException("cannot start mountpoint");
        await process.WaitForExitAsync(ct).ConfigureAwait(false);
        return process.ExitCode == 0;
    }

    private static async Task RunToolAsync(string file, IReadOnlyList<string> args, CancellationToken ct)
    {
        var start = new ProcessStartInfo(file) { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in args)
        {
            start.ArgumentList.Add(a);
        }

        using var process = Process.Start(start) ?? throw new CliException($"cannot start {file}");
        var stderr = process.StandardError.ReadToEndAsync(ct);
        _ = await process.StandardOutput.ReadToEndAsync(ct).ConfigureAwait(false);
        await process.WaitForExitAsync(ct).ConfigureAwait(false);
        if (process.ExitCode != 0)
        {
            throw new CliException($"{file} {string.Join(' ', args)}: exit code {process.ExitCode}: {(await stderr.ConfigureAwait(false)).Trim()}");
        }
    }

    private static Task<string> Step(string what, Func<Task<string>> action) => Step(what, action, s => s);

    private static async Task<T> Step<T>(string what, Func<Task<T>> action, Func<T, string> detail)
    {
        var watch = Stopwatch.StartNew();
        T result;
        try
        {
            result = await action().ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"[{watch.Elapsed.TotalMilliseconds,8:0.0} ms] FAILED: {what}: {CliApp.Describe(ex)}"));
            throw;
        }

        var text = detail(result);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"[{watch.Elapsed.TotalMilliseconds,8:0.0} ms] {what}{(string.IsNullOrEmpty(text) ? "" : $" ({text})")}"));
        return result;
    }

    private sealed class DemoContext(CliContext baseContext)
    {
        public NetworkNamespaceManager Namespaces { get; } = new(new NetworkNamespaceManagerOptions { RunDirectory = baseContext.RunDirectory, MakeRunDirectoryShared = false });

        public string HostNamespacePath => Namespaces.GetPath(HostNamespaceName);

        public CliContext Cli { get; } = baseContext with { HostNamespacePath = baseContext.RunDirectory + "/" + HostNamespaceName };
    }
}
