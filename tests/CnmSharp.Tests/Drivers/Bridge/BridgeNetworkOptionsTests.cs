using System.Net;
using CnmSharp.Drivers;
using CnmSharp.Drivers.Bridge;

namespace CnmSharp.Tests.Drivers.Bridge;

public class BridgeNetworkOptionsTests
{
    private const string Id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    internal static IpamData V4(string pool, string? gateway = null, Dictionary<string, CidrAddress>? aux = null) =>
        new("LocalDefault", IPNetwork.Parse(pool), gateway is null ? null : CidrAddress.Parse(gateway), aux ?? []);

    internal static NetworkCreateRequest Request(Dictionary<string, string>? options = null, IpamData[]? v4 = null, IpamData[]? v6 = null, bool ipv6 = false, bool @internal = false, string id = Id) => new()
    {
        NetworkId = id,
        NetworkName = "n",
        DriverOptions = options ?? [],
        IPv4Data = v4 ?? [V4("10.40.0.0/24", "10.40.0.1/24")],
        IPv6Data = v6 ?? [],
        EnableIPv6 = ipv6,
        Internal = @internal,
    };

    private static BridgeNetworkOptions Parse(NetworkCreateRequest request) => BridgeNetworkOptions.Parse(request, new BridgeDriverOptions());

    [Test]
    public void Defaults()
    {
        var o = Parse(Request());
        Assert.Multiple(() =>
        {
            Assert.That(o.BridgeName, Is.EqualTo("br-0123456789ab"));
            Assert.That(o.EnableIcc, Is.True);
            Assert.That(o.EnableMasquerade, Is.True);
            Assert.That(o.Mtu, Is.EqualTo(1500));
            Assert.That(o.ContainerPrefix, Is.EqualTo("eth"));
            Assert.That(o.IPv4Gateway, Is.EqualTo(CidrAddress.Parse("10.40.0.1/24")));
            Assert.That(o.DefaultBridge, Is.False);
        });
    }

    [Test]
    public void DefaultBridgeUsesTheDriversDefaultName()
    {
        Assert.That(Parse(Request(new() { [BridgeOptionKeys.DefaultBridge] = "true" })).BridgeName, Is.EqualTo("cnm0"));
        var custom = BridgeNetworkOptions.Parse(Request(new() { [BridgeOptionKeys.DefaultBridge] = "1" }), new BridgeDriverOptions { DefaultBridgeName = "cnmtest0" });
        Assert.That(custom.BridgeName, Is.EqualTo("cnmtest0"));
    }

    [Test]
    public void EveryOptionIsParsed()
    {
        var o = Parse(Request(new()
        {
            [BridgeOptionKeys.BridgeName] = "mybr",
            [BridgeOptionKeys.EnableIcc] = "false",
            [BridgeOptionKeys.EnableIPMasquerade] = "False",
            [BridgeOptionKeys.HostBindingIPv4] = "127.0.0.1",
            [BridgeOptionKeys.InhibitIPv4] = "t",
            [BridgeOptionKeys.Mtu] = "9000",
            [BridgeOptionKeys.ContainerInterfacePrefix] = "en",
            [BridgeOptionKeys.HostIPv4] = "192.0.2.7",
            [NetLabels.EnableIPv6] = "false",
            [NetLabels.Internal] = "false",
        }));
        Assert.Multiple(() =>
        {
            Assert.That(o.BridgeName, Is.EqualTo("mybr"));
            Assert.That(o.EnableIcc, Is.False);
            Assert.That(o.EnableMasquerade, Is.False);
            Assert.That(o.HostBindingIPv4, Is.EqualTo(IPAddress.Loopback));
            Assert.That(o.InhibitIPv4, Is.True);
            Assert.That(o.Mtu, Is.EqualTo(9000));
            Assert.That(o.ContainerPrefix, Is.EqualTo("en"));
            Assert.That(o.HostIPv4, Is.EqualTo(IPAddress.Parse("192.0.2.7")));
        });
    }

    [TestCase(BridgeOptionKeys.BridgeName, "a-bridge-name-16")]
    [TestCase(BridgeOptionKeys.BridgeName, "")]
    [TestCase(BridgeOptionKeys.BridgeName, "a/b")]
    [TestCase(BridgeOptionKeys.Mtu, "67")]
    [TestCase(BridgeOptionKeys.Mtu, "65536")]
    [TestCase(BridgeOptionKeys.Mtu, "abc")]
    [TestCase(BridgeOptionKeys.Mtu, "-1")]
    [TestCase(BridgeOptionKeys.EnableIcc, "yes")]
    [TestCase(BridgeOptionKeys.EnableIPMasquerade, "")]
    [TestCase(BridgeOptionKeys.HostBindingIPv4, "::1")]
    [TestCase(BridgeOptionKeys.HostIPv4, "0.0.0.0")]
    [TestCase(BridgeOptionKeys.ContainerInterfacePrefix, "a-very-long-prefix")]
    [TestCase(BridgeOptionKeys.ContainerInterfacePrefix, "e th")]
    [TestCase("com.docker.network.bridge.unknown", "1")]
    [TestCase("foo", "bar")]
    public void MalformedOrUnknownOptionsAreInvalid(string key, string value)
    {
        var ex = Assert.Throws<CnmInvalidArgumentException>(() => Parse(Request(new() { [key] = value })));
        Assert.That(ex!.Code, Is.EqualTo(CnmErrorCodes.InvalidOption));
    }

    [Test]
    public void BridgeNameOf15BytesIsAccepted() =>
        Assert.That(Parse(Request(new() { [BridgeOptionKeys.BridgeName] = "abcdefghijklmno" })).BridgeName, Has.Length.EqualTo(15));

    [Test]
    public void MultiByteBridgeNameOver15BytesIsInvalid() =>
        Assert.Throws<CnmInvalidArgumentException>(() => Parse(Request(new() { [BridgeOptionKeys.BridgeName] = "brücke-brücke-x" })));

    [Test]
    public void AnIPv4PoolIsRequired()
    {
        Assert.Throws<CnmInvalidArgumentException>(() => Parse(Request(v4: [])));
        Assert.Throws<CnmInvalidArgumentException>(() => Parse(Request(v4: [V4("0.0.0.0/0")])));
    }

    [Test]
    public void MoreThanOnePoolPerFamilyIsAConflict()
    {
        Assert.Throws<CnmConflictException>(() => Parse(Request(v4: [V4("10.40.0.0/24"), V4("10.41.0.0/24")])));
        Assert.Throws<CnmConflictException>(() => Parse(Request(ipv6: true, v6: [V4("fd00:1::/64"), V4("fd00:2::/64")])));
    }

    [Test]
    public void GatewayOutsideTheSubnetIsInvalid()
    {
        var ex = Assert.Throws<CnmInvalidArgumentException>(() => Parse(Request(v4: [V4("10.40.0.0/24", "10.41.0.1/24")])));
        Assert.That(ex!.Code, Is.EqualTo(CnmErrorCodes.InvalidGateway));
        Assert.Throws<CnmInvalidArgumentException>(() => Parse(Request(v4: [V4("10.40.0.0/24", "10.40.0.1/24", new() { ["DefaultGatewayIPv4"] = CidrAddress.Parse("10.50.0.1/24") })])));
    }

    [Test]
    public void AuxDefaultGatewaysAreTaken()
    {
        var o = Parse(Request(v4: [V4("10.40.0.0/24", "10.40.0.1/24", new() { ["DefaultGatewayIPv4"] = CidrAddress.Parse("10.40.0.254/24") })]));
        Assert.That(o.DefaultGatewayIPv4, Is.EqualTo(IPAddress.Parse("10.40.0.254")));
    }

    [Test]
    public void DualStack()
    {
        var o = Parse(Request(ipv6: true, v6: [V4("fd00:40::/64", "fd00:40::1/64")]));
        Assert.Multiple(() =>
        {
            Assert.That(o.EnableIPv6, Is.True);
            Assert.That(o.IPv6Subnet, Is.EqualTo(IPNetwork.Parse("fd00:40::/64")));
            Assert.That(o.IPv6Gateway, Is.EqualTo(CidrAddress.Parse("fd00:40::1/64")));
        });
    }

    [TestCase("1", true)]
    [TestCase("TRUE", true)]
    [TestCase("f", false)]
    [TestCase("False", false)]
    public void GoBooleans(string text, bool expected)
    {
        Assert.That(BridgeNetworkOptions.TryParseBool(text, out var value), Is.True);
        Assert.That(value, Is.EqualTo(expected));
    }

    [Test]
    public void DriverOptionsAreValidated()
    {
        Assert.Throws<CnmInvalidArgumentException>(() => new BridgeDriverFactory(new BridgeDriverOptions { DefaultBridgeName = "" }));
        Assert.Throws<CnmInvalidArgumentException>(() => new BridgeDriverFactory(new BridgeDriverOptions { DefaultBridgeName = "sixteen-chars-xx" }));
        Assert.Throws<CnmInvalidArgumentException>(() => new BridgeDriverFactory(new BridgeDriverOptions { DefaultMtu = 10 }));
        Assert.That(new BridgeDriverFactory().Options.DefaultBridgeName, Is.EqualTo("cnm0"));
        Assert.That(new BridgeDriverFactory().Name, Is.EqualTo("bridge"));
    }
}
