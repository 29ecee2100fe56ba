using System.Net;
using CnmSharp.Core.Persistence;
using CnmSharp.Drivers;
using CnmSharp.Ipam;
using CnmSharp.Ipam.Default;
using CnmSharp.Sandboxes;
using CnmSharp.Store;
using Microsoft.Extensions.Logging.Abstractions;
using Moq;

namespace CnmSharp.Tests.Core;

/// <summary>What a controller finds in its store at start: state from before, unfinished operations, leaks.</summary>
public sealed class RecoveryTests : ControllerTestBase
{
    private const string NetworkId = "1111111111111111111111111111111111111111111111111111111111111111";
    private const string EndpointId = "2222222222222222222222222222222222222222222222222222222222222222";

    private sealed record EndpointView(string Id, string Network, string Name, string? Address, string? AddressIPv6, string? Mac, string? Interface, string? Sandbox);

    private static EndpointView[] Endpoints(NetworkController c) =>
        c.Networks.SelectMany(n => n.Endpoints)
            .Select(e => new EndpointView(e.Id, e.Network.Name, e.Name, e.Address?.ToString(), e.AddressIPv6?.ToString(), e.MacAddress?.ToString(), e.InterfaceName, e.Sandbox?.Id))
            .OrderBy(e => e.Id, StringComparer.Ordinal)
            .ToArray();

    private static string[] Networks(NetworkController c) =>
        c.Networks.Select(n => $"{n.Id} {n.Name} {n.Driver} {string.Join(",", n.IPv4Info.Concat(n.IPv6Info).Select(i => $"{i.PoolId}|{i.Pool}|{i.Gateway}"))}").ToArray();

    private static string[] Sandboxes(NetworkController c) =>
        c.Sandboxes.Select(s => $"{s.Id} {s.ContainerId} {s.Key} {s.GatewayEndpoint?.Id} {string.Join(",", s.Endpoints.Select(e => e.Id))}").ToArray();

    private static ValueTask<SqliteKeyValueStore> OpenSqliteAsync(string path) => SqliteKeyValueStore.OpenAsync(new SqliteStoreOptions { Path = path });

    private async Task<DefaultIpam> SideIpamAsync(IKeyValueStore? store = null) =>
        (DefaultIpam)await new DefaultIpamFactory().CreateAsync(new DriverContext
        {
            ControllerId = "side",
            RunDirectory = F.Directory,
            Store = store ?? F.Store,
            StoreKeyPrefix = CoreStore.IpamPrefix + IpamNames.Default + "/",
            LoggerFactory = NullLoggerFactory.Instance,
        });

    [Test]
    public async Task A_restarted_controller_on_the_same_SQLite_file_sees_the_same_state_and_allocates_no_duplicate()
    {
        var path = Path.Combine(F.Directory, "state", "cnm.db");
        var storeA = await OpenSqliteAsync(path);
        var a = await F.StartAsync(storeA);
        var web = await a.CreateNetworkAsync("web", ControllerFixture.DriverName, Subnet("10.70.0.0/24"));
        var dual = await a.CreateNetworkAsync("dual", ControllerFixture.DriverName, new NetworkCreateOptions { EnableIPv6 = true });
        var addressesA = new List<IPAddress>();
        for (var i = 0; i < 6; i++)
        {
            addressesA.Add((await web.CreateEndpointAsync("w" + i)).Address!.Value.Address);
        }

        var d0 = await dual.CreateEndpointAsync("d0");
        var s1 = await a.CreateSandboxAsync("c1");
        var s2 = await a.CreateSandboxAsync("c2");
        await web.FindEndpointByName("w0")!.JoinAsync(s1);
        await d0.JoinAsync(s1);
        await web.FindEndpointByName("w1")!.JoinAsync(s2);
        await web.FindEndpointByName("w3")!.DeleteAsync();
        addressesA.Add(web.IPv4Info[0].Gateway!.Value.Address);
        var (id, networks, endpoints, sandboxes) = (a.Id, Networks(a), Endpoints(a), Sandboxes(a));
        Assert.That(s1.GatewayEndpoint, Is.SameAs(d0));
        await a.DisposeAsync();
        await storeA.DisposeAsync();

        await using var storeB = await OpenSqliteAsync(path);
        var b = await F.StartAsync(storeB);

        Assert.Multiple(() =>
        {
            Assert.That(b.Id, Is.EqualTo(id));
            Assert.That(Networks(b), Is.EqualTo(networks));
            Assert.That(Endpoints(b), Is.EqualTo(endpoints));
            Assert.That(Sandboxes(b), Is.EqualTo(sandboxes));
            Assert.That(b.FindSandboxByContainerId("c1")!.GatewayEndpoint!.Id, Is.EqualTo(d0.Id));
        });

        var webB = b.GetNetwork("web");
        var addressesB = new List<IPAddress>();
        for (var i = 0; i < 20; i++)
        {
            addressesB.Add((await webB.CreateEndpointAsync("b" + i)).Address!.Value.Address);
        }

        Assert.Multiple(() =>
        {
            Assert.That(addressesB, Is.Unique);
            Assert.That(addressesB.Intersect(addressesA.Where(x => !x.Equals(IPAddress.Parse("10.70.0.5")))), Is.Empty, "w3's address was released, the others are live");
            Assert.That(addressesB, Does.Contain(IPAddress.Parse("10.70.0.5")), "the released address is reused");
        });

        // Joins survive: leaving on B works and the next join of the sandbox continues the interface numbering.
        var s1b = b.FindSandboxByContainerId("c1")!;
        var w0 = webB.FindEndpointByName("w0")!;
        await w0.LeaveAsync(s1b);
        await webB.FindEndpointByName("b0")!.JoinAsync(s1b);
        Assert.That(webB.FindEndpointByName("b0")!.InterfaceName, Is.EqualTo("eth2"));
    }

    [Test]
    public async Task The_controller_id_from_the_options_is_used_once_and_kept()
    {
        const string Id = "abcdefabcdefabcdefabcdefabcdefabcdefabcdefabcdefabcdefabcdefabcd";
        F.Configure = o => o.ControllerId = Id;
        var a = await F.StartAsync();
        await a.DisposeAsync();
        F.Configure = null;

        var b = await F.StartAsync();

        Assert.That((a.Id, b.Id), Is.EqualTo((Id, Id)));
    }

    private async Task PutIntentAsync(IntentRecord intent) =>
        await F.Store.PutAsync(CoreStore.IntentKey(intent.Id), CoreStore.Serialize(intent, CoreJsonContext.Default.IntentRecord));

    private Mock<IIpamDriver> LooseIpam()
    {
        var ipam = new Mock<IIpamDriver>();
        ipam.Setup(i => i.GetDefaultAddressSpacesAsync(It.IsAny<CancellationToken>()))
            .ReturnsAsync(new AddressSpaces(IpamNames.LocalDefaultAddressSpace, IpamNames.GlobalDefaultAddressSpace));
        ipam.Setup(i => i.Capability).Returns(new IpamCapability());
        F.AddIpam(ipam.Object);
        return ipam;
    }

    [Test]
    public async Task An_unfinished_network_create_is_rolled_back_at_start()
    {
        var ipam = LooseIpam();
        await PutIntentAsync(new IntentRecord
        {
            Id = "intent-net",
            Kind = IntentKind.CreateNetwork,
            NetworkId = NetworkId,
            Driver = ControllerFixture.DriverName,
            IpamDriver = ControllerFixture.MockIpamName,
            Pools = ["pool-a", "pool-b"],
            Addresses = [["pool-a", "10.90.0.1"], ["pool-b", "10.91.0.1"]],
        });

        var c = await F.StartAsync();

        F.Driver.Verify(d => d.DeleteNetworkAsync(NetworkId, It.IsAny<CancellationToken>()), Times.Once);
        ipam.Verify(i => i.ReleaseAddressAsync("pool-a", IPAddress.Parse("10.90.0.1"), It.IsAny<CancellationToken>()), Times.Once);
        ipam.Verify(i => i.ReleaseAddressAsync("pool-b", IPAddress.Parse("10.91.0.1"), It.IsAny<CancellationToken>()), Times.Once);
        ipam.Verify(i => i.ReleasePoolAsync("pool-a", It.IsAny<CancellationToken>()), Times.Once);
        ipam.Verify(i => i.ReleasePoolAsync("pool-b", It.IsAny<CancellationToken>()), Times.Once);
        var intents = await F.KeysAsync(CoreStore.IntentPrefix);
        Assert.Multiple(() =>
        {
            Assert.That(intents, Is.Empty);
            Assert.That(c.FindNetworkById(NetworkId), Is.Null);
        });
    }

    [Test]
    public async Task An_unfinished_endpoint_create_is_rolled_back_at_start()
    {
        var ipam = LooseIpam();
        await PutIntentAsync(new IntentRecord
        {
            Id = "intent-ep",
            Kind = IntentKind.CreateEndpoint,
            NetworkId = NetworkId,
            EndpointId = EndpointId,
            Driver = ControllerFixture.DriverName,
            IpamDriver = ControllerFixture.MockIpamName,
            Addresses = [["pool-a", "10.90.0.7"]],
        });

        await F.StartAsync();

        F.Driver.Verify(d => d.DeleteEndpointAsync(NetworkId, EndpointId, It.IsAny<CancellationToken>()), Times.Once);
        ipam.Verify(i => i.ReleaseAddressAsync("pool-a", IPAddress.Parse("10.90.0.7"), It.IsAny<CancellationToken>()), Times.Once);
        ipam.Verify(i => i.ReleasePoolAsync(It.IsAny<string>(), It.IsAny<CancellationToken>()), Times.Never);
        Assert.That(await F.KeysAsync(CoreStore.IntentPrefix), Is.Empty);
    }

    [Test]
    public async Task An_unfinished_join_is_rolled_back_at_start_and_the_endpoint_stays_usable()
    {
        var a = await F.StartAsync();
        var n = await a.CreateNetworkAsync("net", ControllerFixture.DriverName);
        var ep = await n.CreateEndpointAsync("ep");
        var sb = await a.CreateSandboxAsync("c1");
        await a.DisposeAsync();
        await PutIntentAsync(new IntentRecord { Id = "intent-join", Kind = IntentKind.Join, NetworkId = n.Id, EndpointId = ep.Id, SandboxId = sb.Id, Driver = ControllerFixture.DriverName });

        var b = await F.StartAsync();

        F.Driver.Verify(d => d.LeaveAsync(n.Id, ep.Id, It.IsAny<CancellationToken>()), Times.Once);
        Assert.That(await F.KeysAsync(CoreStore.IntentPrefix), Is.Empty);
        var epB = b.GetNetwork("net").FindEndpointByName("ep")!;
        Assert.That(epB.Sandbox, Is.Null);
        await epB.JoinAsync(b.FindSandboxByContainerId("c1")!);
        Assert.That(epB.InterfaceName, Is.EqualTo("eth0"));
    }

    [Test]
    public async Task A_join_that_crashed_after_turning_on_the_embedded_dns_gets_the_sandboxs_resolv_conf_back_at_start()
    {
        var a = await F.StartAsync();
        var ep = await (await a.CreateNetworkAsync("net", ControllerFixture.DriverName)).CreateEndpointAsync("ep");
        var sb = await a.CreateSandboxAsync("c1", new SandboxCreateOptions { DnsServers = ["10.9.9.9"] });
        var before = await File.ReadAllTextAsync(sb.ResolvConfPath);
        await a.DisposeAsync();

        // The resolv.conf the join had written for the embedded DNS before the crash, as a join writes it.
        await new CnmSharp.Sandboxes.Files.SandboxFiles().UpdateResolvConfAsync(
            sb.FilesDirectory,
            new CnmSharp.Sandboxes.Files.SandboxFileOptions { DnsServers = ["10.9.9.9"], UseEmbeddedDns = true });
        Assert.That(await File.ReadAllTextAsync(sb.ResolvConfPath), Does.Contain("nameserver 127.0.0.11"), "precondition: the join's file is there");
        await PutIntentAsync(new IntentRecord
        {
            Id = "intent-join",
            Kind = IntentKind.Join,
            NetworkId = ep.Network.Id,
            EndpointId = ep.Id,
            SandboxId = sb.Id,
            Driver = ControllerFixture.DriverName,
        });

        var b = await F.StartAsync();

        Assert.Multiple(async () =>
        {
            Assert.That(await File.ReadAllTextAsync(sb.ResolvConfPath), Is.EqualTo(before), "the sandbox's own servers are back, no 127.0.0.11");
            Assert.That(await F.KeysAsync(CoreStore.IntentPrefix), Is.Empty);
            Assert.That(b.FindSandboxByContainerId("c1")!.Endpoints, Is.Empty);
        });
    }

    [Test]
    public async Task A_join_that_crashed_after_taking_the_gateway_is_undone_at_start_interface_gateway_and_hosts_lines()
    {
        var a = await F.StartAsync();
        var old = await (await a.CreateNetworkAsync("a-old", ControllerFixture.DriverName)).CreateEndpointAsync("old");
        var taker = await (await a.CreateNetworkAsync("b-taker", ControllerFixture.DriverName)).CreateEndpointAsync("taker");
        var sb = await a.CreateSandboxAsync("c1");
        await old.JoinAsync(sb);
        var oldInterface = old.InterfaceName;
        var hosts = await File.ReadAllTextAsync(sb.HostsPath);
        await a.DisposeAsync();

        // The hosts line the join had written for the taker before the crash, as a join writes it.
        var takerLine = CnmSharp.Sandboxes.Files.HostsFile.ContainerEntries("c1", null, [taker.Address!.Value.Address]);
        await new CnmSharp.Sandboxes.Files.SandboxFiles().AddHostEntriesAsync(sb.FilesDirectory, takerLine);
        Assert.That(await File.ReadAllTextAsync(sb.HostsPath), Does.Contain(taker.Address!.Value.Address + "\t"), "precondition: the taker's line is there");

        // The crash: the driver made the interface and the core had recorded its names (and may have renamed it,
        // moved the gateway to it and written its hosts line) when the process died.
        await PutIntentAsync(new IntentRecord
        {
            Id = "intent-join",
            Kind = IntentKind.Join,
            NetworkId = taker.Network.Id,
            EndpointId = taker.Id,
            SandboxId = sb.Id,
            Driver = ControllerFixture.DriverName,
            Interface = new JoinInterfaceRecord { SourceName = "veth" + taker.Id[..7], DestinationName = "eth1", CreatedInSandbox = true },
        });
        F.RecordCalls();
        F.Netns.Invocations.Clear();
        F.External.Invocations.Clear();

        var b = await F.StartAsync();

        var removed = F.Netns.Invocations.Where(i => i.Method.Name == nameof(ISandboxNetworking.RemoveInterfaceAsync))
            .Select(i => ((SandboxInterface)i.Arguments[1]!).DestinationName).ToArray();
        Assert.Multiple(async () =>
        {
            Assert.That(removed, Is.EquivalentTo(new[] { "eth1", "veth" + taker.Id[..7] }), "the interface goes under either name it may have had");
            F.External.Verify(e => e.RevokeExternalConnectivityAsync(taker.Network.Id, taker.Id, It.IsAny<CancellationToken>()), Times.Once);
            F.External.Verify(e => e.ProgramExternalConnectivityAsync(old.Network.Id, old.Id, It.IsAny<CancellationToken>()), Times.Once);
            Assert.That(F.Calls, Does.Contain("netns.gateway " + oldInterface), "the default route is back on the rightful endpoint");
            F.Driver.Verify(d => d.LeaveAsync(taker.Network.Id, taker.Id, It.IsAny<CancellationToken>()), Times.Once);
            Assert.That(await File.ReadAllTextAsync(sb.HostsPath), Is.EqualTo(hosts), "the taker's hosts line is gone, the others kept");
            Assert.That(await F.KeysAsync(CoreStore.IntentPrefix), Is.Empty);
            Assert.That(b.FindSandboxByContainerId("c1")!.GatewayEndpoint!.Id, Is.EqualTo(old.Id));
        });
    }

    [Test]
    public async Task Networks_of_a_driver_registered_after_start_are_loaded_then_with_their_endpoints_and_joins()
    {
        // A plugin-like driver that only one of the two controllers has at start.
        var late = new Mock<INetworkDriver>();
        late.Setup(d => d.Capability).Returns(DriverCapability.LocalScope);
        await using var a = await F.NewBuilder().AddDriver(new FakeDriverFactory("late", late.Object)).BuildAsync();
        var n = await a.CreateNetworkAsync("plugged", "late", Subnet("10.85.0.0/24"));
        var joined = await n.CreateEndpointAsync("joined");
        var idle = await n.CreateEndpointAsync("idle");
        var sb = await a.CreateSandboxAsync("c1");
        await joined.JoinAsync(sb);
        await a.DisposeAsync();

        // A controller on the same store whose "late" driver (a plugin) is not there yet.
        await using var b = await F.NewBuilder().BuildAsync();
        Assert.Multiple(() =>
        {
            Assert.That(b.Networks.Select(x => x.Name), Does.Not.Contain("plugged"));
            Assert.That(b.FindSandboxByContainerId("c1")!.Endpoints, Is.Empty);
        });

        await b.RegisterDriverAsync(new FakeDriverFactory("late", late.Object));

        var nb = b.FindNetworkByName("plugged")!;
        var sbb = b.FindSandboxByContainerId("c1")!;
        Assert.Multiple(() =>
        {
            Assert.That(nb.Id, Is.EqualTo(n.Id));
            Assert.That(nb.Endpoints.Select(e => e.Id), Is.EqualTo(new[] { idle.Id, joined.Id }));
            Assert.That(sbb.Endpoints.Select(e => e.Id), Is.EqualTo(new[] { joined.Id }));
            Assert.That(nb.FindEndpointByName("joined")!.Address, Is.EqualTo(joined.Address));
        });

        // It works as any network: the idle endpoint joins, the network goes once empty.
        await nb.FindEndpointByName("idle")!.JoinAsync(sbb);
        await sbb.DeleteAsync();
        await nb.DeleteAsync();
        Assert.That(await F.KeysAsync(CoreStore.EndpointPrefix), Is.Empty);
    }

    [Test]
    public async Task A_sandbox_whose_namespace_is_gone_is_removed_at_start_with_its_endpoints()
    {
        var a = await F.StartAsync();
        var n = await a.CreateNetworkAsync("net", ControllerFixture.DriverName, Subnet("10.75.0.0/24"));
        var joined = await n.CreateEndpointAsync("joined");
        var free = await n.CreateEndpointAsync("free");
        var stale = await a.CreateSandboxAsync("stale");
        var alive = await a.CreateSandboxAsync("alive");
        await joined.JoinAsync(stale);
        await a.DisposeAsync();
        F.Netns.Setup(x => x.NamespaceExistsAsync(stale.Key, It.IsAny<CancellationToken>())).ReturnsAsync(false);

        var b = await F.StartAsync();

        var nb = b.GetNetwork("net");
        var sandboxKeys = await F.KeysAsync(CoreStore.SandboxKey(stale.Id));
        var endpointKeys = await F.KeysAsync(CoreStore.EndpointKey(n.Id, joined.Id));
        Assert.Multiple(() =>
        {
            Assert.That(b.Sandboxes.Select(s => s.Id), Is.EqualTo(new[] { alive.Id }));
            Assert.That(nb.Endpoints.Select(e => e.Id), Is.EqualTo(new[] { free.Id }));
            Assert.That(sandboxKeys, Is.Empty);
            Assert.That(endpointKeys, Is.Empty);
        });
        F.Driver.Verify(d => d.LeaveAsync(n.Id, joined.Id, It.IsAny<CancellationToken>()), Times.Once);
        F.Driver.Verify(d => d.DeleteEndpointAsync(n.Id, joined.Id, It.IsAny<CancellationToken>()), Times.Once);
        var reuse = await nb.CreateEndpointAsync("reuse", new EndpointCreateOptions { IPv4Address = joined.Address!.Value.Address });
        Assert.That(reuse.Address, Is.EqualTo(joined.Address));
    }

    [Test]
    public async Task A_stale_sandbox_that_cannot_be_removed_does_not_stop_the_controller_from_starting()
    {
        var a = await F.StartAsync();
        var n = await a.CreateNetworkAsync("net", ControllerFixture.DriverName);
        var ep = await n.CreateEndpointAsync("ep");
        var stale = await a.CreateSandboxAsync("stale");
        await ep.JoinAsync(stale);
        await a.DisposeAsync();
        F.Netns.Setup(x => x.NamespaceExistsAsync(stale.Key, It.IsAny<CancellationToken>())).ReturnsAsync(false);
        F.Driver.Setup(d => d.LeaveAsync(n.Id, ep.Id, It.IsAny<CancellationToken>()))
            .Returns(() => ValueTask.FromException(new CnmInternalException(CnmErrorCodes.KernelError, "veth", "leave failed")));

        var b = await F.StartAsync();

        Assert.That(b.GetNetwork("net").FindEndpointById(ep.Id), Is.Not.Null);
        Assert.That(F.Logs.GetSnapshot().Where(r => r.Exception is CnmInternalException { Code: CnmErrorCodes.KernelError }), Is.Not.Empty, "the failure is logged");
        F.Driver.Setup(d => d.LeaveAsync(n.Id, ep.Id, It.IsAny<CancellationToken>())).Returns(ValueTask.CompletedTask);
        await b.FindSandboxByContainerId("stale")!.DeleteAsync();
        Assert.That(b.Sandboxes, Is.Empty);
    }

    [Test]
    public async Task An_endpoint_joined_to_a_sandbox_that_no_longer_exists_can_be_force_deleted()
    {
        var a = await F.StartAsync();
        var n = await a.CreateNetworkAsync("net", ControllerFixture.DriverName);
        var ep = await n.CreateEndpointAsync("ep");
        var sb = await a.CreateSandboxAsync("lost");
        await ep.JoinAsync(sb);
        await a.DisposeAsync();
        await F.Store.DeleteAsync(CoreStore.SandboxKey(sb.Id));

        var b = await F.StartAsync();
        var orphan = b.GetNetwork("net").FindEndpointById(ep.Id)!;
        Assert.That(orphan.Sandbox, Is.Null);

        await ThrowsAsync<CnmConflictException>(() => orphan.DeleteAsync().AsTask(), CnmErrorCodes.ActiveContainer);
        await orphan.DeleteAsync(force: true);

        F.Driver.Verify(d => d.LeaveAsync(n.Id, ep.Id, It.IsAny<CancellationToken>()), Times.Once);
        F.Driver.Verify(d => d.DeleteEndpointAsync(n.Id, ep.Id, It.IsAny<CancellationToken>()), Times.Once);
        await b.GetNetwork("net").DeleteAsync();
        Assert.That(b.FindNetworkByName("net"), Is.Null);
    }

    [Test]
    public async Task Invalid_builder_options_are_refused_at_build()
    {
        F.Configure = o => o.ControllerId = "not-a-controller-id";
        await ThrowsAsync<CnmInvalidArgumentException>(() => F.StartAsync(), CnmErrorCodes.InvalidOption);
    }

    [Test]
    public async Task The_IPAM_sweep_releases_addresses_without_a_live_owner_and_pools_no_network_uses()
    {
        var a = await F.StartAsync();
        var n = await a.CreateNetworkAsync("net", ControllerFixture.DriverName, new NetworkCreateOptions
        {
            IPv4Config = [new IpamConfig { Subnet = "10.80.0.0/24", AuxAddresses = new Dictionary<string, string> { ["aux"] = "10.80.0.250" } }],
        });
        var ep = await n.CreateEndpointAsync("ep");
        await a.DisposeAsync();
        var poolId = n.IPv4Info[0].PoolId;
        var side = await SideIpamAsync();
        var ownerOf = new Dictionary<string, string> { [NetLabels.IpamOwner] = "ghost" };
        await side.RequestAddressAsync(poolId, IPAddress.Parse("10.80.0.77"), ownerOf);
        await side.RequestAddressAsync(poolId, IPAddress.Parse("10.80.0.78"), new Dictionary<string, string>());
        var orphan = await side.RequestPoolAsync(new PoolRequest { AddressSpace = IpamNames.LocalDefaultAddressSpace, Pool = "10.81.0.0/24" });
        await side.RequestAddressAsync(orphan.PoolId, null, ownerOf);

        var b = await F.StartAsync();

        var check = await SideIpamAsync();
        var left = (await check.GetAllocationsAsync(poolId)).Select(x => x.Address.ToString()).ToArray();
        var pools = await check.GetPoolIdsAsync();
        Assert.Multiple(() =>
        {
            Assert.That(left, Is.EquivalentTo(new[] { "10.80.0.1", "10.80.0.250", ep.Address!.Value.Address.ToString(), "10.80.0.78" }), "only the ghost-owned address goes; unowned ones are left alone");
            Assert.That(pools, Is.EquivalentTo(new[] { poolId }));
        });
        var again = await b.CreateNetworkAsync("again", ControllerFixture.DriverName, Subnet("10.81.0.0/24"));
        Assert.That(again.IPv4Info[0].Gateway.ToString(), Is.EqualTo("10.81.0.1/24"));
    }

    [Test]
    public async Task The_IPAM_sweep_keeps_the_pools_of_a_network_whose_driver_is_not_registered_yet()
    {
        await using var plugin = new ControllerFixture();
        plugin.AddDriver("plugin", DriverCapability.LocalScope);
        plugin.Store = F.Store;
        var a = await plugin.StartAsync(F.Store);
        var n = await a.CreateNetworkAsync("pluginnet", "plugin", Subnet("10.85.0.0/24"));
        var ep = await n.CreateEndpointAsync("ep");
        await a.DisposeAsync();
        plugin.Store = new InMemoryKeyValueStore();

        // Restarted without the plugin driver: the network is not loaded, but it still exists in the store.
        var b = await F.StartAsync();

        var check = await SideIpamAsync();
        var pools = await check.GetPoolIdsAsync();
        var left = (await check.GetAllocationsAsync(n.IPv4Info[0].PoolId)).Select(x => x.Address).ToArray();
        Assert.Multiple(() =>
        {
            Assert.That(pools, Does.Contain(n.IPv4Info[0].PoolId));
            Assert.That(left, Does.Contain(ep.Address!.Value.Address));
        });
        var ex = await CatchAsync(() => b.CreateNetworkAsync("thief", ControllerFixture.DriverName, Subnet("10.85.0.0/24")).AsTask());
        Assert.That(ex, Is.InstanceOf<CnmConflictException>());
    }

    [Test]
    public async Task Default_networks_are_created_once_on_a_fresh_store()
    {
        var a = await F.StartAsync();
        var ids = a.Networks.Select(n => (n.Name, n.Id)).ToArray();
        await a.DisposeAsync();

        var b = await F.StartAsync();

        Assert.Multiple(() =>
        {
            Assert.That(ids.Select(x => x.Name), Is.EquivalentTo(new[] { "host", "none" }), "bridge has no driver here");
            Assert.That(b.Networks.Select(n => (n.Name, n.Id)), Is.EquivalentTo(ids));
        });
    }

    [Test]
    public async Task A_store_that_has_none_and_host_does_not_get_them_again_even_if_the_flag_is_lost()
    {
        var a = await F.StartAsync();
        var ids = a.Networks.Select(n => n.Id).ToArray();
        await a.DisposeAsync();
        await F.Store.PutAsync(CoreStore.ControllerKey, CoreStore.Serialize(new ControllerRecord { Id = a.Id, DefaultsCreated = false }, CoreJsonContext.Default.ControllerRecord));

        var b = await F.StartAsync();

        Assert.That(b.Networks.Select(n => n.Id), Is.EquivalentTo(ids));
    }

    [Test]
    public async Task No_default_networks_when_turned_off()
    {
        F.Configure = o => o.CreateDefaultNetworks = false;
        var c = await F.StartAsync();

        Assert.That(c.Networks, Is.Empty);
    }
}
