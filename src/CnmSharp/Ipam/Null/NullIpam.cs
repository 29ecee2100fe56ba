using System.Net;
using CnmSharp.Drivers;

namespace CnmSharp.Ipam.Null;

/// <summary>Registers the null IPAM (<c>null</c>).</summary>
public sealed class NullIpamFactory : IIpamDriverFactory
{
    /// <inheritdoc />
    public string Name => IpamNames.Null;

    /// <inheritdoc />
    public ValueTask<IIpamDriver> CreateAsync(DriverContext context, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(context);
        cancellationToken.ThrowIfCancellationRequested();
        return ValueTask.FromResult<IIpamDriver>(new NullIpam());
    }
}

/// <summary>
/// The null IPAM: one address space <c>null</c> with one pool <c>0.0.0.0/0</c> (id <c>null/0.0.0.0/0</c>) that
/// hands out no addresses. For networks whose addresses are managed elsewhere. Keeps no state.
/// </summary>
public sealed class NullIpam : IIpamDriver
{
    /// <summary>The address space.</summary>
    public const string AddressSpace = "null";

    /// <summary>The id of the only pool.</summary>
    public const string PoolId = AddressSpace + "/0.0.0.0/0";

    private static readonly IReadOnlyDictionary<string, string> s_empty = new Dictionary<string, string>(StringComparer.Ordinal);

    /// <summary>The only pool, <c>0.0.0.0/0</c>.</summary>
    public static IPNetwork Pool { get; } = new(IPAddress.Any, 0);

    /// <inheritdoc />
    public IpamCapability Capability { get; } = new();

    /// <inheritdoc />
    public ValueTask<AddressSpaces> GetDefaultAddressSpacesAsync(CancellationToken cancellationToken = default) =>
        ValueTask.FromResult(new AddressSpaces(AddressSpace, AddressSpace));

    /// <inheritdoc />
    public ValueTask<AllocatedPool> RequestPoolAsync(PoolRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (request.AddressSpace != AddressSpace)
        {
            throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidAddressSpace, $"address space \"{request.AddressSpace}\"", "the null IPAM only knows address space \"null\"");
        }

        if (!string.IsNullOrEmpty(request.Pool))
        {
            throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidPool, $"pool \"{request.Pool}\"", "the null IPAM does not handle specific address pool requests");
        }

        if (!string.IsNullOrEmpty(request.SubPool))
        {
            throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidSubPool, $"sub-pool \"{request.SubPool}\"", "the null IPAM does not handle specific address sub-pool requests");
        }

        if (request.IPv6)
        {
            throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidRequest, "IPv6 pool", "the null IPAM does not handle IPv6 address pool requests");
        }

        return ValueTask.FromResult(new AllocatedPool(PoolId, Pool, s_empty));
    }

    /// <inheritdoc />
    public ValueTask ReleasePoolAsync(string poolId, CancellationToken cancellationToken = default)
    {
        ThrowIfUnknown(poolId);
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    public ValueTask<AllocatedAddress> RequestAddressAsync(string poolId, IPAddress? preferred, IReadOnlyDictionary<string, string> options, CancellationToken cancellationToken = default)
    {
        ThrowIfUnknown(poolId);
        return ValueTask.FromResult(new AllocatedAddress(null, s_empty));
    }

    /// <inheritdoc />
    public ValueTask ReleaseAddressAsync(string poolId, IPAddress address, CancellationToken cancellationToken = default)
    {
        ThrowIfUnknown(poolId);
        return ValueTask.CompletedTask;
    }

    private static void ThrowIfUnknown(string poolId)
    {
        if (poolId != PoolId)
        {
            throw new CnmInvalidArgumentException(CnmErrorCodes.PoolNotFound, $"pool \"{poolId}\"", "unknown pool id");
        }
    }
}
