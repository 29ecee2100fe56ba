using CnmSharp.Drivers.Common;
using CnmSharp.Diagnostics;

namespace CnmSharp.Drivers.Overlay;

/// <summary>Settings of the overlay driver that are the same for every network of a controller.</summary>
public sealed record OverlayDriverOptions
{
    /// <summary>The IANA VXLAN port, the default of <see cref="VxlanPort"/>.</summary>
    public const ushort DefaultVxlanPort = 4789;

    /// <summary>The UDP destination port of the VXLAN devices (every host of a cluster must use the same).</summary>
    public ushort VxlanPort { get; init; } = DefaultVxlanPort;

    /// <summary>The time to live of this host's lease in the global store: when the host stops renewing it (crash,
    /// partition), the other hosts remove its endpoints this long after its last renewal.</summary>
    public TimeSpan LeaseTtl { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>The wait before following the global store again after it became unreachable.</summary>
    public TimeSpan RetryDelay { get; init; } = TimeSpan.FromSeconds(1);
}

/// <summary>
/// The <c>overlay</c> driver (data and connectivity scope global): per network, a namespace holding a bridge and a
/// VXLAN device per subnet; endpoints are veths on that bridge; each host publishes its joined endpoints in the global
/// store (on its lease) and programs the others' as neighbour and FDB entries. See docs/overlay.md ("Data plane").
/// A controller without a global store, node name or advertise address can start the driver, but creating a network
/// fails with <see cref="CnmErrorCodes.GlobalStoreRequired"/>.
/// </summary>
/// <param name="options">The driver's settings (defaults when null).</param>
public sealed class OverlayDriverFactory(OverlayDriverOptions? options = null) : INetworkDriverFactory
{
    /// <summary>The driver's name.</summary>
    public const string DriverName = "overlay";

    /// <summary>The directory, under the controller's run directory, that holds the networks' namespaces.</summary>
    public const string NamespaceDirectory = "overlay";

    /// <inheritdoc />
    public string Name => DriverName;

    /// <summary>The path of the namespace the driver makes for a network (for inspection and tests).</summary>
    /// <param name="runDirectory">The controller's run directory (<see cref="DriverContext.RunDirectory"/>).</param>
    /// <param name="networkId">The network id.</param>
    /// <returns>The namespace file's path.</returns>
    public static string NetworkNamespacePath(string runDirectory, string networkId)
    {
        ArgumentException.ThrowIfNullOrEmpty(runDirectory);
        ArgumentException.ThrowIfNullOrEmpty(networkId);
        return Path.Combine(runDirectory, NamespaceDirectory, OverlayDriver.NamespaceName(networkId));
    }

    /// <inheritdoc />
    public async ValueTask<INetworkDriver> CreateAsync(DriverContext context, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(context);
        HostNamespaceGuard.Check(context.HostNamespacePath, "overlay driver");
        var driver = new OverlayDriver(context, options ?? new OverlayDriverOptions());
        return await DriverStart.RestoreAsync(driver, static (d, ct) => d.RestoreAsync(ct), cancellationToken).ConfigureAwait(false);
    }
}
