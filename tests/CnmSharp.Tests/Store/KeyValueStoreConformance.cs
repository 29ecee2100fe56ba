using System.Text;
using CnmSharp.Store;

namespace CnmSharp.Tests.Store;

/// <summary>
/// Every rule of <see cref="IKeyValueStore"/>, run against each implementation by a derived fixture.
/// </summary>
public abstract class KeyValueStoreConformance
{
    private static readonly TimeSpan EventTimeout = TimeSpan.FromSeconds(10);

    /// <summary>The store under test, fresh for each test.</summary>
    protected IKeyValueStore Store { get; private set; } = null!;

    /// <summary>Creates an empty store.</summary>
    protected abstract ValueTask<IKeyValueStore> CreateStoreAsync();

    /// <summary>The store as a shared store (every implementation is one).</summary>
    protected ISharedKeyValueStore Shared => (ISharedKeyValueStore)Store;

    /// <summary>True when a fresh store's revision is 0 (etcd's starts at 1, and a test store may share a cluster).</summary>
    protected virtual bool FreshRevisionIsZero => true;

    /// <summary>True when events of writes made just before a dispose still reach a watcher (an in-process store
    /// publishes them synchronously; etcd's stream may not have delivered them yet).</summary>
    protected virtual bool DeliversEventsPublishedBeforeDispose => true;

    /// <summary>Discards the store's history up to <paramref name="revision"/>.</summary>
    protected abstract ValueTask CompactAsync(long revision);

    /// <summary>Opens a second client of the same state (another SQLite instance on the file, another etcd client),
    /// or returns <see cref="Store"/> itself for a store that lives in one process. The test disposes it when it is not
    /// <see cref="Store"/>.</summary>
    protected abstract ValueTask<ISharedKeyValueStore> OpenSecondClientAsync();

    /// <summary>Runs after the store is disposed (the SQLite fixture deletes its directory).</summary>
    protected virtual void AfterStoreDisposed()
    {
    }

    [SetUp]
    public async Task CreateStore() => Store = await CreateStoreAsync();

    [TearDown]
    public async Task DisposeStore()
    {
        try
        {
            await Store.DisposeAsync();
        }
        finally
        {
            AfterStoreDisposed();
        }
    }

    protected static byte[] Bytes(string text) => Encoding.UTF8.GetBytes(text);

    protected static string Text(ReadOnlyMemory<byte> bytes) => Encoding.UTF8.GetString(bytes.Span);

    // ---- revision ----

    [Test]
    public async Task The_revision_is_zero_when_empty_and_moves_exactly_with_committing_writes()
    {
        if (FreshRevisionIsZero)
        {
            Assert.That(await Store.GetRevisionAsync(), Is.Zero);
        }

        var put = await Store.PutAsync("rev/a", Bytes("1"));
        Assert.That(await Store.GetRevisionAsync(), Is.EqualTo(put));

        // Reads, a delete of an absent key and a failed check change nothing.
        await Store.GetAsync("rev/a");
        await Store.ListAsync("rev/");
        await Store.DeleteAsync("rev/none");
        Assert.That(async () => await Store.PutAsync("rev/a", Bytes("2"), put + 100), Throws.InstanceOf<CnmConflictException>());
        Assert.That(await Store.GetRevisionAsync(), Is.EqualTo(put));

        var versions = await Store.CommitAsync([StoreOperation.Put("rev/b", Bytes("b")), StoreOperation.Delete("rev/a", put)]);
        Assert.That(await Store.GetRevisionAsync(), Is.EqualTo(versions[0]));
    }

    // ---- get / put / delete ----

    [Test]
    public async Task Get_of_an_absent_key_returns_null()
    {
        Assert.That(await Store.GetAsync("nets/none"), Is.Null);
    }

    [Test]
    public async Task Put_then_get_returns_the_value_and_a_positive_version()
    {
        var version = await Store.PutAsync("nets/a", Bytes("alpha"));
        var entry = await Store.GetAsync("nets/a");

        Assert.That(version, Is.Positive);
        Assert.That(entry, Is.Not.Null);
        Assert.That(entry!.Key, Is.EqualTo("nets/a"));
        Assert.That(Text(entry.Value), Is.EqualTo("alpha"));
        Assert.That(entry.Version, Is.EqualTo(version));
    }

    [Test]
    public async Task Put_copies_the_value_so_the_caller_may_reuse_its_buffer()
    {
        var buffer = Bytes("one");
        await Store.PutAsync("k", buffer);
        buffer[0] = (byte)'X';

        Assert.That(Text((await Store.GetAsync("k"))!.Value), Is.EqualTo("one"));
    }

    [Test]
    public async Task Put_of_a_slice_stores_exactly_the_slice()
    {
        var buffer = Bytes("..abc..");
        await Store.PutAsync("k", buffer.AsMemory(2, 3));

        Assert.That(Text((await Store.GetAsync("k"))!.Value), Is.EqualTo("abc"));
    }

    [Test]
    public async Task Empty_values_and_every_byte_value_round_trip()
    {
        var all = Enumerable.Range(0, 256).Select(i => (byte)i).ToArray();
        await Store.PutAsync("empty", ReadOnlyMemory<byte>.Empty);
        await Store.PutAsync("all", all);

        var empty = await Store.GetAsync("empty");
        Assert.That(empty, Is.Not.Null);
        Assert.That(empty!.Value.Length, Is.Zero);
        Assert.That((await Store.GetAsync("all"))!.Value.ToArray(), Is.EqualTo(all));
    }

    [Test]
    public async Task A_large_value_round_trips()
    {
        var big = new byte[1 << 20];
        new Random(42).NextBytes(big);
        await Store.PutAsync("big", big);

        var stored = (await Store.GetAsync("big"))!.Value;
        Assert.That(stored.Length, Is.EqualTo(big.Length));
        Assert.That(stored.Span.SequenceEqual(big), Is.True);
    }

    [Test]
    public async Task Put_with_Any_overwrites_and_gives_a_higher_version()
    {
        var first = await Store.PutAsync("k", Bytes("1"));
        var second = await Store.PutAsync("k", Bytes("2"), StoreVersion.Any);

        Assert.That(second, Is.GreaterThan(first));
        Assert.That(Text((await Store.GetAsync("k"))!.Value), Is.EqualTo("2"));
    }

    [Test]
    public async Task Put_with_Absent_creates_only()
    {
        var version = await Store.PutAsync("k", Bytes("1"), StoreVersion.Absent);

        var ex = await Assert.ThrowsAsync<CnmConflictException>(async () => await Store.PutAsync("k", Bytes("2"), StoreVersion.Absent));

        Assert.That(ex!.Code, Is.EqualTo(CnmErrorCodes.VersionConflict));
        Assert.That(ex.Kind, Is.EqualTo(CnmErrorKind.Conflict));
        Assert.That(ex.Subject, Is.EqualTo("key \"k\""));
        Assert.That(ex.Reason, Is.EqualTo($"expected version 0 (absent), found {version}"));
        Assert.That(Text((await Store.GetAsync("k"))!.Value), Is.EqualTo("1"));
    }

    [Test]
    public async Task Put_with_the_current_version_succeeds_and_a_stale_one_conflicts()
    {
        var v1 = await Store.PutAsync("k", Bytes("1"));
        var v2 = await Store.PutAsync("k", Bytes("2"), v1);

        var ex = await Assert.ThrowsAsync<CnmConflictException>(async () => await Store.PutAsync("k", Bytes("3"), v1));

        Assert.That(ex!.Code, Is.EqualTo(CnmErrorCodes.VersionConflict));
        Assert.That(ex.Message, Does.EndWith($"expected version {v1}, found {v2}"));
        var entry = await Store.GetAsync("k");
        Assert.That(Text(entry!.Value), Is.EqualTo("2"));
        Assert.That(entry.Version, Is.EqualTo(v2));
    }

    [Test]
    public async Task Put_with_a_version_on_an_absent_key_conflicts()
    {
        var ex = await Assert.ThrowsAsync<CnmConflictException>(async () => await Store.PutAsync("k", Bytes("1"), 7));

        Assert.That(ex!.Reason, Is.EqualTo("expected version 7, found 0 (absent)"));
        Assert.That(await Store.GetAsync("k"), Is.Null);
    }

    [Test]
    public async Task Invalid_arguments_throw_argument_exceptions()
    {
        await Assert.ThrowsAsync<ArgumentNullException>(async () => await Store.GetAsync(null!));
        await Assert.ThrowsAsync<ArgumentException>(async () => await Store.GetAsync(""));
        await Assert.ThrowsAsync<ArgumentException>(async () => await Store.PutAsync("a\0b", Bytes("x")));
        await Assert.ThrowsAsync<ArgumentException>(async () => await Store.PutAsync("lone\uD800", Bytes("x")));
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(async () => await Store.PutAsync("k", Bytes("x"), -2));
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(async () => await Store.DeleteAsync("k", -5));
        await Assert.ThrowsAsync<ArgumentNullException>(async () => await Store.ListAsync(null!));
        await Assert.ThrowsAsync<ArgumentNullException>(async () => await Store.CommitAsync(null!));
        Assert.Throws<ArgumentNullException>(() => Store.WatchAsync(null!));
    }

    [Test]
    public async Task Delete_with_Any_removes_an_existing_key()
    {
        await Store.PutAsync("k", Bytes("1"));

        Assert.That(await Store.DeleteAsync("k"), Is.True);
        Assert.That(await Store.GetAsync("k"), Is.Null);
    }

    [Test]
    public async Task Delete_of_an_absent_key_with_Any_or_Absent_returns_false()
    {
        Assert.That(await Store.DeleteAsync("none"), Is.False);
        Assert.That(await Store.DeleteAsync("none", StoreVersion.Absent), Is.False);
    }

    [Test]
    public async Task Delete_checks_the_version()
    {
        var v1 = await Store.PutAsync("k", Bytes("1"));
        var v2 = await Store.PutAsync("k", Bytes("2"));

        var stale = await Assert.ThrowsAsync<CnmConflictException>(async () => await Store.DeleteAsync("k", v1));
        var absent = await Assert.ThrowsAsync<CnmConflictException>(async () => await Store.DeleteAsync("k", StoreVersion.Absent));
        var missing = await Assert.ThrowsAsync<CnmConflictException>(async () => await Store.DeleteAsync("none", 3));

        Assert.That(stale!.Code, Is.EqualTo(CnmErrorCodes.VersionConflict));
        Assert.That(stale.Reason, Is.EqualTo($"expected version {v1}, found {v2}"));
        Assert.That(absent!.Code, Is.EqualTo(CnmErrorCodes.VersionConflict));
        Assert.That(missing!.Reason, Is.EqualTo("expected version 3, found 0 (absent)"));
        Assert.That(await Store.GetAsync("k"), Is.Not.Null);
        Assert.That(await Store.DeleteAsync("k", v2), Is.True);
        Assert.That(await Store.GetAsync("k"), Is.Null);
    }

    [Test]
    public async Task Versions_come_from_one_store_wide_counter_and_strictly_increase()
    {
        var a1 = await Store.PutAsync("a", Bytes("1"));
        var b1 = await Store.PutAsync("b", Bytes("1"));
        var a2 = await Store.PutAsync("a", Bytes("2"));
        await Store.DeleteAsync("b");
        var b2 = await Store.PutAsync("b", Bytes("2"), StoreVersion.Absent);

        Assert.That(new[] { a1, b1, a2, b2 }, Is.Ordered.Ascending.And.Unique);
        Assert.That(b2, Is.GreaterThan(a2 + 1), "the delete of b also took a revision");
    }

    // ---- list ----

    [Test]
    public async Task List_returns_exactly_the_keys_under_the_prefix_ordered_by_key()
    {
        string[] keys = ["net", "net/", "net/b/c", "net/a", "net0", "net.", "nes", "neu", "net/a/", "net//x", "n"];
        foreach (var key in keys)
        {
            await Store.PutAsync(key, Bytes(key));
        }

        var listed = await Store.ListAsync("net/");

        Assert.That(listed.Select(e => e.Key), Is.EqualTo(new[] { "net/", "net//x", "net/a", "net/a/", "net/b/c" }));
        Assert.That(listed.Select(e => Text(e.Value)), Is.EqualTo(listed.Select(e => e.Key)));
        Assert.That((await Store.ListAsync("net")).Select(e => e.Key), Is.EqualTo(new[] { "net", "net.", "net/", "net//x", "net/a", "net/a/", "net/b/c", "net0" }));
        Assert.That(await Store.ListAsync("nets/"), Is.Empty);
    }

    [Test]
    public async Task List_with_an_empty_prefix_returns_every_key_in_ordinal_order()
    {
        string[] keys = ["b", "a/2", "a/10", "A", "_", "%"];
        foreach (var key in keys)
        {
            await Store.PutAsync(key, Bytes(key));
        }

        var listed = (await Store.ListAsync("")).Select(e => e.Key).ToArray();

        Assert.That(listed, Is.EqualTo(keys.Order(StringComparer.Ordinal).ToArray()));
    }

    [Test]
    public async Task List_treats_percent_and_underscore_as_plain_characters()
    {
        string[] keys = ["a%b/1", "a_b/1", "aXb/1", "a%/x", "a%b", "a__/1", "a%%b/1"];
        foreach (var key in keys)
        {
            await Store.PutAsync(key, Bytes(key));
        }

        Assert.That((await Store.ListAsync("a%b/")).Select(e => e.Key), Is.EqualTo(new[] { "a%b/1" }));
        Assert.That((await Store.ListAsync("a_b/")).Select(e => e.Key), Is.EqualTo(new[] { "a_b/1" }));
        Assert.That((await Store.ListAsync("a%")).Select(e => e.Key), Is.EqualTo(new[] { "a%%b/1", "a%/x", "a%b", "a%b/1" }));
        Assert.That((await Store.ListAsync("a_")).Select(e => e.Key), Is.EqualTo(new[] { "a__/1", "a_b/1" }));
    }

    [Test]
    public async Task List_handles_non_ascii_keys_and_prefix_boundaries()
    {
        string[] keys =
        [
            "ü/1", "ü/2", "ü0", "üa", "ý/1", "u/1",
            "日本/東京", "日本/大阪", "日本語/x",
            "e/\U0001F600", "e/\uFF21", "e/\uE000", "e/\uD7FF", "e/z",
            "\uD7FF/a", "\uD7FF\uD7FF", "\uE000/a",
            "m/\U0010FFFF", "m/\U0010FFFF/x", "m/\U0010FFFFa", "m0",
        ];
        foreach (var key in keys)
        {
            await Store.PutAsync(key, Bytes(key));
        }

        Assert.That((await Store.ListAsync("ü/")).Select(e => e.Key), Is.EqualTo(new[] { "ü/1", "ü/2" }));
        Assert.That((await Store.ListAsync("ü")).Select(e => e.Key), Is.EqualTo(new[] { "ü/1", "ü/2", "ü0", "üa" }));
        Assert.That((await Store.ListAsync("日本/")).Select(e => e.Key), Is.EqualTo(new[] { "日本/大阪", "日本/東京" }.Order(StringComparer.Ordinal)));
        Assert.That((await Store.ListAsync("\uD7FF")).Select(e => e.Key), Is.EqualTo(new[] { "\uD7FF/a", "\uD7FF\uD7FF" }));
        Assert.That((await Store.ListAsync("m/\U0010FFFF")).Select(e => e.Key), Is.EqualTo(new[] { "m/\U0010FFFF", "m/\U0010FFFF/x", "m/\U0010FFFFa" }));

        // Ordinal (UTF-16) order puts U+1F600 (a surrogate pair) before U+E000 and U+FF21, unlike code point order.
        var e = (await Store.ListAsync("e/")).Select(x => x.Key).ToArray();
        Assert.That(e, Is.EqualTo(new[] { "e/\U0001F600", "e/\uD7FF", "e/\uE000", "e/\uFF21", "e/z" }.Order(StringComparer.Ordinal).ToArray()));

        var all = (await Store.ListAsync("")).Select(x => x.Key).ToArray();
        Assert.That(all, Is.EqualTo(keys.Order(StringComparer.Ordinal).ToArray()));
    }

    // ---- commit ----

    [Test]
    public async Task Commit_applies_every_operation_under_one_new_version()
    {
        var before = await Store.PutAsync("old", Bytes("x"));
        var versions = await Store.CommitAsync(
        [
            StoreOperation.Put("a", Bytes("1"), StoreVersion.Absent),
            StoreOperation.Put("b", Bytes("2")),
            StoreOperation.Delete("old", before),
            new StoreOperation(StoreOperationKind.Check, "none", default, StoreVersion.Absent),
        ]);

        Assert.That(versions, Has.Count.EqualTo(4));
        Assert.That(versions[0], Is.GreaterThan(before));
        Assert.That(versions[1], Is.EqualTo(versions[0]));
        Assert.That(versions[2], Is.Zero);
        Assert.That(versions[3], Is.Zero);
        Assert.That((await Store.GetAsync("a"))!.Version, Is.EqualTo(versions[0]));
        Assert.That(Text((await Store.GetAsync("b"))!.Value), Is.EqualTo("2"));
        Assert.That(await Store.GetAsync("old"), Is.Null);
    }

    [Test]
    public async Task Commit_with_a_failing_check_rolls_back_earlier_puts()
    {
        var existing = await Store.PutAsync("a", Bytes("old"));
        await Store.PutAsync("guard", Bytes("g"));

        var ex = await Assert.ThrowsAsync<CnmConflictException>(async () => await Store.CommitAsync(
        [
            StoreOperation.Put("a", Bytes("new")),
            StoreOperation.Put("b", Bytes("new"), StoreVersion.Absent),
            StoreOperation.Delete("guard"),
            new StoreOperation(StoreOperationKind.Check, "c", default, 12345),
        ]));

        Assert.That(ex!.Code, Is.EqualTo(CnmErrorCodes.VersionConflict));
        Assert.That(ex.Subject, Is.EqualTo("key \"c\""));
        var a = await Store.GetAsync("a");
        Assert.That(Text(a!.Value), Is.EqualTo("old"));
        Assert.That(a.Version, Is.EqualTo(existing));
        Assert.That(await Store.GetAsync("b"), Is.Null);
        Assert.That(await Store.GetAsync("guard"), Is.Not.Null);
    }

    [Test]
    public async Task Commit_with_a_failing_create_rolls_back_everything()
    {
        await Store.PutAsync("taken", Bytes("t"));

        await Assert.ThrowsAsync<CnmConflictException>(async () => await Store.CommitAsync(
        [
            StoreOperation.Put("x", Bytes("1")),
            StoreOperation.Put("taken", Bytes("2"), StoreVersion.Absent),
        ]));

        Assert.That(await Store.GetAsync("x"), Is.Null);
        Assert.That(Text((await Store.GetAsync("taken"))!.Value), Is.EqualTo("t"));
        var next = await Store.PutAsync("y", Bytes("1"));
        Assert.That(next, Is.GreaterThan((await Store.GetAsync("taken"))!.Version));
    }

    [Test]
    public async Task Commit_checks_pass_against_the_current_versions()
    {
        var v = await Store.PutAsync("network", Bytes("n"));

        var versions = await Store.CommitAsync(
        [
            new StoreOperation(StoreOperationKind.Check, "network", default, v),
            StoreOperation.Put("network/endpoint", Bytes("e"), StoreVersion.Absent),
        ]);

        Assert.That(versions[1], Is.GreaterThan(v));
        Assert.That(await Store.GetAsync("network/endpoint"), Is.Not.Null);
    }

    [Test]
    public async Task Commit_refuses_a_key_twice()
    {
        await Assert.ThrowsAsync<ArgumentException>(async () => await Store.CommitAsync(
        [
            StoreOperation.Put("a", Bytes("1")),
            StoreOperation.Put("a", Bytes("2")),
        ]));
    }

    [Test]
    public async Task Commit_of_nothing_returns_nothing()
    {
        Assert.That(await Store.CommitAsync([]), Is.Empty);
    }

    [Test]
    public async Task Commit_that_changes_nothing_does_not_advance_the_version()
    {
        var v1 = await Store.PutAsync("a", Bytes("1"));
        await Store.CommitAsync([new StoreOperation(StoreOperationKind.Check, "a", default, v1), StoreOperation.Delete("none")]);
        var v2 = await Store.PutAsync("b", Bytes("1"));

        Assert.That(v2, Is.EqualTo(v1 + 1));
    }

    // ---- durability hint ----

    [Test]
    public async Task Relaxed_writes_follow_every_rule_of_durable_ones_and_share_one_revision_order()
    {
        using var cts = new CancellationTokenSource(EventTimeout);
        await using var events = Store.WatchAsync("hint/", cts.Token).GetAsyncEnumerator(cts.Token);

        var v1 = await Store.PutAsync("hint/a", Bytes("1"), StoreVersion.Absent, StoreDurability.Relaxed);
        var v2 = await Store.PutAsync("hint/b", Bytes("2"), StoreVersion.Absent, StoreDurability.Durable);
        var v3 = (await Store.CommitAsync([StoreOperation.Put("hint/a", Bytes("3"), v1), StoreOperation.Delete("hint/b", v2)], StoreDurability.Relaxed))[0];
        Assert.That(async () => await Store.PutAsync("hint/a", Bytes("x"), v1, StoreDurability.Relaxed), Throws.InstanceOf<CnmConflictException>());
        Assert.That(async () => await Store.CommitAsync([StoreOperation.Put("hint/c", Bytes("x")), StoreOperation.Delete("hint/a", v1)], StoreDurability.Relaxed), Throws.InstanceOf<CnmConflictException>());
        Assert.That(await Store.DeleteAsync("hint/none", StoreVersion.Any, StoreDurability.Relaxed), Is.False);
        var revision = await Store.GetRevisionAsync();
        Assert.That(await Store.DeleteAsync("hint/a", v3, StoreDurability.Relaxed), Is.True);

        var seen = await Take(events, 5);
        var left = await Store.ListAsync("hint/");
        var final = await Store.GetRevisionAsync();
        Assert.Multiple(() =>
        {
            Assert.That(new[] { v1, v2, v3 }, Is.Ordered.Ascending.And.Unique);
            Assert.That(revision, Is.EqualTo(v3), "failed checks and absent deletes advance nothing");
            Assert.That(left, Is.Empty, "a failed relaxed commit wrote nothing (hint/c)");
            Assert.That(final, Is.EqualTo(v3 + 1));
            Assert.That(seen.Select(e => (e.Kind, e.Key, e.Version)), Is.EqualTo(new[]
            {
                (StoreEventKind.Put, "hint/a", v1),
                (StoreEventKind.Put, "hint/b", v2),
                (StoreEventKind.Put, "hint/a", v3),
                (StoreEventKind.Delete, "hint/b", v3),
                (StoreEventKind.Delete, "hint/a", v3 + 1),
            }));
        });
    }

    [Test]
    public async Task A_relaxed_write_reads_back_like_a_durable_one()
    {
        await Store.PutAsync("hint/r", Bytes("relaxed"), StoreVersion.Any, StoreDurability.Relaxed);
        await Store.CommitAsync([StoreOperation.Put("hint/d", Bytes("durable"))], StoreDurability.Durable);

        Assert.That((await Store.ListAsync("hint/")).Select(e => (e.Key, Text(e.Value))), Is.EqualTo(new[] { ("hint/d", "durable"), ("hint/r", "relaxed") }));
    }

    [Test]
    public async Task An_undefined_durability_is_refused_before_anything_is_written()
    {
        var undefined = (StoreDurability)7;
        var before = await Store.GetRevisionAsync();
        Assert.Multiple(() =>
        {
            Assert.That(async () => await Store.PutAsync("hint/u", Bytes("x"), StoreVersion.Any, undefined), Throws.InstanceOf<ArgumentOutOfRangeException>());
            Assert.That(async () => await Store.DeleteAsync("hint/u", StoreVersion.Any, undefined), Throws.InstanceOf<ArgumentOutOfRangeException>());
            Assert.That(async () => await Store.CommitAsync([StoreOperation.Put("hint/u", Bytes("x"))], undefined), Throws.InstanceOf<ArgumentOutOfRangeException>());
        });
        Assert.That(await Store.GetRevisionAsync(), Is.EqualTo(before));
        Assert.That(await Store.GetAsync("hint/u"), Is.Null);
    }

    // ---- watch ----

    [Test]
    public async Task Watch_sees_puts_and_deletes_under_the_prefix_only_in_order()
    {
        using var cts = new CancellationTokenSource(EventTimeout);
        await using var events = Store.WatchAsync("nets/", cts.Token).GetAsyncEnumerator(cts.Token);

        var v1 = await Store.PutAsync("nets/a", Bytes("1"));
        await Store.PutAsync("other/a", Bytes("x"));
        await Store.PutAsync("nets", Bytes("x"));
        await Store.PutAsync("nets0", Bytes("x"));
        var v2 = await Store.PutAsync("nets/b", Bytes("2"));
        await Store.DeleteAsync("nets/a");
        await Store.DeleteAsync("nets/none");
        var v3 = await Store.PutAsync("nets/a", Bytes("3"));

        var seen = await Take(events, 4);

        Assert.That(seen.Select(e => (e.Kind, e.Key)), Is.EqualTo(new[]
        {
            (StoreEventKind.Put, "nets/a"),
            (StoreEventKind.Put, "nets/b"),
            (StoreEventKind.Delete, "nets/a"),
            (StoreEventKind.Put, "nets/a"),
        }));
        Assert.That(seen[0].Version, Is.EqualTo(v1));
        Assert.That(Text(seen[0].Value), Is.EqualTo("1"));
        Assert.That(seen[1].Version, Is.EqualTo(v2));
        Assert.That(seen[2].Version, Is.GreaterThan(v2).And.LessThan(v3));
        Assert.That(seen[2].Value.Length, Is.Zero);
        Assert.That(seen[3].Version, Is.EqualTo(v3));
    }

    [Test]
    public async Task Watch_starts_when_called_not_when_enumerated()
    {
        await Store.PutAsync("w/before", Bytes("0"));
        using var cts = new CancellationTokenSource(EventTimeout);
        var stream = Store.WatchAsync("w/", cts.Token);
        await Store.PutAsync("w/after", Bytes("1"));

        await using var events = stream.GetAsyncEnumerator(cts.Token);
        var seen = await Take(events, 1);

        Assert.That(seen[0].Key, Is.EqualTo("w/after"));
    }

    [Test]
    public async Task Watch_reports_a_commit_in_operation_order_with_one_version()
    {
        await Store.PutAsync("c/gone", Bytes("x"));
        using var cts = new CancellationTokenSource(EventTimeout);
        await using var events = Store.WatchAsync("c/", cts.Token).GetAsyncEnumerator(cts.Token);

        var versions = await Store.CommitAsync(
        [
            StoreOperation.Put("c/2", Bytes("2")),
            StoreOperation.Delete("c/gone"),
            StoreOperation.Delete("c/never"),
            StoreOperation.Put("c/1", Bytes("1")),
            StoreOperation.Put("elsewhere", Bytes("e")),
        ]);
        await Store.CommitAsync([new StoreOperation(StoreOperationKind.Check, "c/1", default, versions[0])]);
        await Store.PutAsync("c/last", Bytes("l"));

        var seen = await Take(events, 4);

        Assert.That(seen.Select(e => (e.Kind, e.Key)), Is.EqualTo(new[]
        {
            (StoreEventKind.Put, "c/2"),
            (StoreEventKind.Delete, "c/gone"),
            (StoreEventKind.Put, "c/1"),
            (StoreEventKind.Put, "c/last"),
        }));
        Assert.That(seen.Take(3).Select(e => e.Version), Is.All.EqualTo(versions[0]));
    }

    [Test]
    public async Task Watch_does_not_see_a_failed_commit()
    {
        using var cts = new CancellationTokenSource(EventTimeout);
        await using var events = Store.WatchAsync("f/", cts.Token).GetAsyncEnumerator(cts.Token);

        await Assert.ThrowsAsync<CnmConflictException>(async () => await Store.CommitAsync(
        [
            StoreOperation.Put("f/a", Bytes("1")),
            StoreOperation.Put("f/b", Bytes("1"), 99),
        ]));
        await Store.PutAsync("f/c", Bytes("ok"));

        var seen = await Take(events, 1);
        Assert.That(seen[0].Key, Is.EqualTo("f/c"));
    }

    [Test]
    public async Task Watch_ends_without_error_when_cancelled()
    {
        using var cts = new CancellationTokenSource();
        var stream = Store.WatchAsync("x/", cts.Token);
        await Store.PutAsync("x/1", Bytes("1"));

        var seen = new List<StoreEvent>();
        var reader = Task.Run(async () =>
        {
            await foreach (var e in stream)
            {
                seen.Add(e);
                if (seen.Count == 1)
                {
                    await cts.CancelAsync();
                }
            }
        });

        await reader.WaitAsync(EventTimeout);
        await Store.PutAsync("x/2", Bytes("2"));

        Assert.That(seen.Select(e => e.Key), Is.EqualTo(new[] { "x/1" }));
    }

    [Test]
    public async Task Watch_cancelled_while_waiting_ends_the_stream()
    {
        using var cts = new CancellationTokenSource();
        var stream = Store.WatchAsync("idle/", cts.Token); // registered now: it sees every later change
        await WatchThenCancelWhileWaitingAsync(cts, async onEvent =>
        {
            await foreach (var e in stream)
            {
                onEvent(e);
            }
        });
    }

    [Test]
    public async Task Watch_ends_when_the_enumerator_token_is_cancelled()
    {
        using var cts = new CancellationTokenSource();
        var stream = Store.WatchAsync("idle/"); // registered now: it sees every later change
        await WatchThenCancelWhileWaitingAsync(cts, async onEvent =>
        {
            await foreach (var e in stream.WithCancellation(cts.Token))
            {
                onEvent(e);
            }
        });
    }

    /// <summary>A reader that has received one event (so it is reading, and waits for the next) is cancelled: its
    /// stream ends without an error, and a later change is not delivered.</summary>
    private async Task WatchThenCancelWhileWaitingAsync(CancellationTokenSource cts, Func<Action<StoreEvent>, Task> read)
    {
        var first = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var seen = new List<string>();
        var reader = Task.Run(() => read(e =>
        {
            seen.Add(e.Key);
            first.TrySetResult();
        }));

        await Store.PutAsync("idle/1", Bytes("1"));
        await Task.WhenAny(first.Task, reader).WaitAsync(EventTimeout);
        Assert.That(first.Task.IsCompleted, Is.True, reader.Exception?.ToString() ?? "the reader received the first event");
        await cts.CancelAsync();
        await reader.WaitAsync(EventTimeout);
        await Store.PutAsync("idle/2", Bytes("2"));

        Assert.That(seen, Is.EqualTo(new[] { "idle/1" }));
    }

    [Test]
    public async Task Watch_ends_when_the_store_is_disposed()
    {
        if (!DeliversEventsPublishedBeforeDispose)
        {
            var quiet = Store.WatchAsync("d/");
            await Store.DisposeAsync();
            await foreach (var e in quiet.WithCancellation(new CancellationTokenSource(EventTimeout).Token))
            {
                Assert.That(e.Key, Does.StartWith("d/"));
            }

            return;
        }

        var stream = Store.WatchAsync("d/");
        await Store.PutAsync("d/1", Bytes("1"));
        await Store.DisposeAsync();

        var seen = new List<string>();
        await foreach (var e in stream.WithCancellation(new CancellationTokenSource(EventTimeout).Token))
        {
            seen.Add(e.Key);
        }

        Assert.That(seen, Is.EqualTo(new[] { "d/1" }), "events before the dispose are still delivered");
    }

    [Test]
    public async Task Watchers_with_different_prefixes_see_their_own_changes()
    {
        using var cts = new CancellationTokenSource(EventTimeout);
        await using var a = Store.WatchAsync("a/", cts.Token).GetAsyncEnumerator(cts.Token);
        await using var all = Store.WatchAsync("", cts.Token).GetAsyncEnumerator(cts.Token);

        await Store.PutAsync("b/1", Bytes("1"));
        await Store.PutAsync("a/1", Bytes("1"));

        Assert.That((await Take(a, 1))[0].Key, Is.EqualTo("a/1"));
        Assert.That((await Take(all, 2)).Select(e => e.Key), Is.EqualTo(new[] { "b/1", "a/1" }));
    }

    // ---- concurrency, lifetime ----

    [Test]
    public async Task Concurrent_compare_and_swap_increments_lose_no_update()
    {
        const int Tasks = 8;
        const int Increments = 25;
        await Store.PutAsync("counter", BitConverter.GetBytes(0L), StoreVersion.Absent);
        var conflicts = 0;

        var workers = Enumerable.Range(0, Tasks).Select(_ => Task.Run(async () =>
        {
            for (var i = 0; i < Increments; i++)
            {
                while (true)
                {
                    var entry = (await Store.GetAsync("counter"))!;
                    var next = BitConverter.ToInt64(entry.Value.Span) + 1;
                    try
                    {
                        await Store.PutAsync("counter", BitConverter.GetBytes(next), entry.Version);
                        break;
                    }
                    catch (CnmConflictException ex) when (ex.Code == CnmErrorCodes.VersionConflict)
                    {
                        Interlocked.Increment(ref conflicts);
                    }
                }
            }
        })).ToArray();
        await Task.WhenAll(workers).WaitAsync(TimeSpan.FromSeconds(60));

        var final = (await Store.GetAsync("counter"))!;
        Assert.That(BitConverter.ToInt64(final.Value.Span), Is.EqualTo(Tasks * Increments));
        TestContext.Out.WriteLine($"{conflicts} conflicts retried");
    }

    [Test]
    public async Task A_disposed_store_refuses_operations_and_dispose_is_idempotent()
    {
        await Store.DisposeAsync();
        await Store.DisposeAsync();

        await Assert.ThrowsAsync<ObjectDisposedException>(async () => await Store.GetAsync("k"));
        await Assert.ThrowsAsync<ObjectDisposedException>(async () => await Store.PutAsync("k", Bytes("1")));
        await Assert.ThrowsAsync<ObjectDisposedException>(async () => await Store.CommitAsync([StoreOperation.Put("k", Bytes("1"))]));
        await Assert.ThrowsAsync<ObjectDisposedException>(async () => await Store.CommitAsync([]));
        await Assert.ThrowsAsync<ObjectDisposedException>(async () => await Store.ListAsync(""));
        await Assert.ThrowsAsync<ObjectDisposedException>(async () => await Store.DeleteAsync("k"));
        Assert.Throws<ObjectDisposedException>(() => Store.WatchAsync("k"));
    }

    [Test]
    public void A_cancelled_token_cancels_the_call()
    {
        using var cts = new CancellationTokenSource();
        cts.Cancel();

        Assert.That(async () => await Store.GetAsync("k", cts.Token), Throws.InstanceOf<OperationCanceledException>());
        Assert.That(async () => await Store.PutAsync("k", Bytes("1"), cancellationToken: cts.Token), Throws.InstanceOf<OperationCanceledException>());
    }

    [Test]
    public async Task A_cancelled_commit_writes_nothing()
    {
        using var cts = new CancellationTokenSource();
        await cts.CancelAsync();

        Assert.That(async () => await Store.CommitAsync([StoreOperation.Put("k", Bytes("1"))], cts.Token), Throws.InstanceOf<OperationCanceledException>());
        Assert.That(async () => await Store.DeleteAsync("k", cancellationToken: cts.Token), Throws.InstanceOf<OperationCanceledException>());
        Assert.That(await Store.GetAsync("k"), Is.Null);
    }

    private static async Task<List<StoreEvent>> Take(IAsyncEnumerator<StoreEvent> events, int count)
    {
        var seen = new List<StoreEvent>();
        while (seen.Count < count)
        {
            var more = await events.MoveNextAsync().AsTask().WaitAsync(EventTimeout);
            Assert.That(more, Is.True, $"the stream ended after {seen.Count} of {count} events");
            seen.Add(events.Current);
        }

        return seen;
    }

    // ---- shared store: listing at a revision ----

    [Test]
    public async Task ListAt_the_latest_revision_returns_the_entries_and_the_revision_they_were_read_at()
    {
        await Store.PutAsync("la/a", Bytes("1"));
        var v2 = await Store.PutAsync("la/b", Bytes("2"));
        await Store.PutAsync("other", Bytes("x"));

        var listing = await Shared.ListAtAsync("la/");

        Assert.That(listing.Entries.Select(e => (e.Key, Text(e.Value))), Is.EqualTo(new[] { ("la/a", "1"), ("la/b", "2") }));
        Assert.That(listing.Revision, Is.EqualTo(await Store.GetRevisionAsync()).And.GreaterThan(v2));
    }

    [Test]
    public async Task ListAt_a_past_revision_shows_the_state_as_it_was_then()
    {
        var r1 = await Store.PutAsync("past/a", Bytes("a1"));
        var r2 = await Store.PutAsync("past/b", Bytes("b1"));
        var r3 = await Store.PutAsync("past/a", Bytes("a2"));
        await Store.DeleteAsync("past/b");
        await Store.PutAsync("past/c", Bytes("c1"));
        await Store.PutAsync("pastx", Bytes("no"));

        var at2 = await Shared.ListAtAsync("past/", r2);
        var at3 = await Shared.ListAtAsync("past/", r3);

        Assert.That(at2.Revision, Is.EqualTo(r2));
        Assert.That(at2.Entries.Select(e => (e.Key, Text(e.Value), e.Version)), Is.EqualTo(new[] { ("past/a", "a1", r1), ("past/b", "b1", r2) }));
        Assert.That(at3.Entries.Select(e => (e.Key, Text(e.Value), e.Version)), Is.EqualTo(new[] { ("past/a", "a2", r3), ("past/b", "b1", r2) }));
        Assert.That((await Shared.ListAtAsync("past/")).Entries.Select(e => e.Key), Is.EqualTo(new[] { "past/a", "past/c" }));
    }

    [Test]
    public async Task ListAt_refuses_a_future_or_negative_revision()
    {
        var now = await Store.PutAsync("fut/a", Bytes("1"));

        Assert.That(async () => await Shared.ListAtAsync("fut/", now + 1000), Throws.InstanceOf<ArgumentOutOfRangeException>());
        Assert.That(async () => await Shared.ListAtAsync("fut/", -1), Throws.InstanceOf<ArgumentOutOfRangeException>());
    }

    [Test]
    public async Task ListAt_and_WatchFrom_a_compacted_revision_fail_with_RevisionCompacted()
    {
        var r1 = await Store.PutAsync("cmp/a", Bytes("1"));
        await Store.PutAsync("cmp/a", Bytes("2"));
        var r3 = await Store.PutAsync("cmp/a", Bytes("3"));
        await CompactAsync(r3);

        var list = await Assert.ThrowsAsync<CnmConflictException>(async () => await Shared.ListAtAsync("cmp/", r1));
        Assert.That(list!.Code, Is.EqualTo(CnmErrorCodes.RevisionCompacted));
        Assert.That((await Shared.ListAtAsync("cmp/", r3)).Entries.Single().Version, Is.EqualTo(r3));

        using var cts = new CancellationTokenSource(EventTimeout);
        await using var events = Shared.WatchFromAsync("cmp/", r1, cts.Token).GetAsyncEnumerator(cts.Token);
        var watch = await Assert.ThrowsAsync<CnmConflictException>(async () => await events.MoveNextAsync());
        Assert.That(watch!.Code, Is.EqualTo(CnmErrorCodes.RevisionCompacted));
    }

    // ---- shared store: watch from a revision ----

    [Test]
    public async Task WatchFrom_a_past_revision_replays_the_history_then_follows_new_writes()
    {
        await Store.PutAsync("wf/a", Bytes("1"));
        var r2 = await Store.PutAsync("wf/b", Bytes("2"));
        await Store.PutAsync("elsewhere", Bytes("x"));
        var versions = await Store.CommitAsync([StoreOperation.Delete("wf/a"), StoreOperation.Put("wf/c", Bytes("3"))]);
        var r3 = (await Store.GetRevisionAsync());

        using var cts = new CancellationTokenSource(EventTimeout);
        await using var events = Shared.WatchFromAsync("wf/", r2, cts.Token).GetAsyncEnumerator(cts.Token);
        var r4 = await Store.PutAsync("wf/d", Bytes("4"));
        var seen = await Take(events, 4);

        Assert.That(seen.Select(e => (e.Kind, e.Key, e.Version)), Is.EqualTo(new[]
        {
            (StoreEventKind.Put, "wf/b", r2),
            (StoreEventKind.Delete, "wf/a", r3),
            (StoreEventKind.Put, "wf/c", versions[1]),
            (StoreEventKind.Put, "wf/d", r4),
        }));
        Assert.That(Text(seen[2].Value), Is.EqualTo("3"));
    }

    [Test]
    public async Task WatchFrom_Latest_sees_only_writes_after_the_call()
    {
        await Store.PutAsync("wl/old", Bytes("0"));
        using var cts = new CancellationTokenSource(EventTimeout);
        var stream = Shared.WatchFromAsync("wl/", StoreRevision.Latest, cts.Token);
        await Store.PutAsync("wl/new", Bytes("1"));

        await using var events = stream.GetAsyncEnumerator(cts.Token);
        Assert.That((await Take(events, 1))[0].Key, Is.EqualTo("wl/new"));
    }

    [Test]
    public async Task WatchFrom_sees_the_writes_of_another_client_of_the_same_state()
    {
        var other = await OpenSecondClientAsync();
        try
        {
            var start = await Store.GetRevisionAsync();
            using var cts = new CancellationTokenSource(EventTimeout);
            await using var events = Shared.WatchFromAsync("x2/", start + 1, cts.Token).GetAsyncEnumerator(cts.Token);
            var v1 = await other.PutAsync("x2/a", Bytes("from the other"));
            await other.DeleteAsync("x2/a");

            var seen = await Take(events, 2);

            Assert.That(seen.Select(e => (e.Kind, e.Key)), Is.EqualTo(new[] { (StoreEventKind.Put, "x2/a"), (StoreEventKind.Delete, "x2/a") }));
            Assert.That(seen[0].Version, Is.EqualTo(v1));
            Assert.That(Text(seen[0].Value), Is.EqualTo("from the other"));
        }
        finally
        {
            if (!ReferenceEquals(other, Store))
            {
                await other.DisposeAsync();
            }
        }
    }

    [Test]
    public async Task WatchFrom_ends_without_error_when_cancelled()
    {
        using var cts = new CancellationTokenSource();
        var stream = Shared.WatchFromAsync("wc/", StoreRevision.Latest, cts.Token);
        await Store.PutAsync("wc/1", Bytes("1"));
        var seen = new List<string>();
        var reader = Task.Run(async () =>
        {
            await foreach (var e in stream)
            {
                seen.Add(e.Key);
                await cts.CancelAsync();
            }
        });

        await reader.WaitAsync(EventTimeout);
        Assert.That(seen, Is.EqualTo(new[] { "wc/1" }));
    }

    [Test]
    public async Task Follow_gives_a_snapshot_then_the_changes_and_a_new_snapshot_after_a_compaction()
    {
        await Store.PutAsync("fo/a", Bytes("1"));
        using var cts = new CancellationTokenSource(EventTimeout);
        await using var updates = Shared.FollowAsync("fo/", TimeSpan.FromMilliseconds(50), cancellationToken: cts.Token).GetAsyncEnumerator(cts.Token);

        Assert.That(await updates.MoveNextAsync(), Is.True);
        Assert.That(updates.Current.Snapshot!.Entries.Select(e => e.Key), Is.EqualTo(new[] { "fo/a" }));
        var v = await Store.PutAsync("fo/b", Bytes("2"));
        Assert.That(await updates.MoveNextAsync().AsTask().WaitAsync(EventTimeout), Is.True);
        Assert.That(updates.Current.Change, Is.EqualTo(updates.Current.Change! with { Key = "fo/b", Version = v, Kind = StoreEventKind.Put }));
    }

    // ---- shared store: leases ----

    [Test]
    public async Task A_revoked_lease_deletes_its_keys_in_one_revision_and_watchers_see_the_deletes()
    {
        var lease = await Shared.GrantLeaseAsync(TimeSpan.FromSeconds(30));
        await Shared.PutWithLeaseAsync("ls/a", Bytes("1"), StoreVersion.Absent, lease.Id);
        await Store.CommitAsync([StoreOperation.Put("ls/b", Bytes("2"), StoreVersion.Any, lease.Id), StoreOperation.Put("ls/free", Bytes("3"))]);
        using var cts = new CancellationTokenSource(EventTimeout);
        await using var events = Shared.WatchFromAsync("ls/", StoreRevision.Latest, cts.Token).GetAsyncEnumerator(cts.Token);

        Assert.That(lease.Id, Is.Positive);
        Assert.That(lease.Ttl, Is.GreaterThanOrEqualTo(TimeSpan.FromSeconds(30)));
        Assert.That(await Shared.RevokeLeaseAsync(lease.Id), Is.True);
        Assert.That(await Shared.RevokeLeaseAsync(lease.Id), Is.False);

        var seen = await Take(events, 2);
        Assert.That(seen.Select(e => (e.Kind, e.Key)), Is.EquivalentTo(new[] { (StoreEventKind.Delete, "ls/a"), (StoreEventKind.Delete, "ls/b") }));
        Assert.That(seen[0].Version, Is.EqualTo(seen[1].Version));
        Assert.That((await Store.ListAsync("ls/")).Select(e => e.Key), Is.EqualTo(new[] { "ls/free" }));
    }

    [Test]
    public async Task An_expired_lease_deletes_its_keys()
    {
        var lease = await Shared.GrantLeaseAsync(TimeSpan.FromSeconds(1));
        await Shared.PutWithLeaseAsync("le/host1", Bytes("alive"), StoreVersion.Any, lease.Id);
        using var cts = new CancellationTokenSource(EventTimeout);
        await using var events = Shared.WatchFromAsync("le/", StoreRevision.Latest, cts.Token).GetAsyncEnumerator(cts.Token);

        var seen = await Take(events, 1);

        Assert.That((seen[0].Kind, seen[0].Key), Is.EqualTo((StoreEventKind.Delete, "le/host1")));
        Assert.That(await Store.GetAsync("le/host1"), Is.Null);
        var ex = await Assert.ThrowsAsync<CnmNotFoundException>(async () => await Shared.KeepLeaseAliveAsync(lease.Id));
        Assert.That(ex!.Code, Is.EqualTo(CnmErrorCodes.LeaseNotFound));
    }

    [Test]
    public async Task A_lease_kept_alive_keeps_its_keys()
    {
        var lease = await Shared.GrantLeaseAsync(TimeSpan.FromSeconds(2));
        await Shared.PutWithLeaseAsync("lk/host1", Bytes("alive"), StoreVersion.Any, lease.Id);

        var until = DateTime.UtcNow.AddSeconds(3.5);
        while (DateTime.UtcNow < until)
        {
            Assert.That(await Shared.KeepLeaseAliveAsync(lease.Id), Is.GreaterThan(TimeSpan.Zero));
            await Task.Delay(400);
        }

        Assert.That(await Store.GetAsync("lk/host1"), Is.Not.Null);
        await Shared.RevokeLeaseAsync(lease.Id);
    }

    [Test]
    public async Task Unknown_leases_are_refused_and_a_put_without_a_lease_detaches_the_key()
    {
        var missing = await Assert.ThrowsAsync<CnmNotFoundException>(async () => await Shared.PutWithLeaseAsync("lu/a", Bytes("1"), StoreVersion.Any, 987654321));
        Assert.That(missing!.Code, Is.EqualTo(CnmErrorCodes.LeaseNotFound));
        Assert.That(await Store.GetAsync("lu/a"), Is.Null);
        await Assert.ThrowsAsync<CnmNotFoundException>(async () => await Shared.KeepLeaseAliveAsync(987654321));
        Assert.That(await Shared.RevokeLeaseAsync(987654321), Is.False);

        var lease = await Shared.GrantLeaseAsync(TimeSpan.FromSeconds(30));
        await Shared.PutWithLeaseAsync("lu/a", Bytes("1"), StoreVersion.Any, lease.Id);
        await Store.PutAsync("lu/a", Bytes("2"));
        await Shared.RevokeLeaseAsync(lease.Id);

        Assert.That(Text((await Store.GetAsync("lu/a"))!.Value), Is.EqualTo("2"));
    }
}
