using CnmSharp.Drivers.Bridge;

namespace CnmSharp.Tests.Drivers.Bridge;

/// <summary>Issue 10 section 3: the bridge's address options are parsed strictly; <c>1.2.3</c> is not 1.2.0.3.</summary>
public class BridgeStrictAddressOptionTests
{
    [TestCase(BridgeOptionKeys.HostBindingIPv4, "1.2.3")]
    [TestCase(BridgeOptionKeys.HostBindingIPv4, "1")]
    [TestCase(BridgeOptionKeys.HostBindingIPv4, "0x7f.1")]
    [TestCase(BridgeOptionKeys.HostBindingIPv4, "010.0.0.1")]
    [TestCase(BridgeOptionKeys.HostBindingIPv4, "127.0.0.1 ")]
    [TestCase(BridgeOptionKeys.HostIPv4, "192.0.2")]
    [TestCase(BridgeOptionKeys.HostIPv4, "192.0.2.07")]
    public void A_legacy_address_form_is_an_invalid_address(string key, string value)
    {
        var request = BridgeNetworkOptionsTests.Request(new() { [key] = value });

        var ex = Assert.Throws<CnmInvalidArgumentException>(() => BridgeNetworkOptions.Parse(request, new BridgeDriverOptions()));

        Assert.That(ex!.Code, Is.EqualTo(CnmErrorCodes.InvalidAddress));
    }

    [Test]
    public void A_dotted_quad_is_accepted() =>
        Assert.That(
            BridgeNetworkOptions.Parse(BridgeNetworkOptionsTests.Request(new() { [BridgeOptionKeys.HostBindingIPv4] = "127.0.0.1" }), new BridgeDriverOptions()).HostBindingIPv4!.ToString(),
            Is.EqualTo("127.0.0.1"));
}
