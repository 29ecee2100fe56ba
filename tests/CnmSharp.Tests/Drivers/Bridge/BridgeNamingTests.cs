using CnmSharp.Drivers.Common;
using System.Net;
using CnmSharp.Drivers.Bridge;

namespace CnmSharp.Tests.Drivers.Bridge;

public class BridgeNamingTests
{
    [Test]
    public void MacIsDerivedFromIPv4() =>
        Assert.That(MacAddresses.Format(MacAddresses.FromIPv4(IPAddress.Parse("172.17.0.2"))), Is.EqualTo("02:42:ac:11:00:02"));

    private const string Id = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    private static HashSet<string> Taken(params string[] names) => new(names, StringComparer.Ordinal);

    [Test]
    public void TheFirstChoiceIsVethAndSevenCharactersOfTheId()
    {
        var (host, container) = BridgeNaming.ChooseVethNames(Id, Taken());
        Assert.Multiple(() =>
        {
            Assert.That(host, Is.EqualTo("veth9f86d08"));
            Assert.That(container, Is.EqualTo("vc9f86d08"));
        });
    }

    [Test]
    public void ASharedSevenCharacterPrefixTakesMoreCharactersOfTheId()
    {
        // Another endpoint, 9f86d08 then different digits, holds the 7-character names.
        var other = BridgeNaming.ChooseVethNames("9f86d08ffffffffff", Taken());
        var (host, container) = BridgeNaming.ChooseVethNames(Id, Taken(other.Host, other.Container));
        Assert.Multiple(() =>
        {
            Assert.That(other.Host, Is.EqualTo("veth9f86d08"));
            Assert.That(host, Is.EqualTo("veth9f86d081"));
            Assert.That(container, Is.EqualTo("vc9f86d081"));
        });
    }

    [Test]
    public void EitherEndTakenRejectsTheCandidate()
    {
        Assert.Multiple(() =>
        {
            Assert.That(BridgeNaming.ChooseVethNames(Id, Taken("vc9f86d08")).Host, Is.EqualTo("veth9f86d081"), "container end taken");
            Assert.That(BridgeNaming.ChooseVethNames(Id, Taken("veth9f86d08")).Container, Is.EqualTo("vc9f86d081"), "host end taken");
        });
    }

    [Test]
    public void WhenEveryPrefixUpToTheLimitIsTakenACounterFollows()
    {
        var taken = Taken("veth9f86d08", "veth9f86d081", "veth9f86d0818", "veth9f86d08188", "veth9f86d081884");
        var first = BridgeNaming.ChooseVethNames(Id, taken);
        taken.Add(first.Host);
        var second = BridgeNaming.ChooseVethNames(Id, taken);
        Assert.Multiple(() =>
        {
            Assert.That(first.Host, Is.EqualTo("veth9f86d0818-1"));
            Assert.That(first.Container, Is.EqualTo("vc9f86d0818-1"));
            Assert.That(second.Host, Is.EqualTo("veth9f86d0818-2"));
        });
    }

    [Test]
    public void TheSameIdOverAndOverGetsDistinctNamesWithinFifteenBytes()
    {
        var taken = Taken();
        var hosts = new List<string>();
        for (var i = 0; i < 1200; i++)
        {
            var (host, container) = BridgeNaming.ChooseVethNames(Id, taken);
            Assert.That(host.Length, Is.LessThanOrEqualTo(BridgeNaming.MaxInterfaceNameLength), host);
            Assert.That(container.Length, Is.LessThanOrEqualTo(BridgeNaming.MaxInterfaceNameLength), container);
            Assert.That(taken, Does.Not.Contain(host).And.Not.Contain(container));
            taken.Add(host);
            taken.Add(container);
            hosts.Add(host);
        }

        Assert.Multiple(() =>
        {
            Assert.That(hosts, Is.Unique);
            Assert.That(hosts[^1], Is.EqualTo("veth9f86d0-1195"), "the id is shortened as the counter grows");
        });
    }

    [Test]
    public void AShortIdGoesStraightToTheCounter()
    {
        Assert.That(BridgeNaming.ChooseVethNames("ab", Taken()).Host, Is.EqualTo("vethab"));
        Assert.That(BridgeNaming.ChooseVethNames("a-b", Taken("vethab")).Host, Is.EqualTo("vethab-1"), "only letters and digits of the id count");
        Assert.Throws<ArgumentException>(() => BridgeNaming.ChooseVethNames("--", Taken()));
    }

    [Test]
    public void TheChoiceIsAFunctionOfTheIdAndTheSetOnly()
    {
        string[] names = ["veth9f86d08", "zzz", "veth9f86d081", "vc9f86d0818", "other"];
        var a = BridgeNaming.ChooseVethNames(Id, new HashSet<string>(names, StringComparer.Ordinal));
        var b = BridgeNaming.ChooseVethNames(Id, new SortedSet<string>(names.Reverse(), StringComparer.Ordinal));
        var c = BridgeNaming.ChooseVethNames(Id.ToUpperInvariant(), new HashSet<string>(names, StringComparer.Ordinal));
        Assert.Multiple(() =>
        {
            Assert.That(a, Is.EqualTo(b));
            Assert.That(a, Is.EqualTo(c), "ids are compared in lower case");
            Assert.That(a.Host, Is.EqualTo("veth9f86d08188"));
        });
    }

    [Test]
    public void IPv6FromMacNeeds48HostBits()
    {
        var mac = MacAddresses.FromIPv4(IPAddress.Parse("10.0.0.5"));
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
