using CnmSharp.Diagnostics;
using CnmSharp.Drivers.Common;

namespace CnmSharp.Drivers.Macvlan;

/// <summary>
/// The <c>macvlan</c> driver: each endpoint is a macvlan device on the network's parent link, created directly inside
/// the sandbox's namespace. Options in <see cref="MacvlanOptionKeys"/>. Each controller gets its own driver instance.
/// </summary>
public sealed class MacvlanDriverFactory : INetworkDriverFactory
{
    /// <summary>The driver's name.</summary>
    public const string DriverName = "macvlan";

    /// <inheritdoc />
    public string Name => DriverName;

    /// <inheritdoc />
    public async ValueTask<INetworkDriver> CreateAsync(DriverContext context, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(context);
        HostNamespaceGuard.Check(context.HostNamespacePath, "macvlan driver");
        var driver = new MacvlanDriver(context, new LinuxParentLinkKernel(context.HostNamespacePath));
        return await DriverStart.RestoreAsync(driver, static (d, ct) => d.RestoreAsync(ct), cancellationToken).ConfigureAwait(false);
    }
}
