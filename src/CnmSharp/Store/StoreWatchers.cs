using System.Threading.Channels;

namespace CnmSharp.Store;

/// <summary>
/// The watchers of one store instance. Each watcher owns an unbounded channel, so a writer never waits for a slow
/// reader; the price is memory for a reader that stops reading without cancelling. The store publishes while it
/// holds its write lock, so every watcher sees changes in commit order.
/// </summary>
internal sealed class StoreWatchers
{
    private readonly Lock _lock = new();
    private Watcher[] _watchers = [];
    private bool _completed;

    /// <summary>True when at least one watcher is registered (a cheap check before building events).</summary>
    internal bool Any => Volatile.Read(ref _watchers).Length != 0;

    /// <summary>
    /// Registers a watcher now (so it sees every change published after this call) and returns its stream. The
    /// stream ends, without an exception, when either token is cancelled or the store is disposed.
    /// </summary>
    internal IAsyncEnumerable<StoreEvent> Watch(string prefix, CancellationToken cancellationToken) =>
        Watch(prefix, 0, [], cancellationToken);

    /// <summary>
    /// Registers a watcher that first gets <paramref name="backlog"/> (events from the store's history, already
    /// filtered) and then every published event under its prefix whose version is at least
    /// <paramref name="minVersion"/>. Call with the store's write lock held, so nothing is published in between.
    /// </summary>
    internal IAsyncEnumerable<StoreEvent> Watch(string prefix, long minVersion, IEnumerable<StoreEvent> backlog, CancellationToken cancellationToken)
    {
        var watcher = new Watcher(prefix) { MinVersion = minVersion };
        foreach (var storeEvent in backlog)
        {
            watcher.Channel.Writer.TryWrite(storeEvent);
        }

        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_completed, this);
            _watchers = [.. _watchers, watcher];
        }

        if (cancellationToken.CanBeCanceled)
        {
            watcher.Registration = cancellationToken.UnsafeRegister(static (state, _) =>
            {
                var (self, w) = ((StoreWatchers, Watcher))state!;
                self.Remove(w);
            }, (this, watcher));
        }

        return WatchStream.ReadAsync(watcher.Channel.Reader, async () =>
        {
            await watcher.Registration.DisposeAsync().ConfigureAwait(false);
            Remove(watcher);
        }, cancellationToken);
    }

    /// <summary>Sends an event to every watcher whose prefix matches. Call with the store's write lock held.</summary>
    internal void Publish(StoreEvent storeEvent)
    {
        foreach (var watcher in Volatile.Read(ref _watchers))
        {
            if (storeEvent.Version >= watcher.MinVersion && StoreRules.IsUnder(storeEvent.Key, watcher.Prefix))
            {
                watcher.Channel.Writer.TryWrite(storeEvent);
            }
        }
    }

    /// <summary>Ends every stream (readers still get the events published before) and refuses new watchers.</summary>
    internal void Complete()
    {
        Watcher[] watchers;
        lock (_lock)
        {
            _completed = true;
            watchers = _watchers;
            _watchers = [];
        }

        foreach (var watcher in watchers)
        {
            watcher.Channel.Writer.TryComplete();
        }
    }

    private void Remove(Watcher watcher)
    {
        lock (_lock)
        {
            var index = Array.IndexOf(_watchers, watcher);
            if (index >= 0)
            {
                var copy = new Watcher[_watchers.Length - 1];
                Array.Copy(_watchers, 0, copy, 0, index);
                Array.Copy(_watchers, index + 1, copy, index, _watchers.Length - index - 1);
                _watchers = copy;
            }
        }

        watcher.Channel.Writer.TryComplete();
    }

    private sealed class Watcher(string prefix)
    {
        public string Prefix { get; } = prefix;

        public long MinVersion { get; init; }

        public Channel<StoreEvent> Channel { get; } =
            System.Threading.Channels.Channel.CreateUnbounded<StoreEvent>(new UnboundedChannelOptions { SingleReader = true });

        public CancellationTokenRegistration Registration { get; set; }
    }
}
