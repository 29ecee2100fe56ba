using CnmSharp.Drivers.Common;

namespace CnmSharp.Drivers.Null;

/// <summary>The <c>null</c> driver: one network (<c>none</c>) whose endpoints have no interface. Its network cannot be deleted.</summary>
public sealed class NullDriverFactory : INetworkDriverFactory
{
    /// <summary>The driver's name.</summary>
    public const string DriverName = "null";

    /// <inheritdoc />
    public string Name => DriverName;

    /// <inheritdoc />
    public ValueTask<INetworkDriver> CreateAsync(DriverContext context, CancellationToken cancellationToken = default) =>
        ValueTask.FromResult<INetworkDriver>(new SingleNetworkDriver(DriverName, new DriverCapability(DriverScope.Local, DriverScope.Local) { UsesIpam = false, SingleNetwork = true }));
}
