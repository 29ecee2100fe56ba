using System.Globalization;
using System.Text;
using CnmSharp.Store;
using Microsoft.Data.Sqlite;

namespace CnmSharp.Tests.Store;

/// <summary>What only the SQLite store promises: persistence, sharing a file, file modes, errors.</summary>
[TestFixture]
public sealed class SqliteKeyValueStoreTests
{
    private TempDirectory _directory = null!;

    [SetUp]
    public void CreateDirectory() => _directory = new TempDirectory();

    [TearDown]
    public void DeleteDirectory() => _directory.Dispose();

    [Test]
    public void The_bundled_native_sqlite_loads_and_is_recent_enough()
    {
        using var connection = Raw(_directory.File("probe.db"));
        var version = (string)Scalar(connection, "SELECT sqlite_version()")!;
        TestContext.Out.WriteLine($"SQLite {version} on {System.Runtime.InteropServices.RuntimeInformation.RuntimeIdentifier}");

        // STRICT tables need 3.37, RETURNING 3.35.
        Assert.That(Version.Parse(version), Is.GreaterThanOrEqualTo(new Version(3, 37)));
    }

    [Test]
    public async Task Data_survives_dispose_and_reopen()
    {
        var path = _directory.File("store.db");
        long a, b;
        await using (var store = await Open(path))
        {
            a = await store.PutAsync("nets/a", Bytes("alpha"));
            var versions = await store.CommitAsync([StoreOperation.Put("nets/b", Bytes("beta")), StoreOperation.Put("nets/c", Bytes("gamma"))]);
            b = versions[0];
            await store.DeleteAsync("nets/c");
        }

        await using (var store = await Open(path))
        {
            var listed = await store.ListAsync("nets/");
            Assert.That(listed.Select(e => (e.Key, Text(e.Value), e.Version)), Is.EqualTo(new[] { ("nets/a", "alpha", a), ("nets/b", "beta", b) }));
            Assert.That(await store.PutAsync("nets/d", Bytes("delta")), Is.EqualTo(b + 2), "the revision counter continues (the delete took b + 1)");
        }
    }

    [Test]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public async Task Missing_directories_are_created_0700_and_the_file_0600()
    {
        var path = Path.Combine(_directory.Path, "a", "b", "store.db");
        await using var store = await Open(path);
        await store.PutAsync("k", Bytes("v"));

        Assert.That(store.Path, Is.EqualTo(path));
        Assert.That(File.GetUnixFileMode(Path.Combine(_directory.Path, "a")), Is.EqualTo(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute));
        Assert.That(File.GetUnixFileMode(Path.Combine(_directory.Path, "a", "b")), Is.EqualTo(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute));
        Assert.That(File.GetUnixFileMode(path), Is.EqualTo(UnixFileMode.UserRead | UnixFileMode.UserWrite));
        Assert.That(File.GetUnixFileMode(path + "-wal"), Is.EqualTo(UnixFileMode.UserRead | UnixFileMode.UserWrite));
    }

    [TestCase(SqliteDurability.ProcessCrash, 1L)]
    [TestCase(SqliteDurability.PowerLoss, 2L)]
    [TestCase(SqliteDurability.Tiered, 2L)]
    public async Task The_connection_uses_wal_and_the_durability_setting(SqliteDurability durability, long synchronous)
    {
        await using var store = await Open(_directory.File("store.db"), durability);

        Assert.That(store.Durability, Is.EqualTo(durability));
        Assert.That(await store.ReadPragmaAsync("journal_mode"), Is.EqualTo("wal"));
        Assert.That(await store.ReadPragmaAsync("synchronous"), Is.EqualTo(synchronous));
        Assert.That(await store.ReadPragmaAsync("foreign_keys"), Is.EqualTo(1L));
        Assert.That(await store.ReadPragmaAsync("user_version"), Is.EqualTo((long)SqliteKeyValueStore.SchemaVersion));
    }

    [Test]
    public void The_default_durability_is_tiered_for_the_store_and_the_controller()
    {
        Assert.That(new SqliteStoreOptions().Durability, Is.EqualTo(SqliteDurability.Tiered));
        Assert.That(new CnmOptions().Durability, Is.EqualTo(SqliteDurability.Tiered));
    }

    // The synchronous setting SQLite itself reports inside each committing transaction, just before COMMIT: 2 = FULL
    // (the WAL is synced before the commit returns), 1 = NORMAL.
    [TestCase(SqliteDurability.Tiered, 2L, 1L)]
    [TestCase(SqliteDurability.PowerLoss, 2L, 2L)]
    [TestCase(SqliteDurability.ProcessCrash, 1L, 1L)]
    public async Task Each_commit_uses_the_synchronous_setting_of_the_mode_and_the_hint(SqliteDurability mode, long durable, long relaxed)
    {
        await using var store = await Open(_directory.File("tiers.db"), mode);
        var seen = new List<long>();
        store.CommittingWithSynchronous = s => seen.Add(s);

        await store.PutAsync("k/a", Bytes("1"), StoreVersion.Any, StoreDurability.Relaxed);
        await store.PutAsync("k/a", Bytes("2"));
        await store.CommitAsync([StoreOperation.Put("k/b", Bytes("b"))], StoreDurability.Relaxed);
        await store.CommitAsync([StoreOperation.Put("k/c", Bytes("c"))], StoreDurability.Durable);
        await store.DeleteAsync("k/b", StoreVersion.Any, StoreDurability.Relaxed);
        await store.DeleteAsync("k/c");
        await store.PutAsync("k/d", Bytes("d"), StoreVersion.Any, StoreDurability.Relaxed);
        await store.PutAsync("k/e", Bytes("e"), StoreVersion.Any, StoreDurability.Relaxed);

        Assert.That(seen, Is.EqualTo(new[] { relaxed, durable, relaxed, durable, relaxed, durable, relaxed, relaxed }));
    }

    [Test]
    public async Task Tiered_switches_the_setting_only_when_the_hint_changes()
    {
        await using var store = await Open(_directory.File("switch.db"), SqliteDurability.Tiered);

        await store.PutAsync("k/a", Bytes("1"));
        await store.PutAsync("k/a", Bytes("2"));
        Assert.That(store.SynchronousSwitches, Is.Zero, "opened at FULL: durable writes need no switch");
        await store.PutAsync("k/a", Bytes("3"), StoreVersion.Any, StoreDurability.Relaxed);
        await store.CommitAsync([StoreOperation.Put("k/b", Bytes("b"))], StoreDurability.Relaxed);
        await store.DeleteAsync("k/b", StoreVersion.Any, StoreDurability.Relaxed);
        Assert.That(store.SynchronousSwitches, Is.EqualTo(1));
        await store.PutAsync("k/a", Bytes("4"));
        Assert.That(store.SynchronousSwitches, Is.EqualTo(2));
    }

    [Test]
    public async Task A_relaxed_write_is_there_after_reopening()
    {
        var path = _directory.File("reopen.db");
        await using (var store = await Open(path, SqliteDurability.Tiered))
        {
            await store.PutAsync("k/a", Bytes("relaxed"), StoreVersion.Any, StoreDurability.Relaxed);
        }

        await using var reopened = await Open(path, SqliteDurability.Tiered);
        Assert.That(Text((await reopened.GetAsync("k/a"))!.Value), Is.EqualTo("relaxed"));
    }

    [Test]
    public async Task Two_stores_on_one_file_see_each_others_writes_and_conflicts()
    {
        var path = _directory.File("shared.db");
        await using var first = await Open(path);
        await using var second = await Open(path);

        var v1 = await first.PutAsync("nets/a", Bytes("1"), StoreVersion.Absent);
        var seen = await second.GetAsync("nets/a");
        Assert.That(seen!.Version, Is.EqualTo(v1));

        var v2 = await second.PutAsync("nets/a", Bytes("2"), v1);
        Assert.That(v2, Is.GreaterThan(v1));

        var stale = await Assert.ThrowsAsync<CnmConflictException>(async () => await first.PutAsync("nets/a", Bytes("3"), v1));
        Assert.That(stale!.Reason, Is.EqualTo($"expected version {v1}, found {v2}"));
        var create = await Assert.ThrowsAsync<CnmConflictException>(async () => await first.CommitAsync([StoreOperation.Put("nets/b", Bytes("b")), StoreOperation.Put("nets/a", Bytes("x"), StoreVersion.Absent)]));
        Assert.That(create!.Code, Is.EqualTo(CnmErrorCodes.VersionConflict));
        Assert.That(await second.GetAsync("nets/b"), Is.Null);

        var v3 = await first.PutAsync("nets/c", Bytes("c"));
        Assert.That(v3, Is.GreaterThan(v2), "one revision counter for the file, whichever store writes");
        Assert.That((await second.ListAsync("nets/")).Select(e => e.Key), Is.EqualTo(new[] { "nets/a", "nets/c" }));
    }

    [Test]
    public async Task Concurrent_increments_through_two_stores_on_one_file_lose_no_update()
    {
        const int TasksPerStore = 4;
        const int Increments = 20;
        var path = _directory.File("shared.db");
        await using var first = await Open(path, SqliteDurability.ProcessCrash);
        await using var second = await Open(path, SqliteDurability.ProcessCrash);
        await first.PutAsync("counter", Bytes("0"), StoreVersion.Absent);

        var workers = Enumerable.Range(0, 2 * TasksPerStore)
            .Select(i => Task.Run(() => Increment(i % 2 == 0 ? first : second, Increments)))
            .ToArray();
        await Task.WhenAll(workers).WaitAsync(TimeSpan.FromSeconds(120));

        Assert.That(Text((await second.GetAsync("counter"))!.Value), Is.EqualTo((2 * TasksPerStore * Increments).ToString(CultureInfo.InvariantCulture)));
    }

    [Test]
    public async Task Watch_reports_only_the_writes_of_its_own_instance()
    {
        var path = _directory.File("shared.db");
        await using var first = await Open(path);
        await using var second = await Open(path);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await using var events = first.WatchAsync("w/", cts.Token).GetAsyncEnumerator(cts.Token);

        await second.PutAsync("w/by-second", Bytes("2"));
        await first.PutAsync("w/by-first", Bytes("1"));

        Assert.That(await events.MoveNextAsync(), Is.True);
        Assert.That(events.Current.Key, Is.EqualTo("w/by-first"));
    }

    [Test]
    public async Task A_write_lock_held_past_the_busy_timeout_is_unavailable_while_reads_go_on()
    {
        var path = _directory.File("store.db");
        await using var store = await Open(path, busyTimeout: TimeSpan.FromSeconds(1));
        await store.PutAsync("k", Bytes("1"));

        using (var holder = Raw(path))
        {
            Execute(holder, "BEGIN IMMEDIATE");
            var started = System.Diagnostics.Stopwatch.StartNew();
            var error = await Assert.ThrowsAsync<CnmUnavailableException>(async () => await store.PutAsync("k", Bytes("2")));
            started.Stop();

            Assert.That(error!.Kind, Is.EqualTo(CnmErrorKind.Unavailable));
            Assert.That(error.Code, Is.EqualTo("StoreUnavailable"));
            Assert.That(error.InnerException, Is.InstanceOf<SqliteException>());
            Assert.That(started.Elapsed, Is.GreaterThan(TimeSpan.FromMilliseconds(900)).And.LessThan(TimeSpan.FromSeconds(10)));
            TestContext.Out.WriteLine($"gave up after {started.ElapsedMilliseconds} ms");
            Assert.That(Text((await store.GetAsync("k"))!.Value), Is.EqualTo("1"), "readers are not blocked by a writer in WAL mode");
            Execute(holder, "ROLLBACK");
        }

        Assert.That(await store.PutAsync("k", Bytes("3")), Is.Positive);
    }

    [Test]
    public async Task A_file_that_is_not_sqlite_is_a_corrupt_record()
    {
        var path = _directory.File("garbage.db");
        var junk = new byte[8192];
        new Random(7).NextBytes(junk);
        await File.WriteAllBytesAsync(path, junk);

        var ex = await Assert.ThrowsAsync<CnmInternalException>(async () => await Open(path));

        Assert.That(ex!.Code, Is.EqualTo(CnmErrorCodes.CorruptRecord));
        Assert.That(ex.Subject, Is.EqualTo($"store \"{path}\""));
    }

    [Test]
    public async Task A_damaged_store_file_is_a_corrupt_record()
    {
        var path = _directory.File("store.db");
        await using (var store = await Open(path, SqliteDurability.ProcessCrash))
        {
            for (var i = 0; i < 200; i++)
            {
                await store.PutAsync($"k/{i:D4}", new byte[500]);
            }
        }

        // Overwrite the b-tree pages (everything after the 100-byte header of page 1) with junk.
        var bytes = await File.ReadAllBytesAsync(path);
        new Random(3).NextBytes(bytes.AsSpan(4096));
        await File.WriteAllBytesAsync(path, bytes);

        var ex = await Assert.ThrowsAsync<CnmInternalException>(async () =>
        {
            await using var store = await Open(path);
            await store.ListAsync("");
        });

        Assert.That(ex!.Code, Is.EqualTo(CnmErrorCodes.CorruptRecord));
    }

    [Test]
    public async Task A_foreign_sqlite_database_is_refused()
    {
        var path = _directory.File("foreign.db");
        using (var connection = Raw(path))
        {
            Execute(connection, "CREATE TABLE people (name TEXT)");
        }

        var ex = await Assert.ThrowsAsync<CnmInternalException>(async () => await Open(path));

        Assert.That(ex!.Code, Is.EqualTo(CnmErrorCodes.CorruptRecord));
        Assert.That(ex.Reason, Does.Contain("not a CnmSharp store"));
    }

    [Test]
    public async Task A_newer_schema_version_is_refused()
    {
        var path = _directory.File("store.db");
        await (await Open(path)).DisposeAsync();
        using (var connection = Raw(path))
        {
            Execute(connection, "PRAGMA user_version = 3");
        }

        var ex = await Assert.ThrowsAsync<CnmInternalException>(async () => await Open(path));

        Assert.That(ex!.Code, Is.EqualTo(CnmErrorCodes.CorruptRecord));
        Assert.That(ex.Reason, Does.Contain("schema version 3"));
    }

    [Test]
    public async Task A_version_1_file_is_migrated_keeping_its_records_with_history_from_its_revision_on()
    {
        var path = _directory.File("store.db");
        using (var connection = Raw(path))
        {
            Execute(connection, """
                CREATE TABLE kv (key TEXT NOT NULL PRIMARY KEY, value BLOB NOT NULL, version INTEGER NOT NULL CHECK (version > 0)) WITHOUT ROWID, STRICT;
                CREATE TABLE meta (id INTEGER NOT NULL PRIMARY KEY CHECK (id = 1), revision INTEGER NOT NULL CHECK (revision >= 0)) STRICT;
                INSERT INTO meta (id, revision) VALUES (1, 7);
                INSERT INTO kv (key, value, version) VALUES ('cnm/v1/network/n1', x'7b7d', 7);
                PRAGMA user_version = 1;
                """);
        }

        await using var store = await Open(path);

        Assert.That(await store.ReadPragmaAsync("user_version"), Is.EqualTo(2L));
        Assert.That((await store.GetAsync("cnm/v1/network/n1"))!.Version, Is.EqualTo(7));
        var v8 = await store.PutAsync("cnm/v1/network/n2", Bytes("{}"));
        Assert.That(v8, Is.EqualTo(8));
        Assert.That((await store.ListAtAsync("cnm/v1/", 7)).Entries.Select(e => e.Key), Is.EqualTo(new[] { "cnm/v1/network/n1" }));
        var ex = await Assert.ThrowsAsync<CnmConflictException>(async () => await store.ListAtAsync("cnm/v1/", 6));
        Assert.That(ex!.Code, Is.EqualTo(CnmErrorCodes.RevisionCompacted));
    }

    [Test]
    public async Task The_change_log_is_compacted_as_writes_go_on()
    {
        await using var store = await SqliteKeyValueStore.OpenAsync(new SqliteStoreOptions { Path = _directory.File("store.db"), Durability = SqliteDurability.ProcessCrash, HistoryRevisions = 10 });
        for (var i = 0; i < 130; i++)
        {
            await store.PutAsync("k", Bytes(i.ToString(CultureInfo.InvariantCulture)));
        }

        var ex = await Assert.ThrowsAsync<CnmConflictException>(async () => await store.ListAtAsync("", 100));
        Assert.That(ex!.Code, Is.EqualTo(CnmErrorCodes.RevisionCompacted));
        Assert.That(Text((await store.ListAtAsync("", 125)).Entries.Single().Value), Is.EqualTo("124"));
    }

    [Test]
    public async Task A_revision_counter_behind_its_records_is_refused()
    {
        var path = _directory.File("store.db");
        await using (var store = await Open(path))
        {
            await store.PutAsync("k", Bytes("v"));
        }

        using (var connection = Raw(path))
        {
            Execute(connection, "UPDATE meta SET revision = 0");
        }

        var ex = await Assert.ThrowsAsync<CnmInternalException>(async () => await Open(path));

        Assert.That(ex!.Code, Is.EqualTo(CnmErrorCodes.CorruptRecord));
    }

    [Test]
    public async Task Invalid_options_are_refused()
    {
        await Assert.ThrowsAsync<ArgumentNullException>(async () => await SqliteKeyValueStore.OpenAsync(null!));
        await Assert.ThrowsAsync<ArgumentException>(async () => await SqliteKeyValueStore.OpenAsync(new SqliteStoreOptions()));
        await Assert.ThrowsAsync<ArgumentException>(async () => await SqliteKeyValueStore.OpenAsync(new SqliteStoreOptions { Path = _directory.File("x.db"), BusyTimeout = TimeSpan.FromSeconds(-1) }));
        await Assert.ThrowsAsync<ArgumentException>(async () => await SqliteKeyValueStore.OpenAsync(new SqliteStoreOptions { Path = _directory.File("x.db"), Durability = (SqliteDurability)9 }));
    }

    [Test]
    public async Task A_path_that_cannot_be_created_is_unavailable()
    {
        var blocker = _directory.File("file");
        await File.WriteAllTextAsync(blocker, "not a directory");

        var ex = await Assert.ThrowsAsync<CnmUnavailableException>(async () => await Open(Path.Combine(blocker, "store.db")));

        Assert.That(ex!.Code, Is.EqualTo("StoreUnavailable"));
    }

    internal static async Task Increment(IKeyValueStore store, int times)
    {
        for (var i = 0; i < times; i++)
        {
            while (true)
            {
                var entry = (await store.GetAsync("counter"))!;
                var next = long.Parse(Text(entry.Value), CultureInfo.InvariantCulture) + 1;
                try
                {
                    await store.PutAsync("counter", Bytes(next.ToString(CultureInfo.InvariantCulture)), entry.Version);
                    break;
                }
                catch (CnmConflictException ex) when (ex.Code == CnmErrorCodes.VersionConflict)
                {
                }
            }
        }
    }

    internal static ValueTask<SqliteKeyValueStore> Open(string path, SqliteDurability durability = SqliteDurability.PowerLoss, TimeSpan? busyTimeout = null) =>
        SqliteKeyValueStore.OpenAsync(new SqliteStoreOptions { Path = path, Durability = durability, BusyTimeout = busyTimeout ?? TimeSpan.FromSeconds(30) });

    internal static SqliteConnection Raw(string path)
    {
        var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Pooling = false }.ToString());
        connection.Open();
        return connection;
    }

    internal static void Execute(SqliteConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    internal static object? Scalar(SqliteConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        return command.ExecuteScalar();
    }

    private static byte[] Bytes(string text) => Encoding.UTF8.GetBytes(text);

    private static string Text(ReadOnlyMemory<byte> bytes) => Encoding.UTF8.GetString(bytes.Span);
}
