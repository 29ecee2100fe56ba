using System.Runtime.CompilerServices;

namespace CnmSharp.Store;

/// <summary>One step of <see cref="StoreFollower.FollowAsync"/>: either a whole new view of the prefix
/// (<see cref="Snapshot"/>) or one change to apply to the current view (<see cref="Change"/>).</summary>
/// <param name="Snapshot">When not null, the consumer replaces its whole view with these entries (the first update,
/// and again after a compaction made the history it needed unavailable).</param>
/// <param name="Change">When not null, one change after the last snapshot, in revision order.</param>
public sealed record StoreFollowUpdate(StoreListing? Snapshot, StoreEvent? Change);

/// <summary>
/// The list-then-watch loop every follower of a shared store needs: list the prefix, then watch from the listing's
/// revision; after a disconnect resume the watch from the last revision seen (skipping what was already delivered);
/// after a compaction list again. The consumer sees a snapshot, then changes, and again a snapshot whenever its view
/// must be rebuilt.
/// </summary>
public static class StoreFollower
{
    /// <summary>The default wait before trying an unreachable store again.</summary>
    public static readonly TimeSpan DefaultRetryDelay = TimeSpan.FromSeconds(1);

    /// <summary>Follows a prefix until <paramref name="cancellationToken"/> is cancelled or the store is disposed
    /// (then the stream ends without an exception). An unreachable store is retried every
    /// <paramref name="retryDelay"/>; <paramref name="onUnavailable"/> is told each time.</summary>
    /// <param name="store">The store.</param>
    /// <param name="prefix">The prefix to follow.</param>
    /// <param name="retryDelay">The wait before a retry (default <see cref="DefaultRetryDelay"/>).</param>
    /// <param name="onUnavailable">Called with each failure that will be retried (for logging), or null.</param>
    /// <param name="timeProvider">The clock for the waits (default the system's).</param>
    /// <param name="cancellationToken">Ends the stream.</param>
    /// <returns>The updates.</returns>
    public static async IAsyncEnumerable<StoreFollowUpdate> FollowAsync(
        this ISharedKeyValueStore store,
        string prefix,
        TimeSpan? retryDelay = null,
        Action<CnmException>? onUnavailable = null,
        TimeProvider? timeProvider = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(prefix);
        var delay = retryDelay ?? DefaultRetryDelay;
        var clock = timeProvider ?? TimeProvider.System;
        while (!cancellationToken.IsCancellationRequested)
        {
            // 1. List.
            StoreListing? listing = null;
            try
            {
                listing = await store.ListAtAsync(prefix, StoreRevision.Latest, cancellationToken).ConfigureAwait(false);
            }
            catch (CnmUnavailableException ex)
            {
                onUnavailable?.Invoke(ex);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                yield break;
            }
            catch (ObjectDisposedException)
            {
                yield break;
            }

            if (listing is null)
            {
                if (!await WaitAsync(delay, clock, cancellationToken).ConfigureAwait(false))
                {
                    yield break;
                }

                continue;
            }

            yield return new StoreFollowUpdate(listing, null);

            // 2. Watch, resuming after each disconnect, until a compaction sends us back to 1.
            var lastRevision = listing.Revision;
            var deliveredAtLast = 0; // events of lastRevision already delivered (a commit's events share its revision)
            var relist = false;
            while (!relist && !cancellationToken.IsCancellationRequested)
            {
                var from = deliveredAtLast == 0 ? lastRevision + 1 : lastRevision;
                var skip = deliveredAtLast;
                var ended = false;
                var retry = false;
                IAsyncEnumerator<StoreEvent>? events = null;
                try
                {
                    events = store.WatchFromAsync(prefix, from, cancellationToken).GetAsyncEnumerator(cancellationToken);
                    while (true)
                    {
                        StoreEvent? change = null;
                        try
                        {
                            if (!await events.MoveNextAsync().ConfigureAwait(false))
                            {
                                ended = true;
                            }
                            else
                            {
                                change = events.Current;
                            }
                        }
                        catch (CnmConflictException ex) when (ex.Code == CnmErrorCodes.RevisionCompacted)
                        {
                            relist = true;
                        }
                        catch (CnmUnavailableException ex)
                        {
                            onUnavailable?.Invoke(ex);
                            retry = true;
                        }
                        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
                        {
                            ended = true;
                        }
                        catch (ObjectDisposedException)
                        {
                            ended = true;
                        }

                        if (change is null)
                        {
                            break;
                        }

                        if (change.Version == from && skip > 0)
                        {
                            skip--;
                            continue;
                        }

                        if (change.Version == lastRevision)
                        {
                            deliveredAtLast++;
                        }
                        else
                        {
                            lastRevision = change.Version;
                            deliveredAtLast = 1;
                        }

                        yield return new StoreFollowUpdate(null, change);
                    }
                }
                finally
                {
                    if (events is not null)
                    {
                        await events.DisposeAsync().ConfigureAwait(false);
                    }
                }

                if (ended)
                {
                    yield break; // cancelled, or the store was disposed
                }

                if (retry && !await WaitAsync(delay, clock, cancellationToken).ConfigureAwait(false))
                {
                    yield break;
                }
            }
        }
    }

    private static async ValueTask<bool> WaitAsync(TimeSpan delay, TimeProvider clock, CancellationToken cancellationToken)
    {
        try
        {
            await Task.Delay(delay, clock, cancellationToken).ConfigureAwait(false);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }
}
