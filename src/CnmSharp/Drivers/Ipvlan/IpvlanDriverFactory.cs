using CnmSharp.Diagnostics;
using CnmSharp.Drivers.Common;

namespace CnmSharp.Drivers.Ipvlan;

/// <summary>
/// The <c>ipvlan</c> driver: each endpoint is an ipvlan device on the network's parent link (sharing its MAC), created
/// directly inside the sandbox's namespace. Options in <see cref="IpvlanOptionKeys"/>. Each controller gets its own
/// driver instance.
/// </summary>
public sealed class IpvlanDriverFactory : INetworkDriverFactory
{
    /// <summary>The driver's name.</summary>
    public const string DriverName = "ipvlan";

    /// <inheritdoc />
    public string Name => DriverName;

    /// <inheritdoc />
    public async ValueTask<INetworkDriver> CreateAsync(DriverContext context, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(context);
        HostNamespaceGuard.Check(context.HostNamespacePath, "ipvlan driver");
        var driver = new IpvlanDriver(context, new LinuxParentLinkKernel(context.HostNamespacePath));
        return await DriverStart.RestoreAsync(driver, static (d, ct) => d.RestoreAsync(ct), cancellationToken).ConfigureAwait(false);
    }
}
