using System.Net;
using System.Runtime.InteropServices;
using CnmSharp.Core;
using CnmSharp.Drivers;
using CnmSharp.Drivers.Common;
using CnmSharp.Drivers.Ipvlan;
using CnmSharp.Drivers.Macvlan;
using CnmSharp.Netlink;
using CnmSharp.Store;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Win32.SafeHandles;
using Moq;

namespace CnmSharp.Tests.Drivers.ParentLink;

/// <summary>The macvlan and ipvlan drivers against a fake kernel (a link table behind a mocked
/// <see cref="IRtnetlinkClient"/>) that can lack device kinds, as this machine's kernel lacks dummy, vlan and ipvlan.</summary>
public class ParentLinkDriverTests
{
    private const string Net1 = "1111111111111111111111111111111111111111111111111111111111111111";
    private const string Net2 = "2222222222222222222222222222222222222222222222222222222222222222";
    private const string Ep1 = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    private const string Ep2 = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    private InMemoryKeyValueStore _store = null!;
    private FakeKernel _kernel = null!;

    [SetUp]
    public void SetUp()
    {
        _store = new InMemoryKeyValueStore();
        _kernel = new FakeKernel();
        _kernel.Add("eth9", "veth", mtu: 1500);
        _kernel.Add("lo", null, mtu: 65536, flags: LinkFlags.Loopback | LinkFlags.Up, linkType: 772);
    }

    [TearDown]
    public async Task TearDown()
    {
        _kernel.Dispose();
        await _store.DisposeAsync();
    }

    private DriverContext Context(string driver) => new()
    {
        ControllerId = "c",
        RunDirectory = "/tmp/none",
        Store = _store,
        StoreKeyPrefix = $"cnm/v1/driver/{driver}/",
        LoggerFactory = NullLoggerFactory.Instance,
    };

    private MacvlanDriver Macvlan() => new(Context("macvlan"), _kernel);

    private IpvlanDriver Ipvlan() => new(Context("ipvlan"), _kernel);

    private static NetworkCreateRequest Request(string id, Dictionary<string, string> options, bool @internal = false, bool ipv6 = false) => new()
    {
        NetworkId = id,
        NetworkName = "n" + id[..2],
        DriverOptions = options,
        Internal = @internal,
        EnableIPv6 = ipv6,
        IPv4Data = [new IpamData("s", IPNetwork.Parse("10.1.0.0/24"), CidrAddress.Parse("10.1.0.1/24"), new Dictionary<string, CidrAddress>())],
        IPv6Data = ipv6 ? [new IpamData("s", IPNetwork.Parse("fd00::/64"), CidrAddress.Parse("fd00::1/64"), new Dictionary<string, CidrAddress>())] : [],
    };

    private static async Task<(InterfaceInfo Info, JoinInfo Join)> EndpointAndJoinAsync(ParentLinkDriver driver, string net, string ep, string address, string? address6 = null)
    {
        var info = new InterfaceInfo();
        info.SetIPAddress(CidrAddress.Parse(address));
        if (address6 is not null)
        {
            info.SetIPAddress(CidrAddress.Parse(address6));
        }

        await driver.CreateEndpointAsync(new EndpointCreateRequest { NetworkId = net, EndpointId = ep, EndpointName = "e" + ep[..2] }, info);
        var join = new JoinInfo(info);
        await driver.JoinAsync(new JoinRequest { NetworkId = net, EndpointId = ep, SandboxId = "s", SandboxKey = "/run/fake/ns" }, join);
        return (info, join);
    }

    [TestCase("eth9.0")]
    [TestCase("eth9.4095")]
    [TestCase("eth9.x")]
    [TestCase(".5")]
    [TestCase("eth9.1.2")]
    public void Malformed_vlan_parent_names_the_example_form(string parent)
    {
        var error = Assert.Throws<CnmInvalidArgumentException>(() => ParentName.Parse(parent, "network x"));
        Assert.That(error!.Reason, Does.Contain("eth0.10"));
    }

    [TestCase("eth9.1", "eth9", 1)]
    [TestCase("eth9.4094", "eth9", 4094)]
    public void Vlan_parent_is_parsed(string parent, string baseName, int vid)
    {
        var parsed = ParentName.Parse(parent, "network x")!;
        Assert.That((parsed.BaseName, (int)parsed.VlanId, parsed.IsVlan), Is.EqualTo((baseName, vid, true)));
    }

    [TestCase("a/b")]
    [TestCase("a:b")]
    [TestCase("a b")]
    [TestCase("sixteen-bytes-xx")]
    public void Invalid_interface_names_are_refused(string parent) =>
        Assert.Throws<CnmInvalidArgumentException>(() => ParentName.Parse(parent, "network x"));

    [Test]
    public void No_parent_means_an_internal_one() =>
        Assert.That((ParentName.Parse(null, "x"), ParentName.Parse("", "x"), ParentName.Internal(Net1)), Is.EqualTo(((ParentName?)null, (ParentName?)null, "dm-111111111111")));

    [Test]
    public async Task Loopback_is_refused_by_its_flags_not_its_name()
    {
        _kernel.Add("notlo", null, mtu: 65536, flags: LinkFlags.Loopback | LinkFlags.Up, linkType: 772);
        await using var driver = Macvlan();
        var error = await Assert.ThrowsAsync<CnmInvalidArgumentException>(async () => await driver.CreateNetworkAsync(Request(Net1, new() { ["parent"] = "notlo" })));
        Assert.That(error!.Reason, Does.Contain("loopback"));
        Assert.That(await _store.ListAsync("cnm/v1/driver/"), Is.Empty);
    }

    [Test]
    public async Task Missing_parent_is_not_found_and_nothing_is_made()
    {
        await using var driver = Macvlan();
        await Assert.ThrowsAsync<CnmNotFoundException>(async () => await driver.CreateNetworkAsync(Request(Net1, new() { ["parent"] = "eth7" })));
        await Assert.ThrowsAsync<CnmNotFoundException>(async () => await driver.CreateNetworkAsync(Request(Net1, new() { ["parent"] = "eth7.5" })));
        Assert.Multiple(async () =>
        {
            Assert.That(_kernel.Created, Is.Empty);
            Assert.That(await _store.ListAsync("cnm/v1/driver/"), Is.Empty);
        });
    }

    [Test]
    public async Task Vlan_sub_interface_is_made_and_deleted_only_while_it_matches_the_record()
    {
        await using var driver = Macvlan();
        await driver.CreateNetworkAsync(Request(Net1, new() { ["parent"] = "eth9.42" }));
        var made = _kernel.Links["eth9.42"];
        Assert.That((made.Kind, made.ParentIndex), Is.EqualTo(("vlan", _kernel.Links["eth9"].Index)));

        // Someone replaced it with a link of their own under the same name: it is not ours to delete.
        _kernel.Links.Remove("eth9.42");
        _kernel.Add("eth9.42", "vlan", mtu: 1500);
        await driver.DeleteNetworkAsync(Net1);
        Assert.Multiple(async () =>
        {
            Assert.That(_kernel.Links.ContainsKey("eth9.42"), Is.True, "a link with another index is left alone");
            Assert.That(await _store.ListAsync("cnm/v1/driver/"), Is.Empty);
        });
    }

    [Test]
    public async Task Vlan_sub_interface_is_deleted_with_its_network()
    {
        await using var driver = Macvlan();
        await driver.CreateNetworkAsync(Request(Net1, new() { ["parent"] = "eth9.42" }));
        await driver.DeleteNetworkAsync(Net1);
        Assert.That(_kernel.Links.ContainsKey("eth9.42"), Is.False);
    }

    [Test]
    public async Task Existing_parent_is_never_deleted()
    {
        await using var driver = Macvlan();
        await driver.CreateNetworkAsync(Request(Net1, new() { ["parent"] = "eth9" }));
        await driver.DeleteNetworkAsync(Net1);
        Assert.That(_kernel.Links.ContainsKey("eth9"), Is.True);
    }

    [Test]
    public async Task Kernel_without_vlan_is_a_typed_error_and_nothing_is_left()
    {
        _kernel.MissingKinds.Add("vlan");
        await using var driver = Macvlan();
        var error = await Assert.ThrowsAsync<CnmNotImplementedException>(async () => await driver.CreateNetworkAsync(Request(Net1, new() { ["parent"] = "eth9.42" })));
        Assert.Multiple(async () =>
        {
            Assert.That(error!.Reason, Does.Contain("'vlan'"));
            Assert.That(_kernel.Links.Keys, Is.EquivalentTo(new[] { "eth9", "lo" }));
            Assert.That(await _store.ListAsync("cnm/v1/driver/"), Is.Empty);
            Assert.That(driver.NetworksForTest, Is.Empty);
        });
    }

    [Test]
    public async Task Internal_parent_is_a_dummy_or_else_a_veth_pair_and_goes_with_the_network()
    {
        await using var driver = Macvlan();
        await driver.CreateNetworkAsync(Request(Net1, []));
        Assert.That(_kernel.Links["dm-111111111111"].Kind, Is.EqualTo("dummy"));

        _kernel.MissingKinds.Add("dummy");
        await driver.CreateNetworkAsync(Request(Net2, []));
        Assert.Multiple(() =>
        {
            Assert.That(_kernel.Links["dm-222222222222"].Kind, Is.EqualTo("veth"));
            Assert.That(_kernel.Links["dp-222222222222"].IsUp, Is.True, "the far end is up, so the parent has carrier");
        });

        await driver.DeleteNetworkAsync(Net1);
        await driver.DeleteNetworkAsync(Net2);
        Assert.That(_kernel.Links.Keys, Is.EquivalentTo(new[] { "eth9", "lo" }));
    }

    [Test]
    public async Task Internal_network_takes_an_internal_parent_even_with_a_parent_option()
    {
        await using var driver = Macvlan();
        await driver.CreateNetworkAsync(Request(Net1, new() { ["parent"] = "eth9" }, @internal: true));
        Assert.That(driver.NetworksForTest.Single().Record.Parent, Is.EqualTo("dm-111111111111"));
    }

    [Test]
    public async Task Two_networks_may_not_share_a_parent()
    {
        await using var driver = Macvlan();
        await driver.CreateNetworkAsync(Request(Net1, new() { ["parent"] = "eth9" }));
        var error = await Assert.ThrowsAsync<CnmConflictException>(async () => await driver.CreateNetworkAsync(Request(Net2, new() { ["parent"] = "eth9" })));
        Assert.That(error!.Reason, Does.Contain("already using parent interface eth9"));
    }

    [Test]
    public async Task Mtu_is_the_parents_unless_set_and_never_above_it()
    {
        await using var driver = Macvlan();
        await Assert.ThrowsAsync<CnmInvalidArgumentException>(async () => await driver.CreateNetworkAsync(Request(Net1, new() { ["parent"] = "eth9", ["com.docker.network.driver.mtu"] = "1501" })));
        await driver.CreateNetworkAsync(Request(Net1, new() { ["parent"] = "eth9" }));
        await driver.CreateNetworkAsync(Request(Net2, new() { ["com.docker.network.driver.mtu"] = "9000" }));
        Assert.That(driver.NetworksForTest.Select(n => n.Record.Mtu).Order(), Is.EqualTo(new[] { 1500, 9000 }));
    }

    [TestCase("macvlan_mode", "bogus")]
    [TestCase("macvlan_mode", "source")]
    [TestCase("ipvlan_mode", "l2")]
    public async Task Unknown_mode_or_option_is_refused_before_anything(string key, string value)
    {
        await using var driver = Macvlan();
        await Assert.ThrowsAsync<CnmInvalidArgumentException>(async () => await driver.CreateNetworkAsync(Request(Net1, new() { ["parent"] = "eth9", [key] = value })));
        Assert.That(await _store.ListAsync("cnm/v1/driver/"), Is.Empty);
    }

    [TestCase("bridge", MacvlanMode.Bridge)]
    [TestCase("private", MacvlanMode.Private)]
    [TestCase("vepa", MacvlanMode.Vepa)]
    [TestCase("passthru", MacvlanMode.Passthru)]
    public async Task Macvlan_join_creates_the_device_inside_the_sandbox(string mode, MacvlanMode expected)
    {
        await using var driver = Macvlan();
        await driver.CreateNetworkAsync(Request(Net1, new() { ["parent"] = "eth9", ["macvlan_mode"] = mode }));
        var (info, join) = await EndpointAndJoinAsync(driver, Net1, Ep1, "10.1.0.5/24");

        var spec = (MacvlanLinkSpec)_kernel.InSandbox.Single();
        Assert.Multiple(() =>
        {
            Assert.That(spec.Mode, Is.EqualTo(expected));
            Assert.That(spec.ParentIndex, Is.EqualTo(_kernel.Links["eth9"].Index));
            Assert.That(spec.Mac?.ToString(), Is.EqualTo("02420A010005"), "02:42 and the IPv4 address");
            Assert.That(info.MacAddress?.ToString(), Is.EqualTo("02420A010005"));
            Assert.That(spec.Mtu, Is.EqualTo(1500));
            Assert.That(join.Placement, Is.EqualTo(InterfacePlacement.Sandbox));
            Assert.That(join.SourceName, Is.EqualTo("mvaaaaaaaa"));
            Assert.That(join.Gateway, Is.EqualTo(IPAddress.Parse("10.1.0.1")));
        });
    }

    [Test]
    public async Task Passthru_refuses_a_second_endpoint()
    {
        await using var driver = Macvlan();
        await driver.CreateNetworkAsync(Request(Net1, new() { ["parent"] = "eth9", ["macvlan_mode"] = "passthru" }));
        await EndpointAndJoinAsync(driver, Net1, Ep1, "10.1.0.5/24");
        var info = new InterfaceInfo();
        info.SetIPAddress(CidrAddress.Parse("10.1.0.6/24"));
        await Assert.ThrowsAsync<CnmConflictException>(async () => await driver.CreateEndpointAsync(new EndpointCreateRequest { NetworkId = Net1, EndpointId = Ep2, EndpointName = "e2" }, info));
        Assert.That(info.MacAddress, Is.Null, "nothing was filled for the refused endpoint");
    }

    [Test]
    public async Task Internal_network_joins_without_a_gateway()
    {
        await using var driver = Macvlan();
        await driver.CreateNetworkAsync(Request(Net1, [], @internal: true));
        var (_, join) = await EndpointAndJoinAsync(driver, Net1, Ep1, "10.1.0.5/24");
        Assert.That(join.Gateway, Is.Null);
    }

    [Test]
    public async Task A_name_taken_inside_the_sandbox_gets_the_next_one()
    {
        await using var driver = Macvlan();
        await driver.CreateNetworkAsync(Request(Net1, new() { ["parent"] = "eth9" }));
        _kernel.TakenInSandbox.Add("mvaaaaaaaa");
        var (_, join) = await EndpointAndJoinAsync(driver, Net1, Ep1, "10.1.0.5/24");
        Assert.That(join.SourceName, Is.EqualTo("mvaaaaaaaa-1"));
    }

    [Test]
    public async Task Ipvlan_l2_reports_the_ipam_gateways()
    {
        await using var driver = Ipvlan();
        await driver.CreateNetworkAsync(Request(Net1, new() { ["parent"] = "eth9" }, ipv6: true));
        var (info, join) = await EndpointAndJoinAsync(driver, Net1, Ep1, "10.1.0.5/24", "fd00::5/64");
        var spec = (IpvlanLinkSpec)_kernel.InSandbox.Single();
        Assert.Multiple(() =>
        {
            Assert.That((spec.Mode, spec.Flags), Is.EqualTo((IpvlanMode.L2, IpvlanFlags.Bridge)));
            Assert.That(spec.Mac, Is.Null);
            Assert.That(info.MacAddress, Is.Null, "ipvlan devices carry the parent's MAC");
            Assert.That(join.Gateway, Is.EqualTo(IPAddress.Parse("10.1.0.1")));
            Assert.That(join.GatewayIPv6, Is.EqualTo(IPAddress.Parse("fd00::1")));
            Assert.That(join.GatewayServiceDisabled, Is.False);
            Assert.That(join.StaticRoutes, Is.Empty);
        });
    }

    [TestCase("l3", IpvlanMode.L3)]
    [TestCase("l3s", IpvlanMode.L3S)]
    public async Task Ipvlan_l3_disables_the_gateway_service_and_asks_for_connected_default_routes(string mode, IpvlanMode expected)
    {
        await using var driver = Ipvlan();
        await driver.CreateNetworkAsync(Request(Net1, new() { ["parent"] = "eth9", ["ipvlan_mode"] = mode, ["ipvlan_flag"] = "private" }, ipv6: true));
        var (_, join) = await EndpointAndJoinAsync(driver, Net1, Ep1, "10.1.0.5/24", "fd00::5/64");
        var spec = (IpvlanLinkSpec)_kernel.InSandbox.Single();
        Assert.Multiple(() =>
        {
            Assert.That((spec.Mode, spec.Flags), Is.EqualTo((expected, IpvlanFlags.Private)));
            Assert.That(join.Gateway, Is.Null);
            Assert.That(join.GatewayIPv6, Is.Null);
            Assert.That(join.GatewayServiceDisabled, Is.True);
            Assert.That(join.StaticRoutes, Is.EquivalentTo(new[]
            {
                new StaticRoute(IPNetwork.Parse("0.0.0.0/0"), CnmSharp.Drivers.RouteType.Connected, null),
                new StaticRoute(IPNetwork.Parse("::/0"), CnmSharp.Drivers.RouteType.Connected, null),
            }));
        });
    }

    [Test]
    public async Task Ipvlan_refuses_an_endpoint_mac()
    {
        await using var driver = Ipvlan();
        await driver.CreateNetworkAsync(Request(Net1, new() { ["parent"] = "eth9" }));
        var info = new InterfaceInfo();
        info.SetIPAddress(CidrAddress.Parse("10.1.0.5/24"));
        info.SetMacAddress(System.Net.NetworkInformation.PhysicalAddress.Parse("02-00-00-00-00-01"));
        await Assert.ThrowsAsync<CnmInvalidArgumentException>(async () => await driver.CreateEndpointAsync(new EndpointCreateRequest { NetworkId = Net1, EndpointId = Ep1, EndpointName = "e1" }, info));
    }

    [Test]
    public async Task Kernel_without_ipvlan_fails_the_join_with_a_typed_error()
    {
        _kernel.MissingKinds.Add("ipvlan");
        await using var driver = Ipvlan();
        await driver.CreateNetworkAsync(Request(Net1, new() { ["parent"] = "eth9" }));
        var error = await Assert.ThrowsAsync<CnmNotImplementedException>(async () => await EndpointAndJoinAsync(driver, Net1, Ep1, "10.1.0.5/24"));
        Assert.That(error!.Reason, Does.Contain("'ipvlan'"));
    }

    [Test]
    public async Task Records_survive_a_new_driver_and_a_reload_sees_another_process_changes()
    {
        await using (var first = Macvlan())
        {
            await first.CreateNetworkAsync(Request(Net1, []));
            await EndpointAndJoinAsync(first, Net1, Ep1, "10.1.0.5/24");
        }

        // The internal parent vanished while no controller ran: the restore makes it again.
        _kernel.Links.Remove("dm-111111111111");
        await using var second = Macvlan();
        await second.RestoreAsync(CancellationToken.None);
        Assert.Multiple(() =>
        {
            Assert.That(second.NetworksForTest.Single().Endpoints.Keys, Is.EquivalentTo(new[] { Ep1 }));
            Assert.That(_kernel.Links.ContainsKey("dm-111111111111"), Is.True);
        });

        // Another process (a third driver on the same store) deletes the network; a reload drops it.
        await using (var other = Macvlan())
        {
            await other.RestoreAsync(CancellationToken.None);
            await other.DeleteNetworkAsync(Net1);
        }

        await second.ReloadAsync(CancellationToken.None);
        Assert.Multiple(() =>
        {
            Assert.That(second.NetworksForTest, Is.Empty);
            Assert.That(_kernel.Links.ContainsKey("dm-111111111111"), Is.False);
        });
    }

    /// <summary>A link table behind a mocked netlink client. Links created with a namespace go to <see cref="InSandbox"/>.</summary>
    private sealed class FakeKernel : IParentLinkKernel
    {
        private readonly Mock<IRtnetlinkClient> _netlink = new(MockBehavior.Strict);
        private int _next = 10;

        public FakeKernel()
        {
            _netlink.Setup(n => n.GetLinkAsync(It.IsAny<string>(), It.IsAny<CancellationToken>()))
                .Returns<string, CancellationToken>((name, _) => ValueTask.FromResult(Links.GetValueOrDefault(name)));
            _netlink.Setup(n => n.CreateLinkAsync(It.IsAny<LinkSpec>(), It.IsAny<CancellationToken>()))
                .Returns<LinkSpec, CancellationToken>((spec, _) => Create(spec));
            _netlink.Setup(n => n.DeleteLinkAsync(It.IsAny<int>(), It.IsAny<CancellationToken>()))
                .Returns<int, CancellationToken>((index, _) => Delete(index));
            _netlink.Setup(n => n.SetLinkUpAsync(It.IsAny<int>(), It.IsAny<CancellationToken>()))
                .Returns<int, CancellationToken>((index, _) =>
                {
                    var link = Links.Values.Single(l => l.Index == index);
                    Links[link.Name] = link with { Flags = link.Flags | LinkFlags.Up };
                    return ValueTask.CompletedTask;
                });
        }

        public Dictionary<string, LinkInfo> Links { get; } = new(StringComparer.Ordinal);

        public HashSet<string> MissingKinds { get; } = [];

        public HashSet<string> TakenInSandbox { get; } = [];

        public List<LinkSpec> Created { get; } = [];

        public List<LinkSpec> InSandbox { get; } = [];

        public IRtnetlinkClient Netlink => _netlink.Object;

        public void Add(string name, string? kind, int mtu, LinkFlags flags = LinkFlags.Up, ushort linkType = 1, int parentIndex = 0) =>
            Links[name] = new LinkInfo { Index = _next++, Name = name, Kind = kind, Mtu = mtu, Flags = flags, LinkType = linkType, ParentIndex = parentIndex };

        public SafeHandle OpenNamespace(string path) => new SafeFileHandle(IntPtr.Zero, ownsHandle: false);

        public void Dispose()
        {
        }

        private ValueTask Create(LinkSpec spec)
        {
            if (MissingKinds.Contains(spec.Kind))
            {
                throw new NetlinkException(95, "Unknown device type");
            }

            if (spec.Namespace is not null)
            {
                if (!TakenInSandbox.Add(spec.Name))
                {
                    throw new NetlinkException(17);
                }

                InSandbox.Add(spec);
                return ValueTask.CompletedTask;
            }

            if (Links.ContainsKey(spec.Name))
            {
                throw new NetlinkException(17);
            }

            Created.Add(spec);
            var up = spec.Up ? LinkFlags.Up : LinkFlags.None;
            Add(spec.Name, spec.Kind, spec.Mtu ?? 1500, up, parentIndex: spec is VlanLinkSpec v ? v.ParentIndex : 0);
            if (spec is VethLinkSpec veth)
            {
                Add(veth.PeerName, "veth", spec.Mtu ?? 1500, LinkFlags.None);
            }

            return ValueTask.CompletedTask;
        }

        private ValueTask Delete(int index)
        {
            var link = Links.Values.SingleOrDefault(l => l.Index == index) ?? throw new NetlinkException(19);
            Links.Remove(link.Name);
            if (link.Kind == "veth" && link.Name.StartsWith("dm-", StringComparison.Ordinal))
            {
                Links.Remove("dp-" + link.Name[3..]);
            }

            return ValueTask.CompletedTask;
        }
    }
}
