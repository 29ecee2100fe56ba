using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace CnmSharp.Dns;

/// <summary>DNS record types the resolver looks at (RFC 1035, 3596, 6891).</summary>
internal enum DnsType : ushort
{
    A = 1,
    Ptr = 12,
    Aaaa = 28,
    Opt = 41,
}

/// <summary>DNS response codes (RFC 1035).</summary>
internal enum DnsRcode : byte
{
    NoError = 0,
    FormErr = 1,
    ServFail = 2,
    NxDomain = 3,
    NotImp = 4,
    Refused = 5,
}

/// <summary>What <see cref="DnsWire.ParseQuery"/> found.</summary>
internal enum DnsParseStatus
{
    /// <summary>A well-formed standard query with one question.</summary>
    Ok,

    /// <summary>Not worth an answer: shorter than a header, or a response (QR set).</summary>
    Drop,

    /// <summary>The header is readable but the rest is malformed: answer FORMERR.</summary>
    FormErr,

    /// <summary>An opcode other than QUERY: answer NOTIMP.</summary>
    NotImp,
}

/// <summary>A parsed query: its header fields, its one question, and the EDNS payload size it advertised.</summary>
internal readonly struct DnsQuery
{
    /// <summary>The message id.</summary>
    public ushort Id { get; init; }

    /// <summary>The header flags word as received.</summary>
    public ushort Flags { get; init; }

    /// <summary>The question's name in text form: lower-case, without the final dot (empty for the root); bytes other
    /// than letters, digits, '-' and '_' are escaped as <c>\DDD</c>, so such a name never matches a local record.</summary>
    public string Name { get; init; }

    /// <summary>The question's type.</summary>
    public ushort Type { get; init; }

    /// <summary>The question's class.</summary>
    public ushort Class { get; init; }

    /// <summary>The offset just past the question (the header and question are <c>message[..QuestionEnd]</c>).</summary>
    public int QuestionEnd { get; init; }

    /// <summary>The largest UDP reply the client accepts: 512, or its EDNS OPT payload size when larger.</summary>
    public int MaxUdpSize { get; init; }

    /// <summary>Whether the query carried an EDNS OPT record.</summary>
    public bool HasEdns { get; init; }

    /// <summary>The RD (recursion desired) bit.</summary>
    public bool RecursionDesired => (Flags & DnsWire.FlagRd) != 0;
}

/// <summary>
/// The DNS wire format (RFC 1035), as far as a stub-facing resolver needs it: parse a query (header, one question, EDNS
/// OPT in the additional section), write a reply to it, turn an upstream reply into a truncated one. Every length is
/// checked; a malformed message gives a status, never an exception.
/// </summary>
internal static class DnsWire
{
    /// <summary>The header's size.</summary>
    public const int HeaderSize = 12;

    /// <summary>The classic UDP limit (RFC 1035 4.2.1).</summary>
    public const int ClassicUdpSize = 512;

    /// <summary>The largest UDP payload the resolver offers or accepts.</summary>
    public const int MaxUdpSize = 4096;

    /// <summary>The largest message (TCP length prefix).</summary>
    public const int MaxMessageSize = ushort.MaxValue;

    /// <summary>Class IN.</summary>
    public const ushort ClassIn = 1;

    /// <summary>QR: the message is a response.</summary>
    public const ushort FlagQr = 0x8000;

    /// <summary>AA: authoritative answer.</summary>
    public const ushort FlagAa = 0x0400;

    /// <summary>TC: truncated.</summary>
    public const ushort FlagTc = 0x0200;

    /// <summary>RD: recursion desired.</summary>
    public const ushort FlagRd = 0x0100;

    /// <summary>RA: recursion available.</summary>
    public const ushort FlagRa = 0x0080;

    private const int MaxNameLength = 255;
    private const int MaxLabelLength = 63;

    /// <summary>Parses a query. Only the header, the question and the records' framing are read; the records in the
    /// answer, authority and additional sections are skipped, except an OPT record's payload size.</summary>
    /// <param name="message">The message.</param>
    /// <param name="query">The query, when the status is <see cref="DnsParseStatus.Ok"/>; otherwise the id and flags at
    /// most.</param>
    /// <returns>What was found.</returns>
    public static DnsParseStatus ParseQuery(ReadOnlySpan<byte> message, out DnsQuery query)
    {
        query = default;
        if (message.Length < HeaderSize)
        {
            return DnsParseStatus.Drop;
        }

        var id = BinaryPrimitives.ReadUInt16BigEndian(message);
        var flags = BinaryPrimitives.ReadUInt16BigEndian(message[2..]);
        query = new DnsQuery { Id = id, Flags = flags, Name = string.Empty };
        if ((flags & FlagQr) != 0)
        {
            return DnsParseStatus.Drop;
        }

        if (((flags >> 11) & 0xF) != 0)
        {
            return DnsParseStatus.NotImp;
        }

        var qdCount = BinaryPrimitives.ReadUInt16BigEndian(message[4..]);
        var anCount = BinaryPrimitives.ReadUInt16BigEndian(message[6..]);
        var nsCount = BinaryPrimitives.ReadUInt16BigEndian(message[8..]);
        var arCount = BinaryPrimitives.ReadUInt16BigEndian(message[10..]);
        if (qdCount != 1)
        {
            return DnsParseStatus.FormErr;
        }

        var offset = HeaderSize;
        var text = new StringBuilder();
        if (!TryReadQuestionName(message, ref offset, text) || offset + 4 > message.Length)
        {
            return DnsParseStatus.FormErr;
        }

        var type = BinaryPrimitives.ReadUInt16BigEndian(message[offset..]);
        var klass = BinaryPrimitives.ReadUInt16BigEndian(message[(offset + 2)..]);
        offset += 4;
        var questionEnd = offset;
        var maxUdp = ClassicUdpSize;
        var hasEdns = false;
        var records = anCount + nsCount + arCount;
        for (var i = 0; i < records; i++)
        {
            if (!TrySkipName(message, ref offset) || offset + 10 > message.Length)
            {
                return DnsParseStatus.FormErr;
            }

            var rrType = BinaryPrimitives.ReadUInt16BigEndian(message[offset..]);
            var rrClass = BinaryPrimitives.ReadUInt16BigEndian(message[(offset + 2)..]);
            var rdLength = BinaryPrimitives.ReadUInt16BigEndian(message[(offset + 8)..]);
            offset += 10;
            if (offset + rdLength > message.Length)
            {
                return DnsParseStatus.FormErr;
            }

            offset += rdLength;
            if (rrType == (ushort)DnsType.Opt && i >= anCount + nsCount)
            {
                if (hasEdns)
                {
                    return DnsParseStatus.FormErr; // RFC 6891 6.1.1: more than one OPT
                }

                hasEdns = true;
                maxUdp = Math.Clamp((int)rrClass, ClassicUdpSize, MaxUdpSize);
            }
        }

        query = new DnsQuery
        {
            Id = id,
            Flags = flags,
            Name = text.ToString(),
            Type = type,
            Class = klass,
            QuestionEnd = questionEnd,
            MaxUdpSize = maxUdp,
            HasEdns = hasEdns,
        };
        return DnsParseStatus.Ok;
    }

    /// <summary>Writes the header and, when <paramref name="questionEnd"/> is past the header, the question of
    /// <paramref name="query"/> (copied as received, letter case included) into <paramref name="destination"/>: the
    /// start of a reply. The caller adds answers with <see cref="WriteAddress"/> and <see cref="WritePtr"/>.</summary>
    /// <param name="destination">Where the reply goes; at least the question's size.</param>
    /// <param name="query">The query message.</param>
    /// <param name="questionEnd">The parsed query's <see cref="DnsQuery.QuestionEnd"/>, or <see cref="HeaderSize"/> for no question.</param>
    /// <param name="rcode">The response code.</param>
    /// <param name="authoritative">Whether to set AA.</param>
    /// <returns>The bytes written.</returns>
    public static int WriteReplyStart(Span<byte> destination, ReadOnlySpan<byte> query, int questionEnd, DnsRcode rcode, bool authoritative)
    {
        var queryFlags = BinaryPrimitives.ReadUInt16BigEndian(query[2..]);
        var flags = (ushort)(FlagQr | (queryFlags & (0x7800 | FlagRd)) | FlagRa | (authoritative ? FlagAa : 0) | (int)rcode);
        query[..2].CopyTo(destination);
        BinaryPrimitives.WriteUInt16BigEndian(destination[2..], flags);
        BinaryPrimitives.WriteUInt16BigEndian(destination[4..], (ushort)(questionEnd > HeaderSize ? 1 : 0));
        destination.Slice(6, 6).Clear();
        query[HeaderSize..questionEnd].CopyTo(destination[HeaderSize..]);
        return questionEnd;
    }

    /// <summary>Appends an A or AAAA answer for the question's name (a pointer to it) and counts it in the header.</summary>
    /// <param name="reply">The reply being written.</param>
    /// <param name="length">Its length so far; advanced.</param>
    /// <param name="address">The address: IPv4 gives A, IPv6 AAAA.</param>
    /// <param name="ttl">Time to live, seconds.</param>
    /// <returns>False when it does not fit.</returns>
    public static bool WriteAddress(Span<byte> reply, ref int length, IPAddress address, uint ttl)
    {
        var v4 = address.AddressFamily == AddressFamily.InterNetwork;
        var size = v4 ? 4 : 16;
        if (length + 12 + size > reply.Length)
        {
            return false;
        }

        var rr = reply[length..];
        WriteRecordHeader(rr, v4 ? DnsType.A : DnsType.Aaaa, ttl, (ushort)size);
        if (!address.TryWriteBytes(rr.Slice(12, size), out _))
        {
            return false;
        }

        length += 12 + size;
        IncrementAnswers(reply);
        return true;
    }

    /// <summary>Appends a PTR answer for the question's name and counts it in the header.</summary>
    /// <param name="reply">The reply being written.</param>
    /// <param name="length">Its length so far; advanced.</param>
    /// <param name="target">The name pointed to, dotted, without the final dot.</param>
    /// <param name="ttl">Time to live, seconds.</param>
    /// <returns>False when it does not fit or the name cannot be encoded.</returns>
    public static bool WritePtr(Span<byte> reply, ref int length, string target, uint ttl)
    {
        if (length + 12 > reply.Length)
        {
            return false;
        }

        var rr = reply[length..];
        if (!TryWriteName(rr[12..], target, out var nameLength))
        {
            return false;
        }

        WriteRecordHeader(rr, DnsType.Ptr, ttl, (ushort)nameLength);
        length += 12 + nameLength;
        IncrementAnswers(reply);
        return true;
    }

    /// <summary>Encodes a dotted name (no final dot needed; empty for the root) in wire form, uncompressed.</summary>
    /// <param name="destination">Where to write.</param>
    /// <param name="name">The name: labels of 1 to 63 ASCII characters, at most 255 bytes encoded.</param>
    /// <param name="written">The bytes written.</param>
    /// <returns>False when the name is invalid or does not fit.</returns>
    public static bool TryWriteName(Span<byte> destination, string name, out int written)
    {
        written = 0;
        var rest = name.AsSpan().TrimEnd('.');
        var position = 0;
        while (!rest.IsEmpty)
        {
            var dot = rest.IndexOf('.');
            var label = dot < 0 ? rest : rest[..dot];
            rest = dot < 0 ? [] : rest[(dot + 1)..];
            if (label.IsEmpty || label.Length > MaxLabelLength || position + 1 + label.Length > destination.Length || !Ascii.IsValid(label))
            {
                return false;
            }

            destination[position++] = (byte)label.Length;
            position += Encoding.ASCII.GetBytes(label, destination[position..]);
        }

        if (position + 1 > destination.Length || position + 1 > MaxNameLength)
        {
            return false;
        }

        destination[position++] = 0;
        written = position;
        return true;
    }

    /// <summary>
    /// Makes a reply fit <paramref name="maxSize"/>: when it is longer, it is cut to its header and question with TC set
    /// and no records (RFC 2181 9: the client retries over TCP). A reply whose question cannot be read is cut to its
    /// header.
    /// </summary>
    /// <param name="reply">The reply, rewritten in place.</param>
    /// <param name="maxSize">The client's limit.</param>
    /// <returns>The length to send.</returns>
    public static int Truncate(Span<byte> reply, int maxSize)
    {
        if (reply.Length <= maxSize || reply.Length < HeaderSize)
        {
            return reply.Length;
        }

        var flags = BinaryPrimitives.ReadUInt16BigEndian(reply[2..]);
        BinaryPrimitives.WriteUInt16BigEndian(reply[2..], (ushort)(flags | FlagTc));
        var qdCount = BinaryPrimitives.ReadUInt16BigEndian(reply[4..]);
        var end = HeaderSize;
        if (qdCount == 1 && TrySkipName(reply, ref end) && end + 4 <= reply.Length && end + 4 <= maxSize)
        {
            end += 4;
        }
        else
        {
            end = HeaderSize;
            BinaryPrimitives.WriteUInt16BigEndian(reply[4..], 0);
        }

        reply.Slice(6, 6).Clear();
        return end;
    }

    /// <summary>Reads a reply's id, or false when it is not a response.</summary>
    /// <param name="reply">The message.</param>
    /// <param name="id">Its id.</param>
    /// <returns>True for a message at least a header long with QR set.</returns>
    public static bool TryReadReplyId(ReadOnlySpan<byte> reply, out ushort id)
    {
        id = 0;
        if (reply.Length < HeaderSize || (BinaryPrimitives.ReadUInt16BigEndian(reply[2..]) & FlagQr) == 0)
        {
            return false;
        }

        id = BinaryPrimitives.ReadUInt16BigEndian(reply);
        return true;
    }

    /// <summary>Whether a reply has TC set.</summary>
    /// <param name="reply">A reply at least a header long.</param>
    /// <returns>True when truncated.</returns>
    public static bool IsTruncated(ReadOnlySpan<byte> reply) => (BinaryPrimitives.ReadUInt16BigEndian(reply[2..]) & FlagTc) != 0;

    /// <summary>Whether a reply answers this question: same question section bytes, letter case aside.</summary>
    /// <param name="reply">The reply.</param>
    /// <param name="query">The query message.</param>
    /// <param name="questionEnd">The query's question end.</param>
    /// <returns>True when the question matches.</returns>
    public static bool SameQuestion(ReadOnlySpan<byte> reply, ReadOnlySpan<byte> query, int questionEnd)
    {
        if (reply.Length < questionEnd || BinaryPrimitives.ReadUInt16BigEndian(reply[4..]) != 1)
        {
            return false;
        }

        return Ascii.EqualsIgnoreCase(reply[HeaderSize..questionEnd], query[HeaderSize..questionEnd]);
    }

    /// <summary>The address a reverse name stands for: <c>d.c.b.a.in-addr.arpa</c> or 32 nibbles then <c>ip6.arpa</c>.</summary>
    /// <param name="name">The name, lower-case, without the final dot.</param>
    /// <param name="address">The address.</param>
    /// <returns>False when it is not a full reverse name.</returns>
    public static bool TryParseReverseName(string name, [NotNullWhen(true)] out IPAddress? address)
    {
        address = null;
        const string V4 = ".in-addr.arpa";
        const string V6 = ".ip6.arpa";
        if (name.EndsWith(V4, StringComparison.Ordinal))
        {
            var parts = name[..^V4.Length].Split('.');
            Span<byte> bytes = stackalloc byte[4];
            if (parts.Length != 4)
            {
                return false;
            }

            for (var i = 0; i < 4; i++)
            {
                var part = parts[3 - i];
                if (part.Length is 0 or > 3 || (part.Length > 1 && part[0] == '0') || !byte.TryParse(part, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out bytes[i]))
                {
                    return false;
                }
            }

            address = new IPAddress(bytes);
            return true;
        }

        if (name.EndsWith(V6, StringComparison.Ordinal))
        {
            var nibbles = name[..^V6.Length];
            if (nibbles.Length != 63)
            {
                return false;
            }

            Span<byte> bytes = stackalloc byte[16];
            for (var i = 0; i < 32; i++)
            {
                var c = nibbles[i * 2];
                if ((i < 31 && nibbles[(i * 2) + 1] != '.') || !char.IsAsciiHexDigit(c))
                {
                    return false;
                }

                var value = (byte)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
                var index = 15 - (i / 2);
                bytes[index] |= (byte)(i % 2 == 0 ? value : value << 4);
            }

            address = new IPAddress(bytes);
            return true;
        }

        return false;
    }

    /// <summary>The reverse name of an address, as <see cref="TryParseReverseName"/> reads it.</summary>
    /// <param name="address">The address.</param>
    /// <returns>The name, without the final dot.</returns>
    public static string ReverseName(IPAddress address)
    {
        var bytes = address.GetAddressBytes();
        var builder = new StringBuilder();
        if (bytes.Length == 4)
        {
            for (var i = 3; i >= 0; i--)
            {
                builder.Append(bytes[i].ToString(System.Globalization.CultureInfo.InvariantCulture)).Append('.');
            }

            return builder.Append("in-addr.arpa").ToString();
        }

        for (var i = 15; i >= 0; i--)
        {
            builder.Append("0123456789abcdef"[bytes[i] & 0xF]).Append('.').Append("0123456789abcdef"[bytes[i] >> 4]).Append('.');
        }

        return builder.Append("ip6.arpa").ToString();
    }

    private static void WriteRecordHeader(Span<byte> rr, DnsType type, uint ttl, ushort rdLength)
    {
        BinaryPrimitives.WriteUInt16BigEndian(rr, 0xC000 | HeaderSize); // the question's name
        BinaryPrimitives.WriteUInt16BigEndian(rr[2..], (ushort)type);
        BinaryPrimitives.WriteUInt16BigEndian(rr[4..], ClassIn);
        BinaryPrimitives.WriteUInt32BigEndian(rr[6..], ttl);
        BinaryPrimitives.WriteUInt16BigEndian(rr[10..], rdLength);
    }

    private static void IncrementAnswers(Span<byte> reply) =>
        BinaryPrimitives.WriteUInt16BigEndian(reply[6..], (ushort)(BinaryPrimitives.ReadUInt16BigEndian(reply[6..]) + 1));

    /// <summary>Reads the question's name: labels only (a compression pointer there could only point into the
    /// header), at most 255 bytes.</summary>
    private static bool TryReadQuestionName(ReadOnlySpan<byte> message, ref int offset, StringBuilder text)
    {
        var start = offset;
        while (true)
        {
            if (offset >= message.Length)
            {
                return false;
            }

            var length = message[offset];
            if (length == 0)
            {
                offset++;
                return offset - start <= MaxNameLength;
            }

            if (length > MaxLabelLength || offset + 1 + length > message.Length || offset + 1 + length - start >= MaxNameLength)
            {
                return false; // a pointer (0xC0) or a reserved label type (0x40, 0x80) lands here too
            }

            if (text.Length > 0)
            {
                text.Append('.');
            }

            foreach (var b in message.Slice(offset + 1, length))
            {
                if (char.IsAsciiLetterOrDigit((char)b) || b is (byte)'-' or (byte)'_')
                {
                    text.Append(char.ToLowerInvariant((char)b));
                }
                else
                {
                    text.Append('\\').Append(((int)b).ToString("D3", System.Globalization.CultureInfo.InvariantCulture));
                }
            }

            offset += 1 + length;
        }
    }

    /// <summary>Skips a name in a record: labels, ending with the root label or a compression pointer.</summary>
    private static bool TrySkipName(ReadOnlySpan<byte> message, ref int offset)
    {
        var start = offset;
        while (offset < message.Length)
        {
            var length = message[offset];
            if (length == 0)
            {
                offset++;
                return offset - start <= MaxNameLength;
            }

            if ((length & 0xC0) == 0xC0)
            {
                if (offset + 2 > message.Length)
                {
                    return false;
                }

                var target = ((length & 0x3F) << 8) | message[offset + 1];
                offset += 2;
                return target < start && offset - start <= MaxNameLength;
            }

            if (length > MaxLabelLength || offset + 1 + length > message.Length)
            {
                return false;
            }

            offset += 1 + length;
            if (offset - start > MaxNameLength)
            {
                return false;
            }
        }

        return false;
    }
}
