using CnmSharp.Netlink.Internal;
using CnmSharp.Netlink.Tests.Support;
using CsCheck;
using static CnmSharp.Netlink.Tests.Support.Hand;
using static CnmSharp.Netlink.Tests.Support.Kernel;

namespace CnmSharp.Netlink.Tests;

/// <summary>Random and mutated bytes fed to every reader path: only <see cref="NetlinkProtocolException"/> may escape.</summary>
public class FuzzTests
{
    private static readonly byte[] s_valid = Concat(
        LinkMessage(1, "lo", "", 1, 0),
        LinkMessage(2, "vxlan0", "vxlan", 1, 0, master: 1),
        Msg(RTM_NEWADDR, 2, 1, IfAddr(AF_INET6, 64, 0, 0, 3), Attr(IFA_ADDRESS, Ip("fd00::2")), Attr(IFA_FLAGS, U32(2))),
        Msg(RTM_NEWROUTE, 2, 1, RtMsg(AF_INET, 24, RT_TABLE_MAIN, 3, 0, RTN_UNICAST, 0), Attr(RTA_DST, Ip("10.0.0.0")), Attr(RTA_GATEWAY, Ip("10.0.0.1"))),
        Msg(RTM_NEWNEIGH, 2, 1, NdMsg(AF_BRIDGE, 7, NUD_PERMANENT, NTF_SELF), Attr(NDA_LLADDR, Mac("02:00:00:00:00:01")), Attr(NDA_VNI, U32(42))),
        Error(17, 1, 0, "File exists"),
        Done(1, 0));

    private static void Feed(byte[] bytes)
    {
        try
        {
            foreach (var message in new NetlinkMessageEnumerator(bytes))
            {
                var payload = message.Payload;
                _ = RtnetlinkParser.ParseError(payload, message.Flags, out _);
                _ = RtnetlinkParser.ParseError(payload, message.Flags, out _, isDone: true);
                _ = RtnetlinkParser.ParseLinkInfo(payload);
                _ = RtnetlinkParser.ParseAddress(payload);
                _ = RtnetlinkParser.ParseRoute(payload);
                _ = RtnetlinkParser.ParseNeighbour(payload);
                _ = RtnetlinkParser.ParseEvent(message.Type, payload);
            }
        }
        catch (NetlinkProtocolException)
        {
        }

        try
        {
            var events = new List<NetlinkEvent>();
            RtnetlinkClient.ParseEvents(bytes, events);
        }
        catch (NetlinkProtocolException)
        {
        }

        try
        {
            var errors = new NetlinkException?[4];
            RtnetlinkClient.CollectBatchAcks(bytes, 1, 0, errors, new bool[4]);
        }
        catch (NetlinkProtocolException)
        {
        }
    }

    [Test]
    public void The_valid_corpus_parses() => Assert.DoesNotThrow(() =>
    {
        var events = new List<NetlinkEvent>();
        RtnetlinkClient.ParseEvents(s_valid, events);
        Assert.That(events, Has.Count.EqualTo(5));
    });

    [Test]
    public void Random_bytes_only_raise_protocol_exceptions() =>
        Gen.Byte.Array[0, 300].Sample(Feed, iter: 20_000);

    [Test]
    public void Random_message_framing_with_random_payloads() =>
        Gen.Select(Gen.UShort[1, 40], Gen.UShort, Gen.Byte.Array[0, 120])
            .Array[1, 6]
            .Select(parts => Concat(parts.Select(p => Concat(Header((uint)(16 + p.Item3.Length), p.Item1, p.Item2, 1, 0), p.Item3, new byte[(4 - (p.Item3.Length % 4)) % 4])).ToArray()))
            .Sample(Feed, iter: 20_000);

    [Test]
    public void Mutated_kernel_replies_only_raise_protocol_exceptions() =>
        Gen.Select(Gen.Int[0, s_valid.Length - 1], Gen.Byte).Array[1, 8]
            .Select(mutations =>
            {
                var copy = (byte[])s_valid.Clone();
                foreach (var (at, value) in mutations)
                {
                    copy[at] = value;
                }

                return copy;
            })
            .Sample(Feed, iter: 20_000);

    [Test]
    public void Truncated_kernel_replies_only_raise_protocol_exceptions() =>
        Gen.Int[0, s_valid.Length].Sample(length => Feed(s_valid[..length]), iter: 2_000);
}
