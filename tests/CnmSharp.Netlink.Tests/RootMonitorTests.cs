using System.Net;
using CnmSharp.Netlink.Tests.Support;
using CnmSharp.Testing;

namespace CnmSharp.Netlink.Tests;

[RequiresRoot]
[Parallelizable(ParallelScope.All)]
public class RootMonitorTests
{
    [Test]
    public async Task Monitor_reports_link_address_and_route_events_of_its_namespace()
    {
        using var ns = TestNamespace.Create();
        using var other = TestNamespace.Create();
        await using var client = RtnetlinkClient.Open(ns.Handle);
        await using var otherClient = RtnetlinkClient.Open(other.Handle);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var seen = new List<NetlinkEvent>();
        var ready = new TaskCompletionSource();

        var monitor = Task.Run(async () =>
        {
            await using var e = client.MonitorAsync(NetlinkGroups.All, cts.Token).GetAsyncEnumerator(cts.Token);
            var first = e.MoveNextAsync();
            ready.SetResult();
            if (!await first)
            {
                return;
            }

            do
            {
                lock (seen)
                {
                    seen.Add(e.Current);
                }

                if (e.Current is { Kind: NetlinkEventKind.RouteAdded, Route.Destination.PrefixLength: 16 })
                {
                    return;
                }
            }
            while (await e.MoveNextAsync());
        });
        // Subscribed once the first MoveNextAsync has returned: the enumeration runs synchronously up to its first
        // receive, and the socket joins its groups (setsockopt) before that. A change made later is never missed; if
        // one were, the monitor would not end and the test fails on its cancellation.
        await ready.Task;

        await otherClient.CreateLinkAsync(new BridgeLinkSpec("elsewhere0"));
        await client.CreateLinkAsync(new VethLinkSpec("m0", "m1") { Up = true });
        var index = (await client.GetLinkAsync("m0"))!.Index;
        await client.AddAddressAsync(new AddressSpec(index, IPAddress.Parse("10.77.0.2"), 24));
        await client.AddRouteAsync(new RouteSpec(IPNetwork.Parse("10.78.0.0/16")) { OutputIndex = index });
        await monitor.WaitAsync(cts.Token);

        lock (seen)
        {
            Assert.Multiple(() =>
            {
                Assert.That(seen.Any(e => e.Kind == NetlinkEventKind.LinkAdded && e.Link!.Name == "m0"), Is.True);
                Assert.That(seen.Any(e => e.Kind == NetlinkEventKind.AddressAdded && e.Address!.Address.Equals(IPAddress.Parse("10.77.0.2"))), Is.True);
                Assert.That(seen.Any(e => e.Kind == NetlinkEventKind.RouteAdded && e.Route!.Destination == IPNetwork.Parse("10.78.0.0/16")), Is.True);
                Assert.That(seen.Any(e => e.Link?.Name == "elsewhere0"), Is.False, "events of another namespace must not leak in");
            });
        }
    }

    [Test]
    public async Task Monitor_ends_with_cancellation()
    {
        using var ns = TestNamespace.Create();
        await using var client = RtnetlinkClient.Open(ns.Handle);
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));
        Assert.That(
            async () =>
            {
                await foreach (var unused in client.MonitorAsync(NetlinkGroups.Link, cts.Token))
                {
                }
            },
            Throws.InstanceOf<OperationCanceledException>());
        await Task.CompletedTask;
    }

    [Test]
    public async Task Lost_events_yield_a_resync_and_the_stream_goes_on()
    {
        using var ns = TestNamespace.Create();
        await using var client = RtnetlinkClient.Open(ns.Handle);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await using var events = client.MonitorAsync(NetlinkGroups.Link, receiveBufferSize: 1024, cts.Token).GetAsyncEnumerator(cts.Token);
        var first = events.MoveNextAsync(); // subscribed when it returns (see the first test)
        await client.CreateLinkAsync(new BridgeLinkSpec("trigger0"));
        Assert.That(await first, Is.True);

        // Nobody reads while the kernel queues far more than the tiny buffer holds.
        for (var i = 0; i < 30; i++)
        {
            await client.CreateLinkAsync(new VethLinkSpec($"f{i}a", $"f{i}b"));
        }

        var resync = false;
        for (var i = 0; i < 200 && !resync; i++)
        {
            Assert.That(await events.MoveNextAsync(), Is.True);
            resync = events.Current.Kind == NetlinkEventKind.Resync;
        }

        Assert.That(resync, Is.True, "an overrun must surface as a Resync event");
        await client.CreateLinkAsync(new BridgeLinkSpec("after0"));
        var seenAfter = false;
        for (var i = 0; i < 200 && !seenAfter; i++)
        {
            Assert.That(await events.MoveNextAsync(), Is.True);
            seenAfter = events.Current.Link?.Name == "after0";
        }

        Assert.That(seenAfter, Is.True, "the stream goes on after a resync");
    }
}
