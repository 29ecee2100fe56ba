using CnmSharp.IntegrationTests.Bridge;
using CnmSharp.Netlink;
using CnmSharp.Testing;

namespace CnmSharp.IntegrationTests.Macvlan;

/// <summary>The macvlan driver against the kernel, each test in a private host namespace whose parent is one end of a
/// veth pair (both ends up). Devices are checked with <c>ip -details -json</c> inside the sandboxes.</summary>
[RequiresRoot]
[Parallelizable(ParallelScope.All)]
public class MacvlanIntegrationTests
{
    private static Dictionary<string, string> Options(string? parent, string? mode = null)
    {
        var options = new Dictionary<string, string>();
        if (parent is not null)
        {
            options["parent"] = parent;
        }

        if (mode is not null)
        {
            options["macvlan_mode"] = mode;
        }

        return options;
    }

    private static string Ip(Endpoint endpoint) => endpoint.Address!.Value.Address.ToString();

    [TestCase("bridge")]
    [TestCase(null)]
    public async Task Bridge_mode_sandboxes_reach_each_other_and_leave_removes_the_device(string? mode)
    {
        await using var lab = await ParentLinkHarness.CreateAsync();
        var network = await lab.NetworkAsync("macvlan", "mvb", "10.81.0.0/24", Options(ParentLinkHarness.Parent, mode));
        var (s1, e1) = await lab.ContainerAsync(network, "c1");
        var (s2, e2) = await lab.ContainerAsync(network, "c2");

        Assert.Multiple(() =>
        {
            Assert.That(BridgeHarness.Ping(s1.Key, Ip(e2)), Is.True, "c1 -> c2");
            Assert.That(BridgeHarness.Ping(s2.Key, Ip(e1)), Is.True, "c2 -> c1");
            Assert.That(ParentLinkHarness.KindAndMode(s1.Key, e1.InterfaceName!), Is.EqualTo(("macvlan", "bridge")));
            Assert.That(ParentLinkHarness.KindAndMode(s2.Key, e2.InterfaceName!), Is.EqualTo(("macvlan", "bridge")));
            Assert.That(ParentLinkHarness.Link(s1.Key, e1.InterfaceName!).GetProperty("address").GetString(), Is.EqualTo("02:42:0a:51:00:02"), "MAC from the IPv4 address");
            Assert.That(e1.Gateway?.ToString(), Is.EqualTo("10.81.0.1"), "gateway from IPAM");
        });

        // Disconnect without deleting the sandbox: the device inside it goes.
        await e1.LeaveAsync(s1);
        Assert.That(BridgeHarness.LinksOf(s1.Key), Is.EquivalentTo(new[] { "lo" }));

        await lab.DeleteEverythingAsync();
        Assert.Multiple(async () =>
        {
            Assert.That(lab.HostLinks(), Is.EquivalentTo(new[] { "lo", ParentLinkHarness.Parent, ParentLinkHarness.Peer }));
            Assert.That(await lab.LeftoverStoreKeysAsync(), Is.Empty);
        });
    }

    [Test]
    public async Task Private_mode_blocks_sandboxes_from_each_other()
    {
        await using var lab = await ParentLinkHarness.CreateAsync();
        var network = await lab.NetworkAsync("macvlan", "mvp", "10.82.0.0/24", Options(ParentLinkHarness.Parent, "private"));
        var (s1, e1) = await lab.ContainerAsync(network, "c1");
        var (s2, e2) = await lab.ContainerAsync(network, "c2");

        Assert.Multiple(() =>
        {
            Assert.That(ParentLinkHarness.KindAndMode(s1.Key, e1.InterfaceName!), Is.EqualTo(("macvlan", "private")));
            Assert.That(BridgeHarness.Ping(s1.Key, Ip(e2)), Is.False, "private: c1 must not reach c2");
            Assert.That(BridgeHarness.Ping(s2.Key, Ip(e1)), Is.False, "private: c2 must not reach c1");
        });
    }

    [Test]
    public async Task Vepa_mode_reaches_through_a_hairpin_bridge_port()
    {
        await using var lab = await ParentLinkHarness.CreateAsync();
        using (var client = lab.Host.OpenClient())
        {
            // The "external switch": the veth's other end is a port of a bridge that sends frames back where they came.
            await client.CreateLinkAsync(new BridgeLinkSpec("hbr") { Up = true });
            var bridge = await client.GetLinkAsync("hbr");
            var peer = await client.GetLinkAsync(ParentLinkHarness.Peer);
            await client.SetLinkMasterAsync(peer!.Index, bridge!.Index);
            await client.SetBridgePortHairpinAsync(peer.Index, true);
        }

        var network = await lab.NetworkAsync("macvlan", "mvv", "10.83.0.0/24", Options(ParentLinkHarness.Parent, "vepa"));
        var (s1, e1) = await lab.ContainerAsync(network, "c1");
        var (s2, e2) = await lab.ContainerAsync(network, "c2");

        Assert.Multiple(() =>
        {
            Assert.That(ParentLinkHarness.KindAndMode(s2.Key, e2.InterfaceName!), Is.EqualTo(("macvlan", "vepa")));
            Assert.That(BridgeHarness.Ping(s1.Key, Ip(e2)), Is.True, "vepa: c1 -> c2 through the hairpin port");
            Assert.That(BridgeHarness.Ping(s2.Key, Ip(e1)), Is.True, "vepa: c2 -> c1 through the hairpin port");
        });
    }

    [Test]
    public async Task Passthru_takes_one_endpoint_and_refuses_a_second()
    {
        await using var lab = await ParentLinkHarness.CreateAsync();

        // The far side answers for the network's gateway address.
        BridgeHarness.Exec(lab.Host.Path, "ip", "address", "add", "10.84.0.1/24", "dev", ParentLinkHarness.Peer);
        var network = await lab.NetworkAsync("macvlan", "mvt", "10.84.0.0/24", Options(ParentLinkHarness.Parent, "passthru"));
        var (s1, e1) = await lab.ContainerAsync(network, "c1");

        Assert.Multiple(() =>
        {
            Assert.That(ParentLinkHarness.KindAndMode(s1.Key, e1.InterfaceName!), Is.EqualTo(("macvlan", "passthru")));
            Assert.That(BridgeHarness.Ping(s1.Key, "10.84.0.1"), Is.True, "passthru: c1 reaches the far side");
        });

        var refused = await Assert.ThrowsAsync<CnmConflictException>(async () => await network.CreateEndpointAsync("c2"));
        Assert.That(refused!.Code, Is.EqualTo(CnmErrorCodes.DriverForbidden));
        Assert.That(network.Endpoints.Select(e => e.Name), Is.EquivalentTo(new[] { "c1" }), "no second endpoint left behind");
    }

    [Test]
    public async Task Without_parent_an_internal_parent_lives_as_long_as_the_network()
    {
        await using var lab = await ParentLinkHarness.CreateAsync(vethParent: false);
        var network = await lab.NetworkAsync("macvlan", "mvi", "10.85.0.0/24", []);
        var parent = "dm-" + network.Id[..12];
        var (s1, e1) = await lab.ContainerAsync(network, "c1");
        var (s2, e2) = await lab.ContainerAsync(network, "c2");

        Assert.Multiple(() =>
        {
            Assert.That(lab.HostLinks(), Does.Contain(parent));
            Assert.That(ParentLinkHarness.KindAndMode(lab.Host.Path, parent).Kind, Is.AnyOf("dummy", "veth"), "a dummy, or the veth stand-in where the kernel has no dummy");
            Assert.That(BridgeHarness.Ping(s1.Key, Ip(e2)), Is.True, "c1 -> c2 on the internal parent");
            Assert.That(BridgeHarness.Ping(s2.Key, Ip(e1)), Is.True, "c2 -> c1 on the internal parent");
        });

        await lab.DeleteEverythingAsync();
        Assert.Multiple(async () =>
        {
            Assert.That(lab.HostLinks(), Is.EquivalentTo(new[] { "lo" }), "the internal parent is gone with the network");
            Assert.That(await lab.LeftoverStoreKeysAsync(), Is.Empty);
        });
    }

    [Test]
    public async Task A_second_network_on_the_same_parent_is_refused()
    {
        await using var lab = await ParentLinkHarness.CreateAsync();
        await lab.NetworkAsync("macvlan", "one", "10.86.0.0/24", Options(ParentLinkHarness.Parent));

        var refused = await Assert.ThrowsAsync<CnmConflictException>(async () => await lab.NetworkAsync("macvlan", "two", "10.87.0.0/24", Options(ParentLinkHarness.Parent)));
        Assert.Multiple(() =>
        {
            Assert.That(refused!.Reason, Does.Contain("already using parent interface " + ParentLinkHarness.Parent));
            Assert.That(lab.Controller.Networks.Select(n => n.Name), Is.EquivalentTo(new[] { "one" }));
        });
    }

    [Test]
    public async Task Vlan_parent_sub_interface_lives_as_long_as_the_network()
    {
        await using var lab = await ParentLinkHarness.CreateAsync();
        const string sub = ParentLinkHarness.Parent + ".42";
        Network network;
        try
        {
            network = await lab.NetworkAsync("macvlan", "mvq", "10.88.0.0/24", Options(sub));
        }
        catch (CnmNotImplementedException)
        {
            // Nothing may be left behind even then.
            Assert.Multiple(async () =>
            {
                Assert.That(lab.HostLinks(), Is.EquivalentTo(new[] { "lo", ParentLinkHarness.Parent, ParentLinkHarness.Peer }));
                Assert.That(await lab.LeftoverStoreKeysAsync(), Is.Empty);
            });
            TestEnvironment.IgnoreMissingDeviceKind("vlan");
            return;
        }

        Assert.That(ParentLinkHarness.KindAndMode(lab.Host.Path, sub).Kind, Is.EqualTo("vlan"));
        var (s1, e1) = await lab.ContainerAsync(network, "c1");
        Assert.That(ParentLinkHarness.KindAndMode(s1.Key, e1.InterfaceName!), Is.EqualTo(("macvlan", "bridge")));
        await lab.DeleteEverythingAsync();
        Assert.That(lab.HostLinks(), Does.Not.Contain(sub), "the sub-interface the driver made is gone with the network");
    }

    [TestCase("macvlan_mode", "bogus", typeof(CnmInvalidArgumentException))]
    [TestCase("parent", "pv0.0", typeof(CnmInvalidArgumentException))]
    [TestCase("parent", "pv0.4095", typeof(CnmInvalidArgumentException))]
    [TestCase("parent", "pv0.x", typeof(CnmInvalidArgumentException))]
    [TestCase("parent", "lo", typeof(CnmInvalidArgumentException))]
    [TestCase("parent", "nosuch0", typeof(CnmNotFoundException))]
    [TestCase("parent", "nosuch0.7", typeof(CnmNotFoundException))]
    [TestCase("com.docker.network.driver.mtu", "9000", typeof(CnmInvalidArgumentException))]
    [TestCase("colour", "blue", typeof(CnmInvalidArgumentException))]
    public async Task Bad_input_is_a_typed_error_and_leaves_nothing(string key, string value, Type expected)
    {
        await using var lab = await ParentLinkHarness.CreateAsync();
        var options = Options(key == "parent" ? null : ParentLinkHarness.Parent);
        options[key] = value;

        var error = await Assert.CatchAsync<CnmException>(async () => await lab.NetworkAsync("macvlan", "bad", "10.89.0.0/24", options));
        Assert.Multiple(async () =>
        {
            Assert.That(error, Is.TypeOf(expected), error?.Message);
            if (value.Contains('.', StringComparison.Ordinal) && expected == typeof(CnmInvalidArgumentException))
            {
                Assert.That(error!.Reason, Does.Contain("eth0.10"), "the error names the example form");
            }

            Assert.That(lab.Controller.Networks, Is.Empty);
            Assert.That(lab.HostLinks(), Is.EquivalentTo(new[] { "lo", ParentLinkHarness.Parent, ParentLinkHarness.Peer }), "no link left");
            Assert.That(await lab.LeftoverStoreKeysAsync(), Is.Empty, "no record or IPAM allocation left");
        });

        // The same name and subnet work right after: nothing was held.
        var network = await lab.NetworkAsync("macvlan", "bad", "10.89.0.0/24", Options(ParentLinkHarness.Parent));
        Assert.That(network.Name, Is.EqualTo("bad"));
    }

    [Test]
    public async Task Mtu_comes_from_the_parent_unless_set()
    {
        await using var lab = await ParentLinkHarness.CreateAsync();
        BridgeHarness.Exec(lab.Host.Path, "ip", "link", "set", ParentLinkHarness.Parent, "mtu", "1400");
        var inherited = await lab.NetworkAsync("macvlan", "mvm", "10.90.0.0/24", Options(ParentLinkHarness.Parent));
        var (s1, e1) = await lab.ContainerAsync(inherited, "c1");
        Assert.That(ParentLinkHarness.Link(s1.Key, e1.InterfaceName!).GetProperty("mtu").GetInt32(), Is.EqualTo(1400));

        var options = Options(null);
        options["com.docker.network.driver.mtu"] = "1300";
        var set = await lab.NetworkAsync("macvlan", "mvn", "10.91.0.0/24", options);
        var (s2, e2) = await lab.ContainerAsync(set, "c2");
        Assert.That(ParentLinkHarness.Link(s2.Key, e2.InterfaceName!).GetProperty("mtu").GetInt32(), Is.EqualTo(1300));
    }

    [Test]
    public async Task A_restarted_controller_knows_the_networks_and_removes_what_it_made()
    {
        await using var lab = await ParentLinkHarness.CreateAsync();
        var onVeth = await lab.NetworkAsync("macvlan", "onveth", "10.92.0.0/24", Options(ParentLinkHarness.Parent));
        var internalParent = await lab.NetworkAsync("macvlan", "inner", "10.93.0.0/24", []);
        var parent = "dm-" + internalParent.Id[..12];
        var (s1, e1) = await lab.ContainerAsync(onVeth, "c1");

        await lab.RestartAsync();

        Assert.That(lab.Controller.Networks.Select(n => n.Name), Is.EquivalentTo(new[] { "onveth", "inner" }));
        Assert.That(lab.HostLinks(), Does.Contain(parent));

        // The restored network still takes endpoints and joins them.
        var restored = lab.Controller.Networks.Single(n => n.Name == "inner");
        var (s2, e2) = await lab.ContainerAsync(restored, "c2");
        var (s3, e3) = await lab.ContainerAsync(restored, "c3");
        Assert.That(BridgeHarness.Ping(s2.Key, Ip(e3)), Is.True, "c2 -> c3 after the restart");

        await lab.DeleteEverythingAsync();
        Assert.Multiple(async () =>
        {
            Assert.That(lab.HostLinks(), Is.EquivalentTo(new[] { "lo", ParentLinkHarness.Parent, ParentLinkHarness.Peer }), "the internal parent is gone, the user's parent stays");
            Assert.That(await lab.LeftoverStoreKeysAsync(), Is.Empty);
        });
    }
}
