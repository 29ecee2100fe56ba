using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using CnmSharp.Store;

namespace CnmSharp.Tests.Ipam;

/// <summary>
/// A tiny in-memory <see cref="IKeyValueStore"/> for IPAM tests: versions from one global counter,
/// <see cref="StoreVersion.Absent"/> means create-only, <see cref="StoreVersion.Any"/> skips the check, a mismatch throws
/// <see cref="CnmConflictException"/> with <see cref="CnmErrorCodes.VersionConflict"/>, and <see cref="CommitAsync(IReadOnlyList{StoreOperation}, CancellationToken)"/>
/// checks every operation before applying any. Each call yields first, so concurrent callers interleave.
/// </summary>
internal sealed class FakeStore : IKeyValueStore
{
    private readonly Lock _lock = new();
    private readonly SortedDictionary<string, (byte[] Value, long Version)> _data = new(StringComparer.Ordinal);
    private long _counter;

    /// <summary>The number of successful commits (puts and deletes included).</summary>
    public int Writes { get; private set; }

    /// <summary>Every key, for assertions.</summary>
    public IReadOnlyList<string> Keys
    {
        get
        {
            lock (_lock)
            {
                return [.. _data.Keys];
            }
        }
    }

    public ValueTask<long> GetRevisionAsync(CancellationToken cancellationToken = default)
    {
        lock (_lock)
        {
            return ValueTask.FromResult(_counter);
        }
    }

    public async ValueTask<StoreEntry?> GetAsync(string key, CancellationToken cancellationToken = default)
    {
        await Task.Yield();
        cancellationToken.ThrowIfCancellationRequested();
        lock (_lock)
        {
            return _data.TryGetValue(key, out var v) ? new StoreEntry(key, v.Value, v.Version) : null;
        }
    }

    /// <summary>Every prefix listed, in order, for assertions on what an instance re-reads.</summary>
    public ConcurrentQueue<string> Listed { get; } = new();

    public async ValueTask<IReadOnlyList<StoreEntry>> ListAsync(string prefix, CancellationToken cancellationToken = default)
    {
        Listed.Enqueue(prefix);
        await Task.Yield();
        cancellationToken.ThrowIfCancellationRequested();
        lock (_lock)
        {
            return [.. _data.Where(p => p.Key.StartsWith(prefix, StringComparison.Ordinal)).Select(p => new StoreEntry(p.Key, p.Value.Value, p.Value.Version))];
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
        (await CommitAsync([StoreOperation.Put(key, value, expectedVersion)], cancellationToken))[0];

    public async ValueTask<bool> DeleteAsync(string key, long expectedVersion = StoreVersion.Any, CancellationToken cancellationToken = default)
    {
        await Task.Yield();
        cancellationToken.ThrowIfCancellationRequested();
        lock (_lock)
        {
            var exists = _data.ContainsKey(key);
            CheckVersion(key, expectedVersion, exists ? _data[key].Version : (long?)null);
            if (exists)
            {
                _data.Remove(key);
                Writes++;
            }

            return exists;
        }
    }

    public async ValueTask<IReadOnlyList<long>> CommitAsync(IReadOnlyList<StoreOperation> operations, CancellationToken cancellationToken = default)
    {
        await Task.Yield();
        cancellationToken.ThrowIfCancellationRequested();
        lock (_lock)
        {
            // Check everything against a staged view first: all or nothing.
            var staged = new Dictionary<string, long?>(StringComparer.Ordinal);
            long? Current(string key) =>
                staged.TryGetValue(key, out var v) ? v : _data.TryGetValue(key, out var d) ? d.Version : null;
            var next = _counter;
            foreach (var op in operations)
            {
                CheckVersion(op.Key, op.ExpectedVersion, Current(op.Key));
                staged[op.Key] = op.Kind switch
                {
                    StoreOperationKind.Put => ++next,
                    StoreOperationKind.Delete => null,
                    _ => Current(op.Key),
                };
            }

            var versions = new long[operations.Count];
            for (var i = 0; i < operations.Count; i++)
            {
                var op = operations[i];
                switch (op.Kind)
                {
                    case StoreOperationKind.Put:
                        versions[i] = ++_counter;
                        _data[op.Key] = (op.Value.ToArray(), versions[i]);
                        break;
                    case StoreOperationKind.Delete:
                        _data.Remove(op.Key);
                        break;
                }
            }

            Writes++;
            return versions;
        }
    }

    public async IAsyncEnumerable<StoreEvent> WatchAsync(string prefix, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        await Task.Delay(Timeout.Infinite, cancellationToken);
        yield break;
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    private static void CheckVersion(string key, long expected, long? current)
    {
        var ok = expected switch
        {
            StoreVersion.Any => true,
            StoreVersion.Absent => current is null,
            _ => current == expected,
        };
        if (!ok)
        {
            throw new CnmConflictException(CnmErrorCodes.VersionConflict, $"key \"{key}\"", $"expected version {expected}, found {current?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "none"}");
        }
    }
}
