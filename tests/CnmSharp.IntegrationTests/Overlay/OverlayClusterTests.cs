using System.Diagnostics;
using CnmSharp.IntegrationTests.Bridge;
using CnmSharp.Testing;

namespace CnmSharp.IntegrationTests.Overlay;

/// <summary>
/// Overlay networks at the controller level (issue 13): three simulated hosts (<see cref="ClusterLab"/>), each running
/// its own <see cref="NetworkController"/> in its own host namespace, sharing one etcd (a 3-member cluster for the
/// leader test). The network is made on host 1 through the controller's API only; the other hosts adopt it from the
/// global store. Kernel state is checked with <c>ip -details -json link</c> and <c>bridge -json fdb show</c> inside the
/// network's namespace on each host.
/// </summary>
[RequiresRoot]
[NonParallelizable]
public class OverlayClusterTests
{
    private const string OverlayPrefix = "cnm/v1/driver/overlay/";

    [Test]
    public async Task A_network_made_on_host1_connects_two_sandboxes_on_each_of_three_hosts_and_a_sandbox_deleted_on_host2_leaves_the_other_fdbs()
    {
        await using var lab = await ClusterLab.CreateAsync(3);
        var (h1, h2, h3) = (lab.Hosts[0], lab.Hosts[1], lab.Hosts[2]);
        var created = await h1.Controller!.CreateNetworkAsync("ovc-" + Guid.NewGuid().ToString("N")[..6], "overlay", new NetworkCreateOptions { IPv4Config = [new IpamConfig { Subnet = "10.98.0.0/24" }] });
        Assert.That(created.Scope, Is.EqualTo("global"), "the overlay driver's networks are global");
        var id = created.Id;
        var networks = new Dictionary<ClusterHost, Network> { [h1] = created, [h2] = await ClusterLab.NetworkOnAsync(h2, id), [h3] = await ClusterLab.NetworkOnAsync(h3, id) };

        var sandboxes = new List<ClusterSandbox>();
        foreach (var host in lab.Hosts)
        {
            for (var i = 1; i <= 2; i++)
            {
                sandboxes.Add(await ClusterLab.SandboxAsync(host, networks[host], $"c{i}-{host.Name}-{id[..6]}"));
            }
        }

        Assert.That(sandboxes.Select(s => s.Ip), Is.Unique, "one global pool: no address twice in the cluster");

        // The devices: the same VNI everywhere, port 4789, learning off, ARP proxy, local = the host's VTEP, MTU 1450.
        var vnis = new HashSet<long>();
        foreach (var host in lab.Hosts)
        {
            var vxlan = ClusterLab.Link(host, id, "vxlan0");
            var data = vxlan.GetProperty("linkinfo").GetProperty("info_data");
            vnis.Add(data.GetProperty("id").GetInt64());
            Assert.Multiple(() =>
            {
                Assert.That(vxlan.GetProperty("linkinfo").GetProperty("info_kind").GetString(), Is.EqualTo("vxlan"), host.Name);
                Assert.That(data.GetProperty("port").GetInt32(), Is.EqualTo(4789), host.Name);
                Assert.That(data.GetProperty("learning").GetBoolean(), Is.False, host.Name);
                Assert.That(data.GetProperty("proxy").GetBoolean(), Is.True, host.Name);
                Assert.That(data.GetProperty("local").GetString(), Is.EqualTo(host.Vtep.ToString()), host.Name);
                Assert.That(vxlan.GetProperty("mtu").GetInt32(), Is.EqualTo(1450), host.Name);
                Assert.That(ClusterLab.Link(host, id, "br0").GetProperty("mtu").GetInt32(), Is.EqualTo(1450), host.Name);
            });
        }

        Assert.That(vnis, Has.Count.EqualTo(1), "the same VNI on every host");

        // Each host's FDB holds exactly the other hosts' four sandboxes, permanent, sent to their host's VTEP; each
        // controller shows them as the network's remote endpoints with their node, and its own with its node.
        foreach (var host in lab.Hosts)
        {
            var remote = sandboxes.Where(s => s.Host != host).ToList();
            await Until.TrueAsync(() => ClusterLab.RemoteFdb(host, id).SetEquals(remote.Select(s => (s.Mac, s.Host.Vtep.ToString()))), $"{host}'s FDB holds the 4 remote sandboxes");
            await Until.TrueAsync(() => networks[host].RemoteEndpoints.Count == 4, $"{host} sees 4 remote endpoints");
            Assert.Multiple(() =>
            {
                Assert.That(networks[host].RemoteEndpoints.Select(e => (e.Id, e.Node)), Is.EquivalentTo(remote.Select(s => (s.Endpoint.Id, s.Host.Name))), $"{host}'s remote endpoints and their nodes");
                Assert.That(networks[host].RemoteEndpoints.Select(e => e.Address?.Address.ToString()), Is.EquivalentTo(remote.Select(s => s.Ip)), $"{host}'s remote endpoints' addresses");
                Assert.That(networks[host].Endpoints.Select(e => e.Node), Is.All.EqualTo(host.Name), $"{host}'s own endpoints carry its node");
            });
        }

        Assert.That(ClusterLab.FailedPings(sandboxes), Is.Empty, "pings that failed (30 pairs)");

        // A bridge network on host 1 is isolated from the overlay: no ping either way.
        var bridge = await h1.Controller.CreateNetworkAsync("brc-" + id[..6], "bridge", new NetworkCreateOptions { IPv4Config = [new IpamConfig { Subnet = "10.99.0.0/24" }] });
        var onBridge = await h1.Controller.CreateSandboxAsync("b1-" + id[..6]);
        var bridgeEndpoint = await bridge.CreateEndpointAsync("b1-" + id[..6]);
        await bridgeEndpoint.JoinAsync(onBridge);
        var bridgeIp = bridgeEndpoint.Address!.Value.Address.ToString();
        Assert.Multiple(() =>
        {
            Assert.That(bridge.Scope, Is.EqualTo("local"));
            Assert.That(h2.Controller!.Networks.Select(n => n.Id), Does.Not.Contain(bridge.Id), "a local network stays on its host");
            Assert.That(BridgeHarness.Ping(onBridge.Key, bridgeEndpoint.Gateway!.ToString()), Is.True, "the bridge sandbox reaches its gateway");
            foreach (var s in sandboxes.Where(s => s.Host == h1).Concat(sandboxes.Where(s => s.Host == h3).Take(1)))
            {
                Assert.That(BridgeHarness.Ping(onBridge.Key, s.Ip), Is.False, $"bridge sandbox must not reach overlay {s}");
                Assert.That(BridgeHarness.Ping(s.Path, bridgeIp), Is.False, $"overlay {s} must not reach the bridge sandbox");
            }
        });

        // A sandbox removed on host 2 (leave, endpoint delete, sandbox delete) is gone from hosts 1 and 3's FDB
        // within 2 s, and from their remote endpoints.
        var gone = sandboxes.First(s => s.Host == h2);
        await gone.Endpoint.LeaveAsync(gone.Sandbox);
        await gone.Endpoint.DeleteAsync();
        await gone.Sandbox.DeleteAsync();
        var clock = Stopwatch.StartNew();
        foreach (var host in new[] { h1, h3 })
        {
            await Until.TrueAsync(() => !ClusterLab.RemoteFdb(host, id).Contains((gone.Mac, h2.Vtep.ToString())), $"{gone} gone from {host}'s FDB", TimeSpan.FromSeconds(2) - clock.Elapsed);
        }

        TestContext.Out.WriteLine($"removed from both FDBs after {clock.ElapsedMilliseconds} ms");
        sandboxes.Remove(gone);
        foreach (var host in new[] { h1, h3 })
        {
            await Until.TrueAsync(() => networks[host].RemoteEndpoints.All(e => e.Id != gone.Endpoint.Id), $"{gone} gone from {host}'s remote endpoints");
            Assert.That(ClusterLab.RemoteFdb(host, id), Has.Count.EqualTo(3), $"{host} keeps the other 3 remote sandboxes");
        }

        // Teardown through the API: every sandbox goes, then host 1 deletes the network; hosts 2 and 3 remove their
        // copy and its namespace, and no overlay key is left in etcd.
        foreach (var s in sandboxes)
        {
            await s.Endpoint.LeaveAsync(s.Sandbox);
            await s.Endpoint.DeleteAsync();
            await s.Sandbox.DeleteAsync();
        }

        await Until.TrueAsync(() => h2.Controller!.Networks.Single(n => n.Id == id).RemoteEndpoints.Count == 0, "host2 sees no remote endpoint left");
        await created.DeleteAsync();
        foreach (var host in lab.Hosts)
        {
            await Until.TrueAsync(() => host.Controller!.Networks.All(n => n.Id != id), $"the network gone from {host}", TimeSpan.FromSeconds(5));
            Assert.That(File.Exists(ClusterLab.NetworkNamespace(host, id)), Is.False, $"the network's namespace gone from {host}");
        }

        await using var store = await lab.ConnectAsync();
        await Until.TrueAsync(async () => (await store.ListAsync(OverlayPrefix)).Count == 0, "no overlay key left in etcd");
        Assert.That((await store.ListAsync("cnm/v1/network/")).Select(e => e.Key), Is.Empty, "no global network record left");
    }

    [Test]
    public async Task A_host_whose_controller_dies_without_cleanup_is_removed_from_the_others_when_its_lease_expires()
    {
        await using var lab = await ClusterLab.CreateAsync(3, leaseTtl: TimeSpan.FromSeconds(2));
        var (h1, h2, h3) = (lab.Hosts[0], lab.Hosts[1], lab.Hosts[2]);
        var created = await h1.Controller!.CreateNetworkAsync("ovd-" + Guid.NewGuid().ToString("N")[..6], "overlay", new NetworkCreateOptions { IPv4Config = [new IpamConfig { Subnet = "10.100.0.0/24" }] });
        var id = created.Id;
        var s1 = await ClusterLab.SandboxAsync(h1, created, "d1-" + id[..6]);
        var s2 = await ClusterLab.SandboxAsync(h2, await ClusterLab.NetworkOnAsync(h2, id), "d2-" + id[..6]);
        var s3 = await ClusterLab.SandboxAsync(h3, await ClusterLab.NetworkOnAsync(h3, id), "d3-" + id[..6]);
        foreach (var host in new[] { h1, h2 })
        {
            await Until.TrueAsync(() => ClusterLab.RemoteFdb(host, id).Contains((s3.Mac, h3.Vtep.ToString())), $"host3's sandbox in {host}'s FDB");
        }

        Assert.That(BridgeHarness.Ping(s1.Path, s3.Ip), Is.True, "host1 -> host3 before host3 dies");

        // Running hosts renew their leases: nothing goes after more than one TTL.
        await Task.Delay(TimeSpan.FromSeconds(3));
        Assert.That(ClusterLab.RemoteFdb(h1, id), Does.Contain((s3.Mac, h3.Vtep.ToString())), "a running host's lease is renewed");

        await ClusterLab.AbandonAsync(h3);
        var clock = Stopwatch.StartNew();
        foreach (var host in new[] { h1, h2 })
        {
            await Until.TrueAsync(() => !ClusterLab.RemoteFdb(host, id).Contains((s3.Mac, h3.Vtep.ToString())), $"host3's sandbox gone from {host}'s FDB", TimeSpan.FromSeconds(15));
            await Until.TrueAsync(() => host.Controller!.Networks.Single(n => n.Id == id).RemoteEndpoints.All(e => e.Node != "host3"), $"host3's endpoint gone from {host}'s view", TimeSpan.FromSeconds(15));
        }

        TestContext.Out.WriteLine($"host3 cleaned from hosts 1 and 2 {clock.ElapsedMilliseconds} ms after it died (TTL 2 s)");
        await using var store = await lab.ConnectAsync();
        Assert.Multiple(async () =>
        {
            Assert.That(clock.Elapsed, Is.GreaterThan(TimeSpan.FromSeconds(1)), "not before the lease could expire");
            Assert.That((await store.ListAsync("cnm/v1/endpoint/" + id + "/")).Count, Is.EqualTo(2), "host3's endpoint record removed by a survivor");
            Assert.That(await store.GetAsync("cnm/v1/node/host3"), Is.Null, "host3's node record expired");
            Assert.That(ClusterLab.RemoteFdb(h1, id), Is.EquivalentTo(new[] { (s2.Mac, h2.Vtep.ToString()) }), "host1 keeps host2's sandbox");
            Assert.That(BridgeHarness.Ping(s1.Path, s2.Ip), Is.True, "host1 -> host2 still works");
            Assert.That(BridgeHarness.Ping(s2.Path, s1.Ip), Is.True, "host2 -> host1 still works");
        });
    }

    [Test]
    public async Task With_the_etcd_leader_killed_global_operations_on_the_other_hosts_still_succeed_and_sandboxes_ping()
    {
        await using var lab = await ClusterLab.CreateAsync(3, etcdMembers: 3);
        var (h1, h2, h3) = (lab.Hosts[0], lab.Hosts[1], lab.Hosts[2]);
        var created = await h1.Controller!.CreateNetworkAsync("ove-" + Guid.NewGuid().ToString("N")[..6], "overlay", new NetworkCreateOptions { IPv4Config = [new IpamConfig { Subnet = "10.101.0.0/24" }] });
        var id = created.Id;
        var s1 = await ClusterLab.SandboxAsync(h1, created, "e1-" + id[..6]);
        var n2 = await ClusterLab.NetworkOnAsync(h2, id);
        var n3 = await ClusterLab.NetworkOnAsync(h3, id);

        var leader = await lab.Etcd.FindLeaderAsync();
        leader.Kill();
        TestContext.Out.WriteLine($"killed etcd leader {leader.Name} (pid {leader.Pid})");
        var clock = Stopwatch.StartNew();

        // Global operations after the kill, on the other hosts: endpoint create and join, a new network, deletes.
        var s2 = await ClusterLab.SandboxAsync(h2, n2, "e2-" + id[..6]);
        var s3 = await ClusterLab.SandboxAsync(h3, n3, "e3-" + id[..6]);
        var second = await h3.Controller!.CreateNetworkAsync("ovf-" + id[..6], "overlay", new NetworkCreateOptions { IPv4Config = [new IpamConfig { Subnet = "10.102.0.0/24" }] });
        var t3 = await ClusterLab.SandboxAsync(h3, second, "f3-" + id[..6]);
        var t1 = await ClusterLab.SandboxAsync(h1, await ClusterLab.NetworkOnAsync(h1, second.Id), "f1-" + id[..6]);
        TestContext.Out.WriteLine($"five global operations done {clock.ElapsedMilliseconds} ms after the kill");

        foreach (var (host, net, expected) in new[] { (h1, id, new[] { s2, s3 }), (h2, id, new[] { s1, s3 }), (h3, id, new[] { s1, s2 }), (h1, second.Id, new[] { t3 }), (h3, second.Id, new[] { t1 }) })
        {
            await Until.TrueAsync(() => ClusterLab.RemoteFdb(host, net).SetEquals(expected.Select(s => (s.Mac, s.Host.Vtep.ToString()))), $"{host}'s FDB of {net[..6]}");
        }

        Assert.Multiple(() =>
        {
            Assert.That(ClusterLab.FailedPings([s1, s2, s3]), Is.Empty, "first network, pings that failed");
            Assert.That(ClusterLab.FailedPings([t1, t3]), Is.Empty, "second network, pings that failed");
        });

        // Deletes with the leader still dead: host 2's sandbox leaves every FDB, host 3's second network goes
        // everywhere once host 1 left it.
        await s2.Endpoint.LeaveAsync(s2.Sandbox);
        await s2.Endpoint.DeleteAsync();
        await s2.Sandbox.DeleteAsync();
        foreach (var host in new[] { h1, h3 })
        {
            await Until.TrueAsync(() => !ClusterLab.RemoteFdb(host, id).Contains((s2.Mac, h2.Vtep.ToString())), $"{s2} gone from {host}'s FDB", TimeSpan.FromSeconds(2));
        }

        foreach (var t in new[] { t1, t3 })
        {
            await t.Endpoint.LeaveAsync(t.Sandbox);
            await t.Endpoint.DeleteAsync();
            await t.Sandbox.DeleteAsync();
        }

        await Until.TrueAsync(() => second.RemoteEndpoints.Count == 0, "host3 sees host1's endpoint of the second network gone");
        await second.DeleteAsync();
        await Until.TrueAsync(() => h1.Controller.Networks.All(n => n.Id != second.Id), "the second network gone from host1");
        Assert.That(BridgeHarness.Ping(s1.Path, s3.Ip), Is.True, "the first network still works");
    }

    [Test]
    public async Task With_etcd_down_traffic_flows_global_operations_fail_fast_local_ones_go_on_and_the_hosts_converge_when_it_returns()
    {
        await using var lab = await ClusterLab.CreateAsync(3);
        var (h1, h2, h3) = (lab.Hosts[0], lab.Hosts[1], lab.Hosts[2]);
        var tag = Guid.NewGuid().ToString("N")[..6];
        var created = await h1.Controller!.CreateNetworkAsync("ovd-" + tag, "overlay", new NetworkCreateOptions { IPv4Config = [new IpamConfig { Subnet = "10.103.0.0/24" }] });
        var id = created.Id;
        var n2 = await ClusterLab.NetworkOnAsync(h2, id);
        var n3 = await ClusterLab.NetworkOnAsync(h3, id);
        var s1 = await ClusterLab.SandboxAsync(h1, created, "d1-" + tag);
        var s2 = await ClusterLab.SandboxAsync(h2, n2, "d2-" + tag);
        var s3 = await ClusterLab.SandboxAsync(h3, n3, "d3-" + tag);
        await Until.TrueAsync(() => ClusterLab.RemoteFdb(h1, id).Count == 2 && ClusterLab.RemoteFdb(h2, id).Count == 2 && ClusterLab.RemoteFdb(h3, id).Count == 2, "every host programs its two peers");

        var etcd = lab.Etcd.Members[0];
        etcd.Kill();

        // Existing traffic flows; a global operation fails fast with a typed error and leaves nothing; local ones go on.
        Assert.That(ClusterLab.FailedPings([s1, s2, s3]), Is.Empty, "pings with etcd down");
        var clock = Stopwatch.StartNew();
        await Assert.ThrowsAsync<CnmUnavailableException>(async () => await n2.CreateEndpointAsync("x2-" + tag));
        var failedIn = clock.Elapsed;
        Assert.Multiple(() =>
        {
            Assert.That(failedIn, Is.LessThan(TimeSpan.FromSeconds(20)), "fails within the store's request timeout, not hanging");
            Assert.That(n2.FindEndpointByName("x2-" + tag), Is.Null, "nothing half made");
        });
        var local = await h2.Controller!.CreateNetworkAsync("loc-" + tag, "bridge", new NetworkCreateOptions
        {
            IPv4Config = [new IpamConfig { Subnet = "10.104.0.0/24" }],
            DriverOptions = new Dictionary<string, string> { ["com.docker.network.bridge.name"] = "brl" + tag },
        });
        var localSandbox = await h2.Controller.CreateSandboxAsync("l2-" + tag);
        var localEndpoint = await local.CreateEndpointAsync("l2-" + tag);
        await localEndpoint.JoinAsync(localSandbox);
        Assert.That(BridgeHarness.Ping(localSandbox.Key, "10.104.0.1"), Is.True, "a local network works with etcd down");
        await localSandbox.DeleteAsync(); // its endpoints leave and go with it
        await local.DeleteAsync();

        // etcd returns: global operations work again and every host converges on exactly the endpoints that exist.
        await etcd.RestartAsync();
        ClusterSandbox? s2b = null;
        await Until.TrueAsync(async () =>
        {
            try
            {
                s2b = await ClusterLab.SandboxAsync(h2, n2, "d2b-" + tag);
                return true;
            }
            catch (CnmUnavailableException)
            {
                // Not reconnected yet: undo what the attempt made (what cannot be undone yet is retried next time).
                try
                {
                    await (h2.Controller.FindSandboxByContainerId("d2b-" + tag)?.DeleteAsync() ?? ValueTask.CompletedTask);
                    await (n2.FindEndpointByName("d2b-" + tag)?.DeleteAsync() ?? ValueTask.CompletedTask);
                }
                catch (CnmUnavailableException)
                {
                }

                return false;
            }
        }, "an endpoint create and join on host 2 once etcd is back", TimeSpan.FromSeconds(30));
        var all = new[] { s1, s2, s3, s2b! };
        foreach (var (host, network) in new[] { (h1, created), (h2, n2), (h3, n3) })
        {
            var others = all.Where(s => s.Host != host).ToArray();
            await Until.TrueAsync(() => ClusterLab.RemoteFdb(host, id).SetEquals(others.Select(s => (s.Mac, s.Host.Vtep.ToString()))), $"{host}'s FDB is exactly its peers", TimeSpan.FromSeconds(15));
            await Until.TrueAsync(() => network.RemoteEndpoints.Count == others.Length, $"{host} sees {others.Length} remote endpoints", TimeSpan.FromSeconds(15));
            Assert.That(network.RemoteEndpoints.Select(e => e.Id), Is.EquivalentTo(others.Select(s => s.Endpoint.Id)), $"{host}: no endpoint lost or duplicated");
        }

        Assert.That(ClusterLab.FailedPings(all), Is.Empty, "pings after etcd returned");
        Assert.That(all.Select(s => s.Ip), Is.Unique);
    }
}
