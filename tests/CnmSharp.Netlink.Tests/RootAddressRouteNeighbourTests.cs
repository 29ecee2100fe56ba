using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using System.Text.Json;
using CnmSharp.Netlink.Tests.Support;
using CnmSharp.Testing;

namespace CnmSharp.Netlink.Tests;

/// <summary>Addresses, routes, neighbours and FDB entries against the kernel, checked with <c>ip</c>/<c>bridge -json</c>.</summary>
[RequiresRoot]
[Parallelizable(ParallelScope.All)]
public class RootAddressRouteNeighbourTests
{
    private static async Task<int> UpVeth(RtnetlinkClient client, string name, string peer)
    {
        await client.CreateLinkAsync(new VethLinkSpec(name, peer) { Up = true });
        var index = (await client.GetLinkAsync(name))!.Index;
        await client.SetLinkUpAsync((await client.GetLinkAsync(peer))!.Index);
        return index;
    }

    private static IEnumerable<JsonElement> AddrInfo(TestNamespace ns, string dev) =>
        ns.IpJson($"addr show dev {dev}")[0].GetProperty("addr_info").EnumerateArray();

    [Test]
    public async Task Add_list_and_delete_addresses()
    {
        using var ns = TestNamespace.Create();
        await using var client = RtnetlinkClient.Open(ns.Handle);
        var index = await UpVeth(client, "a0", "a1");

        await client.AddAddressAsync(new AddressSpec(index, IPAddress.Parse("172.18.0.2"), 16));
        await client.AddAddressAsync(new AddressSpec(index, IPAddress.Parse("fd00:18::2"), 64) { Flags = AddressFlags.NoDad });

        var oracle = AddrInfo(ns, "a0").ToList();
        var v4 = oracle.Single(a => a.GetProperty("family").GetString() == "inet");
        var v6 = oracle.Single(a => a.GetProperty("family").GetString() == "inet6" && a.GetProperty("local").GetString() == "fd00:18::2");
        Assert.Multiple(() =>
        {
            Assert.That(v4.GetProperty("local").GetString(), Is.EqualTo("172.18.0.2"));
            Assert.That(v4.GetProperty("prefixlen").GetInt32(), Is.EqualTo(16));
            Assert.That(v4.GetProperty("broadcast").GetString(), Is.EqualTo("172.18.255.255"));
            Assert.That(v6.GetProperty("prefixlen").GetInt32(), Is.EqualTo(64));
            Assert.That(v6.GetProperty("nodad").GetBoolean(), Is.True);
        });

        var mine = await client.GetAddressesAsync(index);
        Assert.Multiple(() =>
        {
            Assert.That(mine.Select(a => (a.Address, a.PrefixLength)), Does.Contain((IPAddress.Parse("172.18.0.2"), 16)));
            Assert.That(mine.Select(a => (a.Address, a.PrefixLength)), Does.Contain((IPAddress.Parse("fd00:18::2"), 64)));
            Assert.That(mine.Single(a => a.Family == AddressFamily.InterNetwork).Broadcast, Is.EqualTo(IPAddress.Parse("172.18.255.255")));
            Assert.That(mine.Single(a => a.Address.Equals(IPAddress.Parse("fd00:18::2"))).Flags & AddressFlags.NoDad, Is.EqualTo(AddressFlags.NoDad));
        });
        var v4Only = await client.GetAddressesAsync(family: AddressFamily.InterNetwork);
        Assert.That(v4Only.All(a => a.Family == AddressFamily.InterNetwork), Is.True);

        var dup = (await Assert.ThrowsAsync<NetlinkException>(async () => await client.AddAddressAsync(new AddressSpec(index, IPAddress.Parse("172.18.0.2"), 16))))!;
        Assert.That(dup.ErrorName, Is.EqualTo("EEXIST"));

        await client.DeleteAddressAsync(new AddressSpec(index, IPAddress.Parse("172.18.0.2"), 16));
        await client.DeleteAddressAsync(new AddressSpec(index, IPAddress.Parse("fd00:18::2"), 64));
        Assert.That(AddrInfo(ns, "a0").Select(a => a.GetProperty("local").GetString()), Does.Not.Contain("172.18.0.2").And.Not.Contain("fd00:18::2"));
        var missing = (await Assert.ThrowsAsync<NetlinkException>(async () => await client.DeleteAddressAsync(new AddressSpec(index, IPAddress.Parse("172.18.0.2"), 16))))!;
        Assert.That(missing.ErrorName, Is.EqualTo("EADDRNOTAVAIL"));
    }

    [Test]
    public async Task Add_replace_list_and_delete_routes()
    {
        using var ns = TestNamespace.Create();
        await using var client = RtnetlinkClient.Open(ns.Handle);
        var index = await UpVeth(client, "r0", "r1");
        await client.AddAddressAsync(new AddressSpec(index, IPAddress.Parse("10.1.0.2"), 24));

        await client.AddRouteAsync(new RouteSpec(IPNetwork.Parse("0.0.0.0/0")) { Gateway = IPAddress.Parse("10.1.0.1") });
        await client.AddRouteAsync(new RouteSpec(IPNetwork.Parse("10.5.0.0/16"))
        {
            Gateway = IPAddress.Parse("192.168.99.1"),
            OutputIndex = index,
            OnLink = true,
            Table = 100,
            Metric = 5,
        });
        await client.AddRouteAsync(new RouteSpec(IPNetwork.Parse("10.6.0.0/16")) { OutputIndex = index, Table = 1000 });

        var routes = ns.IpJson("route show table all").EnumerateArray().ToList();
        var dflt = routes.Single(r => r.GetProperty("dst").GetString() == "default" && !r.TryGetProperty("table", out _));
        var onlink = routes.Single(r => r.GetProperty("dst").GetString() == "10.5.0.0/16");
        var big = routes.Single(r => r.GetProperty("dst").GetString() == "10.6.0.0/16");
        Assert.Multiple(() =>
        {
            Assert.That(dflt.GetProperty("gateway").GetString(), Is.EqualTo("10.1.0.1"));
            Assert.That(onlink.GetProperty("gateway").GetString(), Is.EqualTo("192.168.99.1"));
            Assert.That(onlink.GetProperty("table").GetString(), Is.EqualTo("100"));
            Assert.That(onlink.GetProperty("metric").GetInt32(), Is.EqualTo(5));
            Assert.That(onlink.GetProperty("flags").EnumerateArray().Select(f => f.GetString()), Does.Contain("onlink"));
            Assert.That(big.GetProperty("table").GetString(), Is.EqualTo("1000"));
            Assert.That(big.GetProperty("scope").GetString(), Is.EqualTo("link"));
        });

        var mine = await client.GetRoutesAsync(AddressFamily.InterNetwork);
        var parsed = mine.Single(r => r.Destination == IPNetwork.Parse("10.5.0.0/16"));
        Assert.Multiple(() =>
        {
            Assert.That(parsed.Table, Is.EqualTo(100u));
            Assert.That(parsed.Metric, Is.EqualTo(5u));
            Assert.That(parsed.OnLink, Is.True);
            Assert.That(parsed.OutputIndex, Is.EqualTo(index));
            Assert.That(parsed.Protocol, Is.EqualTo(RouteProtocol.Boot));
            Assert.That(mine.Single(r => r.Destination.PrefixLength == 0 && r.Table == RouteTables.Main).Gateway, Is.EqualTo(IPAddress.Parse("10.1.0.1")));
            Assert.That(mine.Single(r => r.Destination == IPNetwork.Parse("10.6.0.0/16")).Table, Is.EqualTo(1000u));
        });

        var dup = (await Assert.ThrowsAsync<NetlinkException>(async () => await client.AddRouteAsync(new RouteSpec(IPNetwork.Parse("0.0.0.0/0")) { Gateway = IPAddress.Parse("10.1.0.1") })))!;
        Assert.That(dup.ErrorName, Is.EqualTo("EEXIST"));
        await client.ReplaceRouteAsync(new RouteSpec(IPNetwork.Parse("0.0.0.0/0")) { Gateway = IPAddress.Parse("10.1.0.254") });
        Assert.That(
            ns.IpJson("route show default").EnumerateArray().Single().GetProperty("gateway").GetString(),
            Is.EqualTo("10.1.0.254"));

        await client.DeleteRouteAsync(new RouteSpec(IPNetwork.Parse("0.0.0.0/0")) { Gateway = IPAddress.Parse("10.1.0.254") });
        await client.DeleteRouteAsync(new RouteSpec(IPNetwork.Parse("10.5.0.0/16")) { Table = 100 });
        await client.DeleteRouteAsync(new RouteSpec(IPNetwork.Parse("10.6.0.0/16")) { Table = 1000 });
        var left = ns.IpJson("route show table all").EnumerateArray().Select(r => r.GetProperty("dst").GetString()).ToList();
        Assert.That(left, Does.Not.Contain("default").And.Not.Contain("10.5.0.0/16").And.Not.Contain("10.6.0.0/16"));
        var missing = (await Assert.ThrowsAsync<NetlinkException>(async () => await client.DeleteRouteAsync(new RouteSpec(IPNetwork.Parse("10.5.0.0/16")) { Table = 100 })))!;
        Assert.That(missing.ErrorName, Is.EqualTo("ESRCH"));
    }

    [Test]
    public async Task Ipv6_default_route()
    {
        using var ns = TestNamespace.Create();
        await using var client = RtnetlinkClient.Open(ns.Handle);
        var index = await UpVeth(client, "r6a", "r6b");
        await client.AddAddressAsync(new AddressSpec(index, IPAddress.Parse("fd00:6::2"), 64) { Flags = AddressFlags.NoDad });
        await client.AddRouteAsync(new RouteSpec(IPNetwork.Parse("::/0")) { Gateway = IPAddress.Parse("fd00:6::1"), OutputIndex = index });
        var route = ns.IpJson("-6 route show default").EnumerateArray().Single();
        Assert.That(route.GetProperty("gateway").GetString(), Is.EqualTo("fd00:6::1"));
        var mine = await client.GetRoutesAsync(AddressFamily.InterNetworkV6);
        Assert.That(mine.Any(r => r.Destination.PrefixLength == 0 && Equals(r.Gateway, IPAddress.Parse("fd00:6::1"))), Is.True);
    }

    [Test]
    public async Task Add_replace_list_and_delete_neighbours()
    {
        using var ns = TestNamespace.Create();
        await using var client = RtnetlinkClient.Open(ns.Handle);
        var index = await UpVeth(client, "n0", "n1");
        var mac = PhysicalAddress.Parse("02-00-00-00-00-09");

        await client.AddNeighbourAsync(new NeighbourSpec(index, IPAddress.Parse("10.9.9.9"), mac));
        await client.AddNeighbourAsync(new NeighbourSpec(index, IPAddress.Parse("fd00:9::9"), mac));
        var oracle = ns.IpJson("neigh show dev n0").EnumerateArray().ToList();
        var v4 = oracle.Single(n => n.GetProperty("dst").GetString() == "10.9.9.9");
        Assert.Multiple(() =>
        {
            Assert.That(v4.GetProperty("lladdr").GetString(), Is.EqualTo("02:00:00:00:00:09"));
            Assert.That(v4.GetProperty("state").EnumerateArray().Select(s => s.GetString()), Does.Contain("PERMANENT"));
            Assert.That(oracle.Any(n => n.GetProperty("dst").GetString() == "fd00:9::9"), Is.True);
        });

        var mine = await client.GetNeighboursAsync(linkIndex: index);
        Assert.Multiple(() =>
        {
            Assert.That(mine.Single(n => Equals(n.Address, IPAddress.Parse("10.9.9.9"))).Mac, Is.EqualTo(mac));
            Assert.That(mine.Single(n => Equals(n.Address, IPAddress.Parse("10.9.9.9"))).State, Is.EqualTo(NeighbourState.Permanent));
        });

        var dup = (await Assert.ThrowsAsync<NetlinkException>(async () => await client.AddNeighbourAsync(new NeighbourSpec(index, IPAddress.Parse("10.9.9.9"), mac))))!;
        Assert.That(dup.ErrorName, Is.EqualTo("EEXIST"));
        await client.ReplaceNeighbourAsync(new NeighbourSpec(index, IPAddress.Parse("10.9.9.9"), PhysicalAddress.Parse("02-00-00-00-00-0a")));
        Assert.That(
            ns.IpJson("neigh show dev n0").EnumerateArray().Single(n => n.GetProperty("dst").GetString() == "10.9.9.9").GetProperty("lladdr").GetString(),
            Is.EqualTo("02:00:00:00:00:0a"));

        await client.DeleteNeighbourAsync(new NeighbourSpec(index, IPAddress.Parse("10.9.9.9"), null));
        await client.DeleteNeighbourAsync(new NeighbourSpec(index, IPAddress.Parse("fd00:9::9"), null));
        Assert.That(ns.IpJson("neigh show dev n0").EnumerateArray().Select(n => n.GetProperty("dst").GetString()), Does.Not.Contain("10.9.9.9").And.Not.Contain("fd00:9::9"));
    }

    [Test]
    public async Task Vxlan_fdb_entries()
    {
        using var ns = TestNamespace.Create();
        await using var client = RtnetlinkClient.Open(ns.Handle);
        await client.CreateLinkAsync(new VxlanLinkSpec("vxf", 77) { Port = 4789, Learning = false });
        var vx = (await client.GetLinkAsync("vxf"))!.Index;
        var peerMac = PhysicalAddress.Parse("02-42-0a-00-00-05");
        var zero = PhysicalAddress.Parse("00-00-00-00-00-00");

        await client.AddFdbEntryAsync(new FdbEntrySpec(vx, peerMac) { Destination = IPAddress.Parse("192.168.0.12") });
        await client.AddFdbEntryAsync(new FdbEntrySpec(vx, zero) { Destination = IPAddress.Parse("192.168.0.13"), Append = true });
        await client.AddFdbEntryAsync(new FdbEntrySpec(vx, zero) { Destination = IPAddress.Parse("192.168.0.14"), Append = true });

        var oracle = ns.BridgeJson("fdb show dev vxf").EnumerateArray().ToList();
        Assert.Multiple(() =>
        {
            var peer = oracle.Single(e => e.GetProperty("mac").GetString() == "02:42:0a:00:00:05");
            Assert.That(peer.GetProperty("dst").GetString(), Is.EqualTo("192.168.0.12"));
            Assert.That(peer.GetProperty("state").GetString(), Is.EqualTo("permanent"));
            Assert.That(peer.GetProperty("flags").EnumerateArray().Select(f => f.GetString()), Does.Contain("self"));
            Assert.That(
                oracle.Where(e => e.GetProperty("mac").GetString() == "00:00:00:00:00:00").Select(e => e.GetProperty("dst").GetString()),
                Is.EquivalentTo(new[] { "192.168.0.13", "192.168.0.14" }));
        });

        var mine = await client.GetFdbEntriesAsync(vx);
        Assert.Multiple(() =>
        {
            Assert.That(mine.All(e => e.IsFdb), Is.True);
            Assert.That(mine.Single(e => Equals(e.Mac, peerMac)).Address, Is.EqualTo(IPAddress.Parse("192.168.0.12")));
            Assert.That(mine.Count(e => Equals(e.Mac, zero)), Is.EqualTo(2));
        });

        await client.DeleteFdbEntryAsync(new FdbEntrySpec(vx, peerMac) { Destination = IPAddress.Parse("192.168.0.12") });
        await client.DeleteFdbEntryAsync(new FdbEntrySpec(vx, zero) { Destination = IPAddress.Parse("192.168.0.13") });
        var left = ns.BridgeJson("fdb show dev vxf").EnumerateArray().Select(e => e.TryGetProperty("dst", out var d) ? d.GetString() : null).ToList();
        Assert.That(left, Does.Not.Contain("192.168.0.12").And.Not.Contain("192.168.0.13").And.Contain("192.168.0.14"));
    }

    [Test]
    public async Task Vxlan_with_proxy_and_a_replaced_fdb_entry_and_a_permanent_neighbour()
    {
        using var ns = TestNamespace.Create();
        await using var client = RtnetlinkClient.Open(ns.Handle);
        await client.CreateLinkAsync(new VxlanLinkSpec("vxp", 4097) { Port = 4789, Learning = false, Proxy = true, Local = IPAddress.Parse("127.0.0.1"), Mtu = 1450 });
        var vx = (await client.GetLinkAsync("vxp"))!.Index;
        var details = ns.IpJson("-details link show dev vxp")[0];
        var data = details.GetProperty("linkinfo").GetProperty("info_data");
        Assert.Multiple(() =>
        {
            Assert.That(data.GetProperty("id").GetInt32(), Is.EqualTo(4097));
            Assert.That(data.GetProperty("proxy").GetBoolean(), Is.True);
            Assert.That(data.GetProperty("learning").GetBoolean(), Is.False);
            Assert.That(data.GetProperty("port").GetInt32(), Is.EqualTo(4789));
            Assert.That(data.GetProperty("local").GetString(), Is.EqualTo("127.0.0.1"));
            Assert.That(details.GetProperty("mtu").GetInt32(), Is.EqualTo(1450));
        });

        // A peer moving to another VTEP: replace keeps one entry for the MAC, now with the new destination.
        var mac = PhysicalAddress.Parse("02-42-0a-00-00-07");
        await client.AddFdbEntryAsync(new FdbEntrySpec(vx, mac) { Destination = IPAddress.Parse("192.168.0.21") });
        Assert.That(async () => await client.AddFdbEntryAsync(new FdbEntrySpec(vx, mac) { Destination = IPAddress.Parse("192.168.0.22") }), Throws.InstanceOf<NetlinkException>(), "a plain add of an existing MAC is refused");
        await client.AddFdbEntryAsync(new FdbEntrySpec(vx, mac) { Destination = IPAddress.Parse("192.168.0.22"), Replace = true });
        var entries = ns.BridgeJson("fdb show dev vxp").EnumerateArray().Where(e => e.GetProperty("mac").GetString() == "02:42:0a:00:00:07").ToList();
        Assert.That(entries.Select(e => e.GetProperty("dst").GetString()), Is.EqualTo(new[] { "192.168.0.22" }));

        // The neighbour the proxy answers ARP from: permanent, replaced in place.
        await client.ReplaceNeighbourAsync(new NeighbourSpec(vx, IPAddress.Parse("10.90.0.7"), mac));
        await client.ReplaceNeighbourAsync(new NeighbourSpec(vx, IPAddress.Parse("10.90.0.7"), mac));
        var neighbour = ns.IpJson("neigh show dev vxp").EnumerateArray().Single();
        Assert.Multiple(() =>
        {
            Assert.That(neighbour.GetProperty("dst").GetString(), Is.EqualTo("10.90.0.7"));
            Assert.That(neighbour.GetProperty("lladdr").GetString(), Is.EqualTo("02:42:0a:00:00:07"));
            Assert.That(neighbour.GetProperty("state").EnumerateArray().Select(x => x.GetString()), Does.Contain("PERMANENT"));
        });
    }

    [Test]
    public async Task Bridge_fdb_entry_on_a_port()
    {
        using var ns = TestNamespace.Create();
        await using var client = RtnetlinkClient.Open(ns.Handle);
        await client.CreateLinkAsync(new BridgeLinkSpec("brf"));
        var br = (await client.GetLinkAsync("brf"))!.Index;
        await client.CreateLinkAsync(new VethLinkSpec("pf0", "pf1") { MasterIndex = br });
        var port = (await client.GetLinkAsync("pf0"))!.Index;
        var mac = PhysicalAddress.Parse("02-11-22-33-44-55");
        await client.AddFdbEntryAsync(new FdbEntrySpec(port, mac) { Flags = NeighbourFlags.Master });
        var entry = ns.BridgeJson("fdb show dev pf0").EnumerateArray().Single(e => e.GetProperty("mac").GetString() == "02:11:22:33:44:55");
        Assert.That(entry.GetProperty("master").GetString(), Is.EqualTo("brf"));
        var mine = await client.GetFdbEntriesAsync(port);
        Assert.That(mine.Single(e => Equals(e.Mac, mac)).MasterIndex, Is.EqualTo(br));
    }
}
