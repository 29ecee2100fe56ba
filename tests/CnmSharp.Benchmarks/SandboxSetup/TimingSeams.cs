using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using CnmSharp.Diagnostics;
using CnmSharp.Sandboxes;
using CnmSharp.Sandboxes.Files;
using CnmSharp.Store;

namespace CnmSharp.Benchmarks.SandboxSetup;

/// <summary>Durations (ms) by name, in the order they ended, tagged with the pass they belong to; filled from many
/// threads.</summary>
internal sealed class SpanRecorder
{
    public ConcurrentDictionary<string, ConcurrentQueue<(int Pass, double Ms)>> Spans { get; } = new(StringComparer.Ordinal);

    /// <summary>The pass being recorded (the tool counts passes up).</summary>
    public int Pass { get; set; }

    public void Add(string name, double ms) => Spans.GetOrAdd(name, _ => new()).Enqueue((Pass, ms));

    /// <summary>Records the controller's activity spans (every operation, nested ones included) until disposed.</summary>
    public ActivityListener Listen()
    {
        var listener = new ActivityListener
        {
            ShouldListenTo = s => s.Name == CnmTelemetry.ActivitySourceName,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllData,
            ActivityStopped = a => Add(a.OperationName, a.Duration.TotalMilliseconds),
        };
        ActivitySource.AddActivityListener(listener);
        return listener;
    }

    public async ValueTask TimeAsync(string name, Func<ValueTask> operation)
    {
        var start = Stopwatch.GetTimestamp();
        try
        {
            await operation().ConfigureAwait(false);
        }
        finally
        {
            Add(name, Stopwatch.GetElapsedTime(start).TotalMilliseconds);
        }
    }

    public async ValueTask<T> TimeAsync<T>(string name, Func<ValueTask<T>> operation)
    {
        var start = Stopwatch.GetTimestamp();
        try
        {
            return await operation().ConfigureAwait(false);
        }
        finally
        {
            Add(name, Stopwatch.GetElapsedTime(start).TotalMilliseconds);
        }
    }
}

/// <summary>The controller's namespace seam (the real <see cref="LinuxSandboxNetworking"/>), timed per call.</summary>
internal sealed class TimedSandboxNetworking(LinuxSandboxNetworking inner, SpanRecorder spans) : ISandboxNetworking, IAsyncDisposable
{
    public ValueTask CreateNamespaceAsync(string key, CancellationToken cancellationToken = default) =>
        spans.TimeAsync("seam: namespace create (+ socket, lo up)", () => inner.CreateNamespaceAsync(key, cancellationToken));

    public ValueTask<bool> NamespaceExistsAsync(string key, CancellationToken cancellationToken = default) =>
        spans.TimeAsync("seam: namespace exists", () => inner.NamespaceExistsAsync(key, cancellationToken));

    public ValueTask DeleteNamespaceAsync(string key, CancellationToken cancellationToken = default) =>
        spans.TimeAsync("seam: namespace delete", () => inner.DeleteNamespaceAsync(key, cancellationToken));

    public ValueTask AddInterfaceAsync(string key, SandboxInterface sandboxInterface, CancellationToken cancellationToken = default) =>
        spans.TimeAsync("seam: interface configure in sandbox", () => inner.AddInterfaceAsync(key, sandboxInterface, cancellationToken));

    public ValueTask RemoveInterfaceAsync(string key, SandboxInterface sandboxInterface, CancellationToken cancellationToken = default) =>
        spans.TimeAsync("seam: interface remove", () => inner.RemoveInterfaceAsync(key, sandboxInterface, cancellationToken));

    public ValueTask ChangeGatewayRoutesAsync(string key, IReadOnlyList<SandboxGatewayRoute> remove, IReadOnlyList<SandboxGatewayRoute> add, CancellationToken cancellationToken = default) =>
        spans.TimeAsync("seam: default gateway", () => inner.ChangeGatewayRoutesAsync(key, remove, add, cancellationToken));

    public ValueTask<IReadOnlyList<SandboxLink>> GetInterfacesAsync(string key, CancellationToken cancellationToken = default) =>
        inner.GetInterfacesAsync(key, cancellationToken);

    public ValueTask DisposeAsync() => inner.DisposeAsync();
}

/// <summary>The controller's sandbox-files seam (hosts, resolv.conf), timed per call.</summary>
internal sealed class TimedSandboxFiles(ISandboxFiles inner, SpanRecorder spans) : ISandboxFiles
{
    public Task CreateAsync(string sandboxDirectory, SandboxFileOptions options, CancellationToken cancellationToken = default) =>
        spans.TimeAsync("seam: files create", async () => await inner.CreateAsync(sandboxDirectory, options, cancellationToken).ConfigureAwait(false)).AsTask();

    public Task AddHostEntriesAsync(string sandboxDirectory, IEnumerable<HostEntry> entries, CancellationToken cancellationToken = default) =>
        spans.TimeAsync("seam: files add hosts entries", async () => await inner.AddHostEntriesAsync(sandboxDirectory, entries, cancellationToken).ConfigureAwait(false)).AsTask();

    public Task RemoveHostEntriesAsync(string sandboxDirectory, IEnumerable<IPAddress> addresses, CancellationToken cancellationToken = default) =>
        spans.TimeAsync("seam: files remove hosts entries", async () => await inner.RemoveHostEntriesAsync(sandboxDirectory, addresses, cancellationToken).ConfigureAwait(false)).AsTask();

    public Task<ResolvConfUpdateResult> UpdateResolvConfAsync(string sandboxDirectory, SandboxFileOptions options, CancellationToken cancellationToken = default) =>
        spans.TimeAsync("seam: files resolv.conf update", async () => await inner.UpdateResolvConfAsync(sandboxDirectory, options, cancellationToken).ConfigureAwait(false)).AsTask();

    public Task DeleteAsync(string sandboxDirectory, CancellationToken cancellationToken = default) =>
        spans.TimeAsync("seam: files delete", async () => await inner.DeleteAsync(sandboxDirectory, cancellationToken).ConfigureAwait(false)).AsTask();
}

/// <summary>The controller's store (the embedded SQLite store it uses by default), timed per call.</summary>
internal sealed class TimedStore(IKeyValueStore inner, SpanRecorder spans) : IKeyValueStore
{
    public ValueTask<long> GetRevisionAsync(CancellationToken cancellationToken = default) =>
        spans.TimeAsync("store: revision", () => inner.GetRevisionAsync(cancellationToken));

    public ValueTask<StoreEntry?> GetAsync(string key, CancellationToken cancellationToken = default) =>
        spans.TimeAsync("store: get", () => inner.GetAsync(key, cancellationToken));

    public ValueTask<IReadOnlyList<StoreEntry>> ListAsync(string prefix, CancellationToken cancellationToken = default) =>
        spans.TimeAsync("store: list", () => inner.ListAsync(prefix, cancellationToken));

    public ValueTask<long> PutAsync(string key, ReadOnlyMemory<byte> value, long expectedVersion, StoreDurability durability, CancellationToken cancellationToken = default) =>
        spans.TimeAsync("store: put", () => inner.PutAsync(key, value, expectedVersion, durability, cancellationToken));

    public ValueTask<bool> DeleteAsync(string key, long expectedVersion, StoreDurability durability, CancellationToken cancellationToken = default) =>
        spans.TimeAsync("store: delete", () => inner.DeleteAsync(key, expectedVersion, durability, cancellationToken));

    public ValueTask<IReadOnlyList<long>> CommitAsync(IReadOnlyList<StoreOperation> operations, StoreDurability durability, CancellationToken cancellationToken = default) =>
        spans.TimeAsync("store: commit", () => inner.CommitAsync(operations, durability, cancellationToken));

    public IAsyncEnumerable<StoreEvent> WatchAsync(string prefix, CancellationToken cancellationToken = default) => inner.WatchAsync(prefix, cancellationToken);

    public ValueTask DisposeAsync() => inner.DisposeAsync();
}
