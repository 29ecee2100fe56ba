using CnmSharp.Store;
using Microsoft.Extensions.Logging;

namespace CnmSharp.Drivers;

/// <summary>
/// Registers a driver with a controller. A factory is registered once; each controller calls
/// <see cref="CreateAsync"/> with its own context, so two controllers in one process (each with its own host namespace
/// and store) get separate driver instances.
/// </summary>
public interface INetworkDriverFactory
{
    /// <summary>The driver's name, as networks name it (<c>bridge</c>, <c>macvlan</c>, a plugin name).</summary>
    string Name { get; }

    /// <summary>Creates the driver for one controller, restoring what it persisted.</summary>
    /// <param name="context">The controller's host namespace, store and logging.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The driver.</returns>
    ValueTask<INetworkDriver> CreateAsync(DriverContext context, CancellationToken cancellationToken = default);
}

/// <summary>What a controller gives each driver and IPAM it creates.</summary>
public sealed record DriverContext
{
    /// <summary>The controller's id.</summary>
    public required string ControllerId { get; init; }

    /// <summary>The path of the network namespace that plays the host for this controller, or null for the
    /// process's own. Drivers do all host-side work there.</summary>
    public string? HostNamespacePath { get; init; }

    /// <summary>A directory private to this controller for runtime files (sockets, namespaces).</summary>
    public required string RunDirectory { get; init; }

    /// <summary>The controller's store. Drivers keep their own records under <see cref="StoreKeyPrefix"/>.</summary>
    public required IKeyValueStore Store { get; init; }

    /// <summary>The key prefix reserved for this driver (ends with <c>/</c>).</summary>
    public required string StoreKeyPrefix { get; init; }

    /// <summary>The cluster-wide store shared by every host's controller (etcd), or null when the controller has none.
    /// Drivers whose data scope is global keep their cross-host records there, under
    /// <see cref="GlobalStoreKeyPrefix"/>; a global-scope operation without it fails with
    /// <c>GlobalStoreRequired</c>.</summary>
    public ISharedKeyValueStore? GlobalStore { get; init; }

    /// <summary>The key prefix reserved for this driver in <see cref="GlobalStore"/> (ends with <c>/</c>); shared by
    /// the same driver on every host.</summary>
    public string? GlobalStoreKeyPrefix { get; init; }

    /// <summary>This host's name in the cluster (unique among the controllers sharing <see cref="GlobalStore"/>), or
    /// null when the controller has no global store.</summary>
    public string? NodeName { get; init; }

    /// <summary>The address other hosts reach this one at (the VXLAN tunnel endpoint for overlay), or null when
    /// not configured.</summary>
    public System.Net.IPAddress? AdvertiseAddress { get; init; }

    /// <summary>Logging.</summary>
    public required ILoggerFactory LoggerFactory { get; init; }

    /// <summary>Time, injectable for tests.</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>The firewall backend of the controller's host namespace, or null when the controller manages no
    /// firewall. Drivers program rules only through it.</summary>
    public Firewall.IFirewallBackend? Firewall { get; init; }

    /// <summary>Extra services the controller offers to drivers, keyed by type (null without dependency injection).</summary>
    public IServiceProvider? Services { get; init; }
}
