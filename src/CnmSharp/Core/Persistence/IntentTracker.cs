using CnmSharp.Store;

namespace CnmSharp.Core.Persistence;

/// <summary>An intent record and its store version while its operation runs.</summary>
/// <remarks>
/// Every write of the intent (begin, progress, abandon) uses <paramref name="durability"/>: durable for network
/// operations (what a lost intent would leave behind is a declared object's reservation), relaxed for per-container
/// operations whose reservations the IPAM sweep finds by their owner (a power loss also clears the kernel objects such
/// an operation makes). See docs/store.md, "What the controller marks durable".
/// </remarks>
internal sealed class IntentTracker(CoreStore store, IntentRecord intent, StoreDurability durability)
{
    private long _version;

    public IntentRecord Intent { get; private set; } = intent;

    /// <summary>Records the intent, with this controller instance as its owner, before any driver, IPAM or kernel
    /// work.</summary>
    public async ValueTask BeginAsync(CancellationToken cancellationToken)
    {
        Intent = Intent with { Owner = store.Owner };
        store.LiveIntents.TryAdd(Intent.Id, 0);
        try
        {
            _version = await store.PutIntentAsync(Intent, StoreVersion.Absent, durability, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            store.LiveIntents.TryRemove(Intent.Id, out _);
            throw;
        }
    }

    /// <summary>Records progress (reservations made so far).</summary>
    public async ValueTask SaveAsync(CancellationToken cancellationToken) =>
        _version = await store.PutIntentAsync(Intent, _version, durability, cancellationToken).ConfigureAwait(false);

    /// <summary>The operation that removes the intent, committed atomically with the operation's result.</summary>
    public StoreOperation Complete()
    {
        store.LiveIntents.TryRemove(Intent.Id, out _);
        return StoreOperation.Delete(CoreStore.IntentKey(Intent.Id), _version);
    }

    /// <summary>Removes the intent after a rollback.</summary>
    public async ValueTask<bool> AbandonAsync()
    {
        store.LiveIntents.TryRemove(Intent.Id, out _);
        return await store.Store.DeleteAsync(CoreStore.IntentKey(Intent.Id), StoreVersion.Any, durability, CancellationToken.None).ConfigureAwait(false);
    }
}
