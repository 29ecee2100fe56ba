using System.Data;
using System.Globalization;
using System.Runtime.InteropServices;
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
public sealed class SqliteKeyValueStore : IKeyValueStore, IStateLockProvider
{
    /// <summary>The schema version kept in SQLite's <c>user_version</c>.</summary>
    internal const int SchemaVersion = 1;

    private const string CreateSchemaSql = """
        CREATE TABLE kv (
            key TEXT NOT NULL PRIMARY KEY,
            value BLOB NOT NULL,
            version INTEGER NOT NULL CHECK (version > 0)
        ) WITHOUT ROWID, STRICT;
        CREATE TABLE meta (
            id INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
            revision INTEGER NOT NULL CHECK (revision >= 0)
        ) STRICT;
        INSERT INTO meta (id, revision) VALUES (1, 0);
        PRAGMA user_version = 1;
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
    private bool _synchronousFull;
    private volatile bool _disposed;

    private SqliteKeyValueStore(SqliteConnection connection, string path, SqliteDurability durability, bool synchronousFull, int commandTimeout)
    {
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
            "INSERT INTO kv (key, value, version) VALUES ($key, $value, $version) " +
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value, version = excluded.version",
            ("$key", SqliteType.Text),
            ("$value", SqliteType.Blob),
            ("$version", SqliteType.Integer));
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

        cancellationToken.ThrowIfCancellationRequested();
        return ValueTask.FromResult(Open(options));
    }

    /// <inheritdoc />
    public async ValueTask<long> GetRevisionAsync(CancellationToken cancellationToken = default)
    {
        await EnterAsync(cancellationToken).ConfigureAwait(false);
        try
        {
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
        var bytes = AsArray(value, out var owned);
        await EnterAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var version = 0L;
            InTransaction(durability, () =>
            {
                var found = CurrentVersion(key);
                if (!StoreRules.Matches(expectedVersion, found))
                {
                    throw StoreRules.Conflict(key, expectedVersion, found);
                }

                version = NextRevision();
                Upsert(key, bytes, version);
                return true;
            });

            if (_watchers.Any)
            {
                _watchers.Publish(new StoreEvent(StoreEventKind.Put, key, owned ? bytes : bytes.AsSpan().ToArray(), version));
            }

            return version;
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
    public ValueTask<bool> DeleteAsync(string key, long expectedVersion = StoreVersion.Any, CancellationToken cancellationToken = default) =>
        DeleteAsync(key, expectedVersion, StoreDurability.Durable, cancellationToken);

    /// <inheritdoc />
    /// <remarks>The hint is applied as for <see cref="PutAsync(string, ReadOnlyMemory{byte}, long, StoreDurability, CancellationToken)"/>.</remarks>
    public async ValueTask<bool> DeleteAsync(string key, long expectedVersion, StoreDurability durability, CancellationToken cancellationToken = default)
    {
        StoreRules.ValidateDurability(durability);
        StoreRules.ValidateKey(key);
        StoreRules.ValidateExpectedVersion(expectedVersion);
        await EnterAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var version = 0L;
            var existed = InTransaction(durability, () =>
            {
                var found = CurrentVersion(key);
                if (!StoreRules.Matches(expectedVersion, found))
                {
                    throw StoreRules.Conflict(key, expectedVersion, found);
                }

                if (found == StoreVersion.Absent)
                {
                    return false; // nothing written: the empty transaction is rolled back
                }

                version = NextRevision();
                Remove(key);
                return true;
            });

            if (!existed)
            {
                return false;
            }

            if (_watchers.Any)
            {
                _watchers.Publish(new StoreEvent(StoreEventKind.Delete, key, ReadOnlyMemory<byte>.Empty, version));
            }

            return true;
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
        var count = operations.Count;
        var results = new long[count];
        if (count == 0)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            cancellationToken.ThrowIfCancellationRequested();
            return results;
        }

        var values = new byte[]?[count];
        var owned = new bool[count];
        for (var i = 0; i < count; i++)
        {
            if (operations[i].Kind == StoreOperationKind.Put)
            {
                values[i] = AsArray(operations[i].Value, out owned[i]);
            }
        }

        await EnterAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var found = new long[count];
            var version = 0L;
            InTransaction(durability, () =>
            {
                var changes = false;
                for (var i = 0; i < count; i++)
                {
                    var op = operations[i];
                    found[i] = CurrentVersion(op.Key);
                    if (!StoreRules.Matches(op.ExpectedVersion, found[i]))
                    {
                        throw StoreRules.Conflict(op.Key, op.ExpectedVersion, found[i]);
                    }

                    changes |= op.Kind == StoreOperationKind.Put || (op.Kind == StoreOperationKind.Delete && found[i] != StoreVersion.Absent);
                }

                if (changes)
                {
                    version = NextRevision();
                    for (var i = 0; i < count; i++)
                    {
                        var op = operations[i];
                        if (op.Kind == StoreOperationKind.Put)
                        {
                            Upsert(op.Key, values[i]!, version);
                            results[i] = version;
                        }
                        else if (op.Kind == StoreOperationKind.Delete && found[i] != StoreVersion.Absent)
                        {
                            Remove(op.Key);
                        }
                    }
                }

                return changes;
            });

            if (version != 0 && _watchers.Any)
            {
                for (var i = 0; i < count; i++)
                {
                    var op = operations[i];
                    if (op.Kind == StoreOperationKind.Put)
                    {
                        var bytes = values[i]!;
                        _watchers.Publish(new StoreEvent(StoreEventKind.Put, op.Key, owned[i] ? bytes : bytes.AsSpan().ToArray(), version));
                    }
                    else if (op.Kind == StoreOperationKind.Delete && found[i] != StoreVersion.Absent)
                    {
                        _watchers.Publish(new StoreEvent(StoreEventKind.Delete, op.Key, ReadOnlyMemory<byte>.Empty, version));
                    }
                }
            }

            return results;
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

        await _gate.WaitAsync().ConfigureAwait(false);
        try
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            foreach (var command in (ReadOnlySpan<SqliteCommand>)[_begin, _commit, _rollback, _get, _version, _listRange, _listFrom, _upsert, _delete, _bump, _revision])
            {
                command.Dispose();
            }

            await _connection.DisposeAsync().ConfigureAwait(false);
            _watchers.Complete();
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
            return new SqliteKeyValueStore(connection, path, options.Durability, synchronousFull, commandTimeout);
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

    private void Upsert(string key, byte[] value, long version)
    {
        _upsert.Parameters[0].Value = key;
        _upsert.Parameters[1].Value = value;
        _upsert.Parameters[2].Value = version;
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
