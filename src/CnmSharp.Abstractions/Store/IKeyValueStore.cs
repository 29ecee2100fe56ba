namespace CnmSharp.Store;

/// <summary>A record in the store with its version.</summary>
/// <param name="Key">The key.</param>
/// <param name="Value">The value bytes.</param>
/// <param name="Version">The version, which changes on every write of the key (positive).</param>
public sealed record StoreEntry(string Key, ReadOnlyMemory<byte> Value, long Version);

/// <summary>Special values of an expected version.</summary>
public static class StoreVersion
{
    /// <summary>Write whatever the current version is.</summary>
    public const long Any = -1;

    /// <summary>The key must not exist (create only).</summary>
    public const long Absent = 0;
}

/// <summary>What one operation of a transaction does.</summary>
public enum StoreOperationKind
{
    /// <summary>Write a value.</summary>
    Put,

    /// <summary>Delete a key (no error when it is absent and the expected version is <see cref="StoreVersion.Any"/>).</summary>
    Delete,

    /// <summary>Only check the expected version.</summary>
    Check,
}

/// <summary>One operation of an atomic <see cref="IKeyValueStore.CommitAsync(IReadOnlyList{StoreOperation}, StoreDurability, CancellationToken)"/>.</summary>
/// <param name="Kind">What to do.</param>
/// <param name="Key">The key.</param>
/// <param name="Value">The value for a put.</param>
/// <param name="ExpectedVersion">The version the key must have, or <see cref="StoreVersion.Any"/>.</param>
public sealed record StoreOperation(StoreOperationKind Kind, string Key, ReadOnlyMemory<byte> Value, long ExpectedVersion)
{
    /// <summary>
    /// For a put on an <see cref="ISharedKeyValueStore"/>: the lease the key is attached to (it is deleted when the
    /// lease expires or is revoked), or <see cref="StoreLease.None"/> (the default: a put detaches the key from any
    /// lease, as etcd does). Ignored for deletes and checks.
    /// </summary>
    public long Lease { get; init; }

    /// <summary>A put attached to a lease (see <see cref="Lease"/>).</summary>
    /// <param name="key">The key.</param>
    /// <param name="value">The value.</param>
    /// <param name="expectedVersion">The expected version.</param>
    /// <param name="lease">The lease id.</param>
    /// <returns>The operation.</returns>
    public static StoreOperation Put(string key, ReadOnlyMemory<byte> value, long expectedVersion, long lease) =>
        new(StoreOperationKind.Put, key, value, expectedVersion) { Lease = lease };

    /// <summary>A put.</summary>
    /// <param name="key">The key.</param>
    /// <param name="value">The value.</param>
    /// <param name="expectedVersion">The expected version.</param>
    /// <returns>The operation.</returns>
    public static StoreOperation Put(string key, ReadOnlyMemory<byte> value, long expectedVersion = StoreVersion.Any) =>
        new(StoreOperationKind.Put, key, value, expectedVersion);

    /// <summary>A delete.</summary>
    /// <param name="key">The key.</param>
    /// <param name="expectedVersion">The expected version.</param>
    /// <returns>The operation.</returns>
    public static StoreOperation Delete(string key, long expectedVersion = StoreVersion.Any) =>
        new(StoreOperationKind.Delete, key, ReadOnlyMemory<byte>.Empty, expectedVersion);
}

/// <summary>
/// How hard a write must be pushed to stable storage before it is acknowledged: a hint from the caller, who knows what
/// the data is; the store does not. Every write is atomic and survives a crash of the process whatever the hint.
/// </summary>
public enum StoreDurability
{
    /// <summary>The write survives a power loss or kernel crash once acknowledged (the default of every write).</summary>
    Durable = 0,

    /// <summary>
    /// The write may be lost by a power loss or kernel crash that follows it closely, for data that such a crash makes
    /// moot (per-container state: a reboot clears the namespaces and links it describes). A store that honours the hint
    /// keeps commit order across the crash: when a later write survives, this one does too; in particular every later
    /// <see cref="Durable"/> write makes it durable. A store may treat it as <see cref="Durable"/>.
    /// </summary>
    Relaxed = 1,
}

/// <summary>What happened to a key.</summary>
public enum StoreEventKind
{
    /// <summary>Created or updated.</summary>
    Put,

    /// <summary>Deleted.</summary>
    Delete,
}

/// <summary>A change seen by <see cref="IKeyValueStore.WatchAsync"/>.</summary>
/// <param name="Kind">Put or delete.</param>
/// <param name="Key">The key.</param>
/// <param name="Value">The new value (empty for a delete).</param>
/// <param name="Version">The version after the change.</param>
public sealed record StoreEvent(StoreEventKind Kind, string Key, ReadOnlyMemory<byte> Value, long Version);

/// <summary>
/// A versioned key-value store with compare-and-swap: the embedded durable store for local state, etcd for global
/// state, an in-memory one for tests. Keys are <c>/</c>-separated paths. A failed version check throws
/// <see cref="CnmConflictException"/> with code <see cref="CnmErrorCodes.VersionConflict"/>; an unreachable store
/// throws <see cref="CnmUnavailableException"/>. Every write takes a <see cref="StoreDurability"/> hint (the overloads
/// without one are <see cref="StoreDurability.Durable"/>); an implementation implements the overloads with the hint.
/// </summary>
public interface IKeyValueStore : IAsyncDisposable
{
    /// <summary>Reads a key.</summary>
    /// <param name="key">The key.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The entry, or null when absent.</returns>
    ValueTask<StoreEntry?> GetAsync(string key, CancellationToken cancellationToken = default);

    /// <summary>The store's current revision: the version the last committing write gave its keys (0 before the
    /// first). It changes exactly when a write commits, through this instance or any other client of the same state,
    /// so a caller that remembers it can tell cheaply whether anyone wrote since.</summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The revision.</returns>
    ValueTask<long> GetRevisionAsync(CancellationToken cancellationToken = default);

    /// <summary>Reads every key that starts with <paramref name="prefix"/>, ordered by key.</summary>
    /// <param name="prefix">The prefix.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The entries.</returns>
    ValueTask<IReadOnlyList<StoreEntry>> ListAsync(string prefix, CancellationToken cancellationToken = default);

    /// <summary>Writes a key if its version matches.</summary>
    /// <param name="key">The key.</param>
    /// <param name="value">The value.</param>
    /// <param name="expectedVersion">The version the key must have (<see cref="StoreVersion.Absent"/> to create).</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The new version.</returns>
    ValueTask<long> PutAsync(string key, ReadOnlyMemory<byte> value, long expectedVersion = StoreVersion.Any, CancellationToken cancellationToken = default) =>
        PutAsync(key, value, expectedVersion, StoreDurability.Durable, cancellationToken);

    /// <summary>Writes a key if its version matches, as durably as <paramref name="durability"/> asks.</summary>
    /// <param name="key">The key.</param>
    /// <param name="value">The value.</param>
    /// <param name="expectedVersion">The version the key must have (<see cref="StoreVersion.Absent"/> to create).</param>
    /// <param name="durability">Whether the write must survive a power loss once acknowledged.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The new version.</returns>
    ValueTask<long> PutAsync(string key, ReadOnlyMemory<byte> value, long expectedVersion, StoreDurability durability, CancellationToken cancellationToken = default);

    /// <summary>Deletes a key if its version matches.</summary>
    /// <param name="key">The key.</param>
    /// <param name="expectedVersion">The version the key must have.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>True when a key was deleted.</returns>
    ValueTask<bool> DeleteAsync(string key, long expectedVersion = StoreVersion.Any, CancellationToken cancellationToken = default) =>
        DeleteAsync(key, expectedVersion, StoreDurability.Durable, cancellationToken);

    /// <summary>Deletes a key if its version matches, as durably as <paramref name="durability"/> asks.</summary>
    /// <param name="key">The key.</param>
    /// <param name="expectedVersion">The version the key must have.</param>
    /// <param name="durability">Whether the delete must survive a power loss once acknowledged.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>True when a key was deleted.</returns>
    ValueTask<bool> DeleteAsync(string key, long expectedVersion, StoreDurability durability, CancellationToken cancellationToken = default);

    /// <summary>Applies several operations atomically: all or none.</summary>
    /// <param name="operations">The operations.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The version of each key after the commit (0 for deletes and checks), in order.</returns>
    ValueTask<IReadOnlyList<long>> CommitAsync(IReadOnlyList<StoreOperation> operations, CancellationToken cancellationToken = default) =>
        CommitAsync(operations, StoreDurability.Durable, cancellationToken);

    /// <summary>Applies several operations atomically (all or none), as durably as <paramref name="durability"/> asks.</summary>
    /// <param name="operations">The operations.</param>
    /// <param name="durability">Whether the commit must survive a power loss once acknowledged.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The version of each key after the commit (0 for deletes and checks), in order.</returns>
    ValueTask<IReadOnlyList<long>> CommitAsync(IReadOnlyList<StoreOperation> operations, StoreDurability durability, CancellationToken cancellationToken = default);

    /// <summary>Streams changes under a prefix from now on, until cancelled.</summary>
    /// <param name="prefix">The prefix.</param>
    /// <param name="cancellationToken">Ends the stream.</param>
    /// <returns>The changes.</returns>
    IAsyncEnumerable<StoreEvent> WatchAsync(string prefix, CancellationToken cancellationToken = default);
}
