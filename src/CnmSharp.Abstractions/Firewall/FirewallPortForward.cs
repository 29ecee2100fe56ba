using System.Net;
using CnmSharp.Drivers;

namespace CnmSharp.Firewall;

/// <summary>
/// The published ports of one endpoint. Host ports are already resolved (see the host port allocator): no binding has
/// <see cref="PortBinding.HostPort"/> 0, and ranges are collapsed to the chosen port.
/// </summary>
public sealed record FirewallPortForward
{
    /// <summary>The network the endpoint belongs to; its rules must have been set up.</summary>
    public required string NetworkId { get; init; }

    /// <summary>The endpoint's id. With <see cref="NetworkId"/> it identifies the record: setting up the same endpoint
    /// again replaces its forwards.</summary>
    public required string EndpointId { get; init; }

    /// <summary>The network's bridge device.</summary>
    public required string BridgeName { get; init; }

    /// <summary>The endpoint's IPv4 address; required when a binding has an IPv4 host address (including 0.0.0.0).</summary>
    public IPAddress? ContainerIPv4 { get; init; }

    /// <summary>The endpoint's IPv6 address; required when a binding has an IPv6 host address (including ::).</summary>
    public IPAddress? ContainerIPv6 { get; init; }

    /// <summary>The bindings. The family of each binding's <see cref="PortBinding.HostIP"/> chooses iptables or
    /// ip6tables; a binding on <see cref="IPAddress.Any"/> (or <see cref="IPAddress.IPv6Any"/>) matches every local
    /// address of that family.</summary>
    public IReadOnlyList<PortBinding> PortBindings { get; init; } = [];
}
