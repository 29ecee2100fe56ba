using System.Text.Json.Serialization;

namespace CnmSharp.Core.Persistence;

// The typed records the core persists. Addresses are kept in their canonical text form (CIDR, colon-separated MAC),
// one record per object, never JSON inside JSON. Every record carries a schema version.

internal sealed record ControllerRecord
{
    public int Schema { get; init; } = 1;
    public required string Id { get; init; }
    public bool DefaultsCreated { get; init; }
}

internal sealed record IpamConfigRecord
{
    public string? Subnet { get; init; }
    public string? IPRange { get; init; }
    public string? Gateway { get; init; }
    public Dictionary<string, string> AuxAddresses { get; init; } = [];
}

internal sealed record IpamInfoRecord
{
    public required string PoolId { get; init; }
    public required string AddressSpace { get; init; }
    public required string Pool { get; init; }
    public string? Gateway { get; init; }
    public Dictionary<string, string> AuxAddresses { get; init; } = [];
    public Dictionary<string, string> Meta { get; init; } = [];
}

internal sealed record NetworkRecord
{
    public int Schema { get; init; } = 1;
    public required string Id { get; init; }
    public required string Name { get; init; }
    public required string Driver { get; init; }
    public required string Scope { get; init; }
    public required DateTimeOffset Created { get; init; }

    /// <summary>One of the networks the controller created itself at its first start (<c>CnmOptions.DefaultNetworks</c>):
    /// it cannot be removed, as Docker's pre-defined networks cannot.</summary>
    public bool PreDefined { get; init; }
    public bool EnableIPv6 { get; init; }
    public bool Internal { get; init; }
    public bool Attachable { get; init; }

    /// <summary>Its endpoints' sandboxes get no embedded DNS from it, and resolve no names on it.</summary>
    public bool DisableDns { get; init; }
    public string? IpamDriver { get; init; }
    public Dictionary<string, string> IpamOptions { get; init; } = [];
    public Dictionary<string, string> DriverOptions { get; init; } = [];
    public Dictionary<string, string> Labels { get; init; } = [];
    public List<IpamConfigRecord> IPv4Config { get; init; } = [];
    public List<IpamConfigRecord> IPv6Config { get; init; } = [];
    public List<IpamInfoRecord> IPv4Info { get; init; } = [];
    public List<IpamInfoRecord> IPv6Info { get; init; } = [];

    /// <summary>A configuration-only network: no driver, no pools, no endpoints.</summary>
    public bool ConfigOnly { get; init; }

    /// <summary>The name of the configuration-only network whose configuration this network took.</summary>
    public string? ConfigFrom { get; init; }

    /// <summary>The network is being deleted: written before the driver's delete, cleared only with the record. It
    /// stays hidden, its pools reserved, until its driver has deleted it (retried in the background and at start).</summary>
    public bool TearingDown { get; init; }
}

internal sealed record StaticRouteRecord
{
    public required string Destination { get; init; }
    public int Type { get; init; }
    public string? NextHop { get; init; }
}

/// <summary>A default route the core installed in a sandbox.</summary>
internal sealed record GatewayRouteRecord
{
    /// <summary>The interface's name inside the sandbox.</summary>
    public required string Interface { get; init; }

    /// <summary>The gateway (its family is the route's).</summary>
    public required string Gateway { get; init; }

    /// <summary>Installed without the core's protocol mark (by an earlier version).</summary>
    public bool Unmarked { get; init; }
}

internal sealed record JoinRecord
{
    public required string SandboxId { get; init; }
    public int Priority { get; init; }
    public string? SourceName { get; init; }
    public string? DestinationPrefix { get; init; }
    public string? DestinationName { get; init; }
    public bool CreatedInSandbox { get; init; }
    public string? Gateway { get; init; }
    public string? GatewayIPv6 { get; init; }
    public bool DisableGatewayService { get; init; }
    public List<StaticRouteRecord> StaticRoutes { get; init; } = [];
    public Dictionary<string, string> Options { get; init; } = [];
}

internal sealed record PortBindingRecord
{
    public int Protocol { get; init; }
    public int ContainerPort { get; init; }
    public required string HostIP { get; init; }
    public int HostPort { get; init; }
    public int HostPortEnd { get; init; }
}

internal sealed record EndpointRecord
{
    public int Schema { get; init; } = 1;
    public required string Id { get; init; }
    public required string Name { get; init; }
    public required string NetworkId { get; init; }
    public string? MacAddress { get; init; }
    public string? Address { get; init; }
    public string? AddressIPv6 { get; init; }
    public string? PoolIdV4 { get; init; }
    public string? PoolIdV6 { get; init; }
    public List<string> LinkLocalAddresses { get; init; } = [];
    public List<string> Aliases { get; init; } = [];
    public bool Anonymous { get; init; }

    /// <summary>libnetwork's <c>CreateOptionDisableResolution</c>: this endpoint gives its sandbox no embedded DNS.</summary>
    public bool DisableResolution { get; init; }
    public List<int[]> ExposedPorts { get; init; } = [];
    public List<PortBindingRecord> PortBindings { get; init; } = [];

    /// <summary>The bindings as the driver published them (ephemeral host ports resolved), read from its
    /// <c>PortMap</c> operational data while the endpoint provides its sandbox's external connectivity; else null.</summary>
    public List<PortBindingRecord>? PublishedPorts { get; init; }
    public Dictionary<string, string> DriverOptions { get; init; } = [];
    public JoinRecord? Join { get; init; }

    /// <summary>The endpoint's sandbox was deleted and its teardown (driver delete, record, addresses) is pending.</summary>
    public bool TearingDown { get; init; }

    /// <summary>The cluster node (host) that made the endpoint: set on endpoints of global-scope networks.</summary>
    public string? Node { get; init; }
}

internal sealed record SandboxRecord
{
    public int Schema { get; init; } = 1;
    public required string Id { get; init; }
    public required string ContainerId { get; init; }
    public required string Key { get; init; }
    public bool UsesHostNamespace { get; init; }
    public string? Hostname { get; init; }
    public string? DomainName { get; init; }
    public List<string[]> ExtraHosts { get; init; } = [];
    public List<string> DnsServers { get; init; } = [];
    public List<string> DnsSearch { get; init; } = [];
    public List<string> DnsOptions { get; init; } = [];
    public Dictionary<string, int> NextInterfaceIndex { get; init; } = [];
    public string? ExternalConnectivityEndpointId { get; init; }

    /// <summary>The default routes the core installed in the sandbox (the gateway endpoint's gateways on its interface,
    /// one per family): the only default routes it ever removes. Null in records written before they were kept: then
    /// they are the routes of <see cref="ExternalConnectivityEndpointId"/>'s endpoint, installed unmarked.</summary>
    public List<GatewayRouteRecord>? GatewayRoutes { get; init; }

    /// <summary>The sandbox is being deleted: written before its first endpoint leaves; the next start finishes it.</summary>
    public bool TearingDown { get; init; }

    /// <summary>Container mode: the sandbox named at creation whose network namespace this one shares (null: its own).
    /// Absent in records written before container mode, which read as not sharing.</summary>
    public string? SharedFrom { get; init; }

    /// <summary>Container mode: the container of <see cref="SharedFrom"/>, kept for display once it is gone.</summary>
    public string? SharedFromContainer { get; init; }

    /// <summary>Container mode: the sandbox that made the shared namespace (and its files), which names its key and files
    /// directory; it may be gone while sharers remain. Null: this sandbox's own.</summary>
    public string? NetworkSandboxId { get; init; }

    /// <summary>The sandbox's resolv.conf points at the embedded DNS (set at the first join that needs it): it keeps a
    /// resolver until it is deleted, as libnetwork keeps one once started.</summary>
    public bool EmbeddedDns { get; init; }
}

/// <summary>An operation in progress, written before any driver, IPAM or kernel work. Every undo it implies is
/// idempotent, so rollback after an error and recovery after a crash run the same code.</summary>
internal sealed record IntentRecord
{
    public int Schema { get; init; } = 1;
    public required string Id { get; init; }
    public required IntentKind Kind { get; init; }
    public required string NetworkId { get; init; }
    public string? EndpointId { get; init; }
    public string? SandboxId { get; init; }
    public string? Driver { get; init; }
    public string? IpamDriver { get; init; }

    /// <summary>IPAM pools requested so far: pool ids.</summary>
    public List<string> Pools { get; init; } = [];

    /// <summary>IPAM addresses requested so far: pool id and address.</summary>
    public List<string[]> Addresses { get; init; } = [];

    /// <summary>Join: the interface the driver made, recorded before the core configures it in the sandbox. Leave: the
    /// interface the leave removes.</summary>
    public JoinInterfaceRecord? Interface { get; set; }

    /// <summary>Who runs the operation: a controller instance and its process. Recovery rolls back an intent only
    /// while it holds the state lock and the owner has no operation running (see <c>StateLease</c>).</summary>
    public IntentOwnerRecord? Owner { get; init; }

    /// <summary>Leave: the endpoint's sandbox is being deleted (no routes to program, the endpoint is marked for
    /// teardown).</summary>
    public bool SandboxGoing { get; set; }

    /// <summary>Leave: the interface is removed one by one (false when the namespace deletion takes it).</summary>
    public bool RemoveInterface { get; set; }
}

/// <summary>The controller instance that wrote an intent.</summary>
internal sealed record IntentOwnerRecord
{
    public required string Instance { get; init; }
    public int Pid { get; init; }
    public required string Host { get; init; }

    public override string ToString() => $"controller instance {Ids.Short(Instance)} (pid {Pid} on {Host})";
}

/// <summary>A store record that recovery or loading could not process, moved aside with the reason.</summary>
internal sealed record QuarantineRecord
{
    public int Schema { get; init; } = 1;
    public required string Key { get; init; }
    public required byte[] Value { get; init; }
    public required string Reason { get; init; }
    public required DateTimeOffset Time { get; init; }
}

/// <summary>The interface of a join in progress: its name from the driver, the name it gets in the sandbox, and
/// whether the driver created it there.</summary>
internal sealed record JoinInterfaceRecord
{
    public required string SourceName { get; init; }
    public required string DestinationName { get; init; }
    public bool CreatedInSandbox { get; init; }
}

[JsonConverter(typeof(JsonStringEnumConverter<IntentKind>))]
internal enum IntentKind
{
    CreateNetwork,
    DeleteNetwork,
    CreateEndpoint,
    DeleteEndpoint,
    Join,
    Leave,
}

[JsonSourceGenerationOptions(DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull, PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(ControllerRecord))]
[JsonSerializable(typeof(NetworkRecord))]
[JsonSerializable(typeof(EndpointRecord))]
[JsonSerializable(typeof(SandboxRecord))]
[JsonSerializable(typeof(IntentRecord))]
[JsonSerializable(typeof(QuarantineRecord))]
internal sealed partial class CoreJsonContext : JsonSerializerContext
{
}
