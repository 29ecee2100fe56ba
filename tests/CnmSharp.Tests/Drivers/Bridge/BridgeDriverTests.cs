using CnmSharp.Drivers.Common;
using System.Net;
using CnmSharp.Core;
using CnmSharp.Drivers;
using CnmSharp.Drivers.Bridge;
using CnmSharp.Firewall;
using CnmSharp.Netlink;
using CnmSharp.Store;
using Microsoft.Extensions.Logging.Abstractions;
using Moq;

namespace CnmSharp.Tests.Drivers.Bridge;

/// <summary>The driver against a fake kernel (a stateful mock of <see cref="IRtnetlinkClient"/>) and a mocked firewall.</summary>
public class BridgeDriverTests
{
    private const string Net1 = "1111111111111111111111111111111111111111111111111111111111111111";
    private const string Net2 = "2222222222222222222222222222222222222222222222222222222222222222";
    private const string Ep1 = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    private const string Ep2 = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    private InMemoryKeyValueStore _store = null!;
    private FakeKernel _kernel = null!;
    private Mock<IFirewallBackend> _firewall = null!;
    private List<string> _calls = null!;

    [SetUp]
    public void SetUp()
    {
        _store = new InMemoryKeyValueStore();
        _calls = [];
        _kernel = new FakeKernel(_calls);
        _firewall = new Mock<IFirewallBackend>(MockBehavior.Loose);
        _firewall.Setup(f => f.SetupNetworkAsync(It.IsAny<FirewallNetwork>(), It.IsAny<CancellationToken>()))
            .Callback<FirewallNetwork, CancellationToken>((n, _) => _calls.Add("fw setup " + n.BridgeName)).Returns(ValueTask.CompletedTask);
        _firewall.Setup(f => f.TeardownNetworkAsync(It.IsAny<FirewallNetwork>(), It.IsAny<CancellationToken>()))
            .Callback<FirewallNetwork, CancellationToken>((n, _) => _calls.Add("fw teardown " + n.BridgeName)).Returns(ValueTask.CompletedTask);
        _firewall.Setup(f => f.SetupPortForwardsAsync(It.IsAny<FirewallPortForward>(), It.IsAny<CancellationToken>()))
            .Callback<FirewallPortForward, CancellationToken>((p, _) => _calls.Add("fw forwards " + p.EndpointId[..4])).Returns(ValueTask.CompletedTask);
        _firewall.Setup(f => f.TeardownPortForwardsAsync(It.IsAny<FirewallPortForward>(), It.IsAny<CancellationToken>()))
            .Callback<FirewallPortForward, CancellationToken>((p, _) => _calls.Add("fw unforward " + p.EndpointId[..4])).Returns(ValueTask.CompletedTask);
        _firewall.Setup(f => f.ReconcileOwnerAsync("bridge", It.IsAny<IReadOnlyList<FirewallNetwork>>(), It.IsAny<IReadOnlyList<FirewallPortForward>>(), It.IsAny<CancellationToken>()))
            .Callback<string, IReadOnlyList<FirewallNetwork>, IReadOnlyList<FirewallPortForward>, CancellationToken>((_, n, p, _) => _calls.Add($"fw reconcile {n.Count} {p.Count}")).Returns(ValueTask.CompletedTask);
    }

    [TearDown]
    public async Task TearDown()
    {
        _kernel.Dispose();
        await _store.DisposeAsync();
    }

    private BridgeDriver NewDriver(BridgeDriverOptions? options = null) => new(
        new DriverContext
        {
            ControllerId = "c",
            RunDirectory = "/tmp/none",
            Store = _store,
            StoreKeyPrefix = "cnm/v1/driver/bridge/",
            LoggerFactory = NullLoggerFactory.Instance,
            Firewall = _firewall.Object,
        },
        options ?? new BridgeDriverOptions(),
        _kernel,
        new HostPortAllocator(new HostPortAllocatorOptions { EphemeralStart = 50000, EphemeralEnd = 50010 }));

    private static NetworkCreateRequest Request(string id, string pool, Dictionary<string, string>? options = null) =>
        BridgeNetworkOptionsTests.Request(options, v4: [BridgeNetworkOptionsTests.V4(pool, pool.Replace(".0/24", ".1/24", StringComparison.Ordinal))], id: id);

    private async Task<int> RecordCount() => (await _store.ListAsync("cnm/v1/driver/bridge/")).Count;

    [Test]
    public async Task CreateNetworkRunsTheStepsInOrder()
    {
        var driver = NewDriver();
        await driver.CreateNetworkAsync(Request(Net1, "10.40.0.0/24"));
        Assert.That(_calls, Is.EqualTo(new[]
        {
            "create bridge br-111111111111 mtu 1500",
            "add 10.40.0.1/24 to br-111111111111",
            "up br-111111111111",
            "sysctl net.ipv4.ip_forward=1",
            "fw setup br-111111111111",
        }));
        Assert.That(await RecordCount(), Is.EqualTo(1));
        Assert.That(driver.BuildCreatePlan(driver.NetworksForTest.Single()).StepNames,
            Is.EqualTo(new[] { "persist record", "create bridge", "configure bridge (addresses, MTU, up)", "sysctls", "firewall" }));
    }

    [Test]
    public async Task FirewallFailureUndoesEverythingInReverse()
    {
        _firewall.Setup(f => f.SetupNetworkAsync(It.IsAny<FirewallNetwork>(), It.IsAny<CancellationToken>()))
            .Returns(() => ValueTask.FromException(new CnmInternalException(CnmErrorCodes.KernelError, "fw", "boom")));
        var driver = NewDriver();
        await Assert.ThrowsAsync<CnmInternalException>(async () => await driver.CreateNetworkAsync(Request(Net1, "10.40.0.0/24")));
        var records = await RecordCount();
        Assert.Multiple(() =>
        {
            Assert.That(_calls[^2..], Is.EqualTo(new[] { "delete address 10.40.0.1/24", "delete br-111111111111" }));
            Assert.That(_kernel.Links, Is.Empty);
            Assert.That(records, Is.Zero);
            Assert.That(driver.NetworksForTest, Is.Empty);
        });
        _firewall.Verify(f => f.TeardownNetworkAsync(It.IsAny<FirewallNetwork>(), It.IsAny<CancellationToken>()), Times.Never);
    }

    [Test]
    public async Task KernelFailureAfterCreationDeletesTheBridgeAndRecord()
    {
        _kernel.FailUp = true;
        var driver = NewDriver();
        var ex = await Assert.ThrowsAsync<CnmInternalException>(async () => await driver.CreateNetworkAsync(Request(Net1, "10.40.0.0/24")));
        Assert.That(ex!.Code, Is.EqualTo(CnmErrorCodes.KernelError));
        Assert.That(_kernel.Links, Is.Empty);
        Assert.That(await RecordCount(), Is.Zero);
        _firewall.Verify(f => f.SetupNetworkAsync(It.IsAny<FirewallNetwork>(), It.IsAny<CancellationToken>()), Times.Never);
    }

    [Test]
    public async Task OverlappingSubnetOrSameBridgeNameIsAConflictBeforeAnythingIsTouched()
    {
        var driver = NewDriver();
        await driver.CreateNetworkAsync(Request(Net1, "10.40.0.0/24"));
        var before = _calls.Count;
        var overlap = await Assert.ThrowsAsync<CnmConflictException>(async () => await driver.CreateNetworkAsync(Request(Net2, "10.40.0.0/24")));
        Assert.That(overlap!.Code, Is.EqualTo(CnmErrorCodes.PoolOverlap));
        await Assert.ThrowsAsync<CnmConflictException>(async () => await driver.CreateNetworkAsync(Request(Net2, "10.41.0.0/24", new() { [BridgeOptionKeys.BridgeName] = "br-111111111111" })));
        Assert.That(_calls.Count, Is.EqualTo(before));
        Assert.That(await RecordCount(), Is.EqualTo(1));
    }

    [Test]
    public async Task AnExistingBridgeIsAdoptedAndKept()
    {
        _kernel.Links["cnm0"] = new LinkInfo { Index = 7, Name = "cnm0", Kind = "bridge", Mtu = 1500 };
        var driver = NewDriver();
        await driver.CreateNetworkAsync(Request(Net1, "10.40.0.0/24", new() { [BridgeOptionKeys.DefaultBridge] = "true" }));
        Assert.That(_calls, Does.Not.Contain("create bridge cnm0 mtu 1500"));
        Assert.That(_calls, Does.Contain("add 10.40.0.1/24 to cnm0"));
        await driver.DeleteNetworkAsync(Net1);
        Assert.That(_kernel.Links.ContainsKey("cnm0"), Is.True);
        Assert.That(_calls[^1], Is.EqualTo("delete address 10.40.0.1/24"));
    }

    [Test]
    public async Task ADefaultBridgeWithANameOfItsOwnThatDoesNotExistIsForbiddenAndLeavesNothing()
    {
        var driver = NewDriver();
        var before = _calls.Count;

        var error = await Assert.ThrowsAsync<CnmConflictException>(async () => await driver.CreateNetworkAsync(
            Request(Net1, "10.40.0.0/24", new() { [BridgeOptionKeys.DefaultBridge] = "true", [BridgeOptionKeys.BridgeName] = "mybr0" })));

        var records = await RecordCount();
        Assert.Multiple(() =>
        {
            Assert.That(error!.Code, Is.EqualTo(CnmErrorCodes.DriverForbidden));
            Assert.That(error.Message, Does.Contain("mybr0 must be created manually"));
            Assert.That(_kernel.Links.ContainsKey("mybr0"), Is.False);
            Assert.That(_calls.Count, Is.EqualTo(before), string.Join(", ", _calls.Skip(before)));
            Assert.That(records, Is.Zero);
        });

        // The same name, once it exists, is adopted; the driver's own default name is still created when missing.
        _kernel.Links["mybr0"] = new LinkInfo { Index = 9, Name = "mybr0", Kind = "bridge", Mtu = 1500 };
        await driver.CreateNetworkAsync(Request(Net1, "10.40.0.0/24", new() { [BridgeOptionKeys.DefaultBridge] = "true", [BridgeOptionKeys.BridgeName] = "mybr0" }));
        await driver.DeleteNetworkAsync(Net1);
        await driver.CreateNetworkAsync(Request(Net2, "10.41.0.0/24", new() { [BridgeOptionKeys.DefaultBridge] = "true" }));
        Assert.That(_calls, Does.Contain("create bridge cnm0 mtu 1500"));
    }

    [Test]
    public async Task AnExistingDeviceOfAnotherKindIsAConflict()
    {
        _kernel.Links["br-111111111111"] = new LinkInfo { Index = 7, Name = "br-111111111111", Kind = "veth" };
        await Assert.ThrowsAsync<CnmConflictException>(async () => await NewDriver().CreateNetworkAsync(Request(Net1, "10.40.0.0/24")));
    }

    [Test]
    public async Task DeleteNetworkIsIdempotentAndCleansARecordMemoryLost()
    {
        var driver = NewDriver();
        await driver.DeleteNetworkAsync(Net2);
        await driver.CreateNetworkAsync(Request(Net1, "10.40.0.0/24"));

        // A second driver on the same store that never loaded it (as after a crash before the core recorded the network).
        var amnesiac = NewDriver();
        await amnesiac.DeleteNetworkAsync(Net1);
        Assert.That(await RecordCount(), Is.Zero);
        Assert.That(_kernel.Links, Is.Empty);
        Assert.That(_calls, Does.Contain("fw teardown br-111111111111"));
    }

    [Test]
    public async Task CreateEndpointDerivesTheMacAndPersists()
    {
        var driver = NewDriver();
        await driver.CreateNetworkAsync(Request(Net1, "10.40.0.0/24"));
        var info = new InterfaceInfo();
        info.SetIPAddress(CidrAddress.Parse("10.40.0.2/24"));
        await driver.CreateEndpointAsync(new EndpointCreateRequest { NetworkId = Net1, EndpointId = Ep1, EndpointName = "e" }, info);
        Assert.That(MacAddresses.Format(info.MacAddress!), Is.EqualTo("02:42:0a:28:00:02"));
        Assert.That(await RecordCount(), Is.EqualTo(2));
        var oper = await driver.GetEndpointOperationalInfoAsync(Net1, Ep1);
        Assert.That(oper[NetLabels.MacAddress], Is.EqualTo("02:42:0a:28:00:02"));

        var noAddress = new InterfaceInfo();
        await Assert.ThrowsAsync<CnmInvalidArgumentException>(async () => await driver.CreateEndpointAsync(new EndpointCreateRequest { NetworkId = Net1, EndpointId = Ep2, EndpointName = "f" }, noAddress));
        await Assert.ThrowsAsync<CnmNotFoundException>(async () => await driver.CreateEndpointAsync(new EndpointCreateRequest { NetworkId = Net2, EndpointId = Ep2, EndpointName = "f" }, info));
    }

    [Test]
    public async Task AGivenMacIsKept()
    {
        var driver = NewDriver();
        await driver.CreateNetworkAsync(Request(Net1, "10.40.0.0/24"));
        var info = new InterfaceInfo();
        info.SetIPAddress(CidrAddress.Parse("10.40.0.2/24"));
        info.SetMacAddress(System.Net.NetworkInformation.PhysicalAddress.Parse("02:00:00:00:00:99"));
        await driver.CreateEndpointAsync(new EndpointCreateRequest { NetworkId = Net1, EndpointId = Ep1, EndpointName = "e" }, info);
        Assert.That(MacAddresses.Format(info.MacAddress!), Is.EqualTo("02:00:00:00:00:99"));
    }

    private async Task<BridgeDriver> WithPublishedEndpointsAsync()
    {
        var driver = NewDriver();
        await driver.CreateNetworkAsync(Request(Net1, "10.40.0.0/24"));
        var n = 2;
        foreach (var ep in new[] { Ep1, Ep2 })
        {
            var info = new InterfaceInfo();
            info.SetIPAddress(CidrAddress.Parse($"10.40.0.{n++}/24"));
            await driver.CreateEndpointAsync(
                new EndpointCreateRequest
                {
                    NetworkId = Net1,
                    EndpointId = ep,
                    EndpointName = ep[..4],
                    PortBindings = [new PortBinding(TransportProtocol.Tcp, 80, IPAddress.Any, 8080), new PortBinding(TransportProtocol.Udp, 53, IPAddress.Any, 0)],
                },
                info);
        }

        return driver;
    }

    [Test]
    public async Task PublishingAPortTwiceIsAConflictAndLeavesNothing()
    {
        var driver = await WithPublishedEndpointsAsync();
        await driver.ProgramExternalConnectivityAsync(Net1, Ep1);
        var oper = await driver.GetEndpointOperationalInfoAsync(Net1, Ep1);
        Assert.That(oper[NetLabels.PortMap], Does.Contain("8080").And.Contain("50000"));

        var ex = await Assert.ThrowsAsync<CnmConflictException>(async () => await driver.ProgramExternalConnectivityAsync(Net1, Ep2));
        Assert.That(ex!.Code, Is.EqualTo(CnmErrorCodes.PortAlreadyAllocated));
        Assert.That(_calls.Count(c => c.StartsWith("fw forwards", StringComparison.Ordinal)), Is.EqualTo(1));

        await driver.RevokeExternalConnectivityAsync(Net1, Ep1);
        Assert.That(_calls[^1], Is.EqualTo("fw unforward aaaa"));
        await driver.ProgramExternalConnectivityAsync(Net1, Ep2);
        Assert.That(_calls[^1], Is.EqualTo("fw forwards bbbb"));
    }

    [Test]
    public async Task OnAnIPv6NetworkABindingOnEveryIPv4AddressIsPublishedOnEveryIPv6AddressWithTheSamePort()
    {
        var driver = NewDriver();
        await driver.CreateNetworkAsync(BridgeNetworkOptionsTests.Request(
            v4: [BridgeNetworkOptionsTests.V4("10.40.0.0/24", "10.40.0.1/24")],
            v6: [BridgeNetworkOptionsTests.V4("fd00:40::/64", "fd00:40::1/64")],
            ipv6: true,
            id: Net1));
        var info = new InterfaceInfo();
        info.SetIPAddress(CidrAddress.Parse("10.40.0.2/24"));
        info.SetIPAddress(CidrAddress.Parse("fd00:40::2/64"));
        await driver.CreateEndpointAsync(
            new EndpointCreateRequest
            {
                NetworkId = Net1,
                EndpointId = Ep1,
                EndpointName = "web",
                PortBindings =
                [
                    new PortBinding(TransportProtocol.Tcp, 80, IPAddress.Any, 8080),
                    new PortBinding(TransportProtocol.Udp, 53, IPAddress.Any, 0),
                    new PortBinding(TransportProtocol.Tcp, 443, IPAddress.Any, 8443),
                    new PortBinding(TransportProtocol.Tcp, 443, IPAddress.IPv6Any, 9443),
                    new PortBinding(TransportProtocol.Tcp, 22, IPAddress.Loopback, 2222),
                ],
            },
            info);
        FirewallPortForward? forward = null;
        _firewall.Setup(f => f.SetupPortForwardsAsync(It.IsAny<FirewallPortForward>(), It.IsAny<CancellationToken>()))
            .Callback<FirewallPortForward, CancellationToken>((p, _) => forward = p).Returns(ValueTask.CompletedTask);

        await driver.ProgramExternalConnectivityAsync(Net1, Ep1);

        var published = forward!.PortBindings.Select(b => $"{b.Protocol} {b.HostIP}:{b.HostPort}->{b.ContainerIP}:{b.ContainerPort}").ToArray();
        Assert.That(published, Is.EquivalentTo(new[]
        {
            "Tcp 0.0.0.0:8080->10.40.0.2:80",
            "Udp 0.0.0.0:50000->10.40.0.2:53",
            "Tcp 0.0.0.0:8443->10.40.0.2:443",
            "Tcp :::9443->fd00:40::2:443",
            "Tcp 127.0.0.1:2222->10.40.0.2:22",
            "Tcp :::8080->fd00:40::2:80",
            "Udp :::50000->fd00:40::2:53",
        }), "the copies take the IPv4 binding's port; an explicit IPv6 binding and a specific address are not copied");

        await driver.RevokeExternalConnectivityAsync(Net1, Ep1);
        await driver.ProgramExternalConnectivityAsync(Net1, Ep1);
        Assert.That(forward!.PortBindings, Has.Count.EqualTo(7), "every port, both families, was released and taken again");
    }

    [Test]
    public async Task ARestartedDriverRestoresPortsAndRulesInOneReconcile()
    {
        var driver = await WithPublishedEndpointsAsync();
        await driver.ProgramExternalConnectivityAsync(Net1, Ep1);
        var oper = await driver.GetEndpointOperationalInfoAsync(Net1, Ep1);

        var restarted = NewDriver();
        _calls.Clear();
        await restarted.RestoreAsync(CancellationToken.None);
        Assert.That(_calls, Does.Contain("fw reconcile 1 1"));
        Assert.That(_calls, Does.Not.Contain("create bridge br-111111111111 mtu 1500"));
        Assert.That((await restarted.GetEndpointOperationalInfoAsync(Net1, Ep1))[NetLabels.PortMap], Is.EqualTo(oper[NetLabels.PortMap]));
        await Assert.ThrowsAsync<CnmConflictException>(async () => await restarted.ProgramExternalConnectivityAsync(Net1, Ep2));

        await restarted.ReconcileFirewallAsync();
        Assert.That(_calls[^1], Is.EqualTo("fw reconcile 1 1"));
    }

    [Test]
    public async Task ARestartInTheSameHostNamespaceInstanceAdoptsTheRecordsAndOnlyANewInstanceIsRestored()
    {
        _firewall.Setup(f => f.Name).Returns("iptables");
        _kernel.Instance = "boot-1/7";
        var driver = await WithPublishedEndpointsAsync();
        await driver.ProgramExternalConnectivityAsync(Net1, Ep1);
        var oper = await driver.GetEndpointOperationalInfoAsync(Net1, Ep1);

        // The first start in this instance restores (the records came from a start that never restored).
        _calls.Clear();
        await NewDriver().RestoreAsync(CancellationToken.None);
        Assert.That(_calls, Does.Contain("fw reconcile 1 1"));

        // A later start in the same instance: no kernel change, no reconcile; the backend adopts the records.
        _calls.Clear();
        var again = NewDriver();
        await again.RestoreAsync(CancellationToken.None);
        Assert.Multiple(() =>
        {
            Assert.That(_calls, Is.Empty, "nothing reaches the kernel or the packet filter");
            _firewall.Verify(f => f.AdoptOwnerAsync(
                "bridge",
                It.Is<IReadOnlyList<FirewallNetwork>>(n => n.Count == 1),
                It.Is<IReadOnlyList<FirewallPortForward>>(p => p.Count == 1),
                It.IsAny<CancellationToken>()), Times.Once);
        });
        Assert.That((await again.GetEndpointOperationalInfoAsync(Net1, Ep1))[NetLabels.PortMap], Is.EqualTo(oper[NetLabels.PortMap]), "the ports are taken again");
        await Assert.ThrowsAsync<CnmConflictException>(async () => await again.ProgramExternalConnectivityAsync(Net1, Ep2));

        // The same instance started with another firewall backend: reconciled (that is where a backend switch happens).
        _firewall.Setup(f => f.Name).Returns("nftables");
        _calls.Clear();
        await NewDriver().RestoreAsync(CancellationToken.None);
        Assert.That(_calls, Does.Contain("fw reconcile 1 1"), "a backend switch reconciles");

        // A reboot (another boot id) with the bridge gone: restored in full again.
        _kernel.Instance = "boot-2/7";
        _kernel.Links.Clear();
        _calls.Clear();
        await NewDriver().RestoreAsync(CancellationToken.None);
        Assert.That(_calls, Does.Contain("create bridge br-111111111111 mtu 1500").And.Contain("fw reconcile 1 1"));
    }

    [Test]
    public async Task DeleteEndpointDeletesALeftoverHostVeth()
    {
        var driver = await WithPublishedEndpointsAsync();
        _kernel.Links["vethaaaaaaa"] = new LinkInfo { Index = 40, Name = "vethaaaaaaa", Kind = "veth" };
        await driver.DeleteEndpointAsync(Net1, Ep1);
        Assert.That(_kernel.Links.ContainsKey("vethaaaaaaa"), Is.False);
        await driver.DeleteEndpointAsync(Net1, Ep1);
        Assert.That(await RecordCount(), Is.EqualTo(2));
    }

    private static string HostVethOf(BridgeDriver driver, string endpointId) =>
        driver.NetworksForTest.SelectMany(n => n.Endpoints.Values).Single(e => e.Id == endpointId).Record.HostVeth;

    private static async Task CreateEndpointAsync(BridgeDriver driver, string networkId, string endpointId, string address, PortBinding[]? ports = null)
    {
        var info = new InterfaceInfo();
        info.SetIPAddress(CidrAddress.Parse(address));
        await driver.CreateEndpointAsync(new EndpointCreateRequest { NetworkId = networkId, EndpointId = endpointId, EndpointName = endpointId[..6], PortBindings = ports ?? [] }, info);
    }

    [Test]
    public async Task EndpointsWhoseIdsShareSevenCharactersGetDistinctInterfaceNamesAcrossNetworks()
    {
        var driver = NewDriver();
        await driver.CreateNetworkAsync(Request(Net1, "10.40.0.0/24"));
        await driver.CreateNetworkAsync(Request(Net2, "10.41.0.0/24"));
        await CreateEndpointAsync(driver, Net1, "abcdef0111111111", "10.40.0.2/24");
        await CreateEndpointAsync(driver, Net2, "abcdef0222222222", "10.41.0.2/24");
        await CreateEndpointAsync(driver, Net1, "abcdef0233333333", "10.40.0.3/24");
        var records = (await _store.ListAsync("cnm/v1/driver/bridge/endpoint/")).Count;
        Assert.Multiple(() =>
        {
            Assert.That(HostVethOf(driver, "abcdef0111111111"), Is.EqualTo("vethabcdef0"));
            Assert.That(HostVethOf(driver, "abcdef0222222222"), Is.EqualTo("vethabcdef02"));
            Assert.That(HostVethOf(driver, "abcdef0233333333"), Is.EqualTo("vethabcdef023"));
            Assert.That(records, Is.EqualTo(3));
        });

        // The names are in the records: a restarted driver knows them (and a new endpoint avoids them).
        var restarted = NewDriver();
        await restarted.RestoreAsync(CancellationToken.None);
        await CreateEndpointAsync(restarted, Net2, "abcdef0244444444", "10.41.0.3/24");
        Assert.Multiple(() =>
        {
            Assert.That(HostVethOf(restarted, "abcdef0233333333"), Is.EqualTo("vethabcdef023"));
            Assert.That(HostVethOf(restarted, "abcdef0244444444"), Is.EqualTo("vethabcdef024"));
        });
    }

    [Test]
    public async Task DeletesLeaveALinkOfTheRecordedNameThatIsNotOurs()
    {
        var driver = NewDriver();
        await driver.CreateNetworkAsync(Request(Net1, "10.40.0.0/24"));
        await CreateEndpointAsync(driver, Net1, Ep1, "10.40.0.2/24");
        await CreateEndpointAsync(driver, Net1, Ep2, "10.40.0.3/24");
        _kernel.Links["vethaaaaaaa"] = new LinkInfo { Index = 40, Name = "vethaaaaaaa", Kind = "dummy" };
        _kernel.Links["vethbbbbbbb"] = new LinkInfo { Index = 41, Name = "vethbbbbbbb", Kind = "veth", MasterIndex = 99 };

        await driver.DeleteEndpointAsync(Net1, Ep1);
        await driver.DeleteNetworkAsync(Net1);
        Assert.Multiple(() =>
        {
            Assert.That(_kernel.Links.Keys, Is.EquivalentTo(new[] { "vethaaaaaaa", "vethbbbbbbb" }), "a dummy and a veth of another bridge are not ours; our bridge went");
            Assert.That(_calls, Does.Contain("delete br-111111111111"));
        });
        Assert.That(await RecordCount(), Is.Zero);
    }

    [Test]
    public async Task DeleteNetworkLeavesADeviceOfTheBridgeNameThatIsNotABridge()
    {
        var driver = NewDriver();
        await driver.CreateNetworkAsync(Request(Net1, "10.40.0.0/24"));
        var bridge = _kernel.Links["br-111111111111"];
        _kernel.Links["br-111111111111"] = bridge with { Kind = "dummy" };
        await driver.DeleteNetworkAsync(Net1);
        Assert.That(_kernel.Links.ContainsKey("br-111111111111"), Is.True);
        Assert.That(await RecordCount(), Is.Zero);
    }

    [Test]
    public async Task ReloadShowsWhatAnotherDriverOnTheStoreDidWithoutTouchingKernelOrFirewall()
    {
        var ports = new[] { new PortBinding(TransportProtocol.Tcp, 80, IPAddress.Any, 8080) };
        var a = NewDriver();
        var b = NewDriver();
        await a.CreateNetworkAsync(Request(Net1, "10.40.0.0/24"));
        await CreateEndpointAsync(a, Net1, Ep1, "10.40.0.2/24", ports);
        await a.ProgramExternalConnectivityAsync(Net1, Ep1);
        var portmap = (await a.GetEndpointOperationalInfoAsync(Net1, Ep1))[NetLabels.PortMap];
        await Assert.ThrowsAsync<CnmNotFoundException>(async () => await b.GetEndpointOperationalInfoAsync(Net1, Ep1));

        var calls = _calls.Count;
        await b.ReloadAsync(CancellationToken.None);
        Assert.That(_calls, Has.Count.EqualTo(calls), "a reload makes no kernel or firewall call");
        Assert.That((await b.GetEndpointOperationalInfoAsync(Net1, Ep1))[NetLabels.PortMap], Is.EqualTo(portmap));

        // The taken interface name and the published host port are b's to avoid now.
        var sharing = Ep1[..7] + "9999999999";
        await CreateEndpointAsync(b, Net1, sharing, "10.40.0.3/24", ports);
        Assert.That(HostVethOf(b, sharing), Is.EqualTo("veth" + Ep1[..7] + "9"));
        var taken = await Assert.ThrowsAsync<CnmConflictException>(async () => await b.ProgramExternalConnectivityAsync(Net1, sharing));
        Assert.That(taken!.Code, Is.EqualTo(CnmErrorCodes.PortAlreadyAllocated));

        // a sees b's endpoint after its own reload; when a deletes its endpoint, b's reload drops it and frees the port.
        await a.ReloadAsync(CancellationToken.None);
        Assert.That(HostVethOf(a, sharing), Is.EqualTo(HostVethOf(b, sharing)));
        await a.DeleteEndpointAsync(Net1, Ep1);
        await b.ReloadAsync(CancellationToken.None);
        await Assert.ThrowsAsync<CnmNotFoundException>(async () => await b.GetEndpointOperationalInfoAsync(Net1, Ep1));
        await b.ProgramExternalConnectivityAsync(Net1, sharing);
        Assert.That((await b.GetEndpointOperationalInfoAsync(Net1, sharing))[NetLabels.PortMap], Does.Contain("8080"));

        // A network a deletes disappears from b.
        await b.RevokeExternalConnectivityAsync(Net1, sharing);
        await a.ReloadAsync(CancellationToken.None);
        await a.DeleteNetworkAsync(Net1);
        await b.ReloadAsync(CancellationToken.None);
        Assert.That(b.NetworksForTest, Is.Empty);
    }

    [Test]
    public async Task IccOffAsksForBridgeNetfilter()
    {
        await NewDriver().CreateNetworkAsync(Request(Net1, "10.40.0.0/24", new() { [BridgeOptionKeys.EnableIcc] = "false" }));
        Assert.That(_calls, Does.Contain("sysctl net.bridge.bridge-nf-call-iptables=1"));
        _calls.Clear();
        await NewDriver(new BridgeDriverOptions { EnableIPForwarding = false, EnableFirewall = false }).CreateNetworkAsync(Request(Net2, "10.41.0.0/24"));
        Assert.That(_calls.Where(c => c.StartsWith("sysctl", StringComparison.Ordinal) || c.StartsWith("fw", StringComparison.Ordinal)), Is.Empty);
    }

    /// <summary>A kernel of links by name, recording each change.</summary>
    private sealed class FakeKernel : IBridgeKernel
    {
        private readonly List<string> _calls;
        private readonly Mock<IRtnetlinkClient> _netlink = new(MockBehavior.Strict);
        private int _nextIndex = 10;

        public FakeKernel(List<string> calls)
        {
            _calls = calls;
            _netlink.Setup(n => n.GetLinkAsync(It.IsAny<string>(), It.IsAny<CancellationToken>()))
                .Returns((string name, CancellationToken _) => ValueTask.FromResult(Links.TryGetValue(name, out var l) ? l : null));
            _netlink.Setup(n => n.CreateLinkAsync(It.IsAny<LinkSpec>(), It.IsAny<CancellationToken>()))
                .Returns((LinkSpec spec, CancellationToken _) =>
                {
                    _calls.Add($"create {spec.Kind} {spec.Name} mtu {spec.Mtu}");
                    Links[spec.Name] = new LinkInfo { Index = _nextIndex++, Name = spec.Name, Kind = spec.Kind, Mtu = spec.Mtu ?? 1500 };
                    return ValueTask.CompletedTask;
                });
            _netlink.Setup(n => n.DeleteLinkAsync(It.IsAny<string>(), It.IsAny<CancellationToken>()))
                .Returns((string name, CancellationToken _) =>
                {
                    if (!Links.Remove(name))
                    {
                        return ValueTask.FromException(new NetlinkException(19));
                    }

                    _calls.Add("delete " + name);
                    return ValueTask.CompletedTask;
                });
            _netlink.Setup(n => n.DeleteLinkAsync(It.IsAny<int>(), It.IsAny<CancellationToken>()))
                .Returns((int index, CancellationToken _) =>
                {
                    if (Links.Values.FirstOrDefault(l => l.Index == index) is not { } link)
                    {
                        return ValueTask.FromException(new NetlinkException(19));
                    }

                    Links.Remove(link.Name);
                    _calls.Add("delete " + link.Name);
                    return ValueTask.CompletedTask;
                });
            _netlink.Setup(n => n.GetAddressesAsync(It.IsAny<int?>(), It.IsAny<System.Net.Sockets.AddressFamily>(), It.IsAny<CancellationToken>()))
                .Returns(() => ValueTask.FromResult<IReadOnlyList<AddressInfo>>([]));
            _netlink.Setup(n => n.AddAddressAsync(It.IsAny<AddressSpec>(), It.IsAny<CancellationToken>()))
                .Returns((AddressSpec a, CancellationToken _) =>
                {
                    _calls.Add($"add {a.Address}/{a.PrefixLength} to {Links.Values.Single(l => l.Index == a.LinkIndex).Name}");
                    return ValueTask.CompletedTask;
                });
            _netlink.Setup(n => n.DeleteAddressAsync(It.IsAny<AddressSpec>(), It.IsAny<CancellationToken>()))
                .Returns((AddressSpec a, CancellationToken _) =>
                {
                    _calls.Add($"delete address {a.Address}/{a.PrefixLength}");
                    return ValueTask.CompletedTask;
                });
            _netlink.Setup(n => n.SetLinkMtuAsync(It.IsAny<int>(), It.IsAny<int>(), It.IsAny<CancellationToken>()))
                .Returns((int i, int mtu, CancellationToken _) =>
                {
                    _calls.Add($"mtu {mtu}");
                    return ValueTask.CompletedTask;
                });
            _netlink.Setup(n => n.SetLinkUpAsync(It.IsAny<int>(), It.IsAny<CancellationToken>()))
                .Returns((int i, CancellationToken _) =>
                {
                    if (FailUp)
                    {
                        return ValueTask.FromException(new NetlinkException(1));
                    }

                    var link = Links.Values.Single(l => l.Index == i);
                    Links[link.Name] = link with { Flags = LinkFlags.Up };
                    _calls.Add("up " + link.Name);
                    return ValueTask.CompletedTask;
                });
        }

        public Dictionary<string, LinkInfo> Links { get; } = new(StringComparer.Ordinal);

        /// <summary>The host namespace instance the kernel reports (null: it cannot tell).</summary>
        public string? Instance { get; set; }

        public ValueTask<string?> HostInstanceAsync(CancellationToken cancellationToken) => ValueTask.FromResult(Instance);

        public bool FailUp { get; set; }

        public IRtnetlinkClient Netlink => _netlink.Object;

        public ValueTask<bool> TryWriteSysctlAsync(string key, string value, CancellationToken cancellationToken)
        {
            _calls.Add($"sysctl {key}={value}");
            return ValueTask.FromResult(true);
        }

        public NetworkNamespace OpenNamespace(string path) => throw new NamespaceNotFoundException("open", 2, path);

        public bool NamespaceExists(string path) => false;

        public void Dispose()
        {
        }
    }
}
