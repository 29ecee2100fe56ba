using System.Buffers;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using CnmSharp.Netlink.Interop;

namespace CnmSharp.Netlink.Internal;

/// <summary>
/// A netlink socket (NETLINK_ROUTE, or NETLINK_NETFILTER for nf_tables) in the namespace of the thread that created it, wrapped in a <see cref="Socket"/> for
/// async I/O on the runtime's event loop. Owns one pooled send buffer and one pooled receive buffer; callers
/// serialize requests with <see cref="Lock"/>.
/// </summary>
/// <remarks>
/// <para>Lifetime: every operation that touches the buffers runs inside a lease (<see cref="TryAcquire"/> ..
/// <see cref="Release"/>; <see cref="SendAsync"/> and <see cref="ReceiveAsync"/> take one of their own, and a caller
/// that reads <see cref="Received"/> or writes <see cref="SendBuffer"/> holds one around the whole exchange).
/// <see cref="Dispose"/> may run at any moment on any thread: it refuses new leases, closes the file descriptor (which
/// aborts a pending send or receive), and the buffers go back to the pool only when the last lease is released, so
/// an array is never handed to another renter while a receive may still write into it.</para>
/// <para>Errors: every failure of a system call on the socket is a <see cref="NetlinkException"/> with its errno
/// (ENOBUFS included); an operation that fails because the socket was closed under it is an
/// <see cref="ObjectDisposedException"/>; a cancelled one an <see cref="OperationCanceledException"/>. A send or
/// receive that failed or was cancelled marks the socket <see cref="NeedsResync"/>: replies of the abandoned request
/// (or the rest of a dump the kernel is still producing) may be queued, and the owner replaces the file descriptor
/// with <see cref="Reopen"/> before the next request.</para>
/// </remarks>
internal sealed class NetlinkSocket : IDisposable
{
    public const int ReceiveBufferSize = 64 * 1024;

    /// <summary>Set in <see cref="_state"/> once disposed; the other bits count leases.</summary>
    private const int ClosedBit = 1 << 30;

    private readonly ArrayPool<byte> _pool;
    private readonly int[] _groups;
    private readonly int _kernelReceiveBufferSize;
    private readonly int _protocol;
    private readonly object _gate = new();
    private readonly TaskCompletionSource _drained = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Socket _socket;
    private byte[] _receive;
    private uint _sequence;
    private int _state;
    private volatile bool _needsResync;
    private volatile uint _portId;

    private NetlinkSocket(Socket socket, uint portId, int[] groups, int kernelReceiveBufferSize, ArrayPool<byte> pool, int protocol)
    {
        _protocol = protocol;
        _pool = pool;
        _socket = socket;
        _portId = portId;
        _groups = groups;
        _kernelReceiveBufferSize = kernelReceiveBufferSize;
        _receive = [];
        _sequence = (uint)Environment.TickCount;
        SendBuffer = new GrowableBuffer(pool: pool);
    }

    /// <summary>The port id the kernel assigned at bind (a new one after <see cref="Reopen"/>).</summary>
    public uint PortId => _portId;

    public SemaphoreSlim Lock { get; } = new(1, 1);

    public GrowableBuffer SendBuffer { get; }

    /// <summary>True once <see cref="Dispose"/> has started.</summary>
    public bool IsClosed => (Volatile.Read(ref _state) & ClosedBit) != 0;

    /// <summary>True when a send or receive failed or was cancelled, so stale replies may be queued.</summary>
    public bool NeedsResync => _needsResync;

    /// <summary>Asks the owner to replace the file descriptor before the next request (a reply was abandoned half read).</summary>
    public void MarkNeedsResync() => _needsResync = true;

    /// <summary>Leases held now (for tests).</summary>
    internal int Leases => Volatile.Read(ref _state) & ~ClosedBit;

    /// <summary>Completes once the socket is disposed and its last lease released (its buffers are back in the pool).</summary>
    public Task Drained => _drained.Task;

    public ReadOnlySpan<byte> Received(int count) => _receive.AsSpan(0, count);

    /// <summary>Opens a socket in the calling thread's network namespace, joined to the given multicast groups.</summary>
    /// <param name="groups">RTNLGRP_* numbers to join.</param>
    /// <param name="receiveBufferSize">SO_RCVBUF to ask for; 0 for the default (1 MiB, 4 MiB with groups).</param>
    /// <param name="pool">Where the buffers come from; tests pass their own.</param>
    /// <param name="protocol">The netlink protocol: NETLINK_ROUTE (the default) or NETLINK_NETFILTER.</param>
    public static NetlinkSocket Open(ReadOnlySpan<int> groups = default, int receiveBufferSize = 0, ArrayPool<byte>? pool = null, int protocol = Libc.NETLINK_ROUTE)
    {
        var groupArray = groups.ToArray();
        var socket = OpenRaw(groupArray, receiveBufferSize, protocol, out var portId);
        return new NetlinkSocket(socket, portId, groupArray, receiveBufferSize, pool ?? ArrayPool<byte>.Shared, protocol);
    }

    private static unsafe Socket OpenRaw(int[] groups, int receiveBufferSize, int protocol, out uint portId)
    {
        var fd = Libc.Socket(Libc.AF_NETLINK, Libc.SOCK_RAW | Libc.SOCK_CLOEXEC, protocol);
        if (fd < 0)
        {
            ThrowHelper.ThrowErrno(Marshal.GetLastPInvokeError(), $"socket(AF_NETLINK, {(protocol == Libc.NETLINK_ROUTE ? "NETLINK_ROUTE" : "NETLINK_NETFILTER")})");
        }

        try
        {
            Check(Libc.SetSockOptInt(fd, Libc.SOL_NETLINK, Libc.NETLINK_EXT_ACK, 1), "setsockopt NETLINK_EXT_ACK");
            Check(Libc.SetSockOptInt(fd, Libc.SOL_NETLINK, Libc.NETLINK_CAP_ACK, 1), "setsockopt NETLINK_CAP_ACK");
            Check(Libc.SetSockOptInt(fd, Libc.SOL_NETLINK, Libc.NETLINK_GET_STRICT_CHK, 1), "setsockopt NETLINK_GET_STRICT_CHK");
            var rcvbuf = receiveBufferSize > 0 ? receiveBufferSize : groups.Length == 0 ? 1 << 20 : 4 << 20;
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
            portId = address.PortId;
            return socket;
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

    /// <summary>The cookie of the socket's network namespace (<c>SO_NETNS_COOKIE</c>), or null where the kernel does
    /// not tell it (before Linux 5.14).</summary>
    /// <exception cref="ObjectDisposedException">The socket is closed.</exception>
    public ulong? NamespaceCookie()
    {
        const int SOL_SOCKET = 1;
        const int SO_NETNS_COOKIE = 71;
        if (!TryAcquire())
        {
            throw Closed(null);
        }

        try
        {
            Span<byte> value = stackalloc byte[sizeof(ulong)];
            return _socket.GetRawSocketOption(SOL_SOCKET, SO_NETNS_COOKIE, value) == sizeof(ulong)
                ? System.Runtime.InteropServices.MemoryMarshal.Read<ulong>(value)
                : null;
        }
        catch (SocketException)
        {
            return null;
        }
        finally
        {
            Release();
        }
    }

    /// <summary>Takes a lease: the buffers stay this socket's until <see cref="Release"/>. False once disposed.</summary>
    public bool TryAcquire()
    {
        var state = Volatile.Read(ref _state);
        while (true)
        {
            if ((state & ClosedBit) != 0)
            {
                return false;
            }

            var seen = Interlocked.CompareExchange(ref _state, state + 1, state);
            if (seen == state)
            {
                return true;
            }

            state = seen;
        }
    }

    /// <summary>Ends a lease; the last one out after <see cref="Dispose"/> returns the buffers to the pool.</summary>
    public void Release()
    {
        var state = Interlocked.Decrement(ref _state);
        if (state == ClosedBit)
        {
            Drain();
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

    /// <summary>
    /// Begins one request of a client: takes a lease and <see cref="Lock"/>, refusing once closed
    /// (<see cref="ObjectDisposedException"/> naming <paramref name="owner"/>), and when an earlier request left the
    /// socket out of step (<see cref="NeedsResync"/>) runs <paramref name="reopen"/>, which calls <see cref="Reopen"/>
    /// in the client's namespace. End it with <see cref="ExitRequest"/>.
    /// </summary>
    /// <param name="owner">The client, for the disposed error.</param>
    /// <param name="reopen">Replaces the file descriptor in the client's namespace.</param>
    /// <param name="cancellationToken">Cancels the wait for the lock.</param>
    [System.Runtime.CompilerServices.AsyncMethodBuilder(typeof(System.Runtime.CompilerServices.PoolingAsyncValueTaskMethodBuilder))]
    public async ValueTask EnterRequestAsync(object owner, Action reopen, CancellationToken cancellationToken)
    {
        if (!TryAcquire())
        {
            ObjectDisposedException.ThrowIf(true, owner);
        }

        try
        {
            await Lock.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            Release();
            throw;
        }

        try
        {
            ObjectDisposedException.ThrowIf(IsClosed, owner);
            if (NeedsResync)
            {
                reopen();
            }
        }
        catch
        {
            ExitRequest();
            throw;
        }
    }

    /// <summary>Ends what <see cref="EnterRequestAsync"/> began: gives back the receive buffer, the lock and the lease.</summary>
    public void ExitRequest()
    {
        ReleaseReceiveBuffer();
        Lock.Release();
        Release();
    }

    /// <summary>Sends the first <paramref name="length"/> bytes of the send buffer as one datagram.</summary>
    /// <param name="length">Bytes to send.</param>
    /// <param name="cancellationToken">Cancels the send.</param>
    /// <param name="operation">The request, for error messages.</param>
    public async ValueTask SendAsync(int length, CancellationToken cancellationToken, string operation = "netlink request")
    {
        if (!TryAcquire())
        {
            throw Closed(null);
        }

        int sent;
        try
        {
            sent = await Volatile.Read(ref _socket).SendAsync(SendBuffer.Array.AsMemory(0, length), SocketFlags.None, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException or OperationCanceledException)
        {
            throw Failed(e, operation, "send");
        }
        finally
        {
            Release();
        }

        if (sent != length)
        {
            _needsResync = true;
            throw new NetlinkException(Errnos.EMSGSIZE, null, $"{operation}: send ({sent} of {length} bytes)");
        }
    }

    /// <summary>Receives one datagram into the receive buffer (rented on first use); returns its length.</summary>
    /// <param name="cancellationToken">Cancels the receive.</param>
    /// <param name="operation">The request, for error messages.</param>
    public async ValueTask<int> ReceiveAsync(CancellationToken cancellationToken, string operation = "netlink request")
    {
        if (!TryAcquire())
        {
            throw Closed(null);
        }

        int received;
        try
        {
            if (_receive.Length == 0)
            {
                _receive = _pool.Rent(ReceiveBufferSize);
            }

            received = await Volatile.Read(ref _socket).ReceiveAsync(_receive.AsMemory(), SocketFlags.None, cancellationToken).ConfigureAwait(false);
            if (received == _receive.Length)
            {
                _needsResync = true;
                throw new NetlinkProtocolException($"a datagram filled the whole {_receive.Length}-byte receive buffer and may be truncated");
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException or OperationCanceledException)
        {
            throw Failed(e, operation, "receive");
        }
        finally
        {
            Release();
        }

        return received;
    }

    /// <summary>Bytes queued for receiving now (FIONREAD); the caller holds a lease. 0 when the socket cannot say.</summary>
    public int Available
    {
        get
        {
            try
            {
                return Volatile.Read(ref _socket).Available;
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                return 0;
            }
        }
    }

    /// <summary>Maps a failure of the runtime socket to the netlink layer's errors, and marks the socket for resync.</summary>
    private Exception Failed(Exception e, string operation, string call)
    {
        _needsResync = true;
        if (IsClosed && e is not OperationCanceledException { CancellationToken.IsCancellationRequested: true })
        {
            return Closed(e);
        }

        return e switch
        {
            OperationCanceledException => e,
            SocketException { SocketErrorCode: SocketError.NoBufferSpaceAvailable } => new NetlinkException(
                Errnos.ENOBUFS,
                "the socket's receive queue overflowed and replies were lost; the request may or may not have taken effect",
                $"{operation}: {call}"),
            SocketException s => new NetlinkException(s.NativeErrorCode > 0 ? s.NativeErrorCode : Errnos.EIO, null, $"{operation}: {call}"),
            _ => Closed(e),
        };
    }

    private static ObjectDisposedException Closed(Exception? inner) =>
        new("The netlink socket was closed (its client was disposed) before the operation completed.", inner);

    /// <summary>
    /// Replaces the file descriptor with a fresh one (same groups and buffer size) created in the calling thread's
    /// network namespace, dropping whatever the old one had queued. The caller holds a lease and <see cref="Lock"/>.
    /// </summary>
    public void Reopen()
    {
        var fresh = OpenRaw(_groups, _kernelReceiveBufferSize, _protocol, out var portId);
        Socket old;
        lock (_gate)
        {
            if (IsClosed)
            {
                fresh.Dispose();
                throw Closed(null);
            }

            old = _socket;
            Volatile.Write(ref _socket, fresh);
            _portId = portId;
            _needsResync = false;
        }

        old.Dispose();
    }

    /// <summary>
    /// Gives the receive buffer back to the pool; the next receive rents one again. Called between requests (under
    /// <see cref="Lock"/>, inside a lease), so an idle socket holds no 64 KiB buffer: a controller keeps one socket per sandbox.
    /// </summary>
    public void ReleaseReceiveBuffer()
    {
        var receive = Interlocked.Exchange(ref _receive, []);
        if (receive.Length > 0)
        {
            _pool.Return(receive);
        }
    }

    /// <summary>
    /// Closes the socket: new leases are refused and a pending send or receive is aborted. Safe on any thread at any
    /// moment; the buffers return to the pool when the last lease is released (at once when none is held).
    /// </summary>
    public void Dispose()
    {
        var previous = Interlocked.Or(ref _state, ClosedBit);
        if ((previous & ClosedBit) != 0)
        {
            return;
        }

        Socket socket;
        lock (_gate)
        {
            socket = _socket;
        }

        socket.Dispose();
        if (previous == 0)
        {
            Drain();
        }
    }

    private void Drain()
    {
        ReleaseReceiveBuffer();
        SendBuffer.Dispose();
        _drained.TrySetResult();
    }
}
