using System.Net;
using CnmSharp.Netlink.Internal;
using CnmSharp.Netlink.Tests.Support;
using static CnmSharp.Netlink.Tests.Support.Hand;
using static CnmSharp.Netlink.Tests.Support.Kernel;

namespace CnmSharp.Netlink.Tests;

public class ReaderTests
{
    private const uint Pid = 4242;

    private static readonly RtnetlinkClient.MessageParser<LinkInfo> s_links = (type, payload, results) =>
    {
        if (type == RTM_NEWLINK)
        {
            results.Add(RtnetlinkParser.ParseLinkInfo(payload));
        }
    };

    [Test]
    public void Ack_completes_the_request()
    {
        Assert.That(RtnetlinkClient.CheckAck(Error(0, 7, Pid), 7, Pid, "op"), Is.True);
    }

    [Test]
    public void Replies_to_other_sequences_or_ports_are_skipped()
    {
        var stale = Concat(Error(17, 6, Pid, "old"), Error(17, 7, Pid + 1, "not ours"));
        Assert.That(RtnetlinkClient.CheckAck(stale, 7, Pid, "op"), Is.False);
    }

    [Test]
    public void Error_with_extended_ack_is_typed()
    {
        var e = Assert.Throws<NetlinkException>(() => RtnetlinkClient.CheckAck(Error(17, 7, Pid, "File exists"), 7, Pid, "create link"))!;
        Assert.Multiple(() =>
        {
            Assert.That(e.Errno, Is.EqualTo(17));
            Assert.That(e.ErrorName, Is.EqualTo("EEXIST"));
            Assert.That(e.ExtendedMessage, Is.EqualTo("File exists"));
            Assert.That(e.IsAlreadyExists, Is.True);
            Assert.That(e.Message, Does.Contain("create link").And.Contain("EEXIST").And.Contain("File exists"));
            Assert.That(e, Is.Not.InstanceOf<NetlinkProtocolException>());
        });
    }

    [Test]
    public void Error_without_cap_ack_skips_the_echoed_request()
    {
        var request = Msg(RTM_NEWLINK, 5, 7, IfInfo(AF_UNSPEC, 0), Attr(IFLA_IFNAME, Str("x")), Nest(IFLA_LINKINFO, Attr(IFLA_INFO_KIND, Str("dummy"))));
        var e = Assert.Throws<NetlinkException>(() => RtnetlinkClient.CheckAck(UncappedError(95, 7, Pid, request, "Unknown device type"), 7, Pid, "op"))!;
        Assert.Multiple(() =>
        {
            Assert.That(e.ErrorName, Is.EqualTo("EOPNOTSUPP"));
            Assert.That(e.ExtendedMessage, Is.EqualTo("Unknown device type"));
            Assert.That(e.IsNotSupported, Is.True);
        });
    }

    [Test]
    public void Error_without_message_has_null_extended_message()
    {
        var e = Assert.Throws<NetlinkException>(() => RtnetlinkClient.CheckAck(Error(19, 7, Pid), 7, Pid, "op"))!;
        Assert.Multiple(() =>
        {
            Assert.That(e.ErrorName, Is.EqualTo("ENODEV"));
            Assert.That(e.ExtendedMessage, Is.Null);
            Assert.That(e.IsNotFound, Is.True);
        });
    }

    [Test]
    public void Multipart_dump_across_datagrams_until_done()
    {
        var results = new List<LinkInfo>();
        var interrupted = false;
        var first = Concat(LinkMessage(1, "lo", "", 9, Pid), LinkMessage(2, "br0", "bridge", 9, Pid));
        var second = Concat(LinkMessage(3, "vh0", "veth", 9, Pid, master: 2), Done(9, Pid));
        Assert.That(RtnetlinkClient.ProcessQueryReply(first, 9, Pid, s_links, results, ref interrupted, "dump"), Is.False);
        Assert.That(RtnetlinkClient.ProcessQueryReply(second, 9, Pid, s_links, results, ref interrupted, "dump"), Is.True);
        Assert.Multiple(() =>
        {
            Assert.That(interrupted, Is.False);
            Assert.That(results.Select(l => l.Name), Is.EqualTo(new[] { "lo", "br0", "vh0" }));
            Assert.That(results[0].Kind, Is.Null);
            Assert.That(results[2].Kind, Is.EqualTo("veth"));
            Assert.That(results[2].MasterIndex, Is.EqualTo(2));
            Assert.That(results[2].IsUp, Is.True);
            Assert.That(results[2].OperState, Is.EqualTo(LinkOperState.Up));
            Assert.That(results[2].Mac!.ToString(), Is.EqualTo("020000000003"));
        });
    }

    [Test]
    public void Dump_interrupted_flag_is_reported()
    {
        var results = new List<LinkInfo>();
        var interrupted = false;
        var datagram = Concat(LinkMessage(1, "lo", "", 9, Pid, flags: NLM_F_MULTI | NLM_F_DUMP_INTR), Done(9, Pid));
        Assert.That(RtnetlinkClient.ProcessQueryReply(datagram, 9, Pid, s_links, results, ref interrupted, "dump"), Is.True);
        Assert.That(interrupted, Is.True);
    }

    [Test]
    public void Done_with_error_throws()
    {
        var results = new List<LinkInfo>();
        var interrupted = false;
        var e = Assert.Throws<NetlinkException>(() => RtnetlinkClient.ProcessQueryReply(Done(9, Pid, 22), 9, Pid, s_links, results, ref interrupted, "dump"))!;
        Assert.That(e.ErrorName, Is.EqualTo("EINVAL"));
    }

    [Test]
    public void Single_get_reply_without_multi_completes()
    {
        var results = new List<LinkInfo>();
        var interrupted = false;
        Assert.That(RtnetlinkClient.ProcessQueryReply(LinkMessage(5, "eth0", "veth", 9, Pid, flags: 0), 9, Pid, s_links, results, ref interrupted, "get"), Is.True);
        Assert.That(results.Single().Index, Is.EqualTo(5));
    }

    [Test]
    public void Batch_acks_are_matched_to_their_requests()
    {
        var errors = new NetlinkException?[3];
        var answered = new bool[3];
        var first = Concat(Error(0, 100, Pid), Error(17, 101, Pid, "File exists"));
        Assert.That(RtnetlinkClient.CollectBatchAcks(first, 100, Pid, errors, answered), Is.EqualTo(2));
        Assert.That(RtnetlinkClient.CollectBatchAcks(Concat(Error(0, 99, Pid), Error(0, 102, Pid)), 100, Pid, errors, answered), Is.EqualTo(1));
        Assert.Multiple(() =>
        {
            Assert.That(errors[0], Is.Null);
            Assert.That(errors[1]!.ErrorName, Is.EqualTo("EEXIST"));
            Assert.That(errors[2], Is.Null);
        });
    }

    [Test]
    public void Notifications_become_events()
    {
        var events = new List<NetlinkEvent>();
        var address = Msg(RTM_NEWADDR, 0, 0, IfAddr(AF_INET, 24, 0x80, 0, 3), Attr(IFA_ADDRESS, Ip("10.0.0.2")), Attr(IFA_LOCAL, Ip("10.0.0.2")), Attr(IFA_LABEL, Str("eth0")));
        var route = Msg(RTM_DELROUTE, 0, 0, RtMsg(AF_INET, 24, RT_TABLE_MAIN, 2, RT_SCOPE_LINK, RTN_UNICAST, 0), Attr(RTA_DST, Ip("10.0.0.0")), Attr(RTA_OIF, U32(3)), Attr(RTA_TABLE, U32(254)));
        var neigh = Msg(RTM_NEWNEIGH, 0, 0, NdMsg(AF_BRIDGE, 7, NUD_PERMANENT, NTF_SELF), Attr(NDA_LLADDR, Mac("02:00:00:00:00:01")), Attr(NDA_DST, Ip("192.168.0.2")));
        var link = Msg(RTM_DELLINK, 0, 0, IfInfo(AF_UNSPEC, 9), Attr(IFLA_IFNAME, Str("gone")));
        RtnetlinkClient.ParseEvents(Concat(address, route, neigh, link), events);
        Assert.That(events.Select(e => e.Kind), Is.EqualTo(new[] { NetlinkEventKind.AddressAdded, NetlinkEventKind.RouteRemoved, NetlinkEventKind.NeighbourAdded, NetlinkEventKind.LinkRemoved }));
        Assert.Multiple(() =>
        {
            Assert.That(events[0].Address!.Address, Is.EqualTo(IPAddress.Parse("10.0.0.2")));
            Assert.That(events[0].Address!.Label, Is.EqualTo("eth0"));
            Assert.That(events[1].Route!.Destination, Is.EqualTo(IPNetwork.Parse("10.0.0.0/24")));
            Assert.That(events[1].Route!.Scope, Is.EqualTo(RouteScope.Link));
            Assert.That(events[2].Neighbour!.IsFdb, Is.True);
            Assert.That(events[2].Neighbour!.Address, Is.EqualTo(IPAddress.Parse("192.168.0.2")));
            Assert.That(events[3].Link!.Name, Is.EqualTo("gone"));
        });
    }

    [Test]
    public void Route_parser_masks_host_bits_of_the_destination()
    {
        var route = Msg(RTM_NEWROUTE, 0, 0, RtMsg(AF_INET, 20, RT_TABLE_MAIN, 3, 0, RTN_UNICAST, RTNH_F_ONLINK), Attr(RTA_DST, Ip("10.1.255.255")), Attr(RTA_GATEWAY, Ip("10.0.0.1")), Attr(RTA_PRIORITY, U32(7)));
        var info = RtnetlinkParser.ParseRoute(route.AsSpan(16));
        Assert.Multiple(() =>
        {
            Assert.That(info.Destination, Is.EqualTo(IPNetwork.Parse("10.1.240.0/20")));
            Assert.That(info.OnLink, Is.True);
            Assert.That(info.Metric, Is.EqualTo(7u));
            Assert.That(info.Protocol, Is.EqualTo(RouteProtocol.Boot));
        });
    }

    [TestCase("message length beyond the buffer", "30000000" + "1000" + "0000" + "01000000" + "00000000")]
    [TestCase("message length below the header", "08000000" + "1000" + "0000" + "01000000" + "00000000")]
    [TestCase("trailing partial header", "0102030405")]
    public void Malformed_datagrams_throw_protocol_exception(string what, string hex)
    {
        var bytes = Convert.FromHexString(hex);
        var results = new List<LinkInfo>();
        var interrupted = false;
        Assert.Throws<NetlinkProtocolException>(() => RtnetlinkClient.ProcessQueryReply(bytes, 1, 0, s_links, results, ref interrupted, "dump"), what);
    }

    [Test]
    public void Attribute_overrunning_its_message_throws_protocol_exception()
    {
        var message = LinkMessage(1, "lo", "", 1, 0);
        message[32] = 0xFF; // first attribute's length: 255 > what is left
        Assert.Throws<NetlinkProtocolException>(() => RtnetlinkParser.ParseLinkInfo(message.AsSpan(16)));
    }

    [Test]
    public void Attribute_too_short_for_its_type_throws_protocol_exception()
    {
        var message = Msg(RTM_NEWLINK, 0, 1, IfInfo(AF_UNSPEC, 1), Attr(IFLA_MTU, U16(1500)));
        Assert.Throws<NetlinkProtocolException>(() => RtnetlinkParser.ParseLinkInfo(message.AsSpan(16)));
    }

    [Test]
    public void Payload_shorter_than_family_header_throws_protocol_exception()
    {
        var message = Msg(RTM_NEWROUTE, 0, 1, [2, 24, 0, 0]);
        Assert.Throws<NetlinkProtocolException>(() => RtnetlinkParser.ParseRoute(message.AsSpan(16)));
    }

    [Test]
    public void Truncated_error_message_throws_protocol_exception()
    {
        var bytes = Concat(Header(18, NLMSG_ERROR, 0, 7, Pid), [0xEF, 0xFF]);
        Assert.Throws<NetlinkProtocolException>(() => RtnetlinkClient.CheckAck(bytes, 7, Pid, "op"));
    }

    [Test]
    public void Error_echo_longer_than_the_message_throws_protocol_exception()
    {
        var body = Concat(BitConverter.GetBytes(-22), Header(400, RTM_NEWLINK, 5, 7, Pid), Attr(NLMSGERR_ATTR_MSG, Str("x")));
        var bytes = WithPid(Msg(NLMSG_ERROR, NLM_F_ACK_TLVS, 7, body), Pid);
        Assert.Throws<NetlinkProtocolException>(() => RtnetlinkClient.CheckAck(bytes, 7, Pid, "op"));
    }
}
