using System.Net.NetworkInformation;
using CnmSharp.Netlink.Tests.Support;
using CnmSharp.Testing;

namespace CnmSharp.Netlink.Tests;

[RequiresRoot]
[Parallelizable(ParallelScope.All)]
public class RootLinkTests
{
    [Test]
    public async Task Veth_with_peer_in_other_namespace_bridge_master_and_up()
    {
        using var host = TestNamespace.Create();
        using var sandbox = TestNamespace.Create();
        await using var client = RtnetlinkClient.Open(host.Handle);

        await client.CreateLinkAsync(new BridgeLinkSpec("br-test") { Up = true, Mtu = 1400 });
        var bridge = await client.GetLinkAsync("br-test");
        Assert.That(bridge, Is.Not.Null);
        await client.CreateLinkAsync(new VethLinkSpec("vh0", "eth0")
        {
            PeerNamespace = sandbox.Handle,
            MasterIndex = bridge!.Index,
            Up = true,
            Mtu = 1400,
            Mac = PhysicalAddress.Parse("02-42-ac-11-00-01"),
            PeerMac = PhysicalAddress.Parse("02-42-ac-11-00-02"),
        });

        var hostEnd = host.Link("vh0")!.Value;
        Assert.Multiple(() =>
        {
            Assert.That(hostEnd.GetProperty("linkinfo").GetProperty("info_kind").GetString(), Is.EqualTo("veth"));
            Assert.That(hostEnd.GetProperty("master").GetString(), Is.EqualTo("br-test"));
            Assert.That(hostEnd.GetProperty("mtu").GetInt32(), Is.EqualTo(1400));
            Assert.That(hostEnd.GetProperty("address").GetString(), Is.EqualTo("02:42:ac:11:00:01"));
            Assert.That(hostEnd.GetProperty("flags").EnumerateArray().Select(f => f.GetString()), Does.Contain("UP"));
        });
        var peer = sandbox.Link("eth0")!.Value;
        Assert.Multiple(() =>
        {
            Assert.That(peer.GetProperty("address").GetString(), Is.EqualTo("02:42:ac:11:00:02"));
            Assert.That(peer.GetProperty("mtu").GetInt32(), Is.EqualTo(1400));
        });
        Assert.That(host.Link("eth0"), Is.Null, "the peer must not exist in the host namespace");

        var info = await client.GetLinkAsync("vh0");
        Assert.Multiple(() =>
        {
            Assert.That(info!.Kind, Is.EqualTo("veth"));
            Assert.That(info.MasterIndex, Is.EqualTo(bridge.Index));
            Assert.That(info.IsUp, Is.True);
            Assert.That(info.Mac, Is.EqualTo(PhysicalAddress.Parse("02-42-ac-11-00-01")));
            Assert.That(info.SlaveKind, Is.EqualTo("bridge"));
        });
    }
}
