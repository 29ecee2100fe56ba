using System.Buffers;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using CnmSharp.Netlink.Interop;

namespace CnmSharp.Netlink.Internal;

/// <summary>
/// A NETLINK_ROUTE socket in the namespace of the thread that created it, wrapped in a <see cref="Socket"/> for
/// async I/O on the runtime's event loop. Owns one pooled send buffer and one pooled receive buffer; callers
/// serialize requests with <see cref="Lock"/>.
/// </summary>
internal sealed class NetlinkSocket : IDisposable
{
    public const int ReceiveBufferSize = 64 * 1024;

    private readonly Socket _socket;
    private byte[] _receive;
    private uint _sequence;
    private bool _disposed;

    private NetlinkSocket(Socket socket, uint portId)
    {
        _socket = socket;
        PortId = portId;
        _receive = [];
        _sequence = (uint)Environment.TickCount;
    }

    /// <summary>The port id the kernel assigned at bind.</summary>
    public uint PortId { get; }

    public SemaphoreSlim Lock { get; } = new(1, 1);

    public GrowableBuffer SendBuffer { get; } = new();

    public ReadOnlySpan<byte> Received(int count) => _receive.AsSpan(0, count);

    /// <summary>Opens a socket in the calling thread's network namespace, joined to the given multicast groups.</summary>
    public static unsafe NetlinkSocket Open(ReadOnlySpan<int> groups = default, int receiveBufferSize = 0)
    {
        var fd = Libc.Socket(Libc.AF_NETLINK, Libc.SOCK_RAW | Libc.SOCK_CLOEXEC, Libc.NETLINK_ROUTE);
        if (fd < 0)
        {
            ThrowHelper.ThrowErrno(Marshal.GetLastPInvokeError(), "socket(AF_NETLINK, NETLINK_ROUTE)");
        }

        try
        {
            Check(Libc.SetSockOptInt(fd, Libc.SOL_NETLINK, Libc.NETLINK_EXT_ACK, 1), "setsockopt NETLINK_EXT_ACK");
            Check(Libc.SetSockOptInt(fd, Libc.SOL_NETLINK, Libc.NETLINK_CAP_ACK, 1), "setsockopt NETLINK_CAP_ACK");
            Check(Libc.SetSockOptInt(fd, Libc.SOL_NETLINK, Libc.NETLINK_GET_STRICT_CHK, 1), "setsockopt NETLINK_GET_STRICT_CHK");
            var rcvbuf = receiveBufferSize > 0 ? receiveBufferSize : groups.IsEmpty ? 1 << 20 : 4 << 20;
            if (Libc.SetSockOptInt(fd, Libc.SOL_SOCKET, Libc.SO_RCVBUFFORCE, rcvbuf) != 0)
            {
                _ = Libc.SetSockOptInt(fd, Libc.SOL_SOCKET, Libc.SO_RCVBUF, rcvbuf);
            }

            var address = new Libc.SockAddrNetlink { Family = Libc.AF_NETLINK };
            if (Libc.Bind(fd, &address, sizeof(Libc.SockAddrNetlink)) != 0)
            {
                ThrowHelper.ThrowErrno(Marshal.GetLastPInvokeError(), "bind netlink socket");
            }

            var length = sizeof(Libc.SockAddrNetlink);
            if (Libc.GetSockName(fd, &address, &length) != 0)
            {
                ThrowHelper.ThrowErrno(Marshal.GetLastPInvokeError(), "getsockname netlink socket");
            }

            foreach (var group in groups)
            {
                Check(Libc.SetSockOptInt(fd, Libc.SOL_NETLINK, Libc.NETLINK_ADD_MEMBERSHIP, group), "setsockopt NETLINK_ADD_MEMBERSHIP");
            }

            var socket = new Socket(new SafeSocketHandle(fd, ownsHandle: true));
            fd = -1;
            return new NetlinkSocket(socket, address.PortId);
        }
        finally
        {
            if (fd >= 0)
            {
                _ = Libc.Close(fd);
            }
        }
    }

    private static void Check(int errno, string operation)
    {
        if (errno != 0)
        {
            ThrowHelper.ThrowErrno(errno, operation);
        }
    }

    /// <summary>Returns the next sequence number, skipping 0 (the kernel's notifications use 0).</summary>
    public uint NextSequence(int count = 1)
    {
        var first = unchecked(_sequence + 1);
        if (first == 0 || unchecked(first + (uint)count) < first)
        {
            first = 1;
        }

        _sequence = unchecked(first + (uint)count - 1);
        return first;
    }

    /// <summary>Sends the first <paramref name="length"/> bytes of the send buffer as one datagram.</summary>
    public async ValueTask SendAsync(int length, CancellationToken cancellationToken)
    {
        int sent;
        try
        {
            sent = await _socket.SendAsync(SendBuffer.Array.AsMemory(0, length), SocketFlags.None, cancellationToken).ConfigureAwait(false);
        }
        catch (SocketException e)
        {
            throw new NetlinkException(e.NativeErrorCode, null, "send netlink request");
        }

        if (sent != length)
        {
            throw new NetlinkException(Errnos.EMSGSIZE, null, $"send netlink request ({sent} of {length} bytes)");
        }
    }

    /// <summary>Receives one datagram into the receive buffer (rented on first use); returns its length.</summary>
    public async ValueTask<int> ReceiveAsync(CancellationToken cancellationToken)
    {
        if (_receive.Length == 0)
        {
            _receive = ArrayPool<byte>.Shared.Rent(ReceiveBufferSize);
        }

        int received;
        try
        {
            received = await _socket.ReceiveAsync(_receive.AsMemory(), SocketFlags.None, cancellationToken).ConfigureAwait(false);
        }
        catch (SocketException e) when (e.SocketErrorCode != SocketError.NoBufferSpaceAvailable)
        {
            throw new NetlinkException(e.NativeErrorCode, null, "receive netlink reply");
        }

        if (received == _receive.Length)
        {
            throw new NetlinkProtocolException($"a datagram filled the whole {_receive.Length}-byte receive buffer and may be truncated");
        }

        return received;
    }

    /// <summary>
    /// Gives the receive buffer back to the pool; the next receive rents one again. Called between requests (under
    /// <see cref="Lock"/>), so an idle socket holds no 64 KiB buffer: a controller keeps one socket per sandbox.
    /// </summary>
    public void ReleaseReceiveBuffer()
    {
        var receive = Interlocked.Exchange(ref _receive, []);
        if (receive.Length > 0)
        {
            ArrayPool<byte>.Shared.Return(receive);
        }
    }

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        _socket.Dispose();
        SendBuffer.Dispose();
        ReleaseReceiveBuffer();
    }
}
