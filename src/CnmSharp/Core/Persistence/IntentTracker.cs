using CnmSharp.Store;

namespace CnmSharp.Core.Persistence;

/// <summary>An intent record and its store version while its operation runs.</summary>
internal sealed class IntentTracker(CoreStore store, IntentRecord intent)
{
    private long _version;

    public IntentRecord Intent { get; } = intent;

    /// <summary>Records the intent before any driver, IPAM or kernel work.</summary>
    public async ValueTask BeginAsync(CancellationToken cancellationToken) =>
        _version = await store.PutIntentAsync(Intent, StoreVersion.Absent, cancellationToken).ConfigureAwait(false);

    /// <summary>Records progress (reservations made so far).</summary>
    public async ValueTask SaveAsync(CancellationToken cancellationToken) =>
        _version = await store.PutIntentAsync(Intent, _version, cancellationToken).ConfigureAwait(false);

    /// <summary>The operation that removes the intent, committed atomically with the operation's result.</summary>
    public StoreOperation Complete() => StoreOperation.Delete(CoreStore.IntentKey(Intent.Id), _version);

    /// <summary>Removes the intent after a rollback.</summary>
    public ValueTask<bool> AbandonAsync() => store.Store.DeleteAsync(CoreStore.IntentKey(Intent.Id), StoreVersion.Any, CancellationToken.None);
}
