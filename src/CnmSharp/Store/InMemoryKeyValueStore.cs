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
public sealed class InMemoryKeyValueStore : ISharedKeyValueStore, IStateLockProvider
{
    /// <summary>How many changes the store keeps for listings at, and watches from, past revisions by default.</summary>
    public const int DefaultHistoryLimit = 10_000;

    private readonly Lock _lock = new();
    private readonly Dictionary<string, StoreEntry> _entries = new(StringComparer.Ordinal);
    private readonly Dictionary<string, long> _keyLeases = new(StringComparer.Ordinal);
    private readonly Dictionary<long, LeaseState> _leases = [];
    private readonly List<Change> _history = [];
    private readonly StoreWatchers _watchers = new();
    private readonly InProcessStateLock _stateLock = new();
    private readonly TimeProvider _time;
    private readonly int _historyLimit;
    private readonly ITimer _expiryTimer;
    private long _revision;
    private long _compacted;
    private long _lastLease;
    private bool _disposed;

    /// <summary>Creates an empty store.</summary>
    public InMemoryKeyValueStore()
        : this(null)
    {
    }

    /// <summary>Creates an empty store.</summary>
    /// <param name="timeProvider">The clock of lease expiry (default the system's).</param>
    /// <param name="historyLimit">How many changes to keep for <see cref="ListAtAsync"/> at, and
    /// <see cref="WatchFromAsync"/> from, past revisions (older ones are compacted away).</param>
    public InMemoryKeyValueStore(TimeProvider? timeProvider, int historyLimit = DefaultHistoryLimit)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(historyLimit);
        _time = timeProvider ?? TimeProvider.System;
        _historyLimit = historyLimit;
        _expiryTimer = _time.CreateTimer(static state => ((InMemoryKeyValueStore)state!).OnExpiryTimer(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
    }

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
        lock (_lock)
        {
            ExpireDue();
            return ValueTask.FromResult(_revision);
        }
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
            ExpireDue();
            return ValueTask.FromResult(_entries.GetValueOrDefault(key));
        }
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<StoreEntry>> ListAsync(string prefix, CancellationToken cancellationToken = default) =>
        (await ListAtAsync(prefix, StoreRevision.Latest, cancellationToken).ConfigureAwait(false)).Entries;

    /// <inheritdoc />
    public ValueTask<StoreListing> ListAtAsync(string prefix, long revision = StoreRevision.Latest, CancellationToken cancellationToken = default)
    {
        StoreRules.ValidatePrefix(prefix);
        StoreRules.ValidateRevision(revision);
        cancellationToken.ThrowIfCancellationRequested();
        Dictionary<string, StoreEntry> state = new(StringComparer.Ordinal);
        long at;
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            ExpireDue();
            if (revision > _revision)
            {
                throw new ArgumentOutOfRangeException(nameof(revision), revision, $"Revision {revision} is in the future (the store is at {_revision}).");
            }

            at = revision == StoreRevision.Latest ? _revision : revision;
            if (at < _compacted)
            {
                throw StoreRules.Compacted(at, _compacted);
            }

            foreach (var entry in _entries.Values)
            {
                if (StoreRules.IsUnder(entry.Key, prefix))
                {
                    state[entry.Key] = entry;
                }
            }

            // Undo the changes after `at`, newest first: what remains is the state at `at`.
            for (var i = _history.Count - 1; i >= 0 && _history[i].Event.Version > at; i--)
            {
                var change = _history[i];
                if (!StoreRules.IsUnder(change.Event.Key, prefix))
                {
                    continue;
                }

                if (change.Previous is { } previous)
                {
                    state[change.Event.Key] = previous;
                }
                else
                {
                    state.Remove(change.Event.Key);
                }
            }
        }

        var result = state.Values.ToList();
        result.Sort(static (a, b) => string.CompareOrdinal(a.Key, b.Key));
        return ValueTask.FromResult(new StoreListing(result, at));
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
        var results = Apply([StoreOperation.Put(key, value, expectedVersion)], out _);
        return ValueTask.FromResult(results[0]);
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
        Apply([StoreOperation.Delete(key, expectedVersion)], out var changed);
        return ValueTask.FromResult(changed);
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
        return ValueTask.FromResult<IReadOnlyList<long>>(Apply(operations, out _));
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
    /// <remarks>Past events come from the history (the last <c>historyLimit</c> changes), registered with the live
    /// watcher under the store's lock, so nothing is missed or repeated in between.</remarks>
    public IAsyncEnumerable<StoreEvent> WatchFromAsync(string prefix, long fromRevision, CancellationToken cancellationToken = default)
    {
        StoreRules.ValidatePrefix(prefix);
        StoreRules.ValidateRevision(fromRevision);
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            ExpireDue();
            if (fromRevision == StoreRevision.Latest)
            {
                return _watchers.Watch(prefix, _revision + 1, [], cancellationToken);
            }

            if (fromRevision <= _compacted)
            {
                return StoreRules.Failed(StoreRules.Compacted(fromRevision, _compacted));
            }

            var backlog = _history
                .Where(c => c.Event.Version >= fromRevision && StoreRules.IsUnder(c.Event.Key, prefix))
                .Select(c => c.Event)
                .ToList();
            return _watchers.Watch(prefix, fromRevision, backlog, cancellationToken);
        }
    }

    /// <summary>Discards the history up to <paramref name="revision"/> (as etcd's compaction does): a listing at, or
    /// a watch from, an older revision then fails with <see cref="CnmErrorCodes.RevisionCompacted"/>.</summary>
    /// <param name="revision">The revision to compact up to (at most the current one).</param>
    /// <returns>A completed task.</returns>
    public ValueTask CompactAsync(long revision)
    {
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            ArgumentOutOfRangeException.ThrowIfGreaterThan(revision, _revision);
            CompactTo(revision);
        }

        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    public ValueTask<StoreLease> GrantLeaseAsync(TimeSpan ttl, CancellationToken cancellationToken = default)
    {
        var seconds = StoreRules.LeaseSeconds(ttl);
        cancellationToken.ThrowIfCancellationRequested();
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            ExpireDue();
            var id = ++_lastLease;
            _leases[id] = new LeaseState(seconds) { Expires = _time.GetUtcNow().AddSeconds(seconds) };
            ScheduleExpiry();
            return ValueTask.FromResult(new StoreLease(id, TimeSpan.FromSeconds(seconds)));
        }
    }

    /// <inheritdoc />
    public ValueTask<TimeSpan> KeepLeaseAliveAsync(long leaseId, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            ExpireDue();
            if (!_leases.TryGetValue(leaseId, out var lease))
            {
                throw StoreRules.LeaseNotFound(leaseId);
            }

            lease.Expires = _time.GetUtcNow().AddSeconds(lease.Seconds);
            ScheduleExpiry();
            return ValueTask.FromResult(TimeSpan.FromSeconds(lease.Seconds));
        }
    }

    /// <inheritdoc />
    public ValueTask<bool> RevokeLeaseAsync(long leaseId, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            ExpireDue();
            if (!_leases.ContainsKey(leaseId))
            {
                return ValueTask.FromResult(false);
            }

            EndLease(leaseId);
            ScheduleExpiry();
            return ValueTask.FromResult(true);
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

        _expiryTimer.Dispose();
        return ValueTask.CompletedTask;
    }

    /// <summary>Checks and applies operations under the lock: all or none, one new revision when anything changes.</summary>
    private long[] Apply(IReadOnlyList<StoreOperation> operations, out bool changed)
    {
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
            ExpireDue();

            // Phase 1: every check before any write.
            changed = false;
            foreach (var op in operations)
            {
                var found = _entries.TryGetValue(op.Key, out var current) ? current.Version : StoreVersion.Absent;
                if (!StoreRules.Matches(op.ExpectedVersion, found))
                {
                    throw StoreRules.Conflict(op.Key, op.ExpectedVersion, found);
                }

                if (op.Kind == StoreOperationKind.Put && op.Lease != StoreLease.None && !_leases.ContainsKey(op.Lease))
                {
                    throw StoreRules.LeaseNotFound(op.Lease);
                }

                changed |= op.Kind == StoreOperationKind.Put || (op.Kind == StoreOperationKind.Delete && found != StoreVersion.Absent);
            }

            if (!changed)
            {
                return results;
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
                        var previous = _entries.GetValueOrDefault(op.Key);
                        var entry = new StoreEntry(op.Key, value, version);
                        _entries[op.Key] = entry;
                        Attach(op.Key, op.Lease);
                        Record(new StoreEvent(StoreEventKind.Put, op.Key, value, version), previous);
                        results[i] = version;
                        break;
                    case StoreOperationKind.Delete:
                        if (_entries.Remove(op.Key, out var removed))
                        {
                            Attach(op.Key, StoreLease.None);
                            Record(new StoreEvent(StoreEventKind.Delete, op.Key, ReadOnlyMemory<byte>.Empty, version), removed);
                        }

                        break;
                    default:
                        break;
                }
            }

            TrimHistory();
            return results;
        }
    }

    private void Record(StoreEvent storeEvent, StoreEntry? previous)
    {
        _history.Add(new Change(storeEvent, previous));
        _watchers.Publish(storeEvent);
    }

    private void Attach(string key, long lease)
    {
        if (_keyLeases.Remove(key, out var old) && _leases.TryGetValue(old, out var oldLease))
        {
            oldLease.Keys.Remove(key);
        }

        if (lease != StoreLease.None)
        {
            _keyLeases[key] = lease;
            _leases[lease].Keys.Add(key);
        }
    }

    private void TrimHistory()
    {
        if (_history.Count <= _historyLimit + (_historyLimit / 4))
        {
            return;
        }

        CompactTo(_history[_history.Count - _historyLimit].Event.Version - 1);
    }

    /// <summary>Drops the history up to <paramref name="revision"/>; whole revisions only.</summary>
    private void CompactTo(long revision)
    {
        if (revision <= _compacted)
        {
            return;
        }

        var drop = 0;
        while (drop < _history.Count && _history[drop].Event.Version <= revision)
        {
            drop++;
        }

        _history.RemoveRange(0, drop);
        _compacted = revision;
    }

    /// <summary>Deletes the keys of every lease whose time is up, one revision per lease. Call under the lock.</summary>
    private void ExpireDue()
    {
        if (_leases.Count == 0 || _disposed)
        {
            return;
        }

        var now = _time.GetUtcNow();
        List<long>? due = null;
        foreach (var (id, lease) in _leases)
        {
            if (lease.Expires <= now)
            {
                (due ??= []).Add(id);
            }
        }

        if (due is null)
        {
            return;
        }

        foreach (var id in due)
        {
            EndLease(id);
        }

        ScheduleExpiry();
    }

    /// <summary>Removes a lease and deletes its keys in one new revision (none when it had no keys).</summary>
    private void EndLease(long id)
    {
        _leases.Remove(id, out var lease);
        if (lease is null || lease.Keys.Count == 0)
        {
            return;
        }

        var version = ++_revision;
        var keys = lease.Keys.ToList();
        keys.Sort(StringComparer.Ordinal);
        foreach (var key in keys)
        {
            _keyLeases.Remove(key);
            if (_entries.Remove(key, out var removed))
            {
                Record(new StoreEvent(StoreEventKind.Delete, key, ReadOnlyMemory<byte>.Empty, version), removed);
            }
        }

        TrimHistory();
    }

    private void ScheduleExpiry()
    {
        if (_leases.Count == 0)
        {
            _expiryTimer.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
            return;
        }

        var next = _leases.Values.Min(l => l.Expires);
        var wait = next - _time.GetUtcNow();
        _expiryTimer.Change(wait < TimeSpan.Zero ? TimeSpan.Zero : wait, Timeout.InfiniteTimeSpan);
    }

    private void OnExpiryTimer()
    {
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }

            ExpireDue();
            ScheduleExpiry(); // a timer that fired a little early found nothing due: wait again
        }
    }

    /// <summary>One change in the history: the event and the entry it replaced or deleted (null when it created).</summary>
    private sealed record Change(StoreEvent Event, StoreEntry? Previous);

    private sealed class LeaseState(long seconds)
    {
        public long Seconds { get; } = seconds;

        public DateTimeOffset Expires { get; set; }

        public HashSet<string> Keys { get; } = new(StringComparer.Ordinal);
    }
}
