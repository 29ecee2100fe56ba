using System.Net;
using System.Net.Sockets;

namespace CnmSharp.Dns;

/// <summary>What to do with a query.</summary>
internal enum DnsDecision
{
    /// <summary>Send the reply that was written.</summary>
    Reply,

    /// <summary>Not a local name: forward the query upstream.</summary>
    Forward,

    /// <summary>Send nothing.</summary>
    Drop,
}

/// <summary>
/// Answers a query from the local names a sandbox sees (A, AAAA, PTR; <c>name</c> and <c>name.network</c>), or decides
/// that it goes upstream. A name that exists only on networks the sandbox is not on gets NXDOMAIN (it is never
/// forwarded); a local name without an address of the asked type gets an empty NOERROR answer.
/// </summary>
internal static class DnsAnswerer
{
    /// <summary>The TTL of local answers (libnetwork's).</summary>
    public const uint Ttl = 600;

    private const ushort TypeAny = 255;

    /// <summary>Decides about one query and, for <see cref="DnsDecision.Reply"/>, writes the reply.</summary>
    /// <param name="message">The query as received.</param>
    /// <param name="reply">Where a local reply goes: its length is the most the client accepts.</param>
    /// <param name="replyLength">The reply's length.</param>
    /// <param name="query">The parsed query (for forwarding).</param>
    /// <param name="table">The local names.</param>
    /// <param name="networkIds">The networks the sandbox resolves on.</param>
    /// <returns>The decision.</returns>
    public static DnsDecision Answer(ReadOnlySpan<byte> message, Span<byte> reply, out int replyLength, out DnsQuery query, DnsRecordTable table, IReadOnlyList<string> networkIds)
    {
        replyLength = 0;
        var status = DnsWire.ParseQuery(message, out query);
        switch (status)
        {
            case DnsParseStatus.Drop:
                return DnsDecision.Drop;
            case DnsParseStatus.FormErr:
                replyLength = DnsWire.WriteReplyStart(reply, message, DnsWire.HeaderSize, DnsRcode.FormErr, authoritative: false);
                return DnsDecision.Reply;
            case DnsParseStatus.NotImp:
                replyLength = DnsWire.WriteReplyStart(reply, message, DnsWire.HeaderSize, DnsRcode.NotImp, authoritative: false);
                return DnsDecision.Reply;
        }

        if (query.Class != DnsWire.ClassIn)
        {
            return DnsDecision.Forward;
        }

        if (query.Type == (ushort)DnsType.Ptr && DnsWire.TryParseReverseName(query.Name, out var address))
        {
            var names = table.ReverseLookup(networkIds, address);
            if (names.Count == 0)
            {
                if (!table.IsKnownAddress(address))
                {
                    return DnsDecision.Forward;
                }

                replyLength = DnsWire.WriteReplyStart(reply, message, query.QuestionEnd, DnsRcode.NxDomain, authoritative: true);
                return DnsDecision.Reply;
            }

            replyLength = DnsWire.WriteReplyStart(reply, message, query.QuestionEnd, DnsRcode.NoError, authoritative: true);
            foreach (var name in names)
            {
                if (!DnsWire.WritePtr(reply, ref replyLength, name, Ttl))
                {
                    SetTruncated(reply);
                    break;
                }
            }

            return DnsDecision.Reply;
        }

        var addresses = table.Lookup(networkIds, query.Name, out var found);
        if (!found)
        {
            if (!table.IsKnown(query.Name))
            {
                return DnsDecision.Forward;
            }

            replyLength = DnsWire.WriteReplyStart(reply, message, query.QuestionEnd, DnsRcode.NxDomain, authoritative: true);
            return DnsDecision.Reply;
        }

        replyLength = DnsWire.WriteReplyStart(reply, message, query.QuestionEnd, DnsRcode.NoError, authoritative: true);
        foreach (var a in addresses)
        {
            var wanted = query.Type == TypeAny
                || (query.Type == (ushort)DnsType.A && a.AddressFamily == AddressFamily.InterNetwork)
                || (query.Type == (ushort)DnsType.Aaaa && a.AddressFamily == AddressFamily.InterNetworkV6);
            if (wanted && !DnsWire.WriteAddress(reply, ref replyLength, a, Ttl))
            {
                SetTruncated(reply);
                break;
            }
        }

        return DnsDecision.Reply;
    }

    /// <summary>Writes a reply with only a response code (SERVFAIL when upstreams fail, REFUSED when too busy).</summary>
    /// <param name="message">The query.</param>
    /// <param name="query">Its parsed form.</param>
    /// <param name="rcode">The code.</param>
    /// <returns>The reply.</returns>
    public static byte[] ErrorReply(ReadOnlySpan<byte> message, in DnsQuery query, DnsRcode rcode)
    {
        var reply = new byte[query.QuestionEnd];
        DnsWire.WriteReplyStart(reply, message, query.QuestionEnd, rcode, authoritative: false);
        return reply;
    }

    private static void SetTruncated(Span<byte> reply) => reply[2] |= (byte)(DnsWire.FlagTc >> 8);
}
