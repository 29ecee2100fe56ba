using System.Net;
using CnmSharp.Core.Persistence;
using CnmSharp.Drivers;
using CnmSharp.Sandboxes;
using CnmSharp.Testing;
using Microsoft.Extensions.Logging;
using Moq;

namespace CnmSharp.Tests.Core;

/// <summary>
/// The core removes only default routes it installed. The "l3" driver does what the ipvlan driver does in l3 mode:
/// it disables the gateway service and reports connected default routes (0.0.0.0/0 and ::/0) on its interface instead
/// of a gateway. The test driver beside it reports a gateway, as the bridge does.
/// </summary>
public sealed class RouteOwnershipTests : ControllerTestBase
{
    private const string L3 = "l3";
    private Mock<INetworkDriver> _l3 = null!;
    private NetworkController _c = null!;

    private static readonly StaticRoute[] s_l3Routes =
    [
        new(IPNetwork.Parse("0.0.0.0/0"), RouteType.Connected, null),
        new(IPNetwork.Parse("::/0"), RouteType.Connected, null),
    ];

    [SetUp]
    public async Task StartController()
    {
        _l3 = F.AddDriver(L3, DriverCapability.LocalScope);
        _l3.Setup(d => d.JoinAsync(It.IsAny<JoinRequest>(), It.IsAny<IJoinInfo>(), It.IsAny<CancellationToken>()))
            .Callback<JoinRequest, IJoinInfo, CancellationToken>((r, j, _) =>
            {
                j.SetInterfaceName("l3" + r.EndpointId[..7], "eth", InterfacePlacement.Sandbox);
                j.DisableGatewayService();
                foreach (var route in s_l3Routes)
                {
                    j.AddStaticRoute(route);
                }
            })
            .Returns(ValueTask.CompletedTask);
        _c = await F.StartAsync();
    }

    private async Task<Endpoint> EndpointAsync(string network, string driver)
    {
        var n = _c.FindNetworkByName(network) ?? await _c.CreateNetworkAsync(network, driver);
        return await n.CreateEndpointAsync("ep" + n.Endpoints.Count);
    }

    private int GatewayRouteChanges => F.Netns.Invocations.Count(i => i.Method.Name == nameof(ISandboxNetworking.ChangeGatewayRoutesAsync));

    [Test]
    public async Task An_l3_endpoint_alone_gets_its_own_default_routes_and_the_core_installs_or_removes_none()
    {
        var l3 = await EndpointAsync("l3net", L3);
        var sb = await _c.CreateSandboxAsync("c1");

        await l3.JoinAsync(sb);
        await l3.LeaveAsync(sb);
        await l3.JoinAsync(sb);

        F.Netns.Verify(x => x.AddInterfaceAsync(sb.Key, It.Is<SandboxInterface>(i => i.Routes.SequenceEqual(s_l3Routes)), It.IsAny<CancellationToken>()), Times.Exactly(2));
        Assert.Multiple(() =>
        {
            Assert.That(GatewayRouteChanges, Is.Zero, "no default route of the core's to add, none to remove");
            Assert.That(sb.GatewayEndpoint, Is.Null);
            Assert.That(l3.StaticRoutes, Is.EqualTo(s_l3Routes));
            Assert.That(F.Logs.GetSnapshot().Where(r => r.Level == LogLevel.Warning), Is.Empty, "the gateway service is disabled: no default gateway is missing");
        });
        _l3.As<IExternalConnectivityDriver>().Verify(e => e.ProgramExternalConnectivityAsync(It.IsAny<string>(), It.IsAny<string>(), It.IsAny<CancellationToken>()), Times.Never);
    }

    [Test]
    public async Task Beside_a_gateway_endpoint_the_core_adds_and_removes_only_its_own_route()
    {
        var l3 = await EndpointAsync("l3net", L3);
        var gw = await EndpointAsync("gwnet", ControllerFixture.DriverName);
        var sb = await _c.CreateSandboxAsync("c1");
        await l3.JoinAsync(sb);

        for (var round = 0; round < 2; round++)
        {
            await gw.JoinAsync(sb);
            var route = new SandboxGatewayRoute(gw.InterfaceName!, gw.Gateway!);
            Assert.Multiple(() =>
            {
                Assert.That(sb.GatewayEndpoint, Is.SameAs(gw));
                Assert.That(F.CoreRoutes[sb.Key], Is.EqualTo(new[] { route }));
            });

            await gw.LeaveAsync(sb);
            Assert.Multiple(() =>
            {
                Assert.That(F.CoreRoutes[sb.Key], Is.Empty);
                Assert.That(F.RemovedRoutes.Last(), Is.EqualTo(route), "exactly the route the core installed");
            });
        }

        Assert.Multiple(() =>
        {
            Assert.That(F.RemovedRoutes.Select(r => r.InterfaceName), Has.None.EqualTo(l3.InterfaceName), "nothing on the l3 interface is removed");
            Assert.That(l3.Sandbox, Is.SameAs(sb));
        });
        F.Netns.Verify(x => x.RemoveInterfaceAsync(sb.Key, It.Is<SandboxInterface>(i => i.DestinationName == l3.InterfaceName), It.IsAny<CancellationToken>()), Times.Never);
    }

    [Test]
    public async Task The_installed_routes_are_in_the_sandbox_record_and_a_restarted_controller_removes_exactly_them()
    {
        var gw = await EndpointAsync("gwnet", ControllerFixture.DriverName);
        var sb = await _c.CreateSandboxAsync("c1");
        await gw.JoinAsync(sb);
        var route = new SandboxGatewayRoute(gw.InterfaceName!, gw.Gateway!);
        var stored = CoreStore.Deserialize((await F.Store.GetAsync(CoreStore.SandboxKey(sb.Id)))!, CoreJsonContext.Default.SandboxRecord);
        Assert.That(stored.GatewayRoutes!.Select(r => (r.Interface, r.Gateway, r.Unmarked)), Is.EqualTo(new[] { (route.InterfaceName, route.Gateway.ToString(), false) }));
        await _c.DisposeAsync();

        var b = await F.StartAsync();
        var sb2 = b.FindSandboxById(sb.Id)!;
        await sb2.Endpoints[0].LeaveAsync(sb2);

        Assert.That(F.RemovedRoutes, Is.EqualTo(new[] { route }));
    }

    [Test]
    public async Task A_record_written_before_routes_were_kept_removes_the_programmed_endpoints_gateway_unmarked()
    {
        var gw = await EndpointAsync("gwnet", ControllerFixture.DriverName);
        var sb = await _c.CreateSandboxAsync("c1");
        await gw.JoinAsync(sb);
        await _c.DisposeAsync();

        // Rewrite the record as an earlier version wrote it: the programmed endpoint, no routes.
        var entry = (await F.Store.GetAsync(CoreStore.SandboxKey(sb.Id)))!;
        var old = CoreStore.Deserialize(entry, CoreJsonContext.Default.SandboxRecord) with { GatewayRoutes = null };
        await F.Store.PutAsync(CoreStore.SandboxKey(sb.Id), CoreStore.Serialize(old, CoreJsonContext.Default.SandboxRecord), entry.Version, CnmSharp.Store.StoreDurability.Durable);

        var b = await F.StartAsync();
        var sb2 = b.FindSandboxById(sb.Id)!;
        var ep = sb2.Endpoints[0];
        var name = ep.InterfaceName!;
        await ep.LeaveAsync(sb2);

        Assert.That(F.RemovedRoutes, Is.EqualTo(new[] { new SandboxGatewayRoute(name, ep.Network.IPv4Info[0].Gateway!.Value.Address) { Unmarked = true } }));
    }

    [Test]
    public async Task Disabling_the_gateway_service_does_not_keep_an_endpoint_with_a_gateway_from_election_as_in_libnetwork()
    {
        var n = await _c.CreateNetworkAsync("both", L3);
        var ep = await n.CreateEndpointAsync("ep");
        _l3.Setup(d => d.JoinAsync(It.IsAny<JoinRequest>(), It.IsAny<IJoinInfo>(), It.IsAny<CancellationToken>()))
            .Callback<JoinRequest, IJoinInfo, CancellationToken>((r, j, _) =>
            {
                j.SetInterfaceName("l3" + r.EndpointId[..7], "eth", InterfacePlacement.Sandbox);
                j.SetGateway(n.IPv4Info[0].Gateway!.Value.Address);
                j.DisableGatewayService();
            })
            .Returns(ValueTask.CompletedTask);
        var sb = await _c.CreateSandboxAsync("c1");

        await ep.JoinAsync(sb);

        Assert.Multiple(() =>
        {
            Assert.That(sb.GatewayEndpoint, Is.SameAs(ep));
            Assert.That(F.CoreRoutes[sb.Key], Is.EqualTo(new[] { new SandboxGatewayRoute(ep.InterfaceName!, ep.Gateway!) }));
        });
    }

    [Test]
    public async Task An_endpoint_without_gateway_or_default_route_that_keeps_the_gateway_service_is_reported()
    {
        var n = await _c.CreateNetworkAsync("nogw", ControllerFixture.DriverName);
        var ep = await n.CreateEndpointAsync("ep");
        var sb = await _c.CreateSandboxAsync("c1");

        await ep.JoinAsync(sb, new JoinOptions { DriverOptions = new Dictionary<string, string> { [ControllerFixture.NoGateway] = "1" } });

        Assert.That(F.Logs.GetSnapshot().Count(r => r.Level == LogLevel.Warning && r.Message.Contains("has no default gateway", StringComparison.Ordinal)), Is.EqualTo(1));
    }
}
