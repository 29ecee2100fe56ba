using System.Net;

namespace CnmSharp.Firewall;

/// <summary>
/// What a firewall backend needs to know about one bridge network to program its rules: the bridge, its subnets and
/// the behaviour switches. Rules are per network; only port forwards are per endpoint (<see cref="FirewallPortForward"/>).
/// </summary>
public sealed record FirewallNetwork
{
    /// <summary>The network's id. Identifies the record: setting up a network with the same id again replaces it.</summary>
    public required string NetworkId { get; init; }

    /// <summary>
    /// The owner of the network's part of the rule set (a driver: <c>bridge</c>, an overlay, a plugin host): 1 to 32
    /// letters, digits, <c>-</c> or <c>_</c>. <see cref="IFirewallBackend.ReconcileOwnerAsync"/> restores one owner's
    /// part and leaves the others' alone. The port forwards of a network belong to its owner. Default
    /// <see cref="DefaultOwner"/>.
    /// </summary>
    public string Owner { get; init; } = DefaultOwner;

    /// <summary>The owner of records that name none.</summary>
    public const string DefaultOwner = "default";

    /// <summary>The bridge device of the network in the host namespace (1 to 15 characters: letters, digits,
    /// <c>_</c>, <c>.</c>, <c>-</c>).</summary>
    public required string BridgeName { get; init; }

    /// <summary>The IPv4 subnets of the network; rules for them go to iptables.</summary>
    public IReadOnlyList<IPNetwork> IPv4Subnets { get; init; } = [];

    /// <summary>The IPv6 subnets of the network; rules for them go to ip6tables.</summary>
    public IReadOnlyList<IPNetwork> IPv6Subnets { get; init; } = [];

    /// <summary>The bridge's IPv4 address (the containers' gateway), when it has one. Informational for backends
    /// that need it; the iptables backend does not.</summary>
    public IPAddress? BridgeIPv4 { get; init; }

    /// <summary>True for an internal network: no NAT and no traffic in or out of its subnets, only between its
    /// containers (subject to <see cref="EnableIcc"/>).</summary>
    public bool Internal { get; init; }

    /// <summary>Whether containers of the network may talk to each other (inter-container communication). Default true.</summary>
    public bool EnableIcc { get; init; } = true;

    /// <summary>Whether traffic leaving the network is masqueraded (or source-NATed to <see cref="SnatSource"/>). Default true.</summary>
    public bool EnableMasquerade { get; init; } = true;

    /// <summary>When set (Docker's <c>host_ipv4</c>), IPv4 traffic leaving the network is SNATed to this address
    /// instead of masqueraded.</summary>
    public IPAddress? SnatSource { get; init; }

    /// <summary>
    /// Hairpin NAT: port forwards also apply to traffic coming from the bridge itself and from the host's loopback, so
    /// a container (or the host) reaches a published port without a userland proxy. Default true (CnmSharp has no
    /// userland proxy).
    /// </summary>
    public bool Hairpin { get; init; } = true;
}
