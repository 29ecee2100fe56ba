using System.Buffers.Binary;
using System.Text;

namespace CnmSharp.Netlink.Tests.Support;

/// <summary>
/// An independent, deliberately naive netlink encoder for golden tests: byte arrays glued together, with the
/// constants copied from the UAPI headers. It shares no code with the library's writer.
/// </summary>
internal static class Hand
{
    // include/uapi/linux/netlink.h
    public const ushort NLM_F_REQUEST = 0x01;
    public const ushort NLM_F_ACK = 0x04;
    public const ushort NLM_F_ROOT = 0x100;
    public const ushort NLM_F_MATCH = 0x200;
    public const ushort NLM_F_DUMP = NLM_F_ROOT | NLM_F_MATCH;
    public const ushort NLM_F_REPLACE = 0x100;
    public const ushort NLM_F_EXCL = 0x200;
    public const ushort NLM_F_CREATE = 0x400;
    public const ushort NLM_F_APPEND = 0x800;
    public const ushort NLA_F_NESTED = 1 << 15;

    // include/uapi/linux/rtnetlink.h
    public const ushort RTM_NEWLINK = 16;
    public const ushort RTM_DELLINK = 17;
    public const ushort RTM_GETLINK = 18;
    public const ushort RTM_SETLINK = 19;
    public const ushort RTM_NEWADDR = 20;
    public const ushort RTM_DELADDR = 21;
    public const ushort RTM_GETADDR = 22;
    public const ushort RTM_NEWROUTE = 24;
    public const ushort RTM_DELROUTE = 25;
    public const ushort RTM_GETROUTE = 26;
    public const ushort RTM_NEWNEIGH = 28;
    public const ushort RTM_DELNEIGH = 29;
    public const ushort RTM_GETNEIGH = 30;
    public const byte RT_TABLE_MAIN = 254;
    public const byte RTPROT_BOOT = 3;
    public const byte RTPROT_STATIC = 4;
    public const byte RT_SCOPE_UNIVERSE = 0;
    public const byte RT_SCOPE_LINK = 253;
    public const byte RT_SCOPE_NOWHERE = 255;
    public const byte RTN_UNICAST = 1;
    public const uint RTNH_F_ONLINK = 4;
    public const ushort RTA_DST = 1;
    public const ushort RTA_OIF = 4;
    public const ushort RTA_GATEWAY = 5;
    public const ushort RTA_PRIORITY = 6;
    public const ushort RTA_TABLE = 15;

    // include/linux/socket.h, include/uapi/linux/if.h
    public const byte AF_UNSPEC = 0;
    public const byte AF_INET = 2;
    public const byte AF_BRIDGE = 7;
    public const byte AF_INET6 = 10;
    public const uint IFF_UP = 0x1;

    // include/uapi/linux/if_link.h
    public const ushort IFLA_ADDRESS = 1;
    public const ushort IFLA_IFNAME = 3;
    public const ushort IFLA_MTU = 4;
    public const ushort IFLA_LINK = 5;
    public const ushort IFLA_MASTER = 10;
    public const ushort IFLA_PROTINFO = 12;
    public const ushort IFLA_LINKINFO = 18;
    public const ushort IFLA_NET_NS_FD = 28;
    public const ushort IFLA_EXT_MASK = 29;
    public const ushort IFLA_AF_SPEC = 26;
    public const ushort IFLA_INET6_ADDR_GEN_MODE = 8;
    public const ushort IFLA_INFO_KIND = 1;
    public const ushort IFLA_INFO_DATA = 2;
    public const ushort IFLA_BRPORT_MODE = 4;
    public const ushort IFLA_VXLAN_ID = 1;
    public const ushort IFLA_VXLAN_GROUP = 2;
    public const ushort IFLA_VXLAN_LINK = 3;
    public const ushort IFLA_VXLAN_LOCAL = 4;
    public const ushort IFLA_VXLAN_TTL = 5;
    public const ushort IFLA_VXLAN_LEARNING = 7;
    public const ushort IFLA_VXLAN_PROXY = 11;
    public const ushort IFLA_VXLAN_PORT = 15;
    public const ushort IFLA_VXLAN_GROUP6 = 16;
    public const ushort IFLA_VXLAN_LOCAL6 = 17;
    public const ushort IFLA_MACVLAN_MODE = 1;
    public const uint MACVLAN_MODE_BRIDGE = 4;
    public const uint MACVLAN_MODE_VEPA = 2;
    public const uint MACVLAN_MODE_PRIVATE = 1;
    public const uint MACVLAN_MODE_PASSTHRU = 8;
    public const ushort IFLA_IPVLAN_MODE = 1;
    public const ushort IFLA_IPVLAN_FLAGS = 2;
    public const ushort IPVLAN_MODE_L2 = 0;
    public const ushort IPVLAN_MODE_L3 = 1;
    public const ushort IPVLAN_MODE_L3S = 2;
    public const ushort IPVLAN_F_PRIVATE = 0x01;
    public const ushort IPVLAN_F_VEPA = 0x02;
    public const ushort IFLA_VLAN_ID = 1;
    public const uint RTEXT_FILTER_SKIP_STATS = 1 << 3;

    // include/uapi/linux/veth.h
    public const ushort VETH_INFO_PEER = 1;

    // include/uapi/linux/if_addr.h
    public const ushort IFA_ADDRESS = 1;
    public const ushort IFA_LOCAL = 2;
    public const ushort IFA_LABEL = 3;
    public const ushort IFA_BROADCAST = 4;
    public const ushort IFA_FLAGS = 8;
    public const uint IFA_F_NODAD = 0x02;

    // include/uapi/linux/neighbour.h
    public const ushort NDA_DST = 1;
    public const ushort NDA_LLADDR = 2;
    public const ushort NDA_VLAN = 5;
    public const ushort NDA_PORT = 6;
    public const ushort NDA_VNI = 7;
    public const byte NTF_SELF = 1 << 1;
    public const ushort NUD_PERMANENT = 0x80;

    public static byte[] Msg(ushort type, ushort flags, uint seq, byte[] familyHeader, params byte[][] attributes)
    {
        var body = Concat([familyHeader, .. attributes]);
        var header = new byte[16];
        BinaryPrimitives.WriteUInt32LittleEndian(header, (uint)(16 + body.Length));
        BinaryPrimitives.WriteUInt16LittleEndian(header.AsSpan(4), type);
        BinaryPrimitives.WriteUInt16LittleEndian(header.AsSpan(6), flags);
        BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(8), seq);
        return Concat(header, body);
    }

    public static byte[] Attr(ushort type, byte[] payload)
    {
        var length = 4 + payload.Length;
        var padded = (length + 3) / 4 * 4;
        var a = new byte[padded];
        BinaryPrimitives.WriteUInt16LittleEndian(a, (ushort)length);
        BinaryPrimitives.WriteUInt16LittleEndian(a.AsSpan(2), type);
        payload.CopyTo(a, 4);
        return a;
    }

    /// <summary>A nested attribute: its length covers the padded children.</summary>
    public static byte[] Nest(ushort type, params byte[][] children) => Attr(type, Concat(children));

    public static byte[] U8(byte v) => [v];

    public static byte[] U16(ushort v) => BitConverter.GetBytes(v);

    public static byte[] U32(uint v) => BitConverter.GetBytes(v);

    public static byte[] Be16(ushort v) => [(byte)(v >> 8), (byte)v];

    public static byte[] Str(string s) => [.. Encoding.UTF8.GetBytes(s), 0];

    public static byte[] Ip(string s) => System.Net.IPAddress.Parse(s).GetAddressBytes();

    public static byte[] Mac(string s) => System.Net.NetworkInformation.PhysicalAddress.Parse(s).GetAddressBytes();

    public static byte[] IfInfo(byte family, int index, uint flags = 0, uint change = 0) =>
        Concat([family, 0, 0, 0], BitConverter.GetBytes(index), U32(flags), U32(change));

    public static byte[] IfAddr(byte family, byte prefix, byte flags, byte scope, int index) =>
        Concat([family, prefix, flags, scope], BitConverter.GetBytes(index));

    public static byte[] RtMsg(byte family, byte dstLen, byte table, byte protocol, byte scope, byte type, uint flags) =>
        Concat([family, dstLen, 0, 0, table, protocol, scope, type], U32(flags));

    public static byte[] NdMsg(byte family, int index, ushort state, byte flags) =>
        Concat([family, 0, 0, 0], BitConverter.GetBytes(index), U16(state), [flags, 0]);

    public static byte[] Concat(params byte[][] parts) => parts.SelectMany(p => p).ToArray();
}
