using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;

namespace CnmSharp.Netlink;

/// <summary>Neighbour states (NUD_*).</summary>
[Flags]
public enum NeighbourState : ushort
{
    /// <summary>NUD_NONE.</summary>
    None = 0,

    /// <summary>NUD_INCOMPLETE.</summary>
    Incomplete = 0x01,

    /// <summary>NUD_REACHABLE.</summary>
    Reachable = 0x02,

    /// <summary>NUD_STALE.</summary>
    Stale = 0x04,

    /// <summary>NUD_DELAY.</summary>
    Delay = 0x08,

    /// <summary>NUD_PROBE.</summary>
    Probe = 0x10,

    /// <summary>NUD_FAILED.</summary>
    Failed = 0x20,

    /// <summary>NUD_NOARP.</summary>
    NoArp = 0x40,

    /// <summary>NUD_PERMANENT.</summary>
    Permanent = 0x80,
}

/// <summary>Neighbour flags (NTF_*).</summary>
[Flags]
[System.Diagnostics.CodeAnalysis.SuppressMessage("Naming", "CA1711", Justification = "Mirrors the kernel's flag names.")]
public enum NeighbourFlags : byte
{
    /// <summary>No flags.</summary>
    None = 0,

    /// <summary>NTF_USE.</summary>
    Use = 0x01,

    /// <summary>NTF_SELF: the entry belongs to the device itself (e.g. a vxlan FDB).</summary>
    Self = 0x02,

    /// <summary>NTF_MASTER: the entry belongs to the device's master (bridge).</summary>
    Master = 0x04,

    /// <summary>NTF_PROXY.</summary>
    Proxy = 0x08,

    /// <summary>NTF_EXT_LEARNED.</summary>
    ExtLearned = 0x10,

    /// <summary>NTF_OFFLOADED.</summary>
    Offloaded = 0x20,

    /// <summary>NTF_STICKY.</summary>
    Sticky = 0x40,

    /// <summary>NTF_ROUTER.</summary>
    Router = 0x80,
}

/// <summary>An ARP (IPv4) or NDP (IPv6) neighbour entry to add, replace or delete.</summary>
/// <param name="LinkIndex">The interface index.</param>
/// <param name="Address">The neighbour's IP address (its family picks ARP or NDP).</param>
/// <param name="Mac">The neighbour's hardware address (not needed to delete).</param>
public sealed record NeighbourSpec(int LinkIndex, IPAddress Address, PhysicalAddress? Mac)
{
    /// <summary>The state; permanent by default.</summary>
    public NeighbourState State { get; init; } = NeighbourState.Permanent;

    /// <summary>Flags (NTF_*).</summary>
    public NeighbourFlags Flags { get; init; }
}

/// <summary>A bridge forwarding-database entry (AF_BRIDGE neighbour), e.g. a VXLAN peer.</summary>
/// <param name="LinkIndex">The port or vxlan device index.</param>
/// <param name="Mac">The hardware address (all zeros for the VXLAN default destination).</param>
public sealed record FdbEntrySpec(int LinkIndex, PhysicalAddress Mac)
{
    /// <summary>The remote VTEP for VXLAN (NDA_DST), or null.</summary>
    public IPAddress? Destination { get; init; }

    /// <summary>NTF_SELF and/or NTF_MASTER; self by default (what a VXLAN peer entry needs).</summary>
    public NeighbourFlags Flags { get; init; } = NeighbourFlags.Self;

    /// <summary>The state; permanent by default.</summary>
    public NeighbourState State { get; init; } = NeighbourState.Permanent;

    /// <summary>VLAN id (NDA_VLAN), or null.</summary>
    public ushort? Vlan { get; init; }

    /// <summary>VXLAN VNI (NDA_VNI), or null.</summary>
    public uint? Vni { get; init; }

    /// <summary>VXLAN destination UDP port (NDA_PORT), or null.</summary>
    public ushort? Port { get; init; }

    /// <summary>Append another destination instead of replacing (NLM_F_APPEND, e.g. several VTEPs for 00:00:00:00:00:00).</summary>
    public bool Append { get; init; }

    /// <summary>Replace the entry for this MAC if there is one, else create it (NLM_F_REPLACE, as
    /// <c>bridge fdb replace</c>); a replace is not an append, so both cannot be set.</summary>
    public bool Replace { get; init; }
}

/// <summary>A neighbour or FDB entry as the kernel reports it (RTM_NEWNEIGH).</summary>
/// <param name="LinkIndex">The interface index.</param>
/// <param name="Family">AF_INET, AF_INET6 or (for FDB entries) AF_BRIDGE as <see cref="AddressFamily"/> value 7.</param>
public sealed record NeighbourInfo(int LinkIndex, AddressFamily Family)
{
    /// <summary>The IP address (NDA_DST): the neighbour, or the remote VTEP of an FDB entry; null if absent.</summary>
    public IPAddress? Address { get; init; }

    /// <summary>The hardware address (NDA_LLADDR), or null.</summary>
    public PhysicalAddress? Mac { get; init; }

    /// <summary>The state.</summary>
    public NeighbourState State { get; init; }

    /// <summary>The flags.</summary>
    public NeighbourFlags Flags { get; init; }

    /// <summary>VLAN id, or null.</summary>
    public ushort? Vlan { get; init; }

    /// <summary>VNI, or null.</summary>
    public uint? Vni { get; init; }

    /// <summary>Master index (NDA_MASTER), or 0.</summary>
    public int MasterIndex { get; init; }

    /// <summary>True for a bridge FDB entry (family AF_BRIDGE).</summary>
    public bool IsFdb => (int)Family == 7;
}
