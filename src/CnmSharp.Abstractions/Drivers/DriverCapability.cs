namespace CnmSharp.Drivers;

/// <summary>Where a driver's data or connectivity reaches.</summary>
public enum DriverScope
{
    /// <summary>One host.</summary>
    Local,

    /// <summary>Several hosts, state in the global store.</summary>
    Global,

    /// <summary>Managed by a cluster control plane.</summary>
    Swarm,
}

/// <summary>
/// What a driver is and needs. The core decides everything that differs between drivers from this record and from the
/// optional interfaces a driver implements, never from the driver's name.
/// </summary>
/// <param name="DataScope">Where the driver's networks are stored; global picks the global address space and store.</param>
/// <param name="ConnectivityScope">Where its endpoints can reach; global drivers receive node discovery events.</param>
public sealed record DriverCapability(DriverScope DataScope, DriverScope ConnectivityScope)
{
    /// <summary>False for drivers whose networks take no IPAM pools or addresses (host, null).</summary>
    public bool UsesIpam { get; init; } = true;

    /// <summary>True for drivers whose endpoints live in the host's own namespace (host): their endpoints join only
    /// sandboxes that use the host namespace, and such sandboxes join only them.</summary>
    public bool UsesHostNamespace { get; init; }

    /// <summary>True when the driver allows one network only (host, null); the core creates it once on a fresh store.</summary>
    public bool SingleNetwork { get; init; }

    /// <summary>True when the driver's endpoints reach nothing beyond the driver's own networks and report no gateway
    /// (overlay): a sandbox joined to such an endpoint, with no other endpoint giving it a gateway, is also joined by
    /// the core to the controller's gateway network (libnetwork's <c>docker_gwbridge</c>) for outbound access.</summary>
    public bool NoExternalConnectivity { get; init; }

    /// <summary>A local driver with local connectivity that uses IPAM: the common case.</summary>
    public static DriverCapability LocalScope { get; } = new(DriverScope.Local, DriverScope.Local);
}
