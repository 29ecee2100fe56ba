using System.Globalization;
using System.Runtime.InteropServices;
using CnmSharp.Benchmarks.SandboxSetup;

namespace CnmSharp.Benchmarks.MacvlanSetup;

/// <summary>
/// <c>macvlan-setup [--n N] [--runs R] [--tools cnmsharp,netavark,cni]</c>: N containers attached to and detached
/// from one macvlan network (bridge mode) whose parent is a veth end in a private host namespace H, by CnmSharp's
/// controller (in process), netavark and the CNI macvlan plugin with host-local IPAM (one process per container
/// operation), sequentially, interleaved in one run, each pass in its own H. Container namespaces (and CnmSharp's
/// network record) are made before the timed attach and removed after the timed detach, for every tool.
/// </summary>
internal static class MacvlanSetupWorkload
{
    public const string Name = "macvlan-setup";

    /// <summary>The parent in H (a veth end, up; its peer is up too, so the parent has carrier).</summary>
    private const string Parent = "mvparent0";

    private static readonly string[] AllTools = ["cnmsharp", "netavark", "cni"];

    private static readonly string Usage = "usage: macvlan-setup [--n N] [--runs R] [--tools " + string.Join(',', AllTools) + "]";

    public static async Task<int> RunAsync(string[] args)
    {
        try
        {
            return await RunCoreAsync(args).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (EndpointSetup.Interrupt.Token.IsCancellationRequested)
        {
            await Console.Error.WriteLineAsync("macvlan-setup: interrupted; everything it made was removed").ConfigureAwait(false);
            return 130;
        }
        catch (CnmException ex)
        {
            // CnmSharp refused (no macvlan driver registered, a bad option): one line, not a stack trace; the pass's
            // cleanup has already removed what it made.
            await Console.Error.WriteLineAsync($"macvlan-setup: CnmSharp failed: {ex.Message}").ConfigureAwait(false);
            return 1;
        }
    }

    private static async Task<int> RunCoreAsync(string[] args)
    {
        var count = 100;
        var runs = 3;
        var tools = new List<string>(AllTools);
        for (var a = 0; a < args.Length; a++)
        {
            switch (args[a])
            {
                case "--n" or "--count" when a + 1 < args.Length && int.TryParse(args[a + 1], NumberStyles.None, CultureInfo.InvariantCulture, out count):
                    a++;
                    break;
                case "--runs" when a + 1 < args.Length && int.TryParse(args[a + 1], NumberStyles.None, CultureInfo.InvariantCulture, out runs):
                    a++;
                    break;
                case "--tools" when a + 1 < args.Length:
                    tools = [.. args[++a].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)];
                    break;
                default:
                    await Console.Error.WriteLineAsync(Usage).ConfigureAwait(false);
                    return 2;
            }
        }

        if (count < 2 || count > 60000 || runs < 1)
        {
            await Console.Error.WriteLineAsync("macvlan-setup: --n must be 2..60000 (container 0 pings container N-1), --runs at least 1").ConfigureAwait(false);
            return 2;
        }

        var selected = new List<MacvlanTool>();
        foreach (var key in tools)
        {
            MacvlanTool? tool = key switch
            {
                "cnmsharp" => new CnmSharpMacvlanTool(),
                "netavark" => new NetavarkMacvlanTool(),
                "cni" => new CniMacvlanTool(),
                _ => null,
            };
            if (tool is null || selected.Any(t => t.Key == tool.Key))
            {
                await Console.Error.WriteLineAsync($"macvlan-setup: unknown or repeated tool '{key}' (known: {string.Join(',', AllTools)})").ConfigureAwait(false);
                return 2;
            }

            selected.Add(tool);
        }

        if (!Environment.IsPrivilegedProcess)
        {
            await Console.Error.WriteLineAsync("macvlan-setup needs root (it creates network namespaces).").ConfigureAwait(false);
            return 1;
        }

        EndpointSetup.Interrupt.Install();

        // A missing tool stops the run with one line naming it: never a silent skip.
        var missing = MissingPrerequisites(selected);
        if (missing.Count > 0)
        {
            await Console.Error.WriteLineAsync(
                $"macvlan-setup: missing {string.Join(", ", missing)}; install the peers with `sudo CNM_SETUP_PEERS=1 bash .ci/setup` (or choose the tools: --tools cnmsharp)").ConfigureAwait(false);
            return 1;
        }

        var netavarkVersion = selected.Any(t => t is NetavarkMacvlanTool) ? (await Exec.RunAsync(NetavarkTool.Binary, ["--version"]).ConfigureAwait(false)).Trim() : "netavark not used";
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{Name}: n={count} runs={runs} parent=veth end in H, macvlan mode bridge; cores={Environment.ProcessorCount} kernel={Environment.OSVersion.Version} runtime={RuntimeInformation.FrameworkDescription} {netavarkVersion} {DateTime.UtcNow:yyyy-MM-dd HH:mm}Z"));

        // Warm-up, not reported: JIT of the in-process path, page cache of the peers' binaries.
        foreach (var tool in selected)
        {
            _ = await RunPassAsync(tool, Math.Min(count, 5)).ConfigureAwait(false);
        }

        var mode = Mode(selected);
        Console.WriteLine(mode);
        foreach (var tool in selected.OfType<CnmSharpMacvlanTool>())
        {
            tool.Controllers.Spans.Spans.Clear();
        }

        var results = selected.ToDictionary(t => t.Key, _ => new List<SandboxSetupWorkload.Pass>());
        for (var run = 1; run <= runs; run++)
        {
            foreach (var tool in selected)
            {
                var pass = await RunPassAsync(tool, count).ConfigureAwait(false);
                results[tool.Key].Add(pass);
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"  run {run} {tool.Name,-40} attach {pass.Attach.WallSeconds,8:F3} s ({pass.Attach.MedianMs:F2} ms median)   detach {pass.Detach.WallSeconds,8:F3} s ({pass.Detach.MedianMs:F2} ms median)   rules in H {pass.RulesInHost}"));
            }
        }

        SandboxSetupWorkload.PrintTable([.. selected.Select(t => (t.Key, t.Name))], results, count, runs);
        foreach (var tool in selected.OfType<CnmSharpMacvlanTool>())
        {
            SandboxSetupWorkload.PrintSpans(tool.Controllers, count * runs);
        }

        // The same figure as sandbox-setup's: the wall time of the whole phase for N containers, median over the runs.
        string Med(string key, Func<SandboxSetupWorkload.Pass, double> f) =>
            results.TryGetValue(key, out var r) ? Stats.Median([.. r.Select(f)]).ToString("F3", CultureInfo.InvariantCulture) : "NA";
        Console.WriteLine(mode);
        Console.WriteLine(
            $"{Name} n={count} " +
            $"cnmsharp_attach_s={Med("cnmsharp", p => p.Attach.WallSeconds)} cnmsharp_detach_s={Med("cnmsharp", p => p.Detach.WallSeconds)} " +
            $"netavark_attach_s={Med("netavark", p => p.Attach.WallSeconds)} netavark_detach_s={Med("netavark", p => p.Detach.WallSeconds)} " +
            $"cni_attach_s={Med("cni", p => p.Attach.WallSeconds)} cni_detach_s={Med("cni", p => p.Detach.WallSeconds)}");
        return 0;
    }

    /// <summary>The binaries the selected tools need that are not there.</summary>
    private static List<string> MissingPrerequisites(List<MacvlanTool> tools)
    {
        var needed = new List<string> { "/usr/bin/nsenter" };
        if (tools.Any(t => t is NetavarkMacvlanTool))
        {
            needed.Add(NetavarkTool.Binary);
        }

        if (tools.Any(t => t is CniMacvlanTool))
        {
            needed.Add(CniBridgeTool.Directory + "/macvlan");
            needed.Add(CniBridgeTool.Directory + "/host-local");
        }

        var missing = needed.Where(p => !File.Exists(p)).ToList();
        if (!File.Exists("/usr/sbin/iptables-save") && !File.Exists("/sbin/iptables-save"))
        {
            missing.Add("iptables-save");
        }

        return missing;
    }

    /// <summary>The mode of the run: CnmSharp's store durability (as its store reports it), the firewall backends
    /// (macvlan programs no rules), the concurrency, what is timed, and the completion wait.</summary>
    private static string Mode(List<MacvlanTool> tools)
    {
        var cnm = tools.OfType<CnmSharpMacvlanTool>().FirstOrDefault();
        var firewalls = string.Join(", ", tools.Select(t => $"{t.Key} {t.Firewall}"));
        return $"mode: cnmsharp store=sqlite durability={cnm?.Controllers.Durability?.ToString() ?? "n/a"}; firewall: {firewalls}; macvlan programs no firewall rules (counted in H after attach); " +
            "concurrency: sequential 1 for all; namespaces (CnmSharp sandboxes) and CnmSharp's network created before and removed after the timed phases for all; " +
            "completion wait: in-process link dump of every container namespace and H until no macvlan device is left, for all";
    }

    /// <summary>
    /// One pass in a fresh private host namespace H with the parent veth: network and namespaces (not timed), attach
    /// all (timed), check, detach all and wait until no macvlan device is left (timed), namespaces and network removed
    /// (not timed), then H deleted and the root namespace checked.
    /// </summary>
    private static async Task<SandboxSetupWorkload.Pass> RunPassAsync(MacvlanTool tool, int count)
    {
        var root = await RootNamespaceCheck.TakeAsync().ConfigureAwait(false);
        string directory;
        string hostPath;
        SandboxSetupWorkload.Pass pass;
        await using (var host = await PrivateHost.CreateAsync("cnmmv").ConfigureAwait(false))
        {
            directory = host.Directory;
            hostPath = host.HostPath;
            await Exec.IpAsync(hostPath, "link", "add", Parent, "type", "veth", "peer", "name", Parent + "p").ConfigureAwait(false);
            await Exec.IpAsync(hostPath, "link", "set", Parent + "p", "up").ConfigureAwait(false);
            await Exec.IpAsync(hostPath, "link", "set", Parent, "up").ConfigureAwait(false);

            await using var session = await tool.StartAsync(host, Parent, count).ConfigureAwait(false);
            await session.CreateNetworkAsync().ConfigureAwait(false);
            for (var i = 0; i < count; i++)
            {
                EndpointSetup.Interrupt.ThrowIfRequested();
                await session.PrepareAsync(i).ConfigureAwait(false);
            }

            var attach = await PhaseResult.MeasureAsync(() => PhaseResult.TimeEachAsync(count, 1, Interruptible(session.AttachAsync))).ConfigureAwait(false);
            var rules = await VerifyAsync(tool, session, count).ConfigureAwait(false);

            // The same completion wait for every tool: sockets opened before the timed phase, dumps inside it.
            using (var waiter = LinkKindWaiter.Open(host.Manager, [hostPath, .. Enumerable.Range(0, count).Select(session.ContainerPath)]))
            {
                var detach = await PhaseResult.MeasureAsync(async () =>
                {
                    var times = await PhaseResult.TimeEachAsync(count, 1, Interruptible(session.DetachAsync)).ConfigureAwait(false);
                    await session.SettleAsync().ConfigureAwait(false);
                    await waiter.WaitGoneAsync("macvlan", tool.Name).ConfigureAwait(false);
                    return times;
                }).ConfigureAwait(false);
                var childRss = await session.ChildPeakRssKibAsync(count).ConfigureAwait(false);
                pass = new SandboxSetupWorkload.Pass(attach with { ChildPeakRssKib = childRss }, detach with { ChildPeakRssKib = childRss }, rules);
            }

            for (var i = 0; i < count; i++)
            {
                await session.ReleaseAsync(i).ConfigureAwait(false);
            }

            await session.DeleteNetworkAsync().ConfigureAwait(false);
        }

        await root.AssertUnchangedAsync(directory, hostPath, tool.Name).ConfigureAwait(false);
        return pass;
    }

    /// <summary>SIGINT/SIGTERM stop the pass at the next container; the pass's cleanup then removes what it made.</summary>
    private static Func<int, Task> Interruptible(Func<int, Task> step) => i =>
    {
        EndpointSetup.Interrupt.ThrowIfRequested();
        return step(i);
    };

    /// <summary>
    /// Every container has one macvlan device in bridge mode on the parent; the first and last have eth0 with their
    /// address in the subnet and a default route via the gateway; container 0 pings container N-1 through the parent
    /// (macvlan bridge mode, traffic only between our namespaces). Returns the number of firewall rules in H.
    /// </summary>
    private static async Task<int> VerifyAsync(MacvlanTool tool, MacvlanSession session, int count)
    {
        using (var links = LinkKindWaiter.Open(session.Host.Manager, Enumerable.Range(0, count).Select(session.ContainerPath)))
        {
            var devices = await links.CountAsync("macvlan").ConfigureAwait(false);
            if (devices != count)
            {
                throw new InvalidOperationException($"{tool.Name}: {devices} macvlan devices in the container namespaces after attach (expected {count})");
            }
        }

        var prefix = session.Gateway[..^1];
        string? last = null;
        foreach (var i in new[] { 0, count - 1 })
        {
            var path = session.ContainerPath(i);
            var link = await Exec.IpAsync(path, "-d", "-o", "link", "show", "dev", "eth0").ConfigureAwait(false);
            var addr = await Exec.IpAsync(path, "-o", "-4", "addr", "show", "dev", "eth0").ConfigureAwait(false);
            var route = await Exec.IpAsync(path, "route", "show", "default").ConfigureAwait(false);
            if (!link.Contains("macvlan mode bridge", StringComparison.Ordinal) || !addr.Contains("inet " + prefix, StringComparison.Ordinal) || !route.Contains($"default via {session.Gateway}", StringComparison.Ordinal))
            {
                throw new InvalidOperationException($"{tool.Name}: container {i} is not attached as expected:\n{link}{addr}{route}");
            }

            last = addr.Split("inet ", 2)[1].Split('/', 2)[0];
        }

        await Exec.RunAsync("nsenter", [$"--net={session.ContainerPath(0)}", "ping", "-c", "1", "-W", "2", "-q", last!]).ConfigureAwait(false);
        return await RootNamespaceCheck.RuleCountAsync(session.Host.HostPath).ConfigureAwait(false);
    }
}
