using System.Net;
using CnmSharp.Store;
using Microsoft.Extensions.Logging;

namespace CnmSharp.Ipam.Default;

/// <summary>The per-pool usage the core exports as gauges.</summary>
/// <param name="PoolId">The master pool's id.</param>
/// <param name="Allocated">The addresses handed out.</param>
/// <param name="Size">The addresses that can be handed out (the network and IPv4 broadcast addresses excluded).</param>
internal readonly record struct PoolUsage(string PoolId, UInt128 Allocated, UInt128 Size);

public sealed partial class DefaultIpam
{
    private static readonly IReadOnlyDictionary<string, string> s_emptyMeta = new Dictionary<string, string>(StringComparer.Ordinal);

    /// <summary>The usable offsets of a master pool: all but the network address and, for IPv4, the broadcast
    /// address; /31 and /32 (and IPv6 /127 and /128) have no network or broadcast address (RFC 3021, RFC 6164), so
    /// every address is usable.</summary>
    internal static (UInt128 Lo, UInt128 Hi) UsableRange(IPNetwork network)
    {
        var last = IpMath.LastOffset(network);
        var hostBits = IpMath.Bits(network.BaseAddress) - network.PrefixLength;
        if (hostBits <= 1)
        {
            return (UInt128.Zero, last);
        }

        return network.IsIPv6() ? (UInt128.One, last) : (UInt128.One, last - 1);
    }

    private static string MasterId(string space, IPNetwork network) => space + "/" + IpMath.Format(network);

    private static MasterPool NewMaster(string space, IPNetwork network, int refCount, bool isExplicit, long version)
    {
        var (lo, hi) = UsableRange(network);
        return new MasterPool
        {
            Id = MasterId(space, network),
            AddressSpace = space,
            Network = network,
            IPv6 = network.IsIPv6(),
            First = IpMath.ToUInt128(network.BaseAddress),
            Lo = lo,
            Hi = hi,
            RefCount = refCount,
            Explicit = isExplicit,
            Version = version,
        };
    }

    private static SubPool NewSub(MasterPool master, IPNetwork range, long version)
    {
        var (first, last) = IpMath.Range(range);
        return new SubPool
        {
            Id = master.Id + "/" + IpMath.Format(range),
            MasterId = master.Id,
            Range = range,
            RawLo = first - master.First,
            RawHi = last - master.First,
            Version = version,
        };
    }

    private SpaceState Space(string name)
    {
        if (!_spaces.TryGetValue(name, out var space))
        {
            space = new SpaceState { Name = name };
            _spaces.Add(name, space);
        }

        return space;
    }

    /// <summary>Rebuilds the whole in-memory state from the store. Serial cursors survive.</summary>
    private async ValueTask ReloadAsync(CancellationToken cancellationToken)
    {
        var entries = new List<(StoreEntry Entry, int PrefixLength)>();
        foreach (var (store, prefix) in Stores())
        {
            foreach (var listed in await store.ListAsync(prefix, cancellationToken).ConfigureAwait(false))
            {
                entries.Add((listed, prefix.Length));
            }
        }

        var cursors = _masters.ToDictionary(m => m.Key, m => m.Value.SerialCursor, StringComparer.Ordinal);
        _spaces.Clear();
        _masters.Clear();
        _subs.Clear();
        var subRecords = new List<(PoolRecord Record, long Version, string Key)>();
        var addresses = new List<(StoreEntry Entry, int PrefixLength)>();
        foreach (var (entry, prefixLength) in entries)
        {
            var rest = entry.Key.AsSpan(prefixLength);
            if (rest.StartsWith(IpamStoreLayout.SpaceSegment, StringComparison.Ordinal))
            {
                var record = IpamStoreLayout.ReadSpace(entry);
                var space = Space(record.AddressSpace);
                space.Version = entry.Version;
                space.Generation = record.Generation;
                space.NextV4 = ParseIndex(record.NextV4, entry.Key);
                space.NextV6 = ParseIndex(record.NextV6, entry.Key);
            }
            else if (rest.StartsWith(IpamStoreLayout.PoolSegment, StringComparison.Ordinal))
            {
                var record = IpamStoreLayout.ReadPool(entry);
                if (record.SubPool is not null)
                {
                    subRecords.Add((record, entry.Version, entry.Key));
                    continue;
                }

                var network = ParseStoredNetwork(record.Pool, entry.Key);
                var master = NewMaster(record.AddressSpace, network, record.RefCount, record.Explicit, entry.Version);
                master.Owner = record.Owner;
                master.SerialCursor = cursors.GetValueOrDefault(master.Id);
                _masters[master.Id] = master;
            }
            else if (rest.StartsWith(IpamStoreLayout.AddressSegment, StringComparison.Ordinal))
            {
                addresses.Add((entry, prefixLength));
            }
        }

        foreach (var (record, version, key) in subRecords)
        {
            var network = ParseStoredNetwork(record.Pool, key);
            if (!_masters.TryGetValue(MasterId(record.AddressSpace, network), out var master))
            {
                LogOrphan(_logger, key);
                continue;
            }

            var sub = NewSub(master, ParseStoredNetwork(record.SubPool!, key), version);
            _subs[sub.Id] = sub;
        }

        foreach (var (entry, prefixLength) in addresses)
        {
            var rest = entry.Key.AsSpan(prefixLength + IpamStoreLayout.AddressSegment.Length);
            var slash = rest.LastIndexOf('/');
            if (slash < 0
                || !_masters.TryGetValue(rest[..slash].ToString(), out var master)
                || !IPAddress.TryParse(rest[(slash + 1)..], out var address)
                || !master.Network.Contains(address))
            {
                // Left behind by a pool released while another instance allocated; ignored, and removed when the
                // pool is created again.
                LogOrphan(_logger, entry.Key);
                continue;
            }

            master.Allocated.Add(IpMath.ToUInt128(address) - master.First);
        }

        Publish();
    }

    /// <summary>
    /// Re-reads one master pool after a conflict on it: its record (version, references) and its addresses only, not
    /// the whole IPAM state. A pool that is gone or changed shape (released, or released and created again elsewhere)
    /// falls back to <see cref="ReloadAsync"/>, which is rare.
    /// </summary>
    private async ValueTask ReloadPoolAsync(MasterPool master, CancellationToken cancellationToken)
    {
        var store = StoreOf(master.AddressSpace);
        var entry = await store.GetAsync(IpamStoreLayout.PoolKey(PrefixOf(master.AddressSpace), master.Id), cancellationToken).ConfigureAwait(false);
        var record = entry is null ? null : IpamStoreLayout.ReadPool(entry);
        if (entry is null || record is null || record.SubPool is not null || !_masters.TryGetValue(master.Id, out var known) || !ReferenceEquals(known, master))
        {
            await ReloadAsync(cancellationToken).ConfigureAwait(false);
            return;
        }

        master.Version = entry.Version;
        master.RefCount = record.RefCount;
        master.Explicit = record.Explicit;
        master.Owner = record.Owner;
        var prefix = IpamStoreLayout.AddressPrefix(PrefixOf(master.AddressSpace), master.Id);
        var addresses = await store.ListAsync(prefix, cancellationToken).ConfigureAwait(false);
        master.Allocated.Clear();
        foreach (var address in addresses)
        {
            var text = address.Key.AsSpan(prefix.Length);
            if (!text.Contains('/') && IPAddress.TryParse(text, out var ip) && master.Network.Contains(ip))
            {
                master.Allocated.Add(IpMath.ToUInt128(ip) - master.First);
            }
        }

        Publish();
    }

    private static UInt128 ParseIndex(string text, string key) =>
        UInt128.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var value)
            ? value
            : throw new CnmInternalException(CnmErrorCodes.CorruptRecord, $"IPAM record \"{key}\"", $"bad index \"{text}\"");

    private static IPNetwork ParseStoredNetwork(string text, string key) =>
        IPNetworks.TryParse(text, allowHostBits: false, out var network)
            ? network
            : throw new CnmInternalException(CnmErrorCodes.CorruptRecord, $"IPAM record \"{key}\"", $"bad subnet \"{text}\"");

    /// <summary>Publishes the per-pool usage for <see cref="Snapshot"/>.</summary>
    private void Publish()
    {
        var usage = new PoolUsage[_masters.Count];
        var i = 0;
        foreach (var master in _masters.Values)
        {
            usage[i++] = new PoolUsage(master.Id, master.Allocated.Count, master.Hi - master.Lo + 1);
        }

        Array.Sort(usage, static (a, b) => string.CompareOrdinal(a.PoolId, b.PoolId));
        _usage = usage;
    }

    private static PoolRecord ToRecord(MasterPool master, int refCount, bool isExplicit) => new()
    {
        AddressSpace = master.AddressSpace,
        Pool = IpMath.Format(master.Network),
        RefCount = refCount,
        Explicit = isExplicit,
        Owner = isExplicit ? master.Owner : null,
    };

    private static AddressSpaceRecord ToRecord(SpaceState space, UInt128 nextV4, UInt128 nextV6) => new()
    {
        AddressSpace = space.Name,
        Generation = space.Generation + 1,
        NextV4 = nextV4.ToString(System.Globalization.CultureInfo.InvariantCulture),
        NextV6 = nextV6.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };

    private static long Expected(long version) => version == 0 ? StoreVersion.Absent : version;

    private static StoreOperation Check(string key, long version) =>
        new(StoreOperationKind.Check, key, ReadOnlyMemory<byte>.Empty, version);

    private sealed class SpaceState
    {
        public required string Name { get; init; }

        /// <summary>The record's version, 0 while it does not exist.</summary>
        public long Version { get; set; }

        public long Generation { get; set; }

        public UInt128 NextV4 { get; set; }

        public UInt128 NextV6 { get; set; }
    }

    private sealed class MasterPool
    {
        public required string Id { get; init; }

        public required string AddressSpace { get; init; }

        public required IPNetwork Network { get; init; }

        public required bool IPv6 { get; init; }

        /// <summary>The network address as an integer.</summary>
        public required UInt128 First { get; init; }

        /// <summary>The first usable offset.</summary>
        public required UInt128 Lo { get; init; }

        /// <summary>The last usable offset.</summary>
        public required UInt128 Hi { get; init; }

        public int RefCount { get; set; }

        public bool Explicit { get; set; }

        /// <summary>Who requested the pool itself (<see cref="NetLabels.IpamOwner"/>), while <see cref="Explicit"/>.</summary>
        public string? Owner { get; set; }

        public long Version { get; set; }

        public AddressSet Allocated { get; } = new();

        /// <summary>Where the next serial allocation starts (in memory only).</summary>
        public UInt128 SerialCursor { get; set; }
    }

    private sealed class SubPool
    {
        public required string Id { get; init; }

        public required string MasterId { get; init; }

        public required IPNetwork Range { get; init; }

        /// <summary>The sub-pool's first offset in the master pool.</summary>
        public required UInt128 RawLo { get; init; }

        /// <summary>The sub-pool's last offset in the master pool.</summary>
        public required UInt128 RawHi { get; init; }

        public long Version { get; set; }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Ignoring IPAM record {Key} whose pool does not exist")]
    private static partial void LogOrphan(ILogger logger, string key);

    [LoggerMessage(Level = LogLevel.Debug, Message = "IPAM store conflict on attempt {Attempt}; reloading")]
    private static partial void LogConflict(ILogger logger, int attempt);

    [LoggerMessage(Level = LogLevel.Debug, Message = "IPAM pool {PoolId} requested")]
    private static partial void LogPoolRequested(ILogger logger, string poolId);

    [LoggerMessage(Level = LogLevel.Debug, Message = "IPAM pool {PoolId} released")]
    private static partial void LogPoolReleased(ILogger logger, string poolId);

    [LoggerMessage(Level = LogLevel.Debug, Message = "IPAM released {Count} pools and addresses of owner {Owner}")]
    private static partial void LogOwnerReleased(ILogger logger, string owner, int count);
}
