using System.Runtime.CompilerServices;
using System.Threading.Channels;

namespace CnmSharp.Store;

/// <summary>The reading side of a store watch: one channel per watcher, drained until it completes or the caller
/// cancels, then the watcher's own clean-up (both the in-process and the cross-process watchers use it).</summary>
internal static class WatchStream
{
    /// <summary>Yields what <paramref name="reader"/> holds until it completes or <paramref name="cancellationToken"/>
    /// is cancelled (the stream then ends without an exception), and runs <paramref name="end"/> once, however the
    /// enumeration ends.</summary>
    public static async IAsyncEnumerable<StoreEvent> ReadAsync(ChannelReader<StoreEvent> reader, Func<ValueTask> end, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        try
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                bool more;
                try
                {
                    more = await reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
                {
                    more = false;
                }

                if (!more)
                {
                    break;
                }

                while (!cancellationToken.IsCancellationRequested && reader.TryRead(out var storeEvent))
                {
                    yield return storeEvent;
                }
            }
        }
        finally
        {
            await end().ConfigureAwait(false);
        }
    }
}
