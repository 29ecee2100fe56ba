using CnmSharp.Drivers.Common;

namespace CnmSharp.Drivers.Host;

/// <summary>The <c>host</c> driver: one network (<c>host</c>) whose endpoints live in the host namespace. Its network cannot be deleted.</summary>
public sealed class HostDriverFactory : INetworkDriverFactory
{
    /// <summary>The driver's name.</summary>
    public const string DriverName = "host";

    /// <inheritdoc />
    public string Name => DriverName;

    /// <inheritdoc />
    public ValueTask<INetworkDriver> CreateAsync(DriverContext context, CancellationToken cancellationToken = default) =>
        ValueTask.FromResult<INetworkDriver>(new SingleNetworkDriver(DriverName, new DriverCapability(DriverScope.Local, DriverScope.Local) { UsesIpam = false, SingleNetwork = true, UsesHostNamespace = true }));
}
