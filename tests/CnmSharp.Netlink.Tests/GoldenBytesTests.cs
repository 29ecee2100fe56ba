using System.Net;
using System.Net.NetworkInformation;
using CnmSharp.Netlink.Internal;
using Microsoft.Win32.SafeHandles;
using static CnmSharp.Netlink.Tests.Support.Hand;

namespace CnmSharp.Netlink.Tests;

/// <summary>
/// Every request the client sends, compared byte for byte with an independent hand encoding (Support/Hand.cs)
/// whose constants are copied from the kernel UAPI headers.
/// </summary>
public class GoldenBytesTests
{
    private const uint Seq = 0x01020304;
    private const ushort Create = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
    private const ushort Replace = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE;
    private const ushort Acked = NLM_F_REQUEST | NLM_F_ACK;

    private static readonly SafeFileHandle s_ns42 = new(42, ownsHandle: false);
    private static readonly SafeFileHandle s_ns43 = new(43, ownsHandle: false);

    private delegate void Encoder(ref NetlinkWriter writer);

    private static byte[] Encode(Encoder encode)
    {
        var buffer = new byte[4096];
        buffer.AsSpan().Fill(0xEE); // padding must be written as zeros, not left over
        var writer = new NetlinkWriter(buffer);
        encode(ref writer);
        return writer.Written.ToArray();
    }

    private static void AssertBytes(byte[] actual, byte[] expected) =>
        Assert.That(Convert.ToHexString(actual), Is.EqualTo(Convert.ToHexString(expected)));

    [Test]
    public void Set_link_up_literal_hex()
    {
        // Worked out by hand: nlmsghdr{len 32, type 19, flags REQUEST|ACK, seq 1, pid 0} + ifinfomsg{index 7, flags IFF_UP, change IFF_UP}.
        var actual = Encode((ref NetlinkWriter w) => RtnetlinkEncoder.SetLink(ref w, 1, 7, LinkChange.Up, 0, null, null, null));
        Assert.That(
            Convert.ToHexString(actual),
            Is.EqualTo("20000000" + "1300" + "0500" + "01000000" + "00000000" + "00000000" + "07000000" + "01000000" + "01000000"));
    }

    [Test]
    public void Create_veth_with_peer_in_namespace()
    {
        var spec = new VethLinkSpec("vh0", "eth0")
        {
            PeerNamespace = s_ns42,
            PeerMac = PhysicalAddress.Parse("02-42-ac-11-00-02"),
            Mac = PhysicalAddress.Parse("02-42-ac-11-00-01"),
            Mtu = 1450,
            MasterIndex = 5,
            Up = true,
        };
        var expected = Msg(RTM_NEWLINK, Create, Seq, IfInfo(AF_UNSPEC, 0, IFF_UP, IFF_UP),
            Attr(IFLA_IFNAME, Str("vh0")),
            Attr(IFLA_MTU, U32(1450)),
            Attr(IFLA_ADDRESS, Mac("02:42:ac:11:00:01")),
            Attr(IFLA_MASTER, U32(5)),
            Nest(IFLA_LINKINFO,
                Attr(IFLA_INFO_KIND, Str("veth")),
                Nest(IFLA_INFO_DATA,
                    Nest(VETH_INFO_PEER,
                        IfInfo(AF_UNSPEC, 0),
                        Attr(IFLA_IFNAME, Str("eth0")),
                        Attr(IFLA_ADDRESS, Mac("02:42:ac:11:00:02")),
                        Attr(IFLA_MTU, U32(1450)),
                        Attr(IFLA_NET_NS_FD, U32(42))))));
        AssertBytes(Encode((ref NetlinkWriter w) => RtnetlinkEncoder.CreateLink(ref w, Seq, spec)), expected);
    }

    [Test]
    public void Create_veth_minimal()
    {
        var expected = Msg(RTM_NEWLINK, Create, Seq, IfInfo(AF_UNSPEC, 0),
            Attr(IFLA_IFNAME, Str("a")),
            Nest(IFLA_LINKINFO,
                Attr(IFLA_INFO_KIND, Str("veth")),
                Nest(IFLA_INFO_DATA, Nest(VETH_INFO_PEER, IfInfo(AF_UNSPEC, 0), Attr(IFLA_IFNAME, Str("b"))))));
        AssertBytes(Encode((ref NetlinkWriter w) => RtnetlinkEncoder.CreateLink(ref w, Seq, new VethLinkSpec("a", "b"))), expected);
    }

    [Test]
    public void Create_bridge()
    {
        var expected = Msg(RTM_NEWLINK, Create, Seq, IfInfo(AF_UNSPEC, 0, IFF_UP, IFF_UP),
            Attr(IFLA_IFNAME, Str("cnm-br0")),
            Attr(IFLA_MTU, U32(9000)),
            Nest(IFLA_LINKINFO, Attr(IFLA_INFO_KIND, Str("bridge"))));
        AssertBytes(Encode((ref NetlinkWriter w) => RtnetlinkEncoder.CreateLink(ref w, Seq, new BridgeLinkSpec("cnm-br0") { Up = true, Mtu = 9000 })), expected);
    }

    [Test]
    public void Create_vxlan_ipv4()
    {
        var spec = new VxlanLinkSpec("vx42", 42)
        {
            Group = IPAddress.Parse("10.0.0.2"),
            Local = IPAddress.Parse("10.0.0.1"),
            DeviceIndex = 3,
            Ttl = 64,
            Learning = false,
            Port = 4789,
        };
        var expected = Msg(RTM_NEWLINK, Create, Seq, IfInfo(AF_UNSPEC, 0),
            Attr(IFLA_IFNAME, Str("vx42")),
            Nest(IFLA_LINKINFO,
                Attr(IFLA_INFO_KIND, Str("vxlan")),
                Nest(IFLA_INFO_DATA,
                    Attr(IFLA_VXLAN_ID, U32(42)),
                    Attr(IFLA_VXLAN_GROUP, Ip("10.0.0.2")),
                    Attr(IFLA_VXLAN_LOCAL, Ip("10.0.0.1")),
                    Attr(IFLA_VXLAN_LINK, U32(3)),
                    Attr(IFLA_VXLAN_TTL, U8(64)),
                    Attr(IFLA_VXLAN_LEARNING, U8(0)),
                    Attr(IFLA_VXLAN_PORT, [0x12, 0xB5]))));
        AssertBytes(Encode((ref NetlinkWriter w) => RtnetlinkEncoder.CreateLink(ref w, Seq, spec)), expected);
    }

    [Test]
    public void Create_overlay_vxlan_in_a_namespace_with_proxy()
    {
        // What the overlay driver sends: created directly in the network's namespace, ARP proxy on, learning off.
        var spec = new VxlanLinkSpec("vxlan0", 4097)
        {
            Local = IPAddress.Parse("192.168.77.1"),
            Learning = false,
            Proxy = true,
            Port = 4789,
            Mtu = 1450,
            Namespace = s_ns43,
        };
        var expected = Msg(RTM_NEWLINK, Create, Seq, IfInfo(AF_UNSPEC, 0),
            Attr(IFLA_IFNAME, Str("vxlan0")),
            Attr(IFLA_MTU, U32(1450)),
            Attr(IFLA_NET_NS_FD, U32(43)),
            Nest(IFLA_LINKINFO,
                Attr(IFLA_INFO_KIND, Str("vxlan")),
                Nest(IFLA_INFO_DATA,
                    Attr(IFLA_VXLAN_ID, U32(4097)),
                    Attr(IFLA_VXLAN_LOCAL, Ip("192.168.77.1")),
                    Attr(IFLA_VXLAN_LEARNING, U8(0)),
                    Attr(IFLA_VXLAN_PROXY, U8(1)),
                    Attr(IFLA_VXLAN_PORT, [0x12, 0xB5]))));
        AssertBytes(Encode((ref NetlinkWriter w) => RtnetlinkEncoder.CreateLink(ref w, Seq, spec)), expected);
    }

    [Test]
    public void Vxlan_info_data_has_the_attributes_ip_sends()
    {
        // strace of `ip link add vx0 type vxlan id 42 local 10.0.0.1 nolearning proxy dstport 4789` (iproute2 6.1):
        // IFLA_INFO_DATA carried these bytes. iproute2 puts PROXY first; the kernel reads attributes in any order, so
        // the same attributes with the same payloads is what must hold.
        var fromIp = Convert.FromHexString("05000B0001000000" + "080001002A000000" + "080004000A000001" + "0500070000000000" + "06000F0012B50000");
        var spec = new VxlanLinkSpec("vx0", 42) { Local = IPAddress.Parse("10.0.0.1"), Learning = false, Proxy = true, Port = 4789 };
        var message = Encode((ref NetlinkWriter w) => RtnetlinkEncoder.CreateLink(ref w, Seq, spec));
        var ours = InfoData(message);
        Assert.That(Attributes(ours), Is.EquivalentTo(Attributes(fromIp)));
    }

    /// <summary>The payload of IFLA_LINKINFO/IFLA_INFO_DATA in an RTM_NEWLINK message.</summary>
    private static byte[] InfoData(byte[] message)
    {
        var linkInfo = Attributes(message[32..]).Single(a => a.Type == IFLA_LINKINFO).Payload;
        return Convert.FromHexString(Attributes(Convert.FromHexString(linkInfo)).Single(a => a.Type == IFLA_INFO_DATA).Payload);
    }

    /// <summary>Each attribute as (type, payload hex), padding left out.</summary>
    private static List<(ushort Type, string Payload)> Attributes(byte[] data)
    {
        var list = new List<(ushort, string)>();
        for (var offset = 0; offset + 4 <= data.Length;)
        {
            var length = BitConverter.ToUInt16(data, offset);
            var type = BitConverter.ToUInt16(data, offset + 2);
            list.Add((type, Convert.ToHexString(data, offset + 4, length - 4)));
            offset += (length + 3) & ~3;
        }

        return list;
    }

    [Test]
    public void Create_vxlan_ipv6()
    {
        var spec = new VxlanLinkSpec("vx6", 0xABCDEF) { Group = IPAddress.Parse("ff05::100"), Local = IPAddress.Parse("fd00::1") };
        var expected = Msg(RTM_NEWLINK, Create, Seq, IfInfo(AF_UNSPEC, 0),
            Attr(IFLA_IFNAME, Str("vx6")),
            Nest(IFLA_LINKINFO,
                Attr(IFLA_INFO_KIND, Str("vxlan")),
                Nest(IFLA_INFO_DATA,
                    Attr(IFLA_VXLAN_ID, U32(0xABCDEF)),
                    Attr(IFLA_VXLAN_GROUP6, Ip("ff05::100")),
                    Attr(IFLA_VXLAN_LOCAL6, Ip("fd00::1")))));
        AssertBytes(Encode((ref NetlinkWriter w) => RtnetlinkEncoder.CreateLink(ref w, Seq, spec)), expected);
    }

    [Test]
    public void Create_macvlan()
    {
        var expected = Msg(RTM_NEWLINK, Create, Seq, IfInfo(AF_UNSPEC, 0),
            Attr(IFLA_IFNAME, Str("mv0")),
            Attr(IFLA_NET_NS_FD, U32(43)),
            Attr(IFLA_LINK, U32(2)),
            Nest(IFLA_LINKINFO,
                Attr(IFLA_INFO_KIND, Str("macvlan")),
                Nest(IFLA_INFO_DATA, Attr(IFLA_MACVLAN_MODE, U32(MACVLAN_MODE_VEPA)))));
        AssertBytes(Encode((ref NetlinkWriter w) => RtnetlinkEncoder.CreateLink(ref w, Seq, new MacvlanLinkSpec("mv0", 2) { Mode = MacvlanMode.Vepa, Namespace = s_ns43 })), expected);
    }

    [Test]
    public void Create_ipvlan()
    {
        var expected = Msg(RTM_NEWLINK, Create, Seq, IfInfo(AF_UNSPEC, 0),
            Attr(IFLA_IFNAME, Str("ipv0")),
            Attr(IFLA_LINK, U32(2)),
            Nest(IFLA_LINKINFO,
                Attr(IFLA_INFO_KIND, Str("ipvlan")),
                Nest(IFLA_INFO_DATA, Attr(IFLA_IPVLAN_MODE, U16(IPVLAN_MODE_L3)))));
        AssertBytes(Encode((ref NetlinkWriter w) => RtnetlinkEncoder.CreateLink(ref w, Seq, new IpvlanLinkSpec("ipv0", 2) { Mode = IpvlanMode.L3 })), expected);
    }

    // Every ipvlan request the ipvlan driver sends: each mode with each flag (IPVLAN_F_* from if_link.h; "bridge" is no
    // flag, and no IFLA_IPVLAN_FLAGS is sent for it, the kernel's default), created in the sandbox's namespace, with MTU.
    [TestCase(IpvlanMode.L2, IPVLAN_MODE_L2, IpvlanFlags.Bridge, (ushort)0)]
    [TestCase(IpvlanMode.L2, IPVLAN_MODE_L2, IpvlanFlags.Private, IPVLAN_F_PRIVATE)]
    [TestCase(IpvlanMode.L2, IPVLAN_MODE_L2, IpvlanFlags.Vepa, IPVLAN_F_VEPA)]
    [TestCase(IpvlanMode.L3, IPVLAN_MODE_L3, IpvlanFlags.Bridge, (ushort)0)]
    [TestCase(IpvlanMode.L3, IPVLAN_MODE_L3, IpvlanFlags.Private, IPVLAN_F_PRIVATE)]
    [TestCase(IpvlanMode.L3, IPVLAN_MODE_L3, IpvlanFlags.Vepa, IPVLAN_F_VEPA)]
    [TestCase(IpvlanMode.L3S, IPVLAN_MODE_L3S, IpvlanFlags.Bridge, (ushort)0)]
    [TestCase(IpvlanMode.L3S, IPVLAN_MODE_L3S, IpvlanFlags.Private, IPVLAN_F_PRIVATE)]
    [TestCase(IpvlanMode.L3S, IPVLAN_MODE_L3S, IpvlanFlags.Vepa, IPVLAN_F_VEPA)]
    public void Create_ipvlan_in_namespace_with_mtu(IpvlanMode mode, ushort kernelMode, IpvlanFlags flags, ushort kernelFlags)
    {
        var data = kernelFlags == 0
            ? Nest(IFLA_INFO_DATA, Attr(IFLA_IPVLAN_MODE, U16(kernelMode)))
            : Nest(IFLA_INFO_DATA, Attr(IFLA_IPVLAN_MODE, U16(kernelMode)), Attr(IFLA_IPVLAN_FLAGS, U16(kernelFlags)));
        var expected = Msg(RTM_NEWLINK, Create, Seq, IfInfo(AF_UNSPEC, 0),
            Attr(IFLA_IFNAME, Str("ipv1a2b3c4")),
            Attr(IFLA_MTU, U32(1450)),
            Attr(IFLA_NET_NS_FD, U32(42)),
            Attr(IFLA_LINK, U32(7)),
            Nest(IFLA_LINKINFO, Attr(IFLA_INFO_KIND, Str("ipvlan")), data));
        var spec = new IpvlanLinkSpec("ipv1a2b3c4", 7) { Mode = mode, Flags = flags, Namespace = s_ns42, Mtu = 1450 };
        AssertBytes(Encode((ref NetlinkWriter w) => RtnetlinkEncoder.CreateLink(ref w, Seq, spec)), expected);
    }

    [Test]
    public void Create_ipvlan_l2_default_sends_mode_0_and_no_flags()
    {
        var expected = Msg(RTM_NEWLINK, Create, Seq, IfInfo(AF_UNSPEC, 0),
            Attr(IFLA_IFNAME, Str("ipv0")),
            Attr(IFLA_LINK, U32(2)),
            Nest(IFLA_LINKINFO,
                Attr(IFLA_INFO_KIND, Str("ipvlan")),
                Nest(IFLA_INFO_DATA, Attr(IFLA_IPVLAN_MODE, U16(IPVLAN_MODE_L2)))));
        AssertBytes(Encode((ref NetlinkWriter w) => RtnetlinkEncoder.CreateLink(ref w, Seq, new IpvlanLinkSpec("ipv0", 2))), expected);
    }

    [TestCase(MacvlanMode.Private, MACVLAN_MODE_PRIVATE)]
    [TestCase(MacvlanMode.Passthru, MACVLAN_MODE_PASSTHRU)]
    [TestCase(MacvlanMode.Bridge, MACVLAN_MODE_BRIDGE)]
    public void Create_macvlan_in_namespace_with_mtu(MacvlanMode mode, uint kernelMode)
    {
        var expected = Msg(RTM_NEWLINK, Create, Seq, IfInfo(AF_UNSPEC, 0),
            Attr(IFLA_IFNAME, Str("mv1a2b3c4")),
            Attr(IFLA_MTU, U32(1500)),
            Attr(IFLA_NET_NS_FD, U32(43)),
            Attr(IFLA_LINK, U32(9)),
            Nest(IFLA_LINKINFO,
                Attr(IFLA_INFO_KIND, Str("macvlan")),
                Nest(IFLA_INFO_DATA, Attr(IFLA_MACVLAN_MODE, U32(kernelMode)))));
        var spec = new MacvlanLinkSpec("mv1a2b3c4", 9) { Mode = mode, Namespace = s_ns43, Mtu = 1500 };
        AssertBytes(Encode((ref NetlinkWriter w) => RtnetlinkEncoder.CreateLink(ref w, Seq, spec)), expected);
    }

    [TestCase((ushort)1)]
    [TestCase((ushort)100)]
    [TestCase((ushort)4094)]
    public void Create_vlan_on_parent_with_mtu(ushort id)
    {
        var expected = Msg(RTM_NEWLINK, Create, Seq, IfInfo(AF_UNSPEC, 0),
            Attr(IFLA_IFNAME, Str("eth1." + id)),
            Attr(IFLA_MTU, U32(9000)),
            Attr(IFLA_LINK, U32(11)),
            Nest(IFLA_LINKINFO,
                Attr(IFLA_INFO_KIND, Str("vlan")),
                Nest(IFLA_INFO_DATA, Attr(IFLA_VLAN_ID, U16(id)))));
        AssertBytes(Encode((ref NetlinkWriter w) => RtnetlinkEncoder.CreateLink(ref w, Seq, new VlanLinkSpec("eth1." + id, 11, id) { Mtu = 9000 })), expected);
    }

    [Test]
    public void Create_vlan()
    {
        var expected = Msg(RTM_NEWLINK, Create, Seq, IfInfo(AF_UNSPEC, 0),
            Attr(IFLA_IFNAME, Str("eth0.100")),
            Attr(IFLA_LINK, U32(2)),
            Nest(IFLA_LINKINFO,
                Attr(IFLA_INFO_KIND, Str("vlan")),
                Nest(IFLA_INFO_DATA, Attr(IFLA_VLAN_ID, U16(100)))));
        AssertBytes(Encode((ref NetlinkWriter w) => RtnetlinkEncoder.CreateLink(ref w, Seq, new VlanLinkSpec("eth0.100", 2, 100))), expected);
    }

    [Test]
    public void Create_dummy_in_namespace()
    {
        var expected = Msg(RTM_NEWLINK, Create, Seq, IfInfo(AF_UNSPEC, 0),
            Attr(IFLA_IFNAME, Str("dummy0")),
            Attr(IFLA_NET_NS_FD, U32(42)),
            Nest(IFLA_LINKINFO, Attr(IFLA_INFO_KIND, Str("dummy"))));
        AssertBytes(Encode((ref NetlinkWriter w) => RtnetlinkEncoder.CreateLink(ref w, Seq, new DummyLinkSpec("dummy0") { Namespace = s_ns42 })), expected);
    }

    [Test]
    public void Set_link_down() =>
        AssertBytes(
            Encode((ref NetlinkWriter w) => RtnetlinkEncoder.SetLink(ref w, Seq, 9, LinkChange.Down, 0, null, null, null)),
            Msg(RTM_SETLINK, Acked, Seq, IfInfo(AF_UNSPEC, 9, 0, IFF_UP)));

    [Test]
    public void Set_link_up_by_name() =>
        AssertBytes(
            Encode((ref NetlinkWriter w) => RtnetlinkEncoder.SetLink(ref w, Seq, "vh0", LinkChange.Up, 0, null, null, null)),
            Msg(RTM_SETLINK, Acked, Seq, IfInfo(AF_UNSPEC, 0, IFF_UP, IFF_UP), Attr(IFLA_IFNAME, Str("vh0"))));

    [Test]
    public void Set_link_mtu() =>
        AssertBytes(
            Encode((ref NetlinkWriter w) => RtnetlinkEncoder.SetLink(ref w, Seq, 9, LinkChange.Mtu, 1280, null, null, null)),
            Msg(RTM_SETLINK, Acked, Seq, IfInfo(AF_UNSPEC, 9), Attr(IFLA_MTU, U32(1280))));

    [Test]
    public void Set_link_mac() =>
        AssertBytes(
            Encode((ref NetlinkWriter w) => RtnetlinkEncoder.SetLink(ref w, Seq, 9, LinkChange.Mac, 0, PhysicalAddress.Parse("02-00-00-00-00-09"), null, null)),
            Msg(RTM_SETLINK, Acked, Seq, IfInfo(AF_UNSPEC, 9), Attr(IFLA_ADDRESS, Mac("02:00:00:00:00:09"))));

    [Test]
    public void Set_link_name() =>
        AssertBytes(
            Encode((ref NetlinkWriter w) => RtnetlinkEncoder.SetLink(ref w, Seq, 9, LinkChange.Name, 0, null, "eth1", null)),
            Msg(RTM_SETLINK, Acked, Seq, IfInfo(AF_UNSPEC, 9), Attr(IFLA_IFNAME, Str("eth1"))));

    [Test]
    public void Set_link_master_and_nomaster()
    {
        AssertBytes(
            Encode((ref NetlinkWriter w) => RtnetlinkEncoder.SetLink(ref w, Seq, 9, LinkChange.Master, 4, null, null, null)),
            Msg(RTM_SETLINK, Acked, Seq, IfInfo(AF_UNSPEC, 9), Attr(IFLA_MASTER, U32(4))));
        AssertBytes(
            Encode((ref NetlinkWriter w) => RtnetlinkEncoder.SetLink(ref w, Seq, 9, LinkChange.Master, 0, null, null, null)),
            Msg(RTM_SETLINK, Acked, Seq, IfInfo(AF_UNSPEC, 9), Attr(IFLA_MASTER, U32(0))));
    }

    [Test]
    public void Set_link_namespace() =>
        AssertBytes(
            Encode((ref NetlinkWriter w) => RtnetlinkEncoder.SetLink(ref w, Seq, 9, LinkChange.Namespace, 0, null, null, s_ns42)),
            Msg(RTM_SETLINK, Acked, Seq, IfInfo(AF_UNSPEC, 9), Attr(IFLA_NET_NS_FD, U32(42))));

    [Test]
    public void Set_link_ipv6_address_generation_mode() =>
        AssertBytes(
            Encode((ref NetlinkWriter w) => RtnetlinkEncoder.SetLink(ref w, Seq, 9, LinkChange.IPv6AddressGeneration, (uint)IPv6AddressGenerationMode.None, null, null, null)),
            Msg(RTM_SETLINK, Acked, Seq, IfInfo(AF_UNSPEC, 9), Nest(IFLA_AF_SPEC | NLA_F_NESTED, Nest(AF_INET6 | NLA_F_NESTED, Attr(IFLA_INET6_ADDR_GEN_MODE, U8(1))))));

    [Test]
    public void Set_bridge_port_hairpin()
    {
        AssertBytes(
            Encode((ref NetlinkWriter w) => RtnetlinkEncoder.SetBridgePortHairpin(ref w, Seq, 9, true)),
            Msg(RTM_SETLINK, Acked, Seq, IfInfo(AF_BRIDGE, 9), Nest(IFLA_PROTINFO | NLA_F_NESTED, Attr(IFLA_BRPORT_MODE, U8(1)))));
        AssertBytes(
            Encode((ref NetlinkWriter w) => RtnetlinkEncoder.SetBridgePortHairpin(ref w, Seq, 9, false)),
            Msg(RTM_SETLINK, Acked, Seq, IfInfo(AF_BRIDGE, 9), Nest(IFLA_PROTINFO | NLA_F_NESTED, Attr(IFLA_BRPORT_MODE, U8(0)))));
    }

    [Test]
    public void Delete_link_by_index_and_name()
    {
        AssertBytes(
            Encode((ref NetlinkWriter w) => RtnetlinkEncoder.DeleteLink(ref w, Seq, 9)),
            Msg(RTM_DELLINK, Acked, Seq, IfInfo(AF_UNSPEC, 9)));
        AssertBytes(
            Encode((ref NetlinkWriter w) => RtnetlinkEncoder.DeleteLink(ref w, Seq, "vh0")),
            Msg(RTM_DELLINK, Acked, Seq, IfInfo(AF_UNSPEC, 0), Attr(IFLA_IFNAME, Str("vh0"))));
    }

    [Test]
    public void Get_link_and_dump_links()
    {
        AssertBytes(
            Encode((ref NetlinkWriter w) => RtnetlinkEncoder.GetLink(ref w, Seq, "lo")),
            Msg(RTM_GETLINK, NLM_F_REQUEST, Seq, IfInfo(AF_UNSPEC, 0), Attr(IFLA_IFNAME, Str("lo")), Attr(IFLA_EXT_MASK, U32(RTEXT_FILTER_SKIP_STATS))));
        AssertBytes(
            Encode((ref NetlinkWriter w) => RtnetlinkEncoder.DumpLinks(ref w, Seq)),
            Msg(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, Seq, IfInfo(AF_UNSPEC, 0), Attr(IFLA_EXT_MASK, U32(RTEXT_FILTER_SKIP_STATS))));
    }

    [Test]
    public void Add_address_ipv4_computes_broadcast()
    {
        var spec = new AddressSpec(3, IPAddress.Parse("172.17.0.2"), 16) { Label = "eth0" };
        var expected = Msg(RTM_NEWADDR, Create, Seq, IfAddr(AF_INET, 16, 0, 0, 3),
            Attr(IFA_LOCAL, Ip("172.17.0.2")),
            Attr(IFA_ADDRESS, Ip("172.17.0.2")),
            Attr(IFA_BROADCAST, Ip("172.17.255.255")),
            Attr(IFA_LABEL, Str("eth0")));
        AssertBytes(Encode((ref NetlinkWriter w) => RtnetlinkEncoder.Address(ref w, Seq, spec, add: true)), expected);
    }

    [Test]
    public void Add_address_ipv4_slash_32_has_no_broadcast()
    {
        var expected = Msg(RTM_NEWADDR, Create, Seq, IfAddr(AF_INET, 32, 0, 0, 3),
            Attr(IFA_LOCAL, Ip("10.1.2.3")),
            Attr(IFA_ADDRESS, Ip("10.1.2.3")));
        AssertBytes(Encode((ref NetlinkWriter w) => RtnetlinkEncoder.Address(ref w, Seq, new AddressSpec(3, IPAddress.Parse("10.1.2.3"), 32), add: true)), expected);
    }

    [Test]
    public void Add_address_ipv6_nodad()
    {
        var spec = new AddressSpec(3, IPAddress.Parse("fd00::2"), 64) { Flags = AddressFlags.NoDad };
        var expected = Msg(RTM_NEWADDR, Create, Seq, IfAddr(AF_INET6, 64, (byte)IFA_F_NODAD, 0, 3),
            Attr(IFA_ADDRESS, Ip("fd00::2")),
            Attr(IFA_FLAGS, U32(IFA_F_NODAD)));
        AssertBytes(Encode((ref NetlinkWriter w) => RtnetlinkEncoder.Address(ref w, Seq, spec, add: true)), expected);
    }

    [Test]
    public void Delete_address()
    {
        var expected = Msg(RTM_DELADDR, Acked, Seq, IfAddr(AF_INET, 24, 0, 0, 3),
            Attr(IFA_LOCAL, Ip("10.0.0.2")),
            Attr(IFA_ADDRESS, Ip("10.0.0.2")));
        AssertBytes(Encode((ref NetlinkWriter w) => RtnetlinkEncoder.Address(ref w, Seq, new AddressSpec(3, IPAddress.Parse("10.0.0.2"), 24), add: false)), expected);
    }

    [Test]
    public void Add_route_with_gateway_table_metric_onlink()
    {
        var spec = new RouteSpec(IPNetwork.Parse("10.20.0.0/16"))
        {
            Gateway = IPAddress.Parse("192.168.1.1"),
            OutputIndex = 3,
            Table = 100,
            Metric = 50,
            OnLink = true,
        };
        var expected = Msg(RTM_NEWROUTE, Create, Seq, RtMsg(AF_INET, 16, 100, RTPROT_BOOT, RT_SCOPE_UNIVERSE, RTN_UNICAST, RTNH_F_ONLINK),
            Attr(RTA_DST, Ip("10.20.0.0")),
            Attr(RTA_GATEWAY, Ip("192.168.1.1")),
            Attr(RTA_OIF, U32(3)),
            Attr(RTA_PRIORITY, U32(50)));
        AssertBytes(Encode((ref NetlinkWriter w) => RtnetlinkEncoder.AddRoute(ref w, Seq, spec)), expected);
    }

    [Test]
    public void Add_default_route_in_large_table()
    {
        var spec = new RouteSpec(IPNetwork.Parse("0.0.0.0/0")) { Gateway = IPAddress.Parse("172.17.0.1"), Table = 1000 };
        var expected = Msg(RTM_NEWROUTE, Create, Seq, RtMsg(AF_INET, 0, 0, RTPROT_BOOT, RT_SCOPE_UNIVERSE, RTN_UNICAST, 0),
            Attr(RTA_TABLE, U32(1000)),
            Attr(RTA_GATEWAY, Ip("172.17.0.1")));
        AssertBytes(Encode((ref NetlinkWriter w) => RtnetlinkEncoder.AddRoute(ref w, Seq, spec)), expected);
    }

    [Test]
    public void Replace_link_scope_route_ipv6()
    {
        var spec = new RouteSpec(IPNetwork.Parse("fd00:1::/64")) { OutputIndex = 4 };
        var expected = Msg(RTM_NEWROUTE, Replace, Seq, RtMsg(AF_INET6, 64, RT_TABLE_MAIN, RTPROT_BOOT, RT_SCOPE_LINK, RTN_UNICAST, 0),
            Attr(RTA_DST, Ip("fd00:1::")),
            Attr(RTA_OIF, U32(4)));
        AssertBytes(Encode((ref NetlinkWriter w) => RtnetlinkEncoder.ReplaceRoute(ref w, Seq, spec)), expected);
    }

    [Test]
    public void Prepend_default_route_marked_static()
    {
        // ip route prepend: NLM_F_CREATE without NLM_F_EXCL (netlink.h: "Append NLM_F_CREATE").
        var spec = new RouteSpec(IPNetwork.Parse("0.0.0.0/0")) { Gateway = IPAddress.Parse("172.18.0.1"), OutputIndex = 5, Protocol = RouteProtocol.Static };
        var expected = Msg(RTM_NEWROUTE, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE, Seq, RtMsg(AF_INET, 0, RT_TABLE_MAIN, RTPROT_STATIC, RT_SCOPE_UNIVERSE, RTN_UNICAST, 0),
            Attr(RTA_GATEWAY, Ip("172.18.0.1")),
            Attr(RTA_OIF, U32(5)));
        AssertBytes(Encode((ref NetlinkWriter w) => RtnetlinkEncoder.PrependRoute(ref w, Seq, spec)), expected);
    }

    [Test]
    public void Prepend_connected_ipv6_default_route()
    {
        var spec = new RouteSpec(IPNetwork.Parse("::/0")) { OutputIndex = 6, Scope = RouteScope.Link, Protocol = RouteProtocol.Static };
        var expected = Msg(RTM_NEWROUTE, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE, Seq, RtMsg(AF_INET6, 0, RT_TABLE_MAIN, RTPROT_STATIC, RT_SCOPE_LINK, RTN_UNICAST, 0),
            Attr(RTA_OIF, U32(6)));
        AssertBytes(Encode((ref NetlinkWriter w) => RtnetlinkEncoder.PrependRoute(ref w, Seq, spec)), expected);
    }

    [Test]
    public void Delete_route_matching_its_protocol()
    {
        var spec = new RouteSpec(IPNetwork.Parse("::/0")) { Gateway = IPAddress.Parse("fd00::1"), OutputIndex = 5, Protocol = RouteProtocol.Static, MatchProtocolOnDelete = true };
        var expected = Msg(RTM_DELROUTE, Acked, Seq, RtMsg(AF_INET6, 0, RT_TABLE_MAIN, RTPROT_STATIC, RT_SCOPE_NOWHERE, RTN_UNICAST, 0),
            Attr(RTA_GATEWAY, Ip("fd00::1")),
            Attr(RTA_OIF, U32(5)));
        AssertBytes(Encode((ref NetlinkWriter w) => RtnetlinkEncoder.DeleteRoute(ref w, Seq, spec)), expected);
    }

    [Test]
    public void Delete_route()
    {
        var spec = new RouteSpec(IPNetwork.Parse("10.20.0.0/16")) { Gateway = IPAddress.Parse("192.168.1.1") };
        var expected = Msg(RTM_DELROUTE, Acked, Seq, RtMsg(AF_INET, 16, RT_TABLE_MAIN, 0, RT_SCOPE_NOWHERE, RTN_UNICAST, 0),
            Attr(RTA_DST, Ip("10.20.0.0")),
            Attr(RTA_GATEWAY, Ip("192.168.1.1")));
        AssertBytes(Encode((ref NetlinkWriter w) => RtnetlinkEncoder.DeleteRoute(ref w, Seq, spec)), expected);
    }

    [Test]
    public void Add_neighbour_permanent()
    {
        var spec = new NeighbourSpec(3, IPAddress.Parse("10.0.0.9"), PhysicalAddress.Parse("02-00-00-00-00-09"));
        var expected = Msg(RTM_NEWNEIGH, Create, Seq, NdMsg(AF_INET, 3, NUD_PERMANENT, 0),
            Attr(NDA_DST, Ip("10.0.0.9")),
            Attr(NDA_LLADDR, Mac("02:00:00:00:00:09")));
        AssertBytes(Encode((ref NetlinkWriter w) => RtnetlinkEncoder.AddNeighbour(ref w, Seq, spec)), expected);
    }

    [Test]
    public void Delete_neighbour_ipv6()
    {
        var spec = new NeighbourSpec(3, IPAddress.Parse("fd00::9"), null);
        var expected = Msg(RTM_DELNEIGH, Acked, Seq, NdMsg(AF_INET6, 3, NUD_PERMANENT, 0), Attr(NDA_DST, Ip("fd00::9")));
        AssertBytes(Encode((ref NetlinkWriter w) => RtnetlinkEncoder.DeleteNeighbour(ref w, Seq, spec)), expected);
    }

    [Test]
    public void Add_fdb_entry_for_vxlan_peer()
    {
        var spec = new FdbEntrySpec(7, PhysicalAddress.Parse("02-42-0a-00-00-05"))
        {
            Destination = IPAddress.Parse("192.168.0.12"),
            Vni = 42,
            Port = 4789,
            Vlan = 10,
        };
        var expected = Msg(RTM_NEWNEIGH, Create, Seq, NdMsg(AF_BRIDGE, 7, NUD_PERMANENT, NTF_SELF),
            Attr(NDA_LLADDR, Mac("02:42:0a:00:00:05")),
            Attr(NDA_DST, Ip("192.168.0.12")),
            Attr(NDA_VLAN, U16(10)),
            Attr(NDA_PORT, Be16(4789)),
            Attr(NDA_VNI, U32(42)));
        AssertBytes(Encode((ref NetlinkWriter w) => RtnetlinkEncoder.Fdb(ref w, Seq, spec, add: true)), expected);
    }

    [Test]
    public void Replace_fdb_entry_like_bridge_fdb_replace()
    {
        // strace of `bridge fdb replace 02:42:0a:00:00:05 dev vx0 dst 192.168.0.12 self permanent` (iproute2 6.1):
        // RTM_NEWNEIGH, NLM_F_REQUEST|NLM_F_ACK|NLM_F_REPLACE|NLM_F_CREATE, AF_BRIDGE, NTF_SELF, NDA_LLADDR, NDA_DST.
        // (bridge also sets NUD_NOARP in the state; the kernel treats NUD_PERMANENT alone the same for an FDB entry.)
        var spec = new FdbEntrySpec(7, PhysicalAddress.Parse("02-42-0a-00-00-05")) { Destination = IPAddress.Parse("192.168.0.12"), Replace = true };
        AssertBytes(
            Encode((ref NetlinkWriter w) => RtnetlinkEncoder.Fdb(ref w, Seq, spec, add: true)),
            Msg(RTM_NEWNEIGH, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE, Seq, NdMsg(AF_BRIDGE, 7, NUD_PERMANENT, NTF_SELF),
                Attr(NDA_LLADDR, Mac("02:42:0a:00:00:05")),
                Attr(NDA_DST, Ip("192.168.0.12"))));
    }

    [Test]
    public void Append_and_delete_fdb_entry()
    {
        var spec = new FdbEntrySpec(7, PhysicalAddress.Parse("00-00-00-00-00-00")) { Destination = IPAddress.Parse("192.168.0.13"), Append = true };
        AssertBytes(
            Encode((ref NetlinkWriter w) => RtnetlinkEncoder.Fdb(ref w, Seq, spec, add: true)),
            Msg(RTM_NEWNEIGH, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_APPEND, Seq, NdMsg(AF_BRIDGE, 7, NUD_PERMANENT, NTF_SELF),
                Attr(NDA_LLADDR, Mac("00:00:00:00:00:00")),
                Attr(NDA_DST, Ip("192.168.0.13"))));
        AssertBytes(
            Encode((ref NetlinkWriter w) => RtnetlinkEncoder.Fdb(ref w, Seq, spec, add: false)),
            Msg(RTM_DELNEIGH, Acked, Seq, NdMsg(AF_BRIDGE, 7, NUD_PERMANENT, NTF_SELF),
                Attr(NDA_LLADDR, Mac("00:00:00:00:00:00")),
                Attr(NDA_DST, Ip("192.168.0.13"))));
    }

    [Test]
    public void Dump_requests()
    {
        AssertBytes(
            Encode((ref NetlinkWriter w) => RtnetlinkEncoder.DumpAddresses(ref w, Seq, System.Net.Sockets.AddressFamily.InterNetwork)),
            Msg(RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, Seq, IfAddr(AF_INET, 0, 0, 0, 0)));
        AssertBytes(
            Encode((ref NetlinkWriter w) => RtnetlinkEncoder.DumpRoutes(ref w, Seq, System.Net.Sockets.AddressFamily.InterNetworkV6)),
            Msg(RTM_GETROUTE, NLM_F_REQUEST | NLM_F_DUMP, Seq, RtMsg(AF_INET6, 0, 0, 0, 0, 0, 0)));
        AssertBytes(
            Encode((ref NetlinkWriter w) => RtnetlinkEncoder.DumpNeighbours(ref w, Seq, AF_BRIDGE)),
            Msg(RTM_GETNEIGH, NLM_F_REQUEST | NLM_F_DUMP, Seq, NdMsg(AF_BRIDGE, 0, 0, 0)));
    }

    [Test]
    public void Batch_numbers_messages_and_concatenates_them()
    {
        using var batch = new RtnetlinkBatch()
            .CreateLink(new VethLinkSpec("a", "b"))
            .SetLinkMaster("a", 4)
            .SetLinkUp("a");
        var bytes = new byte[batch.Bytes.Length];
        batch.CopyTo(bytes, 100, 0);
        var expected = Concat(
            Msg(RTM_NEWLINK, Create, 100, IfInfo(AF_UNSPEC, 0),
                Attr(IFLA_IFNAME, Str("a")),
                Nest(IFLA_LINKINFO,
                    Attr(IFLA_INFO_KIND, Str("veth")),
                    Nest(IFLA_INFO_DATA, Nest(VETH_INFO_PEER, IfInfo(AF_UNSPEC, 0), Attr(IFLA_IFNAME, Str("b")))))),
            Msg(RTM_SETLINK, Acked, 101, IfInfo(AF_UNSPEC, 0), Attr(IFLA_IFNAME, Str("a")), Attr(IFLA_MASTER, U32(4))),
            Msg(RTM_SETLINK, Acked, 102, IfInfo(AF_UNSPEC, 0, IFF_UP, IFF_UP), Attr(IFLA_IFNAME, Str("a"))));
        Assert.That(batch.Count, Is.EqualTo(3));
        AssertBytes(bytes, expected);
    }

    [Test]
    public void Writer_grows_a_pooled_buffer()
    {
        using var buffer = new GrowableBuffer(16);
        var writer = new NetlinkWriter(buffer);
        var msg = writer.BeginMessage(RTM_NEWLINK, 0, 1);
        for (var i = 0; i < 500; i++)
        {
            writer.WriteU32(1, (uint)i);
        }

        writer.EndMessage(msg);
        Assert.That(writer.Length, Is.EqualTo(16 + (500 * 8)));
        Assert.That(BitConverter.ToUInt32(buffer.Array, 0), Is.EqualTo(16 + (500 * 8)));
    }

    [Test]
    public void Fixed_buffer_overflow_is_an_invalid_operation()
    {
        Assert.Throws<InvalidOperationException>(() =>
        {
            var writer = new NetlinkWriter(new byte[20]);
            writer.BeginMessage(RTM_NEWLINK, 0, 1);
            writer.WriteU32(1, 1);
        });
    }
}

public class BatchLifetimeTests
{
    [Test]
    public void A_disposed_batch_cannot_be_extended()
    {
        var batch = new RtnetlinkBatch().SetLinkUp(3);
        batch.Dispose();
        Assert.Throws<ObjectDisposedException>(() => batch.SetLinkUp(4));
        Assert.Throws<ObjectDisposedException>(batch.ThrowIfDisposed);
    }

    [Test]
    public void A_batch_holds_namespace_handles_open_until_disposed()
    {
        var handle = new Microsoft.Win32.SafeHandles.SafeFileHandle(12345, ownsHandle: false);
        var batch = new RtnetlinkBatch().CreateLink(new BridgeLinkSpec("b0") { Namespace = handle });
        handle.Dispose();
        Assert.That(handle.IsClosed, Is.False, "the batch still references the fd it encoded");
        batch.Dispose();
        Assert.That(handle.IsClosed, Is.True);
    }
}
