namespace CnmSharp.Netlink.Internal;

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
