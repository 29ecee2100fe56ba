using System.Net;
using CnmSharp.Ipam;
using static CnmSharp.Tests.Ipam.IpamTestHelpers;

namespace CnmSharp.Tests.Ipam;

/// <summary><see cref="IIpamOwnerRelease"/> on the default IPAM: what a plugin host serves as the CnmSharp extension
/// <c>IpamDriver.ReleaseOwner</c>.</summary>
[TestFixture]
public sealed class DefaultIpamOwnerReleaseTests
{
    [Test]
    public async Task The_default_IPAM_says_it_releases_by_owner()
    {
        var ipam = await CreateAsync();
        Assert.That(ipam.Capability.ReleasesByOwner, Is.True);
    }

    [Test]
    public async Task Releasing_an_owner_releases_its_pools_and_addresses_and_nothing_of_anyone_else()
    {
        var store = new FakeStore();
        var ipam = await CreateAsync(store);
        var mine = await ipam.RequestPoolAsync(new PoolRequest { AddressSpace = Local, Pool = "10.1.0.0/24", Options = Owner("network:n1") });
        var gateway = await ipam.AddressAsync(mine.PoolId, "10.1.0.1", Owner("network:n1"));
        var endpoint = await ipam.AddressAsync(mine.PoolId, options: Owner("e1"));
        var other = await ipam.RequestPoolAsync(new PoolRequest { AddressSpace = Local, Pool = "10.2.0.0/24", Options = Owner("network:n2") });
        var otherAddress = await ipam.AddressAsync(other.PoolId, options: Owner("e2"));
        var noOwner = await ipam.AddressAsync(other.PoolId);

        // The endpoint's address only.
        Assert.That(await ipam.ReleaseOwnerAsync("e1"), Is.EqualTo(1));
        Assert.That((await ipam.GetAllocationsAsync(mine.PoolId)).Select(a => a.Address), Is.EqualTo(new[] { gateway }));

        // The network's gateway and pool; the other network and its addresses stay.
        Assert.That(await ipam.ReleaseOwnerAsync("network:n1"), Is.EqualTo(2));
        Assert.That(await ipam.GetPoolIdsAsync(), Is.EqualTo(new[] { other.PoolId }));
        Assert.That((await ipam.GetAllocationsAsync(other.PoolId)).Select(a => a.Address), Is.EquivalentTo(new[] { otherAddress, noOwner }));

        // Idempotent, and the released pool can be had again (by anyone), with none of the old addresses.
        Assert.That(await ipam.ReleaseOwnerAsync("network:n1"), Is.EqualTo(0));
        Assert.That(await ipam.ReleaseOwnerAsync("e1"), Is.EqualTo(0));
        var again = await ipam.PoolAsync("10.1.0.0/24");
        Assert.That(await ipam.GetAllocationsAsync(again.PoolId), Is.Empty);
        Assert.That(endpoint, Is.Not.Null);

        // A second instance on the same store sees the same owners (they are in the records).
        var restarted = await CreateAsync(store);
        Assert.That(await restarted.ReleaseOwnerAsync("network:n2"), Is.EqualTo(1));
        Assert.That(await restarted.GetPoolIdsAsync(), Is.EqualTo(new[] { again.PoolId }));
    }

    [Test]
    public async Task A_sub_pool_goes_with_its_owner_and_its_master_pool_keeps_its_own_owner()
    {
        var store = new FakeStore();
        var ipam = await CreateAsync(store);
        var master = await ipam.RequestPoolAsync(new PoolRequest { AddressSpace = Local, Pool = "10.3.0.0/16", Options = Owner("network:a") });
        var sub = await ipam.RequestPoolAsync(new PoolRequest { AddressSpace = Local, Pool = "10.3.0.0/16", SubPool = "10.3.1.0/24", Options = Owner("network:b") });
        Assert.That(await ipam.GetPoolIdsAsync(), Is.EquivalentTo(new[] { master.PoolId, sub.PoolId }));

        Assert.That(await ipam.ReleaseOwnerAsync("network:b"), Is.EqualTo(1));
        Assert.That(await ipam.GetPoolIdsAsync(), Is.EqualTo(new[] { master.PoolId }));

        // The master pool's record was rewritten twice (a reference added, then removed) and kept its owner.
        var restarted = await CreateAsync(store);
        Assert.That(await restarted.ReleaseOwnerAsync("network:a"), Is.EqualTo(1));
        Assert.That(await restarted.GetPoolIdsAsync(), Is.Empty);
    }

    [Test]
    public async Task An_address_released_and_handed_to_someone_else_is_not_released_again()
    {
        var ipam = await CreateAsync();
        var pool = await ipam.PoolAsync("10.4.0.0/30");
        var first = await ipam.AddressAsync(pool.PoolId, options: Owner("old"));
        await ipam.ReleaseAddressAsync(pool.PoolId, first);
        var reused = await ipam.AddressAsync(pool.PoolId, first.ToString(), Owner("new"));

        Assert.That(await ipam.ReleaseOwnerAsync("old"), Is.EqualTo(0));
        Assert.That((await ipam.GetAllocationsAsync(pool.PoolId)).Single(), Is.EqualTo(new OwnedAddress(reused, "new")));
    }

    [Test]
    public async Task An_empty_owner_is_refused()
    {
        var ipam = await CreateAsync();
        await Assert.ThrowsAsync<ArgumentException>(async () => await ipam.ReleaseOwnerAsync(""));
    }
}
