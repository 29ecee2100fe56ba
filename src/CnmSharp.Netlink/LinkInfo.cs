using System.Net;
using System.Net.NetworkInformation;

namespace CnmSharp.Netlink;

/// <summary>Interface flags (IFF_*).</summary>
[Flags]
[System.Diagnostics.CodeAnalysis.SuppressMessage("Naming", "CA1711", Justification = "Mirrors the kernel's flag names.")]
public enum LinkFlags : uint
{
    /// <summary>No flags.</summary>
    None = 0,

    /// <summary>IFF_UP: administratively up.</summary>
    Up = 0x1,

    /// <summary>IFF_BROADCAST.</summary>
    Broadcast = 0x2,

    /// <summary>IFF_LOOPBACK.</summary>
    Loopback = 0x8,

    /// <summary>IFF_POINTOPOINT.</summary>
    PointToPoint = 0x10,

    /// <summary>IFF_RUNNING.</summary>
    Running = 0x40,

    /// <summary>IFF_NOARP.</summary>
    NoArp = 0x80,

    /// <summary>IFF_PROMISC.</summary>
    Promiscuous = 0x100,

    /// <summary>IFF_MASTER.</summary>
    Master = 0x400,

    /// <summary>IFF_SLAVE.</summary>
    Slave = 0x800,

    /// <summary>IFF_MULTICAST.</summary>
    Multicast = 0x1000,

    /// <summary>IFF_LOWER_UP: the driver signals carrier.</summary>
    LowerUp = 0x10000,
}

/// <summary>RFC 2863 operational state (IF_OPER_*).</summary>
public enum LinkOperState : byte
{
    /// <summary>IF_OPER_UNKNOWN.</summary>
    Unknown = 0,

    /// <summary>IF_OPER_NOTPRESENT.</summary>
    NotPresent = 1,

    /// <summary>IF_OPER_DOWN.</summary>
    Down = 2,

    /// <summary>IF_OPER_LOWERLAYERDOWN.</summary>
    LowerLayerDown = 3,

    /// <summary>IF_OPER_TESTING.</summary>
    Testing = 4,

    /// <summary>IF_OPER_DORMANT.</summary>
    Dormant = 5,

    /// <summary>IF_OPER_UP.</summary>
    Up = 6,
}

/// <summary>VXLAN details of a link.</summary>
/// <param name="Vni">The VNI.</param>
/// <param name="Port">Destination UDP port.</param>
/// <param name="Group">Group or remote address, or null.</param>
/// <param name="Local">Local address, or null.</param>
/// <param name="Learning">Whether learning is on.</param>
/// <param name="DeviceIndex">Underlying device index, or 0.</param>
/// <param name="Ttl">TTL, 0 = inherit.</param>
public sealed record VxlanInfo(uint Vni, ushort Port, IPAddress? Group, IPAddress? Local, bool Learning, int DeviceIndex, byte Ttl);

/// <summary>A network interface as the kernel reports it (RTM_NEWLINK).</summary>
public sealed record LinkInfo
{
    /// <summary>The interface index.</summary>
    public required int Index { get; init; }

    /// <summary>The interface name.</summary>
    public required string Name { get; init; }

    /// <summary>The device kind (IFLA_INFO_KIND), e.g. <c>veth</c>, or null (e.g. loopback).</summary>
    public string? Kind { get; init; }

    /// <summary>The MTU.</summary>
    public int Mtu { get; init; }

    /// <summary>The hardware address, or null when the link has none.</summary>
    public PhysicalAddress? Mac { get; init; }

    /// <summary>The master's index, or 0.</summary>
    public int MasterIndex { get; init; }

    /// <summary>The parent link's index (IFLA_LINK: veth peer, macvlan parent), or 0.</summary>
    public int ParentIndex { get; init; }

    /// <summary>Namespace id of the parent link when it lives in another namespace (IFLA_LINK_NETNSID), or null.</summary>
    public int? ParentNetNsId { get; init; }

    /// <summary>IFF_* flags.</summary>
    public LinkFlags Flags { get; init; }

    /// <summary>Operational state.</summary>
    public LinkOperState OperState { get; init; }

    /// <summary>ARPHRD_* link type from ifinfomsg.</summary>
    public ushort LinkType { get; init; }

    /// <summary>True when administratively up.</summary>
    public bool IsUp => (Flags & LinkFlags.Up) != 0;

    /// <summary>VXLAN details when <see cref="Kind"/> is vxlan.</summary>
    public VxlanInfo? Vxlan { get; init; }

    /// <summary>Macvlan mode when <see cref="Kind"/> is macvlan.</summary>
    public MacvlanMode? MacvlanMode { get; init; }

    /// <summary>The slave kind (IFLA_INFO_SLAVE_KIND), e.g. <c>bridge</c> for a bridge port, or null.</summary>
    public string? SlaveKind { get; init; }
}
