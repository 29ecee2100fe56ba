using System.Net;
using CnmSharp.Ipam;
using CnmSharp.Ipam.Null;

namespace CnmSharp.Tests.Ipam;

[TestFixture]
public sealed class NullIpamTests
{
    private static async Task<IIpamDriver> CreateAsync() =>
        await new NullIpamFactory().CreateAsync(IpamTestHelpers.Context(new FakeStore()));

    [Test]
    public async Task Name_and_address_spaces_are_null()
    {
        Assert.That(new NullIpamFactory().Name, Is.EqualTo("null"));
        var ipam = await CreateAsync();
        Assert.That(await ipam.GetDefaultAddressSpacesAsync(), Is.EqualTo(new AddressSpaces("null", "null")));
    }

    [Test]
    public async Task Pool_is_0_0_0_0_slash_0()
    {
        var ipam = await CreateAsync();
        var pool = await ipam.RequestPoolAsync(new PoolRequest { AddressSpace = "null" });
        Assert.That(pool.PoolId, Is.EqualTo("null/0.0.0.0/0"));
        Assert.That(pool.Pool, Is.EqualTo(IPNetwork.Parse("0.0.0.0/0")));
        Assert.That(pool.Meta, Is.Empty);
        await ipam.ReleasePoolAsync(pool.PoolId);
    }

    [Test]
    public async Task Address_request_returns_no_address()
    {
        var ipam = await CreateAsync();
        var result = await ipam.RequestAddressAsync(NullIpam.PoolId, null, new Dictionary<string, string>());
        Assert.That(result.Address, Is.Null);
        Assert.That(result.Meta, Is.Empty);
        await ipam.ReleaseAddressAsync(NullIpam.PoolId, IPAddress.Parse("10.0.0.1"));
    }

    [TestCase("LocalDefault", null, null, false, CnmErrorCodes.InvalidAddressSpace)]
    [TestCase("null", "10.0.0.0/24", null, false, CnmErrorCodes.InvalidPool)]
    [TestCase("null", null, "10.0.0.0/24", false, CnmErrorCodes.InvalidSubPool)]
    [TestCase("null", null, null, true, CnmErrorCodes.InvalidRequest)]
    public async Task Rejects_anything_but_the_null_pool(string space, string? pool, string? sub, bool ipv6, string code)
    {
        var ipam = await CreateAsync();
        var ex = await Assert.ThrowsAsync<CnmInvalidArgumentException>(async () =>
            await ipam.RequestPoolAsync(new PoolRequest { AddressSpace = space, Pool = pool, SubPool = sub, IPv6 = ipv6 }));
        Assert.That(ex!.Code, Is.EqualTo(code));
    }

    [Test]
    public async Task Rejects_unknown_pool_ids()
    {
        var ipam = await CreateAsync();
        Assert.That(async () => await ipam.ReleasePoolAsync("LocalDefault/10.0.0.0/24"),
            Throws.InstanceOf<CnmInvalidArgumentException>().With.Property(nameof(CnmException.Code)).EqualTo(CnmErrorCodes.PoolNotFound));
        Assert.That(async () => await ipam.RequestAddressAsync("x", null, new Dictionary<string, string>()),
            Throws.InstanceOf<CnmInvalidArgumentException>().With.Property(nameof(CnmException.Code)).EqualTo(CnmErrorCodes.PoolNotFound));
        Assert.That(async () => await ipam.ReleaseAddressAsync("x", IPAddress.Loopback),
            Throws.InstanceOf<CnmInvalidArgumentException>().With.Property(nameof(CnmException.Code)).EqualTo(CnmErrorCodes.PoolNotFound));
    }
}
