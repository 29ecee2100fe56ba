using System.Buffers.Binary;
using System.Net;
using NUnit.Framework;

namespace CnmSharp.Testing;

/// <summary>Hand-built DNS messages for the codec tests.</summary>
public static class DnsTestMessages
{
    public static byte[] Query(string name, ushort type, ushort id = 0x1234, int? ednsSize = null, ushort flags = 0x0100)
    {
        var bytes = new List<byte>();
        bytes.AddRange(U16(id));
        bytes.AddRange(U16(flags));
        bytes.AddRange(U16(1));
        bytes.AddRange(U16(0));
        bytes.AddRange(U16(0));
        bytes.AddRange(U16((ushort)(ednsSize is null ? 0 : 1)));
        bytes.AddRange(Name(name));
        bytes.AddRange(U16(type));
        bytes.AddRange(U16(1));
        if (ednsSize is { } size)
        {
            bytes.Add(0);
            bytes.AddRange(U16(41));
            bytes.AddRange(U16((ushort)size));
            bytes.AddRange(new byte[4]);
            bytes.AddRange(U16(0));
        }

        return [.. bytes];
    }

    public static byte[] Name(string name)
    {
        var bytes = new List<byte>();
        foreach (var label in name.TrimEnd('.').Split('.', StringSplitOptions.RemoveEmptyEntries))
        {
            bytes.Add((byte)label.Length);
            bytes.AddRange(System.Text.Encoding.ASCII.GetBytes(label));
        }

        bytes.Add(0);
        return [.. bytes];
    }

    public static byte[] U16(ushort value)
    {
        var b = new byte[2];
        BinaryPrimitives.WriteUInt16BigEndian(b, value);
        return b;
    }

    /// <summary>A reply to <paramref name="query"/> with <paramref name="count"/> A records (each 16 bytes).</summary>
    public static byte[] ReplyWithAnswers(byte[] query, int count)
    {
        var reply = new List<byte>(query);
        reply[2] = 0x81;
        reply[3] = 0x80;
        reply[10] = 0;
        reply[11] = 0;
        var questionEnd = 12 + Name(QuestionName(query)).Length + 4;
        reply.RemoveRange(questionEnd, reply.Count - questionEnd);
        reply[6] = (byte)(count >> 8);
        reply[7] = (byte)count;
        for (var i = 0; i < count; i++)
        {
            reply.AddRange([0xC0, 0x0C, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 0, (byte)(i >> 8), (byte)i]);
        }

        return [.. reply];
    }

    public static string QuestionName(byte[] message)
    {
        var parts = new List<string>();
        var offset = 12;
        while (message[offset] != 0)
        {
            parts.Add(System.Text.Encoding.ASCII.GetString(message, offset + 1, message[offset]));
            offset += 1 + message[offset];
        }

        return string.Join('.', parts);
    }

    public static ushort Rcode(byte[] reply) => (ushort)(reply[3] & 0xF);

    public static ushort Count(byte[] reply, int index) => BinaryPrimitives.ReadUInt16BigEndian(reply.AsSpan(4 + (index * 2)));

    public static bool Truncated(byte[] reply) => (reply[2] & 0x02) != 0;

    /// <summary>The addresses of the A/AAAA answers of a reply (answers whose name is a pointer).</summary>
    public static List<IPAddress> Addresses(byte[] reply)
    {
        var result = new List<IPAddress>();
        var offset = 12;
        while (reply[offset] != 0)
        {
            offset += 1 + reply[offset];
        }

        offset += 5;
        for (var i = 0; i < Count(reply, 1); i++)
        {
            Assert.That(reply[offset], Is.EqualTo(0xC0));
            var type = BinaryPrimitives.ReadUInt16BigEndian(reply.AsSpan(offset + 2));
            var length = BinaryPrimitives.ReadUInt16BigEndian(reply.AsSpan(offset + 10));
            if (type is 1 or 28)
            {
                result.Add(new IPAddress(reply.AsSpan(offset + 12, length)));
            }

            offset += 12 + length;
        }

        return result;
    }
}

/// <summary>A DNS client for tests: one query over UDP or TCP, from a socket made where the caller says (inside a
/// sandbox's namespace for the real resolver).</summary>
public static class DnsTestClient
{
    /// <summary>Sends one query over UDP and waits for the reply (null after the timeout).</summary>
    public static async Task<byte[]?> UdpAsync(System.Net.Sockets.Socket socket, IPEndPoint server, byte[] query, TimeSpan timeout)
    {
        await socket.SendToAsync(query, System.Net.Sockets.SocketFlags.None, server).ConfigureAwait(false);
        var buffer = new byte[65535];
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            var received = await socket.ReceiveFromAsync(buffer, System.Net.Sockets.SocketFlags.None, new IPEndPoint(IPAddress.Any, 0), cts.Token).ConfigureAwait(false);
            return buffer[..received.ReceivedBytes];
        }
        catch (OperationCanceledException)
        {
            return null;
        }
    }

    /// <summary>Connects, sends one length-prefixed query over TCP and reads the reply.</summary>
    public static async Task<byte[]> TcpAsync(System.Net.Sockets.Socket socket, IPEndPoint server, byte[] query, TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        await socket.ConnectAsync(server, cts.Token).ConfigureAwait(false);
        var framed = new byte[2 + query.Length];
        BinaryPrimitives.WriteUInt16BigEndian(framed, (ushort)query.Length);
        query.CopyTo(framed, 2);
        await socket.SendAsync(framed, System.Net.Sockets.SocketFlags.None, cts.Token).ConfigureAwait(false);
        var prefix = await ReadAsync(socket, 2, cts.Token).ConfigureAwait(false);
        return await ReadAsync(socket, BinaryPrimitives.ReadUInt16BigEndian(prefix), cts.Token).ConfigureAwait(false);
    }

    private static async Task<byte[]> ReadAsync(System.Net.Sockets.Socket socket, int length, CancellationToken cancellationToken)
    {
        var buffer = new byte[length];
        var read = 0;
        while (read < length)
        {
            var n = await socket.ReceiveAsync(buffer.AsMemory(read), System.Net.Sockets.SocketFlags.None, cancellationToken).ConfigureAwait(false);
            if (n == 0)
            {
                throw new IOException("closed");
            }

            read += n;
        }

        return buffer;
    }
}
