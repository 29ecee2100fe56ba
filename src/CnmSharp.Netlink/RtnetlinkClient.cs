using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using CnmSharp.Netlink.Internal;
using Microsoft.Win32.SafeHandles;

namespace CnmSharp.Netlink;

/// <summary>
/// An rtnetlink client on one NETLINK_ROUTE socket, bound to one network namespace. One request is in flight
/// at a time per client (requests queue); open several clients for parallelism. Requests are encoded into a
/// pooled buffer and replies parsed in place, so steady-state calls allocate only what async needs.
/// </summary>
public sealed partial class RtnetlinkClient : IRtnetlinkClient, IAsyncDisposable, IDisposable
{
    private const int MaxDumpAttempts = 5;

    private readonly NetlinkSocket _socket;
    private readonly SafeFileHandle _namespace;
    private readonly ArrayPool<byte>? _pool;
    private readonly MonitorSockets _monitors = new();
    private Action? _reopen;
    private int _disposed;

    private RtnetlinkClient(NetlinkSocket socket, SafeFileHandle networkNamespace, ArrayPool<byte>? pool)
    {
        _socket = socket;
        _namespace = networkNamespace;
        _pool = pool;
    }

    /// <summary>Parses one reply message of a query into results.</summary>
    internal delegate void MessageParser<T>(ushort type, ReadOnlySpan<byte> payload, List<T> results);

    /// <summary>The netlink port id the kernel gave this client's socket (a new one after a resynchronisation).</summary>
    public uint PortId => _socket.PortId;

    /// <summary>The request socket, for tests.</summary>
    internal NetlinkSocket Socket => _socket;

    /// <summary>
    /// The cookie the kernel gives the network namespace of this client's socket (<c>SO_NETNS_COOKIE</c>): the same for
    /// every socket in that namespace, different for every namespace created during one boot (never reused, unlike a
    /// namespace's inode number). Null where the kernel does not tell it (before Linux 5.14).
    /// </summary>
    /// <returns>The cookie, or null.</returns>
    /// <exception cref="ObjectDisposedException">The client is disposed.</exception>
    public ulong? GetNamespaceCookie() => _socket.NamespaceCookie();

    private bool IsDisposed => Volatile.Read(ref _disposed) != 0;

    /// <summary>
    /// Opens a client. With no namespace, the socket belongs to the calling thread's network namespace. With one,
    /// the socket is created inside it on a dedicated thread (setns there and back). Either way the client keeps an fd
    /// of that namespace, and every operation of the client, including
    /// <see cref="MonitorAsync(NetlinkGroups, CancellationToken)"/> and the replacement of a socket after a lost reply,
    /// acts on it. The handle passed in may be closed afterwards.
    /// </summary>
    /// <param name="networkNamespace">An open fd of a network namespace (e.g. /run/netns/NAME), or null.</param>
    /// <returns>The client.</returns>
    /// <exception cref="NetlinkException">The socket could not be created, or the handle is not a network namespace (EINVAL/EBADF).</exception>
    public static RtnetlinkClient Open(SafeHandle? networkNamespace = null) => Open(networkNamespace, 0, null);

    /// <summary>Opens a client with a chosen socket receive buffer and buffer pool (tests: ENOBUFS, pool accounting).</summary>
    internal static RtnetlinkClient Open(SafeHandle? networkNamespace, int receiveBufferSize, ArrayPool<byte>? pool)
    {
        if (networkNamespace is null)
        {
            return OpenHere(receiveBufferSize, pool);
        }

        return InNamespace(networkNamespace, () => OpenHere(receiveBufferSize, pool));
    }

    private static RtnetlinkClient OpenHere(int receiveBufferSize, ArrayPool<byte>? pool)
    {
        var socket = NetlinkSocket.Open(receiveBufferSize: receiveBufferSize, pool: pool);
        try
        {
            return new RtnetlinkClient(socket, NamespaceExecutor.OpenCurrentThreadNamespace(), pool);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>Runs socket creation inside a namespace; a namespace that cannot be entered is a
    /// <see cref="NetlinkException"/> with its errno, like any other failure to open a socket.</summary>
    private static T InNamespace<T>(SafeHandle networkNamespace, Func<T> open)
    {
        try
        {
            return NamespaceExecutor.RunIn(networkNamespace, open);
        }
        catch (NamespaceException ex)
        {
            throw new NetlinkException(ex.ErrorNumber, null, ex.Message);
        }
    }

    /// <summary>Runs socket creation in this client's namespace; <see cref="ObjectDisposedException"/> once disposed.</summary>
    private T InOwnNamespace<T>(Func<T> open)
    {
        ObjectDisposedException.ThrowIf(IsDisposed, this);
        try
        {
            return InNamespace(_namespace, open);
        }
        catch (ObjectDisposedException ex) when (IsDisposed)
        {
            // The namespace handle was closed by a concurrent Dispose.
            throw new ObjectDisposedException(GetType().FullName, ex);
        }
    }

    /// <summary>
    /// Closes the socket (and those of running monitors). Safe at any moment and on any thread: requests in flight, and
    /// those queued behind them, end with <see cref="ObjectDisposedException"/> unless their reply was already in;
    /// monitors end with <see cref="ObjectDisposedException"/>. Pooled buffers return to the pool only once the
    /// operations using them have ended.
    /// </summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _socket.Dispose();
        _monitors.DisposeAll();

        _namespace.Dispose();
    }

    /// <summary>Closes the client as <see cref="Dispose"/> does, then waits until every request it was running has ended.</summary>
    /// <returns>A task that completes when no request of the client runs any more.</returns>
    public async ValueTask DisposeAsync()
    {
        Dispose();
        await _socket.Drained.ConfigureAwait(false);
    }

    /// <summary>
    /// Takes a lease on the request socket and its lock, refusing once disposed, and replaces the socket first when
    /// an earlier request left it out of step (ENOBUFS, cancellation, a failed send or receive).
    /// </summary>
    private ValueTask EnterAsync(CancellationToken cancellationToken) => _socket.EnterRequestAsync(this, _reopen ??= () => InOwnNamespace(() =>
    {
        _socket.Reopen();
        return true;
    }), cancellationToken);

    /// <summary>Ends what <see cref="EnterAsync"/> began.</summary>
    private void Exit() => _socket.ExitRequest();

    /// <inheritdoc />
    public async ValueTask<RtnetlinkBatchResult> ExecuteBatchAsync(RtnetlinkBatch batch, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(batch);
        ObjectDisposedException.ThrowIf(IsDisposed, this);
        batch.ThrowIfDisposed();
        var count = batch.Count;
        var errors = new NetlinkException?[count];
        if (count == 0)
        {
            return new RtnetlinkBatchResult(errors);
        }

        const string operation = "netlink batch";
        await EnterAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var first = _socket.NextSequence(count);
            var length = batch.Bytes.Length;
            batch.CopyTo(_socket.SendBuffer.Grow(length, 0), first, _socket.PortId);
            await _socket.SendAsync(length, cancellationToken, operation).ConfigureAwait(false);
            var answered = new bool[count];
            var pending = count;
            while (pending > 0)
            {
                var received = await _socket.ReceiveAsync(cancellationToken, operation).ConfigureAwait(false);
                pending -= CollectBatchAcks(_socket.Received(received), first, _socket.PortId, errors, answered);
            }
        }
        finally
        {
            Exit();
        }

        return new RtnetlinkBatchResult(errors);
    }

    internal static int CollectBatchAcks(ReadOnlySpan<byte> datagram, uint firstSequence, uint portId, NetlinkException?[] errors, bool[] answered)
    {
        var count = 0;
        foreach (var message in new NetlinkMessageEnumerator(datagram))
        {
            var slot = unchecked(message.Sequence - firstSequence);
            if (message.Type != Nl.NLMSG_ERROR || message.PortId != portId || slot >= (uint)errors.Length || answered[slot])
            {
                continue;
            }

            var errno = RtnetlinkParser.ParseError(message.Payload, message.Flags, out var extended);
            answered[slot] = true;
            count++;
            if (errno != 0)
            {
                errors[slot] = new NetlinkException(errno, extended, $"batch request {slot}");
            }
        }

        return count;
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask ExecuteAsync<TRequest>(TRequest request, string operation, CancellationToken cancellationToken)
        where TRequest : struct, IRequest
    {
        ObjectDisposedException.ThrowIf(IsDisposed, this);
        request.GetHandles(out var first, out var second);
        var addedFirst = false;
        var addedSecond = false;
        await EnterAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            first?.DangerousAddRef(ref addedFirst);
            second?.DangerousAddRef(ref addedSecond);
            var sequence = _socket.NextSequence();
            var length = Encode(request, sequence);
            await _socket.SendAsync(length, cancellationToken, operation).ConfigureAwait(false);
            while (true)
            {
                var received = await _socket.ReceiveAsync(cancellationToken, operation).ConfigureAwait(false);
                if (CheckAck(_socket.Received(received), sequence, _socket.PortId, operation))
                {
                    return;
                }
            }
        }
        catch (NetlinkProtocolException)
        {
            _socket.MarkNeedsResync();
            throw;
        }
        finally
        {
            if (addedFirst)
            {
                first!.DangerousRelease();
            }

            if (addedSecond)
            {
                second!.DangerousRelease();
            }

            Exit();
        }
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask QueryAsync<TRequest, T>(TRequest request, MessageParser<T> parser, List<T> results, string operation, CancellationToken cancellationToken)
        where TRequest : struct, IRequest
    {
        ObjectDisposedException.ThrowIf(IsDisposed, this);
        await EnterAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            for (var attempt = 1; ; attempt++)
            {
                results.Clear();
                var sequence = _socket.NextSequence();
                var length = Encode(request, sequence);
                await _socket.SendAsync(length, cancellationToken, operation).ConfigureAwait(false);
                var interrupted = false;
                var done = false;
                while (!done)
                {
                    var received = await _socket.ReceiveAsync(cancellationToken, operation).ConfigureAwait(false);
                    done = ProcessQueryReply(_socket.Received(received), sequence, _socket.PortId, parser, results, ref interrupted, operation);
                }

                if (!interrupted)
                {
                    return;
                }

                if (attempt == MaxDumpAttempts)
                {
                    throw new NetlinkException(Errnos.EAGAIN, $"the dump was interrupted by concurrent changes {MaxDumpAttempts} times", operation);
                }
            }
        }
        catch (NetlinkProtocolException)
        {
            // The rest of the reply may still be queued or in production.
            _socket.MarkNeedsResync();
            throw;
        }
        finally
        {
            Exit();
        }
    }

    private int Encode<TRequest>(TRequest request, uint sequence)
        where TRequest : struct, IRequest
    {
        var writer = new NetlinkWriter(_socket.SendBuffer);
        request.Encode(ref writer, sequence);
        return writer.Length;
    }

    /// <summary>Looks for the ACK of <paramref name="sequence"/>; true when found, throws when it is an error.</summary>
    internal static bool CheckAck(ReadOnlySpan<byte> datagram, uint sequence, uint portId, string operation)
    {
        foreach (var message in new NetlinkMessageEnumerator(datagram))
        {
            if (message.Sequence != sequence || message.PortId != portId || message.Type != Nl.NLMSG_ERROR)
            {
                continue;
            }

            var errno = RtnetlinkParser.ParseError(message.Payload, message.Flags, out var extended);
            if (errno != 0)
            {
                throw new NetlinkException(errno, extended, operation);
            }

            return true;
        }

        return false;
    }

    /// <summary>Feeds one datagram of a get or dump reply to the parser; true when the reply is complete.</summary>
    internal static bool ProcessQueryReply<T>(ReadOnlySpan<byte> datagram, uint sequence, uint portId, MessageParser<T> parser, List<T> results, ref bool interrupted, string operation)
    {
        foreach (var message in new NetlinkMessageEnumerator(datagram))
        {
            if (message.Sequence != sequence || message.PortId != portId)
            {
                continue;
            }

            if ((message.Flags & Nl.NLM_F_DUMP_INTR) != 0)
            {
                interrupted = true;
            }

            switch (message.Type)
            {
                case Nl.NLMSG_NOOP:
                    continue;
                case Nl.NLMSG_DONE:
                    {
                        // With extended ACKs the DONE message carries the dump's status.
                        if (message.Payload.Length >= 4)
                        {
                            var errno = RtnetlinkParser.ParseError(message.Payload, message.Flags, out var extended, isDone: true);
                            if (errno != 0)
                            {
                                throw new NetlinkException(errno, extended, operation);
                            }
                        }

                        return true;
                    }

                case Nl.NLMSG_ERROR:
                    {
                        var errno = RtnetlinkParser.ParseError(message.Payload, message.Flags, out var extended);
                        if (errno != 0)
                        {
                            throw new NetlinkException(errno, extended, operation);
                        }

                        return true;
                    }

                case Nl.NLMSG_OVERRUN:
                    throw new NetlinkException(Errnos.ENOBUFS, "the kernel reported NLMSG_OVERRUN", operation);
                default:
                    parser(message.Type, message.Payload, results);
                    if ((message.Flags & Nl.NLM_F_MULTI) == 0)
                    {
                        return true;
                    }

                    break;
            }
        }

        return false;
    }

    internal static void ValidateSpec(LinkSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        LinkNames.Validate(spec.Name, nameof(spec) + "." + nameof(spec.Name));
        if (spec.Mtu is <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(spec), spec.Mtu, "MTU must be positive.");
        }

        switch (spec)
        {
            case VethLinkSpec veth:
                LinkNames.Validate(veth.PeerName, nameof(spec) + "." + nameof(veth.PeerName));
                break;
            case VxlanLinkSpec { Vni: > 0xFFFFFF } vx:
                throw new ArgumentOutOfRangeException(nameof(spec), vx.Vni, "A VNI has 24 bits.");
            case VlanLinkSpec { VlanId: 0 or > 4094 } vlan:
                throw new ArgumentOutOfRangeException(nameof(spec), vlan.VlanId, "A VLAN id is 1..4094.");
            case MacvlanLinkSpec { ParentIndex: <= 0 }:
            case IpvlanLinkSpec { ParentIndex: <= 0 }:
            case VlanLinkSpec { ParentIndex: <= 0 }:
                throw new ArgumentException("The parent link index must be positive.", nameof(spec));
        }
    }

    internal static void ValidateSpec(AddressSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(spec.Address, nameof(spec) + "." + nameof(spec.Address));
        var max = spec.Address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? 32 : 128;
        if (spec.PrefixLength < 0 || spec.PrefixLength > max)
        {
            throw new ArgumentOutOfRangeException(nameof(spec), spec.PrefixLength, $"The prefix length must be 0..{max}.");
        }

        if (spec.Address.AddressFamily is not (System.Net.Sockets.AddressFamily.InterNetwork or System.Net.Sockets.AddressFamily.InterNetworkV6))
        {
            throw new ArgumentException("Only IPv4 and IPv6 addresses are supported.", nameof(spec));
        }
    }
}
