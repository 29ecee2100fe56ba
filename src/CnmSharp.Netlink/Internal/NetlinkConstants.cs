namespace CnmSharp.Netlink.Internal;

#pragma warning disable CA1707 // Names follow the kernel UAPI headers.

/// <summary>Constants from include/uapi/linux/netlink.h.</summary>
internal static class Nl
{
    public const int HeaderSize = 16;
    public const int AttributeHeaderSize = 4;
    public const int Alignment = 4;

    public const ushort NLMSG_NOOP = 1;
    public const ushort NLMSG_ERROR = 2;
    public const ushort NLMSG_DONE = 3;
    public const ushort NLMSG_OVERRUN = 4;

    public const ushort NLM_F_REQUEST = 0x01;
    public const ushort NLM_F_MULTI = 0x02;
    public const ushort NLM_F_ACK = 0x04;
    public const ushort NLM_F_ECHO = 0x08;
    public const ushort NLM_F_DUMP_INTR = 0x10;
    public const ushort NLM_F_ROOT = 0x100;
    public const ushort NLM_F_MATCH = 0x200;
    public const ushort NLM_F_DUMP = NLM_F_ROOT | NLM_F_MATCH;
    public const ushort NLM_F_REPLACE = 0x100;
    public const ushort NLM_F_EXCL = 0x200;
    public const ushort NLM_F_CREATE = 0x400;
    public const ushort NLM_F_APPEND = 0x800;
    public const ushort NLM_F_CAPPED = 0x100;
    public const ushort NLM_F_ACK_TLVS = 0x200;

    public const ushort NLA_F_NESTED = 0x8000;
    public const ushort NLA_F_NET_BYTEORDER = 0x4000;
    public const ushort NLA_TYPE_MASK = unchecked((ushort)~(NLA_F_NESTED | NLA_F_NET_BYTEORDER));

    public const ushort NLMSGERR_ATTR_MSG = 1;
    public const ushort NLMSGERR_ATTR_OFFS = 2;

    public static int Align(int length) => (length + Alignment - 1) & ~(Alignment - 1);
}

/// <summary>Constants from include/uapi/linux/rtnetlink.h, if_link.h, if_addr.h, neighbour.h, veth.h, if_bridge.h.</summary>
internal static class Rt
{
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

    public const int IfInfoMsgSize = 16;
    public const int IfAddrMsgSize = 8;
    public const int RtMsgSize = 12;
    public const int NdMsgSize = 12;

    // IFLA_*
    public const ushort IFLA_ADDRESS = 1;
    public const ushort IFLA_BROADCAST = 2;
    public const ushort IFLA_IFNAME = 3;
    public const ushort IFLA_MTU = 4;
    public const ushort IFLA_LINK = 5;
    public const ushort IFLA_MASTER = 10;
    public const ushort IFLA_PROTINFO = 12;
    public const ushort IFLA_TXQLEN = 13;
    public const ushort IFLA_OPERSTATE = 16;
    public const ushort IFLA_LINKINFO = 18;
    public const ushort IFLA_IFALIAS = 20;
    public const ushort IFLA_NET_NS_FD = 28;
    public const ushort IFLA_EXT_MASK = 29;
    public const ushort IFLA_AF_SPEC = 26;
    public const ushort IFLA_LINK_NETNSID = 37;

    /// <summary>In IFLA_AF_SPEC / AF_INET6.</summary>
    public const ushort IFLA_INET6_ADDR_GEN_MODE = 8;

    public const ushort IFLA_INFO_KIND = 1;
    public const ushort IFLA_INFO_DATA = 2;
    public const ushort IFLA_INFO_SLAVE_KIND = 4;

    public const ushort VETH_INFO_PEER = 1;

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
    public const ushort IFLA_IPVLAN_MODE = 1;
    public const ushort IFLA_IPVLAN_FLAGS = 2;
    public const ushort IFLA_VLAN_ID = 1;

    public const ushort IFLA_BRPORT_MODE = 4;

    // IFA_*
    public const ushort IFA_ADDRESS = 1;
    public const ushort IFA_LOCAL = 2;
    public const ushort IFA_LABEL = 3;
    public const ushort IFA_BROADCAST = 4;
    public const ushort IFA_FLAGS = 8;

    // RTA_*
    public const ushort RTA_DST = 1;
    public const ushort RTA_SRC = 2;
    public const ushort RTA_OIF = 4;
    public const ushort RTA_GATEWAY = 5;
    public const ushort RTA_PRIORITY = 6;
    public const ushort RTA_PREFSRC = 7;
    public const ushort RTA_TABLE = 15;

    public const uint RTNH_F_ONLINK = 4;
    public const byte RT_TABLE_UNSPEC = 0;
    public const byte RT_TABLE_MAIN = 254;

    // NDA_*
    public const ushort NDA_DST = 1;
    public const ushort NDA_LLADDR = 2;
    public const ushort NDA_VLAN = 5;
    public const ushort NDA_PORT = 6;
    public const ushort NDA_VNI = 7;
    public const ushort NDA_IFINDEX = 8;
    public const ushort NDA_MASTER = 9;
}
