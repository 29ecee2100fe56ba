using System.Net;
using CnmSharp.Drivers.Bridge;

namespace CnmSharp.Tests.Drivers.Bridge;

public class BridgeNamingTests
{
    [Test]
    public void MacIsDerivedFromIPv4() =>
        Assert.That(BridgeNaming.FormatMac(BridgeNaming.MacFromIPv4(IPAddress.Parse("172.17.0.2"))), Is.EqualTo("02:42:ac:11:00:02"));

    [Test]
    public void VethNamesAreDeterministicAndShort()
    {
        var id = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
        Assert.Multiple(() =>
        {
            Assert.That(BridgeNaming.HostVeth(id), Is.EqualTo("veth9f86d08"));
            Assert.That(BridgeNaming.ContainerVeth(id), Is.EqualTo("vc9f86d08"));
            Assert.That(BridgeNaming.HostVeth(id).Length, Is.LessThanOrEqualTo(15));
        });
    }

    [Test]
    public void IPv6FromMacNeeds48HostBits()
    {
        var mac = BridgeNaming.MacFromIPv4(IPAddress.Parse("10.0.0.5"));
        Assert.That(BridgeNaming.IPv6FromMac(IPNetwork.Parse("fd00:1::/64"), mac), Is.EqualTo(IPAddress.Parse("fd00:1::242:a00:5")));
        Assert.That(BridgeNaming.IPv6FromMac(IPNetwork.Parse("fd00:1::/80"), mac), Is.Not.Null);
        Assert.That(BridgeNaming.IPv6FromMac(IPNetwork.Parse("fd00:1::/96"), mac), Is.Null);
    }

    [Test]
    public void RandomBridgeMacIsLocalUnicast()
    {
        var bytes = BridgeNaming.RandomMac().GetAddressBytes();
        Assert.That(bytes[0] & 0x03, Is.EqualTo(0x02));
    }
}
