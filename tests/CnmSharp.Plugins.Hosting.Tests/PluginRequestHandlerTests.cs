using System.Net;
using System.Net.NetworkInformation;
using System.Text;
using System.Text.Json;
using CnmSharp.Drivers;
using CnmSharp.Ipam;
using CnmSharp.Store;
using Microsoft.Extensions.Logging.Abstractions;
using Moq;

namespace CnmSharp.Plugins.Hosting.Tests;

/// <summary>
/// The request handling of the plugin host without a server or root: what each call passes to the wrapped driver and
/// IPAM, and the reply shapes a real dockerd expects (plugin-protocol.md sections 2, 4 and 5).
/// </summary>
public sealed class PluginRequestHandlerTests
{
    private const string NetworkId = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    private const string EndpointId = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";

    private Mock<INetworkDriver> _driver = null!;
    private Mock<IIpamDriver> _ipam = null!;
    private InMemoryKeyValueStore _store = null!;
    private PluginRequestHandler _handler = null!;

    [SetUp]
    public void SetUp()
    {
        _driver = new Mock<INetworkDriver>(MockBehavior.Strict);
        _driver.SetupGet(d => d.Capability).Returns(DriverCapability.LocalScope);
        _ipam = new Mock<IIpamDriver>(MockBehavior.Strict);
        _ipam.SetupGet(i => i.Capability).Returns(new IpamCapability(RequiresMacAddress: true));
        _store = new InMemoryKeyValueStore();
        _handler = new PluginRequestHandler(_driver.Object, _ipam.Object, _store, NullLogger.Instance);
    }

    [TearDown]
    public async Task TearDown() => await _store.DisposeAsync();

    private async Task<(int Status, JsonElement Body)> CallAsync(string path, string? body = null)
    {
        var reply = await _handler.HandleAsync(path, body is null ? ReadOnlyMemory<byte>.Empty : Encoding.UTF8.GetBytes(body));
        Assert.That(reply.Body, Is.Not.Empty, "a reply always has a JSON body");
        using var doc = JsonDocument.Parse(reply.Body);
        return (reply.StatusCode, doc.RootElement.Clone());
    }

    private static string[] Names(JsonElement e) => [.. e.EnumerateObject().Select(p => p.Name)];

    [Test]
    public async Task Activate_and_capabilities_answer_empty_bodies_as_dockerd_sends_them()
    {
        var (status, body) = await CallAsync("/Plugin.Activate");
        Assert.That(status, Is.EqualTo(200));
        Assert.That(body.GetProperty("Implements").EnumerateArray().Select(e => e.GetString()), Is.EqualTo(new[] { "NetworkDriver", "IpamDriver" }));

        (status, body) = await CallAsync("/NetworkDriver.GetCapabilities");
        Assert.Multiple(() =>
        {
            Assert.That(status, Is.EqualTo(200));
            Assert.That(body.GetProperty("Scope").GetString(), Is.EqualTo("local"));
            Assert.That(body.GetProperty("ConnectivityScope").GetString(), Is.EqualTo("local"));
            Assert.That(Names(body), Does.Not.Contain("Err"), "no error field on success");
        });

        (status, body) = await CallAsync("/IpamDriver.GetCapabilities");
        Assert.That(body.GetProperty("RequiresMACAddress").GetBoolean(), Is.True);
        Assert.That(body.GetProperty("RequiresRequestReplay").GetBoolean(), Is.False);

        _ipam.Setup(i => i.GetDefaultAddressSpacesAsync(It.IsAny<CancellationToken>())).ReturnsAsync(new AddressSpaces("LocalDefault", "GlobalDefault"));
        (status, body) = await CallAsync("/IpamDriver.GetDefaultAddressSpaces");
        Assert.That(body.GetProperty("LocalDefaultAddressSpace").GetString(), Is.EqualTo("LocalDefault"));
        Assert.That(body.GetProperty("GlobalDefaultAddressSpace").GetString(), Is.EqualTo("GlobalDefault"));
    }

    [Test]
    public async Task ReleaseOwner_is_announced_and_served_only_for_an_IPAM_that_releases_by_owner()
    {
        // The mock IPAM of SetUp cannot: not announced, and the extension is an unknown method (404).
        var (status, body) = await CallAsync("/IpamDriver.GetCapabilities");
        Assert.That(body.GetProperty("ReleasesByOwner").GetBoolean(), Is.False);
        (status, _) = await CallAsync("/IpamDriver.ReleaseOwner", """{"Owner":"e1"}""");
        Assert.That(status, Is.EqualTo(404));

        var owning = new Mock<IIpamDriver>(MockBehavior.Strict);
        owning.SetupGet(i => i.Capability).Returns(new IpamCapability(ReleasesByOwner: true));
        owning.As<IIpamOwnerRelease>().Setup(i => i.ReleaseOwnerAsync("network:n1", It.IsAny<CancellationToken>())).ReturnsAsync(3);
        var handler = new PluginRequestHandler(null, owning.Object, _store, NullLogger.Instance);
        var capabilities = await handler.HandleAsync("/IpamDriver.GetCapabilities", ReadOnlyMemory<byte>.Empty);
        using (var doc = JsonDocument.Parse(capabilities.Body))
        {
            Assert.That(doc.RootElement.GetProperty("ReleasesByOwner").GetBoolean(), Is.True);
        }

        var released = await handler.HandleAsync("/IpamDriver.ReleaseOwner", Encoding.UTF8.GetBytes("""{"Owner":"network:n1"}"""));
        Assert.That(released.StatusCode, Is.EqualTo(200));
        using (var doc = JsonDocument.Parse(released.Body))
        {
            Assert.That(doc.RootElement.GetProperty("Released").GetInt32(), Is.EqualTo(3));
        }

        var empty = await handler.HandleAsync("/IpamDriver.ReleaseOwner", Encoding.UTF8.GetBytes("""{"Owner":""}"""));
        using (var doc = JsonDocument.Parse(empty.Body))
        {
            Assert.That(doc.RootElement.GetProperty("Error").GetString(), Does.Contain("Owner is required"));
        }

        owning.As<IIpamOwnerRelease>().Verify(i => i.ReleaseOwnerAsync(It.IsAny<string>(), It.IsAny<CancellationToken>()), Times.Once);
    }

    [Test]
    public async Task An_IPAM_only_or_driver_only_plugin_lists_only_its_interface_and_answers_the_other_with_404()
    {
        var ipamOnly = new PluginRequestHandler(null, _ipam.Object, _store, NullLogger.Instance);
        var reply = await ipamOnly.HandleAsync("/Plugin.Activate", ReadOnlyMemory<byte>.Empty);
        Assert.That(Encoding.UTF8.GetString(reply.Body), Is.EqualTo("{\"Implements\":[\"IpamDriver\"]}"));
        reply = await ipamOnly.HandleAsync("/NetworkDriver.GetCapabilities", ReadOnlyMemory<byte>.Empty);
        Assert.That(reply.StatusCode, Is.EqualTo(404));
        Assert.Throws<CnmInvalidArgumentException>(() => _ = new PluginRequestHandler(null, null, _store, NullLogger.Instance));
    }

    [Test]
    public async Task CreateNetwork_passes_the_generic_options_flags_and_pools_and_DeleteNetwork_forgets_the_record()
    {
        NetworkCreateRequest? seen = null;
        _driver.Setup(d => d.CreateNetworkAsync(It.IsAny<NetworkCreateRequest>(), It.IsAny<CancellationToken>()))
            .Callback<NetworkCreateRequest, CancellationToken>((r, _) => seen = r).Returns(ValueTask.CompletedTask);
        var (status, body) = await CallAsync("/NetworkDriver.CreateNetwork", $$$"""
            {"NetworkID":"{{{NetworkId}}}","Options":{"com.docker.network.enable_ipv6":false,"com.docker.network.generic":{"com.docker.network.bridge.name":"br-x","mtu":1400}},
             "IPv4Data":[{"AddressSpace":"LocalDefault","Pool":"10.98.0.0/24","Gateway":"10.98.0.1/24","AuxAddresses":{"r":"10.98.0.5/24"}}],"IPv6Data":[]}
            """);
        Assert.That(status, Is.EqualTo(200));
        Assert.That(body.ValueKind, Is.EqualTo(JsonValueKind.Object));
        Assert.That(Names(body), Is.Empty, "{} on success");
        Assert.That(seen, Is.Not.Null);
        Assert.Multiple(() =>
        {
            Assert.That(seen!.NetworkId, Is.EqualTo(NetworkId));
            Assert.That(seen.DriverOptions["com.docker.network.bridge.name"], Is.EqualTo("br-x"));
            Assert.That(seen.DriverOptions["mtu"], Is.EqualTo("1400"), "a non-string option value as its JSON text");
            Assert.That(seen.EnableIPv6, Is.False);
            Assert.That(seen.Internal, Is.False);
            Assert.That(seen.IPv4Data.Single().Pool.ToString(), Is.EqualTo("10.98.0.0/24"));
            Assert.That(seen.IPv4Data.Single().Gateway.ToString(), Is.EqualTo("10.98.0.1/24"));
            Assert.That(seen.IPv4Data.Single().AuxAddresses["r"].ToString(), Is.EqualTo("10.98.0.5/24"));
        });
        Assert.That(await _store.ListAsync(HostState.Prefix + "networks/"), Has.Count.EqualTo(1));

        _driver.Setup(d => d.DeleteNetworkAsync(NetworkId, It.IsAny<CancellationToken>())).Returns(ValueTask.CompletedTask);
        (status, _) = await CallAsync("/NetworkDriver.DeleteNetwork", $$$"""{"NetworkID":"{{{NetworkId}}}"}""");
        Assert.That(status, Is.EqualTo(200));
        Assert.That(await _store.ListAsync(HostState.Prefix), Is.Empty);
    }

    [Test]
    public async Task A_driver_refusal_is_a_500_with_Err_and_leaves_no_record()
    {
        _driver.Setup(d => d.CreateNetworkAsync(It.IsAny<NetworkCreateRequest>(), It.IsAny<CancellationToken>()))
            .ThrowsAsync(new CnmConflictException(CnmErrorCodes.PoolOverlap, "network \"x\"", "overlaps br-y"));
        var (status, body) = await CallAsync("/NetworkDriver.CreateNetwork", $$$"""{"NetworkID":"{{{NetworkId}}}","Options":{},"IPv4Data":[{"AddressSpace":"s","Pool":"10.98.0.0/24","Gateway":"","AuxAddresses":{}}]}""");
        Assert.Multiple(() =>
        {
            Assert.That(status, Is.EqualTo(500));
            Assert.That(Names(body), Is.EqualTo(new[] { "Err" }));
            Assert.That(body.GetProperty("Err").GetString(), Is.EqualTo("network \"x\": overlaps br-y"));
        });
        Assert.That(await _store.ListAsync(HostState.Prefix), Is.Empty, "the network's record went with the failure");
    }

    [TestCase("{\"NetworkID\":", 400, TestName = "Malformed JSON is a 400 with Err")]
    [TestCase("", 400, TestName = "An empty body where arguments are needed is a 400 with Err")]
    [TestCase("{\"NetworkID\":\"\"}", 500, TestName = "A missing NetworkID is refused with Err")]
    [TestCase("{\"NetworkID\":\"a/../b\"}", 500, TestName = "An id with a slash is refused with Err")]
    [TestCase("{\"NetworkID\":\"n1\",\"IPv4Data\":[{\"Pool\":\"10.98.0.1/24\"}]}", 500, TestName = "A pool with host bits is refused with Err")]
    [TestCase("{\"NetworkID\":\"n1\",\"IPv4Data\":[{\"Pool\":\"10.98.0.0/24\",\"Gateway\":\"10.98.0.1\"}]}", 500, TestName = "A gateway not in CIDR form is refused with Err")]
    [TestCase("{\"NetworkID\":\"n1\",\"Options\":{\"com.docker.network.generic\":[1]}}", 500, TestName = "A generic option that is not an object is refused with Err")]
    public async Task Bad_CreateNetwork_requests_get_an_Err_and_never_reach_the_driver(string body, int expectedStatus)
    {
        var (status, reply) = await CallAsync("/NetworkDriver.CreateNetwork", body);
        Assert.Multiple(() =>
        {
            Assert.That(status, Is.EqualTo(expectedStatus));
            Assert.That(Names(reply), Is.EqualTo(new[] { "Err" }));
            Assert.That(reply.GetProperty("Err").GetString(), Is.Not.Empty);
        });
        _driver.Verify(d => d.CreateNetworkAsync(It.IsAny<NetworkCreateRequest>(), It.IsAny<CancellationToken>()), Times.Never);
        Assert.That(await _store.ListAsync(HostState.Prefix), Is.Empty);
    }

    [Test]
    public async Task IPAM_errors_are_a_200_with_Error_as_dockerd_reads_them()
    {
        _ipam.Setup(i => i.RequestPoolAsync(It.IsAny<PoolRequest>(), It.IsAny<CancellationToken>()))
            .ThrowsAsync(new CnmConflictException(CnmErrorCodes.PoolOverlap, "pool 10.98.0.0/24", "overlaps"));
        var (status, body) = await CallAsync("/IpamDriver.RequestPool", """{"AddressSpace":"LocalDefault","Pool":"10.98.0.0/24","SubPool":"","Options":{},"V6":false}""");
        Assert.Multiple(() =>
        {
            Assert.That(status, Is.EqualTo(200));
            Assert.That(Names(body), Is.EqualTo(new[] { "Error" }), "Error, never Err, for IPAM");
            Assert.That(body.GetProperty("Error").GetString(), Is.EqualTo("pool 10.98.0.0/24: overlaps"));
        });

        (status, body) = await CallAsync("/IpamDriver.RequestAddress", "{not json");
        Assert.That(Names(body), Is.EqualTo(new[] { "Error" }));
        (status, body) = await CallAsync("/IpamDriver.ReleaseAddress", """{"PoolID":"p","Address":"10.98.0.300"}""");
        Assert.That(body.GetProperty("Error").GetString(), Does.Contain("10.98.0.300"));
    }

    [Test]
    public async Task RequestPool_and_RequestAddress_map_the_wire_fields_and_answer_CIDR()
    {
        PoolRequest? pool = null;
        _ipam.Setup(i => i.RequestPoolAsync(It.IsAny<PoolRequest>(), It.IsAny<CancellationToken>()))
            .Callback<PoolRequest, CancellationToken>((r, _) => pool = r)
            .ReturnsAsync(new AllocatedPool("LocalDefault/10.98.0.0/24", IPNetwork.Parse("10.98.0.0/24"), new Dictionary<string, string>()));
        var (_, body) = await CallAsync("/IpamDriver.RequestPool", """{"AddressSpace":"LocalDefault","Pool":"10.98.0.0/24","SubPool":"","Options":{"k":"v"},"V6":false}""");
        Assert.Multiple(() =>
        {
            Assert.That(body.GetProperty("PoolID").GetString(), Is.EqualTo("LocalDefault/10.98.0.0/24"));
            Assert.That(body.GetProperty("Pool").GetString(), Is.EqualTo("10.98.0.0/24"));
            Assert.That(pool!.SubPool, Is.Null, "an empty SubPool is none");
            Assert.That(pool.Options["k"], Is.EqualTo("v"));
        });

        IPAddress? preferred = null;
        IReadOnlyDictionary<string, string>? options = null;
        _ipam.Setup(i => i.RequestAddressAsync("LocalDefault/10.98.0.0/24", It.IsAny<IPAddress?>(), It.IsAny<IReadOnlyDictionary<string, string>>(), It.IsAny<CancellationToken>()))
            .Callback<string, IPAddress?, IReadOnlyDictionary<string, string>, CancellationToken>((_, p, o, _) => (preferred, options) = (p, o))
            .ReturnsAsync(new AllocatedAddress(CidrAddress.Parse("10.98.0.1/24"), new Dictionary<string, string>()));
        (_, body) = await CallAsync("/IpamDriver.RequestAddress", """{"PoolID":"LocalDefault/10.98.0.0/24","Address":"","Options":{"RequestAddressType":"com.docker.network.gateway"}}""");
        Assert.Multiple(() =>
        {
            Assert.That(body.GetProperty("Address").GetString(), Is.EqualTo("10.98.0.1/24"), "CIDR form");
            Assert.That(preferred, Is.Null);
            Assert.That(options!["RequestAddressType"], Is.EqualTo("com.docker.network.gateway"));
        });

        _ipam.Setup(i => i.ReleaseAddressAsync("LocalDefault/10.98.0.0/24", IPAddress.Parse("10.98.0.1"), It.IsAny<CancellationToken>())).Returns(ValueTask.CompletedTask);
        var (status, released) = await CallAsync("/IpamDriver.ReleaseAddress", """{"PoolID":"LocalDefault/10.98.0.0/24","Address":"10.98.0.1"}""");
        Assert.That(status, Is.EqualTo(200));
        Assert.That(Names(released), Is.Empty);
        _ipam.Verify(i => i.ReleaseAddressAsync("LocalDefault/10.98.0.0/24", IPAddress.Parse("10.98.0.1"), It.IsAny<CancellationToken>()), Times.Once);
    }

    private void SetUpEndpoint(Action<IInterfaceInfo>? fill = null, Action<EndpointCreateRequest>? seen = null) =>
        _driver.Setup(d => d.CreateEndpointAsync(It.IsAny<EndpointCreateRequest>(), It.IsAny<IInterfaceInfo>(), It.IsAny<CancellationToken>()))
            .Callback<EndpointCreateRequest, IInterfaceInfo, CancellationToken>((r, i, _) =>
            {
                seen?.Invoke(r);
                fill?.Invoke(i);
            })
            .Returns(ValueTask.CompletedTask);

    [Test]
    public async Task CreateEndpoint_replies_only_what_the_driver_filled_in_and_passes_ports_and_options()
    {
        EndpointCreateRequest? request = null;
        SetUpEndpoint(i => i.SetMacAddress(PhysicalAddress.Parse("02-42-0a-62-00-02")), r => request = r);
        var (status, body) = await CallAsync("/NetworkDriver.CreateEndpoint", $$$"""
            {"NetworkID":"{{{NetworkId}}}","EndpointID":"{{{EndpointId}}}","Interface":{"Address":"10.98.0.2/24","AddressIPv6":"","MacAddress":""},
             "Options":{"com.docker.network.endpoint.exposedports":[{"Proto":6,"Port":80}],
                        "com.docker.network.portmap":[{"Proto":17,"IP":"","Port":53,"HostIP":"","HostPort":5353,"HostPortEnd":5353}],
                        "plain":"value"}}
            """);
        Assert.That(status, Is.EqualTo(200));
        var iface = body.GetProperty("Interface");
        Assert.Multiple(() =>
        {
            Assert.That(iface.GetProperty("MacAddress").GetString(), Is.EqualTo("02:42:0a:62:00:02"));
            Assert.That(iface.GetProperty("Address").GetString(), Is.Empty, "the caller's address is not returned (a conflict for dockerd)");
            Assert.That(request!.ExposedPorts, Is.EqualTo(new[] { new TransportPort(TransportProtocol.Tcp, 80) }));
            Assert.That(request.PortBindings.Single().Protocol, Is.EqualTo(TransportProtocol.Udp));
            Assert.That(request.PortBindings.Single().HostPort, Is.EqualTo(5353));
            Assert.That(request.DriverOptions["plain"], Is.EqualTo("value"));
        });

        // Nothing filled in: no Interface at all.
        SetUpEndpoint();
        (_, body) = await CallAsync("/NetworkDriver.CreateEndpoint", $$$"""{"NetworkID":"{{{NetworkId}}}","EndpointID":"e2","Interface":{"Address":"10.98.0.3/24","MacAddress":"02:42:0a:62:00:03"},"Options":{}}""");
        Assert.That(Names(body), Is.Empty);
    }

    [Test]
    public async Task CreateEndpoint_with_a_bad_address_or_MAC_is_refused_before_the_driver()
    {
        var (status, body) = await CallAsync("/NetworkDriver.CreateEndpoint", $$$"""{"NetworkID":"{{{NetworkId}}}","EndpointID":"{{{EndpointId}}}","Interface":{"Address":"10.98.0.2"},"Options":{}}""");
        Assert.That(status, Is.EqualTo(500));
        Assert.That(body.GetProperty("Err").GetString(), Does.Contain("10.98.0.2"));
        (status, body) = await CallAsync("/NetworkDriver.CreateEndpoint", $$$"""{"NetworkID":"{{{NetworkId}}}","EndpointID":"{{{EndpointId}}}","Interface":{"MacAddress":"02:42:zz:00:00:01"},"Options":{}}""");
        Assert.That(status, Is.EqualTo(500));
        Assert.That(body.GetProperty("Err").GetString(), Does.Contain("MAC"));
        _driver.Verify(d => d.CreateEndpointAsync(It.IsAny<EndpointCreateRequest>(), It.IsAny<IInterfaceInfo>(), It.IsAny<CancellationToken>()), Times.Never);
    }

    [Test]
    public async Task Join_asks_for_the_interface_in_the_host_namespace_and_answers_name_gateway_and_routes()
    {
        SetUpEndpoint();
        await CallAsync("/NetworkDriver.CreateEndpoint", $$$"""{"NetworkID":"{{{NetworkId}}}","EndpointID":"{{{EndpointId}}}","Interface":{"Address":"10.98.0.2/24","MacAddress":"02:42:0a:62:00:02"},"Options":{}}""");
        Drivers.JoinRequest? join = null;
        IInterfaceInfo? seenInterface = null;
        _driver.Setup(d => d.JoinAsync(It.IsAny<Drivers.JoinRequest>(), It.IsAny<IJoinInfo>(), It.IsAny<CancellationToken>()))
            .Callback<Drivers.JoinRequest, IJoinInfo, CancellationToken>((r, info, _) =>
            {
                join = r;
                seenInterface = info.InterfaceInfo;
                info.SetInterfaceName("veth1234c", "eth", InterfacePlacement.HostNamespace);
                info.SetGateway(IPAddress.Parse("10.98.0.1"));
                info.AddStaticRoute(new StaticRoute(IPNetwork.Parse("10.99.0.0/16"), RouteType.NextHop, IPAddress.Parse("10.98.0.254")));
                info.AddStaticRoute(new StaticRoute(IPNetwork.Parse("10.100.0.0/16"), RouteType.Connected, null));
            })
            .Returns(ValueTask.CompletedTask);
        var (status, body) = await CallAsync("/NetworkDriver.Join", $$$$"""{"NetworkID":"{{{{NetworkId}}}}","EndpointID":"{{{{EndpointId}}}}","SandboxKey":"/var/run/docker/netns/abc123","Options":{"com.docker.network.generic":{"ChildEndpoints":null}}}""");
        Assert.That(status, Is.EqualTo(200));
        Assert.Multiple(() =>
        {
            Assert.That(join!.InterfaceInHostNamespace, Is.True, "the daemon moves the interface itself");
            Assert.That(join.SandboxKey, Is.EqualTo("/var/run/docker/netns/abc123"));
            Assert.That(join.SandboxId, Is.EqualTo("abc123"));
            Assert.That(seenInterface!.Address.ToString(), Is.EqualTo("10.98.0.2/24"), "the endpoint's interface comes from the host's record");
            Assert.That(seenInterface.MacAddress!.ToString(), Is.EqualTo("02420A620002"));
            Assert.That(body.GetProperty("InterfaceName").GetProperty("SrcName").GetString(), Is.EqualTo("veth1234c"));
            Assert.That(body.GetProperty("InterfaceName").GetProperty("DstPrefix").GetString(), Is.EqualTo("eth"));
            Assert.That(body.GetProperty("Gateway").GetString(), Is.EqualTo("10.98.0.1"), "a plain IP");
            Assert.That(body.GetProperty("GatewayIPv6").GetString(), Is.Empty);
            Assert.That(body.GetProperty("StaticRoutes")[0].GetProperty("RouteType").GetInt32(), Is.EqualTo(0));
            Assert.That(body.GetProperty("StaticRoutes")[0].GetProperty("NextHop").GetString(), Is.EqualTo("10.98.0.254"));
            Assert.That(body.GetProperty("StaticRoutes")[1].GetProperty("RouteType").GetInt32(), Is.EqualTo(1));
            Assert.That(body.GetProperty("DisableGatewayService").GetBoolean(), Is.False);
        });
    }

    [Test]
    public async Task Join_of_an_unknown_endpoint_or_a_driver_that_keeps_the_interface_in_the_sandbox_is_an_Err()
    {
        var (status, body) = await CallAsync("/NetworkDriver.Join", $$$"""{"NetworkID":"{{{NetworkId}}}","EndpointID":"{{{EndpointId}}}","SandboxKey":"/x/y","Options":{}}""");
        Assert.That(status, Is.EqualTo(500));
        Assert.That(body.GetProperty("Err").GetString(), Does.Contain("not found"));

        SetUpEndpoint();
        await CallAsync("/NetworkDriver.CreateEndpoint", $$$"""{"NetworkID":"{{{NetworkId}}}","EndpointID":"{{{EndpointId}}}","Interface":{"Address":"10.98.0.2/24"},"Options":{}}""");
        _driver.Setup(d => d.JoinAsync(It.IsAny<Drivers.JoinRequest>(), It.IsAny<IJoinInfo>(), It.IsAny<CancellationToken>()))
            .Callback<Drivers.JoinRequest, IJoinInfo, CancellationToken>((_, info, _) => info.SetInterfaceName("macvlan1", "eth", InterfacePlacement.Sandbox))
            .Returns(ValueTask.CompletedTask);
        _driver.Setup(d => d.LeaveAsync(NetworkId, EndpointId, It.IsAny<CancellationToken>())).Returns(ValueTask.CompletedTask);
        (status, body) = await CallAsync("/NetworkDriver.Join", $$$"""{"NetworkID":"{{{NetworkId}}}","EndpointID":"{{{EndpointId}}}","SandboxKey":"/x/y","Options":{}}""");
        Assert.That(status, Is.EqualTo(404), "not implemented through the protocol");
        Assert.That(body.GetProperty("Err").GetString(), Does.Contain("host namespace"));
        _driver.Verify(d => d.LeaveAsync(NetworkId, EndpointId, It.IsAny<CancellationToken>()), Times.Once, "the join was undone");
    }

    [Test]
    public async Task External_connectivity_and_allocation_are_404_when_the_driver_has_none_and_unknown_paths_too()
    {
        var body = $$$"""{"NetworkID":"{{{NetworkId}}}","EndpointID":"{{{EndpointId}}}","Options":{}}""";
        Assert.That((await CallAsync("/NetworkDriver.ProgramExternalConnectivity", body)).Status, Is.EqualTo(404));
        Assert.That((await CallAsync("/NetworkDriver.RevokeExternalConnectivity", body)).Status, Is.EqualTo(404));
        Assert.That((await CallAsync("/NetworkDriver.AllocateNetwork", $$$"""{"NetworkID":"{{{NetworkId}}}","Options":{}}""")).Status, Is.EqualTo(404));
        Assert.That((await CallAsync("/NetworkDriver.Frobnicate", "{}")).Status, Is.EqualTo(404));
        Assert.That((await CallAsync("/Nonsense", "{}")).Status, Is.EqualTo(404));

        // Discovery events are accepted (and dropped) by a driver that does not want them.
        var (status, reply) = await CallAsync("/NetworkDriver.DiscoverNew", """{"DiscoveryType":1,"DiscoveryData":{"Address":"127.0.0.1","BindAddress":"","Self":true}}""");
        Assert.That(status, Is.EqualTo(200));
        Assert.That(Names(reply), Is.Empty);
    }

    [Test]
    public async Task Program_and_revoke_reach_a_driver_with_external_connectivity()
    {
        var driver = new Mock<INetworkDriver>(MockBehavior.Strict);
        var external = driver.As<IExternalConnectivityDriver>();
        external.Setup(d => d.ProgramExternalConnectivityAsync(NetworkId, EndpointId, It.IsAny<CancellationToken>())).Returns(ValueTask.CompletedTask);
        external.Setup(d => d.RevokeExternalConnectivityAsync(NetworkId, EndpointId, It.IsAny<CancellationToken>())).Returns(ValueTask.CompletedTask);
        var handler = new PluginRequestHandler(driver.Object, null, _store, NullLogger.Instance);
        var body = Encoding.UTF8.GetBytes($$$"""{"NetworkID":"{{{NetworkId}}}","EndpointID":"{{{EndpointId}}}","Options":{}}""");
        Assert.That((await handler.HandleAsync("/NetworkDriver.ProgramExternalConnectivity", body)).StatusCode, Is.EqualTo(200));
        Assert.That((await handler.HandleAsync("/NetworkDriver.RevokeExternalConnectivity", body)).StatusCode, Is.EqualTo(200));
        external.VerifyAll();
    }
}
