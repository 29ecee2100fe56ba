using System.Net;

namespace CnmSharp;

/// <summary>One IPAM configuration of a network (one subnet).</summary>
public sealed record IpamConfig
{
    /// <summary>The wanted subnet, or null for a predefined one.</summary>
    public string? Subnet { get; init; }

    /// <summary>A sub-range of the subnet to allocate endpoint addresses from.</summary>
    public string? IPRange { get; init; }

    /// <summary>The gateway address, or null to let IPAM pick one.</summary>
    public string? Gateway { get; init; }

    /// <summary>Named addresses to reserve (for example <c>DefaultGatewayIPv4</c>).</summary>
    public IReadOnlyDictionary<string, string> AuxAddresses { get; init; } = new Dictionary<string, string>(StringComparer.Ordinal);
}

/// <summary>Options of a new network.</summary>
public sealed record NetworkCreateOptions
{
    /// <summary>An explicit id (64 hex characters); generated when null.</summary>
    public string? Id { get; init; }

    /// <summary>Driver options (<c>-o key=value</c>).</summary>
    public IReadOnlyDictionary<string, string> DriverOptions { get; init; } = new Dictionary<string, string>(StringComparer.Ordinal);

    /// <summary>Labels.</summary>
    public IReadOnlyDictionary<string, string> Labels { get; init; } = new Dictionary<string, string>(StringComparer.Ordinal);

    /// <summary>Enables IPv6.</summary>
    public bool EnableIPv6 { get; init; }

    /// <summary>An internal network: no route out, no NAT, no external connectivity.</summary>
    public bool Internal { get; init; }

    /// <summary>No embedded DNS from this network: joining it does not give a sandbox a resolver, and its endpoints'
    /// names are not served (podman's <c>--disable-dns</c>; Docker's default bridge behaves so).</summary>
    public bool DisableDns { get; init; }

    /// <summary>Attachable (informational for standalone use).</summary>
    public bool Attachable { get; init; }

    /// <summary>The requested scope; null for the driver's data scope. Asking <c>local</c> of a global driver is refused.</summary>
    public Drivers.DriverScope? Scope { get; init; }

    /// <summary>The IPAM driver; null for the controller's default.</summary>
    public string? IpamDriver { get; init; }

    /// <summary>IPAM driver options.</summary>
    public IReadOnlyDictionary<string, string> IpamOptions { get; init; } = new Dictionary<string, string>(StringComparer.Ordinal);

    /// <summary>IPv4 configurations; empty means one predefined pool.</summary>
    public IReadOnlyList<IpamConfig> IPv4Config { get; init; } = [];

    /// <summary>IPv6 configurations; empty with <see cref="EnableIPv6"/> means one predefined pool.</summary>
    public IReadOnlyList<IpamConfig> IPv6Config { get; init; } = [];

    /// <summary>
    /// A configuration-only network (<c>docker network create --config-only</c>): it records its IPv6 flag, IPAM
    /// driver, options and configurations, driver options and labels for other networks to take with
    /// <see cref="ConfigFrom"/>. It is stored with scope <c>local</c> and driver <c>null</c> whatever driver is named,
    /// calls no driver, reserves no pool and takes no endpoint. It cannot be combined with <see cref="ConfigFrom"/>,
    /// <see cref="Internal"/>, <see cref="Attachable"/> or <see cref="Scope"/>.
    /// </summary>
    public bool ConfigOnly { get; init; }

    /// <summary>
    /// The name of a configuration-only network whose configuration this network takes at creation
    /// (<c>docker network create --config-from</c>): its IPv6 flag, IPAM driver, options and configurations, driver
    /// options and labels. This network may then set none of these itself. The configuration network cannot be
    /// deleted while this network exists.
    /// </summary>
    public string? ConfigFrom { get; init; }
}

/// <summary>Options of a new endpoint.</summary>
public sealed record EndpointCreateOptions
{
    /// <summary>A wanted IPv4 address.</summary>
    public IPAddress? IPv4Address { get; init; }

    /// <summary>A wanted IPv6 address.</summary>
    public IPAddress? IPv6Address { get; init; }

    /// <summary>Link-local addresses; each must really be link-local.</summary>
    public IReadOnlyList<CidrAddress> LinkLocalAddresses { get; init; } = [];

    /// <summary>A wanted MAC address.</summary>
    public System.Net.NetworkInformation.PhysicalAddress? MacAddress { get; init; }

    /// <summary>Ports the endpoint exposes.</summary>
    public IReadOnlyList<Drivers.TransportPort> ExposedPorts { get; init; } = [];

    /// <summary>Ports to publish on the host.</summary>
    public IReadOnlyList<Drivers.PortBinding> PortBindings { get; init; } = [];

    /// <summary>Driver-specific options.</summary>
    public IReadOnlyDictionary<string, string> DriverOptions { get; init; } = new Dictionary<string, string>(StringComparer.Ordinal);

    /// <summary>Extra IPAM options for the address requests.</summary>
    public IReadOnlyDictionary<string, string> IpamOptions { get; init; } = new Dictionary<string, string>(StringComparer.Ordinal);

    /// <summary>DNS aliases of the endpoint on its network.</summary>
    public IReadOnlyList<string> Aliases { get; init; } = [];

    /// <summary>An anonymous endpoint (not resolvable by name).</summary>
    public bool Anonymous { get; init; }

    /// <summary>libnetwork's <c>CreateOptionDisableResolution</c>: this endpoint gives its sandbox no embedded DNS (its
    /// names are still served to the other sandboxes of the network).</summary>
    public bool DisableResolution { get; init; }

    /// <summary>
    /// Checks every value of these options by the rules <see cref="Network.CreateEndpointAsync"/> applies before it
    /// does anything (aliases, address families and scopes, link-local addresses, the MAC address, port bindings), so
    /// a caller such as a command line can refuse them before it opens a controller. What depends on the network (a
    /// wanted address inside its subnets) is checked at creation only.
    /// </summary>
    /// <exception cref="CnmInvalidArgumentException">A value is invalid.</exception>
    public void Validate() => Core.Validation.EndpointOptions(this);
}

/// <summary>Options of a join.</summary>
public sealed record JoinOptions
{
    /// <summary>Gateway priority: the endpoint with the highest priority provides the sandbox's default gateway.</summary>
    public int Priority { get; init; }

    /// <summary>Driver-specific join options.</summary>
    public IReadOnlyDictionary<string, string> DriverOptions { get; init; } = new Dictionary<string, string>(StringComparer.Ordinal);
}

/// <summary>Options of a new sandbox.</summary>
public sealed record SandboxCreateOptions
{
    /// <summary>Use the host's namespace instead of a new one (host mode).</summary>
    public bool UseHostNamespace { get; init; }

    /// <summary>The container's hostname (for /etc/hosts).</summary>
    public string? Hostname { get; init; }

    /// <summary>The container's domain name.</summary>
    public string? DomainName { get; init; }

    /// <summary>Extra /etc/hosts entries.</summary>
    public IReadOnlyList<HostEntry> ExtraHosts { get; init; } = [];

    /// <summary>DNS servers; empty for the host's.</summary>
    public IReadOnlyList<string> DnsServers { get; init; } = [];

    /// <summary>DNS search domains; empty for the host's.</summary>
    public IReadOnlyList<string> DnsSearch { get; init; } = [];

    /// <summary>DNS options; empty for the host's.</summary>
    public IReadOnlyList<string> DnsOptions { get; init; } = [];

    /// <summary>
    /// Container mode (Docker's <c>--network container:&lt;id&gt;</c>): the sandbox to share the network namespace of, by
    /// sandbox id or container id. The new sandbox gets no namespace, no endpoints and no files of its own: it uses
    /// that namespace (a sandbox that itself shares resolves to the namespace it uses, a host-mode sandbox to the
    /// host's), its <c>hosts</c> and <c>resolv.conf</c>, hostname and domain name. The namespace lives until its last
    /// user is deleted. It cannot be combined with <see cref="UseHostNamespace"/>, a hostname, a domain name, extra
    /// hosts or DNS settings (they belong to the shared namespace).
    /// </summary>
    public string? ShareNetworkWith { get; init; }

    /// <summary>
    /// Checks every value of these options by the rules <see cref="NetworkController.CreateSandboxAsync"/> applies
    /// before it does anything (hostname, domain name, extra hosts, DNS servers, search domains and options, and what
    /// container mode cannot be combined with), so a caller such as a command line can refuse them before it opens a
    /// controller. The container id and whether the shared sandbox exists are checked at creation only.
    /// </summary>
    /// <exception cref="CnmInvalidArgumentException">A value is invalid.</exception>
    public void Validate() => Core.Validation.SandboxOptions(this);
}

/// <summary>An /etc/hosts entry.</summary>
/// <param name="Name">The host name.</param>
/// <param name="Address">The address.</param>
public sealed record HostEntry(string Name, IPAddress Address);
