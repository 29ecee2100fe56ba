using CnmSharp.Netlink.Internal;
using System.Buffers.Binary;
using CnmSharp.Netlink.Tests.Support;
using CnmSharp.Testing;
using CsCheck;
using static CnmSharp.Netlink.Tests.Support.Hand;
using static CnmSharp.Netlink.Tests.Support.Kernel;

namespace CnmSharp.Netlink.Tests;

/// <summary>Random and mutated bytes fed to every rtnetlink reader path (dump replies, notifications, errors, acks,
/// batch acks): only <see cref="NetlinkProtocolException"/> may escape. Fixed seeds and counts (docs/reliability.md);
/// the corpus is Corpus/rtnetlink.</summary>
public class FuzzTests
{
    internal static readonly byte[] s_valid = Concat(
        LinkMessage(1, "lo", "", 1, 0),
        LinkMessage(2, "vxlan0", "vxlan", 1, 0, master: 1),
        Msg(RTM_NEWADDR, 2, 1, IfAddr(AF_INET6, 64, 0, 0, 3), Attr(IFA_ADDRESS, Ip("fd00::2")), Attr(IFA_FLAGS, U32(2))),
        Msg(RTM_NEWROUTE, 2, 1, RtMsg(AF_INET, 24, RT_TABLE_MAIN, 3, 0, RTN_UNICAST, 0), Attr(RTA_DST, Ip("10.0.0.0")), Attr(RTA_GATEWAY, Ip("10.0.0.1"))),
        Msg(RTM_NEWNEIGH, 2, 1, NdMsg(AF_BRIDGE, 7, NUD_PERMANENT, NTF_SELF), Attr(NDA_LLADDR, Mac("02:00:00:00:00:01")), Attr(NDA_VNI, U32(42))),
        Error(17, 1, 0, "File exists"),
        Done(1, 0));

    internal static void Feed(byte[] bytes)
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

    [TestCaseSource(nameof(CorpusCases))]
    public void Corpus_entries_only_raise_protocol_exceptions(string file) => Feed(Fuzz.CorpusBytes("rtnetlink", file));

    private static IEnumerable<TestCaseData> CorpusCases() => Fuzz.Corpus("rtnetlink");

    [Test]
    public void Mutated_corpus_only_raises_protocol_exceptions() =>
        Fuzz.Run(Fuzz.Mutations(Fuzz.CorpusAll("rtnetlink")), Feed, iterations: 5_000, seed: 201);

    [Test]
    public void Length_fields_that_lie_only_raise_protocol_exceptions() =>
        Fuzz.Run(
            Gen.Select(Gen.Int[0, s_valid.Length - 4], Gen.UInt, Gen.Bool),
            t =>
            {
                var bytes = (byte[])s_valid.Clone();
                if (t.Item3)
                {
                    BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(t.Item1), t.Item2);
                }
                else
                {
                    BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(t.Item1), (ushort)t.Item2);
                }

                Feed(bytes);
            },
            iterations: 3_000,
            seed: 202);

    [Test]
    public void Random_bytes_only_raise_protocol_exceptions() =>
        Fuzz.Run(Gen.Byte.Array[0, 300], Feed, iterations: 20_000, seed: 203);

    [Test]
    public void Random_message_framing_with_random_payloads() =>
        Fuzz.Run(Gen.Select(Gen.UShort[1, 40], Gen.UShort, Gen.Byte.Array[0, 120])
            .Array[1, 6]
            .Select(parts => Concat(parts.Select(p => Concat(Header((uint)(16 + p.Item3.Length), p.Item1, p.Item2, 1, 0), p.Item3, new byte[(4 - (p.Item3.Length % 4)) % 4])).ToArray()))
            , Feed, iterations: 20_000, seed: 204);

    [Test]
    public void Mutated_kernel_replies_only_raise_protocol_exceptions() =>
        Fuzz.Run(Gen.Select(Gen.Int[0, s_valid.Length - 1], Gen.Byte).Array[1, 8]
            .Select(mutations =>
            {
                var copy = (byte[])s_valid.Clone();
                foreach (var (at, value) in mutations)
                {
                    copy[at] = value;
                }

                return copy;
            }),
            Feed,
            iterations: 20_000,
            seed: 205);

    [Test]
    public void Truncated_kernel_replies_only_raise_protocol_exceptions() =>
        Fuzz.Run(Gen.Int[0, s_valid.Length], length => Feed(s_valid[..length]), iterations: 2_000, seed: 206);
}
