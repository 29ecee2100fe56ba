using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Net;
using CnmSharp.Drivers;
using CnmSharp.Store;
using Microsoft.Extensions.Logging;

namespace CnmSharp.Ipam.Default;

/// <summary>
/// The default IPAM: address spaces <c>LocalDefault</c> and <c>GlobalDefault</c>, predefined pools searched round
/// robin, sub-pools sharing their parent's allocations, first-free or serial address allocation. Every pool and every
/// allocated address is a record in the controller's store, written with compare-and-swap, so several instances on
/// one store and a restarted instance never hand out an address twice. Created by <see cref="DefaultIpamFactory"/>.
/// </summary>
/// <remarks>
/// Allocations are kept in an <c>AddressSet</c> of runs: memory grows with the number of allocated addresses, not
/// with the size of the pool (IPv6 /64 and /48 pools are fine), and the free search is O(log r) in the number of
/// runs. Calls are serialized per instance; the store arbitrates between instances.
/// </remarks>
[SuppressMessage("Design", "CA1001:Types that own disposable fields should be disposable",
    Justification = "The SemaphoreSlim never allocates a wait handle (AvailableWaitHandle is not used), so it holds nothing to release; IPAM drivers have no disposal in the contract.")]
public sealed partial class DefaultIpam : IIpamDriver, IIpamOwnedAllocations, IIpamOwnerRelease, IStateReloadable
{
    /// <summary>How many times an operation is retried after a store version conflict.</summary>
    private const int MaxAttempts = 32;

    private readonly IKeyValueStore _store;
    private readonly string _prefix;

    /// <summary>Where <c>GlobalDefault</c> lives: the controller's global store (shared by every host, so two hosts
    /// never hand out one address: each address is a create-only key), or null to keep it in the local store.</summary>
    private readonly IKeyValueStore? _globalStore;
    private readonly string _globalPrefix;
    private readonly ILogger _logger;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly PredefinedPools _localPools;
    private readonly PredefinedPools _globalPools;
    private readonly PredefinedPools _v6Pools;
    private readonly Dictionary<string, SpaceState> _spaces = new(StringComparer.Ordinal);
    private readonly Dictionary<string, MasterPool> _masters = new(StringComparer.Ordinal);
    private readonly Dictionary<string, SubPool> _subs = new(StringComparer.Ordinal);
    private volatile PoolUsage[] _usage = [];

    private DefaultIpam(DriverContext context, DefaultIpamOptions options)
    {
        _store = context.Store;
        _prefix = context.StoreKeyPrefix;
        _globalStore = context.GlobalStore;
        _globalPrefix = context.GlobalStoreKeyPrefix ?? context.StoreKeyPrefix;
        _logger = context.LoggerFactory.CreateLogger<DefaultIpam>();
        _localPools = new PredefinedPools(options.LocalPools);
        _globalPools = new PredefinedPools(options.GlobalPools);
        _v6Pools = new PredefinedPools(options.IPv6Pools);
    }

    /// <inheritdoc />
    public IpamCapability Capability { get; } = new(ReleasesByOwner: true);

    /// <summary>Creates an instance and loads its state from the store.</summary>
    internal static async ValueTask<DefaultIpam> CreateAsync(DriverContext context, DefaultIpamOptions options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentException.ThrowIfNullOrEmpty(context.StoreKeyPrefix);
        var ipam = new DefaultIpam(context, options);
        await ipam.ReloadAsync(cancellationToken).ConfigureAwait(false);
        return ipam;
    }

    /// <inheritdoc />
    /// <remarks>Every write is a compare-and-swap that reloads on conflict anyway; this also refreshes what reads
    /// (<see cref="GetPoolIdsAsync"/>, <see cref="GetAllocationsAsync"/>) answer from memory.</remarks>
    async ValueTask IStateReloadable.ReloadAsync(CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await ReloadAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Per master pool usage, for the core's observable gauges. Lock-free; a consistent snapshot taken
    /// after the last completed operation.</summary>
    /// <returns>The usage of each master pool, ordered by pool id.</returns>
    internal IReadOnlyList<PoolUsage> Snapshot() => _usage;

    /// <inheritdoc />
    public ValueTask<AddressSpaces> GetDefaultAddressSpacesAsync(CancellationToken cancellationToken = default) =>
        ValueTask.FromResult(new AddressSpaces(IpamNames.LocalDefaultAddressSpace, IpamNames.GlobalDefaultAddressSpace));

    /// <inheritdoc />
    public async ValueTask<AllocatedPool> RequestPoolAsync(PoolRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        var space = request.AddressSpace;
        if (string.IsNullOrEmpty(space))
        {
            throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidAddressSpace, "address space \"\"", "the address space is empty");
        }

        if (space is not IpamNames.LocalDefaultAddressSpace and not IpamNames.GlobalDefaultAddressSpace)
        {
            throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidAddressSpace, $"address space \"{space}\"", "unknown address space");
        }

        var hasPool = !string.IsNullOrEmpty(request.Pool);
        var hasSub = !string.IsNullOrEmpty(request.SubPool);
        if (hasSub && !hasPool)
        {
            throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidSubPool, $"sub-pool \"{request.SubPool}\"", "a sub-pool needs a pool");
        }

        IPNetwork? pool = null;
        IPNetwork? sub = null;
        if (hasPool)
        {
            if (!IPNetworks.TryParse(request.Pool, allowHostBits: true, out var parsed))
            {
                throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidPool, $"pool \"{request.Pool}\"", "not a subnet in CIDR form");
            }

            if (parsed.IsIPv6() != request.IPv6)
            {
                throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidPool, $"pool \"{request.Pool}\"",
                    request.IPv6 ? "an IPv6 pool was requested" : "an IPv4 pool was requested");
            }

            pool = parsed;
        }

        if (hasSub)
        {
            if (!IPNetworks.TryParse(request.SubPool, allowHostBits: true, out var parsed))
            {
                throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidSubPool, $"sub-pool \"{request.SubPool}\"", "not a subnet in CIDR form");
            }

            var master = pool!.Value;
            if (parsed.IsIPv6() != master.IsIPv6() || parsed.PrefixLength < master.PrefixLength || !master.Contains(parsed.BaseAddress))
            {
                throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidSubPool, $"sub-pool \"{request.SubPool}\"", $"not inside pool {master}");
            }

            sub = parsed;
        }

        var owner = OwnerOf(request.Options);
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            for (var attempt = 1; ; attempt++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                try
                {
                    AllocatedPool result;
                    if (pool is null)
                    {
                        result = await AllocatePredefinedAsync(space, request, owner, cancellationToken).ConfigureAwait(false);
                    }
                    else if (sub is null)
                    {
                        result = await AllocateMasterAsync(space, pool.Value, owner, cancellationToken).ConfigureAwait(false);
                    }
                    else
                    {
                        result = await AllocateSubAsync(space, pool.Value, sub.Value, owner, cancellationToken).ConfigureAwait(false);
                    }

                    Publish();
                    LogPoolRequested(_logger, result.PoolId);
                    return result;
                }
                catch (CnmConflictException ex) when (ex.Code == CnmErrorCodes.VersionConflict && attempt < MaxAttempts)
                {
                    LogConflict(_logger, attempt);
                    await ReloadAsync(cancellationToken).ConfigureAwait(false);
                }
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <inheritdoc />
    public async ValueTask ReleasePoolAsync(string poolId, CancellationToken cancellationToken = default)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            for (var attempt = 1; ; attempt++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                try
                {
                    await ReleasePoolCoreAsync(poolId, cancellationToken).ConfigureAwait(false);
                    Publish();
                    LogPoolReleased(_logger, poolId);
                    return;
                }
                catch (CnmConflictException ex) when (ex.Code == CnmErrorCodes.VersionConflict && attempt < MaxAttempts)
                {
                    LogConflict(_logger, attempt);
                    await ReloadAsync(cancellationToken).ConfigureAwait(false);
                }
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <inheritdoc />
    public async ValueTask<AllocatedAddress> RequestAddressAsync(string poolId, IPAddress? preferred, IReadOnlyDictionary<string, string> options, CancellationToken cancellationToken = default)
    {
        options ??= s_emptyMeta;
        var serial = options.TryGetValue(NetLabels.IpamSerial, out var serialText) && bool.TryParse(serialText, out var isSerial) && isSerial;
        var owner = OwnerOf(options);
        var value = IpamStoreLayout.Serialize(new AddressRecord { Owner = owner });

        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var reloadedWhenFull = false;
            for (var attempt = 1; ; attempt++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var (master, sub) = await ResolveAsync(poolId, cancellationToken).ConfigureAwait(false);
                var lo = master.Lo;
                var hi = master.Hi;
                if (sub is not null)
                {
                    lo = UInt128.Max(lo, sub.RawLo);
                    hi = UInt128.Min(hi, sub.RawHi);
                }

                UInt128 offset;
                if (preferred is not null)
                {
                    offset = CheckPreferred(master, preferred);
                    if (master.Allocated.Contains(offset))
                    {
                        // Confirm with the store: another instance may have released it.
                        var existing = await StoreOf(master.AddressSpace).GetAsync(AddressKey(master, offset), cancellationToken).ConfigureAwait(false);
                        if (existing is not null)
                        {
                            throw new CnmConflictException(CnmErrorCodes.IPAlreadyAllocated, $"address {preferred}", "Address already in use");
                        }

                        master.Allocated.Remove(offset);
                    }
                }
                else
                {
                    var found = serial
                        ? master.Allocated.TryFindFreeFrom(master.SerialCursor, lo, hi, out offset)
                        : master.Allocated.TryFindFree(lo, hi, out offset);
                    if (!found)
                    {
                        if (!reloadedWhenFull)
                        {
                            // Another instance may have released addresses of this pool since we last looked.
                            reloadedWhenFull = true;
                            await ReloadPoolAsync(master, cancellationToken).ConfigureAwait(false);
                            continue;
                        }

                        throw new CnmUnavailableException(CnmErrorCodes.NoAvailableIPs, $"pool {poolId}", "no available IP addresses in the pool");
                    }
                }

                try
                {
                    await StoreOf(master.AddressSpace).CommitAsync(
                        [
                            Check(IpamStoreLayout.PoolKey(PrefixOf(master.AddressSpace), master.Id), master.Version),
                            StoreOperation.Put(AddressKey(master, offset), value, StoreVersion.Absent),
                        ],

                        // Pools are declared state (their writes are durable); an address is handed out per container
                        // (a network's gateway and auxiliary addresses are made durable by the network's own durable
                        // commit after them). An address record a power loss undoes is found by its owner at start.
                        StoreDurability.Relaxed,
                        cancellationToken).ConfigureAwait(false);
                }
                catch (CnmConflictException ex) when (ex.Code == CnmErrorCodes.VersionConflict && attempt < MaxAttempts)
                {
                    // Only this pool's record or one of its addresses conflicted: re-read that pool, not everything.
                    LogConflict(_logger, attempt);
                    await ReloadPoolAsync(master, cancellationToken).ConfigureAwait(false);
                    continue;
                }

                master.Allocated.Add(offset);
                if (serial)
                {
                    master.SerialCursor = offset + 1;
                }

                Publish();
                var address = IpMath.FromUInt128(master.First + offset, master.IPv6);
                return new AllocatedAddress(new CidrAddress(address, master.Network.PrefixLength), s_emptyMeta);
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <inheritdoc />
    public async ValueTask ReleaseAddressAsync(string poolId, IPAddress address, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(address);
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var (master, _) = await ResolveAsync(poolId, cancellationToken).ConfigureAwait(false);
            if (address.AddressFamily != master.Network.BaseAddress.AddressFamily || !master.Network.Contains(address))
            {
                throw new CnmInvalidArgumentException(CnmErrorCodes.IPOutOfRange, $"address {address}", $"outside pool {master.Network}");
            }

            var offset = IpMath.ToUInt128(address) - master.First;
            if (offset < master.Lo || offset > master.Hi)
            {
                return; // The network and broadcast addresses are never allocated.
            }

            await StoreOf(master.AddressSpace).DeleteAsync(AddressKey(master, offset), StoreVersion.Any, StoreDurability.Relaxed, cancellationToken).ConfigureAwait(false);
            master.Allocated.Remove(offset);
            Publish();
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <inheritdoc />
    /// <remarks>A sub-pool shares its master pool's allocations, so a sub-pool id lists every address of the
    /// master pool (a gateway may lie outside the sub-pool). Read from the store, so allocations of other
    /// instances are included.</remarks>
    public async ValueTask<IReadOnlyList<OwnedAddress>> GetAllocationsAsync(string poolId, CancellationToken cancellationToken = default)
    {
        string masterId;
        string space;
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var (master, _) = await ResolveAsync(poolId, cancellationToken).ConfigureAwait(false);
            masterId = master.Id;
            space = master.AddressSpace;
        }
        finally
        {
            _gate.Release();
        }

        var addressPrefix = IpamStoreLayout.AddressPrefix(PrefixOf(space), masterId);
        var entries = await StoreOf(space).ListAsync(addressPrefix, cancellationToken).ConfigureAwait(false);
        var result = new List<(UInt128 Value, OwnedAddress Address)>(entries.Count);
        foreach (var entry in entries)
        {
            var text = entry.Key.AsSpan(addressPrefix.Length);
            if (text.Contains('/') || !IPAddress.TryParse(text, out var address))
            {
                continue;
            }

            var record = IpamStoreLayout.ReadAddress(entry);
            result.Add((IpMath.ToUInt128(address), new OwnedAddress(address, record.Owner)));
        }

        result.Sort(static (a, b) => a.Value.CompareTo(b.Value));
        return result.ConvertAll(static r => r.Address);
    }

    /// <inheritdoc />
    /// <remarks>Master pools requested themselves and sub-pools, read from the store; a master pool that exists
    /// only as the parent of sub-pools is not listed.</remarks>
    public async ValueTask<IReadOnlyList<string>> GetPoolIdsAsync(CancellationToken cancellationToken = default)
    {
        var ids = new List<string>();
        foreach (var (store, prefix) in Stores())
        {
            var poolPrefix = prefix + IpamStoreLayout.PoolSegment;
            foreach (var entry in await store.ListAsync(poolPrefix, cancellationToken).ConfigureAwait(false))
            {
                var record = IpamStoreLayout.ReadPool(entry);
                if (record.SubPool is not null || record.Explicit)
                {
                    ids.Add(entry.Key[poolPrefix.Length..]);
                }
            }
        }

        ids.Sort(StringComparer.Ordinal);
        return ids;
    }

    /// <inheritdoc />
    /// <remarks>Read from the store, so what another instance allocated for the owner goes too. An address record is
    /// deleted at the version it was read at, so one released and handed to someone else in between stays; pools go
    /// through <see cref="ReleasePoolAsync"/> (with the addresses a removed pool takes along).</remarks>
    public async ValueTask<int> ReleaseOwnerAsync(string owner, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(owner);
        var released = 0;
        var pools = new List<string>();
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            foreach (var (store, prefix) in Stores())
            {
                foreach (var entry in await store.ListAsync(prefix + IpamStoreLayout.AddressSegment, cancellationToken).ConfigureAwait(false))
                {
                    if (!string.Equals(IpamStoreLayout.ReadAddress(entry).Owner, owner, StringComparison.Ordinal))
                    {
                        continue;
                    }

                    try
                    {
                        await store.DeleteAsync(entry.Key, entry.Version, StoreDurability.Durable, cancellationToken).ConfigureAwait(false);
                        released++;
                    }
                    catch (CnmException ex) when (ex.Code is CnmErrorCodes.VersionConflict || ex.Kind is CnmErrorKind.NotFound)
                    {
                        // Released (and perhaps handed out again) in between: no longer the owner's.
                    }
                }

                var poolPrefix = prefix + IpamStoreLayout.PoolSegment;
                foreach (var entry in await store.ListAsync(poolPrefix, cancellationToken).ConfigureAwait(false))
                {
                    var record = IpamStoreLayout.ReadPool(entry);
                    if (string.Equals(record.Owner, owner, StringComparison.Ordinal) && (record.SubPool is not null || record.Explicit))
                    {
                        pools.Add(entry.Key[poolPrefix.Length..]);
                    }
                }
            }

            await ReloadAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }

        // Sub-pools before their master pools (a longer id), so a master's last reference goes last.
        foreach (var poolId in pools.OrderByDescending(p => p.Length))
        {
            try
            {
                await ReleasePoolAsync(poolId, cancellationToken).ConfigureAwait(false);
                released++;
            }
            catch (CnmException ex) when (ex.Code is CnmErrorCodes.PoolNotFound)
            {
                // Released in between.
            }
        }

        LogOwnerReleased(_logger, owner, released);
        return released;
    }

    private static string? OwnerOf(IReadOnlyDictionary<string, string> options) =>
        options.TryGetValue(NetLabels.IpamOwner, out var owner) && !string.IsNullOrEmpty(owner) ? owner : null;

    /// <summary>The store an address space's records live in.</summary>
    private IKeyValueStore StoreOf(string space) =>
        _globalStore is not null && string.Equals(space, IpamNames.GlobalDefaultAddressSpace, StringComparison.Ordinal) ? _globalStore : _store;

    /// <summary>The key prefix of an address space's records (in <see cref="StoreOf"/>).</summary>
    private string PrefixOf(string space) =>
        _globalStore is not null && string.Equals(space, IpamNames.GlobalDefaultAddressSpace, StringComparison.Ordinal) ? _globalPrefix : _prefix;

    /// <summary>Every store the IPAM's records live in, with its prefix: the local one, and the global one when the
    /// controller has it. A global record found in the local store (GlobalDefault used before a global store was
    /// configured) is read too.</summary>
    private IEnumerable<(IKeyValueStore Store, string Prefix)> Stores() =>
        _globalStore is null ? [(_store, _prefix)] : [(_store, _prefix), (_globalStore, _globalPrefix)];

    private string AddressKey(MasterPool master, UInt128 offset) =>
        IpamStoreLayout.AddressKey(PrefixOf(master.AddressSpace), master.Id, IpMath.FromUInt128(master.First + offset, master.IPv6).ToString());

    /// <summary>A requested address may be anywhere in the subnet, also outside a sub-pool's range (as in libnetwork:
    /// the range bounds only what is handed out dynamically, so <c>--ip-range 10.0.1.0/24 --gateway 10.0.0.1</c> and
    /// a static <c>--ip</c> outside the range work).</summary>
    private static UInt128 CheckPreferred(MasterPool master, IPAddress preferred)
    {
        if (preferred.AddressFamily != master.Network.BaseAddress.AddressFamily || !master.Network.Contains(preferred))
        {
            throw new CnmInvalidArgumentException(CnmErrorCodes.IPOutOfRange, $"address {preferred}", $"outside pool {master.Network}");
        }

        var offset = IpMath.ToUInt128(preferred) - master.First;

        if (offset < master.Lo || offset > master.Hi)
        {
            throw new CnmConflictException(CnmErrorCodes.IPAlreadyAllocated, $"address {preferred}",
                "Address already in use (the network and broadcast addresses are reserved)");
        }

        return offset;
    }

    /// <summary>Finds a pool by id, reloading once from the store when it is unknown (another instance may have
    /// created it).</summary>
    private async ValueTask<(MasterPool Master, SubPool? Sub)> ResolveAsync(string poolId, CancellationToken cancellationToken)
    {
        if (TryResolve(poolId, out var found))
        {
            return found;
        }

        if (!string.IsNullOrEmpty(poolId))
        {
            await ReloadAsync(cancellationToken).ConfigureAwait(false);
            if (TryResolve(poolId, out found))
            {
                return found;
            }
        }

        throw PoolNotFound(poolId);
    }

    private bool TryResolve(string poolId, out (MasterPool Master, SubPool? Sub) found)
    {
        found = default;
        if (string.IsNullOrEmpty(poolId))
        {
            return false;
        }

        if (_subs.TryGetValue(poolId, out var sub) && _masters.TryGetValue(sub.MasterId, out var parent))
        {
            found = (parent, sub);
            return true;
        }

        if (_masters.TryGetValue(poolId, out var master) && master.Explicit)
        {
            found = (master, null);
            return true;
        }

        return false;
    }

    private static CnmInvalidArgumentException PoolNotFound(string? poolId) =>
        new(CnmErrorCodes.PoolNotFound, $"pool \"{poolId}\"", "no such pool");

    private static CnmConflictException Overlap(string subject, string reason) =>
        new(CnmErrorCodes.PoolOverlap, subject, reason);

    /// <summary>The first and last address of every master pool of <paramref name="space"/> in the family, plus
    /// <paramref name="extra"/>.</summary>
    private List<(UInt128 First, UInt128 Last)> Blockers(string space, bool ipv6, IEnumerable<IPNetwork> extra)
    {
        var blockers = new List<(UInt128, UInt128)>();
        foreach (var master in _masters.Values)
        {
            if (master.AddressSpace == space && master.IPv6 == ipv6)
            {
                blockers.Add(IpMath.Range(master.Network));
            }
        }

        foreach (var network in extra)
        {
            if (network.BaseAddress is not null && network.IsIPv6() == ipv6)
            {
                blockers.Add(IpMath.Range(network));
            }
        }

        return blockers;
    }

    private void ThrowIfOverlaps(string space, IPNetwork network)
    {
        foreach (var master in _masters.Values)
        {
            if (master.AddressSpace == space && master.Network.Overlaps(network))
            {
                throw Overlap($"pool {network}", $"overlaps pool {master.Network} of address space {space}");
            }
        }
    }

    private async ValueTask<AllocatedPool> AllocatePredefinedAsync(string space, PoolRequest request, string? owner, CancellationToken cancellationToken)
    {
        var pools = request.IPv6 ? _v6Pools : space == IpamNames.LocalDefaultAddressSpace ? _localPools : _globalPools;
        var state = Space(space);
        var start = request.IPv6 ? state.NextV6 : state.NextV4;
        var blockers = Blockers(space, request.IPv6, request.Exclude ?? []);
        if (!pools.TryFind(start, blockers, out var network, out var index))
        {
            throw new CnmUnavailableException(CnmErrorCodes.NoAvailablePool, $"address space {space}",
                string.Create(CultureInfo.InvariantCulture, $"could not find an available, non-overlapping {(request.IPv6 ? "IPv6" : "IPv4")} address pool"));
        }

        var next = index + 1 >= pools.Total ? 0 : index + 1;
        var master = await CreateMasterAsync(space, network, request.IPv6 ? state.NextV4 : next, request.IPv6 ? next : state.NextV6, owner, cancellationToken).ConfigureAwait(false);
        return new AllocatedPool(master.Id, master.Network, s_emptyMeta);
    }

    private async ValueTask<AllocatedPool> AllocateMasterAsync(string space, IPNetwork network, string? owner, CancellationToken cancellationToken)
    {
        var id = MasterId(space, network);
        if (_masters.ContainsKey(id))
        {
            throw Overlap($"pool {id}", "the pool is already allocated");
        }

        ThrowIfOverlaps(space, network);
        var state = Space(space);
        var master = await CreateMasterAsync(space, network, state.NextV4, state.NextV6, owner, cancellationToken).ConfigureAwait(false);
        return new AllocatedPool(master.Id, master.Network, s_emptyMeta);
    }

    private async ValueTask<AllocatedPool> AllocateSubAsync(string space, IPNetwork network, IPNetwork range, string? owner, CancellationToken cancellationToken)
    {
        var masterId = MasterId(space, network);
        var subId = masterId + "/" + IpMath.Format(range);
        if (_subs.ContainsKey(subId))
        {
            throw Overlap($"pool {subId}", "the sub-pool is already allocated");
        }

        if (_masters.TryGetValue(masterId, out var master))
        {
            var subRecord = new PoolRecord { AddressSpace = space, Pool = IpMath.Format(network), SubPool = IpMath.Format(range), Owner = owner };
            var versions = await StoreOf(space).CommitAsync(
                [
                    StoreOperation.Put(IpamStoreLayout.PoolKey(PrefixOf(space), masterId), IpamStoreLayout.Serialize(ToRecord(master, master.RefCount + 1, master.Explicit)), master.Version),
                    StoreOperation.Put(IpamStoreLayout.PoolKey(PrefixOf(space), subId), IpamStoreLayout.Serialize(subRecord), StoreVersion.Absent),
                ],
                cancellationToken).ConfigureAwait(false);
            master.RefCount++;
            master.Version = versions[0];
            var sub = NewSub(master, range, versions[1]);
            _subs[sub.Id] = sub;
            return new AllocatedPool(sub.Id, network, s_emptyMeta);
        }

        ThrowIfOverlaps(space, network);
        var state = Space(space);
        var created = await CreateMasterAsync(space, network, state.NextV4, state.NextV6, owner, cancellationToken, range).ConfigureAwait(false);
        var createdSub = _subs[created.Id + "/" + IpMath.Format(range)];
        return new AllocatedPool(createdSub.Id, network, s_emptyMeta);
    }

    /// <summary>Creates a master pool (explicit, or implicit as the parent of <paramref name="subPool"/>) in one
    /// atomic commit that also advances the address space record and removes addresses a racing instance left
    /// behind under the same pool id.</summary>
    private async ValueTask<MasterPool> CreateMasterAsync(string space, IPNetwork network, UInt128 nextV4, UInt128 nextV6, string? owner, CancellationToken cancellationToken, IPNetwork? subPool = null)
    {
        var state = Space(space);
        var master = NewMaster(space, network, refCount: 1, isExplicit: subPool is null, version: 0);
        master.Owner = subPool is null ? owner : null;
        var leftovers = await StoreOf(space).ListAsync(IpamStoreLayout.AddressPrefix(PrefixOf(space), master.Id), cancellationToken).ConfigureAwait(false);
        var operations = new List<StoreOperation>(3 + leftovers.Count)
        {
            StoreOperation.Put(IpamStoreLayout.SpaceKey(PrefixOf(space), space), IpamStoreLayout.Serialize(ToRecord(state, nextV4, nextV6)), Expected(state.Version)),
            StoreOperation.Put(IpamStoreLayout.PoolKey(PrefixOf(space), master.Id), IpamStoreLayout.Serialize(ToRecord(master, 1, subPool is null)), StoreVersion.Absent),
        };
        if (subPool is { } range)
        {
            var subRecord = new PoolRecord { AddressSpace = space, Pool = IpMath.Format(network), SubPool = IpMath.Format(range), Owner = owner };
            operations.Add(StoreOperation.Put(IpamStoreLayout.PoolKey(PrefixOf(space), master.Id + "/" + IpMath.Format(range)), IpamStoreLayout.Serialize(subRecord), StoreVersion.Absent));
        }

        foreach (var leftover in leftovers)
        {
            operations.Add(StoreOperation.Delete(leftover.Key, leftover.Version));
        }

        var versions = await StoreOf(space).CommitAsync(operations, cancellationToken).ConfigureAwait(false);
        state.Version = versions[0];
        state.Generation++;
        state.NextV4 = nextV4;
        state.NextV6 = nextV6;
        master.Version = versions[1];
        _masters[master.Id] = master;
        if (subPool is { } created)
        {
            var sub = NewSub(master, created, versions[2]);
            _subs[sub.Id] = sub;
        }

        return master;
    }

    private async ValueTask ReleasePoolCoreAsync(string poolId, CancellationToken cancellationToken)
    {
        var operations = new List<StoreOperation>();
        MasterPool master;
        SubPool? sub = null;
        if (!string.IsNullOrEmpty(poolId) && _subs.TryGetValue(poolId, out sub))
        {
            master = _masters[sub.MasterId];
            operations.Add(StoreOperation.Delete(IpamStoreLayout.PoolKey(PrefixOf(master.AddressSpace), sub.Id), sub.Version));
        }
        else if (!string.IsNullOrEmpty(poolId) && _masters.TryGetValue(poolId, out var found) && found.Explicit)
        {
            master = found;
        }
        else
        {
            throw PoolNotFound(poolId);
        }

        var refCount = master.RefCount - 1;
        var isExplicit = sub is not null && master.Explicit;
        var masterKey = IpamStoreLayout.PoolKey(PrefixOf(master.AddressSpace), master.Id);
        var removed = refCount <= 0;
        SpaceState? state = null;
        if (removed)
        {
            // No check for allocated addresses (as libnetwork): the pool's allocations go with it.
            state = Space(master.AddressSpace);
            operations.Add(StoreOperation.Delete(masterKey, master.Version));
            operations.Add(StoreOperation.Put(IpamStoreLayout.SpaceKey(PrefixOf(master.AddressSpace), state.Name), IpamStoreLayout.Serialize(ToRecord(state, state.NextV4, state.NextV6)), Expected(state.Version)));
            var addresses = await StoreOf(master.AddressSpace).ListAsync(IpamStoreLayout.AddressPrefix(PrefixOf(master.AddressSpace), master.Id), cancellationToken).ConfigureAwait(false);
            foreach (var address in addresses)
            {
                operations.Add(StoreOperation.Delete(address.Key, StoreVersion.Any));
            }
        }
        else
        {
            operations.Add(StoreOperation.Put(masterKey, IpamStoreLayout.Serialize(ToRecord(master, refCount, isExplicit)), master.Version));
        }

        var versions = await StoreOf(master.AddressSpace).CommitAsync(operations, cancellationToken).ConfigureAwait(false);
        if (sub is not null)
        {
            _subs.Remove(sub.Id);
        }

        var masterIndex = sub is null ? 0 : 1;
        if (removed)
        {
            _masters.Remove(master.Id);
            state!.Version = versions[masterIndex + 1];
            state.Generation++;
        }
        else
        {
            master.RefCount = refCount;
            master.Explicit = isExplicit;
            master.Owner = isExplicit ? master.Owner : null;
            master.Version = versions[masterIndex];
        }
    }
}
