using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;
using CnmSharp.Netlink;

namespace CnmSharp.Testing;

/// <summary>
/// A tiny upstream DNS server for tests, on UDP and TCP at an address the test chooses (inside a test namespace when one
/// is given, so no query leaves the machine). It answers every A query for a name under <c>.test</c> with one A record (other types: no data)
/// (<see cref="AddressOf"/>), <c>big.test</c> with 60 A records (over 512 bytes: cut to the question with TC over UDP
/// unless the query's EDNS size allows it, whole over TCP), never answers <c>silent.test</c>, and says NXDOMAIN for
/// the rest. It counts what it receives.
/// </summary>
public sealed class FakeDnsServer : IAsyncDisposable
{
    /// <summary>How many A records <c>big.test</c> has.</summary>
    public const int BigCount = 60;

    private readonly Socket _udp;
    private readonly Socket _tcp;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _loops = [];
    private int _udpQueries;
    private int _tcpQueries;

    private FakeDnsServer(Socket udp, Socket tcp)
    {
        _udp = udp;
        _tcp = tcp;
        _loops.Add(Task.Run(UdpLoopAsync));
        _loops.Add(Task.Run(TcpLoopAsync));
    }

    /// <summary>Where it listens.</summary>
    public IPEndPoint Endpoint => (IPEndPoint)_udp.LocalEndPoint!;

    /// <summary>UDP queries received.</summary>
    public int UdpQueries => Volatile.Read(ref _udpQueries);

    /// <summary>TCP queries received.</summary>
    public int TcpQueries => Volatile.Read(ref _tcpQueries);

    /// <summary>The names queried, in order.</summary>
    public List<string> Names { get; } = [];

    /// <summary>Starts it on <paramref name="endpoint"/> (port 0 for any), inside <paramref name="ns"/> when given.</summary>
    public static async Task<FakeDnsServer> StartAsync(IPEndPoint endpoint, NetworkNamespace? ns = null, NetworkNamespaceManager? manager = null)
    {
        (Socket, Socket) Open()
        {
            var udp = new Socket(endpoint.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
            udp.Bind(endpoint);
            var tcp = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            tcp.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            tcp.Bind(new IPEndPoint(endpoint.Address, ((IPEndPoint)udp.LocalEndPoint!).Port));
            tcp.Listen(16);
            return (udp, tcp);
        }

        var (u, t) = ns is null ? Open() : await (manager ?? new NetworkNamespaceManager()).RunInsideAsync(ns, Open).ConfigureAwait(false);
        return new FakeDnsServer(u, t);
    }

    /// <summary>The address <c>name</c> (under .test) gets: 192.0.2.(length of the name).</summary>
    public static IPAddress AddressOf(string name) => new([192, 0, 2, (byte)name.Length]);

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        _udp.Dispose();
        _tcp.Dispose();
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

        _stop.Dispose();
    }

    private async Task UdpLoopAsync()
    {
        var buffer = new byte[4096];
        EndPoint any = new IPEndPoint(IPAddress.Any, 0);
        while (!_stop.IsCancellationRequested)
        {
            var received = await _udp.ReceiveFromAsync(buffer, SocketFlags.None, any, _stop.Token).ConfigureAwait(false);
            Interlocked.Increment(ref _udpQueries);
            var reply = Answer(buffer.AsSpan(0, received.ReceivedBytes), udp: true);
            if (reply is not null)
            {
                await _udp.SendToAsync(reply, SocketFlags.None, received.RemoteEndPoint, _stop.Token).ConfigureAwait(false);
            }
        }
    }

    private async Task TcpLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            var client = await _tcp.AcceptAsync(_stop.Token).ConfigureAwait(false);
            _ = Task.Run(async () =>
            {
                using (client)
                {
                    try
                    {
                        var prefix = new byte[2];
                        while (await ReadAsync(client, prefix).ConfigureAwait(false))
                        {
                            var message = new byte[BinaryPrimitives.ReadUInt16BigEndian(prefix)];
                            if (!await ReadAsync(client, message).ConfigureAwait(false))
                            {
                                return;
                            }

                            Interlocked.Increment(ref _tcpQueries);
                            var reply = Answer(message, udp: false);
                            if (reply is not null)
                            {
                                var framed = new byte[2 + reply.Length];
                                BinaryPrimitives.WriteUInt16BigEndian(framed, (ushort)reply.Length);
                                reply.CopyTo(framed, 2);
                                await client.SendAsync(framed, SocketFlags.None).ConfigureAwait(false);
                            }
                        }
                    }
                    catch (SocketException)
                    {
                    }
                }
            });
        }
    }

    private static async Task<bool> ReadAsync(Socket socket, byte[] buffer)
    {
        var read = 0;
        while (read < buffer.Length)
        {
            var n = await socket.ReceiveAsync(buffer.AsMemory(read), SocketFlags.None).ConfigureAwait(false);
            if (n == 0)
            {
                return false;
            }

            read += n;
        }

        return true;
    }

    private byte[]? Answer(ReadOnlySpan<byte> query, bool udp)
    {
        if (query.Length < 17)
        {
            return null;
        }

        var offset = 12;
        var labels = new List<string>();
        while (offset < query.Length && query[offset] != 0)
        {
            labels.Add(Encoding.ASCII.GetString(query.Slice(offset + 1, query[offset])));
            offset += 1 + query[offset];
        }

        var questionEnd = offset + 5;
        var name = string.Join('.', labels).ToLowerInvariant();
        lock (Names)
        {
            Names.Add(name);
        }

        if (name == "silent.test")
        {
            return null;
        }

        var maxUdp = 512;
        if (BinaryPrimitives.ReadUInt16BigEndian(query[10..]) == 1 && query.Length >= questionEnd + 11 && BinaryPrimitives.ReadUInt16BigEndian(query[(questionEnd + 1)..]) == 41)
        {
            maxUdp = Math.Max(512, (int)BinaryPrimitives.ReadUInt16BigEndian(query[(questionEnd + 3)..]));
        }

        var known = name.EndsWith(".test", StringComparison.Ordinal);
        var isA = query.Length >= questionEnd && BinaryPrimitives.ReadUInt16BigEndian(query[(questionEnd - 4)..]) == 1;
        var count = !known || !isA ? 0 : name == "big.test" ? BigCount : 1;
        var reply = new List<byte>(query[..questionEnd].ToArray());
        reply[2] = (byte)(0x81 | (query[2] & 0x01));
        reply[3] = (byte)(0x80 | (known ? 0 : 3));
        reply[6] = (byte)(count >> 8);
        reply[7] = (byte)count;
        reply[8] = reply[9] = reply[10] = reply[11] = 0;
        for (var i = 0; i < count; i++)
        {
            var address = name == "big.test" ? new IPAddress([198, 51, 100, (byte)(i + 1)]) : AddressOf(name);
            reply.AddRange([0xC0, 0x0C, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4, .. address.GetAddressBytes()]);
        }

        if (udp && reply.Count > maxUdp)
        {
            reply.RemoveRange(questionEnd, reply.Count - questionEnd);
            reply[2] |= 0x02;
            reply[6] = reply[7] = 0;
        }

        return [.. reply];
    }
}
