using System.Net;
using CnmSharp.Core.Persistence;
using CnmSharp.Drivers;
using CnmSharp.Ipam;
using CnmSharp.Sandboxes;
using Moq;

namespace CnmSharp.Tests.Core;

/// <summary>Issue 11, "what the contracts lack": node discovery, network allocation, request replay, per-family
/// gateway election and the pool capacity check behind the IPAM contract, each as the core now calls it.</summary>
public sealed class ContractWiringTests : ControllerTestBase
{
    private static readonly DriverCapability GlobalConnectivity = new(DriverScope.Local, DriverScope.Global);
    private static readonly DriverCapability GlobalData = new(DriverScope.Global, DriverScope.Global);

    [Test]
    public async Task A_global_connectivity_driver_learns_the_self_node_at_start_and_nodes_added_or_removed_later()
    {
        var global = F.AddDriver("overlayish", GlobalConnectivity, m => m.As<IDiscoveryAwareDriver>());
        var aware = global.As<IDiscoveryAwareDriver>();
        var local = F.AddDriver("localish", DriverCapability.LocalScope, m => m.As<IDiscoveryAwareDriver>());
        var localAware = local.As<IDiscoveryAwareDriver>();
        F.Configure = o => o.AdvertiseAddress = "10.99.0.1";

        var c = await F.StartAsync();
        aware.Verify(d => d.DiscoverNewAsync(new NodeDiscovery("10.99.0.1", "", true), It.IsAny<CancellationToken>()), Times.Once);

        await c.AddNodeAsync("10.99.0.2", "10.99.0.2");
        await c.AddNodeAsync("10.99.0.2", "10.99.0.2");
        await c.RemoveNodeAsync("10.99.0.2");
        await c.RemoveNodeAsync("10.99.0.1");

        aware.Verify(d => d.DiscoverNewAsync(new NodeDiscovery("10.99.0.2", "10.99.0.2", false), It.IsAny<CancellationToken>()), Times.Once, "a node already known is not announced twice");
        aware.Verify(d => d.DiscoverDeleteAsync(new NodeDiscovery("10.99.0.2", "10.99.0.2", false), It.IsAny<CancellationToken>()), Times.Once);
        aware.Verify(d => d.DiscoverDeleteAsync(It.Is<DiscoveryEvent>(e => ((NodeDiscovery)e).Self), It.IsAny<CancellationToken>()), Times.Never, "the node itself never leaves");
        localAware.Verify(d => d.DiscoverNewAsync(It.IsAny<DiscoveryEvent>(), It.IsAny<CancellationToken>()), Times.Never, "local connectivity: no discovery");
        Assert.That(c.KnownNodes.Select(n => n.Address), Is.EqualTo(new[] { "10.99.0.1" }));
        await ThrowsAsync<CnmInvalidArgumentException>(() => c.AddNodeAsync("not-an-ip").AsTask(), CnmErrorCodes.InvalidAddress);
    }

    [Test]
    public async Task A_driver_registered_after_start_learns_the_known_nodes_and_a_refusal_is_only_logged()
    {
        var c = await F.StartAsync();
        await c.AddNodeAsync("10.99.0.3");
        var driver = new Mock<INetworkDriver>();
        driver.Setup(d => d.Capability).Returns(GlobalConnectivity);
        var aware = driver.As<IDiscoveryAwareDriver>();
        aware.Setup(d => d.DiscoverNewAsync(It.IsAny<DiscoveryEvent>(), It.IsAny<CancellationToken>())).ThrowsAsync(new CnmUnavailableException(CnmErrorCodes.PluginUnavailable, "plugin", "down"));

        await c.RegisterDriverAsync(new FakeDriverFactory("late", driver.Object));

        aware.Verify(d => d.DiscoverNewAsync(new NodeDiscovery("127.0.0.1", "", true), It.IsAny<CancellationToken>()), Times.Once);
        aware.Verify(d => d.DiscoverNewAsync(new NodeDiscovery("10.99.0.3", "", false), It.IsAny<CancellationToken>()), Times.Once);
        Assert.That(c.Drivers, Does.Contain("late"));
    }

    [Test]
    public async Task A_global_data_scope_allocator_allocates_before_create_passes_its_options_on_and_frees_after_delete()
    {
        F.GlobalStore = new CnmSharp.Store.InMemoryKeyValueStore(); // a global-scope network needs the cluster's store
        var driver = F.AddDriver("globalish", GlobalData, m => m.As<INetworkAllocatorDriver>());
        var allocator = driver.As<INetworkAllocatorDriver>();
        var order = new List<string>();
        allocator.Setup(a => a.AllocateNetworkAsync(It.IsAny<string>(), It.IsAny<IReadOnlyDictionary<string, string>>(), It.IsAny<IReadOnlyList<IpamData>>(), It.IsAny<IReadOnlyList<IpamData>>(), It.IsAny<CancellationToken>()))
            .Callback(() => order.Add("allocate"))
            .ReturnsAsync(new Dictionary<string, string> { ["com.docker.network.driver.overlay.vxlanid_list"] = "4097" });
        NetworkCreateRequest? created = null;
        driver.Setup(d => d.CreateNetworkAsync(It.IsAny<NetworkCreateRequest>(), It.IsAny<CancellationToken>()))
            .Callback<NetworkCreateRequest, CancellationToken>((r, _) => { created = r; order.Add("create"); })
            .Returns(ValueTask.CompletedTask);
        driver.Setup(d => d.DeleteNetworkAsync(It.IsAny<string>(), It.IsAny<CancellationToken>())).Callback(() => order.Add("delete")).Returns(ValueTask.CompletedTask);
        allocator.Setup(a => a.FreeNetworkAsync(It.IsAny<string>(), It.IsAny<CancellationToken>())).Callback(() => order.Add("free")).Returns(ValueTask.CompletedTask);
        var c = await F.StartAsync();

        var n = await c.CreateNetworkAsync("g", "globalish", new NetworkCreateOptions { DriverOptions = new Dictionary<string, string> { ["user"] = "1" }, IPv4Config = [new IpamConfig { Subnet = "10.98.0.0/24" }] });

        allocator.Verify(a => a.AllocateNetworkAsync(n.Id, It.Is<IReadOnlyDictionary<string, string>>(o => o["user"] == "1"), It.Is<IReadOnlyList<IpamData>>(d => d.Single().Pool.ToString() == "10.98.0.0/24"), It.IsAny<IReadOnlyList<IpamData>>(), It.IsAny<CancellationToken>()), Times.Once);
        Assert.Multiple(() =>
        {
            Assert.That(created!.DriverOptions["com.docker.network.driver.overlay.vxlanid_list"], Is.EqualTo("4097"));
            Assert.That(n.DriverOptions["com.docker.network.driver.overlay.vxlanid_list"], Is.EqualTo("4097"), "kept with the network");
            Assert.That(n.Scope, Is.EqualTo("global"));
        });

        await n.DeleteAsync();
        Assert.That(order, Is.EqualTo(new[] { "allocate", "create", "delete", "free" }));
    }

    [Test]
    public async Task A_failed_create_frees_the_allocation_and_a_local_scope_allocator_is_never_called()
    {
        F.GlobalStore = new CnmSharp.Store.InMemoryKeyValueStore(); // a global-scope network needs the cluster's store
        var driver = F.AddDriver("globalish", GlobalData, m => m.As<INetworkAllocatorDriver>());
        var allocator = driver.As<INetworkAllocatorDriver>();
        allocator.Setup(a => a.AllocateNetworkAsync(It.IsAny<string>(), It.IsAny<IReadOnlyDictionary<string, string>>(), It.IsAny<IReadOnlyList<IpamData>>(), It.IsAny<IReadOnlyList<IpamData>>(), It.IsAny<CancellationToken>()))
            .ReturnsAsync(new Dictionary<string, string>());
        driver.Setup(d => d.CreateNetworkAsync(It.IsAny<NetworkCreateRequest>(), It.IsAny<CancellationToken>())).ThrowsAsync(new CnmInvalidArgumentException(CnmErrorCodes.InvalidOption, "x", "no"));
        var localAllocator = F.AddDriver("localish", DriverCapability.LocalScope, m => m.As<INetworkAllocatorDriver>()).As<INetworkAllocatorDriver>();
        var c = await F.StartAsync();

        await ThrowsAsync<CnmInvalidArgumentException>(() => c.CreateNetworkAsync("g", "globalish").AsTask(), CnmErrorCodes.InvalidOption);
        await c.CreateNetworkAsync("l", "localish");

        allocator.Verify(a => a.FreeNetworkAsync(It.IsAny<string>(), It.IsAny<CancellationToken>()), Times.Once);
        localAllocator.Verify(a => a.AllocateNetworkAsync(It.IsAny<string>(), It.IsAny<IReadOnlyDictionary<string, string>>(), It.IsAny<IReadOnlyList<IpamData>>(), It.IsAny<IReadOnlyList<IpamData>>(), It.IsAny<CancellationToken>()), Times.Never);
        Assert.That(await F.KeysAsync(CoreStore.IntentPrefix), Is.Empty);
        Assert.That(c.FindNetworkByName("g"), Is.Null);
    }

    [Test]
    public async Task Each_family_elects_its_own_gateway_endpoint()
    {
        var six = F.AddDriver("six", DriverCapability.LocalScope);
        six.Setup(d => d.JoinAsync(It.IsAny<JoinRequest>(), It.IsAny<IJoinInfo>(), It.IsAny<CancellationToken>()))
            .Callback<JoinRequest, IJoinInfo, CancellationToken>((r, j, _) =>
            {
                j.SetInterfaceName("six" + r.EndpointId[..7], "eth");
                j.SetGatewayIPv6(IPAddress.Parse("fd00:66::1"));
            })
            .Returns(ValueTask.CompletedTask);
        var c = await F.StartAsync();
        var v4 = await (await c.CreateNetworkAsync("a4", ControllerFixture.DriverName, Subnet("10.97.0.0/24"))).CreateEndpointAsync("e4");
        var v6 = await (await c.CreateNetworkAsync("b6", "six", new NetworkCreateOptions { EnableIPv6 = true, IPv6Config = [new IpamConfig { Subnet = "fd00:66::/64" }] })).CreateEndpointAsync("e6");
        var sb = await c.CreateSandboxAsync("c1");

        await v4.JoinAsync(sb);
        await v6.JoinAsync(sb);

        Assert.Multiple(() =>
        {
            Assert.That(sb.GatewayEndpoint, Is.SameAs(v4), "external connectivity stays with the IPv4 gateway");
            Assert.That(sb.GatewayEndpointIPv6, Is.SameAs(v6));
            Assert.That(F.CoreRoutes[sb.Key], Is.EquivalentTo(new[]
            {
                new SandboxGatewayRoute(v4.InterfaceName!, IPAddress.Parse("10.97.0.1")),
                new SandboxGatewayRoute(v6.InterfaceName!, IPAddress.Parse("fd00:66::1")),
            }));
        });

        await v6.LeaveAsync(sb);
        Assert.That(F.CoreRoutes[sb.Key], Is.EqualTo(new[] { new SandboxGatewayRoute(v4.InterfaceName!, IPAddress.Parse("10.97.0.1")) }));
        await v4.LeaveAsync(sb);
        await v6.JoinAsync(sb);
        Assert.Multiple(() =>
        {
            Assert.That(sb.GatewayEndpoint, Is.SameAs(v6), "alone, the IPv6 gateway endpoint provides external connectivity");
            Assert.That(F.CoreRoutes[sb.Key], Is.EqualTo(new[] { new SandboxGatewayRoute(v6.InterfaceName!, IPAddress.Parse("fd00:66::1")) }));
        });
        F.External.Verify(e => e.ProgramExternalConnectivityAsync(It.IsAny<string>(), v4.Id, It.IsAny<CancellationToken>()), Times.Once);
    }

    [Test]
    public async Task The_pool_capacity_rule_is_the_ipams_an_ipam_without_it_gets_the_request()
    {
        var ipam = ControllerFixture.StrictIpam();
        ipam.Setup(i => i.RequestPoolAsync(It.Is<PoolRequest>(r => r.Pool == "10.96.0.1/32"), It.IsAny<CancellationToken>()))
            .ReturnsAsync(new AllocatedPool("p32", IPNetwork.Parse("10.96.0.1/32"), new Dictionary<string, string> { [NetLabels.RequestAddressTypeGateway] = "10.96.0.1/32" }));
        F.AddIpam(ipam.Object);
        var c = await F.StartAsync();

        var n = await c.CreateNetworkAsync("p2p", ControllerFixture.DriverName, new NetworkCreateOptions { IpamDriver = ControllerFixture.MockIpamName, IPv4Config = [new IpamConfig { Subnet = "10.96.0.1/32" }] });
        Assert.That(n.IPv4Info.Single().PoolId, Is.EqualTo("p32"), "a plugin IPAM decides what a /32 offers");

        await ThrowsAsync<CnmInvalidArgumentException>(() => c.CreateNetworkAsync("d32", ControllerFixture.DriverName, Subnet("10.96.1.1/32")).AsTask(), CnmErrorCodes.InvalidPool);
    }

    [Test]
    public async Task An_ipam_check_that_refuses_a_configuration_leaves_nothing_reserved()
    {
        var ipam = ControllerFixture.StrictIpam();
        ipam.As<IIpamPoolConfigurationCheck>().Setup(i => i.CheckPoolConfiguration(It.IsAny<string>(), It.Is<PoolConfiguration>(p => p.Subnet.ToString() == "10.95.0.0/24" && p.Gateway!.ToString() == "10.95.0.9")))
            .Throws(new CnmInvalidArgumentException(CnmErrorCodes.InvalidPool, "network", "too small for this IPAM"));
        F.AddIpam(ipam.Object);
        var c = await F.StartAsync();
        var keys = await F.KeysAsync(CoreStore.Root);

        await ThrowsAsync<CnmInvalidArgumentException>(() => c.CreateNetworkAsync("n", ControllerFixture.DriverName, new NetworkCreateOptions { IpamDriver = ControllerFixture.MockIpamName, IPv4Config = [new IpamConfig { Subnet = "10.95.0.0/24", Gateway = "10.95.0.9" }] }).AsTask(), CnmErrorCodes.InvalidPool);

        Assert.That(await F.KeysAsync(CoreStore.Root), Is.EqualTo(keys));
        ipam.Verify(i => i.RequestPoolAsync(It.IsAny<PoolRequest>(), It.IsAny<CancellationToken>()), Times.Never);
    }

    [Test]
    public async Task An_ipam_that_requires_replay_gets_every_pool_and_address_again_at_start_and_when_it_asks()
    {
        var ipam = ReplayIpam(out var requests, out var handler);
        F.AddIpam(ipam.Object);
        var c = await F.StartAsync();
        var n = await c.CreateNetworkAsync("r", ControllerFixture.DriverName, new NetworkCreateOptions
        {
            IpamDriver = ControllerFixture.MockIpamName,
            IPv4Config = [new IpamConfig { Subnet = "10.94.0.0/24", IPRange = "10.94.0.128/25", Gateway = "10.94.0.1", AuxAddresses = new Dictionary<string, string> { ["router"] = "10.94.0.2" } }],
        });
        var ep = await n.CreateEndpointAsync("ep");
        var created = requests.ToArray();
        await c.DisposeAsync();
        requests.Clear();

        var c2 = await F.StartAsync();
        var atStart = requests.ToArray();
        requests.Clear();
        await handler()!(CancellationToken.None);

        var expected = new[]
        {
            "pool 10.94.0.0/24 sub 10.94.0.128/25 owner network:" + n.Id,
            "address 10.94.0.1 gateway owner network:" + n.Id,
            "address 10.94.0.2 owner network:" + n.Id,
            "address " + ep.Address!.Value.Address + " mac " + ep.MacAddress!.ToString() + " owner " + ep.Id,
        };
        Assert.Multiple(() =>
        {
            Assert.That(created, Has.Length.EqualTo(4), string.Join("; ", created));
            Assert.That(atStart, Is.EqualTo(expected));
            Assert.That(requests, Is.EqualTo(expected), "the IPAM's own request replays the same");
            Assert.That(c2.FindNetworkByName("r")!.FindEndpointByName("ep"), Is.Not.Null);
        });
    }

    private static Mock<IIpamDriver> ReplayIpam(out List<string> requests, out Func<Func<CancellationToken, ValueTask>?> handler)
    {
        var log = new List<string>();
        Func<CancellationToken, ValueTask>? replay = null;
        var ipam = new Mock<IIpamDriver>(MockBehavior.Strict);
        ipam.Setup(i => i.GetDefaultAddressSpacesAsync(It.IsAny<CancellationToken>())).ReturnsAsync(new AddressSpaces("L", "G"));
        ipam.Setup(i => i.Capability).Returns(new IpamCapability(RequiresMacAddress: true, RequiresRequestReplay: true));
        ipam.As<IIpamRequestReplay>().Setup(i => i.SetReplayHandler(It.IsAny<Func<CancellationToken, ValueTask>>())).Callback<Func<CancellationToken, ValueTask>>(h => replay = h);
        ipam.Setup(i => i.RequestPoolAsync(It.IsAny<PoolRequest>(), It.IsAny<CancellationToken>()))
            .Callback<PoolRequest, CancellationToken>((r, _) => { lock (log) { log.Add($"pool {r.Pool} sub {r.SubPool} owner {r.Options[NetLabels.IpamOwner]}"); } })
            .ReturnsAsync(new AllocatedPool("L/10.94.0.0/24", IPNetwork.Parse("10.94.0.0/24"), new Dictionary<string, string>()));
        var next = 128;
        ipam.Setup(i => i.RequestAddressAsync(It.IsAny<string>(), It.IsAny<IPAddress?>(), It.IsAny<IReadOnlyDictionary<string, string>>(), It.IsAny<CancellationToken>()))
            .Returns<string, IPAddress?, IReadOnlyDictionary<string, string>, CancellationToken>((_, a, o, _) =>
            {
                var address = a ?? IPAddress.Parse("10.94.0." + Interlocked.Increment(ref next));
                var kind = o.TryGetValue(NetLabels.RequestAddressType, out var t) && t == NetLabels.RequestAddressTypeGateway ? " gateway" : "";
                var mac = o.TryGetValue(NetLabels.MacAddress, out var m) ? " mac " + m.Replace(":", "-", StringComparison.Ordinal).ToUpperInvariant().Replace("-", "", StringComparison.Ordinal) : "";
                lock (log)
                {
                    log.Add($"address {address}{kind}{mac} owner {o[NetLabels.IpamOwner]}");
                }

                return ValueTask.FromResult(new AllocatedAddress(new CidrAddress(address, 24), new Dictionary<string, string>()));
            });
        requests = log;
        handler = () => replay;
        return ipam;
    }
}
