using System.Net;
using CnmSharp.Drivers;

namespace CnmSharp.Ipam;

/// <summary>The names of a driver's default address spaces.</summary>
/// <param name="Local">The address space of local-scope networks.</param>
/// <param name="Global">The address space of global-scope networks.</param>
public sealed record AddressSpaces(string Local, string Global);

/// <summary>What an IPAM needs from the core.</summary>
/// <param name="RequiresMacAddress">The IPAM wants the endpoint's MAC in the address request options.</param>
/// <param name="RequiresRequestReplay">The IPAM keeps no state: the core replays pool and address requests at start.</param>
/// <param name="ReleasesByOwner">The IPAM implements <see cref="IIpamOwnerRelease"/>: it remembers the owner
/// (<see cref="NetLabels.IpamOwner"/>) of every pool and address and releases them by owner.</param>
public sealed record IpamCapability(bool RequiresMacAddress = false, bool RequiresRequestReplay = false, bool ReleasesByOwner = false);

/// <summary>A pool request.</summary>
public sealed record PoolRequest
{
    /// <summary>The address space.</summary>
    public required string AddressSpace { get; init; }

    /// <summary>The wanted pool in CIDR form, or null for any predefined one.</summary>
    public string? Pool { get; init; }

    /// <summary>A sub-pool of <see cref="Pool"/> to allocate addresses from, or null.</summary>
    public string? SubPool { get; init; }

    /// <summary>IPAM options.</summary>
    public IReadOnlyDictionary<string, string> Options { get; init; } = EmptyOptions.Instance;

    /// <summary>True for an IPv6 pool.</summary>
    public bool IPv6 { get; init; }

    /// <summary>Subnets a predefined pool must not overlap (for example the host's routes).</summary>
    public IReadOnlyList<IPNetwork> Exclude { get; init; } = [];
}

/// <summary>A pool IPAM handed out.</summary>
/// <param name="PoolId">The pool's id, for later requests.</param>
/// <param name="Pool">The pool.</param>
/// <param name="Meta">Extra data; <see cref="NetLabels.RequestAddressTypeGateway"/> holds a gateway the IPAM chose.</param>
public sealed record AllocatedPool(string PoolId, IPNetwork Pool, IReadOnlyDictionary<string, string> Meta);

/// <summary>An address IPAM handed out.</summary>
/// <param name="Address">The address with the pool's prefix length; null when the IPAM gives none (null IPAM).</param>
/// <param name="Meta">Extra data.</param>
public sealed record AllocatedAddress(CidrAddress? Address, IReadOnlyDictionary<string, string> Meta);

/// <summary>
/// An IP address manager. Errors are <see cref="CnmException"/>s with the codes of libnetwork's well-known IPAM
/// errors (<see cref="CnmErrorCodes.PoolOverlap"/>, <see cref="CnmErrorCodes.NoAvailableIPs"/>, ...).
/// </summary>
public interface IIpamDriver
{
    /// <summary>What the IPAM needs.</summary>
    IpamCapability Capability { get; }

    /// <summary>The default local and global address spaces.</summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The address spaces.</returns>
    ValueTask<AddressSpaces> GetDefaultAddressSpacesAsync(CancellationToken cancellationToken = default);

    /// <summary>Reserves a pool.</summary>
    /// <param name="request">The request.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The pool.</returns>
    ValueTask<AllocatedPool> RequestPoolAsync(PoolRequest request, CancellationToken cancellationToken = default);

    /// <summary>Releases a pool.</summary>
    /// <param name="poolId">The pool id.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when released.</returns>
    ValueTask ReleasePoolAsync(string poolId, CancellationToken cancellationToken = default);

    /// <summary>Reserves an address in a pool: <paramref name="preferred"/> exactly, or any free one.</summary>
    /// <param name="poolId">The pool id.</param>
    /// <param name="preferred">The wanted address, or null.</param>
    /// <param name="options">Options (<see cref="NetLabels.RequestAddressType"/>, <see cref="NetLabels.IpamSerial"/>,
    /// <see cref="NetLabels.IpamOwner"/>, ...).</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The address.</returns>
    ValueTask<AllocatedAddress> RequestAddressAsync(string poolId, IPAddress? preferred, IReadOnlyDictionary<string, string> options, CancellationToken cancellationToken = default);

    /// <summary>Releases an address.</summary>
    /// <param name="poolId">The pool id.</param>
    /// <param name="address">The address.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when released.</returns>
    ValueTask ReleaseAddressAsync(string poolId, IPAddress address, CancellationToken cancellationToken = default);
}

/// <summary>An address and the owner it was requested for (<see cref="NetLabels.IpamOwner"/>).</summary>
/// <param name="Address">The address.</param>
/// <param name="Owner">The owner, or null when none was given.</param>
public sealed record OwnedAddress(IPAddress Address, string? Owner);

/// <summary>
/// An IPAM that remembers who asked for each address. The core uses it at start to release addresses whose owner no
/// longer exists (a crash between the IPAM's commit and the core's), so no address leaks across crashes.
/// </summary>
public interface IIpamOwnedAllocations
{
    /// <summary>The addresses allocated in a pool with their owners.</summary>
    /// <param name="poolId">The pool id.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The allocations.</returns>
    ValueTask<IReadOnlyList<OwnedAddress>> GetAllocationsAsync(string poolId, CancellationToken cancellationToken = default);

    /// <summary>The ids of every pool the IPAM holds.</summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The pool ids.</returns>
    ValueTask<IReadOnlyList<string>> GetPoolIdsAsync(CancellationToken cancellationToken = default);
}

/// <summary>
/// An IPAM that releases, in one idempotent call, every pool and address that was requested for an owner
/// (<see cref="NetLabels.IpamOwner"/>: an endpoint id, or <c>network:&lt;id&gt;</c> for a network's pools, gateways and
/// auxiliary addresses). The core calls it when it rolls back a create or finishes a delete, and at start for an
/// operation whose process died: between an IPAM's reply and the core's record of it the pool id or address is lost,
/// but the owner is not (the core records it before the call). Only what was requested for exactly that owner goes, so
/// an IPAM shared by several controllers (a plugin) is safe. Used when <see cref="IpamCapability.ReleasesByOwner"/> is
/// true; a remote IPAM is one when its plugin says so (docs/plugins.md, "CnmSharp extensions").
/// </summary>
public interface IIpamOwnerRelease
{
    /// <summary>Releases every pool and address requested for <paramref name="owner"/>; nothing when there is none.</summary>
    /// <param name="owner">The owner, as given with <see cref="NetLabels.IpamOwner"/>.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>How many pools and addresses were released.</returns>
    ValueTask<int> ReleaseOwnerAsync(string owner, CancellationToken cancellationToken = default);

    /// <summary>The release by owner of <paramref name="ipam"/>: the IPAM itself when its capability announces it and it
    /// implements this interface, else null.</summary>
    /// <param name="ipam">The IPAM.</param>
    /// <returns>The IPAM as an <see cref="IIpamOwnerRelease"/>, or null.</returns>
    static IIpamOwnerRelease? Of(IIpamDriver ipam)
    {
        ArgumentNullException.ThrowIfNull(ipam);
        return ipam.Capability.ReleasesByOwner ? ipam as IIpamOwnerRelease : null;
    }
}

/// <summary>Registers an IPAM with a controller; each controller creates its own instance.</summary>
public interface IIpamDriverFactory
{
    /// <summary>The IPAM's name (<c>default</c>, <c>null</c>, a plugin name).</summary>
    string Name { get; }

    /// <summary>Creates the IPAM for one controller, restoring its persisted state.</summary>
    /// <param name="context">The controller's store and logging.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The IPAM.</returns>
    ValueTask<IIpamDriver> CreateAsync(DriverContext context, CancellationToken cancellationToken = default);
}

/// <summary>Names used by IPAMs.</summary>
public static class IpamNames
{
    /// <summary>The default IPAM.</summary>
    public const string Default = "default";

    /// <summary>The null IPAM.</summary>
    public const string Null = "null";

    /// <summary>The default local address space.</summary>
    public const string LocalDefaultAddressSpace = "LocalDefault";

    /// <summary>The default global address space.</summary>
    public const string GlobalDefaultAddressSpace = "GlobalDefault";
}
