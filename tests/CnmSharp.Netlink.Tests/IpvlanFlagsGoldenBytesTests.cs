using CnmSharp.Netlink.Internal;
using static CnmSharp.Netlink.Tests.Support.Hand;

namespace CnmSharp.Netlink.Tests;

/// <summary>IFLA_IPVLAN_FLAGS (2, u16 IPVLAN_F_*) is sent after the mode when, and only when, flags are set; without
/// them the request is byte for byte what it was before (see GoldenBytesTests.Create_ipvlan).</summary>
public class IpvlanFlagsGoldenBytesTests
{
    private const uint Seq = 0x01020304;
    private const ushort Create = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
    private const ushort IFLA_IPVLAN_FLAGS = 2; // include/uapi/linux/if_link.h
    private const ushort IPVLAN_F_PRIVATE = 1;
    private const ushort IPVLAN_F_VEPA = 2;

    private delegate void Encoder(ref NetlinkWriter writer);

    private static string Encode(Encoder encode)
    {
        var buffer = new byte[4096];
        buffer.AsSpan().Fill(0xEE);
        var writer = new NetlinkWriter(buffer);
        encode(ref writer);
        return Convert.ToHexString(writer.Written.ToArray());
    }

    [TestCase(IpvlanFlags.Private, IPVLAN_F_PRIVATE)]
    [TestCase(IpvlanFlags.Vepa, IPVLAN_F_VEPA)]
    [TestCase(IpvlanFlags.Bridge, (ushort)0)]
    public void Create_ipvlan_with_flags(IpvlanFlags flags, ushort wire)
    {
        var expected = Msg(RTM_NEWLINK, Create, Seq, IfInfo(AF_UNSPEC, 0),
            Attr(IFLA_IFNAME, Str("ipv0")),
            Attr(IFLA_LINK, U32(2)),
            Nest(IFLA_LINKINFO,
                Attr(IFLA_INFO_KIND, Str("ipvlan")),
                Nest(IFLA_INFO_DATA, Attr(IFLA_IPVLAN_MODE, U16(IPVLAN_MODE_L3)), Attr(IFLA_IPVLAN_FLAGS, U16(wire)))));
        Assert.That(
            Encode((ref NetlinkWriter w) => RtnetlinkEncoder.CreateLink(ref w, Seq, new IpvlanLinkSpec("ipv0", 2) { Mode = IpvlanMode.L3, Flags = flags })),
            Is.EqualTo(Convert.ToHexString(expected)));
    }
}
