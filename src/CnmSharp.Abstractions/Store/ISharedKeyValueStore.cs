namespace CnmSharp.Store;

/// <summary>Special values of a store revision.</summary>
public static class StoreRevision
{
    /// <summary>In <see cref="ISharedKeyValueStore.ListAtAsync"/>: the current state. In
    /// <see cref="ISharedKeyValueStore.WatchFromAsync"/>: from the next write on.</summary>
    public const long Latest = 0;
}

/// <summary>The entries under a prefix as they were at one store revision.</summary>
/// <param name="Entries">The entries, ordered by key (ordinal).</param>
/// <param name="Revision">The store revision the listing was taken at: watch from <c>Revision + 1</c> to miss
/// nothing and see nothing twice.</param>
public sealed record StoreListing(IReadOnlyList<StoreEntry> Entries, long Revision);

/// <summary>A lease granted by an <see cref="ISharedKeyValueStore"/>: keys attached to it are deleted (with delete
/// events) when it expires or is revoked.</summary>
/// <param name="Id">The lease id (positive).</param>
/// <param name="Ttl">The time to live the store granted (whole seconds; a store may raise a short request to its
/// minimum).</param>
public sealed record StoreLease(long Id, TimeSpan Ttl)
{
    /// <summary>No lease (a put with it is not attached to any).</summary>
    public const long None = 0;
}

/// <summary>
/// A versioned store that several processes or hosts share and follow: besides <see cref="IKeyValueStore"/>, a
/// listing at a revision, a watch that resumes from a revision, and leases (etcd's model; the embedded SQLite store
/// and the in-memory store implement it too, so one conformance suite covers all three).
/// </summary>
/// <remarks>
/// <para><b>History.</b> A store keeps the changes of recent revisions. A listing at, or a watch from, a revision older
/// than what it keeps fails with <see cref="CnmConflictException"/> (<see cref="CnmErrorCodes.RevisionCompacted"/>):
/// the caller lists again (at the latest revision) and watches from there. <see cref="StoreFollower"/> is that loop.</para>
/// <para><b>Leases.</b> <see cref="GrantLeaseAsync"/> returns a lease with a time to live; <see cref="KeepLeaseAliveAsync"/>
/// starts the time again; when it runs out (or on <see cref="RevokeLeaseAsync"/>) every key attached to the lease is
/// deleted in one new revision and watchers see the deletes. Expiry is not instant: a store removes expired keys
/// within about a second (etcd: its leader's check; SQLite: the next operation or watch poll of any client).</para>
/// </remarks>
public interface ISharedKeyValueStore : IKeyValueStore
{
    /// <summary>Lists every key that starts with <paramref name="prefix"/> as it was at <paramref name="revision"/>.</summary>
    /// <param name="prefix">The prefix (<c>""</c> for every key).</param>
    /// <param name="revision">A past revision, or <see cref="StoreRevision.Latest"/> for the current state.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The entries, ordered by key, and the revision they were read at.</returns>
    /// <exception cref="CnmConflictException">The revision is compacted (<see cref="CnmErrorCodes.RevisionCompacted"/>).</exception>
    /// <exception cref="ArgumentOutOfRangeException">The revision is negative or in the future.</exception>
    ValueTask<StoreListing> ListAtAsync(string prefix, long revision = StoreRevision.Latest, CancellationToken cancellationToken = default);

    /// <summary>
    /// Streams every change under <paramref name="prefix"/> whose revision is at least <paramref name="fromRevision"/>
    /// (past ones first, from the store's history, then new ones as they commit), across every client of the store.
    /// Events arrive in revision order; the events of one commit share its revision and arrive in operation order.
    /// The stream ends without an exception when the token is cancelled or the store is disposed; it fails with
    /// <see cref="CnmConflictException"/> (<see cref="CnmErrorCodes.RevisionCompacted"/>) when the history from
    /// <paramref name="fromRevision"/> is gone, and with <see cref="CnmUnavailableException"/> when the store
    /// becomes unreachable; then the caller resumes (see <see cref="StoreFollower"/>).
    /// </summary>
    /// <param name="prefix">The prefix.</param>
    /// <param name="fromRevision">The first revision to report, or <see cref="StoreRevision.Latest"/> for the
    /// writes that commit after the call.</param>
    /// <param name="cancellationToken">Ends the stream.</param>
    /// <returns>The changes.</returns>
    IAsyncEnumerable<StoreEvent> WatchFromAsync(string prefix, long fromRevision, CancellationToken cancellationToken = default);

    /// <summary>Grants a lease.</summary>
    /// <param name="ttl">The time to live, rounded up to whole seconds (at least one).</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The lease.</returns>
    ValueTask<StoreLease> GrantLeaseAsync(TimeSpan ttl, CancellationToken cancellationToken = default);

    /// <summary>Starts a lease's time to live again (call it well within the TTL, for example every third of it).</summary>
    /// <param name="leaseId">The lease.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The time to live from now.</returns>
    /// <exception cref="CnmNotFoundException">The lease expired or was revoked (<see cref="CnmErrorCodes.LeaseNotFound"/>):
    /// its keys are gone; grant a new one and write them again.</exception>
    ValueTask<TimeSpan> KeepLeaseAliveAsync(long leaseId, CancellationToken cancellationToken = default);

    /// <summary>Revokes a lease: its keys are deleted in one revision.</summary>
    /// <param name="leaseId">The lease.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>False when the lease did not exist (expired or already revoked).</returns>
    ValueTask<bool> RevokeLeaseAsync(long leaseId, CancellationToken cancellationToken = default);

    /// <summary>Writes a key attached to a lease, if its version matches (one-operation <see cref="IKeyValueStore.CommitAsync(IReadOnlyList{StoreOperation}, StoreDurability, CancellationToken)"/>).</summary>
    /// <param name="key">The key.</param>
    /// <param name="value">The value.</param>
    /// <param name="expectedVersion">The version the key must have.</param>
    /// <param name="leaseId">The lease; <see cref="CnmNotFoundException"/> (<see cref="CnmErrorCodes.LeaseNotFound"/>) when it does not exist.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The new version.</returns>
    async ValueTask<long> PutWithLeaseAsync(string key, ReadOnlyMemory<byte> value, long expectedVersion, long leaseId, CancellationToken cancellationToken = default)
    {
        var versions = await CommitAsync([StoreOperation.Put(key, value, expectedVersion, leaseId)], StoreDurability.Durable, cancellationToken).ConfigureAwait(false);
        return versions[0];
    }
}
