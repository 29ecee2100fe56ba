using CnmSharp.Netlink;

namespace CnmSharp.Benchmarks.Common;

/// <summary>
/// The one completion wait every tool's teardown uses: an rtnetlink link monitor in H, opened and primed with a dump
/// of H's veths before the timed phase starts (<see cref="StartAsync"/>, not timed), then, inside the timed phase,
/// <see cref="WaitAsync"/> returns when every one of those veths was reported removed and a dump confirms H has no
/// veth left. In process, no polling processes, the same for CnmSharp and the peers.
/// </summary>
internal sealed class VethWaiter : IAsyncDisposable
{
    private readonly RtnetlinkClient _client;
    private readonly CancellationTokenSource _stop;
    private readonly IAsyncEnumerator<NetlinkEvent> _events;
    private readonly HashSet<int> _remaining;
    private Task<bool> _next;

    private VethWaiter(RtnetlinkClient client, CancellationTokenSource stop, IAsyncEnumerator<NetlinkEvent> events, Task<bool> next, HashSet<int> remaining)
    {
        _client = client;
        _stop = stop;
        _events = events;
        _next = next;
        _remaining = remaining;
    }

    /// <summary>Subscribes to H's link events, then dumps H's veths (those the wait waits for).</summary>
    public static async Task<VethWaiter> StartAsync(NetworkNamespace host)
    {
        var client = RtnetlinkClient.Open(host.Handle);
        try
        {
            var stop = new CancellationTokenSource();
            var events = client.MonitorAsync(NetlinkGroups.Link, stop.Token).GetAsyncEnumerator(stop.Token);

            // The first MoveNextAsync opens the monitor socket synchronously: subscribed before the dump.
            var next = events.MoveNextAsync().AsTask();
            var veths = await VethIndexesAsync(client).ConfigureAwait(false);
            return new VethWaiter(client, stop, events, next, veths);
        }
        catch
        {
            client.Dispose();
            throw;
        }
    }

    /// <summary>Returns when H has no veth left (120 s at most).</summary>
    public async Task WaitAsync(string what)
    {
        var deadline = DateTime.UtcNow.AddSeconds(120);
        while (true)
        {
            if (_remaining.Count == 0)
            {
                // Confirm with a dump (also catches a veth made after the start, which no tool should leave).
                var left = await VethIndexesAsync(_client).ConfigureAwait(false);
                if (left.Count == 0)
                {
                    return;
                }

                _remaining.UnionWith(left);
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"{what}: {_remaining.Count} veth(s) still in H after 120 s");
            }

            // Wait for the next link event; a dump every second in case one was missed without a resync.
            var delay = Task.Delay(1000);
            if (await Task.WhenAny(_next, delay).ConfigureAwait(false) != _next)
            {
                _remaining.IntersectWith(await VethIndexesAsync(_client).ConfigureAwait(false));
                continue;
            }

            if (!await _next.ConfigureAwait(false))
            {
                throw new InvalidOperationException($"{what}: the link monitor of H ended");
            }

            var e = _events.Current;
            _next = _events.MoveNextAsync().AsTask();
            if (e.Kind == NetlinkEventKind.LinkRemoved && e.Link is { } link)
            {
                _remaining.Remove(link.Index);
            }
            else if (e.Kind == NetlinkEventKind.Resync)
            {
                _remaining.IntersectWith(await VethIndexesAsync(_client).ConfigureAwait(false));
            }
        }
    }

    private static async Task<HashSet<int>> VethIndexesAsync(RtnetlinkClient client) =>
        [.. (await client.GetLinksAsync().ConfigureAwait(false)).Where(l => l.Kind == "veth").Select(l => l.Index)];

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        try
        {
            await _next.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }

        try
        {
            await _events.DisposeAsync().ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }

        _client.Dispose();
        _stop.Dispose();
    }
}
