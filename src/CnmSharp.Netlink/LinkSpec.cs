using System.Net;
using System.Net.NetworkInformation;
using System.Runtime.InteropServices;

namespace CnmSharp.Netlink;

/// <summary>
/// What to create with <see cref="IRtnetlinkClient.CreateLinkAsync"/>: one record per device kind. Properties
/// common to every kind live here. Names are at most 15 bytes of UTF-8 (IFNAMSIZ - 1).
/// </summary>
/// <param name="Name">The interface name.</param>
public abstract record LinkSpec(string Name)
{
    /// <summary>The rtnetlink kind string (IFLA_INFO_KIND), e.g. <c>veth</c>.</summary>
    public abstract string Kind { get; }

    /// <summary>MTU, or null for the kernel's default.</summary>
    public int? Mtu { get; init; }

    /// <summary>Hardware address, or null for a random one.</summary>
    public PhysicalAddress? Mac { get; init; }

    /// <summary>Index of the master (bridge) to enslave the new link to, or null.</summary>
    public int? MasterIndex { get; init; }

    /// <summary>Bring the link up when created (IFF_UP).</summary>
    public bool Up { get; init; }

    /// <summary>
    /// Create the link directly in this network namespace (an open namespace fd, IFLA_NET_NS_FD), or null for
    /// the client's namespace. The handle must stay open until the call completes.
    /// </summary>
    public SafeHandle? Namespace { get; init; }
}

/// <summary>A veth pair. The peer can be created directly inside another namespace, which avoids a later move.</summary>
/// <param name="Name">The name of this end.</param>
/// <param name="PeerName">The name of the other end.</param>
public sealed record VethLinkSpec(string Name, string PeerName) : LinkSpec(Name)
{
    /// <inheritdoc />
    public override string Kind => "veth";

    /// <summary>Create the peer in this namespace (IFLA_NET_NS_FD inside VETH_INFO_PEER), or null for the same one.</summary>
    public SafeHandle? PeerNamespace { get; init; }

    /// <summary>The peer's hardware address, or null for a random one.</summary>
    public PhysicalAddress? PeerMac { get; init; }

    /// <summary>The peer's MTU, or null for the same as <see cref="LinkSpec.Mtu"/> (the kernel's rule).</summary>
    public int? PeerMtu { get; init; }
}

/// <summary>A Linux bridge.</summary>
/// <param name="Name">The bridge name.</param>
public sealed record BridgeLinkSpec(string Name) : LinkSpec(Name)
{
    /// <inheritdoc />
    public override string Kind => "bridge";
}

/// <summary>A VXLAN device.</summary>
/// <param name="Name">The device name.</param>
/// <param name="Vni">The VXLAN network identifier (24 bits).</param>
public sealed record VxlanLinkSpec(string Name, uint Vni) : LinkSpec(Name)
{
    /// <inheritdoc />
    public override string Kind => "vxlan";

    /// <summary>Destination UDP port (IFLA_VXLAN_PORT), or null for the kernel default (8472).</summary>
    public ushort? Port { get; init; }

    /// <summary>Local source address (IFLA_VXLAN_LOCAL / LOCAL6).</summary>
    public IPAddress? Local { get; init; }

    /// <summary>Multicast group or unicast remote (IFLA_VXLAN_GROUP / GROUP6).</summary>
    public IPAddress? Group { get; init; }

    /// <summary>MAC learning on or off (IFLA_VXLAN_LEARNING), or null for the kernel default (on).</summary>
    public bool? Learning { get; init; }

    /// <summary>The underlying device index (IFLA_VXLAN_LINK).</summary>
    public int? DeviceIndex { get; init; }

    /// <summary>TTL of outer packets (IFLA_VXLAN_TTL).</summary>
    public byte? Ttl { get; init; }

    /// <summary>ARP/NDP proxy (IFLA_VXLAN_PROXY): the device answers neighbour requests from its own neighbour table
    /// instead of flooding them; null for the kernel default (off).</summary>
    public bool? Proxy { get; init; }
}

/// <summary>Macvlan modes (enum macvlan_mode).</summary>
public enum MacvlanMode
{
    /// <summary>Don't talk to other macvlans.</summary>
    Private = 1,

    /// <summary>Talk to other ports through an external bridge.</summary>
    Vepa = 2,

    /// <summary>Talk to bridge ports directly.</summary>
    Bridge = 4,

    /// <summary>Take over the underlying device.</summary>
    Passthru = 8,

    /// <summary>Use a source MAC address list.</summary>
    Source = 16,
}

/// <summary>A macvlan device on a parent link.</summary>
/// <param name="Name">The device name.</param>
/// <param name="ParentIndex">Index of the parent link (IFLA_LINK).</param>
public sealed record MacvlanLinkSpec(string Name, int ParentIndex) : LinkSpec(Name)
{
    /// <inheritdoc />
    public override string Kind => "macvlan";

    /// <summary>The mode; bridge by default.</summary>
    public MacvlanMode Mode { get; init; } = MacvlanMode.Bridge;
}

/// <summary>Ipvlan modes (enum ipvlan_mode).</summary>
public enum IpvlanMode
{
    /// <summary>Layer 2.</summary>
    L2 = 0,

    /// <summary>Layer 3.</summary>
    L3 = 1,

    /// <summary>Layer 3 with iptables (l3s).</summary>
    L3S = 2,
}

/// <summary>An ipvlan device on a parent link.</summary>
/// <param name="Name">The device name.</param>
/// <param name="ParentIndex">Index of the parent link (IFLA_LINK).</param>
public sealed record IpvlanLinkSpec(string Name, int ParentIndex) : LinkSpec(Name)
{
    /// <inheritdoc />
    public override string Kind => "ipvlan";

    /// <summary>The mode; L2 by default.</summary>
    public IpvlanMode Mode { get; init; } = IpvlanMode.L2;

    /// <summary>The flags (IFLA_IPVLAN_FLAGS); <see cref="IpvlanFlags.Bridge"/> (none) by default, which is then not
    /// sent.</summary>
    public IpvlanFlags Flags { get; init; } = IpvlanFlags.Bridge;
}

/// <summary>Ipvlan flags (IPVLAN_F_*): how slaves of one parent reach each other.</summary>
[Flags]
[System.Diagnostics.CodeAnalysis.SuppressMessage("Naming", "CA1711", Justification = "Mirrors the kernel's IFLA_IPVLAN_FLAGS.")]
public enum IpvlanFlags : ushort
{
    /// <summary>No flag: slaves talk to each other directly (the kernel's default, "bridge").</summary>
    Bridge = 0,

    /// <summary>IPVLAN_F_PRIVATE: slaves do not talk to each other.</summary>
    Private = 0x01,

    /// <summary>IPVLAN_F_VEPA: traffic between slaves goes out through the parent to an external switch.</summary>
    Vepa = 0x02,
}

/// <summary>An 802.1Q VLAN device on a parent link.</summary>
/// <param name="Name">The device name.</param>
/// <param name="ParentIndex">Index of the parent link (IFLA_LINK).</param>
/// <param name="VlanId">The VLAN id, 1..4094.</param>
public sealed record VlanLinkSpec(string Name, int ParentIndex, ushort VlanId) : LinkSpec(Name)
{
    /// <inheritdoc />
    public override string Kind => "vlan";
}

/// <summary>A dummy device.</summary>
/// <param name="Name">The device name.</param>
public sealed record DummyLinkSpec(string Name) : LinkSpec(Name)
{
    /// <inheritdoc />
    public override string Kind => "dummy";
}

/// <summary>How the kernel makes a link's IPv6 link-local (and SLAAC) addresses (<c>IFLA_INET6_ADDR_GEN_MODE</c>,
/// what <c>ip link set addrgenmode</c> sets).</summary>
public enum IPv6AddressGenerationMode : byte
{
    /// <summary>From the hardware address (EUI-64), the kernel's default.</summary>
    Eui64 = 0,

    /// <summary>None: the link gets no link-local address, so it sends no duplicate address detection, router
    /// solicitation or MLD report of its own.</summary>
    None = 1,

    /// <summary>Stable privacy addresses (RFC 7217; needs a secret).</summary>
    StablePrivacy = 2,

    /// <summary>Random interface identifiers.</summary>
    Random = 3,
}
