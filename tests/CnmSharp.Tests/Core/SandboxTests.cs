using System.Net;
using CnmSharp.Core.Persistence;
using CnmSharp.Drivers;
using CnmSharp.Sandboxes;
using CnmSharp.Testing;
using Moq;

namespace CnmSharp.Tests.Core;

public sealed class SandboxTests : ControllerTestBase
{
    private NetworkController _c = null!;

    [SetUp]
    public async Task StartController() => _c = await F.StartAsync();

    private static JoinOptions Options(string key) => new() { DriverOptions = new Dictionary<string, string> { [key] = "1" } };

    private async Task<(Network Network, Endpoint Endpoint)> EndpointOnAsync(string network, NetworkCreateOptions? options = null)
    {
        var n = _c.FindNetworkByName(network) ?? await _c.CreateNetworkAsync(network, ControllerFixture.DriverName, options);
        return (n, await n.CreateEndpointAsync("ep" + n.Endpoints.Count));
    }

    private void VerifyProgrammed(Endpoint endpoint, Func<Times> times) =>
        F.External.Verify(e => e.ProgramExternalConnectivityAsync(endpoint.Network.Id, endpoint.Id, It.IsAny<CancellationToken>()), times);

    private void VerifyRevoked(Endpoint endpoint, Func<Times> times) =>
        F.External.Verify(e => e.RevokeExternalConnectivityAsync(endpoint.Network.Id, endpoint.Id, It.IsAny<CancellationToken>()), times);

    [TestCase("")]
    [TestCase("  ")]
    public async Task An_empty_container_id_is_invalid(string containerId)
    {
        await ThrowsAsync<CnmInvalidArgumentException>(() => _c.CreateSandboxAsync(containerId).AsTask(), CnmErrorCodes.InvalidId);
    }

    [Test]
    public async Task A_sandbox_gets_a_namespace_and_a_second_one_for_the_container_is_a_conflict()
    {
        var sb = await _c.CreateSandboxAsync("c1");

        await ThrowsAsync<CnmConflictException>(() => _c.CreateSandboxAsync("c1").AsTask(), CnmErrorCodes.SandboxExists);
        F.Netns.Verify(n => n.CreateNamespaceAsync(sb.Key, It.IsAny<CancellationToken>()), Times.Once);
        Assert.Multiple(() =>
        {
            Assert.That(sb.Key, Does.StartWith(Path.Combine(F.Directory, "run")));
            Assert.That(_c.FindSandboxById(sb.Id), Is.SameAs(sb));
            Assert.That(_c.FindSandboxByContainerId("c1"), Is.SameAs(sb));
            Assert.That(_c.Sandboxes, Is.EqualTo(new[] { sb }));
            Assert.That(Assert.Throws<CnmInvalidArgumentException>(() => _c.FindSandboxById(""))!.Code, Is.EqualTo(CnmErrorCodes.InvalidId));
        });
    }

    [Test]
    public async Task Joining_twice_is_a_conflict_and_leaving_when_not_joined_or_from_another_sandbox_is_not_joined()
    {
        var (_, ep) = await EndpointOnAsync("net");
        var sb1 = await _c.CreateSandboxAsync("c1");
        var sb2 = await _c.CreateSandboxAsync("c2");

        await ThrowsAsync<CnmConflictException>(() => ep.LeaveAsync(sb1).AsTask(), CnmErrorCodes.NotJoined);
        await ep.JoinAsync(sb1);
        await ThrowsAsync<CnmConflictException>(() => ep.JoinAsync(sb1).AsTask(), CnmErrorCodes.AlreadyJoined);
        await ThrowsAsync<CnmConflictException>(() => ep.JoinAsync(sb2).AsTask(), CnmErrorCodes.AlreadyJoined);
        await ThrowsAsync<CnmConflictException>(() => ep.LeaveAsync(sb2).AsTask(), CnmErrorCodes.NotJoined);

        Assert.That(ep.Sandbox, Is.SameAs(sb1));
        await ep.LeaveAsync(sb1);
        Assert.Multiple(() =>
        {
            Assert.That(ep.Sandbox, Is.Null);
            Assert.That(sb1.Endpoints, Is.Empty);
        });
    }

    [Test]
    public async Task Join_calls_the_driver_then_adds_the_interface_then_sets_the_gateway_then_programs_external_connectivity()
    {
        F.RecordCalls();
        var (n, ep) = await EndpointOnAsync("net");
        var sb = await _c.CreateSandboxAsync("c1");

        await ep.JoinAsync(sb);

        Assert.That(F.Calls, Is.EqualTo(new[] { "driver.join", "netns.add eth0", "netns.gateway eth0", "driver.program" }));
        var source = "veth" + ep.Id[..7];
        F.Netns.Verify(x => x.AddInterfaceAsync(
            sb.Key,
            It.Is<SandboxInterface>(i => i.SourceName == source && i.DestinationName == "eth0" && i.Placement == InterfacePlacement.HostNamespace
                && i.Addresses.Contains(ep.Address!.Value)),
            It.IsAny<CancellationToken>()));
        Assert.That(F.CoreRoutes[sb.Key], Is.EqualTo(new[] { new SandboxGatewayRoute("eth0", n.IPv4Info[0].Gateway!.Value.Address) }));
        F.Driver.Verify(d => d.JoinAsync(It.Is<JoinRequest>(r => r.SandboxId == sb.Id && r.SandboxKey == sb.Key && r.EndpointId == ep.Id && !r.SandboxUsesHostNamespace), It.IsAny<IJoinInfo>(), It.IsAny<CancellationToken>()));
        Assert.Multiple(() =>
        {
            Assert.That(ep.InterfaceName, Is.EqualTo("eth0"));
            Assert.That(ep.Gateway, Is.EqualTo(n.IPv4Info[0].Gateway!.Value.Address));
            Assert.That(sb.GatewayEndpoint, Is.SameAs(ep));
        });
    }

    [Test]
    public async Task Interface_names_count_up_and_the_index_keeps_growing_across_reconnects()
    {
        var (_, a) = await EndpointOnAsync("a");
        var (_, b) = await EndpointOnAsync("b");
        var (_, c) = await EndpointOnAsync("c");
        var sb = await _c.CreateSandboxAsync("c1");

        await a.JoinAsync(sb);
        await b.JoinAsync(sb);
        await a.LeaveAsync(sb);
        await c.JoinAsync(sb);
        await a.JoinAsync(sb);

        Assert.Multiple(() =>
        {
            Assert.That(b.InterfaceName, Is.EqualTo("eth1"));
            Assert.That(c.InterfaceName, Is.EqualTo("eth2"));
            Assert.That(a.InterfaceName, Is.EqualTo("eth3"));
        });
        F.Netns.Verify(x => x.RemoveInterfaceAsync(sb.Key, It.Is<SandboxInterface>(i => i.DestinationName == "eth0"), It.IsAny<CancellationToken>()), Times.Once);
    }

    [Test]
    public async Task The_gateway_goes_by_network_name_when_nothing_else_differs_and_moves_when_its_endpoint_leaves()
    {
        var (_, b) = await EndpointOnAsync("b-net");
        var (_, a) = await EndpointOnAsync("a-net");
        var sb = await _c.CreateSandboxAsync("c1");

        await b.JoinAsync(sb);
        Assert.That(sb.GatewayEndpoint, Is.SameAs(b));
        await a.JoinAsync(sb);
        Assert.That(sb.GatewayEndpoint, Is.SameAs(a));
        VerifyRevoked(b, Times.Once);
        VerifyProgrammed(a, Times.Once);

        await a.LeaveAsync(sb);

        Assert.That(sb.GatewayEndpoint, Is.SameAs(b));
        VerifyRevoked(a, Times.Once);
        VerifyProgrammed(b, () => Times.Exactly(2));
        Assert.Multiple(() =>
        {
            Assert.That(F.CoreRoutes[sb.Key], Is.EqualTo(new[] { new SandboxGatewayRoute(b.InterfaceName!, b.Gateway!) }));
            Assert.That(F.RemovedRoutes, Is.EqualTo(new[] { new SandboxGatewayRoute(b.InterfaceName!, b.Gateway!), new SandboxGatewayRoute("eth1", a.Network.IPv4Info[0].Gateway!.Value.Address) }), "each move removes exactly the route the core had installed");
        });
    }

    [Test]
    public async Task A_higher_priority_wins_the_gateway()
    {
        var (_, a) = await EndpointOnAsync("a-net");
        var (_, b) = await EndpointOnAsync("b-net");
        var sb = await _c.CreateSandboxAsync("c1");

        await a.JoinAsync(sb);
        await b.JoinAsync(sb, new JoinOptions { Priority = 10 });

        Assert.That(sb.GatewayEndpoint, Is.SameAs(b));
        Assert.That(sb.Endpoints, Is.EqualTo(new[] { b, a }));
        VerifyProgrammed(b, Times.Once);
        VerifyProgrammed(a, Times.Once);
        VerifyRevoked(a, Times.Once);
    }

    [Test]
    public async Task Internal_networks_come_after_others_and_never_get_external_connectivity()
    {
        var (_, a) = await EndpointOnAsync("a-internal", new NetworkCreateOptions { Internal = true });
        var (_, b) = await EndpointOnAsync("b-net");
        var sb = await _c.CreateSandboxAsync("c1");

        await a.JoinAsync(sb);
        Assert.That(sb.GatewayEndpoint, Is.SameAs(a));
        VerifyProgrammed(a, Times.Never);
        await b.JoinAsync(sb);

        Assert.That(sb.GatewayEndpoint, Is.SameAs(b));
        VerifyProgrammed(b, Times.Once);
        VerifyProgrammed(a, Times.Never);
        VerifyRevoked(a, Times.Never);
    }

    [Test]
    public async Task An_IPv6_gateway_outweighs_the_network_name()
    {
        var (_, a) = await EndpointOnAsync("a-net");
        var (_, b) = await EndpointOnAsync("b-dual", new NetworkCreateOptions { EnableIPv6 = true });
        var sb = await _c.CreateSandboxAsync("c1");

        await a.JoinAsync(sb);
        await b.JoinAsync(sb);

        Assert.That(sb.GatewayEndpoint, Is.SameAs(b));
        Assert.That(b.GatewayIPv6, Is.Not.Null);
        Assert.That(F.CoreRoutes[sb.Key], Is.EquivalentTo(new[] { new SandboxGatewayRoute(b.InterfaceName!, b.Gateway!), new SandboxGatewayRoute(b.InterfaceName!, b.GatewayIPv6!) }));
    }

    [Test]
    public async Task An_endpoint_without_a_gateway_is_never_elected()
    {
        var (_, a) = await EndpointOnAsync("a-net");
        var (_, b) = await EndpointOnAsync("b-net");
        var sb = await _c.CreateSandboxAsync("c1");

        await a.JoinAsync(sb, Options(ControllerFixture.NoGateway));
        Assert.That(sb.GatewayEndpoint, Is.Null);
        await b.JoinAsync(sb);

        Assert.That(sb.GatewayEndpoint, Is.SameAs(b));
        VerifyProgrammed(a, Times.Never);
    }

    [Test]
    public async Task Host_endpoints_join_only_host_namespace_sandboxes_and_vice_versa()
    {
        var host = _c.FindNetworkByName("host")!;
        var hostEp = await host.CreateEndpointAsync("h");
        var (_, ep) = await EndpointOnAsync("net");
        var hostSb = await _c.CreateSandboxAsync("hostmode", new SandboxCreateOptions { UseHostNamespace = true });
        var sb = await _c.CreateSandboxAsync("normal");

        await ThrowsAsync<CnmConflictException>(() => hostEp.JoinAsync(sb).AsTask(), CnmErrorCodes.DriverForbidden);
        await ThrowsAsync<CnmConflictException>(() => ep.JoinAsync(hostSb).AsTask(), CnmErrorCodes.DriverForbidden);
        await hostEp.JoinAsync(hostSb);

        Assert.That(hostEp.Sandbox, Is.SameAs(hostSb));
        F.Netns.Verify(x => x.CreateNamespaceAsync(hostSb.Key, It.IsAny<CancellationToken>()), Times.Never);
        F.Netns.Verify(x => x.AddInterfaceAsync(hostSb.Key, It.IsAny<SandboxInterface>(), It.IsAny<CancellationToken>()), Times.Never);

        await hostSb.DeleteAsync();
        F.Netns.Verify(x => x.DeleteNamespaceAsync(hostSb.Key, It.IsAny<CancellationToken>()), Times.Never);
    }

    [Test]
    public async Task A_failing_AddInterface_rolls_the_join_back()
    {
        var (n, ep) = await EndpointOnAsync("net");
        var sb = await _c.CreateSandboxAsync("c1");
        F.Netns.Setup(x => x.AddInterfaceAsync(sb.Key, It.IsAny<SandboxInterface>(), It.IsAny<CancellationToken>()))
            .Returns(() => ValueTask.FromException(new CnmInternalException(CnmErrorCodes.KernelError, "eth0", "move failed")));

        await ThrowsAsync<CnmInternalException>(() => ep.JoinAsync(sb).AsTask(), CnmErrorCodes.KernelError);

        F.Driver.Verify(d => d.LeaveAsync(n.Id, ep.Id, It.IsAny<CancellationToken>()), Times.Once);
        F.External.Verify(e => e.ProgramExternalConnectivityAsync(It.IsAny<string>(), It.IsAny<string>(), It.IsAny<CancellationToken>()), Times.Never);
        var intents = await F.KeysAsync(CoreStore.IntentPrefix);
        Assert.Multiple(() =>
        {
            Assert.That(ep.Sandbox, Is.Null);
            Assert.That(ep.InterfaceName, Is.Null);
            Assert.That(sb.Endpoints, Is.Empty);
            Assert.That(sb.GatewayEndpoint, Is.Null);
            Assert.That(intents, Is.Empty);
        });

        F.Netns.Setup(x => x.AddInterfaceAsync(sb.Key, It.IsAny<SandboxInterface>(), It.IsAny<CancellationToken>())).Returns(ValueTask.CompletedTask);
        await ep.JoinAsync(sb);
        Assert.That(ep.Sandbox, Is.SameAs(sb));
    }

    [Test]
    public async Task A_failing_external_connectivity_rolls_the_join_back()
    {
        var (n, ep) = await EndpointOnAsync("net");
        var sb = await _c.CreateSandboxAsync("c1");
        F.External.Setup(e => e.ProgramExternalConnectivityAsync(n.Id, ep.Id, It.IsAny<CancellationToken>()))
            .Returns(() => ValueTask.FromException(new CnmInternalException(CnmErrorCodes.KernelError, "nat", "iptables failed")));

        await ThrowsAsync<CnmInternalException>(() => ep.JoinAsync(sb).AsTask(), CnmErrorCodes.KernelError);

        F.Driver.Verify(d => d.LeaveAsync(n.Id, ep.Id, It.IsAny<CancellationToken>()), Times.Once);
        F.Netns.Verify(x => x.RemoveInterfaceAsync(sb.Key, It.Is<SandboxInterface>(i => i.DestinationName == "eth0"), It.IsAny<CancellationToken>()), Times.Once);
        Assert.Multiple(() =>
        {
            Assert.That(ep.Sandbox, Is.Null);
            Assert.That(sb.Endpoints, Is.Empty);
        });
    }

    [Test]
    public async Task A_join_that_fails_after_taking_over_the_gateway_gives_it_back()
    {
        var (_, old) = await EndpointOnAsync("b-net");
        var (n, taker) = await EndpointOnAsync("a-net");
        var sb = await _c.CreateSandboxAsync("c1");
        await old.JoinAsync(sb);
        F.External.Setup(e => e.ProgramExternalConnectivityAsync(n.Id, taker.Id, It.IsAny<CancellationToken>()))
            .Returns(() => ValueTask.FromException(new CnmInternalException(CnmErrorCodes.KernelError, "nat", "iptables failed")));

        await ThrowsAsync<CnmInternalException>(() => taker.JoinAsync(sb).AsTask(), CnmErrorCodes.KernelError);

        VerifyRevoked(old, Times.Once);
        VerifyProgrammed(old, () => Times.Exactly(2));
        Assert.Multiple(() =>
        {
            Assert.That(sb.GatewayEndpoint, Is.SameAs(old));
            Assert.That(F.CoreRoutes[sb.Key], Is.EqualTo(new[] { new SandboxGatewayRoute(old.InterfaceName!, old.Gateway!) }), "the sandbox's default route is back on the old endpoint, the taker's gone with its interface");
            Assert.That(taker.Sandbox, Is.Null);
        });
    }

    [Test]
    public async Task Deleting_a_sandbox_leaves_and_deletes_its_endpoints_and_removes_only_moved_in_interfaces()
    {
        var (n, created) = await EndpointOnAsync("a-net");
        var (m, moved) = await EndpointOnAsync("b-net");
        var sb = await _c.CreateSandboxAsync("c1");
        await created.JoinAsync(sb, Options(ControllerFixture.InSandbox));
        await moved.JoinAsync(sb);

        await sb.DeleteAsync();
        await _c.WaitForTeardownsAsync();

        F.Driver.Verify(d => d.LeaveAsync(n.Id, created.Id, It.IsAny<CancellationToken>()), Times.Once);
        F.Driver.Verify(d => d.LeaveAsync(m.Id, moved.Id, It.IsAny<CancellationToken>()), Times.Once);
        F.Driver.Verify(d => d.DeleteEndpointAsync(n.Id, created.Id, It.IsAny<CancellationToken>()), Times.Once);
        F.Driver.Verify(d => d.DeleteEndpointAsync(m.Id, moved.Id, It.IsAny<CancellationToken>()), Times.Once);
        F.Netns.Verify(x => x.RemoveInterfaceAsync(sb.Key, It.Is<SandboxInterface>(i => i.DestinationName == created.InterfaceName), It.IsAny<CancellationToken>()), Times.Never);
        F.Netns.Verify(x => x.RemoveInterfaceAsync(sb.Key, It.Is<SandboxInterface>(i => i.Placement == InterfacePlacement.Sandbox), It.IsAny<CancellationToken>()), Times.Never);
        var movedSource = "veth" + moved.Id[..7];
        F.Netns.Verify(x => x.RemoveInterfaceAsync(sb.Key, It.Is<SandboxInterface>(i => i.SourceName == movedSource), It.IsAny<CancellationToken>()), Times.Once);
        F.Netns.Verify(x => x.DeleteNamespaceAsync(sb.Key, It.IsAny<CancellationToken>()), Times.Once);
        VerifyRevoked(created, Times.Once);
        var sandboxKeys = await F.KeysAsync(CoreStore.SandboxPrefix);
        var endpointKeys = await F.KeysAsync(CoreStore.EndpointPrefix);
        Assert.Multiple(() =>
        {
            Assert.That(n.Endpoints, Is.Empty);
            Assert.That(m.Endpoints, Is.Empty);
            Assert.That(_c.Sandboxes, Is.Empty);
            Assert.That(_c.FindSandboxById(sb.Id), Is.Null);
            Assert.That(sandboxKeys, Is.Empty);
            Assert.That(endpointKeys, Is.Empty);
        });
    }

    [Test]
    public async Task A_concurrent_second_delete_is_a_conflict_or_not_found_never_a_crash()
    {
        var (_, ep) = await EndpointOnAsync("net");
        var sb = await _c.CreateSandboxAsync("c1");
        await ep.JoinAsync(sb);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var entered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        F.Netns.Setup(x => x.DeleteNamespaceAsync(sb.Key, It.IsAny<CancellationToken>()))
            .Returns(() =>
            {
                entered.TrySetResult();
                return new ValueTask(release.Task);
            });

        var first = sb.DeleteAsync().AsTask();
        await entered.Task.WaitAsync(TimeSpan.FromSeconds(10));
        var during = await CatchAsync(() => sb.DeleteAsync().AsTask());
        var destroyDuring = await CatchAsync(() => _c.DestroySandboxAsync("c1").AsTask());
        release.SetResult();
        await first.WaitAsync(TimeSpan.FromSeconds(10));
        var after = await CatchAsync(() => sb.DeleteAsync().AsTask());

        Assert.Multiple(() =>
        {
            Assert.That(during, Is.InstanceOf<CnmConflictException>().Or.InstanceOf<CnmNotFoundException>());
            Assert.That(destroyDuring, Is.Null);
            Assert.That(after, Is.InstanceOf<CnmConflictException>().Or.InstanceOf<CnmNotFoundException>());
            Assert.That(_c.Sandboxes, Is.Empty);
        });
        F.Netns.Verify(x => x.DeleteNamespaceAsync(sb.Key, It.IsAny<CancellationToken>()), Times.Once);
    }

    [Test]
    public async Task A_sandbox_deleted_while_a_join_is_in_flight_takes_the_new_endpoint_with_it()
    {
        var (n, ep) = await EndpointOnAsync("net");
        var sb = await _c.CreateSandboxAsync("c1");
        var entered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        F.Driver.Setup(d => d.JoinAsync(It.Is<JoinRequest>(r => r.EndpointId == ep.Id), It.IsAny<IJoinInfo>(), It.IsAny<CancellationToken>()))
            .Returns<JoinRequest, IJoinInfo, CancellationToken>((_, j, _) =>
            {
                j.SetInterfaceName("vethrace", "eth");
                entered.TrySetResult();
                return new ValueTask(release.Task);
            });

        var join = ep.JoinAsync(sb).AsTask();
        await entered.Task.WaitAsync(TimeSpan.FromSeconds(10));
        var delete = sb.DeleteAsync().AsTask();

        // The delete has passed its checks (the sandbox is marked as going) and waits for the join on the sandbox.
        await Until.TrueAsync(() => sb.Deleting || delete.IsCompleted, "the delete starts");
        Assert.That(delete.IsCompleted, Is.False, "the delete waits for the join in flight");
        var record = CoreStore.Deserialize((await F.Store.GetAsync(CoreStore.SandboxKey(sb.Id)))!, CoreJsonContext.Default.SandboxRecord);
        Assert.That(record.TearingDown, Is.False, "the delete has not begun before the join ends");
        F.Netns.Verify(x => x.DeleteNamespaceAsync(sb.Key, It.IsAny<CancellationToken>()), Times.Never);
        release.SetResult();
        await Task.WhenAll(join, delete).WaitAsync(TimeSpan.FromSeconds(10));

        // The sandbox delete returns before its endpoints' background teardown removes their records.
        await _c.WaitForTeardownsAsync();
        var endpointKeys = await F.KeysAsync(CoreStore.EndpointPrefix);
        Assert.Multiple(() =>
        {
            Assert.That(_c.Sandboxes, Is.Empty);
            Assert.That(n.Endpoints, Is.Empty, "the endpoint that joined during the delete is left and deleted too");
            Assert.That(endpointKeys, Is.Empty);
        });
        F.Driver.Verify(d => d.LeaveAsync(n.Id, ep.Id, It.IsAny<CancellationToken>()), Times.Once);
        await n.DeleteAsync();
    }

    [Test]
    public async Task Destroying_the_sandbox_of_an_unknown_container_is_not_an_error()
    {
        await _c.DestroySandboxAsync("nobody");
        var sb = await _c.CreateSandboxAsync("somebody");

        await _c.DestroySandboxAsync("somebody");

        Assert.That(_c.FindSandboxByContainerId("somebody"), Is.Null);
        F.Netns.Verify(x => x.DeleteNamespaceAsync(sb.Key, It.IsAny<CancellationToken>()), Times.Once);
    }

    [Test]
    public async Task A_failing_namespace_creation_leaves_no_sandbox()
    {
        F.Netns.Setup(x => x.CreateNamespaceAsync(It.IsAny<string>(), It.IsAny<CancellationToken>()))
            .Returns(() => ValueTask.FromException(new CnmInternalException(CnmErrorCodes.KernelError, "netns", "unshare failed")));

        await ThrowsAsync<CnmInternalException>(() => _c.CreateSandboxAsync("c1").AsTask(), CnmErrorCodes.KernelError);
        var keys = await F.KeysAsync(CoreStore.SandboxPrefix);

        Assert.Multiple(() =>
        {
            Assert.That(keys, Is.Empty);
            Assert.That(_c.Sandboxes, Is.Empty);
        });
    }

    [Test]
    public async Task Static_routes_and_gateways_reported_by_the_driver_reach_the_endpoint()
    {
        var (n, ep) = await EndpointOnAsync("net");
        var route = new StaticRoute(IPNetwork.Parse("192.0.2.0/24"), RouteType.NextHop, IPAddress.Parse("10.0.0.254"));
        F.Driver.Setup(d => d.JoinAsync(It.Is<JoinRequest>(r => r.EndpointId == ep.Id), It.IsAny<IJoinInfo>(), It.IsAny<CancellationToken>()))
            .Callback<JoinRequest, IJoinInfo, CancellationToken>((_, j, _) =>
            {
                j.SetInterfaceName("vethx", "en");
                j.AddStaticRoute(route);
            })
            .Returns(ValueTask.CompletedTask);
        var sb = await _c.CreateSandboxAsync("c1");

        await ep.JoinAsync(sb);

        Assert.Multiple(() =>
        {
            Assert.That(ep.InterfaceName, Is.EqualTo("en0"));
            Assert.That(ep.StaticRoutes, Is.EqualTo(new[] { route }));
            Assert.That(ep.Gateway, Is.Null);
            Assert.That(n.Endpoints, Is.EqualTo(new[] { ep }));
        });
        F.Netns.Verify(x => x.AddInterfaceAsync(sb.Key, It.Is<SandboxInterface>(i => i.Routes.Contains(route)), It.IsAny<CancellationToken>()), Times.Once);
    }
}
