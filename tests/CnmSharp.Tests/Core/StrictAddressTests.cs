using System.Net;
using System.Net.NetworkInformation;
using CnmSharp.Core.Persistence;
using CnmSharp.Drivers;
using Moq;

namespace CnmSharp.Tests.Core;

/// <summary>Issue 10 section 3 (library side): addresses, MACs, port bindings and pools a user gives are checked
/// strictly when the call is made; a refusal is a typed invalid-argument error and leaves nothing behind.</summary>
public sealed class StrictAddressTests : ControllerTestBase
{
    private NetworkController _c = null!;

    [SetUp]
    public async Task StartController() => _c = await F.StartAsync();

    private static IEnumerable<TestCaseData> InvalidIpamConfigs()
    {
        static TestCaseData Case(string name, IpamConfig config, string code, bool ipv6 = false) =>
            new TestCaseData(config, ipv6, code).SetArgDisplayNames(name);

        yield return Case("subnet short form", new() { Subnet = "10.1.2/24" }, CnmErrorCodes.InvalidPool);
        yield return Case("subnet octal-looking", new() { Subnet = "010.1.0.0/16" }, CnmErrorCodes.InvalidPool);
        yield return Case("subnet hex", new() { Subnet = "0x0a.1.0.0/16" }, CnmErrorCodes.InvalidPool);
        yield return Case("subnet prefix leading zero", new() { Subnet = "10.1.0.0/016" }, CnmErrorCodes.InvalidPool);
        yield return Case("gateway short form", new() { Subnet = "10.1.0.0/16", Gateway = "10.1.1" }, CnmErrorCodes.InvalidGateway);
        yield return Case("gateway single number", new() { Subnet = "0.0.0.0/0", Gateway = "1" }, CnmErrorCodes.InvalidGateway);
        yield return Case("gateway leading zero", new() { Subnet = "10.1.0.0/16", Gateway = "10.1.0.01" }, CnmErrorCodes.InvalidGateway);
        yield return Case("ip range short form", new() { Subnet = "10.1.0.0/16", IPRange = "10.1.2/24" }, CnmErrorCodes.InvalidSubPool);
        yield return Case("aux short form", new() { Subnet = "10.1.0.0/16", AuxAddresses = new Dictionary<string, string> { ["a"] = "10.1.5" } }, CnmErrorCodes.InvalidAddress);
        yield return Case("aux hex", new() { Subnet = "10.1.0.0/16", AuxAddresses = new Dictionary<string, string> { ["a"] = "0x0a.1.0.5" } }, CnmErrorCodes.InvalidAddress);
        yield return Case("IPv6 gateway with scope", new() { Subnet = "fd00:1::/64", Gateway = "fd00:1::1%1" }, CnmErrorCodes.InvalidGateway, ipv6: true);
        yield return Case("IPv4 /32", new() { Subnet = "10.1.0.1/32" }, CnmErrorCodes.InvalidPool);
        yield return Case("IPv4 /32 with its gateway", new() { Subnet = "10.1.0.1/32", Gateway = "10.1.0.1" }, CnmErrorCodes.InvalidPool);
        yield return Case("IPv4 /31 gateway and aux", new() { Subnet = "10.1.0.0/31", Gateway = "10.1.0.0", AuxAddresses = new Dictionary<string, string> { ["a"] = "10.1.0.1" } }, CnmErrorCodes.InvalidPool);
        yield return Case("IPv4 /30 gateway and aux", new() { Subnet = "10.1.0.0/30", AuxAddresses = new Dictionary<string, string> { ["a"] = "10.1.0.2" } }, CnmErrorCodes.InvalidPool);
        yield return Case("IPv4 range /32 taken by the gateway", new() { Subnet = "10.1.0.0/24", IPRange = "10.1.0.8/32" }, CnmErrorCodes.InvalidSubPool);
        yield return Case("IPv4 range of the broadcast address", new() { Subnet = "10.1.0.0/24", IPRange = "10.1.0.255/32", Gateway = "10.1.0.1" }, CnmErrorCodes.InvalidSubPool);
        yield return Case("IPv6 /128", new() { Subnet = "fd00:1::1/128" }, CnmErrorCodes.InvalidPool, ipv6: true);
        yield return Case("IPv6 /127 gateway and aux", new() { Subnet = "fd00:1::/127", AuxAddresses = new Dictionary<string, string> { ["a"] = "fd00:1::1" } }, CnmErrorCodes.InvalidPool, ipv6: true);
    }

    [TestCaseSource(nameof(InvalidIpamConfigs))]
    public async Task An_invalid_or_empty_pool_is_refused_at_create_and_nothing_is_reserved(IpamConfig config, bool ipv6, string code)
    {
        var keysBefore = await F.KeysAsync(CoreStore.Root);
        var options = ipv6
            ? new NetworkCreateOptions { EnableIPv6 = true, IPv4Config = [new IpamConfig { Subnet = "10.9.0.0/24" }], IPv6Config = [config] }
            : new NetworkCreateOptions { IPv4Config = [config] };

        await ThrowsAsync<CnmInvalidArgumentException>(() => _c.CreateNetworkAsync("n", ControllerFixture.DriverName, options).AsTask(), code);

        Assert.That(await F.KeysAsync(CoreStore.Root), Is.EqualTo(keysBefore), "no network record, intent, pool or address");
        F.Driver.Verify(d => d.CreateNetworkAsync(It.IsAny<NetworkCreateRequest>(), It.IsAny<CancellationToken>()), Times.Never);
        Assert.That(_c.Networks.Where(n => n.Name == "n"), Is.Empty);
    }

    [TestCase("10.1.0.0/31", null, Description = "one gateway, one endpoint (RFC 3021: no network or broadcast address)")]
    [TestCase("10.1.0.0/30", null)]
    [TestCase("10.1.0.0/24", "10.1.0.8/32", Description = "the gateway outside the range")]
    public async Task The_smallest_pools_with_an_address_left_are_accepted_and_hand_it_out(string subnet, string? range)
    {
        var options = Subnet(subnet, gateway: range is null ? null : "10.1.0.1", range: range);
        var network = await _c.CreateNetworkAsync("small", ControllerFixture.DriverName, options);

        var endpoint = await network.CreateEndpointAsync("only");
        Assert.That(endpoint.Address, Is.Not.Null);
        Assert.That(network.IPv4Info[0].Pool.Contains(endpoint.Address!.Value.Address), Is.True);
    }

    [Test]
    public async Task An_IPv6_127_leaves_one_endpoint_address()
    {
        var network = await _c.CreateNetworkAsync("small6", ControllerFixture.DriverName, new NetworkCreateOptions
        {
            EnableIPv6 = true,
            IPv4Config = [new IpamConfig { Subnet = "10.9.1.0/24" }],
            IPv6Config = [new IpamConfig { Subnet = "fd00:7::/127" }],
        });

        var endpoint = await network.CreateEndpointAsync("only");
        Assert.That(endpoint.AddressIPv6!.Value.Address.ToString(), Does.StartWith("fd00:7::"));
    }

    private static IEnumerable<TestCaseData> InvalidEndpointAddresses()
    {
        static TestCaseData Case(string name, EndpointCreateOptions options, string code) =>
            new TestCaseData(options, code).SetArgDisplayNames(name);

        yield return Case("IPv6 option given an IPv4 address", new() { IPv6Address = IPAddress.Parse("10.72.0.9") }, CnmErrorCodes.InvalidAddress);
        yield return Case("IPv4 option given an IPv6 address", new() { IPv4Address = IPAddress.Parse("fd00::9") }, CnmErrorCodes.InvalidAddress);
        yield return Case("IPv6 option given an IPv4-mapped address", new() { IPv6Address = IPAddress.Parse("::ffff:10.72.0.9") }, CnmErrorCodes.InvalidAddress);
        yield return Case("IPv6 address on a network without IPv6", new() { IPv6Address = IPAddress.Parse("fd00::9") }, CnmErrorCodes.InvalidAddress);
        yield return Case("scoped link-local address", new() { LinkLocalAddresses = [new CidrAddress(IPAddress.Parse("fe80::9%1"), 64)] }, CnmErrorCodes.InvalidAddress);
        yield return Case("multicast MAC", new() { MacAddress = PhysicalAddress.Parse("01-00-5E-00-00-01") }, CnmErrorCodes.InvalidAddress);
        yield return Case("broadcast MAC", new() { MacAddress = PhysicalAddress.Parse("FF-FF-FF-FF-FF-FF") }, CnmErrorCodes.InvalidAddress);
        yield return Case("all-zero MAC", new() { MacAddress = PhysicalAddress.Parse("00-00-00-00-00-00") }, CnmErrorCodes.InvalidAddress);
        yield return Case("short MAC", new() { MacAddress = new PhysicalAddress([2, 0, 0, 0, 1]) }, CnmErrorCodes.InvalidAddress);
        yield return Case("port binding with a null host address", new() { PortBindings = [new PortBinding(TransportProtocol.Tcp, 80, null!, 8080)] }, CnmErrorCodes.InvalidAddress);
        yield return Case("null port binding", new() { PortBindings = [null!] }, CnmErrorCodes.InvalidOption);
        yield return Case("port binding on a scoped address", new() { PortBindings = [new PortBinding(TransportProtocol.Tcp, 80, IPAddress.Parse("fe80::1%1"), 8080)] }, CnmErrorCodes.InvalidAddress);
        yield return Case("port binding with an unknown protocol", new() { PortBindings = [new PortBinding((TransportProtocol)99, 80, IPAddress.Any, 8080)] }, CnmErrorCodes.InvalidOption);
        yield return Case("port binding to container port 0", new() { PortBindings = [new PortBinding(TransportProtocol.Tcp, 0, IPAddress.Any, 8080)] }, CnmErrorCodes.InvalidOption);
        yield return Case("port binding with a reversed range", new() { PortBindings = [new PortBinding(TransportProtocol.Tcp, 80, IPAddress.Any, 8090, 8080)] }, CnmErrorCodes.InvalidOption);
    }

    [TestCaseSource(nameof(InvalidEndpointAddresses))]
    public async Task An_invalid_endpoint_address_mac_or_binding_is_refused_and_nothing_is_written(EndpointCreateOptions options, string code)
    {
        var network = await _c.CreateNetworkAsync("net", ControllerFixture.DriverName, Subnet("10.72.0.0/24"));
        var keysBefore = await F.KeysAsync(CoreStore.Root);

        await ThrowsAsync<CnmInvalidArgumentException>(() => network.CreateEndpointAsync("ep", options).AsTask(), code);

        Assert.That(await F.KeysAsync(CoreStore.Root), Is.EqualTo(keysBefore), "no endpoint record, intent or address");
        F.Driver.Verify(d => d.CreateEndpointAsync(It.IsAny<EndpointCreateRequest>(), It.IsAny<IInterfaceInfo>(), It.IsAny<CancellationToken>()), Times.Never);
        Assert.That(network.Endpoints, Is.Empty);
    }

    [Test]
    public async Task An_address_on_a_network_that_assigns_none_is_refused()
    {
        F.AddDriver("noipam", DriverCapability.LocalScope with { UsesIpam = false });
        await using var c = await F.StartAsync(new CnmSharp.Store.InMemoryKeyValueStore());
        var network = await c.CreateNetworkAsync("plain", "noipam");

        await ThrowsAsync<CnmInvalidArgumentException>(() => network.CreateEndpointAsync("ep", new EndpointCreateOptions { IPv4Address = IPAddress.Parse("10.0.0.9") }).AsTask(), CnmErrorCodes.InvalidAddress);
    }

    [Test]
    public async Task A_driver_that_sets_a_multicast_mac_gets_a_typed_error_and_the_endpoint_is_rolled_back()
    {
        var network = await _c.CreateNetworkAsync("net", ControllerFixture.DriverName, Subnet("10.73.0.0/24"));
        var keysBefore = await F.KeysAsync(CoreStore.Root);
        F.Driver.Setup(d => d.CreateEndpointAsync(It.IsAny<EndpointCreateRequest>(), It.IsAny<IInterfaceInfo>(), It.IsAny<CancellationToken>()))
            .Callback<EndpointCreateRequest, IInterfaceInfo, CancellationToken>((_, info, _) => info.SetMacAddress(PhysicalAddress.Parse("03-00-00-00-00-01")))
            .Returns(ValueTask.CompletedTask);

        await ThrowsAsync<CnmInvalidArgumentException>(() => network.CreateEndpointAsync("ep").AsTask(), CnmErrorCodes.InvalidAddress);

        Assert.That(await F.KeysAsync(CoreStore.Root), Is.EqualTo(keysBefore));
    }

    [Test]
    public async Task The_host_port_the_driver_published_is_reported_and_the_requested_one_after_it_is_revoked()
    {
        var network = await _c.CreateNetworkAsync("net", ControllerFixture.DriverName, Subnet("10.74.0.0/24"));
        var requested = new PortBinding(TransportProtocol.Tcp, 80, IPAddress.Any, 0);
        var endpoint = await network.CreateEndpointAsync("web", new EndpointCreateOptions { PortBindings = [requested] });
        var published = new Dictionary<string, string>(StringComparer.Ordinal);
        F.External.Setup(e => e.ProgramExternalConnectivityAsync(network.Id, endpoint.Id, It.IsAny<CancellationToken>()))
            .Callback(() => published[NetLabels.PortMap] = PortMap.Format([requested with { HostPort = 32768 }]))
            .Returns(ValueTask.CompletedTask);
        F.External.Setup(e => e.RevokeExternalConnectivityAsync(network.Id, endpoint.Id, It.IsAny<CancellationToken>()))
            .Callback(() => published.Remove(NetLabels.PortMap))
            .Returns(ValueTask.CompletedTask);
        F.Driver.Setup(d => d.GetEndpointOperationalInfoAsync(network.Id, endpoint.Id, It.IsAny<CancellationToken>()))
            .ReturnsAsync(() => new Dictionary<string, string>(published, StringComparer.Ordinal));
        Assert.That(endpoint.PortBindings.Single().HostPort, Is.Zero, "requested: ephemeral");

        var sandbox = await _c.CreateSandboxAsync("c1");
        await endpoint.JoinAsync(sandbox);

        Assert.That(endpoint.PortBindings.Single().HostPort, Is.EqualTo(32768));

        // Another process (a new controller on the same store) sees the same.
        await using (var other = await F.StartAsync())
        {
            var seen = other.Networks.Single(n => n.Id == network.Id).FindEndpointById(endpoint.Id)!;
            Assert.That(seen.PortBindings.Single().HostPort, Is.EqualTo(32768));
        }

        await endpoint.LeaveAsync(sandbox);
        Assert.That(endpoint.PortBindings.Single().HostPort, Is.Zero, "not published any more: the request");
    }

    [Test]
    public async Task When_the_gateway_moves_the_other_endpoint_s_published_ports_follow_and_are_stored()
    {
        var a = await _c.CreateNetworkAsync("a", ControllerFixture.DriverName, Subnet("10.75.0.0/24"));
        var b = await _c.CreateNetworkAsync("b", ControllerFixture.DriverName, Subnet("10.76.0.0/24"));
        var binding = new PortBinding(TransportProtocol.Tcp, 80, IPAddress.Any, 0);
        var ea = await a.CreateEndpointAsync("ea", new EndpointCreateOptions { PortBindings = [binding] });
        var eb = await b.CreateEndpointAsync("eb");
        var programmed = new HashSet<string>(StringComparer.Ordinal);
        F.External.Setup(e => e.ProgramExternalConnectivityAsync(It.IsAny<string>(), It.IsAny<string>(), It.IsAny<CancellationToken>()))
            .Callback<string, string, CancellationToken>((_, id, _) => programmed.Add(id))
            .Returns(ValueTask.CompletedTask);
        F.External.Setup(e => e.RevokeExternalConnectivityAsync(It.IsAny<string>(), It.IsAny<string>(), It.IsAny<CancellationToken>()))
            .Callback<string, string, CancellationToken>((_, id, _) => programmed.Remove(id))
            .Returns(ValueTask.CompletedTask);
        F.Driver.Setup(d => d.GetEndpointOperationalInfoAsync(It.IsAny<string>(), It.IsAny<string>(), It.IsAny<CancellationToken>()))
            .ReturnsAsync((string _, string id, CancellationToken _) => new Dictionary<string, string>(StringComparer.Ordinal)
            {
                [NetLabels.PortMap] = PortMap.Format(programmed.Contains(id) && id == ea.Id ? [binding with { HostPort = 40000 }] : []),
            });

        var sandbox = await _c.CreateSandboxAsync("c1");
        await ea.JoinAsync(sandbox);
        Assert.That(ea.PortBindings.Single().HostPort, Is.EqualTo(40000));

        await eb.JoinAsync(sandbox, new JoinOptions { Priority = 10 }); // eb takes the gateway: ea's ports are revoked
        Assert.That(ea.PortBindings.Single().HostPort, Is.Zero);
        await using (var other = await F.StartAsync())
        {
            Assert.That(other.Networks.Single(n => n.Id == a.Id).FindEndpointById(ea.Id)!.PortBindings.Single().HostPort, Is.Zero, "stored with the join of eb");
        }

        await eb.LeaveAsync(sandbox); // back to ea
        Assert.That(ea.PortBindings.Single().HostPort, Is.EqualTo(40000));
        await using (var other = await F.StartAsync())
        {
            Assert.That(other.Networks.Single(n => n.Id == a.Id).FindEndpointById(ea.Id)!.PortBindings.Single().HostPort, Is.EqualTo(40000), "stored with the leave of eb");
        }
    }
}
