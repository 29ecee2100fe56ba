using System.Net;
using CnmSharp.Drivers;
using CnmSharp.Drivers.Overlay;
using CnmSharp.Store;
using Microsoft.Extensions.Logging.Abstractions;

namespace CnmSharp.Tests.Drivers.Overlay;

/// <summary>The overlay driver's cluster-wide VNI allocator on the in-memory shared store (the same contract etcd
/// implements), and the driver's refusal without a global store. No kernel.</summary>
public class OverlayVniAllocatorTests
{
    private const string Prefix = "cnm/v1/driver/overlay/";

    private static OverlayVniAllocator Allocator(IKeyValueStore store, uint first = OverlayDriver.FirstVni, uint last = OverlayDriver.LastVni) =>
        new(store, Prefix, NullLogger.Instance, first, last);

    private static async Task<List<string>> KeysAsync(IKeyValueStore store, string under) =>
        [.. (await store.ListAsync(Prefix + under)).Select(e => e.Key[Prefix.Length..])];

    [Test]
    public async Task Networks_get_distinct_vnis_from_4096_one_per_subnet()
    {
        await using var store = new InMemoryKeyValueStore();
        var a = await Allocator(store).ResolveAsync("net-a", ["10.0.0.0/24"], null, "a", CancellationToken.None);
        var b = await Allocator(store).ResolveAsync("net-b", ["10.1.0.0/24", "10.2.0.0/24"], null, "b", CancellationToken.None);
        Assert.Multiple(async () =>
        {
            Assert.That(a, Is.EqualTo(new uint[] { 4096 }));
            Assert.That(b, Is.EqualTo(new uint[] { 4097, 4098 }));
            Assert.That(await KeysAsync(store, "vni/"), Is.EquivalentTo(new[] { "vni/4096", "vni/4097", "vni/4098" }));
        });
    }

    [Test]
    public async Task The_same_network_created_on_many_hosts_at_once_gets_one_set_of_vnis_and_leaves_no_stray_claim()
    {
        await using var store = new InMemoryKeyValueStore();
        var results = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => Task.Run(async () =>
            await Allocator(store).ResolveAsync("net-a", ["10.0.0.0/24", "10.0.1.0/24"], null, "a", CancellationToken.None))));
        Assert.Multiple(async () =>
        {
            Assert.That(results.Select(r => string.Join(',', r)).Distinct(), Has.Exactly(1).Items, "every host sees the same VNIs");
            Assert.That(await KeysAsync(store, "vni/"), Has.Count.EqualTo(2), "the losers released their claims");
        });
    }

    [Test]
    public async Task Different_networks_allocating_at_once_never_share_a_vni()
    {
        await using var store = new InMemoryKeyValueStore();
        var results = await Task.WhenAll(Enumerable.Range(0, 16).Select(i => Task.Run(async () =>
            await Allocator(store).ResolveAsync($"net-{i}", ["10.0.0.0/24"], null, "n", CancellationToken.None))));
        Assert.That(results.SelectMany(r => r).Distinct().Count(), Is.EqualTo(16));
    }

    [Test]
    public async Task A_listed_vni_held_by_another_network_is_refused_and_its_own_is_accepted_again()
    {
        await using var store = new InMemoryKeyValueStore();
        Assert.That(await Allocator(store).ResolveAsync("net-a", ["10.0.0.0/24"], [7001], "a", CancellationToken.None), Is.EqualTo(new uint[] { 7001 }));
        var ex = await Assert.ThrowsAsync<CnmConflictException>(async () => await Allocator(store).ResolveAsync("net-b", ["10.0.0.0/24"], [7001], "b", CancellationToken.None));
        Assert.Multiple(async () =>
        {
            Assert.That(ex!.Code, Is.EqualTo(CnmErrorCodes.DriverForbidden));
            Assert.That(await KeysAsync(store, "network/"), Is.EquivalentTo(new[] { "network/net-a" }), "the refused network wrote nothing");
            Assert.That(await Allocator(store).ResolveAsync("net-a", ["10.0.0.0/24"], [7001], "a again", CancellationToken.None), Is.EqualTo(new uint[] { 7001 }));
        });
    }

    [Test]
    public async Task A_host_with_other_subnets_for_a_known_network_is_refused()
    {
        await using var store = new InMemoryKeyValueStore();
        await Allocator(store).ResolveAsync("net-a", ["10.0.0.0/24"], null, "a", CancellationToken.None);
        Assert.That(
            async () => await Allocator(store).ResolveAsync("net-a", ["10.9.0.0/24"], null, "a", CancellationToken.None),
            Throws.InstanceOf<CnmConflictException>().With.Property(nameof(CnmException.Code)).EqualTo(CnmErrorCodes.DriverForbidden));
    }

    [Test]
    public async Task An_exhausted_range_is_NoAvailableVni_and_a_freed_network_gives_its_vni_back()
    {
        await using var store = new InMemoryKeyValueStore();
        await Allocator(store, 10, 11).ResolveAsync("net-a", ["10.0.0.0/24"], null, "a", CancellationToken.None);
        await Allocator(store, 10, 11).ResolveAsync("net-b", ["10.1.0.0/24"], null, "b", CancellationToken.None);
        var ex = await Assert.ThrowsAsync<CnmUnavailableException>(async () => await Allocator(store, 10, 11).ResolveAsync("net-c", ["10.2.0.0/24"], null, "c", CancellationToken.None));
        Assert.That(ex!.Code, Is.EqualTo(CnmErrorCodes.NoAvailableVni));

        await Allocator(store, 10, 11).FreeNetworkAsync("net-a", CancellationToken.None);
        Assert.Multiple(async () =>
        {
            Assert.That(await KeysAsync(store, ""), Is.EquivalentTo(new[] { "network/net-b", "vni/11" }));
            Assert.That(await Allocator(store, 10, 11).ResolveAsync("net-c", ["10.2.0.0/24"], null, "c", CancellationToken.None), Is.EqualTo(new uint[] { 10 }));
        });
    }

    [Test]
    public async Task Two_hosts_freeing_a_network_at_once_both_succeed_and_leave_no_key()
    {
        // The last two hosts of a network delete it at the same moment: both find no member left, both read the
        // network's record, and the other host's delete lands between this one's read and its delete.
        await using var inner = new InMemoryKeyValueStore();
        await Allocator(inner).ResolveAsync("net-a", ["10.0.0.0/24"], null, "a", CancellationToken.None);
        var store = new RacingStore(inner, Prefix + "network/net-a", () => Allocator(inner).FreeNetworkAsync("net-a", CancellationToken.None));

        await Allocator(store).FreeNetworkAsync("net-a", CancellationToken.None);

        Assert.Multiple(async () =>
        {
            Assert.That(store.Raced, Is.True, "the other host's free ran in between");
            Assert.That(await KeysAsync(inner, ""), Is.Empty);
        });
    }

    /// <summary>Runs <paramref name="other"/> once, just before the first delete of <paramref name="key"/>.</summary>
    private sealed class RacingStore(IKeyValueStore inner, string key, Func<ValueTask> other) : IKeyValueStore
    {
        public bool Raced { get; private set; }

        public ValueTask<StoreEntry?> GetAsync(string key, CancellationToken cancellationToken = default) => inner.GetAsync(key, cancellationToken);

        public ValueTask<long> GetRevisionAsync(CancellationToken cancellationToken = default) => inner.GetRevisionAsync(cancellationToken);

        public ValueTask<IReadOnlyList<StoreEntry>> ListAsync(string prefix, CancellationToken cancellationToken = default) => inner.ListAsync(prefix, cancellationToken);

        public ValueTask<long> PutAsync(string key, ReadOnlyMemory<byte> value, long expectedVersion, StoreDurability durability, CancellationToken cancellationToken = default) =>
            inner.PutAsync(key, value, expectedVersion, durability, cancellationToken);

        public async ValueTask<bool> DeleteAsync(string key1, long expectedVersion, StoreDurability durability, CancellationToken cancellationToken = default)
        {
            if (key1 == key && !Raced)
            {
                Raced = true;
                await other();
            }

            return await inner.DeleteAsync(key1, expectedVersion, durability, cancellationToken);
        }

        public ValueTask<IReadOnlyList<long>> CommitAsync(IReadOnlyList<StoreOperation> operations, StoreDurability durability, CancellationToken cancellationToken = default) =>
            inner.CommitAsync(operations, durability, cancellationToken);

        public IAsyncEnumerable<StoreEvent> WatchAsync(string prefix, CancellationToken cancellationToken = default) => inner.WatchAsync(prefix, cancellationToken);

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }

    [TestCase(false, true, true)]
    [TestCase(true, false, true)]
    [TestCase(true, true, false)]
    public async Task Creating_a_network_without_global_store_node_name_or_advertise_address_is_GlobalStoreRequired(bool global, bool node, bool advertise)
    {
        await using var local = new InMemoryKeyValueStore();
        await using var shared = new InMemoryKeyValueStore();
        var driver = new OverlayDriver(
            new DriverContext
            {
                ControllerId = "c",
                HostNamespacePath = "/nonexistent/netns",
                RunDirectory = Path.Combine(Path.GetTempPath(), "cnmt-overlay-unused"),
                Store = local,
                StoreKeyPrefix = Prefix,
                GlobalStore = global ? shared : null,
                GlobalStoreKeyPrefix = global ? Prefix : null,
                NodeName = node ? "host1" : null,
                AdvertiseAddress = advertise ? IPAddress.Parse("192.0.2.1") : null,
                LoggerFactory = NullLoggerFactory.Instance,
            },
            new OverlayDriverOptions());
        await using (driver)
        {
            var ex = await Assert.ThrowsAsync<CnmUnavailableException>(async () => await driver.CreateNetworkAsync(new NetworkCreateRequest
            {
                NetworkId = new string('a', 64),
                NetworkName = "ov",
                IPv4Data = [new IpamData("GlobalDefault", IPNetwork.Parse("10.0.0.0/24"), null, new Dictionary<string, CidrAddress>())],
            }));
            Assert.That(ex!.Code, Is.EqualTo(CnmErrorCodes.GlobalStoreRequired));
        }

        Assert.That(driver.Capability, Is.EqualTo(new DriverCapability(DriverScope.Global, DriverScope.Global) { NoExternalConnectivity = true }));
        Assert.That(await shared.ListAsync(""), Is.Empty, "nothing written");
    }
}
