using System.Net;
using System.Runtime.CompilerServices;
using BenchmarkDotNet.Attributes;
using CnmSharp.Drivers;
using CnmSharp.Ipam;
using CnmSharp.Ipam.Default;
using CnmSharp.Store;
using Microsoft.Extensions.Logging.Abstractions;

namespace CnmSharp.Benchmarks;

/// <summary>How the already allocated addresses lie in the pool.</summary>
public enum IpamLayout
{
    /// <summary>One block from the start (first-free keeps it so).</summary>
    Contiguous,

    /// <summary>Every other address released: N/2 runs, the worst case for the run set.</summary>
    Fragmented,
}

/// <summary>The default IPAM: request and release one address on a pool with N addresses already allocated,
/// through an in-memory compare-and-swap store.</summary>
[MemoryDiagnoser]
public class IpamBenchmarks
{
    private IIpamDriver _ipam = null!;
    private string _poolId = null!;
    private readonly IReadOnlyDictionary<string, string> _options = new Dictionary<string, string> { [NetLabels.IpamOwner] = "endpoint" };

    /// <summary>The pool: an IPv4 /16 or an IPv6 /64.</summary>
    [Params("10.0.0.0/16", "fd00::/64")]
    public string Pool { get; set; } = "10.0.0.0/16";

    /// <summary>Addresses allocated before measuring.</summary>
    [Params(1_000, 30_000)]
    public int Allocated { get; set; }

    /// <summary>Their layout.</summary>
    [Params(IpamLayout.Contiguous, IpamLayout.Fragmented)]
    public IpamLayout Layout { get; set; }

    /// <summary>Creates the IPAM and fills the pool.</summary>
    [GlobalSetup]
    public async Task SetupAsync()
    {
        var context = new DriverContext
        {
            ControllerId = "bench",
            RunDirectory = Path.GetTempPath(),
            Store = new MemoryStore(),
            StoreKeyPrefix = "ipam/default/",
            LoggerFactory = NullLoggerFactory.Instance,
        };
        _ipam = await new DefaultIpamFactory().CreateAsync(context).ConfigureAwait(false);
        var ipv6 = Pool.Contains(':', StringComparison.Ordinal);
        _poolId = (await _ipam.RequestPoolAsync(new PoolRequest { AddressSpace = IpamNames.LocalDefaultAddressSpace, Pool = Pool, IPv6 = ipv6 }).ConfigureAwait(false)).PoolId;
        var count = Layout == IpamLayout.Fragmented ? Allocated * 2 : Allocated;
        var addresses = new List<IPAddress>(count);
        for (var i = 0; i < count; i++)
        {
            addresses.Add((await _ipam.RequestAddressAsync(_poolId, null, _options).ConfigureAwait(false)).Address!.Value.Address);
        }

        if (Layout == IpamLayout.Fragmented)
        {
            for (var i = 0; i < count; i += 2)
            {
                await _ipam.ReleaseAddressAsync(_poolId, addresses[i]).ConfigureAwait(false);
            }
        }
    }

    /// <summary>Requests the first free address and releases it.</summary>
    [Benchmark]
    public async Task RequestRelease()
    {
        var address = await _ipam.RequestAddressAsync(_poolId, null, _options).ConfigureAwait(false);
        await _ipam.ReleaseAddressAsync(_poolId, address.Address!.Value.Address).ConfigureAwait(false);
    }

    /// <summary>Requests an address for a new owner and releases it by that owner (<see cref="IIpamOwnerRelease"/>, what a
    /// create's rollback in a global network and the plugin host's deletes do): the release reads every address record
    /// and the pool records, and reloads the IPAM's state.</summary>
    [Benchmark]
    public async Task RequestReleaseByOwner()
    {
        var options = new Dictionary<string, string> { [NetLabels.IpamOwner] = "rollback" };
        await _ipam.RequestAddressAsync(_poolId, null, options).ConfigureAwait(false);
        await ((IIpamOwnerRelease)_ipam).ReleaseOwnerAsync("rollback").ConfigureAwait(false);
    }

    /// <summary>A minimal in-memory compare-and-swap store (the real ones live elsewhere).</summary>
    private sealed class MemoryStore : IKeyValueStore
    {
        private readonly Lock _lock = new();
        private readonly SortedDictionary<string, (byte[] Value, long Version)> _data = new(StringComparer.Ordinal);
        private long _counter;

        public ValueTask<long> GetRevisionAsync(CancellationToken cancellationToken = default)
        {
            lock (_lock)
            {
                return ValueTask.FromResult(_counter);
            }
        }

        public ValueTask<StoreEntry?> GetAsync(string key, CancellationToken cancellationToken = default)
        {
            lock (_lock)
            {
                return ValueTask.FromResult(_data.TryGetValue(key, out var v) ? new StoreEntry(key, v.Value, v.Version) : null);
            }
        }

        public ValueTask<IReadOnlyList<StoreEntry>> ListAsync(string prefix, CancellationToken cancellationToken = default)
        {
            lock (_lock)
            {
                IReadOnlyList<StoreEntry> list = [.. _data.Where(p => p.Key.StartsWith(prefix, StringComparison.Ordinal)).Select(p => new StoreEntry(p.Key, p.Value.Value, p.Value.Version))];
                return ValueTask.FromResult(list);
            }
        }

        // Nothing reaches a disk: the durability hint is ignored.
        public ValueTask<long> PutAsync(string key, ReadOnlyMemory<byte> value, long expectedVersion, StoreDurability durability, CancellationToken cancellationToken = default) =>
            PutAsync(key, value, expectedVersion, cancellationToken);

        public ValueTask<bool> DeleteAsync(string key, long expectedVersion, StoreDurability durability, CancellationToken cancellationToken = default) =>
            DeleteAsync(key, expectedVersion, cancellationToken);

        public ValueTask<IReadOnlyList<long>> CommitAsync(IReadOnlyList<StoreOperation> operations, StoreDurability durability, CancellationToken cancellationToken = default) =>
            CommitAsync(operations, cancellationToken);

        public async ValueTask<long> PutAsync(string key, ReadOnlyMemory<byte> value, long expectedVersion = StoreVersion.Any, CancellationToken cancellationToken = default) =>
            (await CommitAsync([StoreOperation.Put(key, value, expectedVersion)], cancellationToken).ConfigureAwait(false))[0];

        public async ValueTask<bool> DeleteAsync(string key, long expectedVersion = StoreVersion.Any, CancellationToken cancellationToken = default)
        {
            bool existed;
            lock (_lock)
            {
                existed = _data.ContainsKey(key);
            }

            await CommitAsync([StoreOperation.Delete(key, expectedVersion)], cancellationToken).ConfigureAwait(false);
            return existed;
        }

        public ValueTask<IReadOnlyList<long>> CommitAsync(IReadOnlyList<StoreOperation> operations, CancellationToken cancellationToken = default)
        {
            lock (_lock)
            {
                foreach (var op in operations)
                {
                    long? current = _data.TryGetValue(op.Key, out var d) ? d.Version : null;
                    var ok = op.ExpectedVersion switch
                    {
                        StoreVersion.Any => true,
                        StoreVersion.Absent => current is null,
                        _ => current == op.ExpectedVersion,
                    };
                    if (!ok)
                    {
                        throw new CnmConflictException(CnmErrorCodes.VersionConflict, op.Key, "version mismatch");
                    }
                }

                var versions = new long[operations.Count];
                for (var i = 0; i < operations.Count; i++)
                {
                    var op = operations[i];
                    if (op.Kind == StoreOperationKind.Put)
                    {
                        versions[i] = ++_counter;
                        _data[op.Key] = (op.Value.ToArray(), versions[i]);
                    }
                    else if (op.Kind == StoreOperationKind.Delete)
                    {
                        _data.Remove(op.Key);
                    }
                }

                return ValueTask.FromResult<IReadOnlyList<long>>(versions);
            }
        }

        public async IAsyncEnumerable<StoreEvent> WatchAsync(string prefix, [EnumeratorCancellation] CancellationToken cancellationToken = default)
        {
            await Task.Delay(Timeout.Infinite, cancellationToken).ConfigureAwait(false);
            yield break;
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}

/// <summary>The allocator structure alone (no store, no locking): find the first free offset, add it, remove it.</summary>
[MemoryDiagnoser]
public class IpamAddressSetBenchmarks
{
    private AddressSet _set = null!;
    private UInt128 _lo;
    private UInt128 _hi;
    private UInt128 _middle;

    /// <summary>The pool: an IPv4 /16 or an IPv6 /64.</summary>
    [Params(16, 64)]
    public int HostBits { get; set; } = 16;

    /// <summary>Offsets allocated before measuring.</summary>
    [Params(1_000, 30_000)]
    public int Allocated { get; set; }

    /// <summary>Their layout.</summary>
    [Params(IpamLayout.Contiguous, IpamLayout.Fragmented)]
    public IpamLayout Layout { get; set; }

    /// <summary>Fills the set.</summary>
    [GlobalSetup]
    public void Setup()
    {
        _set = new AddressSet();
        _lo = 1;
        _hi = (UInt128.One << HostBits) - 2;
        var count = Layout == IpamLayout.Fragmented ? Allocated * 2 : Allocated;
        for (var i = 1; i <= count; i++)
        {
            _set.Add((UInt128)i);
        }

        if (Layout == IpamLayout.Fragmented)
        {
            for (var i = 1; i <= count; i += 2)
            {
                _set.Remove((UInt128)i);
            }
        }

        _middle = (UInt128)(count / 4 * 2); // an allocated offset in the middle
    }

    /// <summary>First-free search, add, remove.</summary>
    [Benchmark]
    public bool FindAddRemove()
    {
        _set.TryFindFree(_lo, _hi, out var offset);
        _set.Add(offset);
        return _set.Remove(offset);
    }

    /// <summary>Releases an allocated offset in the middle and takes it back: the worst case, since in the
    /// fragmented layout it removes and re-inserts a run (an O(r) array move each).</summary>
    [Benchmark]
    public bool RemoveAddMiddle()
    {
        _set.Remove(_middle);
        return _set.Add(_middle);
    }

    /// <summary>First-free search only.</summary>
    [Benchmark]
    public UInt128 FindFree()
    {
        _set.TryFindFree(_lo, _hi, out var offset);
        return offset;
    }
}
