namespace CnmSharp.Store;

/// <summary>
/// A thread-safe <see cref="IKeyValueStore"/> in memory, for tests and for state that need not survive a restart.
/// Versions come from one store-wide revision counter that every committing write increments (like etcd's
/// <c>mod_revision</c>): all keys written by one <see cref="CommitAsync(IReadOnlyList{StoreOperation}, StoreDurability, CancellationToken)"/> get the same, new version. Values are copied
/// on the way in, so callers may reuse their buffers.
/// </summary>
/// <remarks>
/// Watchers get an unbounded queue each: a write never waits for a watcher, and a watcher that stops reading without
/// cancelling its stream keeps every later event in memory.
/// </remarks>
public sealed class InMemoryKeyValueStore : IKeyValueStore, IStateLockProvider
{
    private readonly Lock _lock = new();
    private readonly Dictionary<string, StoreEntry> _entries = new(StringComparer.Ordinal);
    private readonly StoreWatchers _watchers = new();
    private readonly InProcessStateLock _stateLock = new();
    private long _revision;
    private bool _disposed;

    /// <summary>The revision of the last committed write (0 before the first).</summary>
    internal long Revision
    {
        get
        {
            lock (_lock)
            {
                return _revision;
            }
        }
    }

    /// <inheritdoc />
    public ValueTask<long> GetRevisionAsync(CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        return ValueTask.FromResult(Revision);
    }

    /// <inheritdoc />
    /// <remarks>An in-process lock: the store lives in one process.</remarks>
    public IStateLock CreateStateLock() => _stateLock.CreateHandle();

    /// <inheritdoc />
    public ValueTask<StoreEntry?> GetAsync(string key, CancellationToken cancellationToken = default)
    {
        StoreRules.ValidateKey(key);
        cancellationToken.ThrowIfCancellationRequested();
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            return ValueTask.FromResult(_entries.GetValueOrDefault(key));
        }
    }

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<StoreEntry>> ListAsync(string prefix, CancellationToken cancellationToken = default)
    {
        StoreRules.ValidatePrefix(prefix);
        cancellationToken.ThrowIfCancellationRequested();
        List<StoreEntry> result = [];
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            foreach (var entry in _entries.Values)
            {
                if (StoreRules.IsUnder(entry.Key, prefix))
                {
                    result.Add(entry);
                }
            }
        }

        result.Sort(static (a, b) => string.CompareOrdinal(a.Key, b.Key));
        return ValueTask.FromResult<IReadOnlyList<StoreEntry>>(result);
    }

    /// <inheritdoc />
    public ValueTask<long> PutAsync(string key, ReadOnlyMemory<byte> value, long expectedVersion = StoreVersion.Any, CancellationToken cancellationToken = default) =>
        PutAsync(key, value, expectedVersion, StoreDurability.Durable, cancellationToken);

    /// <inheritdoc />
    /// <remarks>Nothing reaches a disk: <paramref name="durability"/> is checked and otherwise ignored.</remarks>
    public ValueTask<long> PutAsync(string key, ReadOnlyMemory<byte> value, long expectedVersion, StoreDurability durability, CancellationToken cancellationToken = default)
    {
        StoreRules.ValidateDurability(durability);
        StoreRules.ValidateKey(key);
        StoreRules.ValidateExpectedVersion(expectedVersion);
        cancellationToken.ThrowIfCancellationRequested();
        var copy = value.ToArray();
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            var found = _entries.TryGetValue(key, out var current) ? current.Version : StoreVersion.Absent;
            if (!StoreRules.Matches(expectedVersion, found))
            {
                throw StoreRules.Conflict(key, expectedVersion, found);
            }

            var version = ++_revision;
            _entries[key] = new StoreEntry(key, copy, version);
            _watchers.Publish(new StoreEvent(StoreEventKind.Put, key, copy, version));
            return ValueTask.FromResult(version);
        }
    }

    /// <inheritdoc />
    public ValueTask<bool> DeleteAsync(string key, long expectedVersion = StoreVersion.Any, CancellationToken cancellationToken = default) =>
        DeleteAsync(key, expectedVersion, StoreDurability.Durable, cancellationToken);

    /// <inheritdoc />
    /// <remarks>Nothing reaches a disk: <paramref name="durability"/> is checked and otherwise ignored.</remarks>
    public ValueTask<bool> DeleteAsync(string key, long expectedVersion, StoreDurability durability, CancellationToken cancellationToken = default)
    {
        StoreRules.ValidateDurability(durability);
        StoreRules.ValidateKey(key);
        StoreRules.ValidateExpectedVersion(expectedVersion);
        cancellationToken.ThrowIfCancellationRequested();
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            var found = _entries.TryGetValue(key, out var current) ? current.Version : StoreVersion.Absent;
            if (!StoreRules.Matches(expectedVersion, found))
            {
                throw StoreRules.Conflict(key, expectedVersion, found);
            }

            if (found == StoreVersion.Absent)
            {
                return ValueTask.FromResult(false);
            }

            var version = ++_revision;
            _entries.Remove(key);
            _watchers.Publish(new StoreEvent(StoreEventKind.Delete, key, ReadOnlyMemory<byte>.Empty, version));
            return ValueTask.FromResult(true);
        }
    }

    /// <inheritdoc />
    /// <remarks>
    /// Every expected version is checked against the state before the commit, and nothing is written unless all
    /// pass. A key may appear only once per commit. A commit that changes nothing (only checks, or deletes of absent
    /// keys) does not advance the revision.
    /// </remarks>
    public ValueTask<IReadOnlyList<long>> CommitAsync(IReadOnlyList<StoreOperation> operations, CancellationToken cancellationToken = default) =>
        CommitAsync(operations, StoreDurability.Durable, cancellationToken);

    /// <inheritdoc />
    /// <remarks>Nothing reaches a disk: <paramref name="durability"/> is checked and otherwise ignored.</remarks>
    public ValueTask<IReadOnlyList<long>> CommitAsync(IReadOnlyList<StoreOperation> operations, StoreDurability durability, CancellationToken cancellationToken = default)
    {
        StoreRules.ValidateDurability(durability);
        StoreRules.ValidateOperations(operations);
        cancellationToken.ThrowIfCancellationRequested();
        var results = new long[operations.Count];
        var values = new byte[]?[operations.Count];
        for (var i = 0; i < operations.Count; i++)
        {
            if (operations[i].Kind == StoreOperationKind.Put)
            {
                values[i] = operations[i].Value.ToArray();
            }
        }

        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);

            // Phase 1: every check before any write.
            var changes = false;
            foreach (var op in operations)
            {
                var found = _entries.TryGetValue(op.Key, out var current) ? current.Version : StoreVersion.Absent;
                if (!StoreRules.Matches(op.ExpectedVersion, found))
                {
                    throw StoreRules.Conflict(op.Key, op.ExpectedVersion, found);
                }

                changes |= op.Kind == StoreOperationKind.Put || (op.Kind == StoreOperationKind.Delete && found != StoreVersion.Absent);
            }

            if (!changes)
            {
                return ValueTask.FromResult<IReadOnlyList<long>>(results);
            }

            // Phase 2: apply under one new revision.
            var version = ++_revision;
            for (var i = 0; i < operations.Count; i++)
            {
                var op = operations[i];
                switch (op.Kind)
                {
                    case StoreOperationKind.Put:
                        var value = values[i]!;
                        _entries[op.Key] = new StoreEntry(op.Key, value, version);
                        _watchers.Publish(new StoreEvent(StoreEventKind.Put, op.Key, value, version));
                        results[i] = version;
                        break;
                    case StoreOperationKind.Delete:
                        if (_entries.Remove(op.Key))
                        {
                            _watchers.Publish(new StoreEvent(StoreEventKind.Delete, op.Key, ReadOnlyMemory<byte>.Empty, version));
                        }

                        break;
                    default:
                        break;
                }
            }

            return ValueTask.FromResult<IReadOnlyList<long>>(results);
        }
    }

    /// <inheritdoc />
    /// <remarks>
    /// The watcher is registered when this method is called, not when enumeration starts, so no change made after
    /// the call is missed. The stream ends without an exception when <paramref name="cancellationToken"/> (or the
    /// token given to the enumerator) is cancelled or the store is disposed. A stream that is never enumerated stays
    /// registered until one of those happens. Delete events carry the revision of the delete as their version.
    /// </remarks>
    public IAsyncEnumerable<StoreEvent> WatchAsync(string prefix, CancellationToken cancellationToken = default)
    {
        StoreRules.ValidatePrefix(prefix);
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            return _watchers.Watch(prefix, cancellationToken);
        }
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync()
    {
        lock (_lock)
        {
            if (_disposed)
            {
                return ValueTask.CompletedTask;
            }

            _disposed = true;
            _watchers.Complete();
        }

        return ValueTask.CompletedTask;
    }
}
