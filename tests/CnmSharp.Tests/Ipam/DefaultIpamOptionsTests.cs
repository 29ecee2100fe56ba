using System.Net;
using CnmSharp.Ipam.Default;

namespace CnmSharp.Tests.Ipam;

[TestFixture]
public sealed class DefaultIpamOptionsTests
{
    [Test]
    public void Defaults_are_valid_and_match_libnetwork()
    {
        var options = new DefaultIpamOptions();
        Assert.That(options.Validate(), Is.Empty);
        Assert.That(options.LocalPools.Aggregate(UInt128.Zero, (sum, s) => sum + s.Count()), Is.EqualTo((UInt128)31));
        Assert.That(options.GlobalPools.Single(), Is.EqualTo(new PoolSplit(IPNetwork.Parse("10.0.0.0/8"), 24)));
        Assert.That(options.GlobalPools.Single().Count(), Is.EqualTo((UInt128)65536));
        Assert.That(options.IPv6Pools.Single(), Is.EqualTo(new PoolSplit(IPNetwork.Parse("fdcd:6e73::/32"), 64)));
    }

    [Test]
    public void Size_shorter_than_the_base_is_an_error()
    {
        var options = new DefaultIpamOptions { LocalPools = [PoolSplit.Parse("10.0.0.0/16", 8)] };
        Assert.That(options.Validate(), Has.One.Contains("shorter than the base"));
    }

    [Test]
    public void Size_longer_than_the_family_is_an_error()
    {
        var options = new DefaultIpamOptions { LocalPools = [PoolSplit.Parse("10.0.0.0/16", 33)] };
        Assert.That(options.Validate(), Has.One.Contains("longer than 32 bits"));
    }

    [Test]
    public void Mixed_families_are_errors()
    {
        var options = new DefaultIpamOptions
        {
            LocalPools = [PoolSplit.Parse("10.0.0.0/16", 24), PoolSplit.Parse("fd00::/48", 64)],
            IPv6Pools = [PoolSplit.Parse("10.1.0.0/16", 24)],
        };
        var errors = options.Validate();
        Assert.That(errors, Has.Count.EqualTo(2));
        Assert.That(errors, Has.All.Contains("is not IPv"));
    }

    [Test]
    public void Overlapping_splits_in_one_list_are_an_error()
    {
        var options = new DefaultIpamOptions { GlobalPools = [PoolSplit.Parse("10.0.0.0/8", 24), PoolSplit.Parse("10.1.0.0/16", 24)] };
        Assert.That(options.Validate(), Has.One.Contains("overlaps"));
    }

    [Test]
    public void Too_many_pools_in_one_split_is_an_error()
    {
        var options = new DefaultIpamOptions { IPv6Pools = [PoolSplit.Parse("fd00::/8", 80)] };
        Assert.That(options.Validate(), Has.One.Contains("more than 2^64"));
    }

    [Test]
    public void Null_list_and_empty_base_are_errors()
    {
        var options = new DefaultIpamOptions { LocalPools = null!, GlobalPools = [null!] };
        Assert.That(options.Validate(), Has.Count.EqualTo(2));
    }

    [Test]
    public void Factory_rejects_invalid_options()
    {
        var options = new DefaultIpamOptions { LocalPools = [PoolSplit.Parse("10.0.0.0/16", 8)] };
        var ex = Assert.Throws<CnmInvalidArgumentException>(() => _ = new DefaultIpamFactory(options));
        Assert.That(ex!.Code, Is.EqualTo(CnmErrorCodes.InvalidOption));
    }

    [Test]
    public void PoolSplit_parse_rejects_host_bits()
    {
        var ex = Assert.Throws<CnmInvalidArgumentException>(() => PoolSplit.Parse("10.0.0.1/16", 24));
        Assert.That(ex!.Code, Is.EqualTo(CnmErrorCodes.InvalidPool));
    }

    [Test]
    public async Task Factory_copies_the_options()
    {
        var options = new DefaultIpamOptions { LocalPools = [PoolSplit.Parse("10.5.0.0/16", 24)] };
        var factory = new DefaultIpamFactory(options);
        options.LocalPools = [PoolSplit.Parse("10.6.0.0/16", 24)];
        var ipam = await factory.CreateAsync(IpamTestHelpers.Context(new FakeStore()));
        var pool = await ipam.RequestPoolAsync(new CnmSharp.Ipam.PoolRequest { AddressSpace = IpamTestHelpers.Local });
        Assert.That(pool.Pool, Is.EqualTo(IPNetwork.Parse("10.5.0.0/24")));
    }
}
