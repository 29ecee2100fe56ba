using System.Net;
using CnmSharp.Core.Persistence;
using CnmSharp.Drivers;
using CnmSharp.Ipam;
using Moq;

namespace CnmSharp.Tests.Core;

/// <summary>How a network drives its IPAM: call order, gateways, aux addresses, validation and rollback.</summary>
public sealed class NetworkIpamTests : ControllerTestBase
{
    private const string PoolId = "LocalDefault/10.30.0.0/24";
    private static readonly IPNetwork Pool = IPNetwork.Parse("10.30.0.0/24");
    private Mock<IIpamDriver> _ipam = null!;

    [SetUp]
    public void RegisterStrictIpam()
    {
        _ipam = ControllerFixture.StrictIpam();
        F.AddIpam(_ipam.Object);
    }

    private static NetworkCreateOptions Options(params IpamConfig[] v4) => new() { IpamDriver = ControllerFixture.MockIpamName, IPv4Config = v4 };

    private static bool IsGatewayRequest(IReadOnlyDictionary<string, string> o) =>
        o.TryGetValue(NetLabels.RequestAddressType, out var t) && t == NetLabels.RequestAddressTypeGateway;

    private static AllocatedAddress Allocated(string cidr) => new(CidrAddress.Parse(cidr), new Dictionary<string, string>());

    private void SetupPool(IReadOnlyDictionary<string, string>? meta = null, IPNetwork? pool = null, MockSequence? sequence = null)
    {
        var returns = sequence is null
            ? _ipam.Setup(i => i.RequestPoolAsync(It.IsAny<PoolRequest>(), It.IsAny<CancellationToken>()))
            : _ipam.InSequence(sequence).Setup(i => i.RequestPoolAsync(It.IsAny<PoolRequest>(), It.IsAny<CancellationToken>()));
        returns.ReturnsAsync(new AllocatedPool(PoolId, pool ?? Pool, meta ?? new Dictionary<string, string>()));
    }

    private void SetupReleases()
    {
        _ipam.Setup(i => i.ReleaseAddressAsync(PoolId, It.IsAny<IPAddress>(), It.IsAny<CancellationToken>())).Returns(ValueTask.CompletedTask);
        _ipam.Setup(i => i.ReleasePoolAsync(PoolId, It.IsAny<CancellationToken>())).Returns(ValueTask.CompletedTask);
    }

    private void VerifyOnlyRegistrationCalls()
    {
        _ipam.Verify(i => i.GetDefaultAddressSpacesAsync(It.IsAny<CancellationToken>()), Times.Once);
        _ipam.VerifyGet(i => i.Capability, Times.AtLeastOnce(), "registration reads the capability (request replay)");
        _ipam.VerifyNoOtherCalls();
        F.Driver.Verify(d => d.CreateNetworkAsync(It.IsAny<NetworkCreateRequest>(), It.IsAny<CancellationToken>()), Times.Never);
    }

    [Test]
    public async Task Pool_then_gateway_then_aux_addresses_are_requested_in_order()
    {
        var sequence = new MockSequence();
        SetupPool(sequence: sequence);
        _ipam.InSequence(sequence)
            .Setup(i => i.RequestAddressAsync(PoolId, IPAddress.Parse("10.30.0.254"), It.Is<IReadOnlyDictionary<string, string>>(o => IsGatewayRequest(o)), It.IsAny<CancellationToken>()))
            .ReturnsAsync(Allocated("10.30.0.254/24"));
        _ipam.InSequence(sequence)
            .Setup(i => i.RequestAddressAsync(PoolId, IPAddress.Parse("10.30.0.5"), It.Is<IReadOnlyDictionary<string, string>>(o => !IsGatewayRequest(o)), It.IsAny<CancellationToken>()))
            .ReturnsAsync(Allocated("10.30.0.5/24"));
        var c = await F.StartAsync();

        var n = await c.CreateNetworkAsync("ordered", ControllerFixture.DriverName, Options(new IpamConfig
        {
            Subnet = "10.30.0.0/24",
            Gateway = "10.30.0.254",
            AuxAddresses = new Dictionary<string, string> { ["router"] = "10.30.0.5" },
        }));

        Assert.Multiple(() =>
        {
            Assert.That(n.IPv4Info[0].PoolId, Is.EqualTo(PoolId));
            Assert.That(n.IPv4Info[0].Gateway.ToString(), Is.EqualTo("10.30.0.254/24"));
            Assert.That(n.IPv4Info[0].AuxAddresses["router"].ToString(), Is.EqualTo("10.30.0.5/24"));
        });
        _ipam.Verify(i => i.RequestPoolAsync(It.Is<PoolRequest>(r => r.Pool == "10.30.0.0/24" && !r.IPv6 && r.AddressSpace == "LocalDefault"), It.IsAny<CancellationToken>()), Times.Once);
        _ipam.Verify(i => i.RequestAddressAsync(PoolId, It.IsAny<IPAddress?>(), It.IsAny<IReadOnlyDictionary<string, string>>(), It.IsAny<CancellationToken>()), Times.Exactly(2));
    }

    [Test]
    public async Task One_empty_config_asks_for_a_predefined_pool_and_a_gateway()
    {
        SetupPool();
        _ipam.Setup(i => i.RequestAddressAsync(PoolId, null, It.Is<IReadOnlyDictionary<string, string>>(o => IsGatewayRequest(o)), It.IsAny<CancellationToken>()))
            .ReturnsAsync(Allocated("10.30.0.1/24"));
        var c = await F.StartAsync();

        var n = await c.CreateNetworkAsync("auto", ControllerFixture.DriverName, Options());

        _ipam.Verify(i => i.RequestPoolAsync(It.Is<PoolRequest>(r => r.Pool == null && r.SubPool == null && !r.IPv6), It.IsAny<CancellationToken>()), Times.Once);
        Assert.That(n.IPv4Info.Single().Gateway.ToString(), Is.EqualTo("10.30.0.1/24"));
    }

    [Test]
    public async Task A_gateway_chosen_by_the_IPAM_in_the_pool_meta_is_used_without_a_gateway_request()
    {
        SetupPool(meta: new Dictionary<string, string> { [NetLabels.RequestAddressTypeGateway] = "10.30.0.200/24" });
        var c = await F.StartAsync();

        var n = await c.CreateNetworkAsync("metagw", ControllerFixture.DriverName, Options());

        Assert.That(n.IPv4Info[0].Gateway.ToString(), Is.EqualTo("10.30.0.200/24"));
        _ipam.Verify(i => i.RequestAddressAsync(It.IsAny<string>(), It.IsAny<IPAddress?>(), It.IsAny<IReadOnlyDictionary<string, string>>(), It.IsAny<CancellationToken>()), Times.Never);
    }

    [TestCase("10.30.0.0/33", null, null)]
    [TestCase("10.30.0.1/24", null, null)]
    [TestCase("not-a-subnet", null, null)]
    [TestCase("fd00::/64", null, null)]
    [TestCase("10.30.0.0/24", "10.31.0.1", null)]
    [TestCase("10.30.0.0/24", "nonsense", null)]
    [TestCase("10.30.0.0/24", null, "10.31.0.0/25")]
    [TestCase("10.30.0.0/24", null, "10.30.0.0/16")]
    [TestCase(null, "10.30.0.1", null)]
    [TestCase(null, null, "10.30.0.0/25")]
    public async Task Invalid_configs_are_refused_before_any_IPAM_or_driver_call(string? subnet, string? gateway, string? range)
    {
        var c = await F.StartAsync();

        var ex = await CatchAsync(() => c.CreateNetworkAsync("bad", ControllerFixture.DriverName, Options(new IpamConfig { Subnet = subnet, Gateway = gateway, IPRange = range })).AsTask());

        Assert.That(ex, Is.InstanceOf<CnmInvalidArgumentException>());
        VerifyOnlyRegistrationCalls();
    }

    [Test]
    public async Task Overlapping_subnets_are_refused_before_any_IPAM_call()
    {
        var c = await F.StartAsync();

        await ThrowsAsync<CnmInvalidArgumentException>(
            () => c.CreateNetworkAsync("overlap", ControllerFixture.DriverName, Options(new IpamConfig { Subnet = "10.40.0.0/16" }, new IpamConfig { Subnet = "10.40.2.0/24" })).AsTask(),
            CnmErrorCodes.PoolOverlap);
        VerifyOnlyRegistrationCalls();
    }

    [Test]
    public async Task An_aux_address_outside_the_subnet_is_refused_before_any_IPAM_call()
    {
        var c = await F.StartAsync();

        await ThrowsAsync<CnmInvalidArgumentException>(
            () => c.CreateNetworkAsync("aux", ControllerFixture.DriverName, Options(new IpamConfig
            {
                Subnet = "10.30.0.0/24",
                AuxAddresses = new Dictionary<string, string> { ["far"] = "10.99.0.1" },
            })).AsTask(),
            CnmErrorCodes.IPOutOfRange);
        VerifyOnlyRegistrationCalls();
    }

    [Test]
    public async Task An_aux_address_outside_the_pool_the_IPAM_returned_fails_and_releases_what_was_taken()
    {
        // The IPAM hands back a smaller pool than asked for: the aux address is in the subnet but not in the pool.
        SetupPool(pool: IPNetwork.Parse("10.30.0.0/25"));
        _ipam.Setup(i => i.RequestAddressAsync(PoolId, null, It.IsAny<IReadOnlyDictionary<string, string>>(), It.IsAny<CancellationToken>()))
            .ReturnsAsync(Allocated("10.30.0.1/25"));
        SetupReleases();
        var c = await F.StartAsync();

        await ThrowsAsync<CnmConflictException>(
            () => c.CreateNetworkAsync("aux", ControllerFixture.DriverName, Options(new IpamConfig
            {
                Subnet = "10.30.0.0/24",
                AuxAddresses = new Dictionary<string, string> { ["high"] = "10.30.0.200" },
            })).AsTask(),
            CnmErrorCodes.IPOutOfRange);

        _ipam.Verify(i => i.ReleaseAddressAsync(PoolId, IPAddress.Parse("10.30.0.1"), It.IsAny<CancellationToken>()), Times.Once);
        _ipam.Verify(i => i.ReleasePoolAsync(PoolId, It.IsAny<CancellationToken>()), Times.Once);
        Assert.That(c.FindNetworkByName("aux"), Is.Null);
    }

    [Test]
    public async Task A_driver_failure_releases_gateway_aux_and_pool_and_stores_nothing()
    {
        SetupPool();
        _ipam.Setup(i => i.RequestAddressAsync(PoolId, It.IsAny<IPAddress?>(), It.IsAny<IReadOnlyDictionary<string, string>>(), It.IsAny<CancellationToken>()))
            .ReturnsAsync((string _, IPAddress? ip, IReadOnlyDictionary<string, string> _, CancellationToken _) => Allocated((ip ?? IPAddress.Parse("10.30.0.1")) + "/24"));
        SetupReleases();
        F.Driver.Setup(d => d.CreateNetworkAsync(It.IsAny<NetworkCreateRequest>(), It.IsAny<CancellationToken>()))
            .Returns(() => ValueTask.FromException(new CnmInternalException(CnmErrorCodes.KernelError, "bridge", "no bridge for you")));
        var c = await F.StartAsync();
        var networksBefore = await F.KeysAsync(CoreStore.NetworkPrefix);

        await ThrowsAsync<CnmInternalException>(
            () => c.CreateNetworkAsync("failing", ControllerFixture.DriverName, Options(new IpamConfig
            {
                Subnet = "10.30.0.0/24",
                AuxAddresses = new Dictionary<string, string> { ["a"] = "10.30.0.9" },
            })).AsTask(),
            CnmErrorCodes.KernelError);

        _ipam.Verify(i => i.ReleaseAddressAsync(PoolId, IPAddress.Parse("10.30.0.1"), It.IsAny<CancellationToken>()), Times.Once);
        _ipam.Verify(i => i.ReleaseAddressAsync(PoolId, IPAddress.Parse("10.30.0.9"), It.IsAny<CancellationToken>()), Times.Once);
        _ipam.Verify(i => i.ReleasePoolAsync(PoolId, It.IsAny<CancellationToken>()), Times.Once);
        var networksAfter = await F.KeysAsync(CoreStore.NetworkPrefix);
        var intents = await F.KeysAsync(CoreStore.IntentPrefix);
        Assert.Multiple(() =>
        {
            Assert.That(c.FindNetworkByName("failing"), Is.Null);
            Assert.That(networksAfter, Is.EqualTo(networksBefore));
            Assert.That(intents, Is.Empty);
        });
    }

    [Test]
    public async Task Delete_releases_aux_gateway_and_pool()
    {
        SetupPool();
        _ipam.Setup(i => i.RequestAddressAsync(PoolId, It.IsAny<IPAddress?>(), It.IsAny<IReadOnlyDictionary<string, string>>(), It.IsAny<CancellationToken>()))
            .ReturnsAsync((string _, IPAddress? ip, IReadOnlyDictionary<string, string> _, CancellationToken _) => Allocated((ip ?? IPAddress.Parse("10.30.0.1")) + "/24"));
        SetupReleases();
        var c = await F.StartAsync();
        var n = await c.CreateNetworkAsync("del", ControllerFixture.DriverName, Options(new IpamConfig
        {
            Subnet = "10.30.0.0/24",
            AuxAddresses = new Dictionary<string, string> { ["a"] = "10.30.0.9" },
        }));

        await n.DeleteAsync();

        _ipam.Verify(i => i.ReleaseAddressAsync(PoolId, IPAddress.Parse("10.30.0.1"), It.IsAny<CancellationToken>()), Times.Once);
        _ipam.Verify(i => i.ReleaseAddressAsync(PoolId, IPAddress.Parse("10.30.0.9"), It.IsAny<CancellationToken>()), Times.Once);
        _ipam.Verify(i => i.ReleasePoolAsync(PoolId, It.IsAny<CancellationToken>()), Times.Once);
        F.Driver.Verify(d => d.DeleteNetworkAsync(n.Id, It.IsAny<CancellationToken>()), Times.Once);
        Assert.That(c.FindNetworkById(n.Id), Is.Null);
    }

    [Test]
    public async Task An_endpoint_gets_a_MAC_option_from_an_IPAM_that_requires_one()
    {
        var ipam = ControllerFixture.StrictIpam(requiresMac: true);
        IReadOnlyDictionary<string, string>? endpointOptions = null;
        ipam.Setup(i => i.RequestPoolAsync(It.IsAny<PoolRequest>(), It.IsAny<CancellationToken>()))
            .ReturnsAsync(new AllocatedPool("macpool", Pool, new Dictionary<string, string>()));
        ipam.Setup(i => i.RequestAddressAsync("macpool", null, It.Is<IReadOnlyDictionary<string, string>>(o => IsGatewayRequest(o)), It.IsAny<CancellationToken>()))
            .ReturnsAsync(Allocated("10.30.0.1/24"));
        ipam.Setup(i => i.RequestAddressAsync("macpool", null, It.Is<IReadOnlyDictionary<string, string>>(o => !IsGatewayRequest(o)), It.IsAny<CancellationToken>()))
            .Callback<string, IPAddress?, IReadOnlyDictionary<string, string>, CancellationToken>((_, _, o, _) => endpointOptions = o)
            .ReturnsAsync(Allocated("10.30.0.2/24"));
        await using var fixture = new ControllerFixture();
        fixture.AddIpam(ipam.Object);
        var c = await fixture.StartAsync();
        var n = await c.CreateNetworkAsync("mac", ControllerFixture.DriverName, new NetworkCreateOptions { IpamDriver = ControllerFixture.MockIpamName });

        var ep = await n.CreateEndpointAsync("ep");

        Assert.That(endpointOptions, Is.Not.Null);
        Assert.Multiple(() =>
        {
            Assert.That(ep.MacAddress, Is.Not.Null);
            Assert.That(endpointOptions![NetLabels.MacAddress], Is.EqualTo(string.Join(':', ep.MacAddress!.GetAddressBytes().Select(b => b.ToString("x2", System.Globalization.CultureInfo.InvariantCulture)))));
            Assert.That(endpointOptions[NetLabels.IpamOwner], Is.EqualTo(ep.Id));
            Assert.That(ep.Address.ToString(), Is.EqualTo("10.30.0.2/24"));
        });
    }
}
