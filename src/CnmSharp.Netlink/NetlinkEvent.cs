namespace CnmSharp.Netlink;

/// <summary>rtnetlink multicast groups to monitor.</summary>
[Flags]
public enum NetlinkGroups
{
    /// <summary>Nothing.</summary>
    None = 0,

    /// <summary>RTNLGRP_LINK.</summary>
    Link = 1 << 0,

    /// <summary>RTNLGRP_IPV4_IFADDR.</summary>
    Ipv4Address = 1 << 1,

    /// <summary>RTNLGRP_IPV6_IFADDR.</summary>
    Ipv6Address = 1 << 2,

    /// <summary>RTNLGRP_IPV4_ROUTE.</summary>
    Ipv4Route = 1 << 3,

    /// <summary>RTNLGRP_IPV6_ROUTE.</summary>
    Ipv6Route = 1 << 4,

    /// <summary>RTNLGRP_NEIGH (ARP/NDP and bridge FDB).</summary>
    Neighbour = 1 << 5,

    /// <summary>Both address families.</summary>
    Address = Ipv4Address | Ipv6Address,

    /// <summary>Both route families.</summary>
    Route = Ipv4Route | Ipv6Route,

    /// <summary>Everything above.</summary>
    All = Link | Address | Route | Neighbour,
}

/// <summary>What a <see cref="NetlinkEvent"/> reports.</summary>
public enum NetlinkEventKind
{
    /// <summary>Events were lost (ENOBUFS): re-dump the state you track.</summary>
    Resync = 0,

    /// <summary>A link appeared or changed (RTM_NEWLINK).</summary>
    LinkAdded,

    /// <summary>A link went away (RTM_DELLINK).</summary>
    LinkRemoved,

    /// <summary>An address was added (RTM_NEWADDR).</summary>
    AddressAdded,

    /// <summary>An address was removed (RTM_DELADDR).</summary>
    AddressRemoved,

    /// <summary>A route was added (RTM_NEWROUTE).</summary>
    RouteAdded,

    /// <summary>A route was removed (RTM_DELROUTE).</summary>
    RouteRemoved,

    /// <summary>A neighbour or FDB entry was added or changed (RTM_NEWNEIGH).</summary>
    NeighbourAdded,

    /// <summary>A neighbour or FDB entry was removed (RTM_DELNEIGH).</summary>
    NeighbourRemoved,
}

/// <summary>One rtnetlink notification. Exactly one of the detail properties is set, except for <see cref="NetlinkEventKind.Resync"/>.</summary>
/// <param name="Kind">What happened.</param>
public sealed record NetlinkEvent(NetlinkEventKind Kind)
{
    /// <summary>The link, for link events.</summary>
    public LinkInfo? Link { get; init; }

    /// <summary>The address, for address events.</summary>
    public AddressInfo? Address { get; init; }

    /// <summary>The route, for route events.</summary>
    public RouteInfo? Route { get; init; }

    /// <summary>The neighbour, for neighbour events.</summary>
    public NeighbourInfo? Neighbour { get; init; }
}
