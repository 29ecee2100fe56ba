using System.Globalization;
using System.Net;
using System.Net.NetworkInformation;
using CnmSharp.Netlink;

namespace CnmSharp.Benchmarks.EndpointSetup;

/// <summary>One way of setting up and tearing down N container endpoints in a <see cref="Fixture"/>.</summary>
/// <param name="parallelism">How many containers are set up (and torn down) at once: 1 (sequential) or C.</param>
internal abstract class EndpointTool(int parallelism)
{
    public abstract string Name { get; }

    /// <summary>How many containers are set up at once.</summary>
    public int Parallelism => parallelism;

    /// <summary>" (sequential)" or " (C at once)", for names.</summary>
    protected string Mode => parallelism == 1 ? " (sequential)" : string.Create(CultureInfo.InvariantCulture, $" ({parallelism} at once)");

    /// <summary>Per-worker state (sockets); created inside the timed setup phase.</summary>
    public virtual Task<IEndpointWorker> CreateWorkerAsync(Fixture fixture) => throw new NotSupportedException();

    /// <summary>
    /// Sets up every container (timed); returns per-container milliseconds. By default: <see cref="Parallelism"/>
    /// workers, each taking the next container.
    /// </summary>
    public virtual async Task<IReadOnlyList<double>> SetupAllAsync(Fixture fixture)
    {
        // One worker (with its own sockets) per lane, made inside the timed phase.
        var lanes = Math.Min(Parallelism, fixture.Count);
        var workers = await Task.WhenAll(Enumerable.Range(0, lanes).Select(_ => CreateWorkerAsync(fixture))).ConfigureAwait(false);
        try
        {
            var free = new System.Collections.Concurrent.ConcurrentBag<IEndpointWorker>(workers);
            return await PhaseResult.TimeEachAsync(fixture.Count, lanes, async i =>
            {
                Interrupt.ThrowIfRequested();
                free.TryTake(out var worker);
                try
                {
                    await worker!.SetupAsync(i).ConfigureAwait(false);
                }
                finally
                {
                    free.Add(worker!);
                }
            }).ConfigureAwait(false);
        }
        finally
        {
            foreach (var worker in workers)
            {
                await worker.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    /// <summary>Peak RSS (KiB) of one representative process of the tool, or null when the tool runs in-process.</summary>
    public virtual Task<long?> ChildPeakRssKibAsync(Fixture fixture) => Task.FromResult<long?>(null);

    /// <summary>
    /// Deletes everything the tool made for the containers (timed); returns per-container milliseconds of the deletion
    /// calls. The caller then waits, the same way for every tool, until the kernel has removed the host-side veths
    /// (<see cref="VethWaiter"/>, inside the same timed phase).
    /// </summary>
    public abstract Task<IReadOnlyList<double>> TeardownAsync(Fixture fixture);
}

internal interface IEndpointWorker : IAsyncDisposable
{
    Task SetupAsync(int i);
}

/// <summary>
/// <c>ip</c>, one process per command, in libnetwork's order: create the pair in H, enslave and up the host end,
/// move the peer into the container namespace, rename it eth0, set MAC, address, up, lo up, default route. Teardown:
/// delete each host veth, then the namespace (<c>umount -l</c> + unlink).
/// </summary>
internal sealed class IpNaiveTool(int parallelism) : EndpointTool(parallelism)
{
    public override string Name => "ip, process per command" + Mode;

    public override Task<long?> ChildPeakRssKibAsync(Fixture fixture) =>
        Exec.PeakRssKibAsync(["nsenter", $"--net={fixture.HostPath}", "ip", "link", "set", "dev", Fixture.Bridge, "up"]);

    public override Task<IEndpointWorker> CreateWorkerAsync(Fixture fixture) => Task.FromResult<IEndpointWorker>(new Worker(fixture));

    public override Task<IReadOnlyList<double>> TeardownAsync(Fixture fixture) =>
        PhaseResult.TimeEachAsync(fixture.Count, Parallelism, async i =>
        {
            Interrupt.ThrowIfRequested();
            await Exec.IpAsync(fixture.HostPath, "link", "del", "dev", Fixture.HostVeth(i)).ConfigureAwait(false);
            await IpToolNamespaces.DeleteAsync(fixture.ContainerPath(i)).ConfigureAwait(false);
        });

    private sealed class Worker(Fixture f) : IEndpointWorker
    {
        public async Task SetupAsync(int i)
        {
            var c = f.ContainerPath(i);
            var h = f.HostPath;
            var veth = Fixture.HostVeth(i);
            var peer = string.Create(CultureInfo.InvariantCulture, $"vp{i}");
            await IpToolNamespaces.CreateAsync(c).ConfigureAwait(false);
            await Exec.IpAsync(h, "link", "add", veth, "type", "veth", "peer", "name", peer).ConfigureAwait(false);
            await Exec.IpAsync(h, "link", "set", "dev", veth, "master", Fixture.Bridge).ConfigureAwait(false);
            await Exec.IpAsync(h, "link", "set", "dev", veth, "up").ConfigureAwait(false);
            await Exec.IpAsync(h, "link", "set", "dev", peer, "netns", c).ConfigureAwait(false);
            await Exec.IpAsync(c, "link", "set", "dev", peer, "name", "eth0").ConfigureAwait(false);
            await Exec.IpAsync(c, "link", "set", "dev", "eth0", "address", Fixture.MacText(i)).ConfigureAwait(false);
            await Exec.IpAsync(c, "addr", "add", $"{Fixture.AddressText(i)}/{Fixture.PrefixLength}", "dev", "eth0").ConfigureAwait(false);
            await Exec.IpAsync(c, "link", "set", "dev", "eth0", "up").ConfigureAwait(false);
            await Exec.IpAsync(c, "link", "set", "dev", "lo", "up").ConfigureAwait(false);
            await Exec.IpAsync(c, "route", "add", "default", "via", Fixture.Gateway, "dev", "eth0").ConfigureAwait(false);
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}

/// <summary>
/// The in-place floor with <c>ip -batch</c>, as few processes as iproute2 allows. A batch line cannot switch network
/// namespace (<c>-n</c> inside a batch is "Object "-n" is unknown"; <c>netns exec</c> forks a process), so the work
/// inside each container namespace needs one <c>ip</c> there; everything else is one <c>ip -batch</c> process in H for
/// all N containers. Per container: <c>unshare --net=PATH ip -batch -</c> (what <c>ip netns add</c> does, with a path;
/// unshare pins the namespace and execs ip in it): <c>eth0</c> with its MAC created with its peer <c>vhN</c> directly in
/// H, address, up, lo up, default route. Then one <c>ip -batch</c> in H: <c>link set vhN master br0 up</c> for all N.
/// Teardown: one <c>umount -l</c> process with every namespace file of its lane, then unlink.
/// </summary>
internal sealed class IpBatchTool(int parallelism) : EndpointTool(parallelism)
{
    public override string Name => "ip -batch, peer in place" + Mode;

    public override Task<long?> ChildPeakRssKibAsync(Fixture fixture) =>
        Exec.PeakRssKibAsync(["nsenter", $"--net={fixture.HostPath}", "ip", "-batch", "-"], "link show\naddr show\nroute show\nlink set dev br0 up\n");

    public override async Task<IReadOnlyList<double>> SetupAllAsync(Fixture fixture)
    {
        var times = await PhaseResult.TimeEachAsync(fixture.Count, Parallelism, async i =>
        {
            Interrupt.ThrowIfRequested();
            var c = fixture.ContainerPath(i);
            var batch =
                $"link add eth0 address {Fixture.MacText(i)} type veth peer name {Fixture.HostVeth(i)} netns {fixture.HostPath}\n" +
                $"addr add {Fixture.AddressText(i)}/{Fixture.PrefixLength} dev eth0\n" +
                "link set dev eth0 up\n" +
                "link set dev lo up\n" +
                $"route add default via {Fixture.Gateway} dev eth0\n";

            // Like `ip netns add`, the namespace file is made first; unshare pins the namespace there and runs the batch in it.
            await File.WriteAllBytesAsync(c, []).ConfigureAwait(false);
            await Exec.RunAsync("unshare", [$"--net={c}", "ip", "-batch", "-"], batch).ConfigureAwait(false);
        }).ConfigureAwait(false);

        // The host side of all N containers in one process (in the phase's wall time, not in the per-container times).
        var host = new System.Text.StringBuilder();
        for (var i = 0; i < fixture.Count; i++)
        {
            host.Append(CultureInfo.InvariantCulture, $"link set dev {Fixture.HostVeth(i)} master {Fixture.Bridge} up\n");
        }

        await Exec.IpBatchAsync(fixture.HostPath, host.ToString()).ConfigureAwait(false);
        return times;
    }

    public override async Task<IReadOnlyList<double>> TeardownAsync(Fixture fixture)
    {
        // One umount process per lane for its share of the namespaces; per container: the lane's time / its share.
        var times = new double[fixture.Count];
        var lanes = Math.Min(Parallelism, fixture.Count);
        await Task.WhenAll(Enumerable.Range(0, lanes).Select(async lane =>
        {
            Interrupt.ThrowIfRequested();
            var mine = Enumerable.Range(0, fixture.Count).Where(i => i % lanes == lane).ToArray();
            var start = System.Diagnostics.Stopwatch.GetTimestamp();
            await Exec.RunAsync("umount", ["-l", .. mine.Select(fixture.ContainerPath)]).ConfigureAwait(false);
            foreach (var i in mine)
            {
                File.Delete(fixture.ContainerPath(i));
            }

            var each = System.Diagnostics.Stopwatch.GetElapsedTime(start).TotalMilliseconds / mine.Length;
            foreach (var i in mine)
            {
                times[i] = each;
            }
        })).ConfigureAwait(false);
        return times;
    }
}

/// <summary>Namespaces for the peer tools, by processes (the private run directory rules out <c>ip netns add</c>).</summary>
internal static class IpToolNamespaces
{
    /// <summary>What <c>ip netns add</c> does, with a path: make the file, then <c>unshare --net=PATH true</c>.</summary>
    public static async Task CreateAsync(string path)
    {
        await File.WriteAllBytesAsync(path, []).ConfigureAwait(false);
        await Exec.RunAsync("unshare", [$"--net={path}", "true"]).ConfigureAwait(false);
    }

    /// <summary>What <c>ip netns delete</c> does, with a path: <c>umount -l PATH</c>, then unlink.</summary>
    public static async Task DeleteAsync(string path)
    {
        await Exec.RunAsync("umount", ["-l", path]).ConfigureAwait(false);
        File.Delete(path);
    }
}

/// <summary>
/// CnmSharp: namespaces by <see cref="NetworkNamespaceManager"/> (in-process unshare + bind mount), 1 or C workers each
/// with its own rtnetlink socket in H. Per container: one RTM_NEWLINK in H creating the veth with the host end already
/// enslaved and up and the peer (eth0, with its MAC) created directly inside the container namespace, then one batch
/// datagram inside the container namespace (address, eth0 up, lo up, default route). Teardown: delete the namespace
/// files (unmount + unlink, in process).
/// </summary>
internal sealed class CnmSharpTool(int parallelism) : EndpointTool(parallelism)
{
    private static readonly IPNetwork s_default = new(IPAddress.Any, 0);

    public override string Name => "CnmSharp" + Mode;

    public override async Task<IEndpointWorker> CreateWorkerAsync(Fixture fixture)
    {
        var client = RtnetlinkClient.Open(fixture.Host.Handle);
        try
        {
            var bridge = await client.GetLinkAsync(Fixture.Bridge).ConfigureAwait(false)
                ?? throw new InvalidOperationException("br0 is missing in H");
            return new Worker(fixture, client, bridge.Index);
        }
        catch
        {
            client.Dispose();
            throw;
        }
    }

    public override Task<IReadOnlyList<double>> TeardownAsync(Fixture fixture) =>
        PhaseResult.TimeEachAsync(fixture.Count, Parallelism, async i =>
        {
            Interrupt.ThrowIfRequested();
            await fixture.Manager.DeleteAsync(fixture.ContainerName(i)).ConfigureAwait(false);
        });

    private sealed class Worker(Fixture f, RtnetlinkClient host, int bridgeIndex) : IEndpointWorker
    {
        public async Task SetupAsync(int i)
        {
            using var ns = await f.Manager.CreateAsync(f.ContainerName(i)).ConfigureAwait(false);

            // The socket for the container is made by a namespace worker thread already inside it.
            using var inside = await f.Manager.RunInsideAsync(ns, () => RtnetlinkClient.Open()).ConfigureAwait(false);

            await host.CreateLinkAsync(new VethLinkSpec(Fixture.HostVeth(i), "eth0")
            {
                MasterIndex = bridgeIndex,
                Up = true,
                PeerNamespace = ns.Handle,
                PeerMac = new PhysicalAddress(Fixture.Mac(i)),
            }).ConfigureAwait(false);

            var eth0 = await inside.GetLinkAsync("eth0").ConfigureAwait(false)
                ?? throw new InvalidOperationException("eth0 did not appear in the container namespace");
            using var batch = new RtnetlinkBatch()
                .AddAddress(new AddressSpec(eth0.Index, Fixture.Address(i), Fixture.PrefixLength))
                .SetLinkUp(eth0.Index)
                .SetLinkUp("lo")
                .AddRoute(new RouteSpec(s_default) { Gateway = IPAddress.Parse(Fixture.Gateway), OutputIndex = eth0.Index });
            (await inside.ExecuteBatchAsync(batch).ConfigureAwait(false)).ThrowIfFailed();
        }

        public ValueTask DisposeAsync() => host.DisposeAsync();
    }
}
