using System.Net;
using CnmSharp.Ipam;
using CnmSharp.Ipam.Default;
using static CnmSharp.Tests.Ipam.IpamTestHelpers;

namespace CnmSharp.Tests.Ipam;

[TestFixture]
public sealed class DefaultIpamPoolTests
{
    [Test]
    public async Task Factory_is_named_default_and_reports_default_address_spaces()
    {
        var factory = new DefaultIpamFactory();
        Assert.That(factory.Name, Is.EqualTo("default"));
        var ipam = await CreateAsync();
        var spaces = await ipam.GetDefaultAddressSpacesAsync();
        Assert.That(spaces, Is.EqualTo(new AddressSpaces("LocalDefault", "GlobalDefault")));
        Assert.That(ipam.Capability, Is.EqualTo(new IpamCapability(ReleasesByOwner: true)));
    }

    [Test]
    public async Task Explicit_pool_id_is_address_space_slash_cidr_and_meta_is_empty()
    {
        var ipam = await CreateAsync();
        var pool = await ipam.PoolAsync("10.1.0.0/16");
        Assert.That(pool.PoolId, Is.EqualTo("LocalDefault/10.1.0.0/16"));
        Assert.That(pool.Pool, Is.EqualTo(IPNetwork.Parse("10.1.0.0/16")));
        Assert.That(pool.Meta, Is.Empty);
    }

    [Test]
    public async Task Pool_with_host_bits_is_canonicalized()
    {
        var ipam = await CreateAsync();
        var pool = await ipam.PoolAsync("10.1.2.3/16");
        Assert.That(pool.PoolId, Is.EqualTo("LocalDefault/10.1.0.0/16"));
    }

    [Test]
    public async Task Sub_pool_id_is_address_space_slash_cidr_slash_subcidr()
    {
        var ipam = await CreateAsync();
        var pool = await ipam.PoolAsync("10.1.0.0/16", "10.1.2.0/24");
        Assert.That(pool.PoolId, Is.EqualTo("LocalDefault/10.1.0.0/16/10.1.2.0/24"));
        Assert.That(pool.Pool, Is.EqualTo(IPNetwork.Parse("10.1.0.0/16")));
    }

    [TestCase("")]
    [TestCase("Bogus")]
    public async Task Empty_or_unknown_address_space_is_invalid(string space)
    {
        var ipam = await CreateAsync();
        var ex = await ThrowsCnmAsync<CnmInvalidArgumentException>(() => ipam.PoolAsync("10.0.0.0/24", space: space), CnmErrorCodes.InvalidAddressSpace);
        Assert.That(ex.Kind, Is.EqualTo(CnmErrorKind.InvalidArgument));
    }

    [Test]
    public async Task Sub_pool_without_pool_is_invalid()
    {
        var ipam = await CreateAsync();
        await ThrowsCnmAsync<CnmInvalidArgumentException>(() => ipam.PoolAsync(null, "10.0.0.0/24"), CnmErrorCodes.InvalidSubPool);
    }

    [TestCase("10.0.0.0")]
    [TestCase("10.0.0.0/33")]
    [TestCase("not-a-cidr")]
    public async Task Unparsable_pool_is_invalid(string pool)
    {
        var ipam = await CreateAsync();
        await ThrowsCnmAsync<CnmInvalidArgumentException>(() => ipam.PoolAsync(pool), CnmErrorCodes.InvalidPool);
    }

    [Test]
    public async Task Pool_family_must_match_the_request()
    {
        var ipam = await CreateAsync();
        await ThrowsCnmAsync<CnmInvalidArgumentException>(() => ipam.PoolAsync("fd00::/64"), CnmErrorCodes.InvalidPool);
        await ThrowsCnmAsync<CnmInvalidArgumentException>(() => ipam.PoolAsync("10.0.0.0/24", ipv6: true), CnmErrorCodes.InvalidPool);
    }

    [TestCase("10.2.0.0/24")]
    [TestCase("10.1.0.0/15")]
    [TestCase("bogus")]
    [TestCase("fd00::/64")]
    public async Task Sub_pool_outside_the_pool_or_unparsable_is_invalid(string sub)
    {
        var ipam = await CreateAsync();
        await ThrowsCnmAsync<CnmInvalidArgumentException>(() => ipam.PoolAsync("10.1.0.0/16", sub), CnmErrorCodes.InvalidSubPool);
    }

    [Test]
    public async Task Master_pool_overlapping_another_in_the_same_space_is_a_conflict()
    {
        var ipam = await CreateAsync();
        await ipam.PoolAsync("10.1.0.0/16");
        var ex = await ThrowsCnmAsync<CnmConflictException>(() => ipam.PoolAsync("10.1.2.0/24"), CnmErrorCodes.PoolOverlap);
        Assert.That(ex.Kind, Is.EqualTo(CnmErrorKind.Conflict));
        await ThrowsCnmAsync<CnmConflictException>(() => ipam.PoolAsync("10.0.0.0/8"), CnmErrorCodes.PoolOverlap);
    }

    [Test]
    public async Task Same_pool_in_another_address_space_does_not_overlap()
    {
        var ipam = await CreateAsync();
        var local = await ipam.PoolAsync("10.1.0.0/16");
        var global = await ipam.PoolAsync("10.1.0.0/16", space: Global);
        Assert.That(global.PoolId, Is.EqualTo("GlobalDefault/10.1.0.0/16"));
        Assert.That(local.PoolId, Is.Not.EqualTo(global.PoolId));
    }

    [Test]
    public async Task Same_pool_twice_is_an_overlap()
    {
        var ipam = await CreateAsync();
        await ipam.PoolAsync("10.1.0.0/16");
        await ThrowsCnmAsync<CnmConflictException>(() => ipam.PoolAsync("10.1.0.0/16"), CnmErrorCodes.PoolOverlap);
    }

    [Test]
    public async Task Same_sub_pool_twice_is_an_overlap()
    {
        var ipam = await CreateAsync();
        await ipam.PoolAsync("10.1.0.0/16", "10.1.1.0/24");
        await ThrowsCnmAsync<CnmConflictException>(() => ipam.PoolAsync("10.1.0.0/16", "10.1.1.0/24"), CnmErrorCodes.PoolOverlap);
        var other = await ipam.PoolAsync("10.1.0.0/16", "10.1.2.0/24");
        Assert.That(other.PoolId, Is.EqualTo("LocalDefault/10.1.0.0/16/10.1.2.0/24"));
    }

    [Test]
    public async Task Master_pool_created_by_a_sub_pool_cannot_be_requested_again()
    {
        var ipam = await CreateAsync();
        await ipam.PoolAsync("10.1.0.0/16", "10.1.1.0/24");
        await ThrowsCnmAsync<CnmConflictException>(() => ipam.PoolAsync("10.1.0.0/16"), CnmErrorCodes.PoolOverlap);
        await ThrowsCnmAsync<CnmConflictException>(() => ipam.PoolAsync("10.1.128.0/17", "10.1.128.0/24"), CnmErrorCodes.PoolOverlap);
    }

    [Test]
    public async Task Sub_pool_takes_a_reference_on_its_parent()
    {
        var store = new FakeStore();
        var ipam = await CreateAsync(store);
        var master = await ipam.PoolAsync("10.1.0.0/16");
        var sub = await ipam.PoolAsync("10.1.0.0/16", "10.1.5.0/24");
        var gateway = await ipam.AddressTextAsync(master.PoolId);
        Assert.That(gateway, Is.EqualTo("10.1.0.1"));

        await ipam.ReleasePoolAsync(master.PoolId);
        Assert.That(await ipam.GetPoolIdsAsync(), Is.EqualTo(new[] { sub.PoolId }));
        await ThrowsCnmAsync<CnmInvalidArgumentException>(() => ipam.AddressAsync(master.PoolId), CnmErrorCodes.PoolNotFound);

        // The parent is still there with its allocations.
        var held = await ipam.GetAllocationsAsync(sub.PoolId);
        Assert.That(held.Select(a => a.Address.ToString()), Is.EqualTo(new[] { "10.1.0.1" }));
        Assert.That(await ipam.AddressTextAsync(sub.PoolId), Is.EqualTo("10.1.5.0"));

        await ipam.ReleasePoolAsync(sub.PoolId);
        Assert.That(await ipam.GetPoolIdsAsync(), Is.Empty);
        Assert.That(store.Keys.Where(k => !k.StartsWith(Prefix + "space/", StringComparison.Ordinal)), Is.Empty, "pool and address records are gone");

        // The parent went away with its last reference: the pool can be requested again, with no leftovers.
        var again = await ipam.PoolAsync("10.1.0.0/16");
        Assert.That(await ipam.AddressTextAsync(again.PoolId), Is.EqualTo("10.1.0.1"));
    }

    [Test]
    public async Task Sub_pools_share_the_parents_allocations()
    {
        var ipam = await CreateAsync();
        var a = await ipam.PoolAsync("10.1.0.0/16", "10.1.0.0/24");
        var b = await ipam.PoolAsync("10.1.0.0/16", "10.1.0.0/25");
        Assert.That(await ipam.AddressTextAsync(a.PoolId, "10.1.0.7"), Is.EqualTo("10.1.0.7"));
        await ThrowsCnmAsync<CnmConflictException>(() => ipam.AddressAsync(b.PoolId, "10.1.0.7"), CnmErrorCodes.IPAlreadyAllocated);
        Assert.That(await ipam.AddressTextAsync(b.PoolId), Is.EqualTo("10.1.0.1"));
        Assert.That(await ipam.AddressTextAsync(a.PoolId), Is.EqualTo("10.1.0.2"));
    }

    [Test]
    public async Task Releasing_the_master_id_of_an_implicit_parent_is_not_found()
    {
        var ipam = await CreateAsync();
        await ipam.PoolAsync("10.1.0.0/16", "10.1.1.0/24");
        await ThrowsCnmAsync<CnmInvalidArgumentException>(() => ipam.ReleasePoolAsync("LocalDefault/10.1.0.0/16").AsTask(), CnmErrorCodes.PoolNotFound);
    }

    [TestCase("LocalDefault/10.9.0.0/16")]
    [TestCase("garbage")]
    [TestCase("")]
    public async Task Releasing_an_unknown_pool_is_an_invalid_argument(string poolId)
    {
        var ipam = await CreateAsync();
        await ipam.PoolAsync("10.1.0.0/16");
        var ex = await ThrowsCnmAsync<CnmInvalidArgumentException>(() => ipam.ReleasePoolAsync(poolId).AsTask(), CnmErrorCodes.PoolNotFound);
        Assert.That(ex.Kind, Is.EqualTo(CnmErrorKind.InvalidArgument));
    }

    [Test]
    public async Task Releasing_a_pool_twice_fails_the_second_time()
    {
        var ipam = await CreateAsync();
        var pool = await ipam.PoolAsync("10.1.0.0/16");
        await ipam.ReleasePoolAsync(pool.PoolId);
        await ThrowsCnmAsync<CnmInvalidArgumentException>(() => ipam.ReleasePoolAsync(pool.PoolId).AsTask(), CnmErrorCodes.PoolNotFound);
    }

    [Test]
    public async Task Predefined_local_pools_start_at_172_17()
    {
        var ipam = await CreateAsync();
        var first = await ipam.PoolAsync(null);
        var second = await ipam.PoolAsync(null);
        Assert.That(first.PoolId, Is.EqualTo("LocalDefault/172.17.0.0/16"));
        Assert.That(second.PoolId, Is.EqualTo("LocalDefault/172.18.0.0/16"));
    }

    [Test]
    public async Task Predefined_global_pools_are_10_slash_24s()
    {
        var ipam = await CreateAsync();
        Assert.That((await ipam.PoolAsync(null, space: Global)).Pool, Is.EqualTo(IPNetwork.Parse("10.0.0.0/24")));
        Assert.That((await ipam.PoolAsync(null, space: Global)).Pool, Is.EqualTo(IPNetwork.Parse("10.0.1.0/24")));
    }

    [Test]
    public async Task Predefined_search_is_round_robin()
    {
        var ipam = await CreateAsync();
        var first = await ipam.PoolAsync(null);
        await ipam.ReleasePoolAsync(first.PoolId);
        var second = await ipam.PoolAsync(null);
        Assert.That(second.Pool, Is.EqualTo(IPNetwork.Parse("172.18.0.0/16")), "a released pool is not reused at once");
    }

    [Test]
    public async Task Predefined_search_wraps_around_to_released_pools()
    {
        var options = new DefaultIpamOptions { LocalPools = [PoolSplit.Parse("10.0.0.0/22", 24)] };
        var ipam = await CreateAsync(options: options);
        var pools = new List<AllocatedPool>();
        for (var i = 0; i < 4; i++)
        {
            pools.Add(await ipam.PoolAsync(null));
        }

        await ThrowsCnmAsync<CnmUnavailableException>(() => ipam.PoolAsync(null), CnmErrorCodes.NoAvailablePool);
        await ipam.ReleasePoolAsync(pools[1].PoolId);
        Assert.That((await ipam.PoolAsync(null)).Pool, Is.EqualTo(IPNetwork.Parse("10.0.1.0/24")));
    }

    [Test]
    public async Task All_31_local_pools_then_no_available_pool()
    {
        var ipam = await CreateAsync();
        var pools = new List<IPNetwork>();
        for (var i = 0; i < 31; i++)
        {
            pools.Add((await ipam.PoolAsync(null)).Pool);
        }

        Assert.That(pools[14], Is.EqualTo(IPNetwork.Parse("172.31.0.0/16")));
        Assert.That(pools[15], Is.EqualTo(IPNetwork.Parse("192.168.0.0/20")));
        Assert.That(pools[30], Is.EqualTo(IPNetwork.Parse("192.168.240.0/20")));
        var ex = await ThrowsCnmAsync<CnmUnavailableException>(() => ipam.PoolAsync(null), CnmErrorCodes.NoAvailablePool);
        Assert.That(ex.Kind, Is.EqualTo(CnmErrorKind.Unavailable));
    }

    [Test]
    public async Task Predefined_search_skips_existing_pools()
    {
        var ipam = await CreateAsync();
        await ipam.PoolAsync("172.17.5.0/24");
        Assert.That((await ipam.PoolAsync(null)).Pool, Is.EqualTo(IPNetwork.Parse("172.18.0.0/16")));
    }

    [Test]
    public async Task Predefined_search_honours_the_exclude_list()
    {
        var ipam = await CreateAsync();
        var request = new PoolRequest
        {
            AddressSpace = Local,
            Exclude = [IPNetwork.Parse("172.16.0.0/12"), IPNetwork.Parse("192.168.0.5/32"), IPNetwork.Parse("fd00::/8")],
        };
        var pool = await ipam.RequestPoolAsync(request);
        Assert.That(pool.Pool, Is.EqualTo(IPNetwork.Parse("192.168.16.0/20")));
    }

    [Test]
    public async Task Predefined_search_fails_when_everything_is_excluded()
    {
        var ipam = await CreateAsync();
        var request = new PoolRequest { AddressSpace = Local, Exclude = [IPNetwork.Parse("0.0.0.0/1"), IPNetwork.Parse("128.0.0.0/1")] };
        await ThrowsCnmAsync<CnmUnavailableException>(() => ipam.RequestPoolAsync(request).AsTask(), CnmErrorCodes.NoAvailablePool);
    }

    [Test]
    public async Task Predefined_IPv6_pools_are_slash_64s_of_the_ula_range()
    {
        var ipam = await CreateAsync();
        var first = await ipam.PoolAsync(null, ipv6: true);
        var second = await ipam.PoolAsync(null, ipv6: true);
        Assert.That(first.PoolId, Is.EqualTo("LocalDefault/fdcd:6e73::/64"));
        Assert.That(second.Pool, Is.EqualTo(IPNetwork.Parse("fdcd:6e73:0:1::/64")));
        Assert.That((await ipam.PoolAsync(null, space: Global, ipv6: true)).Pool, Is.EqualTo(IPNetwork.Parse("fdcd:6e73::/64")));
    }

    [Test]
    public async Task Predefined_IPv6_search_jumps_over_a_large_exclusion()
    {
        var ipam = await CreateAsync();
        var request = new PoolRequest { AddressSpace = Local, IPv6 = true, Exclude = [IPNetwork.Parse("fdcd:6e73::/33")] };
        var pool = await ipam.RequestPoolAsync(request);
        Assert.That(pool.Pool, Is.EqualTo(IPNetwork.Parse("fdcd:6e73:8000::/64")));
    }

    [Test]
    public async Task Without_IPv6_pools_an_IPv6_network_needs_a_subnet()
    {
        var ipam = await CreateAsync(options: new DefaultIpamOptions { IPv6Pools = [] });
        await ThrowsCnmAsync<CnmUnavailableException>(() => ipam.PoolAsync(null, ipv6: true), CnmErrorCodes.NoAvailablePool);
        Assert.That((await ipam.PoolAsync("fd00:1::/64", ipv6: true)).PoolId, Is.EqualTo("LocalDefault/fd00:1::/64"));
    }

    [Test]
    public async Task Cancelled_request_throws_and_changes_nothing()
    {
        var ipam = await CreateAsync();
        using var cts = new CancellationTokenSource();
        await cts.CancelAsync();
        Assert.That(async () => await ipam.RequestPoolAsync(new PoolRequest { AddressSpace = Local }, cts.Token), Throws.InstanceOf<OperationCanceledException>());
        Assert.That(await ipam.GetPoolIdsAsync(), Is.Empty);
    }
}
