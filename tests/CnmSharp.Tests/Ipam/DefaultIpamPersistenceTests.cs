using System.Collections.Concurrent;
using System.Net;
using CnmSharp.Ipam;
using CnmSharp.Ipam.Default;
using static CnmSharp.Tests.Ipam.IpamTestHelpers;

namespace CnmSharp.Tests.Ipam;

[TestFixture]
public sealed class DefaultIpamPersistenceTests
{
    [Test]
    public async Task A_restarted_instance_sees_the_same_pools_and_never_reuses_held_addresses()
    {
        var store = new FakeStore();
        var a = await CreateAsync(store);
        var explicitPool = await a.PoolAsync("10.0.0.0/24");
        var predefined = await a.PoolAsync(null);
        var sub = await a.PoolAsync("10.9.0.0/16", "10.9.1.0/24");
        var v6 = await a.PoolAsync(null, ipv6: true);
        var held = new List<IPAddress>();
        for (var i = 0; i < 5; i++)
        {
            held.Add(await a.AddressAsync(explicitPool.PoolId, options: Owner($"ep{i}")));
        }

        held.Add(await a.AddressAsync(sub.PoolId, options: Owner("sub-ep")));
        await a.ReleaseAddressAsync(explicitPool.PoolId, held[2]);
        var v6Address = await a.AddressAsync(v6.PoolId, options: Owner("v6-ep"));

        var b = await CreateAsync(store);
        Assert.That(await b.GetPoolIdsAsync(), Is.EquivalentTo(new[] { explicitPool.PoolId, predefined.PoolId, sub.PoolId, v6.PoolId }));
        Assert.That(await b.GetPoolIdsAsync(), Is.EqualTo(await a.GetPoolIdsAsync()));

        var owned = await b.GetAllocationsAsync(explicitPool.PoolId);
        Assert.That(owned.Select(o => (o.Address.ToString(), o.Owner)), Is.EqualTo(new[]
        {
            ("10.0.0.1", "ep0"), ("10.0.0.2", "ep1"), ("10.0.0.4", "ep3"), ("10.0.0.5", "ep4"),
        }));
        Assert.That((await b.GetAllocationsAsync(sub.PoolId)).Single(), Is.EqualTo(new OwnedAddress(IPAddress.Parse("10.9.1.0"), "sub-ep")));
        Assert.That((await b.GetAllocationsAsync(v6.PoolId)).Single(), Is.EqualTo(new OwnedAddress(v6Address, "v6-ep")));

        // B never hands out what A holds: the freed hole first, then past the held ones.
        Assert.That(await b.AddressTextAsync(explicitPool.PoolId), Is.EqualTo("10.0.0.3"));
        Assert.That(await b.AddressTextAsync(explicitPool.PoolId), Is.EqualTo("10.0.0.6"));
        await ThrowsCnmAsync<CnmConflictException>(() => b.AddressAsync(explicitPool.PoolId, "10.0.0.1"), CnmErrorCodes.IPAlreadyAllocated);
        Assert.That(await b.AddressTextAsync(sub.PoolId), Is.EqualTo("10.9.1.1"));

        // Pool state survived too: overlap, round robin and the sub-pool's reference on its parent.
        await ThrowsCnmAsync<CnmConflictException>(() => b.PoolAsync("10.0.0.0/25"), CnmErrorCodes.PoolOverlap);
        Assert.That((await b.PoolAsync(null)).Pool, Is.EqualTo(IPNetwork.Parse("172.18.0.0/16")));
        Assert.That(b.Snapshot().Single(u => u.PoolId == explicitPool.PoolId).Allocated, Is.EqualTo((UInt128)6));
        await ThrowsCnmAsync<CnmConflictException>(() => b.PoolAsync("10.9.0.0/16"), CnmErrorCodes.PoolOverlap);
    }

    [Test]
    public async Task An_address_conflict_rereads_only_the_pool_that_conflicted()
    {
        var store = new FakeStore();
        var a = await CreateAsync(store);
        var busy = await a.PoolAsync("10.0.0.0/24");
        var other = await a.PoolAsync("10.1.0.0/24");
        await a.AddressAsync(other.PoolId, options: Owner("o1"));
        var b = await CreateAsync(store);
        Assert.That(await a.AddressTextAsync(busy.PoolId, options: Owner("a1")), Is.EqualTo("10.0.0.1"));
        store.Listed.Clear();

        // B's view of the pool is stale: its first choice, 10.0.0.1, conflicts.
        Assert.That(await b.AddressTextAsync(busy.PoolId, options: Owner("b1")), Is.EqualTo("10.0.0.2"));

        Assert.That(store.Listed, Is.EqualTo(new[] { Prefix + "addr/" + busy.PoolId + "/" }), "only the conflicting pool's addresses were read again");
        Assert.That(await b.AddressTextAsync(other.PoolId, options: Owner("o2")), Is.EqualTo("10.1.0.2"), "B's other pools are still right");
    }

    [Test]
    public async Task Two_instances_on_one_store_never_hand_out_the_same_address()
    {
        var store = new FakeStore();
        var a = await CreateAsync(store);
        var pool = await a.PoolAsync("10.0.0.0/24");
        var b = await CreateAsync(store);
        var got = new ConcurrentBag<string>();
        var tasks = new List<Task>();
        for (var i = 0; i < 120; i++)
        {
            var ipam = i % 2 == 0 ? a : b;
            tasks.Add(Task.Run(async () => got.Add(await ipam.AddressTextAsync(pool.PoolId, options: Owner("x")))));
        }

        await Task.WhenAll(tasks);
        Assert.That(got, Is.Unique);
        Assert.That(got, Has.Count.EqualTo(120));
        Assert.That(await a.GetAllocationsAsync(pool.PoolId), Has.Count.EqualTo(120));
    }

    [Test]
    public async Task Two_instances_filling_a_pool_concurrently_fill_it_exactly()
    {
        var store = new FakeStore();
        var a = await CreateAsync(store);
        var pool = await a.PoolAsync("10.0.0.0/27");
        var b = await CreateAsync(store);
        var got = new ConcurrentBag<string>();
        var failures = 0;
        var tasks = Enumerable.Range(0, 40).Select(i => Task.Run(async () =>
        {
            try
            {
                got.Add(await (i % 2 == 0 ? a : b).AddressTextAsync(pool.PoolId, options: i % 3 == 0 ? Serial : NoOptions));
            }
            catch (CnmUnavailableException ex) when (ex.Code == CnmErrorCodes.NoAvailableIPs)
            {
                Interlocked.Increment(ref failures);
            }
        }));
        await Task.WhenAll(tasks);
        Assert.That(got, Is.Unique);
        Assert.That(got, Has.Count.EqualTo(30));
        Assert.That(failures, Is.EqualTo(10));
    }

    [Test]
    public async Task Two_instances_requesting_pools_concurrently_never_overlap()
    {
        var store = new FakeStore();
        var a = await CreateAsync(store);
        var b = await CreateAsync(store);
        var tasks = Enumerable.Range(0, 20).Select(i => Task.Run(() => (i % 2 == 0 ? a : b).PoolAsync(null, space: Global))).ToArray();
        var pools = await Task.WhenAll(tasks);
        Assert.That(pools.Select(p => p.Pool), Is.Unique);
        var explicitTasks = Enumerable.Range(0, 10).Select(i => Task.Run(async () =>
        {
            try
            {
                await (i % 2 == 0 ? a : b).PoolAsync("192.168.0.0/16", space: Global);
                return true;
            }
            catch (CnmConflictException ex) when (ex.Code == CnmErrorCodes.PoolOverlap)
            {
                return false;
            }
        }));
        Assert.That((await Task.WhenAll(explicitTasks)).Count(ok => ok), Is.EqualTo(1));
    }

    [Test]
    public async Task Two_instances_racing_for_one_preferred_address_give_it_to_exactly_one()
    {
        var store = new FakeStore();
        var a = await CreateAsync(store);
        var pool = await a.PoolAsync("10.0.0.0/24");
        var b = await CreateAsync(store);
        for (var round = 0; round < 20; round++)
        {
            var address = $"10.0.0.{round + 10}";
            var attempts = Enumerable.Range(0, 6).Select(i => Task.Run(async () =>
            {
                try
                {
                    await (i % 2 == 0 ? a : b).AddressAsync(pool.PoolId, address, Owner($"owner{i}"));
                    return true;
                }
                catch (CnmConflictException ex) when (ex.Code == CnmErrorCodes.IPAlreadyAllocated)
                {
                    return false;
                }
            }));
            Assert.That((await Task.WhenAll(attempts)).Count(won => won), Is.EqualTo(1), address);
        }

        Assert.That(await b.GetAllocationsAsync(pool.PoolId), Has.Count.EqualTo(20));
    }

    [Test]
    public async Task An_address_released_by_another_instance_can_be_requested_again()
    {
        var store = new FakeStore();
        var a = await CreateAsync(store);
        var pool = await a.PoolAsync("10.0.0.0/30");
        var b = await CreateAsync(store);
        await a.AddressAsync(pool.PoolId);
        await a.AddressAsync(pool.PoolId);
        await b.ReleaseAddressAsync(pool.PoolId, IPAddress.Parse("10.0.0.2"));
        Assert.That(await a.AddressTextAsync(pool.PoolId), Is.EqualTo("10.0.0.2"), "a stale 'full' view is reloaded");
        await b.ReleaseAddressAsync(pool.PoolId, IPAddress.Parse("10.0.0.1"));
        Assert.That(await a.AddressTextAsync(pool.PoolId, "10.0.0.1"), Is.EqualTo("10.0.0.1"), "a stale 'taken' view is confirmed with the store");
    }

    [Test]
    public async Task A_pool_created_or_released_by_another_instance_is_seen()
    {
        var store = new FakeStore();
        var a = await CreateAsync(store);
        var b = await CreateAsync(store);
        var pool = await a.PoolAsync("10.0.0.0/24");
        Assert.That(await b.AddressTextAsync(pool.PoolId), Is.EqualTo("10.0.0.1"));
        await b.ReleasePoolAsync(pool.PoolId);
        await ThrowsCnmAsync<CnmInvalidArgumentException>(() => a.AddressAsync(pool.PoolId), CnmErrorCodes.PoolNotFound);
        Assert.That(store.Keys.Where(k => k.Contains("/addr/", StringComparison.Ordinal)), Is.Empty);
    }

    [Test]
    public async Task Corrupt_records_fail_the_load()
    {
        var store = new FakeStore();
        await store.PutAsync(Prefix + "pool/LocalDefault/10.0.0.0/24", "not json"u8.ToArray());
        var ex = await Assert.ThrowsAsync<CnmInternalException>(async () => await CreateAsync(store));
        Assert.That(ex!.Code, Is.EqualTo(CnmErrorCodes.CorruptRecord));
    }

    [Test]
    public async Task Unknown_schema_fails_the_load()
    {
        var store = new FakeStore();
        await store.PutAsync(Prefix + "space/LocalDefault", """{"schema":99,"addressSpace":"LocalDefault"}"""u8.ToArray());
        var ex = await Assert.ThrowsAsync<CnmInternalException>(async () => await CreateAsync(store));
        Assert.That(ex!.Code, Is.EqualTo(CnmErrorCodes.CorruptRecord));
    }

    [Test]
    public async Task Orphan_address_records_are_ignored_and_cleared_when_the_pool_is_created()
    {
        var store = new FakeStore();
        await store.PutAsync(Prefix + "addr/LocalDefault/10.0.0.0/24/10.0.0.1", """{"schema":1}"""u8.ToArray());
        var ipam = await CreateAsync(store);
        var pool = await ipam.PoolAsync("10.0.0.0/24");
        Assert.That(await ipam.AddressTextAsync(pool.PoolId), Is.EqualTo("10.0.0.1"));
        Assert.That(await ipam.GetAllocationsAsync(pool.PoolId), Has.Count.EqualTo(1));
    }
}
