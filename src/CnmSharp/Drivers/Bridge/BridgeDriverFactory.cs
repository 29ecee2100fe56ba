namespace CnmSharp.Drivers.Bridge;

/// <summary>
/// The <c>bridge</c> driver: one Linux bridge per network in the controller's host namespace, one veth per endpoint
/// whose container end is created directly inside the sandbox, NAT and published ports through the controller's
/// firewall backend. Each controller gets its own driver instance, host namespace and host port allocator.
/// </summary>
public sealed class BridgeDriverFactory : INetworkDriverFactory
{
    /// <summary>The driver's name.</summary>
    public const string DriverName = "bridge";

    private readonly BridgeDriverOptions _options;

    /// <summary>Creates the factory with default options.</summary>
    public BridgeDriverFactory()
        : this(new BridgeDriverOptions())
    {
    }

    /// <summary>Creates the factory with the given options (validated and copied).</summary>
    /// <param name="options">The options.</param>
    /// <exception cref="CnmInvalidArgumentException">An option is out of range.</exception>
    public BridgeDriverFactory(BridgeDriverOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _options = options.Clone();
    }

    /// <inheritdoc />
    public string Name => DriverName;

    /// <summary>A copy of the options the drivers are created with.</summary>
    public BridgeDriverOptions Options => _options.Clone();

    /// <inheritdoc />
    public async ValueTask<INetworkDriver> CreateAsync(DriverContext context, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(context);
        return await BridgeDriver.CreateAsync(context, _options.Clone(), cancellationToken).ConfigureAwait(false);
    }
}
