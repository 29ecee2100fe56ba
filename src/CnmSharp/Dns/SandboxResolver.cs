using System.Buffers;
using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;

namespace CnmSharp.Dns;

/// <summary>
/// The resolver of one sandbox: a UDP and a TCP listener on <c>127.0.0.11:53</c> and a UDP socket for forwarding, all
/// created inside the sandbox's namespace (so forwarded queries leave from the sandbox, as libnetwork's do, and a
/// sandbox without a route out cannot leak them), then served from the thread pool.
/// </summary>
internal sealed class SandboxResolver : IAsyncDisposable
{
    private const int MaxTcpConnections = 256;
    private static readonly TimeSpan s_tcpIdle = TimeSpan.FromSeconds(10);
    private readonly EmbeddedDnsServer _server;
    private readonly Socket _udp;
    private readonly Socket _tcp;
    private readonly Socket _forward;
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentDictionary<ushort, PendingQuery> _pending = new();
    private readonly SemaphoreSlim _inFlight;
    private readonly List<Task> _loops = [];
    private volatile DnsSandbox _sandbox;
    private int _tcpConnections;

    private SandboxResolver(DnsSandbox sandbox, EmbeddedDnsServer server, Socket udp, Socket tcp, Socket forward)
    {
        _sandbox = sandbox;
        _server = server;
        _udp = udp;
        _tcp = tcp;
        _forward = forward;
        _inFlight = new SemaphoreSlim(Math.Max(1, server.Options.MaxConcurrentQueries));
    }

    /// <summary>The sandbox served, with its current networks and upstreams.</summary>
    public DnsSandbox Sandbox
    {
        get => _sandbox;
        set => _sandbox = value;
    }

    /// <summary>Where the listeners are bound.</summary>
    public IPEndPoint LocalEndpoint => (IPEndPoint)_udp.LocalEndPoint!;

    /// <summary>Opens the sockets inside the sandbox's namespace and starts serving.</summary>
    public static async Task<SandboxResolver> StartAsync(DnsSandbox sandbox, EmbeddedDnsServer server, CancellationToken cancellationToken)
    {
        var listen = server.Listen;
        var (udp, tcp, forward) = await server.Namespaces.RunInsideAsync(sandbox.Key, () =>
        {
            Socket? u = null, t = null, f = null;
            try
            {
                u = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
                u.Bind(listen);
                t = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                t.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
                t.Bind(new IPEndPoint(listen.Address, ((IPEndPoint)u.LocalEndPoint!).Port));
                t.Listen(128);
                f = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
                f.Bind(new IPEndPoint(IPAddress.Any, 0));
                return (u, t, f);
            }
            catch
            {
                u?.Dispose();
                t?.Dispose();
                f?.Dispose();
                throw;
            }
        }, cancellationToken).ConfigureAwait(false);
        var resolver = new SandboxResolver(sandbox, server, udp, tcp, forward);
        resolver._loops.Add(Task.Run(resolver.UdpLoopAsync, CancellationToken.None));
        resolver._loops.Add(Task.Run(resolver.TcpAcceptLoopAsync, CancellationToken.None));
        resolver._loops.Add(Task.Run(resolver.ForwardReceiveLoopAsync, CancellationToken.None));
        return resolver;
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (_stop.IsCancellationRequested)
        {
            return;
        }

        await _stop.CancelAsync().ConfigureAwait(false);
        _udp.Dispose();
        _tcp.Dispose();
        _forward.Dispose();
        foreach (var loop in _loops)
        {
            try
            {
                await loop.ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException or SocketException)
            {
            }
        }

        foreach (var pending in _pending.Values)
        {
            pending.Completion.TrySetCanceled();
        }

        _stop.Dispose();
    }

    private async Task UdpLoopAsync()
    {
        var buffer = new byte[DnsWire.MaxUdpSize];
        var reply = new byte[DnsWire.MaxUdpSize];
        EndPoint any = new IPEndPoint(IPAddress.Any, 0);
        var token = _stop.Token;
        while (!token.IsCancellationRequested)
        {
            try
            {
                var received = await _udp.ReceiveFromAsync(buffer, SocketFlags.None, any, token).ConfigureAwait(false);
                var message = buffer.AsSpan(0, received.ReceivedBytes);
                var sandbox = _sandbox;
                switch (DnsAnswerer.Answer(message, reply, out var length, out var query, _server.Table, sandbox.NetworkIds))
                {
                    case DnsDecision.Reply:
                        length = DnsWire.Truncate(reply.AsSpan(0, length), Math.Max(query.MaxUdpSize, DnsWire.ClassicUdpSize));
                        await _udp.SendToAsync(reply.AsMemory(0, length), SocketFlags.None, received.RemoteEndPoint, token).ConfigureAwait(false);
                        break;
                    case DnsDecision.Forward:
                        _ = ForwardUdpAsync(message.ToArray(), query, received.RemoteEndPoint);
                        break;
                }
            }
            catch (OperationCanceledException) when (token.IsCancellationRequested)
            {
                break;
            }
            catch (ObjectDisposedException) when (token.IsCancellationRequested)
            {
                break;
            }
            catch (SocketException)
            {
                // A client gone (ICMP port unreachable) or a reply that could not be sent: next query.
            }
        }
    }

    private async Task ForwardUdpAsync(byte[] message, DnsQuery query, EndPoint client)
    {
        try
        {
            var reply = await ResolveUpstreamAsync(message, query).ConfigureAwait(false);
            var length = DnsWire.Truncate(reply, query.MaxUdpSize);
            await _udp.SendToAsync(reply.AsMemory(0, length), SocketFlags.None, client, _stop.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException or SocketException)
        {
        }
    }

    private async Task TcpAcceptLoopAsync()
    {
        var token = _stop.Token;
        while (!token.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _tcp.AcceptAsync(token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (token.IsCancellationRequested)
            {
                break;
            }
            catch (ObjectDisposedException) when (token.IsCancellationRequested)
            {
                break;
            }
            catch (SocketException)
            {
                continue;
            }

            if (Interlocked.Increment(ref _tcpConnections) > MaxTcpConnections)
            {
                Interlocked.Decrement(ref _tcpConnections);
                client.Dispose();
                continue;
            }

            _ = ServeTcpAsync(client);
        }
    }

    /// <summary>One TCP client: length-prefixed queries (RFC 1035 4.2.2) read through a pipe, answered in order; the
    /// connection closes after 10 s idle, on a zero length, or when the client closes.</summary>
    private async Task ServeTcpAsync(Socket client)
    {
        var stream = new NetworkStream(client, ownsSocket: true);
        var reader = PipeReader.Create(stream);
        var writer = PipeWriter.Create(stream);
        var reply = new byte[DnsWire.MaxUdpSize];
        try
        {
            while (true)
            {
                ReadResult result;
                using (var idle = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token))
                {
                    idle.CancelAfter(s_tcpIdle);
                    result = await reader.ReadAsync(idle.Token).ConfigureAwait(false);
                }

                var buffer = result.Buffer;
                var close = false;
                while (TryReadFrame(ref buffer, out var frame, out var invalid))
                {
                    var message = frame.ToArray();
                    var answer = await AnswerTcpAsync(message, reply).ConfigureAwait(false);
                    if (answer.Length > 0)
                    {
                        var span = writer.GetSpan(2 + answer.Length);
                        BinaryPrimitives.WriteUInt16BigEndian(span, (ushort)answer.Length);
                        answer.Span.CopyTo(span[2..]);
                        writer.Advance(2 + answer.Length);
                    }
                }

                if (buffer.Length >= 2 && buffer.FirstSpan.Length >= 2 && BinaryPrimitives.ReadUInt16BigEndian(buffer.FirstSpan) == 0)
                {
                    close = true;
                }

                await writer.FlushAsync(_stop.Token).ConfigureAwait(false);
                reader.AdvanceTo(buffer.Start, buffer.End);
                if (result.IsCompleted || close)
                {
                    break;
                }
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or IOException or SocketException or ObjectDisposedException)
        {
        }
        finally
        {
            await reader.CompleteAsync().ConfigureAwait(false);
            await writer.CompleteAsync().ConfigureAwait(false);
            await stream.DisposeAsync().ConfigureAwait(false);
            Interlocked.Decrement(ref _tcpConnections);
        }
    }

    private static bool TryReadFrame(ref ReadOnlySequence<byte> buffer, out ReadOnlySequence<byte> frame, out bool invalid)
    {
        frame = default;
        invalid = false;
        if (buffer.Length < 2)
        {
            return false;
        }

        Span<byte> prefix = stackalloc byte[2];
        buffer.Slice(0, 2).CopyTo(prefix);
        var length = BinaryPrimitives.ReadUInt16BigEndian(prefix);
        if (length == 0)
        {
            invalid = true;
            return false;
        }

        if (buffer.Length < 2 + length)
        {
            return false;
        }

        frame = buffer.Slice(2, length);
        buffer = buffer.Slice(2 + length);
        return true;
    }

    private async ValueTask<ReadOnlyMemory<byte>> AnswerTcpAsync(byte[] message, byte[] reply)
    {
        var sandbox = _sandbox;
        switch (DnsAnswerer.Answer(message, reply, out var length, out var query, _server.Table, sandbox.NetworkIds))
        {
            case DnsDecision.Reply:
                return reply.AsMemory(0, length);
            case DnsDecision.Forward:
                return await ResolveUpstreamAsync(message, query).ConfigureAwait(false);
            default:
                return ReadOnlyMemory<byte>.Empty;
        }
    }

    /// <summary>Asks the upstream servers in order (at most three), each for at most the upstream timeout; a truncated
    /// UDP reply is asked again over TCP. The reply carries the client's id. SERVFAIL when none answers; REFUSED when
    /// the sandbox already has the most queries in flight.</summary>
    internal async Task<byte[]> ResolveUpstreamAsync(byte[] message, DnsQuery query)
    {
        if (!_inFlight.Wait(0))
        {
            return DnsAnswerer.ErrorReply(message, query, DnsRcode.Refused);
        }

        try
        {
            var sandbox = _sandbox;
            foreach (var upstream in sandbox.Upstreams.Where(u => u.AddressFamily == AddressFamily.InterNetwork).Take(3))
            {
                try
                {
                    var reply = await QueryUdpAsync(message, query, upstream).ConfigureAwait(false);
                    if (reply is null)
                    {
                        continue;
                    }

                    if (DnsWire.IsTruncated(reply) && await QueryTcpAsync(sandbox.Key, message, query, upstream).ConfigureAwait(false) is { } whole)
                    {
                        reply = whole;
                    }

                    message.AsSpan(0, 2).CopyTo(reply);
                    return reply;
                }
                catch (Exception ex) when (ex is SocketException or TimeoutException or IOException)
                {
                    DnsLog.UpstreamFailed(_server.Logger, ex, sandbox.Id, upstream.ToString());
                }
            }

            return DnsAnswerer.ErrorReply(message, query, DnsRcode.ServFail);
        }
        finally
        {
            _inFlight.Release();
        }
    }

    private async Task<byte[]?> QueryUdpAsync(byte[] message, DnsQuery query, IPEndPoint upstream)
    {
        var copy = (byte[])message.Clone();
        var pending = new PendingQuery(upstream, copy, query.QuestionEnd);
        ushort id;
        do
        {
            id = (ushort)Random.Shared.Next(0x10000);
        }
        while (!_pending.TryAdd(id, pending));

        try
        {
            BinaryPrimitives.WriteUInt16BigEndian(copy, id);
            await _forward.SendToAsync(copy, SocketFlags.None, upstream, _stop.Token).ConfigureAwait(false);
            try
            {
                return await pending.Completion.Task.WaitAsync(_server.Options.UpstreamTimeout, _stop.Token).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                DnsLog.UpstreamFailed(_server.Logger, null, _sandbox.Id, upstream.ToString());
                return null;
            }
        }
        finally
        {
            _pending.TryRemove(id, out _);
        }
    }

    private async Task<byte[]?> QueryTcpAsync(string key, byte[] message, DnsQuery query, IPEndPoint upstream)
    {
        using var socket = await _server.Namespaces.RunInsideAsync(key, () => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp), _stop.Token).ConfigureAwait(false);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
        timeout.CancelAfter(_server.Options.UpstreamTimeout);
        try
        {
            await socket.ConnectAsync(upstream, timeout.Token).ConfigureAwait(false);
            var framed = new byte[2 + message.Length];
            BinaryPrimitives.WriteUInt16BigEndian(framed, (ushort)message.Length);
            message.CopyTo(framed, 2);
            await socket.SendAsync(framed, SocketFlags.None, timeout.Token).ConfigureAwait(false);
            var prefix = new byte[2];
            await ReceiveExactlyAsync(socket, prefix, timeout.Token).ConfigureAwait(false);
            var reply = new byte[BinaryPrimitives.ReadUInt16BigEndian(prefix)];
            await ReceiveExactlyAsync(socket, reply, timeout.Token).ConfigureAwait(false);
            return DnsWire.TryReadReplyId(reply, out var id) && id == BinaryPrimitives.ReadUInt16BigEndian(message) && DnsWire.SameQuestion(reply, message, query.QuestionEnd)
                ? reply
                : null;
        }
        catch (OperationCanceledException) when (!_stop.IsCancellationRequested)
        {
            return null;
        }
    }

    private static async Task ReceiveExactlyAsync(Socket socket, byte[] buffer, CancellationToken cancellationToken)
    {
        var read = 0;
        while (read < buffer.Length)
        {
            var n = await socket.ReceiveAsync(buffer.AsMemory(read), SocketFlags.None, cancellationToken).ConfigureAwait(false);
            if (n == 0)
            {
                throw new IOException("The upstream closed the connection.");
            }

            read += n;
        }
    }

    private async Task ForwardReceiveLoopAsync()
    {
        var buffer = new byte[DnsWire.MaxMessageSize];
        EndPoint any = new IPEndPoint(IPAddress.Any, 0);
        var token = _stop.Token;
        while (!token.IsCancellationRequested)
        {
            try
            {
                var received = await _forward.ReceiveFromAsync(buffer, SocketFlags.None, any, token).ConfigureAwait(false);
                var reply = buffer.AsSpan(0, received.ReceivedBytes);
                if (DnsWire.TryReadReplyId(reply, out var id)
                    && _pending.TryGetValue(id, out var pending)
                    && pending.Upstream.Equals(received.RemoteEndPoint)
                    && DnsWire.SameQuestion(reply, pending.Query, pending.QuestionEnd))
                {
                    pending.Completion.TrySetResult(reply.ToArray());
                }
            }
            catch (OperationCanceledException) when (token.IsCancellationRequested)
            {
                break;
            }
            catch (ObjectDisposedException) when (token.IsCancellationRequested)
            {
                break;
            }
            catch (SocketException)
            {
                // ICMP errors from an unreachable upstream surface here; the query times out.
            }
        }
    }

    private sealed class PendingQuery(IPEndPoint upstream, byte[] query, int questionEnd)
    {
        public IPEndPoint Upstream { get; } = upstream;

        public byte[] Query { get; } = query;

        public int QuestionEnd { get; } = questionEnd;

        public TaskCompletionSource<byte[]> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
