using System.Net;
using System.Net.NetworkInformation;
using CnmSharp.Core;
using CnmSharp.Core.Persistence;
using CnmSharp.Drivers;
using Moq;

namespace CnmSharp.Tests.Core;

public sealed class EndpointTests : ControllerTestBase
{
    private NetworkController _c = null!;
    private Network _n = null!;

    [SetUp]
    public async Task CreateNetwork()
    {
        _c = await F.StartAsync();
        _n = await _c.CreateNetworkAsync("net", ControllerFixture.DriverName, Subnet("10.60.0.0/24"));
    }

    private static EndpointCreateOptions Preferred(string ip) => new() { IPv4Address = IPAddress.Parse(ip) };

    [Test]
    public async Task An_endpoint_gets_the_first_free_address_and_is_found_by_name_and_id()
    {
        var ep = await _n.CreateEndpointAsync("ep");

        Assert.Multiple(() =>
        {
            Assert.That(ep.Address.ToString(), Is.EqualTo("10.60.0.2/24"));
            Assert.That(_n.FindEndpointByName("ep"), Is.SameAs(ep));
            Assert.That(_n.FindEndpointById(ep.Id), Is.SameAs(ep));
            Assert.That(_n.Endpoints, Is.EqualTo(new[] { ep }));
            Assert.That(ep.Sandbox, Is.Null);
        });
        F.Driver.Verify(d => d.CreateEndpointAsync(It.Is<EndpointCreateRequest>(r => r.EndpointId == ep.Id && r.NetworkId == _n.Id && r.EndpointName == "ep"), It.IsAny<IInterfaceInfo>(), It.IsAny<CancellationToken>()), Times.Once);
    }

    [TestCase("")]
    [TestCase(" ")]
    [TestCase(null)]
    public async Task Looking_up_an_endpoint_by_an_empty_name_or_id_is_an_invalid_argument_as_the_controller_lookups_are(string? blank)
    {
        await _n.CreateEndpointAsync("ep");

        Assert.Multiple(() =>
        {
            Assert.That(Assert.Throws<CnmInvalidArgumentException>(() => _n.FindEndpointByName(blank!))!.Code, Is.EqualTo(CnmErrorCodes.InvalidName));
            Assert.That(Assert.Throws<CnmInvalidArgumentException>(() => _n.FindEndpointById(blank!))!.Code, Is.EqualTo(CnmErrorCodes.InvalidId));
            Assert.That(_n.FindEndpointByName("nope"), Is.Null);
            Assert.That(_n.FindEndpointById("nope"), Is.Null);
        });
    }

    [TestCase("")]
    [TestCase(" ")]
    [TestCase("a b")]
    public async Task A_blank_or_invalid_name_is_refused(string name)
    {
        await ThrowsAsync<CnmInvalidArgumentException>(() => _n.CreateEndpointAsync(name).AsTask(), CnmErrorCodes.InvalidName);
    }

    [Test]
    public async Task A_duplicate_name_in_the_network_is_a_conflict()
    {
        await _n.CreateEndpointAsync("ep");
        await ThrowsAsync<CnmConflictException>(() => _n.CreateEndpointAsync("ep").AsTask(), CnmErrorCodes.EndpointExists);
        Assert.That(_n.Endpoints, Has.Count.EqualTo(1));
    }

    [Test]
    public async Task A_gateway_and_a_static_address_outside_the_ip_range_but_in_the_subnet_are_accepted()
    {
        // Docker's own example: docker network create --subnet 172.28.0.0/16 --ip-range 172.28.5.0/24 --gateway 172.28.0.1
        var n = await _c.CreateNetworkAsync("ranged", ControllerFixture.DriverName, Subnet("172.28.0.0/16", gateway: "172.28.0.1", range: "172.28.5.0/24"));
        var dynamic = await n.CreateEndpointAsync("dynamic");
        var fixedOne = await n.CreateEndpointAsync("fixed", Preferred("172.28.9.9"));

        Assert.Multiple(() =>
        {
            Assert.That(n.IPv4Info[0].Gateway.ToString(), Is.EqualTo("172.28.0.1/16"));
            Assert.That(dynamic.Address.ToString(), Does.StartWith("172.28.5."));
            Assert.That(fixedOne.Address.ToString(), Is.EqualTo("172.28.9.9/16"));
        });
    }

    [Test]
    public async Task A_preferred_address_is_honoured_outside_all_pools_is_invalid_and_taken_is_a_conflict()
    {
        var ep = await _n.CreateEndpointAsync("a", Preferred("10.60.0.77"));
        Assert.That(ep.Address.ToString(), Is.EqualTo("10.60.0.77/24"));

        await ThrowsAsync<CnmInvalidArgumentException>(() => _n.CreateEndpointAsync("b", Preferred("10.61.0.5")).AsTask(), CnmErrorCodes.IPOutOfRange);
        await ThrowsAsync<CnmConflictException>(() => _n.CreateEndpointAsync("c", Preferred("10.60.0.77")).AsTask(), CnmErrorCodes.IPAlreadyAllocated);
        await ThrowsAsync<CnmConflictException>(() => _n.CreateEndpointAsync("d", Preferred("10.60.0.1")).AsTask(), CnmErrorCodes.IPAlreadyAllocated);
        Assert.That(_n.Endpoints.Select(e => e.Name), Is.EqualTo(new[] { "a" }));
    }

    [Test]
    public async Task Pools_are_walked_in_order_and_all_full_is_unavailable()
    {
        var n = await _c.CreateNetworkAsync("small", ControllerFixture.DriverName, new NetworkCreateOptions
        {
            IPv4Config = [new IpamConfig { Subnet = "10.62.0.0/30" }, new IpamConfig { Subnet = "10.63.0.0/30" }],
        });

        var first = await n.CreateEndpointAsync("first");
        var second = await n.CreateEndpointAsync("second");

        Assert.Multiple(() =>
        {
            Assert.That(first.Address.ToString(), Is.EqualTo("10.62.0.2/30"));
            Assert.That(second.Address.ToString(), Is.EqualTo("10.63.0.2/30"));
        });
        await ThrowsAsync<CnmUnavailableException>(() => n.CreateEndpointAsync("third").AsTask(), CnmErrorCodes.NoAvailableIPs);
    }

    [Test]
    public async Task Dual_stack_endpoints_get_both_addresses()
    {
        var n = await _c.CreateNetworkAsync("dual", ControllerFixture.DriverName, new NetworkCreateOptions
        {
            EnableIPv6 = true,
            IPv6Config = [new IpamConfig { Subnet = "fd00:60::/64" }],
        });

        var ep = await n.CreateEndpointAsync("ep", new EndpointCreateOptions { IPv6Address = IPAddress.Parse("fd00:60::10") });

        Assert.Multiple(() =>
        {
            Assert.That(ep.Address, Is.Not.Null);
            Assert.That(ep.AddressIPv6.ToString(), Is.EqualTo("fd00:60::10/64"));
        });
    }

    [Test]
    public async Task Link_local_addresses_must_be_link_local()
    {
        var ok = await _n.CreateEndpointAsync("ll", new EndpointCreateOptions { LinkLocalAddresses = [CidrAddress.Parse("169.254.3.4/16"), CidrAddress.Parse("fe80::42/64")] });
        Assert.That(ok.LinkLocalAddresses.Select(a => a.ToString()), Is.EqualTo(new[] { "169.254.3.4/16", "fe80::42/64" }));

        await ThrowsAsync<CnmInvalidArgumentException>(
            () => _n.CreateEndpointAsync("bad", new EndpointCreateOptions { LinkLocalAddresses = [CidrAddress.Parse("10.1.2.3/8")] }).AsTask(),
            CnmErrorCodes.InvalidAddress);
        F.Driver.Verify(d => d.CreateEndpointAsync(It.Is<EndpointCreateRequest>(r => r.EndpointName == "bad"), It.IsAny<IInterfaceInfo>(), It.IsAny<CancellationToken>()), Times.Never);
    }

    [Test]
    public async Task A_driver_failure_releases_the_address_and_stores_no_record()
    {
        F.Driver.Setup(d => d.CreateEndpointAsync(It.Is<EndpointCreateRequest>(r => r.EndpointName == "fails"), It.IsAny<IInterfaceInfo>(), It.IsAny<CancellationToken>()))
            .Returns(() => ValueTask.FromException(new CnmInternalException(CnmErrorCodes.KernelError, "veth", "boom")));

        await ThrowsAsync<CnmInternalException>(() => _n.CreateEndpointAsync("fails").AsTask(), CnmErrorCodes.KernelError);
        var endpoints = await F.KeysAsync(CoreStore.EndpointPrefix);
        var intents = await F.KeysAsync(CoreStore.IntentPrefix);
        var next = await _n.CreateEndpointAsync("next");

        Assert.Multiple(() =>
        {
            Assert.That(endpoints, Is.Empty);
            Assert.That(intents, Is.Empty);
            Assert.That(_n.FindEndpointByName("fails"), Is.Null);
            Assert.That(next.Address.ToString(), Is.EqualTo("10.60.0.2/24"), "the failed endpoint's address was released");
        });
    }

    [Test]
    public async Task A_driver_may_fill_the_MAC_and_its_choice_is_kept()
    {
        var mac = PhysicalAddress.Parse("02-42-0A-3C-00-09");
        F.Driver.Setup(d => d.CreateEndpointAsync(It.IsAny<EndpointCreateRequest>(), It.IsAny<IInterfaceInfo>(), It.IsAny<CancellationToken>()))
            .Callback<EndpointCreateRequest, IInterfaceInfo, CancellationToken>((_, info, _) => info.SetMacAddress(mac))
            .Returns(ValueTask.CompletedTask);

        var ep = await _n.CreateEndpointAsync("mac");

        Assert.That(ep.MacAddress, Is.EqualTo(mac));
    }

    [Test]
    public async Task A_driver_that_overwrites_the_IPAM_address_fails_the_create_and_the_address_is_released()
    {
        F.Driver.Setup(d => d.CreateEndpointAsync(It.Is<EndpointCreateRequest>(r => r.EndpointName == "greedy"), It.IsAny<IInterfaceInfo>(), It.IsAny<CancellationToken>()))
            .Callback<EndpointCreateRequest, IInterfaceInfo, CancellationToken>((_, info, _) => info.SetIPAddress(CidrAddress.Parse("10.60.0.99/24")))
            .Returns(ValueTask.CompletedTask);

        await ThrowsAsync<CnmConflictException>(() => _n.CreateEndpointAsync("greedy").AsTask(), CnmErrorCodes.AlreadySet);
        var next = await _n.CreateEndpointAsync("next");
        Assert.That(next.Address.ToString(), Is.EqualTo("10.60.0.2/24"));
    }

    [Test]
    public async Task A_driver_of_a_network_without_IPAM_may_set_the_address()
    {
        var noIpam = F.AddDriver("noipam", DriverCapability.LocalScope with { UsesIpam = false });
        noIpam.Setup(d => d.CreateEndpointAsync(It.IsAny<EndpointCreateRequest>(), It.IsAny<IInterfaceInfo>(), It.IsAny<CancellationToken>()))
            .Callback<EndpointCreateRequest, IInterfaceInfo, CancellationToken>((_, info, _) => info.SetIPAddress(CidrAddress.Parse("192.0.2.7/24")))
            .Returns(ValueTask.CompletedTask);
        var c = await F.StartAsync(new CnmSharp.Store.InMemoryKeyValueStore());
        var n = await c.CreateNetworkAsync("drv", "noipam");

        var ep = await n.CreateEndpointAsync("ep");

        Assert.Multiple(() =>
        {
            Assert.That(n.IpamDriver, Is.Null);
            Assert.That(ep.Address.ToString(), Is.EqualTo("192.0.2.7/24"));
        });
    }

    [Test]
    public void Interface_info_setters_refuse_overwrites()
    {
        var info = new InterfaceInfo();
        info.SetMacAddress(PhysicalAddress.Parse("02-00-00-00-00-01"));
        info.SetIPAddress(CidrAddress.Parse("10.0.0.2/24"));
        info.SetIPAddress(CidrAddress.Parse("fd00::2/64"));

        Assert.Multiple(() =>
        {
            Assert.That(Assert.Throws<CnmConflictException>(() => info.SetMacAddress(PhysicalAddress.Parse("02-00-00-00-00-02")))!.Code, Is.EqualTo(CnmErrorCodes.AlreadySet));
            Assert.That(Assert.Throws<CnmConflictException>(() => info.SetIPAddress(CidrAddress.Parse("10.0.0.3/24")))!.Code, Is.EqualTo(CnmErrorCodes.AlreadySet));
            Assert.That(Assert.Throws<CnmConflictException>(() => info.SetIPAddress(CidrAddress.Parse("fd00::3/64")))!.Code, Is.EqualTo(CnmErrorCodes.AlreadySet));
            Assert.That(Assert.Throws<CnmInvalidArgumentException>(() => new InterfaceInfo().SetMacAddress(PhysicalAddress.Parse("02-00-00-00-00-01-02-03")))!.Code, Is.EqualTo(CnmErrorCodes.InvalidAddress));
            Assert.That(info.Address.ToString(), Is.EqualTo("10.0.0.2/24"));
            Assert.That(info.AddressIPv6.ToString(), Is.EqualTo("fd00::2/64"));
        });
    }

    [Test]
    public void Join_info_setters_refuse_overwrites()
    {
        var join = new JoinInfo(new InterfaceInfo());
        join.SetInterfaceName("veth0", "eth");
        join.SetGateway(IPAddress.Parse("10.0.0.1"));
        join.SetGatewayIPv6(IPAddress.Parse("fd00::1"));

        Assert.Multiple(() =>
        {
            Assert.That(Assert.Throws<CnmConflictException>(() => join.SetInterfaceName("veth1", "eth"))!.Code, Is.EqualTo(CnmErrorCodes.AlreadySet));
            Assert.That(Assert.Throws<CnmConflictException>(() => join.SetGateway(IPAddress.Parse("10.0.0.2")))!.Code, Is.EqualTo(CnmErrorCodes.AlreadySet));
            Assert.That(Assert.Throws<CnmConflictException>(() => join.SetGatewayIPv6(IPAddress.Parse("fd00::2")))!.Code, Is.EqualTo(CnmErrorCodes.AlreadySet));
            Assert.That(Assert.Throws<CnmInvalidArgumentException>(() => new JoinInfo(new InterfaceInfo()).SetGateway(IPAddress.Parse("fd00::1")))!.Code, Is.EqualTo(CnmErrorCodes.InvalidGateway));
        });
    }

    [Test]
    public async Task Deleting_a_joined_endpoint_is_a_conflict_and_forcing_leaves_first()
    {
        var ep = await _n.CreateEndpointAsync("ep");
        var sb = await _c.CreateSandboxAsync("container");
        await ep.JoinAsync(sb);

        await ThrowsAsync<CnmConflictException>(() => ep.DeleteAsync().AsTask(), CnmErrorCodes.ActiveContainer);
        Assert.That(_n.FindEndpointByName("ep"), Is.SameAs(ep));

        await ep.DeleteAsync(force: true);

        F.Driver.Verify(d => d.LeaveAsync(_n.Id, ep.Id, It.IsAny<CancellationToken>()), Times.Once);
        F.Driver.Verify(d => d.DeleteEndpointAsync(_n.Id, ep.Id, It.IsAny<CancellationToken>()), Times.Once);
        Assert.Multiple(() =>
        {
            Assert.That(sb.Endpoints, Is.Empty);
            Assert.That(_n.Endpoints, Is.Empty);
        });
    }

    [Test]
    public async Task Delete_releases_the_address()
    {
        var ep = await _n.CreateEndpointAsync("ep", Preferred("10.60.0.50"));
        await ep.DeleteAsync();

        var again = await _n.CreateEndpointAsync("again", Preferred("10.60.0.50"));
        var keys = await F.KeysAsync(CoreStore.EndpointKey(_n.Id, ep.Id));

        Assert.Multiple(() =>
        {
            Assert.That(again.Address.ToString(), Is.EqualTo("10.60.0.50/24"));
            Assert.That(keys, Is.Empty);
            Assert.That(_n.FindEndpointById(ep.Id), Is.Null);
        });
        await ThrowsAsync<CnmNotFoundException>(() => ep.DeleteAsync().AsTask(), CnmErrorCodes.NoSuchEndpoint);
    }
}
