using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using CnmSharp.Netlink;

namespace CnmSharp.Cli;

/// <summary>
/// <c>cnm demo</c>: a private host namespace, a bridge network, two sandboxes that ping each other (by address, then
/// by name through the embedded DNS), then everything
/// removed. It removes only what it made: by default it works in a fresh temporary directory of its own; a directory it
/// is given must be new, empty or marked as the demo's (<see cref="DemoDirectory"/>). Safe to run twice and after being
/// killed: what an earlier run left in directories marked as the demo's is cleaned up first.
/// </summary>
internal static class DemoCommand
{
    public const string HostNamespaceName = "cnm-demo-host";
    /// <summary>The name prefix of the demo's own temporary directory (under the system's temporary folder).</summary>
    public const string TemporaryPrefix = "cnm-demo-";
    public const string NetworkName = "demo-net";
    public const string Subnet = "10.89.0.0/24";
    public const string Gateway = "10.89.0.1";
    private static readonly string[] SandboxNames = ["demo-a", "demo-b"];

    public static Command Build()
    {
        var keep = new Option<bool>("--keep") { Description = "Keep everything at the end (the next run removes it first)" };
        var graph = new Option<string?>("--graph") { Description = "Write the demo's topology as SVG to FILE (cnm graph --svg; needs Graphviz's dot) before removing anything", HelpName = "FILE" };
        var cmd = new Command("demo", $"Self-contained demo: private host namespace '{HostNamespaceName}', bridge network {NetworkName} ({Subnet}), sandboxes demo-a and demo-b, ping, cleanup. Needs root.")
        {
            keep, graph,
        };
        cmd.SetAction((parse, ct) => CliApp.RunAsync(parse, context => RunAsync(context, parse.GetValue(keep), parse.GetValue(graph), ct)));
        return cmd;
    }

    private static async Task<int> RunAsync(CliContext context, bool keep, string? graphFile, CancellationToken ct)
    {
        if (context.HostNamespacePath is not null)
        {
            throw new UsageException($"demo: --host-netns is not taken; the demo creates its own private host namespace '{HostNamespaceName}'");
        }

        // --graph: the target and dot are checked before anything is made.
        (string File, string Dot)? graph = graphFile is null ? null : (Graphviz.CheckTarget(graphFile, "--graph"), Graphviz.RequireDot("demo --graph"));
        Privileges.Require();

        // Directories given to the demo are checked before anything is touched: new, empty, or marked as the demo's.
        var state = context.StateDirectoryGiven ? DemoDirectory.Inspect(context.StateDirectory, "state directory", IsStoreEntry) : null;
        var run = context.RunDirectoryGiven ? DemoDirectory.Inspect(context.RunDirectory, "run directory", IsRunEntry) : null;
        var cnmDefaults = new[] { GlobalOptions.DefaultStateDirectory, GlobalOptions.DefaultRunDirectory, "/run/cnmsharp" }.Select(DemoDirectory.Canonical).ToHashSet(StringComparer.Ordinal);
        foreach (var given in new[] { state, run })
        {
            if (given is not null && cnmDefaults.Contains(given.Path))
            {
                throw new CliException($"demo: refusing {given.What} {given.Path}: it is a default directory of cnm");
            }
        }

        if (state is not null && run is not null && (state.Path == run.Path || IsInside(state.Path, run.Path) || IsInside(run.Path, state.Path)))
        {
            throw new UsageException("demo: the state and run directories must be different and neither inside the other");
        }

        var total = Stopwatch.StartNew();
        DemoDirectory? temporary = null;
        var acquired = new List<DemoDirectory>();
        try
        {
            if (state is null || run is null)
            {
                await Step("cleaned up leftovers of earlier runs in temporary directories", () => CleanupTemporaryLeftoversAsync(ct)).ConfigureAwait(false);
                temporary = DemoDirectory.CreateTemporary(TemporaryPrefix, name => name is "state" or "run");
                acquired.Add(temporary);
                state ??= DemoDirectory.Inspect(Path.Combine(temporary.Path, "state"), "state directory", IsStoreEntry);
                run ??= DemoDirectory.Inspect(Path.Combine(temporary.Path, "run"), "run directory", IsRunEntry);
            }

            state.Acquire();
            acquired.Add(state);
            run.Acquire();
            acquired.Add(run);
        }
        catch
        {
            foreach (var d in acquired)
            {
                d.Dispose();
            }

            throw;
        }

        var demo = new DemoContext(context with { StateDirectory = state.Path, RunDirectory = run.Path });
        Console.WriteLine($"cnm demo: state {state.Path}, run {run.Path}, host namespace {demo.HostNamespacePath}{(temporary is null ? "" : $" (temporary directory {temporary.Path}, removed at the end)")}");
        if (state.Marked || run.Marked)
        {
            await Step("cleaned up leftovers of an earlier run in the given directories", () => RemoveOwnAsync(state, run, ct)).ConfigureAwait(false);
        }

        var status = 1;
        try
        {
            status = await RunStepsAsync(demo, keep, graph, ct).ConfigureAwait(false);
        }
        finally
        {
            if (keep)
            {
                foreach (var d in acquired)
                {
                    d.Dispose();
                }

                Console.WriteLine($"--keep: left in place; try: cnm --state-dir {state.Path} --run-dir {run.Path} --host-netns {demo.HostNamespacePath} network inspect {NetworkName}");
            }
            else
            {
                await Step("removed what the demo made", async () =>
                {
                    await RemoveOwnAsync(state, run, CancellationToken.None).ConfigureAwait(false);
                    foreach (var d in new[] { run, state, temporary })
                    {
                        foreach (var line in d?.Finish() ?? [])
                        {
                            Report(line);
                        }
                    }

                    return "";
                }).ConfigureAwait(false);
            }
        }

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"[{total.Elapsed.TotalMilliseconds,8:0.0} ms] demo {(status == 0 ? "succeeded" : "FAILED")}"));
        return status;
    }

    /// <summary>The store files the demo's controller makes in its state directory.</summary>
    private static bool IsStoreEntry(string name) =>
        name == "cnm.db" || name.StartsWith("cnm.db-", StringComparison.Ordinal) || name.StartsWith("cnm.db.", StringComparison.Ordinal);

    /// <summary>What the demo and its controller make in the run directory.</summary>
    private static bool IsRunEntry(string name) => name is "netns" or "sandboxes" or HostNamespaceName;

    private static bool IsInside(string path, string directory) => path.StartsWith(directory + "/", StringComparison.Ordinal);

    private static void Report(string line) => Console.WriteLine("           " + line);

    /// <summary>Temporary directories of earlier default runs that were killed or kept: only those carrying the demo's
    /// marker, owned by this user and not held by a running demo; in each only what the demo makes.</summary>
    private static async Task<string> CleanupTemporaryLeftoversAsync(CancellationToken ct)
    {
        var found = 0;
        foreach (var path in Directory.EnumerateDirectories(Path.GetTempPath(), TemporaryPrefix + "*").Order(StringComparer.Ordinal))
        {
            using var root = DemoDirectory.InspectLeftover(path, "temporary directory", name => name is "state" or "run");
            if (root is null || !root.TryAcquire())
            {
                continue;
            }

            using var state = DemoDirectory.InspectLeftover(Path.Combine(root.Path, "state"), "state directory", IsStoreEntry);
            using var run = DemoDirectory.InspectLeftover(Path.Combine(root.Path, "run"), "run directory", IsRunEntry);
            if ((state is not null && !state.TryAcquire()) || (run is not null && !run.TryAcquire()))
            {
                continue;
            }

            found++;
            Report("earlier run's temporary directory " + root.Path + ":");
            await RemoveOwnAsync(state, run, ct).ConfigureAwait(false);
            foreach (var line in new[] { run, state, root }.SelectMany(d => d?.Finish() ?? []))
            {
                Report(line);
            }
        }

        return found == 0 ? "nothing found" : $"{found} found";
    }

    private static async Task<int> RunStepsAsync(DemoContext demo, bool keep, (string File, string Dot)? graph, CancellationToken ct)
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
                // The DNS upstream is explicit: the demo's fake one on the gateway, inside its private host namespace.
                var sandbox = await Step($"created sandbox {name}", async () =>
                    await controller.CreateSandboxAsync(name, new SandboxCreateOptions { Hostname = name, DnsServers = [Gateway] }, ct).ConfigureAwait(false),
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

            // The embedded DNS: this process serves 127.0.0.11 in both sandboxes while its controller is open (the
            // CLI's controllers leave that to 'cnm dns serve'; the demo is one process, so it serves itself). Names
            // that are not the demo's go to a fake upstream on the gateway that says NXDOMAIN to everything.
            await using var upstream = await Step($"started a fake DNS upstream on {Gateway}:53 (NXDOMAIN for everything)", async () =>
                await DemoUpstream.StartAsync(demo.Namespaces, demo.HostNamespacePath, Gateway, ct).ConfigureAwait(false), _ => "").ConfigureAwait(false);
            await Step("serving the embedded DNS (127.0.0.11) in the sandboxes", async () =>
                await controller.ServeDnsAsync(ct).ConfigureAwait(false), n => $"{n} sandboxes").ConfigureAwait(false);
            ping = await Step("pinged demo-b by name from demo-a", async () =>
                await SandboxExec.RunAsync(a, ["ping", "-c", "2", "-W", "2", "demo-b"], line => Console.WriteLine("           | " + line), ct).ConfigureAwait(false),
                code => code == 0 ? "ok" : $"FAILED, exit code {code}").ConfigureAwait(false);
            if (ping != 0)
            {
                return 1;
            }

            if (graph is { } g)
            {
                await Step($"wrote the topology to {g.File}", async () => { await GraphCommand.WriteSvgAsync(controller, g.Dot, g.File, ct).ConfigureAwait(false); return "cnm graph --svg"; }).ConfigureAwait(false);
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

    /// <summary>Removes what the demo makes in its state and run directories, and nothing else: the sandboxes and the
    /// network through a controller on the old state (its recovery runs first) when the store and the host namespace
    /// are both there, then the sandbox namespaces, the sandbox files, the host namespace (its bridge, veths and rules
    /// go with it) and the store files. One line per removed group.</summary>
    private static async Task<string> RemoveOwnAsync(DemoDirectory? state, DemoDirectory? run, CancellationToken ct)
    {
        var removed = 0;
        var namespaces = run is null ? null : new NetworkNamespaceManager(new NetworkNamespaceManagerOptions { RunDirectory = run.Path, MakeRunDirectoryShared = false });
        if (state is not null && run is not null && File.Exists(Path.Combine(state.Path, "cnm.db")) && namespaces!.Exists(HostNamespaceName))
        {
            try
            {
                var cli = new CliContext(state.Path, run.Path, namespaces.GetPath(HostNamespaceName), true, true);
                await using var controller = await cli.OpenControllerAsync(ct).ConfigureAwait(false);
                var sandboxes = controller.Sandboxes.ToList();
                foreach (var sandbox in sandboxes)
                {
                    await sandbox.DeleteAsync(ct).ConfigureAwait(false);
                }

                if (sandboxes.Count > 0)
                {
                    Report("removed sandboxes " + string.Join(", ", sandboxes.Select(s => CliText.Escape(s.ContainerId))));
                    removed++;
                }

                if (controller.FindNetworkByName(NetworkName) is { } network)
                {
                    await network.DeleteAsync(ct).ConfigureAwait(false);
                    Report("removed network " + NetworkName);
                    removed++;
                }
            }
            catch (Exception ex) when (ex is CnmException or IOException or NamespaceException or InvalidOperationException)
            {
                Report($"(old state unusable: {CliApp.OneLine(CliApp.Describe(ex))}; its namespaces and files are removed below)");
            }
        }

        if (run is not null)
        {
            // Sandbox namespaces the controller did not remove, and the shared bind mount of their directory.
            var sandboxDir = Path.Combine(run.Path, "netns");
            if (Directory.Exists(sandboxDir))
            {
                var sandboxNamespaces = new NetworkNamespaceManager(new NetworkNamespaceManagerOptions { RunDirectory = sandboxDir, MakeRunDirectoryShared = false });
                var names = new List<string>();
                foreach (var file in Directory.EnumerateFiles(sandboxDir))
                {
                    await sandboxNamespaces.DeleteAsync(Path.GetFileName(file), ct).ConfigureAwait(false);
                    names.Add(Path.GetFileName(file));
                }

                await UnmountIfMountPointAsync(sandboxDir, ct).ConfigureAwait(false);
                Directory.Delete(sandboxDir, recursive: true);
                Report($"removed directory {sandboxDir}{(names.Count == 0 ? "" : $" (sandbox namespaces {string.Join(", ", names)})")}");
                removed++;
            }

            var filesDir = Path.Combine(run.Path, "sandboxes");
            if (Directory.Exists(filesDir))
            {
                Directory.Delete(filesDir, recursive: true);
                Report($"removed directory {filesDir} (sandbox hosts and resolv.conf files)");
                removed++;
            }

            if (namespaces!.Exists(HostNamespaceName))
            {
                await namespaces.DeleteAsync(HostNamespaceName, ct).ConfigureAwait(false);
                Report($"removed namespace {namespaces.GetPath(HostNamespaceName)} (with the bridge, veths and firewall rules in it)");
                removed++;
            }
        }

        if (state is not null)
        {
            var files = state.PresentOwnEntries();
            foreach (var file in files)
            {
                File.Delete(file);
            }

            if (files.Count > 0)
            {
                Report($"removed store files {string.Join(", ", files.Select(Path.GetFileName))} in {state.Path}");
                removed++;
            }
        }

        return removed == 0 ? "nothing found" : $"{removed} removed";
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
