using System.Collections.Concurrent;
using CnmSharp.Core.Persistence;
using CnmSharp.Store;

namespace CnmSharp.Tests.Core;

/// <summary>
/// What the controller and the default IPAM mark durable: declared state (networks, pools, network intents) is
/// <see cref="StoreDurability.Durable"/>; per-container state (endpoints, sandboxes, joins, their addresses and
/// intents) is <see cref="StoreDurability.Relaxed"/>.
/// </summary>
public sealed class DurabilityMarkingTests : ControllerTestBase
{
    /// <summary>Records the durability of every write, per key.</summary>
    private sealed class RecordingStore(IKeyValueStore inner) : IKeyValueStore
    {
        public ConcurrentQueue<(string Key, StoreDurability Durability)> Writes { get; } = new();

        public ValueTask<StoreEntry?> GetAsync(string key, CancellationToken cancellationToken = default) => inner.GetAsync(key, cancellationToken);

        public ValueTask<long> GetRevisionAsync(CancellationToken cancellationToken = default) => inner.GetRevisionAsync(cancellationToken);

        public ValueTask<IReadOnlyList<StoreEntry>> ListAsync(string prefix, CancellationToken cancellationToken = default) => inner.ListAsync(prefix, cancellationToken);

        public ValueTask<long> PutAsync(string key, ReadOnlyMemory<byte> value, long expectedVersion, StoreDurability durability, CancellationToken cancellationToken = default)
        {
            Writes.Enqueue((key, durability));
            return inner.PutAsync(key, value, expectedVersion, durability, cancellationToken);
        }

        public ValueTask<bool> DeleteAsync(string key, long expectedVersion, StoreDurability durability, CancellationToken cancellationToken = default)
        {
            Writes.Enqueue((key, durability));
            return inner.DeleteAsync(key, expectedVersion, durability, cancellationToken);
        }

        public ValueTask<IReadOnlyList<long>> CommitAsync(IReadOnlyList<StoreOperation> operations, StoreDurability durability, CancellationToken cancellationToken = default)
        {
            foreach (var op in operations.Where(o => o.Kind != StoreOperationKind.Check))
            {
                Writes.Enqueue((op.Key, durability));
            }

            return inner.CommitAsync(operations, durability, cancellationToken);
        }

        public IAsyncEnumerable<StoreEvent> WatchAsync(string prefix, CancellationToken cancellationToken = default) => inner.WatchAsync(prefix, cancellationToken);

        public ValueTask DisposeAsync() => inner.DisposeAsync();

        public StoreDurability[] For(Func<string, bool> key) => [.. Writes.Where(w => key(w.Key)).Select(w => w.Durability)];

        public void Clear() => Writes.Clear();
    }

    [Test]
    public async Task Networks_and_pools_are_written_durably_and_per_container_records_relaxed()
    {
        var store = new RecordingStore(new InMemoryKeyValueStore());
        F.Store = store;
        var c = await F.StartAsync();
        store.Clear();

        var network = await c.CreateNetworkAsync("net", ControllerFixture.DriverName, Subnet("10.77.0.0/24"));
        var networkWrites = store.Writes.ToArray();
        var endpoint = await network.CreateEndpointAsync("ep");
        var sandbox = await c.CreateSandboxAsync("c1");
        await endpoint.JoinAsync(sandbox);
        await endpoint.LeaveAsync(sandbox);
        await endpoint.DeleteAsync();
        await sandbox.DeleteAsync();
        await c.WaitForTeardownsAsync();
        var containerWrites = store.Writes.Skip(networkWrites.Length).ToArray();
        await network.DeleteAsync();
        var deleteWrites = store.Writes.Skip(networkWrites.Length + containerWrites.Length).ToArray();

        bool IsNetwork(string key) => key.StartsWith(CoreStore.NetworkKey(""), StringComparison.Ordinal);
        bool IsPool(string key) => key.StartsWith(CoreStore.IpamPrefix, StringComparison.Ordinal) && (key.Contains("/pool/", StringComparison.Ordinal) || key.Contains("/space/", StringComparison.Ordinal));
        Assert.Multiple(() =>
        {
            Assert.That(networkWrites.Where(w => IsNetwork(w.Key)).Select(w => w.Durability), Is.Not.Empty.And.All.EqualTo(StoreDurability.Durable), "network record");
            Assert.That(networkWrites.Where(w => IsPool(w.Key)).Select(w => w.Durability), Is.Not.Empty.And.All.EqualTo(StoreDurability.Durable), "pool records");
            Assert.That(networkWrites.Where(w => w.Key.StartsWith(CoreStore.IntentPrefix, StringComparison.Ordinal)).Select(w => w.Durability), Is.Not.Empty.And.All.EqualTo(StoreDurability.Durable), "network intent");

            // Endpoint create, sandbox create, join, leave, endpoint delete, sandbox delete: all relaxed, addresses too.
            Assert.That(containerWrites.Select(w => w.Key), Has.Some.StartsWith(CoreStore.EndpointKey(network.Id, "")).And.Some.StartsWith(CoreStore.SandboxKey("")).And.Some.StartsWith(CoreStore.IntentPrefix).And.Some.Contains("/addr/"));
            Assert.That(containerWrites.Select(w => w.Durability), Is.All.EqualTo(StoreDurability.Relaxed), string.Join(", ", containerWrites.Select(w => $"{w.Key}={w.Durability}")));

            Assert.That(deleteWrites.Where(w => IsNetwork(w.Key) || IsPool(w.Key)).Select(w => w.Durability), Is.Not.Empty.And.All.EqualTo(StoreDurability.Durable), "network delete");
        });
    }
}
