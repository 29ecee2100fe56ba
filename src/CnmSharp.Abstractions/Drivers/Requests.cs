using System.Net;

namespace CnmSharp.Drivers;

/// <summary>One pool of a network as IPAM gave it, with its gateway and auxiliary addresses.</summary>
/// <param name="AddressSpace">The IPAM address space.</param>
/// <param name="Pool">The pool.</param>
/// <param name="Gateway">The gateway with the pool's prefix length, if any.</param>
/// <param name="AuxAddresses">Named addresses reserved in the pool (for example <c>DefaultGatewayIPv4</c>).</param>
public sealed record IpamData(string AddressSpace, IPNetwork Pool, CidrAddress? Gateway, IReadOnlyDictionary<string, CidrAddress> AuxAddresses);

/// <summary>What a driver gets to create a network.</summary>
public sealed record NetworkCreateRequest
{
    /// <summary>The network id (64 hex characters).</summary>
    public required string NetworkId { get; init; }

    /// <summary>The network's name, for logging and naming; drivers key their state on <see cref="NetworkId"/>.</summary>
    public required string NetworkName { get; init; }

    /// <summary>The user's driver options (<c>-o key=value</c>).</summary>
    public IReadOnlyDictionary<string, string> DriverOptions { get; init; } = EmptyOptions.Instance;

    /// <summary>The network's labels.</summary>
    public IReadOnlyDictionary<string, string> Labels { get; init; } = EmptyOptions.Instance;

    /// <summary>True when IPv6 is enabled.</summary>
    public bool EnableIPv6 { get; init; }

    /// <summary>True for an internal network: no route out, no NAT.</summary>
    public bool Internal { get; init; }

    /// <summary>IPv4 pools, empty for drivers that take no IPAM.</summary>
    public IReadOnlyList<IpamData> IPv4Data { get; init; } = [];

    /// <summary>IPv6 pools.</summary>
    public IReadOnlyList<IpamData> IPv6Data { get; init; } = [];
}

/// <summary>What a driver gets to create an endpoint.</summary>
public sealed record EndpointCreateRequest
{
    /// <summary>The network.</summary>
    public required string NetworkId { get; init; }

    /// <summary>The endpoint id.</summary>
    public required string EndpointId { get; init; }

    /// <summary>The endpoint's name.</summary>
    public required string EndpointName { get; init; }

    /// <summary>Driver-specific endpoint options.</summary>
    public IReadOnlyDictionary<string, string> DriverOptions { get; init; } = EmptyOptions.Instance;

    /// <summary>Ports the endpoint exposes.</summary>
    public IReadOnlyList<TransportPort> ExposedPorts { get; init; } = [];

    /// <summary>Ports to publish on the host.</summary>
    public IReadOnlyList<PortBinding> PortBindings { get; init; } = [];
}

/// <summary>What a driver gets to join an endpoint to a sandbox.</summary>
public sealed record JoinRequest
{
    /// <summary>The network.</summary>
    public required string NetworkId { get; init; }

    /// <summary>The endpoint.</summary>
    public required string EndpointId { get; init; }

    /// <summary>The sandbox id.</summary>
    public required string SandboxId { get; init; }

    /// <summary>The sandbox key: the path of its network namespace.</summary>
    public required string SandboxKey { get; init; }

    /// <summary>True when the sandbox is the host's own namespace.</summary>
    public bool SandboxUsesHostNamespace { get; init; }

    /// <summary>True when the caller wants the interface left in the host namespace: the driver then creates it there,
    /// reports it with <see cref="InterfacePlacement.HostNamespace"/>, and the caller moves it into the sandbox itself.
    /// A plugin host sets it, since Docker's plugin protocol has the daemon move the interface (the Join reply's
    /// <c>SrcName</c> must exist in the caller's namespace). False: the driver may create it directly in the sandbox.</summary>
    public bool InterfaceInHostNamespace { get; init; }

    /// <summary>Join options.</summary>
    public IReadOnlyDictionary<string, string> Options { get; init; } = EmptyOptions.Instance;
}

/// <summary>The shared empty option map.</summary>
public static class EmptyOptions
{
    /// <summary>An empty read-only map.</summary>
    public static IReadOnlyDictionary<string, string> Instance { get; } = new Dictionary<string, string>(0, StringComparer.Ordinal).AsReadOnly();
}
