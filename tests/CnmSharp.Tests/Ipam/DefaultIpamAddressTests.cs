using System.Net;
using System.Text;
using CnmSharp.Ipam;
using CnmSharp.Ipam.Default;
using static CnmSharp.Tests.Ipam.IpamTestHelpers;

namespace CnmSharp.Tests.Ipam;

[TestFixture]
public sealed class DefaultIpamAddressTests
{
    [Test]
    public async Task First_free_allocation_fills_holes_first()
    {
        var ipam = await CreateAsync();
        var pool = await ipam.PoolAsync("10.0.0.0/24");
        Assert.That(await ipam.AddressTextAsync(pool.PoolId), Is.EqualTo("10.0.0.1"));
        Assert.That(await ipam.AddressTextAsync(pool.PoolId), Is.EqualTo("10.0.0.2"));
        Assert.That(await ipam.AddressTextAsync(pool.PoolId), Is.EqualTo("10.0.0.3"));
        await ipam.ReleaseAddressAsync(pool.PoolId, IPAddress.Parse("10.0.0.2"));
        Assert.That(await ipam.AddressTextAsync(pool.PoolId), Is.EqualTo("10.0.0.2"));
        Assert.That(await ipam.AddressTextAsync(pool.PoolId), Is.EqualTo("10.0.0.4"));
    }

    [Test]
    public async Task Returned_address_has_the_master_pools_prefix_length()
    {
        var ipam = await CreateAsync();
        var sub = await ipam.PoolAsync("10.1.0.0/16", "10.1.3.0/24");
        var result = await ipam.RequestAddressAsync(sub.PoolId, null, NoOptions);
        // 10.1.3.0 is an ordinary host address of 10.1.0.0/16: only the master pool's network address is reserved.
        Assert.That(result.Address, Is.EqualTo(CidrAddress.Parse("10.1.3.0/16")));
        Assert.That(result.Meta, Is.Empty);
    }

    [Test]
    public async Task Serial_allocation_continues_after_the_last_one()
    {
        var ipam = await CreateAsync();
        var pool = await ipam.PoolAsync("10.0.0.0/24");
        Assert.That(await ipam.AddressTextAsync(pool.PoolId, options: Serial), Is.EqualTo("10.0.0.1"));
        Assert.That(await ipam.AddressTextAsync(pool.PoolId, options: Serial), Is.EqualTo("10.0.0.2"));
        await ipam.ReleaseAddressAsync(pool.PoolId, IPAddress.Parse("10.0.0.1"));
        Assert.That(await ipam.AddressTextAsync(pool.PoolId, options: Serial), Is.EqualTo("10.0.0.3"));
    }

    [Test]
    public async Task Serial_allocation_wraps_around()
    {
        var ipam = await CreateAsync();
        var pool = await ipam.PoolAsync("10.0.0.0/29");
        for (var i = 1; i <= 6; i++)
        {
            Assert.That(await ipam.AddressTextAsync(pool.PoolId, options: Serial), Is.EqualTo($"10.0.0.{i}"));
        }

        await ipam.ReleaseAddressAsync(pool.PoolId, IPAddress.Parse("10.0.0.2"));
        await ipam.ReleaseAddressAsync(pool.PoolId, IPAddress.Parse("10.0.0.4"));
        Assert.That(await ipam.AddressTextAsync(pool.PoolId, options: Serial), Is.EqualTo("10.0.0.2"));
        Assert.That(await ipam.AddressTextAsync(pool.PoolId, options: Serial), Is.EqualTo("10.0.0.4"));
    }

    [Test]
    public async Task Serial_allocation_in_a_sub_pool_stays_in_the_sub_pool()
    {
        var ipam = await CreateAsync();
        var sub = await ipam.PoolAsync("10.0.0.0/24", "10.0.0.8/30");
        var got = new List<string>();
        for (var i = 0; i < 4; i++)
        {
            got.Add(await ipam.AddressTextAsync(sub.PoolId, options: Serial));
        }

        Assert.That(got, Is.EqualTo(new[] { "10.0.0.8", "10.0.0.9", "10.0.0.10", "10.0.0.11" }));
        await ThrowsCnmAsync<CnmUnavailableException>(() => ipam.AddressAsync(sub.PoolId, options: Serial), CnmErrorCodes.NoAvailableIPs);
    }

    [Test]
    public async Task Preferred_address_is_given_exactly()
    {
        var ipam = await CreateAsync();
        var pool = await ipam.PoolAsync("10.0.0.0/24");
        Assert.That(await ipam.AddressTextAsync(pool.PoolId, "10.0.0.200"), Is.EqualTo("10.0.0.200"));
        Assert.That(await ipam.AddressTextAsync(pool.PoolId), Is.EqualTo("10.0.0.1"));
    }

    [Test]
    public async Task Preferred_address_already_taken_is_a_conflict()
    {
        var ipam = await CreateAsync();
        var pool = await ipam.PoolAsync("10.0.0.0/24");
        await ipam.AddressAsync(pool.PoolId, "10.0.0.9");
        var ex = await ThrowsCnmAsync<CnmConflictException>(() => ipam.AddressAsync(pool.PoolId, "10.0.0.9"), CnmErrorCodes.IPAlreadyAllocated);
        Assert.That(ex.Kind, Is.EqualTo(CnmErrorKind.Conflict));
    }

    [TestCase("10.0.1.1")]
    [TestCase("192.168.0.1")]
    [TestCase("fd00::1")]
    public async Task Preferred_address_outside_the_pool_is_out_of_range(string address)
    {
        var ipam = await CreateAsync();
        var pool = await ipam.PoolAsync("10.0.0.0/24");
        var ex = await ThrowsCnmAsync<CnmInvalidArgumentException>(() => ipam.AddressAsync(pool.PoolId, address), CnmErrorCodes.IPOutOfRange);
        Assert.That(ex.Kind, Is.EqualTo(CnmErrorKind.InvalidArgument));
    }

    [Test]
    public async Task A_preferred_address_outside_the_sub_pool_but_in_the_subnet_is_granted_and_dynamic_ones_stay_in_the_range()
    {
        // libnetwork: the range bounds dynamic allocation only (docker network create --subnet 10.0.0.0/16
        // --ip-range 10.0.5.0/24 --gateway 10.0.0.1).
        var ipam = await CreateAsync();
        var sub = await ipam.PoolAsync("10.0.0.0/16", "10.0.5.0/24");
        Assert.That(await ipam.AddressTextAsync(sub.PoolId, "10.0.0.1"), Is.EqualTo("10.0.0.1"));
        Assert.That(await ipam.AddressTextAsync(sub.PoolId, "10.0.6.1"), Is.EqualTo("10.0.6.1"));
        Assert.That(await ipam.AddressTextAsync(sub.PoolId, "10.0.5.77"), Is.EqualTo("10.0.5.77"));
        Assert.That(await ipam.AddressTextAsync(sub.PoolId), Does.StartWith("10.0.5."));
        await ThrowsCnmAsync<CnmInvalidArgumentException>(() => ipam.AddressAsync(sub.PoolId, "10.1.0.1"), CnmErrorCodes.IPOutOfRange);
        await ThrowsCnmAsync<CnmConflictException>(() => ipam.AddressAsync(sub.PoolId, "10.0.6.1"), CnmErrorCodes.IPAlreadyAllocated);

        await ipam.ReleaseAddressAsync(sub.PoolId, IPAddress.Parse("10.0.6.1"));
        Assert.That(await ipam.AddressTextAsync(sub.PoolId, "10.0.6.1"), Is.EqualTo("10.0.6.1"));
    }

    [Test]
    public async Task Full_pool_has_no_available_addresses()
    {
        var ipam = await CreateAsync();
        var pool = await ipam.PoolAsync("10.0.0.0/30");
        Assert.That(await ipam.AddressTextAsync(pool.PoolId), Is.EqualTo("10.0.0.1"));
        Assert.That(await ipam.AddressTextAsync(pool.PoolId), Is.EqualTo("10.0.0.2"));
        var ex = await ThrowsCnmAsync<CnmUnavailableException>(() => ipam.AddressAsync(pool.PoolId), CnmErrorCodes.NoAvailableIPs);
        Assert.That(ex.Kind, Is.EqualTo(CnmErrorKind.Unavailable));
    }

    [Test]
    public async Task Network_and_broadcast_addresses_are_never_handed_out()
    {
        var ipam = await CreateAsync();
        var pool = await ipam.PoolAsync("10.0.0.0/30");
        await ThrowsCnmAsync<CnmConflictException>(() => ipam.AddressAsync(pool.PoolId, "10.0.0.0"), CnmErrorCodes.IPAlreadyAllocated);
        await ThrowsCnmAsync<CnmConflictException>(() => ipam.AddressAsync(pool.PoolId, "10.0.0.3"), CnmErrorCodes.IPAlreadyAllocated);
        var all = new[] { await ipam.AddressTextAsync(pool.PoolId), await ipam.AddressTextAsync(pool.PoolId) };
        Assert.That(all, Is.EqualTo(new[] { "10.0.0.1", "10.0.0.2" }));
        // Releasing a reserved address is a harmless no-op: it does not become allocatable.
        await ipam.ReleaseAddressAsync(pool.PoolId, IPAddress.Parse("10.0.0.0"));
        await ThrowsCnmAsync<CnmUnavailableException>(() => ipam.AddressAsync(pool.PoolId), CnmErrorCodes.NoAvailableIPs);
    }

    [Test]
    public async Task IPv6_network_address_is_reserved_but_the_last_address_is_not()
    {
        var ipam = await CreateAsync();
        var pool = await ipam.PoolAsync("fd00::/120", ipv6: true);
        await ThrowsCnmAsync<CnmConflictException>(() => ipam.AddressAsync(pool.PoolId, "fd00::"), CnmErrorCodes.IPAlreadyAllocated);
        Assert.That(await ipam.AddressTextAsync(pool.PoolId, "fd00::ff"), Is.EqualTo("fd00::ff"));
        Assert.That(await ipam.AddressTextAsync(pool.PoolId), Is.EqualTo("fd00::1"));
    }

    [Test]
    public async Task Slash_31_hands_out_both_addresses_per_RFC_3021()
    {
        var ipam = await CreateAsync();
        var pool = await ipam.PoolAsync("10.0.0.0/31");
        Assert.That(await ipam.AddressTextAsync(pool.PoolId), Is.EqualTo("10.0.0.0"));
        Assert.That(await ipam.AddressTextAsync(pool.PoolId), Is.EqualTo("10.0.0.1"));
        await ThrowsCnmAsync<CnmUnavailableException>(() => ipam.AddressAsync(pool.PoolId), CnmErrorCodes.NoAvailableIPs);
    }

    [Test]
    public async Task Slash_32_hands_out_its_single_address()
    {
        var ipam = await CreateAsync();
        var pool = await ipam.PoolAsync("10.0.0.7/32");
        Assert.That(await ipam.AddressTextAsync(pool.PoolId), Is.EqualTo("10.0.0.7"));
        await ThrowsCnmAsync<CnmUnavailableException>(() => ipam.AddressAsync(pool.PoolId), CnmErrorCodes.NoAvailableIPs);
    }

    [Test]
    public async Task IPv6_slash_127_and_128_hand_out_every_address()
    {
        var ipam = await CreateAsync();
        var p127 = await ipam.PoolAsync("fd00::/127", ipv6: true);
        var p128 = await ipam.PoolAsync("fd00::9/128", ipv6: true);
        Assert.That(await ipam.AddressTextAsync(p127.PoolId), Is.EqualTo("fd00::"));
        Assert.That(await ipam.AddressTextAsync(p127.PoolId), Is.EqualTo("fd00::1"));
        Assert.That(await ipam.AddressTextAsync(p128.PoolId), Is.EqualTo("fd00::9"));
    }

    [Test]
    public async Task IPv6_slash_64_allocates_and_releases_without_pool_sized_memory()
    {
        var ipam = await CreateAsync();
        var pool = await ipam.PoolAsync("fd00:1::/64", ipv6: true);
        var first = await ipam.RequestAddressAsync(pool.PoolId, null, NoOptions);
        Assert.That(first.Address, Is.EqualTo(CidrAddress.Parse("fd00:1::1/64")));
        Assert.That(await ipam.AddressTextAsync(pool.PoolId, "fd00:1::ffff:ffff:ffff:ffff"), Is.EqualTo("fd00:1::ffff:ffff:ffff:ffff"));
        Assert.That(await ipam.AddressTextAsync(pool.PoolId), Is.EqualTo("fd00:1::2"));
        await ipam.ReleaseAddressAsync(pool.PoolId, IPAddress.Parse("fd00:1::1"));
        Assert.That(await ipam.AddressTextAsync(pool.PoolId), Is.EqualTo("fd00:1::1"));
        var usage = ipam.Snapshot().Single();
        Assert.That(usage.Size, Is.EqualTo(UInt128.MaxValue >> 64));
        Assert.That(usage.Allocated, Is.EqualTo((UInt128)3));
    }

    [Test]
    public async Task IPv6_slash_48_allocates_many_and_releases()
    {
        var ipam = await CreateAsync();
        var pool = await ipam.PoolAsync("fd00:2::/48", ipv6: true);
        for (var i = 1; i <= 300; i++)
        {
            var got = await ipam.AddressAsync(pool.PoolId);
            Assert.That(got, Is.EqualTo(IPAddress.Parse($"fd00:2::{i:x}")));
        }

        Assert.That(await ipam.AddressTextAsync(pool.PoolId, "fd00:2:0:ffff:ffff:ffff:ffff:fffe"), Is.EqualTo("fd00:2:0:ffff:ffff:ffff:ffff:fffe"));
        for (var i = 1; i <= 300; i += 2)
        {
            await ipam.ReleaseAddressAsync(pool.PoolId, IPAddress.Parse($"fd00:2::{i:x}"));
        }

        Assert.That(await ipam.AddressTextAsync(pool.PoolId), Is.EqualTo("fd00:2::1"));
        Assert.That(ipam.Snapshot().Single().Allocated, Is.EqualTo((UInt128)152));
        Assert.That(ipam.Snapshot().Single().Size, Is.EqualTo((UInt128.One << 80) - 1), "all but the network address");
    }

    [Test]
    public async Task Gateway_request_type_is_only_an_option()
    {
        var ipam = await CreateAsync();
        var pool = await ipam.PoolAsync("10.0.0.0/24");
        var gatewayOptions = new Dictionary<string, string> { [NetLabels.RequestAddressType] = NetLabels.RequestAddressTypeGateway };
        Assert.That(await ipam.AddressTextAsync(pool.PoolId, options: gatewayOptions), Is.EqualTo("10.0.0.1"));
        Assert.That(await ipam.AddressTextAsync(pool.PoolId), Is.EqualTo("10.0.0.2"));
    }

    [Test]
    public async Task Request_or_release_on_an_unknown_pool_is_not_found()
    {
        var ipam = await CreateAsync();
        await ThrowsCnmAsync<CnmInvalidArgumentException>(() => ipam.AddressAsync("LocalDefault/10.0.0.0/24"), CnmErrorCodes.PoolNotFound);
        await ThrowsCnmAsync<CnmInvalidArgumentException>(() => ipam.ReleaseAddressAsync("LocalDefault/10.0.0.0/24", IPAddress.Parse("10.0.0.1")).AsTask(), CnmErrorCodes.PoolNotFound);
    }

    [Test]
    public async Task Releasing_an_address_outside_the_pool_is_out_of_range_and_releasing_twice_is_harmless()
    {
        var ipam = await CreateAsync();
        var pool = await ipam.PoolAsync("10.0.0.0/24");
        await ThrowsCnmAsync<CnmInvalidArgumentException>(() => ipam.ReleaseAddressAsync(pool.PoolId, IPAddress.Parse("10.0.1.1")).AsTask(), CnmErrorCodes.IPOutOfRange);
        await ipam.AddressAsync(pool.PoolId);
        await ipam.ReleaseAddressAsync(pool.PoolId, IPAddress.Parse("10.0.0.1"));
        await ipam.ReleaseAddressAsync(pool.PoolId, IPAddress.Parse("10.0.0.1"));
        Assert.That(await ipam.AddressTextAsync(pool.PoolId), Is.EqualTo("10.0.0.1"));
    }

    [Test]
    public async Task Each_address_is_a_create_only_store_record_with_its_owner()
    {
        var store = new FakeStore();
        var ipam = await CreateAsync(store);
        var pool = await ipam.PoolAsync("10.0.0.0/24");
        await ipam.AddressAsync(pool.PoolId, options: Owner("endpoint-1"));
        await ipam.AddressAsync(pool.PoolId);
        var record = await store.GetAsync(Prefix + "addr/LocalDefault/10.0.0.0/24/10.0.0.1");
        Assert.That(record, Is.Not.Null);
        Assert.That(Encoding.UTF8.GetString(record!.Value.Span), Does.Contain("\"owner\":\"endpoint-1\""));
        Assert.That(store.Keys, Does.Contain(Prefix + "pool/LocalDefault/10.0.0.0/24"));
        Assert.That(store.Keys, Does.Contain(Prefix + "addr/LocalDefault/10.0.0.0/24/10.0.0.2"));

        var owned = await ipam.GetAllocationsAsync(pool.PoolId);
        Assert.That(owned, Is.EqualTo(new[]
        {
            new OwnedAddress(IPAddress.Parse("10.0.0.1"), "endpoint-1"),
            new OwnedAddress(IPAddress.Parse("10.0.0.2"), null),
        }));
        await ThrowsCnmAsync<CnmInvalidArgumentException>(() => ipam.GetAllocationsAsync("LocalDefault/1.0.0.0/8").AsTask(), CnmErrorCodes.PoolNotFound);
    }

    [Test]
    public async Task Snapshot_reports_allocated_and_size_per_master_pool()
    {
        var ipam = await CreateAsync();
        var a = await ipam.PoolAsync("10.0.0.0/24");
        var b = await ipam.PoolAsync("10.0.1.0/24", "10.0.1.0/28");
        await ipam.AddressAsync(a.PoolId);
        await ipam.AddressAsync(a.PoolId);
        await ipam.AddressAsync(b.PoolId);
        var snapshot = ipam.Snapshot();
        Assert.That(snapshot, Is.EqualTo(new[]
        {
            new PoolUsage("LocalDefault/10.0.0.0/24", 2, 254),
            new PoolUsage("LocalDefault/10.0.1.0/24", 1, 254),
        }));
        await ipam.ReleasePoolAsync(a.PoolId);
        Assert.That(ipam.Snapshot().Select(u => u.PoolId), Is.EqualTo(new[] { "LocalDefault/10.0.1.0/24" }));
    }

    [Test]
    public async Task Concurrent_requests_in_one_instance_are_distinct()
    {
        var ipam = await CreateAsync();
        var pool = await ipam.PoolAsync("10.0.0.0/24");
        var tasks = Enumerable.Range(0, 200).Select(_ => Task.Run(() => ipam.AddressTextAsync(pool.PoolId))).ToArray();
        var got = await Task.WhenAll(tasks);
        Assert.That(got, Is.Unique);
        Assert.That(got, Has.Length.EqualTo(200));
    }

    [Test]
    public async Task Cancelled_address_request_throws()
    {
        var ipam = await CreateAsync();
        var pool = await ipam.PoolAsync("10.0.0.0/24");
        using var cts = new CancellationTokenSource();
        await cts.CancelAsync();
        Assert.That(async () => await ipam.RequestAddressAsync(pool.PoolId, null, NoOptions, cts.Token), Throws.InstanceOf<OperationCanceledException>());
        Assert.That(ipam.Snapshot().Single().Allocated, Is.EqualTo(UInt128.Zero));
    }
}
