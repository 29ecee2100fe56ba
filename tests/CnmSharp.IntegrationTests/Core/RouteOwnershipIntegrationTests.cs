using System.Text.Json;
using CnmSharp.IntegrationTests.Bridge;
using CnmSharp.Testing;

namespace CnmSharp.IntegrationTests.Core;

/// <summary>
/// The core removes only the default routes it installed, checked in the kernel with <c>ip -j route</c> inside the
/// sandbox: a sandbox has an endpoint of a driver that does what ipvlan l3 does (<see cref="ConnectedRouteDriverFactory"/>:
/// its device created inside the sandbox, the gateway service disabled, a connected default route on the device) beside
/// a bridge endpoint (a gateway, whose default route the core installs), and default routes added by hand (another
/// metric in the main table, and table 100). Root, in a private host namespace.
/// </summary>
[RequiresRoot]
[NonParallelizable]
public class RouteOwnershipIntegrationTests
{
    private const string BridgeGateway = "10.77.63.1";
    private const string HandGateway = "192.0.2.1";
    private const string HandDevice = "cnmrh0";

    /// <summary>A default route as <c>ip -j route</c> shows it: no gateway for a connected route; the protocol
    /// <c>boot</c> and metric 0 where ip prints none.</summary>
    private sealed record DefaultRoute(string? Gateway, string Dev, string Protocol, string Scope, int Metric)
    {
        public override string ToString() => $"default{(Gateway is null ? string.Empty : " via " + Gateway)} dev {Dev} proto {Protocol} scope {Scope} metric {Metric}";
    }

    private static DefaultRoute Core(string dev) => new(BridgeGateway, dev, "static", "global", 0);

    private static DefaultRoute Connected(string dev) => new(null, dev, "static", "link", 0);

    private static readonly DefaultRoute s_handMain = new(HandGateway, HandDevice, "boot", "global", 500);
    private static readonly DefaultRoute s_handTable100 = new(HandGateway, HandDevice, "boot", "global", 0);

    private static List<DefaultRoute> DefaultRoutes(string netns, string table) =>
        [.. JsonDocument.Parse(BridgeHarness.Exec(netns, "ip", "-j", "route", "show", "default", "table", table)).RootElement.EnumerateArray().Select(r => new DefaultRoute(
            r.TryGetProperty("gateway", out var g) ? g.GetString() : null,
            r.GetProperty("dev").GetString()!,
            r.TryGetProperty("protocol", out var p) ? p.GetString()! : "boot",
            r.TryGetProperty("scope", out var s) ? s.GetString()! : "global",
            r.TryGetProperty("metric", out var m) ? m.GetInt32() : 0))];

    private static void AssertDefaultRoutes(string netns, string because, params DefaultRoute[] main) =>
        Assert.Multiple(() =>
        {
            Assert.That(DefaultRoutes(netns, "main"), Is.EquivalentTo(main), because + ": main table");
            Assert.That(DefaultRoutes(netns, "100"), Is.EqualTo(new[] { s_handTable100 }), because + ": table 100, added by hand, is never touched");
        });

    [Test]
    public async Task The_core_removes_only_its_own_default_route_beside_a_drivers_connected_default_route_and_routes_added_by_hand_also_after_a_restart()
    {
        await using var h = await BridgeHarness.CreateAsync(extraDrivers: [new ConnectedRouteDriverFactory()]);
        var bridge = await h.NetworkAsync("gw", "10.77.63.0/24");
        var l3Network = await h.Controller.CreateNetworkAsync("l3", ConnectedRouteDriverFactory.DriverName, new NetworkCreateOptions
        {
            IPv4Config = [new IpamConfig { Subnet = "10.77.64.0/24" }],
        });
        var sandbox = await h.Controller.CreateSandboxAsync("c1");
        var key = sandbox.Key;
        var l3 = await l3Network.CreateEndpointAsync("l3ep");
        var gw = await bridge.CreateEndpointAsync("gwep");

        await l3.JoinAsync(sandbox);
        var l3If = l3.InterfaceName!;
        Assert.Multiple(() =>
        {
            Assert.That(BridgeHarness.LinksOf(key), Does.Contain(l3If), "the driver's device is in the sandbox");
            Assert.That(h.HostLinks(), Does.Contain(ConnectedRouteDriverFactory.HostEnd(l3.Id)), "its peer stays in the host namespace");
            Assert.That(DefaultRoutes(key, "main"), Is.EqualTo(new[] { Connected(l3If) }), "the driver's connected default route, and no route of the core's");
            Assert.That(sandbox.GatewayEndpoint, Is.Null);
        });

        // Default routes a person adds in the sandbox, on a device of their own: another metric in the main table, and
        // another table.
        BridgeHarness.Exec(key, "ip", "link", "add", HandDevice, "type", "veth", "peer", "name", "cnmrh1");
        BridgeHarness.Exec(key, "ip", "addr", "add", "192.0.2.2/24", "dev", HandDevice);
        BridgeHarness.Exec(key, "ip", "link", "set", HandDevice, "up");
        BridgeHarness.Exec(key, "ip", "link", "set", "cnmrh1", "up");
        BridgeHarness.Exec(key, "ip", "route", "add", "default", "via", HandGateway, "dev", HandDevice, "metric", "500");
        BridgeHarness.Exec(key, "ip", "route", "add", "default", "via", HandGateway, "dev", HandDevice, "table", "100");
        AssertDefaultRoutes(key, "routes added by hand", Connected(l3If), s_handMain);

        for (var round = 1; round <= 2; round++)
        {
            await gw.JoinAsync(sandbox);
            Assert.That(sandbox.GatewayEndpoint, Is.SameAs(gw), $"round {round}: the bridge endpoint provides the gateway");
            AssertDefaultRoutes(key, $"round {round}, bridge joined: the core's route is added beside the others", Core(gw.InterfaceName!), Connected(l3If), s_handMain);

            await gw.LeaveAsync(sandbox);
            AssertDefaultRoutes(key, $"round {round}, bridge left: only the core's route is gone", Connected(l3If), s_handMain);
        }

        // A restart with the bridge endpoint joined: the new controller removes exactly the route the old one installed.
        await gw.JoinAsync(sandbox);
        var coreRoute = Core(gw.InterfaceName!);
        await h.RestartAsync();
        var sandbox2 = h.Controller.FindSandboxById(sandbox.Id)!;
        var gw2 = h.Controller.FindNetworkByName("gw")!.Endpoints.Single();
        var l32 = h.Controller.FindNetworkByName("l3")!.Endpoints.Single();
        AssertDefaultRoutes(key, "after the restart nothing changed", coreRoute, Connected(l3If), s_handMain);

        await gw2.LeaveAsync(sandbox2);
        AssertDefaultRoutes(key, "restarted, bridge left: only the core's route is gone", Connected(l3If), s_handMain);

        await gw2.JoinAsync(sandbox2);
        AssertDefaultRoutes(key, "restarted, bridge joined again", Core(gw2.InterfaceName!), Connected(l3If), s_handMain);

        // The driver's endpoint leaves: its device goes, and its route with it; the core's route stays.
        await l32.LeaveAsync(sandbox2);
        Assert.Multiple(() =>
        {
            Assert.That(BridgeHarness.LinksOf(key), Does.Not.Contain(l3If), "the driver's device is gone");
            Assert.That(h.HostLinks(), Does.Not.Contain(ConnectedRouteDriverFactory.HostEnd(l3.Id)), "and its peer with it");
        });
        AssertDefaultRoutes(key, "the driver's endpoint left: its route went with its device", Core(gw2.InterfaceName!), s_handMain);

        await gw2.LeaveAsync(sandbox2);
        AssertDefaultRoutes(key, "everything left: only the routes added by hand", s_handMain);

        await h.TeardownAndAssertCleanAsync();
    }
}
