using System.Net;
using System.Net.Sockets;

namespace CnmSharp.Netlink;

/// <summary>Address flags (IFA_F_*).</summary>
[Flags]
[System.Diagnostics.CodeAnalysis.SuppressMessage("Naming", "CA1711", Justification = "Mirrors the kernel's flag names.")]
public enum AddressFlags : uint
{
    /// <summary>No flags.</summary>
    None = 0,

    /// <summary>IFA_F_SECONDARY.</summary>
    Secondary = 0x01,

    /// <summary>IFA_F_NODAD: skip IPv6 duplicate address detection.</summary>
    NoDad = 0x02,

    /// <summary>IFA_F_OPTIMISTIC.</summary>
    Optimistic = 0x04,

    /// <summary>IFA_F_DADFAILED.</summary>
    DadFailed = 0x08,

    /// <summary>IFA_F_HOMEADDRESS.</summary>
    HomeAddress = 0x10,

    /// <summary>IFA_F_DEPRECATED.</summary>
    Deprecated = 0x20,

    /// <summary>IFA_F_TENTATIVE.</summary>
    Tentative = 0x40,

    /// <summary>IFA_F_PERMANENT.</summary>
    Permanent = 0x80,

    /// <summary>IFA_F_MANAGETEMPADDR.</summary>
    ManageTempAddress = 0x100,

    /// <summary>IFA_F_NOPREFIXROUTE: don't add the prefix route.</summary>
    NoPrefixRoute = 0x200,
}

/// <summary>Route and address scopes (RT_SCOPE_*).</summary>
public enum RouteScope : byte
{
    /// <summary>RT_SCOPE_UNIVERSE.</summary>
    Universe = 0,

    /// <summary>RT_SCOPE_SITE.</summary>
    Site = 200,

    /// <summary>RT_SCOPE_LINK.</summary>
    Link = 253,

    /// <summary>RT_SCOPE_HOST.</summary>
    Host = 254,

    /// <summary>RT_SCOPE_NOWHERE.</summary>
    Nowhere = 255,
}

/// <summary>An address to add to or delete from a link.</summary>
/// <param name="LinkIndex">The interface index.</param>
/// <param name="Address">The address (host bits kept, e.g. 10.0.0.2).</param>
/// <param name="PrefixLength">The prefix length, e.g. 24.</param>
public sealed record AddressSpec(int LinkIndex, IPAddress Address, int PrefixLength)
{
    /// <summary>IPv4 broadcast; null computes it for prefixes shorter than 31 (as Docker does).</summary>
    public IPAddress? Broadcast { get; init; }

    /// <summary>Address label (IPv4 only), or null.</summary>
    public string? Label { get; init; }

    /// <summary>Flags, e.g. <see cref="AddressFlags.NoDad"/>.</summary>
    public AddressFlags Flags { get; init; }

    /// <summary>Scope; universe by default.</summary>
    public RouteScope Scope { get; init; } = RouteScope.Universe;
}

/// <summary>An address as the kernel reports it (RTM_NEWADDR).</summary>
/// <param name="LinkIndex">The interface index.</param>
/// <param name="Address">The address (IFA_LOCAL for IPv4 when present, else IFA_ADDRESS).</param>
/// <param name="PrefixLength">The prefix length.</param>
public sealed record AddressInfo(int LinkIndex, IPAddress Address, int PrefixLength)
{
    /// <summary>The address family.</summary>
    public AddressFamily Family => Address.AddressFamily;

    /// <summary>The peer address (IFA_ADDRESS) when it differs from the local one, else null.</summary>
    public IPAddress? Peer { get; init; }

    /// <summary>IPv4 broadcast, or null.</summary>
    public IPAddress? Broadcast { get; init; }

    /// <summary>The label, or null.</summary>
    public string? Label { get; init; }

    /// <summary>Flags (IFA_FLAGS when present, else ifa_flags).</summary>
    public AddressFlags Flags { get; init; }

    /// <summary>The scope.</summary>
    public RouteScope Scope { get; init; }
}
