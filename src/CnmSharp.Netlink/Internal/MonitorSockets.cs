using System.Runtime.CompilerServices;

namespace CnmSharp.Netlink.Internal;

/// <summary>Decodes one received datagram of a monitor into events.</summary>
/// <typeparam name="TEvent">The event type.</typeparam>
/// <param name="datagram">The bytes received.</param>
/// <param name="events">Where the events go.</param>
internal delegate void MonitorParser<TEvent>(ReadOnlySpan<byte> datagram, List<TEvent> events);

/// <summary>
/// The monitor sockets a client has open, so that disposing the client ends every monitor waiting on one. Shared by
/// the rtnetlink and the nf_tables clients.
/// </summary>
internal sealed class MonitorSockets
{
    private readonly HashSet<NetlinkSocket> _sockets = [];

    /// <summary>Takes a reference on a freshly opened monitor socket and keeps it, unless the owner was disposed in the
    /// meantime: then the socket is closed and <see cref="ObjectDisposedException"/> thrown.</summary>
    /// <param name="socket">The socket just opened.</param>
    /// <param name="isOwnerDisposed">Whether the owning client is disposed (read under the set's lock).</param>
    /// <param name="owner">The owning client, named in the exception.</param>
    /// <returns>The socket.</returns>
    public NetlinkSocket Add(NetlinkSocket socket, Func<bool> isOwnerDisposed, object owner)
    {
        _ = socket.TryAcquire();
        lock (_sockets)
        {
            if (!isOwnerDisposed())
            {
                _sockets.Add(socket);
                return socket;
            }
        }

        socket.Dispose();
        socket.Release();
        throw new ObjectDisposedException(owner.GetType().FullName);
    }

    /// <summary>Forgets a monitor socket and closes it.</summary>
    /// <param name="socket">A socket given to <see cref="Add"/>.</param>
    public void Close(NetlinkSocket socket)
    {
        lock (_sockets)
        {
            _sockets.Remove(socket);
        }

        socket.Dispose();
        socket.Release();
    }

    /// <summary>
    /// The read loop every monitor shares: events as they arrive on <paramref name="socket"/>; after lost notifications
    /// (ENOBUFS) a fresh subscription is opened first, so a re-dump done on <paramref name="resync"/> misses nothing
    /// after it, and then <paramref name="resync"/> is yielded. The socket in use is closed when the enumeration ends.
    /// </summary>
    public async IAsyncEnumerable<TEvent> ReadAsync<TEvent>(
        NetlinkSocket socket,
        Func<NetlinkSocket> reopen,
        MonitorParser<TEvent> parse,
        TEvent resync,
        string what,
        Func<bool> isOwnerDisposed,
        object owner,
        [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        try
        {
            var events = new List<TEvent>();
            while (true)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var lost = false;
                var received = 0;
                try
                {
                    received = await socket.ReceiveAsync(cancellationToken, what).ConfigureAwait(false);
                }
                catch (NetlinkException e) when (e.Errno == Errnos.ENOBUFS)
                {
                    lost = true;
                }
                catch (ObjectDisposedException e) when (isOwnerDisposed())
                {
                    throw new ObjectDisposedException(owner.GetType().FullName, e);
                }

                if (lost)
                {
                    var fresh = reopen();
                    Close(socket);
                    socket = fresh;
                    yield return resync;
                    continue;
                }

                // The enumeration holds a lease on its socket, so a concurrent Dispose cannot pool the buffer under
                // this read.
                parse(socket.Received(received), events);
                foreach (var e in events)
                {
                    yield return e;
                }

                events.Clear();
            }
        }
        finally
        {
            Close(socket);
        }
    }

    /// <summary>Disposes every monitor socket still open, which ends the monitors reading them.</summary>
    public void DisposeAll()
    {
        NetlinkSocket[] sockets;
        lock (_sockets)
        {
            sockets = [.. _sockets];
        }

        foreach (var socket in sockets)
        {
            socket.Dispose();
        }
    }
}
