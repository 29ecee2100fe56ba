using System.Data;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Threading.Channels;
using Microsoft.Data.Sqlite;
using SQLitePCL;

namespace CnmSharp.Store;

/// <summary>
/// The embedded durable <see cref="IKeyValueStore"/>: one SQLite file in write-ahead-log mode. Every write is one
/// <c>BEGIN IMMEDIATE</c> transaction that checks the expected versions and advances a revision counter stored in the
/// same file, so compare-and-swap stays correct when several processes (or several stores in one process) share the
/// file, and a crash at any point leaves whole commits or nothing.
/// </summary>
/// <remarks>
/// <para>
/// One connection per store, used by one operation at a time (SQLite serialises writers anyway). Operations run
/// synchronously on the calling thread once they hold the store's gate; cancellation is honoured while waiting for
/// the gate, never in the middle of a transaction.
/// </para>
/// <para>
/// <see cref="WatchAsync"/> sees only the writes made through this instance. Writes by other processes or other
/// instances on the same file are not reported; a cross-process watch is the job of a networked store such as etcd.
/// </para>
/// <para>
/// Errors: a failed version check throws <see cref="CnmConflictException"/> (<see cref="CnmErrorCodes.VersionConflict"/>);
/// a lock held by another connection past <see cref="SqliteStoreOptions.BusyTimeout"/>, a full disk or an I/O error
/// throws <see cref="CnmUnavailableException"/> (code <c>StoreUnavailable</c>); a corrupt file, a file that is not a
/// CnmSharp store or a newer schema throws <see cref="CnmInternalException"/> (<see cref="CnmErrorCodes.CorruptRecord"/>).
/// </para>
/// </remarks>
public sealed class SqliteKeyValueStore : ISharedKeyValueStore, IStateLockProvider
{
    /// <summary>The schema version kept in SQLite's <c>user_version</c>.</summary>
    internal const int SchemaVersion = 2;

    private const string CreateSchemaSql = """
        CREATE TABLE kv (
            key TEXT NOT NULL PRIMARY KEY,
            value BLOB NOT NULL,
            version INTEGER NOT NULL CHECK (version > 0),
            lease INTEGER NOT NULL DEFAULT 0
        ) WITHOUT ROWID, STRICT;
        CREATE TABLE meta (
            id INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
            revision INTEGER NOT NULL CHECK (revision >= 0),
            compacted INTEGER NOT NULL DEFAULT 0
        ) STRICT;
        INSERT INTO meta (id, revision) VALUES (1, 0);
        """ + HistorySchemaSql + """
        PRAGMA user_version = 2;
        """;

    // Version 2: the change log (history for listings at and watches from past revisions, and the cross-process
    // watch) and the leases.
    private const string HistorySchemaSql = """
        CREATE TABLE changes (
            revision INTEGER NOT NULL,
            seq INTEGER NOT NULL,
            key TEXT NOT NULL,
            deleted INTEGER NOT NULL,
            value BLOB,
            prev_version INTEGER NOT NULL,
            prev_value BLOB,
            PRIMARY KEY (revision, seq)
        ) WITHOUT ROWID, STRICT;
        CREATE TABLE leases (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            ttl_ms INTEGER NOT NULL,
            expires_ms INTEGER NOT NULL
        ) STRICT;
        CREATE INDEX kv_lease ON kv (lease) WHERE lease != 0;
        """;

    private const string MigrateFromVersion1Sql = """
        ALTER TABLE kv ADD COLUMN lease INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE meta ADD COLUMN compacted INTEGER NOT NULL DEFAULT 0;
        UPDATE meta SET compacted = revision;
        """ + HistorySchemaSql + """
        PRAGMA user_version = 2;
        """;

    private readonly SqliteConnection _connection;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly StoreWatchers _watchers = new();
    private readonly string _subject;
    private readonly SqliteCommand _begin;
    private readonly SqliteCommand _commit;
    private readonly SqliteCommand _rollback;
    private readonly SqliteCommand _get;
    private readonly SqliteCommand _version;
    private readonly SqliteCommand _listRange;
    private readonly SqliteCommand _listFrom;
    private readonly SqliteCommand _upsert;
    private readonly SqliteCommand _delete;
    private readonly SqliteCommand _bump;
    private readonly SqliteCommand _revision;
    private readonly SqliteCommand _beginRead;
    private readonly SqliteCommand _current;
    private readonly SqliteCommand _log;
    private readonly SqliteCommand _meta;
    private readonly SqliteCommand _changesAfter;
    private readonly SqliteCommand _leaseAlive;
    private readonly TimeProvider _time = TimeProvider.System;
    private readonly long _historyRevisions;
    private readonly TimeSpan _pollInterval;
    private readonly SemaphoreSlim _kick = new(0, 1);
    private readonly CancellationTokenSource _stopping = new();
    private readonly Lock _pollLock = new();
    private PollWatcher[] _pollWatchers = [];
    private Task? _poller;
    private long _nextReapCheckMs;
    private bool _synchronousFull;
    private volatile bool _disposed;

    private SqliteKeyValueStore(SqliteConnection connection, SqliteStoreOptions options, string path, bool synchronousFull, int commandTimeout)
    {
        var durability = options.Durability;
        _historyRevisions = options.HistoryRevisions;
        _pollInterval = options.WatchPollInterval;
        _connection = connection;
        Path = path;
        Durability = durability;
        _synchronousFull = synchronousFull;
        _subject = Subject(path);
        _begin = Prepare("BEGIN IMMEDIATE");
        _commit = Prepare("COMMIT");
        _rollback = Prepare("ROLLBACK");
        _get = Prepare("SELECT value, version FROM kv WHERE key = $key", ("$key", SqliteType.Text));
        _version = Prepare("SELECT version FROM kv WHERE key = $key", ("$key", SqliteType.Text));
        _listRange = Prepare(
            "SELECT key, value, version FROM kv WHERE key >= $low AND key < $high ORDER BY key",
            ("$low", SqliteType.Text),
            ("$high", SqliteType.Text));
        _listFrom = Prepare("SELECT key, value, version FROM kv WHERE key >= $low ORDER BY key", ("$low", SqliteType.Text));
        _upsert = Prepare(
            "INSERT INTO kv (key, value, version, lease) VALUES ($key, $value, $version, $lease) " +
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value, version = excluded.version, lease = excluded.lease",
            ("$key", SqliteType.Text),
            ("$value", SqliteType.Blob),
            ("$version", SqliteType.Integer),
            ("$lease", SqliteType.Integer));
        _beginRead = Prepare("BEGIN");
        _current = Prepare("SELECT value, version FROM kv WHERE key = $key", ("$key", SqliteType.Text));
        _log = Prepare(
            "INSERT INTO changes (revision, seq, key, deleted, value, prev_version, prev_value) VALUES ($revision, $seq, $key, $deleted, $value, $prev_version, $prev_value)",
            ("$revision", SqliteType.Integer),
            ("$seq", SqliteType.Integer),
            ("$key", SqliteType.Text),
            ("$deleted", SqliteType.Integer),
            ("$value", SqliteType.Blob),
            ("$prev_version", SqliteType.Integer),
            ("$prev_value", SqliteType.Blob));
        _meta = Prepare("SELECT revision, compacted FROM meta WHERE id = 1");
        _changesAfter = Prepare(
            "SELECT revision, key, deleted, value, prev_version, prev_value FROM changes WHERE revision > $after AND revision <= $upto ORDER BY revision, seq",
            ("$after", SqliteType.Integer),
            ("$upto", SqliteType.Integer));
        _leaseAlive = Prepare("SELECT 1 FROM leases WHERE id = $id AND expires_ms > $now", ("$id", SqliteType.Integer), ("$now", SqliteType.Integer));
        _delete = Prepare("DELETE FROM kv WHERE key = $key", ("$key", SqliteType.Text));
        _bump = Prepare("UPDATE meta SET revision = revision + 1 WHERE id = 1 RETURNING revision");
        _revision = Prepare("SELECT revision FROM meta WHERE id = 1");

        SqliteCommand Prepare(string sql, params (string Name, SqliteType Type)[] parameters)
        {
            var command = connection.CreateCommand();
            command.CommandText = sql;
            command.CommandTimeout = commandTimeout;
            foreach (var (name, type) in parameters)
            {
                command.Parameters.Add(name, type);
            }

            command.Prepare();
            return command;
        }
    }

    /// <summary>The full path of the database file.</summary>
    public string Path { get; }

    /// <summary>What an acknowledged write survives.</summary>
    public SqliteDurability Durability { get; }

    /// <summary>
    /// Opens (and, when missing, creates) a store: creates missing directories (mode 0700) and the file (mode 0600),
    /// switches the file to write-ahead logging, sets the durability, and creates or checks the schema (the schema
    /// version, the revision counter, and that no record is newer than it). Existing directories and files keep their
    /// permissions. Runs synchronously.
    /// </summary>
    /// <param name="options">Where the file is and how durable writes are.</param>
    /// <param name="cancellationToken">Cancels the call before it starts.</param>
    /// <returns>The open store.</returns>
    /// <exception cref="CnmInternalException">The file is corrupt, not a CnmSharp store, or of a newer schema
    /// (<see cref="CnmErrorCodes.CorruptRecord"/>).</exception>
    /// <exception cref="CnmUnavailableException">The file cannot be created or opened, or stays locked.</exception>
    public static ValueTask<SqliteKeyValueStore> OpenAsync(SqliteStoreOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (string.IsNullOrWhiteSpace(options.Path))
        {
            throw new ArgumentException("SqliteStoreOptions.Path must name the database file.", nameof(options));
        }

        if (!Enum.IsDefined(options.Durability))
        {
            throw new ArgumentException($"SqliteStoreOptions.Durability {options.Durability} is not defined.", nameof(options));
        }

        if (options.BusyTimeout < TimeSpan.Zero || options.BusyTimeout.TotalMilliseconds > int.MaxValue)
        {
            throw new ArgumentException("SqliteStoreOptions.BusyTimeout must be between zero and int.MaxValue milliseconds.", nameof(options));
        }

        if (options.HistoryRevisions < 1)
        {
            throw new ArgumentException("SqliteStoreOptions.HistoryRevisions must be at least 1.", nameof(options));
        }

        if (options.WatchPollInterval <= TimeSpan.Zero || options.WatchPollInterval > TimeSpan.FromMinutes(1))
        {
            throw new ArgumentException("SqliteStoreOptions.WatchPollInterval must be positive and at most a minute.", nameof(options));
        }

        cancellationToken.ThrowIfCancellationRequested();
        return ValueTask.FromResult(Open(options));
    }

    /// <inheritdoc />
    public async ValueTask<long> GetRevisionAsync(CancellationToken cancellationToken = default)
    {
        await EnterAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            ReapExpiredLeases();
            return _revision.ExecuteScalar() is long revision ? revision : throw Corrupt(_subject, "the revision counter is missing");
        }
        catch (SqliteException ex)
        {
            throw Map(ex, _subject);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <inheritdoc />
    /// <remarks><c>flock(2)</c> on <c>&lt;file&gt;.lock</c> and <c>&lt;file&gt;.queue</c> beside the store file: every
    /// process and every store instance on the file shares it, and a process that dies releases it.</remarks>
    public IStateLock CreateStateLock()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return new FileStateLock(Path);
    }

    /// <inheritdoc />
    public async ValueTask<StoreEntry?> GetAsync(string key, CancellationToken cancellationToken = default)
    {
        StoreRules.ValidateKey(key);
        await EnterAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            ReapExpiredLeases();
            _get.Parameters[0].Value = key;
            using var reader = _get.ExecuteReader(CommandBehavior.SingleRow);
            return reader.Read() ? new StoreEntry(key, ReadValue(reader, 0), ReadVersion(reader, 1)) : null;
        }
        catch (SqliteException ex)
        {
            throw Map(ex, _subject);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <inheritdoc />
    /// <remarks>A single range query on the primary key (<c>key &gt;= prefix AND key &lt; bound</c>), so <c>%</c> and
    /// <c>_</c> in keys mean nothing special. The result is in ordinal (UTF-16) order, like the other stores.</remarks>
    public async ValueTask<IReadOnlyList<StoreEntry>> ListAsync(string prefix, CancellationToken cancellationToken = default)
    {
        StoreRules.ValidatePrefix(prefix);
        var upper = StoreRules.PrefixUpperBound(prefix);
        await EnterAsync(cancellationToken).ConfigureAwait(false);
        List<StoreEntry> result = [];
        try
        {
            ReapExpiredLeases();
            SqliteCommand command;
            if (upper is null)
            {
                command = _listFrom;
                command.Parameters[0].Value = prefix;
            }
            else
            {
                command = _listRange;
                command.Parameters[0].Value = prefix;
                command.Parameters[1].Value = upper;
            }

            using var reader = command.ExecuteReader();
            while (reader.Read())
            {
                result.Add(new StoreEntry(reader.GetString(0), ReadValue(reader, 1), ReadVersion(reader, 2)));
            }
        }
        catch (SqliteException ex)
        {
            throw Map(ex, _subject);
        }
        finally
        {
            _gate.Release();
        }

        // SQLite orders by code point (UTF-8 bytes); .NET's ordinal order differs only when a key mixes characters
        // above U+FFFF with U+E000..U+FFFF. Re-sort in that rare case.
        for (var i = 1; i < result.Count; i++)
        {
            if (string.CompareOrdinal(result[i - 1].Key, result[i].Key) > 0)
            {
                result.Sort(static (a, b) => string.CompareOrdinal(a.Key, b.Key));
                break;
            }
        }

        return result;
    }

    /// <inheritdoc />
    public ValueTask<long> PutAsync(string key, ReadOnlyMemory<byte> value, long expectedVersion = StoreVersion.Any, CancellationToken cancellationToken = default) =>
        PutAsync(key, value, expectedVersion, StoreDurability.Durable, cancellationToken);

    /// <inheritdoc />
    /// <remarks>Under <see cref="SqliteDurability.Tiered"/>, a <see cref="StoreDurability.Durable"/> write commits with
    /// <c>synchronous=FULL</c> and a <see cref="StoreDurability.Relaxed"/> one with <c>NORMAL</c>; the other modes
    /// ignore the hint.</remarks>
    public async ValueTask<long> PutAsync(string key, ReadOnlyMemory<byte> value, long expectedVersion, StoreDurability durability, CancellationToken cancellationToken = default)
    {
        StoreRules.ValidateDurability(durability);
        StoreRules.ValidateKey(key);
        StoreRules.ValidateExpectedVersion(expectedVersion);
        var (results, _) = await ApplyAsync([StoreOperation.Put(key, value, expectedVersion)], durability, cancellationToken).ConfigureAwait(false);
        return results[0];
    }

    /// <inheritdoc />
    public ValueTask<bool> DeleteAsync(string key, long expectedVersion = StoreVersion.Any, CancellationToken cancellationToken = default) =>
        DeleteAsync(key, expectedVersion, StoreDurability.Durable, cancellationToken);

    /// <inheritdoc />
    /// <remarks>The hint is applied as for <see cref="PutAsync(string, ReadOnlyMemory{byte}, long, StoreDurability, CancellationToken)"/>.</remarks>
    public async ValueTask<bool> DeleteAsync(string key, long expectedVersion, StoreDurability durability, CancellationToken cancellationToken = default)
    {
        StoreRules.ValidateDurability(durability);
        StoreRules.ValidateKey(key);
        StoreRules.ValidateExpectedVersion(expectedVersion);
        var (_, changed) = await ApplyAsync([StoreOperation.Delete(key, expectedVersion)], durability, cancellationToken).ConfigureAwait(false);
        return changed;
    }

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<long>> CommitAsync(IReadOnlyList<StoreOperation> operations, CancellationToken cancellationToken = default) =>
        CommitAsync(operations, StoreDurability.Durable, cancellationToken);

    /// <inheritdoc />
    /// <remarks>
    /// One <c>BEGIN IMMEDIATE</c> transaction: every expected version is read and checked first, and nothing is
    /// written unless all pass. All keys written get the same new version. A key may appear only once per commit. A
    /// commit that changes nothing (only checks, or deletes of absent keys) does not advance the revision. The hint is
    /// applied as for <see cref="PutAsync(string, ReadOnlyMemory{byte}, long, StoreDurability, CancellationToken)"/>.
    /// </remarks>
    public async ValueTask<IReadOnlyList<long>> CommitAsync(IReadOnlyList<StoreOperation> operations, StoreDurability durability, CancellationToken cancellationToken = default)
    {
        StoreRules.ValidateDurability(durability);
        StoreRules.ValidateOperations(operations);
        if (operations.Count == 0)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            cancellationToken.ThrowIfCancellationRequested();
            return [];
        }

        var (results, _) = await ApplyAsync(operations, durability, cancellationToken).ConfigureAwait(false);
        return results;
    }

    /// <inheritdoc />
    /// <remarks>One read transaction (a snapshot): the revision, the current entries and, for a past revision, the
    /// change log after it, undone newest first.</remarks>
    public async ValueTask<StoreListing> ListAtAsync(string prefix, long revision = StoreRevision.Latest, CancellationToken cancellationToken = default)
    {
        StoreRules.ValidatePrefix(prefix);
        StoreRules.ValidateRevision(revision);
        var upper = StoreRules.PrefixUpperBound(prefix);
        await EnterAsync(cancellationToken).ConfigureAwait(false);
        Dictionary<string, StoreEntry> state = new(StringComparer.Ordinal);
        long at;
        try
        {
            ReapExpiredLeases();
            _beginRead.ExecuteNonQuery();
            try
            {
                var (current, compacted) = ReadMeta();
                if (revision > current)
                {
                    throw new ArgumentOutOfRangeException(nameof(revision), revision, $"Revision {revision} is in the future (the store is at {current}).");
                }

                at = revision == StoreRevision.Latest ? current : revision;
                if (at < compacted)
                {
                    throw StoreRules.Compacted(at, compacted);
                }

                var command = upper is null ? _listFrom : _listRange;
                command.Parameters[0].Value = prefix;
                if (upper is not null)
                {
                    command.Parameters[1].Value = upper;
                }

                using (var reader = command.ExecuteReader())
                {
                    while (reader.Read())
                    {
                        var entry = new StoreEntry(reader.GetString(0), ReadValue(reader, 1), ReadVersion(reader, 2));
                        state[entry.Key] = entry;
                    }
                }

                if (at < current)
                {
                    // The first change after `at` of each key holds the key's state at `at`.
                    HashSet<string> undone = new(StringComparer.Ordinal);
                    foreach (var change in ReadChanges(at, current))
                    {
                        if (!StoreRules.IsUnder(change.Event.Key, prefix) || !undone.Add(change.Event.Key))
                        {
                            continue;
                        }

                        if (change.PreviousVersion == StoreVersion.Absent)
                        {
                            state.Remove(change.Event.Key);
                        }
                        else
                        {
                            state[change.Event.Key] = new StoreEntry(change.Event.Key, change.PreviousValue, change.PreviousVersion);
                        }
                    }
                }
            }
            finally
            {
                _commit.ExecuteNonQuery();
            }
        }
        catch (SqliteException ex)
        {
            throw Map(ex, _subject);
        }
        finally
        {
            _gate.Release();
        }

        var result = state.Values.ToList();
        result.Sort(static (a, b) => string.CompareOrdinal(a.Key, b.Key));
        return new StoreListing(result, at);
    }

    /// <inheritdoc />
    /// <remarks>
    /// Across processes: the store polls its revision counter every <see cref="SqliteStoreOptions.WatchPollInterval"/>
    /// (and at once after a write through this instance) and reads the change log when it moved, so another process's
    /// writes arrive within about one interval. The starting point is fixed when this method is called.
    /// </remarks>
    public IAsyncEnumerable<StoreEvent> WatchFromAsync(string prefix, long fromRevision, CancellationToken cancellationToken = default)
    {
        StoreRules.ValidatePrefix(prefix);
        StoreRules.ValidateRevision(fromRevision);
        ObjectDisposedException.ThrowIf(_disposed, this);
        long current, compacted;
        _gate.Wait(cancellationToken);
        try
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            (current, compacted) = ReadMeta();
        }
        catch (SqliteException ex)
        {
            throw Map(ex, _subject);
        }
        finally
        {
            _gate.Release();
        }

        if (fromRevision != StoreRevision.Latest && fromRevision <= compacted)
        {
            return StoreRules.Failed(StoreRules.Compacted(fromRevision, compacted));
        }

        var watcher = new PollWatcher(prefix, fromRevision == StoreRevision.Latest ? current : fromRevision - 1);
        lock (_pollLock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            _pollWatchers = [.. _pollWatchers, watcher];
            _poller ??= Task.Run(PollLoopAsync, CancellationToken.None);
        }

        if (cancellationToken.CanBeCanceled)
        {
            watcher.Registration = cancellationToken.UnsafeRegister(static (state, _) =>
            {
                var (self, w) = ((SqliteKeyValueStore, PollWatcher))state!;
                self.RemovePollWatcher(w, null);
            }, (this, watcher));
        }

        Kick();
        return WatchStream.ReadAsync(watcher.Channel.Reader, async () =>
        {
            await watcher.Registration.DisposeAsync().ConfigureAwait(false);
            RemovePollWatcher(watcher, null);
        }, cancellationToken);
    }

    /// <summary>Discards the change log up to <paramref name="revision"/>: a listing at, or a watch from, an older
    /// revision then fails with <see cref="CnmErrorCodes.RevisionCompacted"/>. Writes compact on their own, keeping
    /// <see cref="SqliteStoreOptions.HistoryRevisions"/> revisions.</summary>
    /// <param name="revision">The revision to compact up to (at most the current one).</param>
    /// <param name="cancellationToken">Cancels the wait for the store.</param>
    /// <returns>A task that completes when the history is discarded.</returns>
    public async ValueTask CompactAsync(long revision, CancellationToken cancellationToken = default)
    {
        await EnterAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            InTransaction(StoreDurability.Durable, () =>
            {
                var (current, _) = ReadMeta();
                ArgumentOutOfRangeException.ThrowIfGreaterThan(revision, current);
                CompactTo(revision);
                return true;
            });
        }
        catch (SqliteException ex)
        {
            throw Map(ex, _subject);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <inheritdoc />
    /// <remarks>Leases live in the file (id, TTL, expiry time on the wall clock), so every process on it shares them.</remarks>
    public async ValueTask<StoreLease> GrantLeaseAsync(TimeSpan ttl, CancellationToken cancellationToken = default)
    {
        var seconds = StoreRules.LeaseSeconds(ttl);
        await EnterAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            long id = 0;
            InTransaction(StoreDurability.Durable, () =>
            {
                id = Convert.ToInt64(
                    Query("INSERT INTO leases (ttl_ms, expires_ms) VALUES ($ttl, $expires) RETURNING id", ("$ttl", seconds * 1000), ("$expires", NowMs() + (seconds * 1000))),
                    CultureInfo.InvariantCulture);
                return true;
            });
            return new StoreLease(id, TimeSpan.FromSeconds(seconds));
        }
        catch (SqliteException ex)
        {
            throw Map(ex, _subject);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <inheritdoc />
    public async ValueTask<TimeSpan> KeepLeaseAliveAsync(long leaseId, CancellationToken cancellationToken = default)
    {
        await EnterAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            long ttlMs = 0;
            InTransaction(StoreDurability.Relaxed, () =>
            {
                var now = NowMs();
                var ttl = Query("UPDATE leases SET expires_ms = $now + ttl_ms WHERE id = $id AND expires_ms > $now RETURNING ttl_ms", ("$now", now), ("$id", leaseId));
                ttlMs = ttl is long value ? value : throw StoreRules.LeaseNotFound(leaseId);
                return true;
            });
            return TimeSpan.FromMilliseconds(ttlMs);
        }
        catch (SqliteException ex)
        {
            throw Map(ex, _subject);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <inheritdoc />
    public async ValueTask<bool> RevokeLeaseAsync(long leaseId, CancellationToken cancellationToken = default)
    {
        await EnterAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var alive = false;
            List<StoreEvent> events = [];
            var version = 0L;
            InTransaction(StoreDurability.Durable, () =>
            {
                if (Query("SELECT expires_ms FROM leases WHERE id = $id", ("$id", leaseId)) is not long expires)
                {
                    return false;
                }

                alive = expires > NowMs();
                version = EndLease(leaseId, events);
                return true;
            });

            PublishLocal(events);
            return alive;
        }
        catch (SqliteException ex)
        {
            throw Map(ex, _subject);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Checks and applies operations in one transaction; publishes to this instance's watchers and wakes the
    /// poller. Returns each operation's new version and whether anything changed.</summary>
    private async ValueTask<(long[] Results, bool Changed)> ApplyAsync(IReadOnlyList<StoreOperation> operations, StoreDurability durability, CancellationToken cancellationToken)
    {
        var count = operations.Count;
        var values = new byte[]?[count];
        for (var i = 0; i < count; i++)
        {
            if (operations[i].Kind == StoreOperationKind.Put)
            {
                values[i] = AsArray(operations[i].Value, out var owned);
                if (!owned && _watchers.Any)
                {
                    values[i] = values[i]!.AsSpan().ToArray(); // the event must not share the caller's buffer
                }
            }
        }

        await EnterAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            ReapExpiredLeases();
            var results = new long[count];
            var found = new long[count];
            var previous = new byte[]?[count];
            var version = 0L;
            var changed = InTransaction(durability, () =>
            {
                var changes = false;
                for (var i = 0; i < count; i++)
                {
                    var op = operations[i];
                    (found[i], previous[i]) = ReadCurrent(op.Key);
                    if (!StoreRules.Matches(op.ExpectedVersion, found[i]))
                    {
                        throw StoreRules.Conflict(op.Key, op.ExpectedVersion, found[i]);
                    }

                    if (op.Kind == StoreOperationKind.Put && op.Lease != StoreLease.None && !LeaseAlive(op.Lease))
                    {
                        throw StoreRules.LeaseNotFound(op.Lease);
                    }

                    changes |= op.Kind == StoreOperationKind.Put || (op.Kind == StoreOperationKind.Delete && found[i] != StoreVersion.Absent);
                }

                if (!changes)
                {
                    return false;
                }

                version = NextRevision();
                var seq = 0;
                for (var i = 0; i < count; i++)
                {
                    var op = operations[i];
                    if (op.Kind == StoreOperationKind.Put)
                    {
                        Upsert(op.Key, values[i]!, version, op.Lease);
                        Log(version, seq++, op.Key, values[i], found[i], previous[i]);
                        results[i] = version;
                    }
                    else if (op.Kind == StoreOperationKind.Delete && found[i] != StoreVersion.Absent)
                    {
                        Remove(op.Key);
                        Log(version, seq++, op.Key, null, found[i], previous[i]);
                    }
                }

                if (version % 64 == 0 && version > _historyRevisions)
                {
                    CompactTo(version - _historyRevisions);
                }

                return true;
            });

            if (changed)
            {
                if (_watchers.Any)
                {
                    for (var i = 0; i < count; i++)
                    {
                        var op = operations[i];
                        if (op.Kind == StoreOperationKind.Put)
                        {
                            _watchers.Publish(new StoreEvent(StoreEventKind.Put, op.Key, values[i]!, version));
                        }
                        else if (op.Kind == StoreOperationKind.Delete && found[i] != StoreVersion.Absent)
                        {
                            _watchers.Publish(new StoreEvent(StoreEventKind.Delete, op.Key, ReadOnlyMemory<byte>.Empty, version));
                        }
                    }
                }

                Kick();
            }

            return (results, changed);
        }
        catch (SqliteException ex)
        {
            throw Map(ex, _subject);
        }
        finally
        {
            _gate.Release();
        }
    }

    private (long Version, byte[]? Value) ReadCurrent(string key)
    {
        _current.Parameters[0].Value = key;
        using var reader = _current.ExecuteReader(CommandBehavior.SingleRow);
        return reader.Read() ? (ReadVersion(reader, 1), ReadValue(reader, 0)) : (StoreVersion.Absent, null);
    }

    private bool LeaseAlive(long lease)
    {
        _leaseAlive.Parameters[0].Value = lease;
        _leaseAlive.Parameters[1].Value = NowMs();
        return _leaseAlive.ExecuteScalar() is not null;
    }

    private void Log(long revision, int seq, string key, byte[]? value, long previousVersion, byte[]? previousValue)
    {
        _log.Parameters[0].Value = revision;
        _log.Parameters[1].Value = seq;
        _log.Parameters[2].Value = key;
        _log.Parameters[3].Value = value is null ? 1 : 0;
        _log.Parameters[4].Value = (object?)value ?? DBNull.Value;
        _log.Parameters[5].Value = previousVersion;
        _log.Parameters[6].Value = (object?)previousValue ?? DBNull.Value;
        _log.ExecuteNonQuery();
        _log.Parameters[4].Value = null;
        _log.Parameters[6].Value = null;
    }

    private (long Revision, long Compacted) ReadMeta()
    {
        using var reader = _meta.ExecuteReader(CommandBehavior.SingleRow);
        return reader.Read() ? (reader.GetInt64(0), reader.GetInt64(1)) : throw Corrupt(_subject, "the revision counter is missing");
    }

    private List<LoggedChange> ReadChanges(long after, long upto)
    {
        _changesAfter.Parameters[0].Value = after;
        _changesAfter.Parameters[1].Value = upto;
        List<LoggedChange> changes = [];
        using var reader = _changesAfter.ExecuteReader();
        while (reader.Read())
        {
            var deleted = reader.GetInt64(2) != 0;
            var storeEvent = new StoreEvent(
                deleted ? StoreEventKind.Delete : StoreEventKind.Put,
                reader.GetString(1),
                deleted ? ReadOnlyMemory<byte>.Empty : ReadValue(reader, 3),
                reader.GetInt64(0));
            changes.Add(new LoggedChange(storeEvent, reader.GetInt64(4), ReadValue(reader, 5)));
        }

        return changes;
    }

    private void CompactTo(long revision)
    {
        Query("DELETE FROM changes WHERE revision <= $r", ("$r", revision));
        Query("UPDATE meta SET compacted = $r WHERE id = 1 AND compacted < $r", ("$r", revision));
    }

    /// <summary>Deletes a lease and its keys (one new revision when it had keys). Call inside a write transaction.
    /// Adds the delete events to <paramref name="events"/>; returns the revision (0 when nothing was deleted).</summary>
    private long EndLease(long leaseId, List<StoreEvent> events)
    {
        List<(string Key, long Version, byte[] Value)> keys = [];
        using (var command = _connection.CreateCommand())
        {
            command.CommandText = "SELECT key, version, value FROM kv WHERE lease = $id ORDER BY key";
            command.Parameters.AddWithValue("$id", leaseId);
            using var reader = command.ExecuteReader();
            while (reader.Read())
            {
                keys.Add((reader.GetString(0), reader.GetInt64(1), ReadValue(reader, 2)));
            }
        }

        Query("DELETE FROM leases WHERE id = $id", ("$id", leaseId));
        if (keys.Count == 0)
        {
            return 0;
        }

        var version = NextRevision();
        var seq = 0;
        foreach (var (key, previousVersion, previousValue) in keys)
        {
            Remove(key);
            Log(version, seq++, key, null, previousVersion, previousValue);
            events.Add(new StoreEvent(StoreEventKind.Delete, key, ReadOnlyMemory<byte>.Empty, version));
        }

        return version;
    }

    /// <summary>Ends every expired lease (each in its own transaction), at most every 200 ms per instance. Call
    /// holding the gate, outside a transaction. A busy file is left for the next call.</summary>
    private void ReapExpiredLeases()
    {
        var now = NowMs();
        if (now < _nextReapCheckMs)
        {
            return;
        }

        _nextReapCheckMs = now + 200;
        List<long> due = [];
        using (var command = _connection.CreateCommand())
        {
            command.CommandText = "SELECT id FROM leases WHERE expires_ms <= $now";
            command.Parameters.AddWithValue("$now", now);
            using var reader = command.ExecuteReader();
            while (reader.Read())
            {
                due.Add(reader.GetInt64(0));
            }
        }

        foreach (var id in due)
        {
            List<StoreEvent> events = [];
            try
            {
                InTransaction(StoreDurability.Durable, () =>
                {
                    // Re-check under the write lock: another process may have reaped or renewed it.
                    if (Query("SELECT expires_ms FROM leases WHERE id = $id", ("$id", id)) is not long expires || expires > NowMs())
                    {
                        return false;
                    }

                    EndLease(id, events);
                    return true;
                });
            }
            catch (SqliteException ex) when (ex.SqliteErrorCode is raw.SQLITE_BUSY or raw.SQLITE_LOCKED)
            {
                _nextReapCheckMs = 0;
                return;
            }

            PublishLocal(events);
        }
    }

    private void PublishLocal(List<StoreEvent> events)
    {
        if (events.Count == 0)
        {
            return;
        }

        foreach (var storeEvent in events)
        {
            _watchers.Publish(storeEvent);
        }

        Kick();
    }

    private object? Query(string sql, params (string Name, object Value)[] parameters)
    {
        using var command = _connection.CreateCommand();
#pragma warning disable CA2100 // every statement is a constant of this class
        command.CommandText = sql;
#pragma warning restore CA2100
        foreach (var (name, value) in parameters)
        {
            command.Parameters.AddWithValue(name, value);
        }

        return command.ExecuteScalar();
    }

    private long NowMs() => _time.GetUtcNow().ToUnixTimeMilliseconds();

    private void Kick()
    {
        if (Volatile.Read(ref _pollWatchers).Length == 0)
        {
            return;
        }

        try
        {
            if (_kick.CurrentCount == 0)
            {
                _kick.Release();
            }
        }
        catch (SemaphoreFullException)
        {
            // Already kicked.
        }
    }

    private async Task PollLoopAsync()
    {
        var stopping = _stopping.Token;
        while (!stopping.IsCancellationRequested)
        {
            try
            {
                await _kick.WaitAsync(_pollInterval, stopping).ConfigureAwait(false);
                await PollOnceAsync(stopping).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stopping.IsCancellationRequested)
            {
                break;
            }
            catch (ObjectDisposedException)
            {
                break;
            }
            catch (CnmUnavailableException)
            {
                // Busy or unreadable for now: try again at the next tick.
            }
            catch (Exception ex) when (ex is CnmException or SqliteException)
            {
                foreach (var watcher in Volatile.Read(ref _pollWatchers))
                {
                    RemovePollWatcher(watcher, ex is SqliteException sqlite ? Map(sqlite, _subject) : ex);
                }
            }
        }
    }

    private async Task PollOnceAsync(CancellationToken stopping)
    {
        await EnterAsync(stopping).ConfigureAwait(false);
        try
        {
            ReapExpiredLeases();
            var watchers = Volatile.Read(ref _pollWatchers);
            if (watchers.Length == 0)
            {
                return;
            }

            var (current, compacted) = ReadMeta();
            var from = long.MaxValue;
            foreach (var watcher in watchers)
            {
                if (watcher.Cursor < compacted)
                {
                    RemovePollWatcher(watcher, StoreRules.Compacted(watcher.Cursor + 1, compacted));
                }
                else
                {
                    from = Math.Min(from, watcher.Cursor);
                }
            }

            if (from >= current)
            {
                return;
            }

            foreach (var change in ReadChanges(from, current))
            {
                foreach (var watcher in watchers)
                {
                    if (watcher.Cursor < change.Event.Version && StoreRules.IsUnder(change.Event.Key, watcher.Prefix))
                    {
                        watcher.Channel.Writer.TryWrite(change.Event);
                    }
                }
            }

            foreach (var watcher in watchers)
            {
                watcher.Cursor = Math.Max(watcher.Cursor, current);
            }
        }
        catch (SqliteException ex)
        {
            throw Map(ex, _subject);
        }
        finally
        {
            _gate.Release();
        }
    }

    private void RemovePollWatcher(PollWatcher watcher, Exception? error)
    {
        lock (_pollLock)
        {
            _pollWatchers = [.. _pollWatchers.Where(w => w != watcher)];
        }

        watcher.Channel.Writer.TryComplete(error);
    }

    /// <summary>One row of the change log: the event and the key's state before it.</summary>
    private sealed record LoggedChange(StoreEvent Event, long PreviousVersion, byte[] PreviousValue);

    /// <summary>A cross-process watcher: the last revision it has been given everything up to, and its queue.</summary>
    private sealed class PollWatcher(string prefix, long cursor)
    {
        public string Prefix { get; } = prefix;

        public long Cursor { get; set; } = cursor;

        public Channel<StoreEvent> Channel { get; } =
            System.Threading.Channels.Channel.CreateUnbounded<StoreEvent>(new UnboundedChannelOptions { SingleReader = true });

        public CancellationTokenRegistration Registration { get; set; }
    }

    /// <inheritdoc />
    /// <remarks>
    /// In-process only: reports the writes made through this instance, not those of other processes or other
    /// instances on the same file. The watcher is registered when this method is called; the stream ends without an
    /// exception when <paramref name="cancellationToken"/> (or the enumerator's token) is cancelled or the store is
    /// disposed. Each watcher has an unbounded queue. Delete events carry the revision of the delete as their version.
    /// </remarks>
    public IAsyncEnumerable<StoreEvent> WatchAsync(string prefix, CancellationToken cancellationToken = default)
    {
        StoreRules.ValidatePrefix(prefix);
        ObjectDisposedException.ThrowIf(_disposed, this);
        return _watchers.Watch(prefix, cancellationToken);
    }

    /// <summary>Closes the file (checkpointing the write-ahead log) and ends every watch. Safe to call twice.</summary>
    /// <returns>A task that completes when the file is closed.</returns>
    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }

        Task? poller;
        lock (_pollLock)
        {
            poller = _poller;
        }

        await _stopping.CancelAsync().ConfigureAwait(false);
        if (poller is not null)
        {
            await poller.ConfigureAwait(false);
        }

        await _gate.WaitAsync().ConfigureAwait(false);
        try
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            foreach (var command in (ReadOnlySpan<SqliteCommand>)[_begin, _commit, _rollback, _get, _version, _listRange, _listFrom, _upsert, _delete, _bump, _revision, _beginRead, _current, _log, _meta, _changesAfter, _leaseAlive])
            {
                command.Dispose();
            }

            await _connection.DisposeAsync().ConfigureAwait(false);
            _watchers.Complete();
            foreach (var watcher in Volatile.Read(ref _pollWatchers))
            {
                RemovePollWatcher(watcher, null);
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Test hook: called inside each committing transaction, just before <c>COMMIT</c>, with the connection's
    /// <c>PRAGMA synchronous</c> as read from SQLite then (1 = NORMAL, 2 = FULL).</summary>
    internal Action<int>? CommittingWithSynchronous { get; set; }

    /// <summary>Test hook: how many times a commit changed the connection's <c>synchronous</c> setting.</summary>
    internal int SynchronousSwitches { get; private set; }

    /// <summary>Reads a pragma of this store's connection (tests check <c>synchronous</c> and <c>journal_mode</c>).</summary>
    internal async ValueTask<object?> ReadPragmaAsync(string name, CancellationToken cancellationToken = default)
    {
        await EnterAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            using var command = _connection.CreateCommand();
#pragma warning disable CA2100 // internal test hook, names are constants in the tests
            command.CommandText = "PRAGMA " + name;
#pragma warning restore CA2100
            return command.ExecuteScalar();
        }
        finally
        {
            _gate.Release();
        }
    }

    private static SqliteKeyValueStore Open(SqliteStoreOptions options)
    {
        var path = System.IO.Path.GetFullPath(options.Path);
        var subject = Subject(path);
        try
        {
            CreateFile(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new CnmUnavailableException(StoreRules.StoreUnavailable, subject, "cannot create the store file: " + ex.Message, ex);
        }

        var busyMilliseconds = (int)Math.Ceiling(options.BusyTimeout.TotalMilliseconds);

        // Microsoft.Data.Sqlite retries a busy statement until the command timeout (whole seconds, 0 = forever);
        // SQLite's own busy handler waits busy_timeout inside each attempt. Keep the first at least one second.
        var commandTimeout = Math.Max(1, (int)Math.Ceiling(options.BusyTimeout.TotalSeconds));
        var builder = new SqliteConnectionStringBuilder
        {
            DataSource = path,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Cache = SqliteCacheMode.Private,
            Pooling = false,
            DefaultTimeout = commandTimeout,
        };

        var connection = new SqliteConnection(builder.ToString());
        try
        {
            connection.Open();
            Execute(connection, string.Create(CultureInfo.InvariantCulture, $"PRAGMA busy_timeout = {busyMilliseconds}"));
            var journalMode = Convert.ToString(Scalar(connection, "PRAGMA journal_mode = WAL"), CultureInfo.InvariantCulture);
            if (!string.Equals(journalMode, "wal", StringComparison.OrdinalIgnoreCase))
            {
                throw new CnmUnavailableException(StoreRules.StoreUnavailable, subject, $"cannot switch the file to write-ahead logging (journal mode is '{journalMode}')");
            }

            // Tiered starts at FULL (the schema commit below is durable) and switches per commit.
            var synchronousFull = options.Durability != SqliteDurability.ProcessCrash;
            Execute(connection, synchronousFull ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL");
            Execute(connection, "PRAGMA foreign_keys = ON");
            EnsureSchema(connection, subject);
            return new SqliteKeyValueStore(connection, options, path, synchronousFull, commandTimeout);
        }
        catch (SqliteException ex)
        {
            connection.Dispose();
            throw Map(ex, subject);
        }
        catch
        {
            connection.Dispose();
            throw;
        }
    }

    private static void CreateFile(string path)
    {
        // The directory is created 0700 whatever the umask, and refused (as the file below) if another user owns it or
        // group or others can write it: whoever can write the store can make the controller act on what it names.
        CnmSharp.Core.OwnedDirectory.Ensure(System.IO.Path.GetDirectoryName(path)!, CnmSharp.Core.OwnedDirectory.StateMode, "store directory", CnmSharp.Core.OwnedDirectory.StateMode);
        CnmSharp.Core.OwnedDirectory.CheckFileIfExists(path, "store file");
        if (File.Exists(path))
        {
            return;
        }

        var fileOptions = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.ReadWrite };
        if (!OperatingSystem.IsWindows())
        {
            fileOptions.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        try
        {
            // An empty file is a valid empty SQLite database; SQLite gives its -wal and -shm files the same mode.
            using var stream = new FileStream(path, fileOptions);
        }
        catch (IOException) when (File.Exists(path))
        {
            // Another process created it first.
        }
    }

    private static void EnsureSchema(SqliteConnection connection, string subject)
    {
        var version = Convert.ToInt64(Scalar(connection, "PRAGMA user_version"), CultureInfo.InvariantCulture);
        if (version == 0)
        {
            Execute(connection, "BEGIN IMMEDIATE");
            try
            {
                // Re-read under the write lock: another process may have created the schema meanwhile.
                version = Convert.ToInt64(Scalar(connection, "PRAGMA user_version"), CultureInfo.InvariantCulture);
                if (version == 0)
                {
                    var objects = Convert.ToInt64(Scalar(connection, "SELECT count(*) FROM sqlite_schema"), CultureInfo.InvariantCulture);
                    if (objects != 0)
                    {
                        throw Corrupt(subject, "the file is a SQLite database but not a CnmSharp store (it has tables and no schema version)");
                    }

                    Execute(connection, CreateSchemaSql);
                    version = SchemaVersion;
                }

                Execute(connection, "COMMIT");
            }
            catch
            {
                if (raw.sqlite3_get_autocommit(connection.Handle) == 0)
                {
                    Execute(connection, "ROLLBACK");
                }

                throw;
            }
        }

        if (version == 1)
        {
            Execute(connection, "BEGIN IMMEDIATE");
            try
            {
                version = Convert.ToInt64(Scalar(connection, "PRAGMA user_version"), CultureInfo.InvariantCulture);
                if (version == 1)
                {
                    Execute(connection, MigrateFromVersion1Sql);
                    version = SchemaVersion;
                }

                Execute(connection, "COMMIT");
            }
            catch
            {
                if (raw.sqlite3_get_autocommit(connection.Handle) == 0)
                {
                    Execute(connection, "ROLLBACK");
                }

                throw;
            }
        }

        if (version != SchemaVersion)
        {
            throw Corrupt(subject, string.Create(CultureInfo.InvariantCulture, $"schema version {version} is not supported (this CnmSharp reads version {SchemaVersion})"));
        }

        // One statement, so one snapshot: read as two, a commit by another process in between would make a sound
        // file look corrupt.
        long revision, highest;
        using (var command = connection.CreateCommand())
        {
            command.CommandText = "SELECT (SELECT revision FROM meta WHERE id = 1), (SELECT coalesce(max(version), 0) FROM kv)";
            using var reader = command.ExecuteReader();
            if (!reader.Read() || reader.IsDBNull(0))
            {
                throw Corrupt(subject, "the revision counter is missing");
            }

            revision = reader.GetInt64(0);
            highest = reader.GetInt64(1);
        }

        if (highest > revision)
        {
            throw Corrupt(subject, string.Create(CultureInfo.InvariantCulture, $"a record has version {highest}, above the revision counter {revision}"));
        }
    }

    private static void Execute(SqliteConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
#pragma warning disable CA2100 // every statement is a constant of this class
        command.CommandText = sql;
#pragma warning restore CA2100
        command.ExecuteNonQuery();
    }

    private static object? Scalar(SqliteConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
#pragma warning disable CA2100 // every statement is a constant of this class
        command.CommandText = sql;
#pragma warning restore CA2100
        return command.ExecuteScalar();
    }

    private static string Subject(string path) => $"store \"{path}\"";

    private static CnmInternalException Corrupt(string subject, string reason, Exception? inner = null) =>
        new(CnmErrorCodes.CorruptRecord, subject, reason, inner);

    private static CnmException Map(SqliteException ex, string subject) => ex.SqliteErrorCode switch
    {
        raw.SQLITE_BUSY or raw.SQLITE_LOCKED =>
            new CnmUnavailableException(StoreRules.StoreUnavailable, subject, "the store is locked by another connection: " + ex.Message, ex),
        raw.SQLITE_CORRUPT or raw.SQLITE_NOTADB =>
            Corrupt(subject, "the file is corrupt or not a SQLite database: " + ex.Message, ex),
        raw.SQLITE_FULL or raw.SQLITE_IOERR or raw.SQLITE_CANTOPEN or raw.SQLITE_READONLY or raw.SQLITE_PERM or raw.SQLITE_NOLFS =>
            new CnmUnavailableException(StoreRules.StoreUnavailable, subject, "the store file cannot be used: " + ex.Message, ex),
        _ => new CnmInternalException(StoreRules.StoreFailure, subject, ex.Message, ex),
    };

    private static byte[] AsArray(ReadOnlyMemory<byte> value, out bool owned)
    {
        if (MemoryMarshal.TryGetArray(value, out var segment) && segment.Array is { } array && segment.Offset == 0 && segment.Count == array.Length)
        {
            owned = false;
            return array;
        }

        owned = true;
        return value.ToArray();
    }

    private static byte[] ReadValue(SqliteDataReader reader, int ordinal) =>
        reader.IsDBNull(ordinal) ? [] : reader.GetFieldValue<byte[]>(ordinal);

    private static long ReadVersion(SqliteDataReader reader, int ordinal) => reader.GetInt64(ordinal);

    private async ValueTask EnterAsync(CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        if (_disposed)
        {
            _gate.Release();
            ObjectDisposedException.ThrowIf(true, this);
        }
    }

    private long CurrentVersion(string key)
    {
        _version.Parameters[0].Value = key;
        return _version.ExecuteScalar() is long version ? version : StoreVersion.Absent;
    }

    private long NextRevision() =>
        _bump.ExecuteScalar() is long revision ? revision : throw Corrupt(_subject, "the revision counter is missing");

    private void Upsert(string key, byte[] value, long version, long lease)
    {
        _upsert.Parameters[0].Value = key;
        _upsert.Parameters[1].Value = value;
        _upsert.Parameters[2].Value = version;
        _upsert.Parameters[3].Value = lease;
        _upsert.ExecuteNonQuery();
        _upsert.Parameters[1].Value = null; // do not keep the caller's buffer alive
    }

    private void Remove(string key)
    {
        _delete.Parameters[0].Value = key;
        _delete.ExecuteNonQuery();
    }

    /// <summary>Runs <paramref name="write"/> in one <c>BEGIN IMMEDIATE</c> transaction: commits when it returns true,
    /// rolls back when it returns false (nothing to write) or throws. Returns what it returned.</summary>
    private bool InTransaction(StoreDurability durability, Func<bool> write)
    {
        UseSynchronous(Durability switch
        {
            SqliteDurability.PowerLoss => true,
            SqliteDurability.ProcessCrash => false,
            _ => durability == StoreDurability.Durable,
        });
        _begin.ExecuteNonQuery();
        var committed = false;
        try
        {
            if (write())
            {
                CommittingWithSynchronous?.Invoke(Convert.ToInt32(Scalar(_connection, "PRAGMA synchronous"), CultureInfo.InvariantCulture));
                _commit.ExecuteNonQuery();
                committed = true;
            }
        }
        finally
        {
            if (!committed)
            {
                RollbackQuietly();
            }
        }

        return committed;
    }

    /// <summary>Sets the connection's <c>synchronous</c> for the next commit (outside a transaction), only when it
    /// differs from the current setting: a run of writes of one kind costs no extra statement.</summary>
    private void UseSynchronous(bool full)
    {
        if (full == _synchronousFull)
        {
            return;
        }

        // Not a reused prepared command: SQLite applies PRAGMA synchronous while compiling the statement, so a compiled
        // one changes nothing when stepped again (and preparing one would apply it at once).
        var rc = raw.sqlite3_exec(_connection.Handle, full ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL");
        SqliteException.ThrowExceptionForRC(rc, _connection.Handle);
        _synchronousFull = full;
        SynchronousSwitches++;
    }

    private void RollbackQuietly()
    {
        if (raw.sqlite3_get_autocommit(_connection.Handle) != 0)
        {
            return;
        }

        try
        {
            _rollback.ExecuteNonQuery();
        }
        catch (SqliteException)
        {
            // The transaction is gone either way once the connection closes.
        }
    }
}
