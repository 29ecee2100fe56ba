using CnmSharp.Drivers;

namespace CnmSharp.Ipam.Default;

/// <summary>Registers the default IPAM (<c>default</c>): libnetwork's built-in allocator with persisted state.</summary>
public sealed class DefaultIpamFactory : IIpamDriverFactory
{
    private readonly DefaultIpamOptions _options;

    /// <summary>Creates the factory with the default predefined pools.</summary>
    public DefaultIpamFactory()
        : this(new DefaultIpamOptions())
    {
    }

    /// <summary>Creates the factory.</summary>
    /// <param name="options">The predefined pools; validated and copied.</param>
    /// <exception cref="CnmInvalidArgumentException">The options are invalid (code <see cref="CnmErrorCodes.InvalidOption"/>).</exception>
    public DefaultIpamFactory(DefaultIpamOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.ThrowIfInvalid();
        _options = new DefaultIpamOptions
        {
            LocalPools = [.. options.LocalPools],
            GlobalPools = [.. options.GlobalPools],
            IPv6Pools = [.. options.IPv6Pools],
        };
    }

    /// <inheritdoc />
    public string Name => IpamNames.Default;

    /// <inheritdoc />
    public async ValueTask<IIpamDriver> CreateAsync(DriverContext context, CancellationToken cancellationToken = default) =>
        await DefaultIpam.CreateAsync(context, _options, cancellationToken).ConfigureAwait(false);
}
