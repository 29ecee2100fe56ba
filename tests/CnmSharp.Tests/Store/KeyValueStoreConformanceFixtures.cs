using CnmSharp.Store;

namespace CnmSharp.Tests.Store;

[TestFixture]
public sealed class InMemoryKeyValueStoreConformance : KeyValueStoreConformance
{
    protected override ValueTask<IKeyValueStore> CreateStoreAsync() => ValueTask.FromResult<IKeyValueStore>(new InMemoryKeyValueStore());

    protected override ValueTask CompactAsync(long revision) => ((InMemoryKeyValueStore)Store).CompactAsync(revision);

    protected override ValueTask<ISharedKeyValueStore> OpenSecondClientAsync() => ValueTask.FromResult(Shared);
}

[TestFixture]
public sealed class SqliteKeyValueStoreConformance : KeyValueStoreConformance
{
#pragma warning disable NUnit1032 // disposed by AfterStoreDisposed, which the base [TearDown] calls after the store is closed
    private TempDirectory? _directory;
#pragma warning restore NUnit1032

    protected override async ValueTask<IKeyValueStore> CreateStoreAsync()
    {
        _directory = new TempDirectory();
        return await SqliteKeyValueStore.OpenAsync(new SqliteStoreOptions { Path = _directory.File("store.db") });
    }

    protected override ValueTask CompactAsync(long revision) => ((SqliteKeyValueStore)Store).CompactAsync(revision);

    protected override async ValueTask<ISharedKeyValueStore> OpenSecondClientAsync() =>
        await SqliteKeyValueStore.OpenAsync(new SqliteStoreOptions { Path = _directory!.File("store.db") });

    protected override void AfterStoreDisposed() => _directory?.Dispose();
}
