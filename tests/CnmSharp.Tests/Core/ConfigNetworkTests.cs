using CnmSharp.Core.Persistence;
using CnmSharp.Drivers;
using Moq;

namespace CnmSharp.Tests.Core;

/// <summary>Configuration-only networks and networks created from them: libnetwork's <c>ConfigOnly</c> and
/// <c>ConfigFrom</c> rules (its <c>TestNetworkConfig</c>), each checked at the call with nothing left behind.</summary>
public sealed class ConfigNetworkTests : ControllerTestBase
{
    private static readonly NetworkCreateOptions ConfigOnly = new() { ConfigOnly = true };

    private static NetworkCreateOptions From(string config) => new() { ConfigFrom = config };

    /// <summary>A configuration network with a subnet, a gateway, IPv6, labels and driver options.</summary>
    private static NetworkCreateOptions FullConfig() => new()
    {
        ConfigOnly = true,
        EnableIPv6 = true,
        IPv4Config = [new IpamConfig { Subnet = "10.160.0.0/24", Gateway = "10.160.0.254", IPRange = "10.160.0.128/25" }],
        IPv6Config = [new IpamConfig { Subnet = "fd00:160::/64" }],
        Labels = new Dictionary<string, string> { ["team"] = "net" },
        DriverOptions = new Dictionary<string, string> { ["test.mtu"] = "1400" },
    };

    private async Task<IReadOnlyList<string>> NetworkNamesInStoreAsync() =>
        (await F.Store.ListAsync(CoreStore.NetworkPrefix)).Select(e => CoreStore.Deserialize(e, CoreJsonContext.Default.NetworkRecord).Name).Order(StringComparer.Ordinal).ToArray();

    [Test]
    public async Task A_config_only_network_is_stored_local_with_driver_null_calls_no_driver_and_holds_no_pool()
    {
        var c = await F.StartAsync();
        var config = await c.CreateNetworkAsync("cfg", ControllerFixture.DriverName, FullConfig());

        Assert.Multiple(() =>
        {
            Assert.That(config.ConfigOnly, Is.True);
            Assert.That(config.ConfigFrom, Is.Null);
            Assert.That(config.Driver, Is.EqualTo("null"));
            Assert.That(config.Scope, Is.EqualTo("local"));
            Assert.That(config.EnableIPv6, Is.True);
            Assert.That(config.IPv4Config.Single().Subnet, Is.EqualTo("10.160.0.0/24"));
            Assert.That(config.IPv4Config.Single().Gateway, Is.EqualTo("10.160.0.254"));
            Assert.That(config.IPv6Config.Single().Subnet, Is.EqualTo("fd00:160::/64"));
            Assert.That(config.IPv4Info, Is.Empty, "no pool reserved");
            Assert.That(config.IPv6Info, Is.Empty, "no pool reserved");
            Assert.That(config.Labels["team"], Is.EqualTo("net"));
            Assert.That(config.DriverOptions["test.mtu"], Is.EqualTo("1400"));
            Assert.That(c.GetNetwork("cfg"), Is.SameAs(config));
        });
        F.Driver.Verify(d => d.CreateNetworkAsync(It.Is<NetworkCreateRequest>(r => r.NetworkName == "cfg"), It.IsAny<CancellationToken>()), Times.Never);
        Assert.That(await F.KeysAsync(CoreStore.IntentPrefix), Is.Empty);

        // The subnet is free: a network of its own can take it while the configuration network exists.
        var own = await c.CreateNetworkAsync("own", ControllerFixture.DriverName, Subnet("10.160.0.0/24"));
        Assert.That(own.IPv4Info.Single().Pool.ToString(), Is.EqualTo("10.160.0.0/24"));
    }

    [Test]
    public async Task A_config_only_network_does_not_count_as_an_instance_of_the_null_driver()
    {
        F.Configure = o => o.CreateDefaultNetworks = false;
        var c = await F.StartAsync();
        await c.CreateNetworkAsync("cfg", "bridge", ConfigOnly);

        var none = await c.CreateNetworkAsync("none", "null");
        Assert.That(none.Driver, Is.EqualTo("null"));
        await ThrowsAsync<CnmConflictException>(async () => await c.CreateNetworkAsync("none2", "null"), CnmErrorCodes.DriverForbidden);
    }

    [Test]
    public async Task A_config_only_network_with_an_invalid_ipam_configuration_is_refused_at_create()
    {
        var c = await F.StartAsync();
        await ThrowsAsync<CnmInvalidArgumentException>(
            async () => await c.CreateNetworkAsync("cfg", ControllerFixture.DriverName, ConfigOnly with { IPv4Config = [new IpamConfig { Subnet = "10.160.0.0/33" }] }),
            CnmErrorCodes.InvalidPool);
        await ThrowsAsync<CnmInvalidArgumentException>(
            async () => await c.CreateNetworkAsync("cfg", ControllerFixture.DriverName, ConfigOnly with { IPv6Config = [new IpamConfig { Subnet = "fd00:160::/64" }] }),
            CnmErrorCodes.InvalidOption);
        Assert.That(c.FindNetworkByName("cfg"), Is.Null);
        Assert.That(await NetworkNamesInStoreAsync(), Does.Not.Contain("cfg"));
    }

    private static IEnumerable<TestCaseData> OperatorSettings()
    {
        yield return new TestCaseData(ConfigOnly with { ConfigFrom = "other" }).SetName("Config_only_with_config_from_is_refused");
        yield return new TestCaseData(ConfigOnly with { Internal = true }).SetName("Config_only_internal_is_refused");
        yield return new TestCaseData(ConfigOnly with { DriverOptions = new Dictionary<string, string> { [NetLabels.Internal] = "true" } }).SetName("Config_only_internal_driver_option_is_refused");
        yield return new TestCaseData(ConfigOnly with { Attachable = true }).SetName("Config_only_attachable_is_refused");
        yield return new TestCaseData(ConfigOnly with { Scope = DriverScope.Local }).SetName("Config_only_with_a_scope_is_refused");
    }

    [TestCaseSource(nameof(OperatorSettings))]
    public async Task Config_only_refuses_operator_settings(NetworkCreateOptions options)
    {
        var c = await F.StartAsync();
        await c.CreateNetworkAsync("other", ControllerFixture.DriverName, ConfigOnly);

        await ThrowsAsync<CnmInvalidArgumentException>(async () => await c.CreateNetworkAsync("cfg", ControllerFixture.DriverName, options), CnmErrorCodes.InvalidOption);
        Assert.That(c.FindNetworkByName("cfg"), Is.Null);
        Assert.That(await NetworkNamesInStoreAsync(), Does.Not.Contain("cfg"));
    }

    [Test]
    public async Task An_endpoint_on_a_config_only_network_is_refused_and_nothing_is_left()
    {
        var c = await F.StartAsync();
        var config = await c.CreateNetworkAsync("cfg", ControllerFixture.DriverName, FullConfig());

        await ThrowsAsync<CnmConflictException>(async () => await config.CreateEndpointAsync("ep"), CnmErrorCodes.ConfigOnlyNetwork);
        Assert.Multiple(async () =>
        {
            Assert.That(config.Endpoints, Is.Empty);
            Assert.That(await F.KeysAsync(CoreStore.EndpointPrefix), Is.Empty);
            Assert.That(await F.KeysAsync(CoreStore.IntentPrefix), Is.Empty);
        });
    }

    private static IEnumerable<TestCaseData> OwnSettings()
    {
        yield return new TestCaseData(From("cfg") with { EnableIPv6 = true }).SetName("Config_from_with_its_own_IPv6_is_refused");
        yield return new TestCaseData(From("cfg") with { IpamDriver = "my-ipam" }).SetName("Config_from_with_its_own_IPAM_driver_is_refused");
        yield return new TestCaseData(From("cfg") with { IpamOptions = new Dictionary<string, string> { ["k"] = "v" } }).SetName("Config_from_with_its_own_IPAM_options_is_refused");
        yield return new TestCaseData(From("cfg") with { IPv4Config = [new IpamConfig { Subnet = "10.162.0.0/24" }] }).SetName("Config_from_with_its_own_IPv4_config_is_refused");
        yield return new TestCaseData(From("cfg") with { IPv6Config = [new IpamConfig { Subnet = "fd00:162::/64" }] }).SetName("Config_from_with_its_own_IPv6_config_is_refused");
        yield return new TestCaseData(From("cfg") with { Labels = new Dictionary<string, string> { ["number"] = "two" } }).SetName("Config_from_with_its_own_labels_is_refused");
        yield return new TestCaseData(From("cfg") with { DriverOptions = new Dictionary<string, string> { [NetLabels.DriverMtu] = "1600" } }).SetName("Config_from_with_its_own_driver_options_is_refused");
    }

    [TestCaseSource(nameof(OwnSettings))]
    public async Task Config_from_refuses_its_own_configuration(NetworkCreateOptions options)
    {
        var c = await F.StartAsync();
        await c.CreateNetworkAsync("cfg", ControllerFixture.DriverName, FullConfig());

        await ThrowsAsync<CnmInvalidArgumentException>(async () => await c.CreateNetworkAsync("net", ControllerFixture.DriverName, options), CnmErrorCodes.InvalidOption);
        Assert.That(c.FindNetworkByName("net"), Is.Null);
        Assert.That(await NetworkNamesInStoreAsync(), Is.EqualTo(new[] { "cfg", "host", "none" }));
        F.Driver.Verify(d => d.CreateNetworkAsync(It.IsAny<NetworkCreateRequest>(), It.IsAny<CancellationToken>()), Times.Never);

        // The configuration network is not held by the refused one.
        await c.GetNetwork("cfg").DeleteAsync();
    }

    [Test]
    public async Task Config_from_a_missing_network_is_not_found_and_from_a_network_that_is_not_config_only_is_invalid()
    {
        var c = await F.StartAsync();
        await c.CreateNetworkAsync("plain", ControllerFixture.DriverName, Subnet("10.163.0.0/24"));

        var missing = await ThrowsAsync<CnmNotFoundException>(async () => await c.CreateNetworkAsync("net", ControllerFixture.DriverName, From("nope")), CnmErrorCodes.NoSuchNetwork);
        Assert.That(missing.Reason, Does.Contain("\"nope\""));
        var plain = await ThrowsAsync<CnmInvalidArgumentException>(async () => await c.CreateNetworkAsync("net", ControllerFixture.DriverName, From("plain")), CnmErrorCodes.InvalidOption);
        Assert.That(plain.Reason, Does.Contain("\"plain\"").And.Contain("not a configuration-only network"));
        await ThrowsAsync<CnmInvalidArgumentException>(async () => await c.CreateNetworkAsync("net", ControllerFixture.DriverName, From("")), CnmErrorCodes.InvalidName);
        Assert.That(c.FindNetworkByName("net"), Is.Null);
        F.Driver.Verify(d => d.CreateNetworkAsync(It.Is<NetworkCreateRequest>(r => r.NetworkName == "net"), It.IsAny<CancellationToken>()), Times.Never);
    }

    [Test]
    public async Task Config_from_takes_the_configuration_and_keeps_its_own_operator_settings()
    {
        var c = await F.StartAsync();
        await c.CreateNetworkAsync("cfg", ControllerFixture.DriverName, FullConfig());
        NetworkCreateRequest? seen = null;
        F.Driver.Setup(d => d.CreateNetworkAsync(It.IsAny<NetworkCreateRequest>(), It.IsAny<CancellationToken>()))
            .Callback<NetworkCreateRequest, CancellationToken>((r, _) => seen = r)
            .Returns(ValueTask.CompletedTask);

        // The IPAM driver named "default" is no configuration of its own (libnetwork's rule).
        var net = await c.CreateNetworkAsync("net", ControllerFixture.DriverName, From("cfg") with { Internal = true, Attachable = true, IpamDriver = "default" });

        Assert.Multiple(() =>
        {
            Assert.That(net.ConfigFrom, Is.EqualTo("cfg"));
            Assert.That(net.ConfigOnly, Is.False);
            Assert.That(net.Driver, Is.EqualTo(ControllerFixture.DriverName));
            Assert.That(net.Internal, Is.True);
            Assert.That(net.Attachable, Is.True);
            Assert.That(net.EnableIPv6, Is.True);
            Assert.That(net.IPv4Info.Single().Pool.ToString(), Is.EqualTo("10.160.0.0/24"));
            Assert.That(net.IPv4Info.Single().Gateway?.ToString(), Is.EqualTo("10.160.0.254/24"));
            Assert.That(net.IPv4Config.Single().IPRange, Is.EqualTo("10.160.0.128/25"));
            Assert.That(net.IPv6Info.Single().Pool.ToString(), Is.EqualTo("fd00:160::/64"));
            Assert.That(net.Labels, Is.EquivalentTo(new Dictionary<string, string> { ["team"] = "net" }));
            Assert.That(net.DriverOptions, Is.EquivalentTo(new Dictionary<string, string> { ["test.mtu"] = "1400" }));
            Assert.That(seen, Is.Not.Null);
            Assert.That(seen!.DriverOptions["test.mtu"], Is.EqualTo("1400"));
            Assert.That(seen.Labels["team"], Is.EqualTo("net"));
            Assert.That(seen.EnableIPv6, Is.True);
            Assert.That(seen.Internal, Is.True);
            Assert.That(seen.IPv4Data.Single().Pool.ToString(), Is.EqualTo("10.160.0.0/24"));
        });

        // Endpoints get addresses from the taken configuration (its IP range).
        var ep = await net.CreateEndpointAsync("ep");
        Assert.That(ep.Address?.ToString(), Does.StartWith("10.160.0.1"));
        Assert.That(ep.Address!.Value.Address.GetAddressBytes()[3], Is.GreaterThanOrEqualTo(128));
    }

    [Test]
    public async Task A_referenced_config_network_cannot_be_deleted_until_its_user_is()
    {
        var c = await F.StartAsync();

        // No subnet: each network from it gets a predefined pool of its own (a fixed subnet could serve one only).
        var config = await c.CreateNetworkAsync("cfg", ControllerFixture.DriverName, ConfigOnly with { Labels = new Dictionary<string, string> { ["team"] = "net" } });
        var net = await c.CreateNetworkAsync("net", ControllerFixture.DriverName, From("cfg"));
        var net2 = await c.CreateNetworkAsync("net2", ControllerFixture.DriverName, From("cfg"));
        Assert.That(net2.IPv4Info.Single().Pool, Is.Not.EqualTo(net.IPv4Info.Single().Pool));
        Assert.That(net2.Labels["team"], Is.EqualTo("net"));

        var inUse = await ThrowsAsync<CnmConflictException>(async () => await config.DeleteAsync(), CnmErrorCodes.ConfigNetworkInUse);
        Assert.That(inUse.Reason, Does.Contain("\"net\"").And.Contain("\"net2\""));
        Assert.That(c.FindNetworkByName("cfg"), Is.SameAs(config), "still there");

        await net.DeleteAsync();
        await ThrowsAsync<CnmConflictException>(async () => await config.DeleteAsync(), CnmErrorCodes.ConfigNetworkInUse);
        await net2.DeleteAsync();
        await config.DeleteAsync();

        Assert.Multiple(async () =>
        {
            Assert.That(c.FindNetworkByName("cfg"), Is.Null);
            Assert.That(await NetworkNamesInStoreAsync(), Is.EqualTo(new[] { "host", "none" }));
            Assert.That((await F.Store.ListAsync(CoreStore.IpamPrefix)).Where(e => e.Key.Contains("/pool/", StringComparison.Ordinal)), Is.Empty, "no pool left");
        });
        await ThrowsAsync<CnmNotFoundException>(async () => await config.DeleteAsync(), CnmErrorCodes.NoSuchNetwork);
    }

    [Test]
    public async Task A_config_network_cannot_be_deleted_while_a_network_is_being_created_from_it()
    {
        var c = await F.StartAsync();
        var config = await c.CreateNetworkAsync("cfg", ControllerFixture.DriverName, FullConfig());
        var entered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var proceed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        F.Driver.Setup(d => d.CreateNetworkAsync(It.IsAny<NetworkCreateRequest>(), It.IsAny<CancellationToken>()))
            .Returns(async () =>
            {
                entered.TrySetResult();
                await proceed.Task;
            });

        var creating = c.CreateNetworkAsync("slow", ControllerFixture.DriverName, From("cfg")).AsTask();
        await entered.Task;
        try
        {
            var inUse = await ThrowsAsync<CnmConflictException>(async () => await config.DeleteAsync(), CnmErrorCodes.ConfigNetworkInUse);
            Assert.That(inUse.Reason, Does.Contain("\"slow\""));
        }
        finally
        {
            proceed.SetResult();
        }

        var slow = await creating;
        Assert.That(slow.ConfigFrom, Is.EqualTo("cfg"));
        await ThrowsAsync<CnmConflictException>(async () => await config.DeleteAsync(), CnmErrorCodes.ConfigNetworkInUse);
    }

    [Test]
    public async Task A_failed_create_from_a_config_network_does_not_hold_it()
    {
        var c = await F.StartAsync();
        var config = await c.CreateNetworkAsync("cfg", ControllerFixture.DriverName, FullConfig());
        F.Driver.Setup(d => d.CreateNetworkAsync(It.IsAny<NetworkCreateRequest>(), It.IsAny<CancellationToken>()))
            .Returns(() => ValueTask.FromException(new CnmConflictException(CnmErrorCodes.DriverForbidden, "net", "no")));

        await ThrowsAsync<CnmConflictException>(async () => await c.CreateNetworkAsync("net", ControllerFixture.DriverName, From("cfg")), CnmErrorCodes.DriverForbidden);
        await config.DeleteAsync();
        Assert.That(await NetworkNamesInStoreAsync(), Is.EqualTo(new[] { "host", "none" }));
    }

    [Test]
    public async Task Config_networks_and_their_references_survive_a_restart()
    {
        var first = await F.StartAsync();
        var config = await first.CreateNetworkAsync("cfg", ControllerFixture.DriverName, FullConfig());
        var net = await first.CreateNetworkAsync("net", ControllerFixture.DriverName, From("cfg"));
        await first.DisposeAsync();

        var second = await F.StartAsync();
        var config2 = second.GetNetwork("cfg");
        var net2 = second.GetNetwork("net");
        Assert.Multiple(() =>
        {
            Assert.That(config2.Id, Is.EqualTo(config.Id));
            Assert.That(config2.ConfigOnly, Is.True);
            Assert.That(config2.IPv4Config.Single().Subnet, Is.EqualTo("10.160.0.0/24"));
            Assert.That(config2.IPv4Info, Is.Empty);
            Assert.That(net2.Id, Is.EqualTo(net.Id));
            Assert.That(net2.ConfigFrom, Is.EqualTo("cfg"));
            Assert.That(net2.IPv4Info.Single().Pool.ToString(), Is.EqualTo("10.160.0.0/24"));
        });
        await ThrowsAsync<CnmConflictException>(async () => await config2.DeleteAsync(), CnmErrorCodes.ConfigNetworkInUse);
        await ThrowsAsync<CnmConflictException>(async () => await config2.CreateEndpointAsync("ep"), CnmErrorCodes.ConfigOnlyNetwork);
        await net2.DeleteAsync();
        await config2.DeleteAsync();
        Assert.That(await NetworkNamesInStoreAsync(), Is.EqualTo(new[] { "host", "none" }));
    }

    [Test]
    public async Task A_config_network_loads_without_the_null_driver()
    {
        var store = F.Store;
        var first = await F.StartAsync();
        await first.CreateNetworkAsync("cfg", ControllerFixture.DriverName, FullConfig());
        await first.CreateNetworkAsync("net", ControllerFixture.DriverName, From("cfg"));
        await first.DisposeAsync();

        // A controller with only the test driver: the configuration network has no driver to wait for.
        await using var second = await new NetworkControllerBuilder()
            .WithoutBuiltIns()
            .AddDriver(new FakeDriverFactory(ControllerFixture.DriverName, F.Driver.Object))
            .AddIpamDriver(new CnmSharp.Ipam.Default.DefaultIpamFactory())
            .UseFirewall(null)
            .Configure(o =>
            {
                o.StateDirectory = F.Directory;
                o.RunDirectory = Path.Combine(F.Directory, "run");
            })
            .UseStore(store)
            .UseSandboxNetworking(F.Netns.Object)
            .BuildAsync();
        Assert.That(second.FindNetworkByName("none"), Is.Null, "the null driver is not registered");
        Assert.That(second.FindNetworkByName("cfg")?.ConfigOnly, Is.True);
        await ThrowsAsync<CnmConflictException>(async () => await second.GetNetwork("cfg").DeleteAsync(), CnmErrorCodes.ConfigNetworkInUse);
    }

    [Test]
    public async Task Another_controller_on_the_same_state_sees_the_reference_and_the_config_network()
    {
        var a = await F.StartAsync();
        var b = await F.StartAsync();
        await a.CreateNetworkAsync("cfg", ControllerFixture.DriverName, FullConfig());

        // B learnt nothing in between: its create reloads and finds the configuration network.
        var net = await b.CreateNetworkAsync("net", ControllerFixture.DriverName, From("cfg"));
        Assert.That(net.IPv4Info.Single().Pool.ToString(), Is.EqualTo("10.160.0.0/24"));

        // A's view of the configuration network is stale; its delete reloads and sees B's network.
        var inUse = await ThrowsAsync<CnmConflictException>(async () => await a.GetNetwork("cfg").DeleteAsync(), CnmErrorCodes.ConfigNetworkInUse);
        Assert.That(inUse.Reason, Does.Contain("\"net\""));

        await b.GetNetwork("net").DeleteAsync();
        await a.GetNetwork("cfg").DeleteAsync();
        await b.RefreshAsync();
        Assert.That(b.FindNetworkByName("cfg"), Is.Null);
    }
}
