using System.Globalization;
using System.Net;
using System.Net.NetworkInformation;
using CnmSharp.Netlink;

namespace CnmSharp.Benchmarks.EndpointSetup;

/// <summary>One way of setting up and tearing down N container endpoints in a <see cref="Fixture"/>.</summary>
internal abstract class EndpointTool
{
    public abstract string Name { get; }

    /// <summary>How many containers are set up at once.</summary>
    public virtual int Parallelism => 1;

    /// <summary>Per-worker state (sockets); created inside the timed setup phase.</summary>
    public abstract Task<IEndpointWorker> CreateWorkerAsync(Fixture fixture);

    /// <summary>Peak RSS (KiB) of one representative process of the tool, or null when the tool runs in-process.</summary>
    public virtual Task<long?> ChildPeakRssKibAsync(Fixture fixture) => Task.FromResult<long?>(null);

    /// <summary>Tears everything down and returns when the host-side veths are gone from H; per-container ms.</summary>
    public abstract Task<IReadOnlyList<double>> TeardownAsync(Fixture fixture);
}

internal interface IEndpointWorker : IAsyncDisposable
{
    Task SetupAsync(int i);
}

/// <summary>
/// (a) <c>ip</c>, one process per command, in libnetwork's order: create the pair in H, enslave and up the host end,
/// move the peer into the container namespace, rename it eth0, set MAC, address, up, lo up, default route. Teardown:
/// delete each host veth, then the namespace.
/// </summary>
internal sealed class IpNaiveTool : EndpointTool
{
    public override string Name => "ip (process per command)";

    public override Task<long?> ChildPeakRssKibAsync(Fixture fixture) =>
        Exec.PeakRssKibAsync(["nsenter", $"--net={fixture.HostPath}", "ip", "link", "set", "dev", Fixture.Bridge, "up"]);

    public override Task<IEndpointWorker> CreateWorkerAsync(Fixture fixture) => Task.FromResult<IEndpointWorker>(new Worker(fixture));

    public override async Task<IReadOnlyList<double>> TeardownAsync(Fixture fixture)
    {
        var times = new List<double>(fixture.Count);
        for (var i = 0; i < fixture.Count; i++)
        {
            Interrupt.ThrowIfRequested();
            var start = System.Diagnostics.Stopwatch.GetTimestamp();
            await Exec.IpAsync(fixture.HostPath, "link", "del", "dev", Fixture.HostVeth(i)).ConfigureAwait(false);
            await IpToolNamespaces.DeleteAsync(fixture.ContainerPath(i)).ConfigureAwait(false);
            times.Add(System.Diagnostics.Stopwatch.GetElapsedTime(start).TotalMilliseconds);
        }

        await PrivateHost.WaitUntilAsync(fixture.HostLinkCountByIpAsync, 2, Name).ConfigureAwait(false);
        return times;
    }

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
/// (b) One <c>ip -batch</c> per container namespace with the pair created in place: the batch runs in the new
/// container namespace (made by <c>unshare --net=PATH</c>, which then execs ip) and creates eth0 with its MAC and the
/// peer directly in H, then address, up, lo up, default route; one more ip in H enslaves and ups the host end.
/// Teardown: delete the namespaces, then wait until the host-side veths are gone from H.
/// </summary>
internal sealed class IpBatchTool : EndpointTool
{
    public override string Name => "ip -batch (peer in place)";

    public override Task<long?> ChildPeakRssKibAsync(Fixture fixture) =>
        Exec.PeakRssKibAsync(["nsenter", $"--net={fixture.HostPath}", "ip", "-batch", "-"], "link show\naddr show\nroute show\nlink set dev br0 up\n");

    public override Task<IEndpointWorker> CreateWorkerAsync(Fixture fixture) => Task.FromResult<IEndpointWorker>(new Worker(fixture));

    public override async Task<IReadOnlyList<double>> TeardownAsync(Fixture fixture)
    {
        var times = new List<double>(fixture.Count);
        for (var i = 0; i < fixture.Count; i++)
        {
            Interrupt.ThrowIfRequested();
            var start = System.Diagnostics.Stopwatch.GetTimestamp();
            await IpToolNamespaces.DeleteAsync(fixture.ContainerPath(i)).ConfigureAwait(false);
            times.Add(System.Diagnostics.Stopwatch.GetElapsedTime(start).TotalMilliseconds);
        }

        await PrivateHost.WaitUntilAsync(fixture.HostLinkCountByIpAsync, 2, Name).ConfigureAwait(false);
        return times;
    }

    private sealed class Worker(Fixture f) : IEndpointWorker
    {
        public async Task SetupAsync(int i)
        {
            var c = f.ContainerPath(i);
            var veth = Fixture.HostVeth(i);
            var batch =
                $"link add eth0 address {Fixture.MacText(i)} type veth peer name {veth} netns {f.HostPath}\n" +
                $"addr add {Fixture.AddressText(i)}/{Fixture.PrefixLength} dev eth0\n" +
                "link set dev eth0 up\n" +
                "link set dev lo up\n" +
                $"route add default via {Fixture.Gateway} dev eth0\n";

            // Like `ip netns add`, the namespace file is made first; unshare pins the namespace there and runs the batch in it.
            await File.WriteAllBytesAsync(c, []).ConfigureAwait(false);
            await Exec.RunAsync("unshare", [$"--net={c}", "ip", "-batch", "-"], batch).ConfigureAwait(false);
            await Exec.IpAsync(f.HostPath, "link", "set", "dev", veth, "master", Fixture.Bridge, "up").ConfigureAwait(false);
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
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
/// CnmSharp: namespaces by <see cref="NetworkNamespaceManager"/> (in-process unshare + bind mount), a few workers each
/// with its own rtnetlink socket in H. Per container: one RTM_NEWLINK in H creating the veth with the host end already
/// enslaved and up and the peer (eth0, with its MAC) created directly inside the container namespace, then one batch
/// datagram inside the container namespace (address, eth0 up, lo up, default route). Teardown: delete the namespace
/// files, then wait on a link monitor of H until every host-side veth is reported gone (confirmed by a dump).
/// </summary>
internal sealed class CnmSharpTool(int workers) : EndpointTool
{
    private static readonly IPNetwork s_default = new(IPAddress.Any, 0);

    public override string Name => "CnmSharp";

    public override int Parallelism => workers;

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

    public override async Task<IReadOnlyList<double>> TeardownAsync(Fixture fixture)
    {
        using var client = RtnetlinkClient.Open(fixture.Host.Handle);
        using var stop = new CancellationTokenSource();
        var remaining = new HashSet<string>(Enumerable.Range(0, fixture.Count).Select(Fixture.HostVeth), StringComparer.Ordinal);

        // Subscribe before deleting anything: the first MoveNextAsync opens the monitor socket synchronously.
        var events = client.MonitorAsync(NetlinkGroups.Link, stop.Token).GetAsyncEnumerator(stop.Token);
        var next = events.MoveNextAsync();

        var times = new List<double>(fixture.Count);
        for (var i = 0; i < fixture.Count; i++)
        {
            Interrupt.ThrowIfRequested();
            var start = System.Diagnostics.Stopwatch.GetTimestamp();
            await fixture.Manager.DeleteAsync(fixture.ContainerName(i)).ConfigureAwait(false);
            times.Add(System.Diagnostics.Stopwatch.GetElapsedTime(start).TotalMilliseconds);
        }

        try
        {
            while (remaining.Count > 0 && await next.ConfigureAwait(false))
            {
                var e = events.Current;
                if (e.Kind == NetlinkEventKind.LinkRemoved && e.Link is { } link)
                {
                    remaining.Remove(link.Name);
                }
                else if (e.Kind == NetlinkEventKind.Resync)
                {
                    // Events were lost: recount from a dump.
                    var present = (await client.GetLinksAsync().ConfigureAwait(false)).Select(l => l.Name).ToHashSet(StringComparer.Ordinal);
                    remaining.IntersectWith(present);
                }

                if (remaining.Count > 0)
                {
                    next = events.MoveNextAsync();
                }
            }
        }
        finally
        {
            await stop.CancelAsync().ConfigureAwait(false);
            try
            {
                await events.DisposeAsync().ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
            }
        }

        // Verify: only lo and br0 are left.
        var left = await client.GetLinksAsync().ConfigureAwait(false);
        if (left.Count != 2)
        {
            throw new InvalidOperationException($"CnmSharp: {left.Count} links left in H after teardown");
        }

        return times;
    }

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
