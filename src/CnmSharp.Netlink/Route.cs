using System.Net;
using System.Net.Sockets;

namespace CnmSharp.Netlink;

/// <summary>Who installed a route (RTPROT_*).</summary>
public enum RouteProtocol : byte
{
    /// <summary>RTPROT_UNSPEC.</summary>
    Unspecified = 0,

    /// <summary>RTPROT_REDIRECT.</summary>
    Redirect = 1,

    /// <summary>RTPROT_KERNEL.</summary>
    Kernel = 2,

    /// <summary>RTPROT_BOOT: what <c>ip route add</c> uses.</summary>
    Boot = 3,

    /// <summary>RTPROT_STATIC.</summary>
    Static = 4,
}

/// <summary>Route types (RTN_*).</summary>
public enum RouteType : byte
{
    /// <summary>RTN_UNSPEC.</summary>
    Unspecified = 0,

    /// <summary>RTN_UNICAST.</summary>
    Unicast = 1,

    /// <summary>RTN_LOCAL.</summary>
    Local = 2,

    /// <summary>RTN_BROADCAST.</summary>
    Broadcast = 3,

    /// <summary>RTN_ANYCAST.</summary>
    Anycast = 4,

    /// <summary>RTN_MULTICAST.</summary>
    Multicast = 5,

    /// <summary>RTN_BLACKHOLE.</summary>
    Blackhole = 6,

    /// <summary>RTN_UNREACHABLE.</summary>
    Unreachable = 7,

    /// <summary>RTN_PROHIBIT.</summary>
    Prohibit = 8,
}

/// <summary>Well-known routing table ids.</summary>
public static class RouteTables
{
    /// <summary>RT_TABLE_DEFAULT.</summary>
    public const uint Default = 253;

    /// <summary>RT_TABLE_MAIN.</summary>
    public const uint Main = 254;

    /// <summary>RT_TABLE_LOCAL.</summary>
    public const uint Local = 255;
}

/// <summary>A route to add, replace or delete. The default route is 0.0.0.0/0 (or ::/0).</summary>
/// <param name="Destination">The destination prefix.</param>
public sealed record RouteSpec(IPNetwork Destination)
{
    /// <summary>The next hop, or null for a directly connected route.</summary>
    public IPAddress? Gateway { get; init; }

    /// <summary>The output interface index (RTA_OIF), or null.</summary>
    public int? OutputIndex { get; init; }

    /// <summary>Scope; null picks link scope for a gateway-less route with an output device, else universe.</summary>
    public RouteScope? Scope { get; init; }

    /// <summary>Table id; main by default. Ids above 255 go in RTA_TABLE.</summary>
    public uint Table { get; init; } = RouteTables.Main;

    /// <summary>Metric (RTA_PRIORITY), or null.</summary>
    public uint? Metric { get; init; }

    /// <summary>Treat the gateway as on-link even if no prefix covers it (RTNH_F_ONLINK).</summary>
    public bool OnLink { get; init; }

    /// <summary>The protocol; boot by default, as <c>ip route add</c>.</summary>
    public RouteProtocol Protocol { get; init; } = RouteProtocol.Boot;

    /// <summary>The route type; unicast by default.</summary>
    public RouteType Type { get; init; } = RouteType.Unicast;

    /// <summary>Preferred source address (RTA_PREFSRC), or null.</summary>
    public IPAddress? PreferredSource { get; init; }

    /// <summary>On delete, send <see cref="Protocol"/> so that the kernel removes only a route installed with that
    /// protocol. Off by default: a delete sends protocol 0, which matches a route of any protocol.</summary>
    public bool MatchProtocolOnDelete { get; init; }
}

/// <summary>A route as the kernel reports it (RTM_NEWROUTE).</summary>
/// <param name="Destination">The destination prefix.</param>
public sealed record RouteInfo(IPNetwork Destination)
{
    /// <summary>The address family.</summary>
    public AddressFamily Family => Destination.BaseAddress.AddressFamily;

    /// <summary>The gateway, or null.</summary>
    public IPAddress? Gateway { get; init; }

    /// <summary>The output interface index, or 0.</summary>
    public int OutputIndex { get; init; }

    /// <summary>The table id.</summary>
    public uint Table { get; init; }

    /// <summary>The metric, or 0.</summary>
    public uint Metric { get; init; }

    /// <summary>The scope.</summary>
    public RouteScope Scope { get; init; }

    /// <summary>The protocol.</summary>
    public RouteProtocol Protocol { get; init; }

    /// <summary>The type.</summary>
    public RouteType Type { get; init; }

    /// <summary>True when RTNH_F_ONLINK is set.</summary>
    public bool OnLink { get; init; }

    /// <summary>The preferred source, or null.</summary>
    public IPAddress? PreferredSource { get; init; }
}
