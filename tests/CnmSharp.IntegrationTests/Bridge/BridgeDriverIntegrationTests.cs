using System.Diagnostics;
using System.Net;
using CnmSharp.Drivers;
using CnmSharp.Testing;

namespace CnmSharp.IntegrationTests.Bridge;

/// <summary>
/// The bridge driver end to end, as root: every test builds a controller on a private host namespace and asserts at
/// the end that no link, namespace, mount, rule, driver record or IPAM allocation is left (done-when item 4).
/// NonParallelizable: the tests read the root namespace's rules, which must stay empty.
/// </summary>
[RequiresRoot]
[NonParallelizable]
public class BridgeDriverIntegrationTests
{
    [Test]
    public async Task SameNetworkPingsOtherNetworkIsIsolated()
    {
        await using var h = await BridgeHarness.CreateAsync();
        var a = await h.NetworkAsync("a", "10.77.1.0/24");
        var b = await h.NetworkAsync("b", "10.77.2.0/24");
        var (s1, e1) = await h.ContainerAsync(a, "c1");
        var (s2, e2) = await h.ContainerAsync(a, "c2");
        var (s3, e3) = await h.ContainerAsync(b, "c3");
        Assert.Multiple(() =>
        {
            Assert.That(e1.InterfaceName, Is.EqualTo("eth0"));
            Assert.That(BridgeHarness.LinksOf(s1.Key), Does.Contain("eth0"));
            Assert.That(BridgeHarness.Ping(s1.Key, e2.Address!.Value.Address.ToString()), Is.True, "c1 -> c2 on network a");
            Assert.That(BridgeHarness.Ping(s2.Key, e1.Address!.Value.Address.ToString()), Is.True, "c2 -> c1 on network a");
            Assert.That(BridgeHarness.Ping(s1.Key, "10.77.1.1"), Is.True, "c1 -> its gateway");
            Assert.That(BridgeHarness.Ping(s3.Key, e1.Address!.Value.Address.ToString()), Is.False, "c3 on b must not reach c1 on a");
            Assert.That(BridgeHarness.Ping(s3.Key, e2.Address!.Value.Address.ToString()), Is.False, "c3 on b must not reach c2 on a");
            Assert.That(BridgeHarness.Ping(s1.Key, e3.Address!.Value.Address.ToString()), Is.False, "c1 on a must not reach c3 on b");
            Assert.That(BridgeHarness.DefaultRoutes(s1.Key), Is.EqualTo(new[] { ((string?)"10.77.1.1", (string?)"eth0") }));
        });
        await h.TeardownAndAssertCleanAsync();
    }

    [Test]
    public async Task IccOffBlocksContainersOfOneNetwork()
    {
        await using var h = await BridgeHarness.CreateAsync();
        var n = await h.NetworkAsync("noicc", "10.77.3.0/24", new() { ["com.docker.network.bridge.enable_icc"] = "false" });
        var (s1, e1) = await h.ContainerAsync(n, "c1");
        var (s2, e2) = await h.ContainerAsync(n, "c2");
        Assert.Multiple(() =>
        {
            Assert.That(BridgeHarness.Ping(s1.Key, "10.77.3.1"), Is.True, "the gateway is still reachable");
            Assert.That(BridgeHarness.Ping(s1.Key, e2.Address!.Value.Address.ToString()), Is.False);
            Assert.That(BridgeHarness.Ping(s2.Key, e1.Address!.Value.Address.ToString()), Is.False);
            Assert.That(BridgeHarness.Exec(h.Host.Path, "sysctl", "-n", "net.bridge.bridge-nf-call-iptables").Trim(), Is.EqualTo("1"));
        });
        await h.TeardownAndAssertCleanAsync();
    }

    [Test]
    public async Task InternalNetworkHasNoDefaultRouteAndNoNat()
    {
        await using var h = await BridgeHarness.CreateAsync();
        var n = await h.NetworkAsync("int", "10.77.4.0/24", @internal: true);
        var (s1, _) = await h.ContainerAsync(n, "c1");
        var (s2, e2) = await h.ContainerAsync(n, "c2");
        var nat = BridgeHarness.Rules(h.Host.Path).Where(r => r.Contains(" nat ", StringComparison.Ordinal) && r.Contains("10.77.4.0/24", StringComparison.Ordinal)).ToList();
        Assert.Multiple(() =>
        {
            Assert.That(BridgeHarness.DefaultRoutes(s1.Key), Is.Empty, "an internal network gives no default route");
            Assert.That(nat, Is.Empty, "an internal network has no NAT rule");
            Assert.That(BridgeHarness.Rules(h.Host.Path).Any(r => r.Contains("MASQUERADE", StringComparison.Ordinal)), Is.False);
            Assert.That(BridgeHarness.Ping(s1.Key, e2.Address!.Value.Address.ToString()), Is.True, "containers of an internal network still talk");
            Assert.That(s2.Endpoints, Has.Count.EqualTo(1));
        });
        await h.TeardownAndAssertCleanAsync();
    }

    [Test]
    public async Task PublishedPortReachesAListenerUntilTheEndpointLeaves()
    {
        await using var h = await BridgeHarness.CreateAsync();
        // The host namespace's own address, on a veth of its own.
        BridgeHarness.Exec(h.Host.Path, "ip", "link", "add", "cnmup0", "type", "veth", "peer", "name", "cnmup1");
        BridgeHarness.Exec(h.Host.Path, "ip", "addr", "add", "192.0.2.1/24", "dev", "cnmup0");
        BridgeHarness.Exec(h.Host.Path, "ip", "link", "set", "cnmup0", "up");
        BridgeHarness.Exec(h.Host.Path, "ip", "link", "set", "cnmup1", "up");
        try
        {
            var n = await h.NetworkAsync("pub", "10.77.5.0/24");
            var (s1, e1) = await h.ContainerAsync(n, "web", [new PortBinding(TransportProtocol.Tcp, 8000, IPAddress.Any, 18080)]);
            h.Start(s1.Key, "nc", "-l", "-k", "-p", "8000");
            var info = await e1.GetDriverInfoAsync();
            Assert.That(info[NetLabels.PortMap], Does.Contain("18080"));
            Assert.That(await ConnectsAsync(h.Host.Path, "192.0.2.1", 18080), Is.True, "the published port reaches the listener");

            await e1.LeaveAsync(s1);
            Assert.That(await ConnectsAsync(h.Host.Path, "192.0.2.1", 18080, attempts: 1), Is.False, "no forward after leave");
            Assert.That(BridgeHarness.Rules(h.Host.Path).Any(r => r.Contains("18080", StringComparison.Ordinal)), Is.False);
        }
        finally
        {
            BridgeHarness.TryExec(h.Host.Path, "ip", "link", "del", "cnmup0");
        }

        await h.TeardownAndAssertCleanAsync();
    }

    [Test]
    public async Task OnAnIPv6NetworkAPortPublishedOnEveryAddressIsReachableOverIPv6Too()
    {
        await using var h = await BridgeHarness.CreateAsync();
        // The host namespace's own IPv6 address (documentation prefix), on a veth of its own.
        BridgeHarness.Exec(h.Host.Path, "ip", "link", "add", "cnmup0", "type", "veth", "peer", "name", "cnmup1");
        BridgeHarness.Exec(h.Host.Path, "ip", "addr", "add", "2001:db8:77::1/64", "dev", "cnmup0", "nodad");
        BridgeHarness.Exec(h.Host.Path, "ip", "link", "set", "cnmup0", "up");
        BridgeHarness.Exec(h.Host.Path, "ip", "link", "set", "cnmup1", "up");
        try
        {
            var n = await h.Controller.CreateNetworkAsync("pub6", "bridge", new NetworkCreateOptions
            {
                EnableIPv6 = true,
                IPv4Config = [new IpamConfig { Subnet = "10.77.21.0/24" }],
                IPv6Config = [new IpamConfig { Subnet = "fd00:77:21::/64" }],
            });
            var (s1, e1) = await h.ContainerAsync(n, "web6", [new PortBinding(TransportProtocol.Tcp, 8000, IPAddress.Any, 18090)]);
            h.Start(s1.Key, "nc", "-6", "-l", "-k", "-p", "8000");
            var info = await e1.GetDriverInfoAsync();
            Assert.That(info[NetLabels.PortMap], Does.Contain("\"::\""), "the binding on 0.0.0.0 was copied to [::]");
            Assert.That(await ConnectsAsync(h.Host.Path, "2001:db8:77::1", 18090), Is.True, "the port on [::] reaches the container's IPv6 address");

            await e1.LeaveAsync(s1);
            Assert.That(await ConnectsAsync(h.Host.Path, "2001:db8:77::1", 18090, attempts: 1), Is.False, "no forward after leave");
            Assert.That(BridgeHarness.Rules(h.Host.Path).Any(r => r.Contains("18090", StringComparison.Ordinal)), Is.False, "no rule of the port left, in either family");
        }
        finally
        {
            BridgeHarness.TryExec(h.Host.Path, "ip", "link", "del", "cnmup0");
        }

        await h.TeardownAndAssertCleanAsync();
    }

    private static async Task<bool> ConnectsAsync(string netns, string address, int port, int attempts = 20)
    {
        for (var i = 0; i < attempts; i++)
        {
            if (BridgeHarness.TryExec(netns, "nc", "-z", "-w", "2", address, port.ToString(System.Globalization.CultureInfo.InvariantCulture)).Code == 0)
            {
                return true;
            }

            await Task.Delay(100);
        }

        return false;
    }

    [Test]
    public async Task TwoNetworksGiveEth0AndEth1AndTheDefaultRouteFollowsTheElection()
    {
        await using var h = await BridgeHarness.CreateAsync();
        var a = await h.NetworkAsync("a", "10.77.6.0/24");
        var b = await h.NetworkAsync("b", "10.77.7.0/24");
        var c = await h.NetworkAsync("c", "10.77.8.0/24");
        var (s, ea) = await h.ContainerAsync(a, "multi");
        var eb = await b.CreateEndpointAsync("multi-b");
        await eb.JoinAsync(s);
        Assert.Multiple(() =>
        {
            Assert.That(BridgeHarness.LinksOf(s.Key), Is.SupersetOf(new[] { "eth0", "eth1" }));
            Assert.That(ea.InterfaceName, Is.EqualTo("eth0"));
            Assert.That(eb.InterfaceName, Is.EqualTo("eth1"));
            Assert.That(BridgeHarness.DefaultRoutes(s.Key), Is.EqualTo(new[] { ((string?)"10.77.6.1", (string?)"eth0") }), "equal priority: network name order");
        });

        var ec = await c.CreateEndpointAsync("multi-c");
        await ec.JoinAsync(s, new JoinOptions { Priority = 10 });
        Assert.That(BridgeHarness.DefaultRoutes(s.Key), Is.EqualTo(new[] { ((string?)"10.77.8.1", (string?)"eth2") }), "higher priority wins");
        await ec.LeaveAsync(s);
        Assert.That(BridgeHarness.DefaultRoutes(s.Key), Is.EqualTo(new[] { ((string?)"10.77.6.1", (string?)"eth0") }));

        await ea.LeaveAsync(s);
        Assert.Multiple(() =>
        {
            Assert.That(BridgeHarness.DefaultRoutes(s.Key), Is.EqualTo(new[] { ((string?)"10.77.7.1", (string?)"eth1") }), "the route moves when the first endpoint leaves");
            Assert.That(BridgeHarness.LinksOf(s.Key), Does.Not.Contain("eth0"));
            Assert.That(BridgeHarness.Ping(s.Key, "10.77.7.1"), Is.True);
        });
        await h.TeardownAndAssertCleanAsync();
    }

    [Test]
    public async Task AnAddressIsNeverReusedWhileADeviceHoldsIt()
    {
        await using var h = await BridgeHarness.CreateAsync();
        var n = await h.NetworkAsync("reuse", "10.77.9.0/24");
        var joins = new List<double>();
        var deletes = new List<double>();
        for (var i = 0; i < 5; i++)
        {
            var sandbox = await h.Controller.CreateSandboxAsync("c" + i);
            var endpoint = await n.CreateEndpointAsync("c" + i);
            var watch = Stopwatch.StartNew();
            await endpoint.JoinAsync(sandbox);
            joins.Add(watch.Elapsed.TotalMilliseconds);
            var address = endpoint.Address!.Value;
            var hostVeth = "veth" + endpoint.Id[..7];
            Assert.That(h.HostLinks(), Does.Contain(hostVeth));

            watch.Restart();
            await sandbox.DeleteAsync();
            deletes.Add(watch.Elapsed.TotalMilliseconds);

            // The endpoint is torn down in the background once the kernel reaps its veth with the namespace. Asking
            // for its very address at once must wait for that: when the address is handed out, the device is gone.
            var next = await n.CreateEndpointAsync("next" + i, new EndpointCreateOptions { IPv4Address = address.Address });
            Assert.That(h.HostLinks(), Does.Not.Contain(hostVeth), "the address was handed out again while the old host-side veth still existed");
            Assert.That(next.Address, Is.EqualTo(address), "IPAM hands out the freed address again");
            await next.DeleteAsync();
        }

        await TestContext.Out.WriteLineAsync($"join ms: {string.Join(", ", joins.Select(j => j.ToString("F1", System.Globalization.CultureInfo.InvariantCulture)))}; sandbox delete (leave + netns; endpoint teardown in the background) ms: {string.Join(", ", deletes.Select(j => j.ToString("F1", System.Globalization.CultureInfo.InvariantCulture)))}");
        await h.TeardownAndAssertCleanAsync();
    }

    [Test]
    public async Task JoinAndLeaveTimings()
    {
        await using var h = await BridgeHarness.CreateAsync();
        var n = await h.NetworkAsync("timing", "10.77.18.0/24");
        var sandbox = await h.Controller.CreateSandboxAsync("t");
        var joins = new List<double>();
        var leaves = new List<double>();
        for (var i = 0; i < 10; i++)
        {
            var endpoint = await n.CreateEndpointAsync("t" + i);
            var watch = Stopwatch.StartNew();
            await endpoint.JoinAsync(sandbox);
            joins.Add(watch.Elapsed.TotalMilliseconds);
            watch.Restart();
            await endpoint.LeaveAsync(sandbox);
            leaves.Add(watch.Elapsed.TotalMilliseconds);
            Assert.That(h.HostLinks(), Does.Not.Contain("veth" + endpoint.Id[..7]));
            await endpoint.DeleteAsync();
        }

        joins.Sort();
        leaves.Sort();
        await TestContext.Out.WriteLineAsync(string.Create(System.Globalization.CultureInfo.InvariantCulture, $"join median {joins[5]:F1} ms (min {joins[0]:F1}, max {joins[^1]:F1}); leave median {leaves[5]:F1} ms (min {leaves[0]:F1}, max {leaves[^1]:F1})"));
        await h.TeardownAndAssertCleanAsync();
    }

    [Test]
    public async Task DualStackContainersReachEachOtherOverIPv6()
    {
        await using var h = await BridgeHarness.CreateAsync();
        var n = await h.Controller.CreateNetworkAsync("dual", "bridge", new NetworkCreateOptions
        {
            EnableIPv6 = true,
            IPv4Config = [new IpamConfig { Subnet = "10.77.19.0/24" }],
            IPv6Config = [new IpamConfig { Subnet = "fd00:77:19::/64" }],
        });
        var (s1, e1) = await h.ContainerAsync(n, "c1");
        var (s2, e2) = await h.ContainerAsync(n, "c2");
        Assert.Multiple(() =>
        {
            Assert.That(e1.AddressIPv6, Is.Not.Null);
            Assert.That(e1.GatewayIPv6, Is.Not.Null);
            Assert.That(BridgeHarness.Ping(s1.Key, e2.AddressIPv6!.Value.Address.ToString()), Is.True, "IPv6 between containers");
            Assert.That(BridgeHarness.Ping(s2.Key, e1.Address!.Value.Address.ToString()), Is.True, "IPv4 between containers");
        });
        await h.TeardownAndAssertCleanAsync();
    }

    [Test]
    public async Task BadInputIsATypedErrorAndLeavesNothing()
    {
        await using var h = await BridgeHarness.CreateAsync();
        var ok = await h.NetworkAsync("ok", "10.77.10.0/24");
        var overlap = await Assert.ThrowsAsync(Is.InstanceOf<CnmException>(), async () => await h.NetworkAsync("overlap", "10.77.10.0/25"));
        var badMtu = await Assert.ThrowsAsync<CnmInvalidArgumentException>(async () => await h.NetworkAsync("mtu", "10.77.11.0/24", new() { [NetLabels.DriverMtu] = "10" }));
        var longName = await Assert.ThrowsAsync<CnmInvalidArgumentException>(async () => await h.NetworkAsync("long", "10.77.12.0/24", new() { ["com.docker.network.bridge.name"] = "bridge-name-of-16" }));
        var unknown = await Assert.ThrowsAsync<CnmInvalidArgumentException>(async () => await h.NetworkAsync("unknown", "10.77.13.0/24", new() { ["com.docker.network.bridge.nope"] = "1" }));
        var gateway = await Assert.ThrowsAsync<CnmInvalidArgumentException>(async () => await h.Controller.CreateNetworkAsync("gw", "bridge", new NetworkCreateOptions
        {
            IPv4Config = [new IpamConfig { Subnet = "10.77.14.0/24", Gateway = "10.77.15.1" }],
        }));
        Assert.Multiple(() =>
        {
            Assert.That(((CnmException)overlap!).Kind, Is.EqualTo(CnmErrorKind.Conflict));
            Assert.That(badMtu!.Code, Is.EqualTo(CnmErrorCodes.InvalidOption));
            Assert.That(longName!.Code, Is.EqualTo(CnmErrorCodes.InvalidOption));
            Assert.That(unknown!.Code, Is.EqualTo(CnmErrorCodes.InvalidOption));
            Assert.That(gateway!.Code, Is.EqualTo(CnmErrorCodes.InvalidGateway));
            Assert.That(h.Controller.Networks.Select(n => n.Name), Is.EqualTo(new[] { "ok" }));
            Assert.That(h.HostLinks(), Is.EquivalentTo(new[] { "lo", "br-" + ok.Id[..12] }), "failed creates leave no bridge");
        });

        // The same host port twice: the second join fails and is rolled back completely.
        var ports = new[] { new PortBinding(TransportProtocol.Tcp, 80, IPAddress.Any, 18081) };
        var (s1, e1) = await h.ContainerAsync(ok, "p1", ports);
        var s2 = await h.Controller.CreateSandboxAsync("p2");
        var e2 = await ok.CreateEndpointAsync("p2", new EndpointCreateOptions { PortBindings = ports });
        var taken = await Assert.ThrowsAsync<CnmConflictException>(async () => await e2.JoinAsync(s2));
        Assert.Multiple(() =>
        {
            Assert.That(taken!.Code, Is.EqualTo(CnmErrorCodes.PortAlreadyAllocated));
            Assert.That(e2.Sandbox, Is.Null);
            Assert.That(BridgeHarness.LinksOf(s2.Key), Is.EqualTo(new[] { "lo" }), "nothing left in the sandbox");
            Assert.That(h.HostLinks(), Does.Not.Contain("veth" + e2.Id[..7]), "no host veth left");
            Assert.That(BridgeHarness.Rules(h.Host.Path).Count(r => r.Contains("18081", StringComparison.Ordinal)), Is.GreaterThan(0), "the first endpoint's forward stays");
            Assert.That(e1.Sandbox, Is.Not.Null);
        });
        _ = s1;
        await h.TeardownAndAssertCleanAsync();
    }

    [Test]
    public async Task ForwardPolicyDropStillLetsSameNetworkTrafficFlow()
    {
        await using var h = await BridgeHarness.CreateAsync(forwardDrop: true);
        BridgeHarness.TryExec(h.Host.Path, "sysctl", "-w", "net.bridge.bridge-nf-call-iptables=1");
        var n = await h.NetworkAsync("drop", "10.77.16.0/24");
        var (s1, e1) = await h.ContainerAsync(n, "c1");
        var (s2, e2) = await h.ContainerAsync(n, "c2");
        Assert.Multiple(() =>
        {
            Assert.That(BridgeHarness.Exec(h.Host.Path, "iptables", "-S", "FORWARD"), Does.Contain("-P FORWARD DROP"));
            Assert.That(BridgeHarness.Ping(s1.Key, e2.Address!.Value.Address.ToString()), Is.True);
            Assert.That(BridgeHarness.Ping(s2.Key, e1.Address!.Value.Address.ToString()), Is.True);
        });
        await h.TeardownAndAssertCleanAsync();
    }

    [Test]
    public async Task ARestartAdoptsBridgesAndRulesAndReconcileRestoresAFlush()
    {
        await using var h = await BridgeHarness.CreateAsync();
        var n = await h.NetworkAsync("keep", "10.77.17.0/24");
        var (s1, e1) = await h.ContainerAsync(n, "c1", [new PortBinding(TransportProtocol.Tcp, 80, IPAddress.Any, 0)]);
        var (s2, e2) = await h.ContainerAsync(n, "c2");
        var rules = BridgeHarness.Rules(h.Host.Path);
        var links = h.HostLinks();
        var portmap = (await e1.GetDriverInfoAsync())[NetLabels.PortMap];

        await h.RestartAsync();
        var again = h.Controller.GetNetwork("keep").FindEndpointByName("c1")!;
        var portmapAgain = (await again.GetDriverInfoAsync())[NetLabels.PortMap];
        Assert.Multiple(() =>
        {
            Assert.That(BridgeHarness.Rules(h.Host.Path), Is.EquivalentTo(rules), "no duplicate or missing rule after a restart");
            Assert.That(h.HostLinks(), Is.EquivalentTo(links), "no duplicate bridge after a restart");
            Assert.That(portmapAgain, Is.EqualTo(portmap), "the same host port after a restart");
        });

        BridgeHarness.Exec(h.Host.Path, "iptables", "-F");
        BridgeHarness.Exec(h.Host.Path, "iptables", "-t", "nat", "-F");
        await h.Controller.ReconcileFirewallAsync();
        Assert.That(BridgeHarness.Rules(h.Host.Path), Is.EquivalentTo(rules), "one reconcile puts every rule back");
        Assert.That(BridgeHarness.Ping(s1.Key, e2.Address!.Value.Address.ToString()), Is.True);
        _ = s2;
        await h.TeardownAndAssertCleanAsync();
    }

    [Test]
    public async Task ADefaultBridgeNamedForADeviceThatDoesNotExistIsRefusedAndLeavesNothing()
    {
        await using var h = await BridgeHarness.CreateAsync();

        var error = await Assert.CatchAsync(async () => await h.NetworkAsync("dflt", "10.77.9.0/24", new()
        {
            ["com.docker.network.bridge.default_bridge"] = "true",
            ["com.docker.network.bridge.name"] = "cnmtnobr0",
        }));

        Assert.That(error, Is.InstanceOf<CnmConflictException>(), error?.ToString());
        Assert.Multiple(() =>
        {
            Assert.That(((CnmException)error!).Code, Is.EqualTo(CnmErrorCodes.DriverForbidden));
            Assert.That(h.Controller.Networks.Select(n => n.Name), Does.Not.Contain("dflt"));
            Assert.That(h.HostLinks(), Does.Not.Contain("cnmtnobr0"));
        });

        // The pool went back: the same subnet is free for another network, and once the device exists it is adopted.
        BridgeHarness.Exec(h.Host.Path, "ip", "link", "add", "cnmtnobr0", "type", "bridge");
        var adopted = await h.NetworkAsync("dflt", "10.77.9.0/24", new()
        {
            ["com.docker.network.bridge.default_bridge"] = "true",
            ["com.docker.network.bridge.name"] = "cnmtnobr0",
        });
        await adopted.DeleteAsync();
        BridgeHarness.Exec(h.Host.Path, "ip", "link", "del", "cnmtnobr0");
        await h.TeardownAndAssertCleanAsync();
    }

    [Test]
    public async Task TheDefaultBridgeIsCnm0()
    {
        await using var h = await BridgeHarness.CreateAsync(defaultNetworks: true);
        var bridge = h.Controller.GetNetwork("bridge");
        Assert.That(h.HostLinks(), Does.Contain("cnm0"));
        var (s1, e1) = await h.ContainerAsync(bridge, "c1");
        Assert.That(BridgeHarness.Ping(s1.Key, bridge.IPv4Info[0].Gateway!.Value.Address.ToString()), Is.True);
        await s1.DeleteAsync();
        await h.Controller.WaitForTeardownsAsync();

        // The default network is pre-defined: its removal is refused, and its bridge, address and rules stay.
        var rules = BridgeHarness.Rules(h.Host.Path);
        var error = await Assert.CatchAsync(async () => await bridge.DeleteAsync());
        Assert.That(error, Is.InstanceOf<CnmConflictException>(), error?.ToString());
        Assert.Multiple(() =>
        {
            Assert.That(((CnmException)error!).Code, Is.EqualTo(CnmErrorCodes.PreDefinedNetwork));
            Assert.That(h.Controller.GetNetwork("bridge"), Is.SameAs(bridge));
            Assert.That(h.HostLinks(), Is.EquivalentTo(new[] { "lo", "cnm0" }));
            Assert.That(BridgeHarness.Rules(h.Host.Path), Is.EquivalentTo(rules));
            Assert.That(e1.Network.Endpoints, Is.Empty);
        });
    }
}
