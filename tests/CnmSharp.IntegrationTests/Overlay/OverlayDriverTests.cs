using System.Diagnostics;
using CnmSharp.Drivers.Overlay;
using CnmSharp.IntegrationTests.Bridge;
using CnmSharp.Netlink;
using CnmSharp.Testing;

namespace CnmSharp.IntegrationTests.Overlay;

/// <summary>
/// The overlay driver on three simulated hosts (a private namespace each, joined by a private underlay bridge), one
/// etcd the test starts, one driver per host with its own local store: the driver's contract calls made as the core
/// makes them on each host. Kernel state is checked with <c>ip -details -json link</c>, <c>ip -json neigh</c> and
/// <c>bridge -json fdb show</c> inside the network's namespace on each host.
/// </summary>
[RequiresRoot]
[NonParallelizable]
public class OverlayDriverTests
{
    [Test]
    public async Task Every_sandbox_reaches_every_other_across_three_hosts_and_a_deleted_one_leaves_the_other_fdbs()
    {
        await using var lab = await OverlayLab.CreateAsync(3);
        var network = OverlayLab.NewId();
        await OverlayLab.CreateNetworkAsync(lab.Hosts, network, "10.90.0.0/24");

        // Two sandboxes per host.
        var sandboxes = new List<OverlaySandbox>();
        var next = 2;
        foreach (var host in lab.Hosts)
        {
            for (var i = 0; i < 2; i++)
            {
                sandboxes.Add(await OverlayLab.SandboxAsync(host, network, $"10.90.0.{next++}/24"));
            }
        }

        // The devices: one VXLAN device with the cluster's VNI on every host, proxy ARP, learning off, port 4789,
        // MTU = the underlay's 1500 - 50, enslaved to br0.
        var vnis = new HashSet<long>();
        foreach (var host in lab.Hosts)
        {
            var vxlan = OverlayLab.Link(host, network, "vxlan0");
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
                Assert.That(vxlan.GetProperty("master").GetString(), Is.EqualTo("br0"), host.Name);
            });
        }

        Assert.That(vnis, Has.Count.EqualTo(1), "the same VNI on every host");
        Assert.That(vnis.Single(), Is.GreaterThanOrEqualTo(OverlayDriver.FirstVni));

        // Each host programs exactly the other hosts' four sandboxes (FDB: MAC -> their VTEP; neighbours: IP -> MAC).
        foreach (var host in lab.Hosts)
        {
            var remote = sandboxes.Where(s => s.Host != host).ToList();
            await Until.TrueAsync(() => OverlayLab.RemoteFdb(host, network).SetEquals(remote.Select(s => (s.Mac, s.Host.Vtep.ToString()))), $"{host}'s FDB holds the 4 remote sandboxes");
            Assert.That(OverlayLab.Neighbours(host, network), Is.EquivalentTo(remote.Select(s => (s.Ip, s.Mac))), $"{host}'s neighbours");
        }

        // Every sandbox pings every other one (30 pairs).
        var failures = new List<string>();
        foreach (var from in sandboxes)
        {
            foreach (var to in sandboxes.Where(s => s != from))
            {
                if (!BridgeHarness.Ping(from.Path, to.Ip))
                {
                    failures.Add($"{from} -> {to}");
                }
            }
        }

        Assert.That(failures, Is.Empty, "pings that failed");

        // A sandbox removed on host 2 is gone from the FDB and neighbours of hosts 1 and 3 within 2 s.
        var gone = sandboxes.First(s => s.Host == lab.Hosts[1]);
        await OverlayLab.RemoveSandboxAsync(gone);
        var clock = Stopwatch.StartNew();
        foreach (var host in new[] { lab.Hosts[0], lab.Hosts[2] })
        {
            await Until.TrueAsync(() => !OverlayLab.RemoteFdb(host, network).Contains((gone.Mac, gone.Host.Vtep.ToString())), $"{gone} gone from {host}'s FDB", TimeSpan.FromSeconds(2) - clock.Elapsed);
            Assert.That(OverlayLab.Neighbours(host, network).Select(n => n.Ip), Does.Not.Contain(gone.Ip), $"{host}'s neighbours");
        }

        Assert.That(OverlayLab.RemoteFdb(lab.Hosts[0], network), Has.Count.EqualTo(3), "host1 keeps the other 3 remote sandboxes");
    }

    [Test]
    public async Task A_host_stopped_without_cleanup_is_removed_from_the_others_when_its_lease_expires()
    {
        await using var lab = await OverlayLab.CreateAsync(3, new OverlayDriverOptions { LeaseTtl = TimeSpan.FromSeconds(2) });
        var network = OverlayLab.NewId();
        await OverlayLab.CreateNetworkAsync(lab.Hosts, network, "10.92.0.0/24");
        var s1 = await OverlayLab.SandboxAsync(lab.Hosts[0], network, "10.92.0.2/24");
        var s2 = await OverlayLab.SandboxAsync(lab.Hosts[1], network, "10.92.0.3/24");
        var s3 = await OverlayLab.SandboxAsync(lab.Hosts[2], network, "10.92.0.4/24");
        await Until.TrueAsync(() => OverlayLab.RemoteFdb(lab.Hosts[0], network).Contains((s3.Mac, s3.Host.Vtep.ToString())), "host3's sandbox on host1");
        Assert.That(BridgeHarness.Ping(s1.Path, s3.Ip), Is.True, "host1 -> host3 before the stop");

        // Kept alive well past the TTL while the driver runs.
        await Task.Delay(TimeSpan.FromSeconds(3));
        Assert.That(OverlayLab.RemoteFdb(lab.Hosts[0], network), Does.Contain((s3.Mac, s3.Host.Vtep.ToString())), "a running host's lease is renewed");

        // Stopped without cleanup: nothing is withdrawn at once (its lease still runs), then everything is, by expiry.
        await OverlayLab.StopDriverAsync(lab.Hosts[2]);
        await using var store = await lab.ConnectAsync();
        Assert.That((await store.ListAsync(OverlayLab.GlobalPrefix + "peer/" + network + "/host3/")).Count, Is.EqualTo(1), "host3's peer key outlives its driver until the lease expires");
        foreach (var host in lab.Hosts.Take(2))
        {
            await Until.TrueAsync(() => !OverlayLab.RemoteFdb(host, network).Contains((s3.Mac, s3.Host.Vtep.ToString())), $"host3's sandbox gone from {host}'s FDB", TimeSpan.FromSeconds(15));
            Assert.That(OverlayLab.Neighbours(host, network).Select(n => n.Ip), Does.Not.Contain(s3.Ip), $"{host}'s neighbours");
        }

        Assert.Multiple(async () =>
        {
            Assert.That(await store.ListAsync(OverlayLab.GlobalPrefix + "node/" + network + "/host3"), Is.Empty, "host3's membership expired too");
            Assert.That(OverlayLab.RemoteFdb(lab.Hosts[0], network), Is.EquivalentTo(new[] { (s2.Mac, s2.Host.Vtep.ToString()) }), "host1 keeps host2's sandbox");
            Assert.That(BridgeHarness.Ping(s1.Path, s2.Ip), Is.True, "host1 -> host2 still works");
        });
    }

    [Test]
    public async Task A_driver_stopped_cleanly_keeps_its_peers_published_and_a_restart_programs_the_current_peers_before_it_returns()
    {
        // A cnm command is a short controller: its clean stop must not withdraw this host's endpoints (they keep
        // working in the kernel), and its start must program the other hosts' current peers before the command ends.
        await using var lab = await OverlayLab.CreateAsync(2, new OverlayDriverOptions { LeaseTtl = TimeSpan.FromSeconds(2) });
        var network = OverlayLab.NewId();
        await OverlayLab.CreateNetworkAsync(lab.Hosts, network, "10.91.0.0/24");
        var s1 = await OverlayLab.SandboxAsync(lab.Hosts[0], network, "10.91.0.2/24");
        var s2 = await OverlayLab.SandboxAsync(lab.Hosts[1], network, "10.91.0.3/24");
        await Until.TrueAsync(() => OverlayLab.RemoteFdb(lab.Hosts[0], network).Contains((s2.Mac, s2.Host.Vtep.ToString())), "host2's sandbox on host1");

        await OverlayLab.StopDriverCleanlyAsync(lab.Hosts[1]);
        await Task.Delay(TimeSpan.FromSeconds(3.5));
        await using var store = await lab.ConnectAsync();
        Assert.Multiple(async () =>
        {
            Assert.That((await store.ListAsync(OverlayLab.GlobalPrefix + "peer/" + network + "/host2/")).Count, Is.EqualTo(1), "host2's peer key outlives its lease's TTL");
            Assert.That(OverlayLab.RemoteFdb(lab.Hosts[0], network), Does.Contain((s2.Mac, s2.Host.Vtep.ToString())), "host1 keeps host2's sandbox");
            Assert.That(BridgeHarness.Ping(s1.Path, s2.Ip), Is.True, "host1 -> host2 with host2's driver stopped");
        });

        // A sandbox joined on host 1 meanwhile is in host 2's FDB as soon as its new driver is made.
        var s3 = await OverlayLab.SandboxAsync(lab.Hosts[0], network, "10.91.0.4/24");
        await lab.StartDriverAsync(lab.Hosts[1]);
        Assert.That(OverlayLab.RemoteFdb(lab.Hosts[1], network), Is.EquivalentTo(new[] { (s1.Mac, s1.Host.Vtep.ToString()), (s3.Mac, s3.Host.Vtep.ToString()) }), "programmed before the start returned");
        Assert.That(BridgeHarness.Ping(s2.Path, s3.Ip), Is.True, "host2 -> the new sandbox on host1");

        // Back on a lease: a crash now withdraws host2's keys when that lease expires.
        await OverlayLab.StopDriverAsync(lab.Hosts[1]);
        await Until.TrueAsync(() => !OverlayLab.RemoteFdb(lab.Hosts[0], network).Contains((s2.Mac, s2.Host.Vtep.ToString())), "host2's sandbox gone from host1 after its crash", TimeSpan.FromSeconds(15));
    }

    [Test]
    public async Task Two_networks_with_the_same_subnet_on_different_vnis_are_isolated()
    {
        await using var lab = await OverlayLab.CreateAsync(2);
        var red = OverlayLab.NewId();
        var blue = OverlayLab.NewId();
        await OverlayLab.CreateNetworkAsync(lab.Hosts, red, "10.93.0.0/24");
        await OverlayLab.CreateNetworkAsync(lab.Hosts, blue, "10.93.0.0/24", new() { [OverlayDriver.VxlanIdListOption] = "7001" });
        var red1 = await OverlayLab.SandboxAsync(lab.Hosts[0], red, "10.93.0.2/24");
        var red2 = await OverlayLab.SandboxAsync(lab.Hosts[1], red, "10.93.0.3/24");
        var blue1 = await OverlayLab.SandboxAsync(lab.Hosts[0], blue, "10.93.0.4/24");
        var blue2 = await OverlayLab.SandboxAsync(lab.Hosts[1], blue, "10.93.0.5/24");
        await Until.TrueAsync(() => OverlayLab.RemoteFdb(lab.Hosts[0], red).Count == 1 && OverlayLab.RemoteFdb(lab.Hosts[0], blue).Count == 1, "one remote peer per network on host1");

        var redVni = OverlayLab.Link(lab.Hosts[0], red, "vxlan0").GetProperty("linkinfo").GetProperty("info_data").GetProperty("id").GetInt64();
        var blueVni = OverlayLab.Link(lab.Hosts[1], blue, "vxlan0").GetProperty("linkinfo").GetProperty("info_data").GetProperty("id").GetInt64();
        Assert.Multiple(() =>
        {
            Assert.That(blueVni, Is.EqualTo(7001), "the VNI from vxlanid_list");
            Assert.That(redVni, Is.Not.EqualTo(blueVni));
            Assert.That(BridgeHarness.Ping(red1.Path, red2.Ip), Is.True, "red host1 -> red host2");
            Assert.That(BridgeHarness.Ping(blue2.Path, blue1.Ip), Is.True, "blue host2 -> blue host1");
            Assert.That(BridgeHarness.Ping(red1.Path, blue2.Ip), Is.False, "red host1 must not reach blue host2");
            Assert.That(BridgeHarness.Ping(blue1.Path, red2.Ip), Is.False, "blue host1 must not reach red host2");
            Assert.That(BridgeHarness.Ping(red1.Path, blue1.Ip), Is.False, "red must not reach blue on the same host");
        });
    }

    [Test]
    public async Task A_network_deleted_and_made_again_at_once_gets_its_vni_back_every_time()
    {
        // The VNI of a VXLAN device is unique in the namespace of its UDP socket (the host's) until the device is gone:
        // a delete must free it before it returns, not leave it to the kernel's later reaping of the namespace.
        await using var lab = await OverlayLab.CreateAsync(1);
        var host = lab.Hosts[0];
        for (var round = 0; round < 5; round++)
        {
            var network = OverlayLab.NewId();
            await OverlayLab.CreateNetworkAsync([host], network, "10.97.0.0/24", new() { [OverlayDriver.VxlanIdListOption] = "7003" });
            var vni = OverlayLab.Link(host, network, "vxlan0").GetProperty("linkinfo").GetProperty("info_data").GetProperty("id").GetInt64();
            Assert.That(vni, Is.EqualTo(7003), $"round {round}: the VNI from vxlanid_list");
            await host.Driver!.DeleteNetworkAsync(network);
            Assert.That(File.Exists(OverlayLab.NetworkNamespace(host, network)), Is.False, $"round {round}: the namespace is gone");
        }
    }

    [Test]
    public async Task A_restart_that_finds_its_namespace_gone_waits_until_the_kernel_frees_the_old_devices_vni()
    {
        // The namespace goes behind the driver's back while something still holds it: its VXLAN device, and with it the
        // VNI in the host namespace, lives on until the last reference goes (as while the kernel reaps a namespace).
        await using var lab = await OverlayLab.CreateAsync(1);
        var host = lab.Hosts[0];
        var network = OverlayLab.NewId();
        await OverlayLab.CreateNetworkAsync([host], network, "10.98.0.0/24", new() { [OverlayDriver.VxlanIdListOption] = "7004" });
        await OverlayLab.StopDriverAsync(host);
        var path = OverlayLab.NetworkNamespace(host, network);
        var holder = File.OpenHandle(path, FileMode.Open, FileAccess.Read);
        try
        {
            await new NetworkNamespaceManager(new NetworkNamespaceManagerOptions { RunDirectory = Path.GetDirectoryName(path)!, MakeRunDirectoryShared = false }).DeleteAsync(Path.GetFileName(path));
            var release = Task.Run(async () =>
            {
                await Task.Delay(TimeSpan.FromMilliseconds(500));
                holder.Dispose();
            });

            // The restart makes the namespace and its devices again from the record, waiting for the old VNI.
            await lab.StartDriverAsync(host);
            await release;
        }
        finally
        {
            holder.Dispose();
        }

        var vni = OverlayLab.Link(host, network, "vxlan0").GetProperty("linkinfo").GetProperty("info_data").GetProperty("id").GetInt64();
        Assert.That(vni, Is.EqualTo(7004), "the device made again with the record's VNI");
        await host.Driver!.DeleteNetworkAsync(network);
    }

    [Test]
    public async Task With_etcd_unreachable_existing_traffic_flows_and_a_new_network_fails_with_a_typed_error()
    {
        await using var lab = await OverlayLab.CreateAsync(2);
        var network = OverlayLab.NewId();
        await OverlayLab.CreateNetworkAsync(lab.Hosts, network, "10.95.0.0/24");
        var s1 = await OverlayLab.SandboxAsync(lab.Hosts[0], network, "10.95.0.2/24");
        var s2 = await OverlayLab.SandboxAsync(lab.Hosts[1], network, "10.95.0.3/24");
        await Until.TrueAsync(() => OverlayLab.RemoteFdb(lab.Hosts[0], network).Count == 1, "host2's sandbox on host1");
        // Both ways before etcd goes: an entry not yet programmed when it dies is never learnt (that is not what this
        // test asks), and a host's watch may see the other's sandbox later than the other host sees its own.
        await Until.TrueAsync(() => OverlayLab.RemoteFdb(lab.Hosts[1], network).Count == 1, "host1's sandbox on host2");

        lab.KillEtcd();
        await Task.Delay(TimeSpan.FromSeconds(1));
        Assert.Multiple(() =>
        {
            Assert.That(BridgeHarness.Ping(s1.Path, s2.Ip), Is.True, "host1 -> host2 with etcd down");
            Assert.That(BridgeHarness.Ping(s2.Path, s1.Ip), Is.True, "host2 -> host1 with etcd down");
            Assert.That(OverlayLab.RemoteFdb(lab.Hosts[1], network), Is.EquivalentTo(new[] { (s1.Mac, s1.Host.Vtep.ToString()) }), "programmed entries stay");
        });

        var other = OverlayLab.NewId();
        Assert.That(
            async () => await OverlayLab.CreateNetworkAsync([lab.Hosts[0]], other, "10.96.0.0/24"),
            Throws.InstanceOf<CnmUnavailableException>());
        Assert.That(File.Exists(OverlayLab.NetworkNamespace(lab.Hosts[0], other)), Is.False, "nothing made for the refused network");
    }

    [Test]
    public async Task A_restarted_driver_restores_its_devices_from_its_records_and_the_network_is_freed_by_the_last_host()
    {
        await using var lab = await OverlayLab.CreateAsync(2);
        var network = OverlayLab.NewId();
        await OverlayLab.CreateNetworkAsync(lab.Hosts, network, "10.94.0.0/24");
        var s1 = await OverlayLab.SandboxAsync(lab.Hosts[0], network, "10.94.0.2/24");
        var s2 = await OverlayLab.SandboxAsync(lab.Hosts[1], network, "10.94.0.3/24");
        Assert.That(BridgeHarness.Ping(s1.Path, s2.Ip), Is.True, "before the restart");

        // Host 1's driver stops; its VXLAN device is lost meanwhile; a new driver on the same records re-makes it and
        // programs host 2's sandbox again.
        await OverlayLab.StopDriverAsync(lab.Hosts[0]);
        BridgeHarness.Exec(OverlayLab.NetworkNamespace(lab.Hosts[0], network), "ip", "link", "del", "vxlan0");
        await lab.StartDriverAsync(lab.Hosts[0]);
        await Until.TrueAsync(() => OverlayLab.RemoteFdb(lab.Hosts[0], network).Contains((s2.Mac, s2.Host.Vtep.ToString())), "host2's sandbox programmed again on host1");
        Assert.That(BridgeHarness.Ping(s1.Path, s2.Ip), Is.True, "after the restart");

        // The network's global record and VNI stay while a host has it, and go with the last one.
        await using var store = await lab.ConnectAsync();
        await OverlayLab.RemoveSandboxAsync(s1);
        await OverlayLab.RemoveSandboxAsync(s2);
        await lab.Hosts[0].Driver!.DeleteNetworkAsync(network);
        Assert.That(await store.GetAsync(OverlayLab.GlobalPrefix + "network/" + network), Is.Not.Null, "host2 still has the network");
        await lab.Hosts[1].Driver!.DeleteNetworkAsync(network);
        Assert.Multiple(async () =>
        {
            Assert.That((await store.ListAsync(OverlayLab.GlobalPrefix)).Select(e => e.Key), Is.Empty, "no global key left");
            Assert.That(File.Exists(OverlayLab.NetworkNamespace(lab.Hosts[0], network)), Is.False, "host1's namespace is gone");
        });
    }
}
