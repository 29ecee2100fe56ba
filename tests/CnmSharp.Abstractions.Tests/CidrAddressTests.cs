using System.Net;
using CsCheck;

namespace CnmSharp.Abstractions.Tests;

public class CidrAddressTests
{
    [TestCase("172.18.0.2/16", "172.18.0.2", 16, "172.18.0.0/16")]
    [TestCase("10.0.0.1", "10.0.0.1", 32, "10.0.0.1/32")]
    [TestCase(" 10.1.2.3/8 ", "10.1.2.3", 8, "10.0.0.0/8")]
    [TestCase("fd00::5/64", "fd00::5", 64, "fd00::/64")]
    [TestCase("2001:db8::1", "2001:db8::1", 128, "2001:db8::1/128")]
    [TestCase("0.0.0.0/0", "0.0.0.0", 0, "0.0.0.0/0")]
    public void Parses_address_prefix_and_network(string text, string address, int prefix, string network)
    {
        var cidr = CidrAddress.Parse(text);

        Assert.Multiple(() =>
        {
            Assert.That(cidr.Address, Is.EqualTo(IPAddress.Parse(address)));
            Assert.That(cidr.PrefixLength, Is.EqualTo(prefix));
            Assert.That(cidr.Network.ToString(), Is.EqualTo(network));
        });
    }

    [TestCase("")]
    [TestCase("   ")]
    [TestCase("10.0.0.1/33")]
    [TestCase("10.0.0.1/-1")]
    [TestCase("10.0.0.1/")]
    [TestCase("10.0.0/24")]
    [TestCase("fd00::1/129")]
    [TestCase("fe80::1%eth0/64")]
    [TestCase("not-an-ip")]
    [TestCase("10.0.0.1/+8")]
    public void Rejects_malformed_text_with_a_typed_error(string text)
    {
        Assert.That(CidrAddress.TryParse(text, out _), Is.False);
        var ex = Assert.Throws<CnmInvalidArgumentException>(() => CidrAddress.Parse(text));
        Assert.Multiple(() =>
        {
            Assert.That(ex!.Kind, Is.EqualTo(CnmErrorKind.InvalidArgument));
            Assert.That(ex.Code, Is.EqualTo(CnmErrorCodes.InvalidAddress));
        });
    }

    [Test]
    public void Constructor_refuses_a_prefix_longer_than_the_family()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => _ = new CidrAddress(IPAddress.Loopback, 33));
        Assert.Throws<ArgumentOutOfRangeException>(() => _ = new CidrAddress(IPAddress.IPv6Loopback, 129));
        Assert.Throws<ArgumentOutOfRangeException>(() => _ = new CidrAddress(IPAddress.Loopback, -1));
    }

    [Test]
    public void Round_trips_through_text_for_any_IPv4_address_and_prefix() =>
        Gen.Select(Gen.UInt, Gen.Int[0, 32]).Sample((bits, prefix) =>
        {
            var address = new IPAddress(BitConverter.GetBytes(bits));
            var cidr = new CidrAddress(address, prefix);
            var parsed = CidrAddress.Parse(cidr.ToString());
            return parsed == cidr && cidr.Network.Contains(address) && cidr.Network.PrefixLength == prefix;
        });

    [Test]
    public void Round_trips_through_text_for_any_IPv6_address_and_prefix() =>
        Gen.Select(Gen.Byte.Array[16], Gen.Int[0, 128]).Sample((bytes, prefix) =>
        {
            var cidr = new CidrAddress(new IPAddress(bytes), prefix);
            return CidrAddress.Parse(cidr.ToString()) == cidr && cidr.Network.Contains(cidr.Address);
        });

    [Test]
    public void Formats_into_a_span()
    {
        var cidr = CidrAddress.Parse("192.168.1.7/20");
        Span<char> buffer = stackalloc char[32];

        Assert.That(cidr.TryFormat(buffer, out var written, default, null), Is.True);
        Assert.That(buffer[..written].ToString(), Is.EqualTo("192.168.1.7/20"));
        Assert.That(cidr.TryFormat(buffer[..5], out _, default, null), Is.False);
    }
}

public class IPNetworksTests
{
    [TestCase("10.0.0.0/8", "10.20.0.0/16", true)]
    [TestCase("10.20.0.0/16", "10.0.0.0/8", true)]
    [TestCase("10.0.0.0/16", "10.1.0.0/16", false)]
    [TestCase("10.0.0.0/8", "fd00::/8", false)]
    [TestCase("fd00::/64", "fd00::/48", true)]
    public void Overlap(string a, string b, bool overlaps) =>
        Assert.That(IPNetwork.Parse(a).Overlaps(IPNetwork.Parse(b)), Is.EqualTo(overlaps));

    [Test]
    public void TryParse_requires_a_prefix_and_zero_host_bits_unless_allowed()
    {
        Assert.Multiple(() =>
        {
            Assert.That(IPNetworks.TryParse("10.1.0.0/16", allowHostBits: false, out var n) && n.ToString() == "10.1.0.0/16", Is.True);
            Assert.That(IPNetworks.TryParse("10.1.2.3/16", allowHostBits: false, out _), Is.False);
            Assert.That(IPNetworks.TryParse("10.1.2.3/16", allowHostBits: true, out var h) && h.ToString() == "10.1.0.0/16", Is.True);
            Assert.That(IPNetworks.TryParse("10.1.2.3", allowHostBits: true, out _), Is.False);
            Assert.That(IPNetworks.TryParse(null, allowHostBits: true, out _), Is.False);
        });
    }

    [Test]
    public void Containing_clears_host_bits() =>
        Assert.That(IPNetworks.Containing(IPAddress.Parse("fd00:1:2:3:4:5:6:7"), 48).ToString(), Is.EqualTo("fd00:1:2::/48"));
}
