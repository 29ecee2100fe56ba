using CnmSharp.Core.Persistence;
using CnmSharp.Drivers;
using CnmSharp.Sandboxes;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Moq;

namespace CnmSharp.Tests.Core;

/// <summary>
/// The gateway network (libnetwork's <c>docker_gwbridge</c>): a sandbox joined only to endpoints of a driver whose
/// capability says its endpoints give no external connectivity gets a <c>gateway_&lt;sbid[:12]&gt;</c> endpoint on a
/// local network that the controller creates through the normal contracts. The gateway network's driver here is the
/// fixture's test driver (which reports the IPAM gateway at join); the "overlay" is a mock that reports none.
/// </summary>
public sealed class GatewayNetworkTests : ControllerTestBase
{
    private const string Overlay = "ovl";
    private const string GatewayName = "docker_gwbridge";

    private Mock<INetworkDriver> _ovl = null!;
    private NetworkController _c = null!;

    [SetUp]
    public async Task Start()
    {
        _ovl = F.AddDriver(Overlay, new DriverCapability(DriverScope.Local, DriverScope.Global) { NoExternalConnectivity = true }, m =>
            m.Setup(d => d.JoinAsync(It.IsAny<JoinRequest>(), It.IsAny<IJoinInfo>(), It.IsAny<CancellationToken>()))
                .Callback<JoinRequest, IJoinInfo, CancellationToken>((r, j, _) => j.SetInterfaceName("vo" + r.EndpointId[..7], "eth"))
                .Returns(ValueTask.CompletedTask));
        F.Configure = o => o.GatewayNetwork.Driver = ControllerFixture.DriverName;
        _c = await F.StartAsync();
    }

    private async Task<Endpoint> OverlayEndpointAsync(string network, NetworkCreateOptions? options = null)
    {
        var n = _c.FindNetworkByName(network) ?? await _c.CreateNetworkAsync(network, Overlay, options);
        return await n.CreateEndpointAsync("ep" + n.Endpoints.Count);
    }

    private static Endpoint? GatewayEndpointOf(Sandbox sandbox) =>
        sandbox.Endpoints.SingleOrDefault(e => e.Network.Name == GatewayName);

    [Test]
    public async Task A_sandbox_on_a_network_without_external_connectivity_gets_a_gateway_network_endpoint_that_gives_its_default_route()
    {
        var ep = await OverlayEndpointAsync("o1");
        var sb = await _c.CreateSandboxAsync("c1");

        await ep.JoinAsync(sb);

        var gw = _c.FindNetworkByName(GatewayName);
        Assert.That(gw, Is.Not.Null, "the gateway network is created on first need");
        var gwEp = GatewayEndpointOf(sb);
        Assert.That(gwEp, Is.Not.Null);
        Assert.Multiple(() =>
        {
            Assert.That(gw!.Driver, Is.EqualTo(ControllerFixture.DriverName));
            Assert.That(gw.Scope, Is.EqualTo("local"));
            Assert.That(gw.DisableDns, Is.True);
            Assert.That(gw.DriverOptions, Is.EquivalentTo(new Dictionary<string, string>
            {
                [NetLabels.BridgePrefix + ".enable_icc"] = "false",
                [NetLabels.BridgePrefix + ".enable_ip_masquerade"] = "true",
                [NetLabels.BridgePrefix + ".name"] = GatewayName,
            }));
            Assert.That(gwEp!.Name, Is.EqualTo("gateway_" + sb.Id[..12]));
            Assert.That(sb.Endpoints, Has.Count.EqualTo(2));
            Assert.That(sb.GatewayEndpoint, Is.SameAs(gwEp));
            Assert.That(F.CoreRoutes[sb.Key], Is.EqualTo(new[] { new SandboxGatewayRoute(gwEp.InterfaceName!, gw.IPv4Info[0].Gateway!.Value.Address) }));
        });
        F.External.Verify(e => e.ProgramExternalConnectivityAsync(gw!.Id, gwEp!.Id, It.IsAny<CancellationToken>()), Times.Once);
        Assert.That(F.Logs.GetSnapshot().Any(r => r.Id.Id == 111), Is.False, "no 'no default gateway' warning for a sandbox the gateway network serves");

        // In use, the gateway network cannot be deleted.
        await ThrowsAsync<CnmConflictException>(() => gw!.DeleteAsync().AsTask(), CnmErrorCodes.ActiveEndpoints);
    }

    [Test]
    public async Task The_gateway_network_endpoint_is_shared_by_the_sandbox_endpoints_and_goes_with_the_last_of_them()
    {
        var a = await OverlayEndpointAsync("o1");
        var b = await OverlayEndpointAsync("o2");
        var sb = await _c.CreateSandboxAsync("c1");

        await a.JoinAsync(sb);
        var gwEp = GatewayEndpointOf(sb);
        await b.JoinAsync(sb);
        Assert.That(GatewayEndpointOf(sb), Is.SameAs(gwEp), "one gateway network endpoint per sandbox");

        await a.LeaveAsync(sb);
        Assert.That(GatewayEndpointOf(sb), Is.SameAs(gwEp));

        await b.LeaveAsync(sb);

        var gw = _c.FindNetworkByName(GatewayName)!;
        Assert.Multiple(() =>
        {
            Assert.That(sb.Endpoints, Is.Empty);
            Assert.That(gw.Endpoints, Is.Empty, "the gateway endpoint is deleted, not only left");
            Assert.That(F.CoreRoutes[sb.Key], Is.Empty);
        });
        F.Driver.Verify(d => d.DeleteEndpointAsync(gw.Id, gwEp!.Id, It.IsAny<CancellationToken>()), Times.Once);

        // Unused, the network stays (as libnetwork's) and can be deleted, its pool released.
        await gw.DeleteAsync();
        Assert.That(_c.FindNetworkByName(GatewayName), Is.Null);
    }

    [Test]
    public async Task A_real_gateway_endpoint_replaces_the_gateway_network_endpoint_and_its_leave_brings_one_back()
    {
        var ov = await OverlayEndpointAsync("o1");
        var real = await (await _c.CreateNetworkAsync("real", ControllerFixture.DriverName)).CreateEndpointAsync("r");
        var sb = await _c.CreateSandboxAsync("c1");
        await ov.JoinAsync(sb);
        var first = GatewayEndpointOf(sb);
        Assert.That(first, Is.Not.Null);

        await real.JoinAsync(sb);

        Assert.Multiple(() =>
        {
            Assert.That(GatewayEndpointOf(sb), Is.Null);
            Assert.That(sb.GatewayEndpoint, Is.SameAs(real));
            Assert.That(F.CoreRoutes[sb.Key], Is.EqualTo(new[] { new SandboxGatewayRoute(real.InterfaceName!, real.Gateway!) }));
            Assert.That(_c.FindNetworkByName(GatewayName)!.Endpoints, Is.Empty);
        });

        await real.LeaveAsync(sb);

        var second = GatewayEndpointOf(sb);
        Assert.Multiple(() =>
        {
            Assert.That(second, Is.Not.Null);
            Assert.That(second!.Id, Is.Not.EqualTo(first!.Id));
            Assert.That(sb.GatewayEndpoint, Is.SameAs(second));
        });
    }

    [Test]
    public async Task Internal_or_labelled_networks_and_host_sandboxes_get_no_gateway_network()
    {
        var internalEp = await OverlayEndpointAsync("o-internal", new NetworkCreateOptions { Internal = true });
        var labelled = await OverlayEndpointAsync("o-labelled", new NetworkCreateOptions { Labels = new Dictionary<string, string> { [NetLabels.NoGatewayNetwork] = "true" } });
        var sb = await _c.CreateSandboxAsync("c1");

        await internalEp.JoinAsync(sb);
        await labelled.JoinAsync(sb);

        Assert.Multiple(() =>
        {
            Assert.That(sb.Endpoints, Has.Count.EqualTo(2));
            Assert.That(_c.FindNetworkByName(GatewayName), Is.Null);
        });
    }

    [Test]
    public async Task Disabled_in_the_options_no_gateway_network_is_made()
    {
        await _c.DisposeAsync();
        F.Configure = o => o.GatewayNetwork.Enabled = false;
        _c = await F.StartAsync();
        var ep = await OverlayEndpointAsync("o1");
        var sb = await _c.CreateSandboxAsync("c1");

        await ep.JoinAsync(sb);

        Assert.Multiple(() =>
        {
            Assert.That(sb.Endpoints, Is.EqualTo(new[] { ep }));
            Assert.That(_c.FindNetworkByName(GatewayName), Is.Null);
            Assert.That(F.Logs.GetSnapshot().Any(r => r.Id.Id == 111), Is.True, "without one, the missing default gateway is reported");
        });
    }

    [Test]
    public async Task A_configured_name_and_driver_options_are_used()
    {
        await _c.DisposeAsync();
        F.Configure = o =>
        {
            o.GatewayNetwork.Driver = ControllerFixture.DriverName;
            o.GatewayNetwork.Name = "gwnet";
            o.GatewayNetwork.DriverOptions = new Dictionary<string, string> { ["k"] = "v" };
        };
        _c = await F.StartAsync();
        var ep = await OverlayEndpointAsync("o1");
        var sb = await _c.CreateSandboxAsync("c1");

        await ep.JoinAsync(sb);

        var gw = _c.FindNetworkByName("gwnet");
        Assert.Multiple(() =>
        {
            Assert.That(gw, Is.Not.Null);
            Assert.That(gw!.DriverOptions, Is.EquivalentTo(new Dictionary<string, string> { ["k"] = "v" }));
            Assert.That(sb.Endpoints.Select(e => e.Network), Does.Contain(gw));
        });
    }

    [Test]
    public async Task A_failed_gateway_network_join_fails_the_join_and_leaves_nothing_behind()
    {
        var ep = await OverlayEndpointAsync("o1");
        var sb = await _c.CreateSandboxAsync("c1");
        F.Driver.Setup(d => d.JoinAsync(It.IsAny<JoinRequest>(), It.IsAny<IJoinInfo>(), It.IsAny<CancellationToken>()))
            .ThrowsAsync(new CnmInternalException(CnmErrorCodes.KernelError, "bridge", "injected"));

        await ThrowsAsync<CnmInternalException>(() => ep.JoinAsync(sb).AsTask(), CnmErrorCodes.KernelError);
        await _c.WaitForTeardownsAsync();

        Assert.Multiple(async () =>
        {
            Assert.That(sb.Endpoints, Is.Empty);
            Assert.That(ep.Sandbox, Is.Null, "the overlay join is undone");
            Assert.That(_c.FindNetworkByName(GatewayName), Is.Null, "the gateway network this join created is removed");
            Assert.That(await F.KeysAsync(CoreStore.IntentPrefix), Is.Empty);
            Assert.That(F.CoreRoutes.GetValueOrDefault(sb.Key) ?? [], Is.Empty);
        });
        _ovl.Verify(d => d.LeaveAsync(ep.Network.Id, ep.Id, It.IsAny<CancellationToken>()), Times.Once);
        F.Driver.Verify(d => d.DeleteEndpointAsync(It.IsAny<string>(), It.IsAny<string>(), It.IsAny<CancellationToken>()), Times.Once);
        F.Driver.Verify(d => d.DeleteNetworkAsync(It.IsAny<string>(), It.IsAny<CancellationToken>()), Times.Once);

        // With the driver working again, the same join succeeds (nothing half made is in its way).
        F.Driver.Setup(d => d.JoinAsync(It.IsAny<JoinRequest>(), It.IsAny<IJoinInfo>(), It.IsAny<CancellationToken>()))
            .Callback<JoinRequest, IJoinInfo, CancellationToken>((r, j, _) =>
            {
                j.SetInterfaceName("veth" + r.EndpointId[..7], "eth");
                j.SetGateway(F.Gateways[r.NetworkId].V4!);
            })
            .Returns(ValueTask.CompletedTask);
        await ep.JoinAsync(sb);
        Assert.That(GatewayEndpointOf(sb), Is.Not.Null);
    }

    [Test]
    public async Task The_gateway_network_endpoint_survives_a_restart_and_a_sandbox_left_without_one_gets_it_at_start()
    {
        // A sandbox joined while the feature was off stands for one a crash left between its join and the gateway's.
        await _c.DisposeAsync();
        F.Configure = o => o.GatewayNetwork.Enabled = false;
        _c = await F.StartAsync();
        var ep = await OverlayEndpointAsync("o1");
        var sb = await _c.CreateSandboxAsync("c1");
        await ep.JoinAsync(sb);
        var other = await _c.CreateNetworkAsync(GatewayName, ControllerFixture.DriverName);
        var leftover = await other.CreateEndpointAsync("gateway_0123456789ab");
        var userEndpoint = await other.CreateEndpointAsync("mine");
        await _c.DisposeAsync();

        F.Configure = o => o.GatewayNetwork.Driver = ControllerFixture.DriverName;
        _c = await F.StartAsync();
        var sb2 = _c.Sandboxes.Single(s => s.Id == sb.Id);
        var gwEp = GatewayEndpointOf(sb2);
        Assert.That(gwEp, Is.Not.Null, "given at start");
        var gwNames = _c.FindNetworkByName(GatewayName)!.Endpoints.Select(e => e.Name).ToArray();
        Assert.That(gwNames, Is.EquivalentTo(new[] { gwEp!.Name, userEndpoint.Name }), "an unjoined gateway endpoint is deleted at start; other endpoints stay");
        Assert.That(leftover.Name, Is.Not.AnyOf(gwNames));
        await _c.DisposeAsync();

        _c = await F.StartAsync();
        var sb3 = _c.Sandboxes.Single(s => s.Id == sb.Id);
        Assert.Multiple(() =>
        {
            Assert.That(GatewayEndpointOf(sb3)?.Id, Is.EqualTo(gwEp.Id), "the same endpoint after a restart, not a second one");
            Assert.That(sb3.Endpoints, Has.Count.EqualTo(2));
            Assert.That(sb3.GatewayEndpoint?.Id, Is.EqualTo(gwEp.Id));
        });
    }

    [Test]
    public async Task Deleting_the_sandbox_deletes_its_gateway_network_endpoint()
    {
        var ep = await OverlayEndpointAsync("o1");
        var sb = await _c.CreateSandboxAsync("c1");
        await ep.JoinAsync(sb);
        var gw = _c.FindNetworkByName(GatewayName)!;

        await sb.DeleteAsync();
        await _c.WaitForTeardownsAsync();

        Assert.That(gw.Endpoints, Is.Empty);
        await gw.DeleteAsync();
    }

    [Test]
    public async Task A_forced_delete_of_the_last_such_endpoint_removes_the_gateway_network_endpoint()
    {
        var ep = await OverlayEndpointAsync("o1");
        var sb = await _c.CreateSandboxAsync("c1");
        await ep.JoinAsync(sb);

        await ep.DeleteAsync(force: true);

        Assert.Multiple(() =>
        {
            Assert.That(sb.Endpoints, Is.Empty);
            Assert.That(_c.FindNetworkByName(GatewayName)!.Endpoints, Is.Empty);
        });
    }

    [TestCase("")]
    [TestCase("bad name")]
    public async Task An_invalid_gateway_network_name_is_refused_when_the_options_are_validated(string name)
    {
        var services = new ServiceCollection();
        services.AddCnmSharp(o =>
        {
            o.StateDirectory = F.Directory;
            o.RunDirectory = Path.Combine(F.Directory, "run");
            o.GatewayNetwork.Name = name;
        });
        await using var sp = services.BuildServiceProvider();

        Assert.Throws<OptionsValidationException>(() => _ = sp.GetRequiredService<IOptions<CnmOptions>>().Value);

        await _c.DisposeAsync();
        F.Configure = o => o.GatewayNetwork.Name = name;
        await ThrowsAsync<CnmInvalidArgumentException>(() => F.StartAsync(), CnmErrorCodes.InvalidName);
    }
}
