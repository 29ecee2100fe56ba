using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using CnmSharp.Diagnostics;
using CnmSharp.Drivers.Overlay;
using CnmSharp.IntegrationTests.Bridge;
using CnmSharp.Netlink;
using CnmSharp.Store;
using CnmSharp.Testing;

namespace CnmSharp.IntegrationTests.Overlay;

/// <summary>
/// <see cref="NetworkController.CheckAsync"/> on an overlay network, on two simulated hosts (<see cref="ClusterLab"/>):
/// what the overlay driver owns in the kernel (its namespaces, and in a network's namespace its bridges, VXLAN devices
/// and the veths on those bridges) is checked against its records, both ways, and repaired where the records prove what
/// it must be.
/// </summary>
[RequiresRoot]
[NonParallelizable]
public sealed class OverlayCheckerTests
{
    [Test]
    public async Task Overlay_leaks_and_lost_devices_are_reported_repaired_and_the_sandboxes_ping_again()
    {
        await using var lab = await ClusterLab.CreateAsync(2);
        var (h1, h2) = (lab.Hosts[0], lab.Hosts[1]);
        var tag = Guid.NewGuid().ToString("N")[..6];
        var network = await h1.Controller!.CreateNetworkAsync("ovk-" + tag, "overlay", new NetworkCreateOptions { IPv4Config = [new IpamConfig { Subnet = "10.91.0.0/24" }] });
        var id = network.Id;
        var s1 = await ClusterLab.SandboxAsync(h1, network, "k1-" + tag);
        var s2 = await ClusterLab.SandboxAsync(h2, await ClusterLab.NetworkOnAsync(h2, id), "k2-" + tag);
        await WaitConnectedAsync(h1, h2, s1, s2, id, "before the faults");
        Assert.That((await h1.Controller.CheckAsync()).Findings, Is.Empty, "before the faults");

        // A veth on the network's bridge that no endpoint owns, a namespace in the driver's directory that no network
        // record names, and the VXLAN device deleted behind CnmSharp's back.
        var path = ClusterLab.NetworkNamespace(h1, id);
        BridgeHarness.Exec(path, "ip", "link", "add", "ckov0", "type", "veth", "peer", "name", "ckov1");
        BridgeHarness.Exec(path, "ip", "link", "set", "ckov0", "master", "br0");
        var directory = Path.GetDirectoryName(path)!;
        var orphan = Path.Combine(directory, "ov-ckorphan" + tag);
        await new NetworkNamespaceManager(new NetworkNamespaceManagerOptions { RunDirectory = directory, MakeRunDirectoryShared = false }).CreateAsync(Path.GetFileName(orphan));
        var vni = ClusterLab.Link(h1, id, "vxlan0").GetProperty("linkinfo").GetProperty("info_data").GetProperty("id").GetInt64();
        BridgeHarness.Exec(path, "ip", "link", "del", "vxlan0");
        Assert.That(BridgeHarness.Ping(s1.Path, s2.Ip), Is.False, "no way to host 2 without the VXLAN device");

        var report = await h1.Controller.CheckAsync();
        var text = string.Join("\n", report.Findings);
        Assert.That(report.Findings.Select(f => f.Kind).Order(), Is.EqualTo(new[] { InvariantKinds.LeakedLink, InvariantKinds.LeakedNamespace, InvariantKinds.MissingLink }.Order()), text);
        Assert.Multiple(() =>
        {
            Assert.That(report.Findings.Single(f => f.Kind == InvariantKinds.LeakedLink).Subject, Does.Contain("ckov0"), text);
            Assert.That(report.Findings.Single(f => f.Kind == InvariantKinds.LeakedNamespace).Subject, Does.Contain(orphan), text);
            Assert.That(report.Findings.Single(f => f.Kind == InvariantKinds.MissingLink).Subject, Does.Contain("vxlan0"), text);
        });

        var repaired = await h1.Controller.CheckAsync(new CheckOptions { Repair = true });
        text = string.Join("\n", repaired.Findings);
        Assert.That(repaired.Findings, Has.Count.EqualTo(3), text);
        Assert.That(repaired.AllRepaired, Is.True, text);
        var vxlan = ClusterLab.Link(h1, id, "vxlan0");
        Assert.Multiple(() =>
        {
            Assert.That(BridgeHarness.LinksOf(path), Does.Not.Contain("ckov0"), "the leaked veth is deleted");
            Assert.That(File.Exists(orphan), Is.False, "the orphan namespace is deleted");
            Assert.That(vxlan.GetProperty("linkinfo").GetProperty("info_data").GetProperty("id").GetInt64(), Is.EqualTo(vni), "the VXLAN device made again with the record's VNI");
            Assert.That(vxlan.GetProperty("master").GetString(), Is.EqualTo("br0"));
        });
        await WaitConnectedAsync(h1, h2, s1, s2, id, "after the VXLAN device's repair (host 2's sandbox programmed again)");
        Assert.That((await h1.Controller.CheckAsync()).Findings, Is.Empty, "after the repair");

        // The bridge deleted: made again with its gateway, the VXLAN device and the joined endpoint's veth on it.
        var gateway = Addresses(path, "br0");
        var hostVeth = "ve-" + s1.Endpoint.Id[..10];
        BridgeHarness.Exec(path, "ip", "link", "del", "br0");
        report = await h1.Controller.CheckAsync();
        text = string.Join("\n", report.Findings);
        Assert.That(report.Findings.Select(f => (f.Kind, f.Subject)), Is.EqualTo(new[] { (InvariantKinds.MissingLink, $"link br0 in {Path.GetFileName(path)}") }), text);
        repaired = await h1.Controller.CheckAsync(new CheckOptions { Repair = true });
        Assert.That(repaired.AllRepaired, Is.True, string.Join("\n", repaired.Findings));
        Assert.Multiple(() =>
        {
            Assert.That(Addresses(path, "br0"), Is.EqualTo(gateway), "the bridge's gateway address");
            Assert.That(ClusterLab.Link(h1, id, "vxlan0").GetProperty("master").GetString(), Is.EqualTo("br0"), "the VXLAN device enslaved again");
            Assert.That(ClusterLab.Link(h1, id, hostVeth).GetProperty("master").GetString(), Is.EqualTo("br0"), "the joined endpoint's veth enslaved again");
        });
        await WaitConnectedAsync(h1, h2, s1, s2, id, "after the bridge's repair");
        Assert.That((await h1.Controller.CheckAsync()).Findings, Is.Empty, "after the second repair");

        // This host's keys in the global store: a membership of a network it does not have and the peer of an endpoint
        // it has not joined (what a crash between the store and the driver's records can leave: the other hosts
        // program it), and its joined endpoint's peer deleted behind its back (the other hosts lose it).
        await using var store = await lab.ConnectAsync();
        const string overlay = "cnm/v1/driver/overlay/";
        var ghostNetwork = overlay + "node/" + OverlayLab.NewId() + "/host1";
        await store.PutAsync(ghostNetwork, Encoding.UTF8.GetBytes($"{{\"node\":\"host1\",\"vtep\":\"{h1.Vtep}\"}}"), StoreVersion.Absent);
        var peerKey = overlay + "peer/" + id + "/host1/" + s1.Endpoint.Id;
        var ghostId = OverlayLab.NewId();
        var ghost = JsonNode.Parse((await store.GetAsync(peerKey))!.Value.Span)!.AsObject();
        ghost["endpointId"] = ghostId;
        ghost["address"] = "10.91.0.250/24";
        ghost["mac"] = "02:42:0a:5b:00:fa";
        var ghostPeer = overlay + "peer/" + id + "/host1/" + ghostId;
        await store.PutAsync(ghostPeer, Encoding.UTF8.GetBytes(ghost.ToJsonString()), StoreVersion.Absent);
        Assert.That(await store.DeleteAsync(peerKey, StoreVersion.Any), Is.True);
        await Until.TrueAsync(() => ClusterLab.RemoteFdb(h2, id).SetEquals(new[] { ("02:42:0a:5b:00:fa", h1.Vtep.ToString()) }), "host 2 programs the ghost and drops host 1's sandbox");

        report = await h1.Controller.CheckAsync();
        text = string.Join("\n", report.Findings);
        Assert.That(
            report.Findings.Select(f => (f.Kind, f.Subject)).Order(),
            Is.EqualTo(new[]
            {
                (InvariantKinds.OrphanDriverRecord, "global store key " + ghostNetwork),
                (InvariantKinds.OrphanDriverRecord, "global store key " + ghostPeer),
                (InvariantKinds.MissingDriverRecord, "global store key " + peerKey),
            }.Order()),
            text);
        repaired = await h1.Controller.CheckAsync(new CheckOptions { Repair = true });
        Assert.That(repaired.AllRepaired, Is.True, string.Join("\n", repaired.Findings));
        Assert.Multiple(async () =>
        {
            Assert.That(await store.GetAsync(ghostNetwork), Is.Null);
            Assert.That(await store.GetAsync(ghostPeer), Is.Null);
            Assert.That(await store.GetAsync(peerKey), Is.Not.Null);
        });
        await Until.TrueAsync(() => ClusterLab.RemoteFdb(h2, id).SetEquals(new[] { (s1.Mac, h1.Vtep.ToString()) }), "host 2 drops the ghost and programs host 1's sandbox again");
        await WaitConnectedAsync(h1, h2, s1, s2, id, "after the global keys' repair");
        Assert.That((await h1.Controller.CheckAsync()).Findings, Is.Empty, "after the third repair");

        foreach (var s in new[] { s1, s2 })
        {
            await s.Endpoint.LeaveAsync(s.Sandbox);
            await s.Endpoint.DeleteAsync();
            await s.Sandbox.DeleteAsync();
        }

        await network.DeleteAsync();
    }

    private static async Task WaitConnectedAsync(ClusterHost h1, ClusterHost h2, ClusterSandbox s1, ClusterSandbox s2, string id, string when)
    {
        await Until.TrueAsync(() => ClusterLab.RemoteFdb(h1, id).Contains((s2.Mac, h2.Vtep.ToString())), $"host 2's sandbox in host 1's FDB {when}");
        await Until.TrueAsync(() => ClusterLab.RemoteFdb(h2, id).Contains((s1.Mac, h1.Vtep.ToString())), $"host 1's sandbox in host 2's FDB {when}");
        Assert.Multiple(() =>
        {
            Assert.That(BridgeHarness.Ping(s1.Path, s2.Ip), Is.True, $"host 1 -> host 2 {when}");
            Assert.That(BridgeHarness.Ping(s2.Path, s1.Ip), Is.True, $"host 2 -> host 1 {when}");
        });
    }

    /// <summary>The IPv4 addresses of a link in a namespace, as <c>address/prefix</c>.</summary>
    private static List<string> Addresses(string path, string link) =>
        [.. JsonDocument.Parse(BridgeHarness.Exec(path, "ip", "-4", "-json", "address", "show", "dev", link)).RootElement[0].GetProperty("addr_info").EnumerateArray()
            .Select(a => $"{a.GetProperty("local").GetString()}/{a.GetProperty("prefixlen").GetInt32()}")];
}
