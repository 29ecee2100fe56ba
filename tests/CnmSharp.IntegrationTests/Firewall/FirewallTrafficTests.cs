using System.Diagnostics;
using System.Net;
using System.Text.Json;
using CnmSharp.Drivers;
using CnmSharp.Firewall;
using CnmSharp.Firewall.Iptables;
using CnmSharp.Firewall.Nftables;
using CnmSharp.Testing;

namespace CnmSharp.IntegrationTests.Firewall;

/// <summary>
/// Real traffic, one test source for both backends: a private host namespace H with two bridges (network 1:
/// 10.231.9.0/24 and fd00:231:9::/64 with containers c1 and c2; network 2: 10.231.10.0/24 with c3) and an "external"
/// namespace X behind a veth (10.231.99.2, fd00:231:99::2) that has no route to the container subnets, so only
/// masquerade lets a container talk to it. For iptables, H's FORWARD policy is DROP (as after dockerd ran), so only the
/// backend's accepts let traffic through; nftables decides in its own table, whose per-network chains end in a drop.
/// </summary>
[RequiresRoot]
[NonParallelizable]
[TestFixture(IptablesFirewallBackend.BackendName)]
[TestFixture(NftablesFirewallBackend.BackendName)]
public class FirewallTrafficTests(string backendName) : FirewallBackendFixture(backendName)
{
    private TestNamespace _host = null!;
    private TestNamespace _c1 = null!;
    private TestNamespace _c2 = null!;
    private TestNamespace _c3 = null!;
    private TestNamespace _ext = null!;
    private string _bridge = null!;
    private string _bridge2 = null!;
    private IFirewallBackend _backend = null!;

    [SetUp]
    public void SetUp()
    {
        Assert.That(Sh.RootRuleCount(), Is.Zero);
        try
        {
            Build();
        }
        catch
        {
            // NUnit skips TearDown when SetUp fails: clean up here.
            CleanUp();
            throw;
        }
    }

    private void Build()
    {
        _host = new TestNamespace("h");
        _c1 = new TestNamespace("c");
        _c2 = new TestNamespace("c");
        _c3 = new TestNamespace("c");
        _ext = new TestNamespace("x");
        _bridge = "br-" + Sh.NewName()[Sh.Prefix.Length..];
        _bridge2 = "br-" + Sh.NewName()[Sh.Prefix.Length..];
        _host.Exec("ip", "link", "set", "lo", "up");
        _host.Exec("sysctl", "-q", "-w", "net.ipv4.ip_forward=1"); // the bridge driver's job, in H only
        _host.Exec("sysctl", "-q", "-w", "net.ipv6.conf.all.forwarding=1");
        AddBridge(_bridge, "10.231.9.1/24", "fd00:231:9::1/64");
        AddBridge(_bridge2, "10.231.10.1/24", null);
        AddContainer(_c1, _bridge, "10.231.9.2", "fd00:231:9::2");
        AddContainer(_c2, _bridge, "10.231.9.3", "fd00:231:9::3");
        AddContainer(_c3, _bridge2, "10.231.10.2", null);

        var veth = "x" + Sh.NewName()[Sh.Prefix.Length..];
        _host.Exec("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", _ext.Name);
        _host.Exec("ip", "addr", "add", "10.231.99.1/24", "dev", veth);
        _host.Exec("ip", "addr", "add", "fd00:231:99::1/64", "dev", veth, "nodad");
        _host.Exec("ip", "link", "set", veth, "up");
        _ext.Exec("ip", "addr", "add", "10.231.99.2/24", "dev", "eth0");
        _ext.Exec("ip", "addr", "add", "fd00:231:99::2/64", "dev", "eth0", "nodad");
        _ext.Exec("ip", "link", "set", "eth0", "up");
        _ext.Exec("ip", "link", "set", "lo", "up");

        if (!IsNftables)
        {
            _host.Exec("iptables", "-P", "FORWARD", "DROP");
            _host.Exec("ip6tables", "-P", "FORWARD", "DROP");
        }

        _backend = CreateBackend(_host);
    }

    private void AddBridge(string name, string v4, string? v6)
    {
        _host.Exec("ip", "link", "add", name, "type", "bridge");
        _host.Exec("ip", "addr", "add", v4, "dev", name);
        if (v6 is not null)
        {
            _host.Exec("ip", "addr", "add", v6, "dev", name, "nodad");
        }

        _host.Exec("ip", "link", "set", name, "up");
    }

    private void AddContainer(TestNamespace container, string bridge, string v4, string? v6)
    {
        var veth = "v" + Sh.NewName()[Sh.Prefix.Length..];
        _host.Exec("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", container.Name);
        _host.Exec("ip", "link", "set", veth, "master", bridge, "up");
        _host.Exec("ip", "link", "set", veth, "type", "bridge_slave", "hairpin", "on");
        var gateway = v4[..v4.LastIndexOf('.')] + ".1";
        container.Exec("ip", "addr", "add", v4 + "/24", "dev", "eth0");
        if (v6 is not null)
        {
            container.Exec("ip", "addr", "add", v6 + "/64", "dev", "eth0", "nodad");
        }

        container.Exec("ip", "link", "set", "eth0", "up");
        container.Exec("ip", "link", "set", "lo", "up");
        container.Exec("ip", "route", "add", "default", "via", gateway);
        if (v6 is not null)
        {
            container.Exec("ip", "-6", "route", "add", "default", "via", v6[..v6.LastIndexOf(':')] + ":1");
        }
    }

    [TearDown]
    public void TearDown()
    {
        CleanUp();
        AssertRootHasNoRules();
    }

    private void CleanUp()
    {
        (_backend as IDisposable)?.Dispose();
        _c1?.Dispose();
        _c2?.Dispose();
        _c3?.Dispose();
        _ext?.Dispose();
        _host?.Dispose();

        _backend = null!;
        _c1 = _c2 = _c3 = _ext = _host = null!;
    }

    private FirewallNetwork Network => new()
    {
        NetworkId = "traffic",
        BridgeName = _bridge,
        IPv4Subnets = [IPNetwork.Parse("10.231.9.0/24")],
        IPv6Subnets = [IPNetwork.Parse("fd00:231:9::/64")],
        BridgeIPv4 = IPAddress.Parse("10.231.9.1"),
    };

    private FirewallNetwork Network2 => new()
    {
        NetworkId = "other",
        BridgeName = _bridge2,
        IPv4Subnets = [IPNetwork.Parse("10.231.10.0/24")],
        BridgeIPv4 = IPAddress.Parse("10.231.10.1"),
    };

    private static bool Ping(TestNamespace from, string to)
    {
        // One retry: the first packet may wait for neighbour discovery.
        for (var i = 0; i < 2; i++)
        {
            if (from.TryExec("ping", "-c1", "-W1", to).Code == 0)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>The ruleset of H as <c>nft -j list ruleset</c> prints it.</summary>
    private JsonElement NftRuleset()
    {
        using var doc = JsonDocument.Parse(_host.Exec("nft", "-j", "list", "ruleset"));
        return doc.RootElement.GetProperty("nftables").Clone();
    }

    /// <summary>The comments of the rules of one chain of <c>ip</c>/<c>ip6 cnmsharp</c>, from <c>nft -j</c>.</summary>
    private List<string> NftRuleComments(string chain, string family = "ip") =>
        NftRuleset().EnumerateArray()
            .Where(e => e.TryGetProperty("rule", out var r) && r.GetProperty("family").GetString() == family
                && r.GetProperty("table").GetString() == "cnmsharp" && r.GetProperty("chain").GetString() == chain)
            .Select(e => e.GetProperty("rule").TryGetProperty("comment", out var c) ? c.GetString()! : "")
            .ToList();

    private void AssertNoRulesLeft()
    {
        if (IsNftables)
        {
            Assert.That(NftRuleset().EnumerateArray().Any(e => e.TryGetProperty("table", out var t) && t.GetProperty("name").GetString() == "cnmsharp"),
                Is.False, "the cnmsharp tables go with the last network");
        }
        else
        {
            Assert.That(_host.Rules(), Is.Empty);
        }
    }

    [Test]
    public async Task Icc_on_and_off()
    {
        if (!IsNftables)
        {
            Assert.That(Ping(_c1, "10.231.9.3"), Is.False, "FORWARD policy DROP blocks bridged traffic before any rule");
        }

        await _backend.SetupNetworkAsync(Network);
        Assert.That(Ping(_c1, "10.231.9.3"), Is.True, "the network's own ICC accept lets containers talk");
        Assert.That(Ping(_c1, "fd00:231:9::3"), Is.True, "IPv6 too");

        await _backend.SetupNetworkAsync(Network with { EnableIcc = false });
        if (IsNftables)
        {
            Assert.That(NftRuleComments("fwd-in-" + _bridge), Is.EqualTo(new[] { "default:established", "default:published", "default:icc-drop", "default:isolate" }));
            Assert.That(NftRuleComments("fwd-in-" + _bridge, "ip6"), Does.Contain("default:icc-drop"));
        }
        else
        {
            Assert.That(_host.Rules(), Does.Contain($"filter -A FORWARD -i {_bridge} -o {_bridge} -j DROP"));
            Assert.That(_host.Rules(), Does.Not.Contain($"filter -A FORWARD -i {_bridge} -o {_bridge} -j ACCEPT"));
        }

        Assert.That(Ping(_c1, "10.231.9.3"), Is.False, "ICC off");
        Assert.That(Ping(_c1, "fd00:231:9::3"), Is.False, "ICC off, IPv6");
        Assert.That(Ping(_c1, "10.231.9.1"), Is.True, "the gateway stays reachable");

        await _backend.TeardownNetworkAsync(Network);
        AssertNoRulesLeft();
    }

    [Test]
    public async Task Masquerade_lets_containers_reach_the_outside_and_can_be_turned_off()
    {
        await _backend.SetupNetworkAsync(Network);
        Assert.That(Ping(_c1, "10.231.99.2"), Is.True, "masqueraded: X answers H's address");
        Assert.That(Ping(_c1, "fd00:231:99::2"), Is.True, "masqueraded, IPv6");

        await _backend.SetupNetworkAsync(Network with { EnableMasquerade = false });
        Assert.That(Ping(_c1, "10.231.99.2"), Is.False, "without masquerade X has no route back to the container");
        Assert.That(Ping(_c1, "fd00:231:99::2"), Is.False, "without masquerade, IPv6");
        await _backend.TeardownNetworkAsync(Network);
        AssertNoRulesLeft();
    }

    [Test]
    public async Task Networks_are_isolated_from_each_other()
    {
        await _backend.SetupNetworkAsync(Network);
        await _backend.SetupNetworkAsync(Network2);
        Assert.That(Ping(_c3, "10.231.99.2"), Is.True, "network 2 reaches the outside");
        Assert.That(Ping(_c3, "10.231.9.2"), Is.False, "network 2 cannot reach network 1");
        Assert.That(Ping(_c1, "10.231.10.2"), Is.False, "network 1 cannot reach network 2");
        Assert.That(Ping(_c1, "10.231.9.3"), Is.True, "inside network 1 still fine");

        await _backend.TeardownNetworkAsync(Network2);
        await _backend.TeardownNetworkAsync(Network);
        AssertNoRulesLeft();
    }

    [Test]
    public async Task Internal_network_talks_only_inside()
    {
        await _backend.SetupNetworkAsync(Network);
        await _backend.SetupNetworkAsync(Network2 with { Internal = true });
        Assert.That(Ping(_c3, "10.231.99.2"), Is.False, "an internal network does not reach the outside");
        Assert.That(Ping(_c3, "10.231.9.2"), Is.False, "nor another network");
        Assert.That(Ping(_c1, "10.231.10.2"), Is.False, "and nothing reaches into it");
        Assert.That(Ping(_c1, "10.231.99.2"), Is.True, "the other network is unaffected");

        await _backend.TeardownNetworkAsync(Network2 with { Internal = true });
        await _backend.TeardownNetworkAsync(Network);
        AssertNoRulesLeft();
    }

    private static Process Listen(TestNamespace container, string greeting)
    {
        var info = new ProcessStartInfo("nsenter") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        // One listener per family: nc listens on one family only.
        foreach (var arg in new[] { "--net=" + container.Path, "sh", "-c", $"echo {greeting} | timeout 10 nc -4 -l -N 80 & echo {greeting} | timeout 10 nc -6 -l -N 80; wait" })
        {
            info.ArgumentList.Add(arg);
        }

        return Process.Start(info)!;
    }

    private static async Task<string> ConnectAsync(TestNamespace from, string address, string greeting, int attempts = 20)
    {
        var reply = string.Empty;
        for (var attempt = 0; attempt < attempts && !reply.Contains(greeting, StringComparison.Ordinal); attempt++)
        {
            await Task.Delay(100);
            reply = from.TryExec("sh", "-c", $"nc -w 2 -N {address} 8080 </dev/null").Stdout;
        }

        return reply;
    }

    private FirewallPortForward Web => new()
    {
        NetworkId = "traffic",
        EndpointId = "web",
        BridgeName = _bridge,
        ContainerIPv4 = IPAddress.Parse("10.231.9.2"),
        ContainerIPv6 = IPAddress.Parse("fd00:231:9::2"),
        PortBindings = [new PortBinding(TransportProtocol.Tcp, 80, IPAddress.Any, 8080), new PortBinding(TransportProtocol.Tcp, 80, IPAddress.IPv6Any, 8080)],
    };

    private async Task PublishAsync()
    {
        await _backend.SetupNetworkAsync(Network);
        await _backend.SetupNetworkAsync(Network2);
        await _backend.SetupPortForwardsAsync(Web);
    }

    [TestCase("host", "10.231.9.1")]
    [TestCase("other container", "10.231.9.1")]
    [TestCase("same container (hairpin)", "10.231.9.1")]
    [TestCase("other network", "10.231.10.1")]
    [TestCase("outside", "10.231.99.1")]
    [TestCase("host", "fd00:231:9::1")]
    [TestCase("outside", "fd00:231:99::1")]
    public async Task Published_port_is_reached(string from, string address)
    {
        await PublishAsync();
        var client = from switch { "host" => _host, "other container" => _c2, "other network" => _c3, "outside" => _ext, _ => _c1 };
        using var listener = Listen(_c1, "hello-from-c1");
        try
        {
            if (from == "other network" && !IsNftables)
            {
                // Docker's iptables isolation (DOCKER-ISOLATION-STAGE-2) drops routed traffic between networks before
                // the DOCKER accepts; the nftables layout accepts published ports from other networks (Docker 29's).
                Assert.That(await ConnectAsync(client, address, "hello-from-c1", attempts: 3), Is.Empty, "iptables isolates networks");
                return;
            }

            Assert.That(await ConnectAsync(client, address, "hello-from-c1"), Does.Contain("hello-from-c1"), $"{from} -> {address}:8080 is DNATed to c1:80");
            if (from == "outside")
            {
                Assert.That(Ping(_ext, "10.231.9.2"), Is.False, "the outside reaches the container only through the published port");
            }

            await _backend.TeardownPortForwardsAsync(Web);
            Assert.That(_ext.TryExec("sh", "-c", "nc -w 1 -N 10.231.99.1 8080 </dev/null").Stdout, Does.Not.Contain("hello"), "unpublished");
        }
        finally
        {
            if (!listener.HasExited)
            {
                listener.Kill(entireProcessTree: true);
            }
        }

        await _backend.TeardownNetworkAsync(Network2);
        await _backend.TeardownNetworkAsync(Network);
        AssertNoRulesLeft();
    }

    [Test]
    public async Task Published_port_is_a_map_element_in_nftables()
    {
        if (!IsNftables)
        {
            Assert.Pass("iptables writes DNAT rules (checked in IptablesFirewallBackendIntegrationTests)");
        }

        await PublishAsync();
        var rules = NftRuleset().EnumerateArray().Count(e => e.TryGetProperty("rule", out _));
        var listing = _host.Exec("nft", "list", "ruleset");
        Assert.That(listing, Does.Contain("8080 comment \"default\" : 10.231.9.2 . 80"));
        Assert.That(listing, Does.Contain("8080 comment \"default\" : fd00:231:9::2 . 80"));
        await _backend.SetupPortForwardsAsync(Web with { EndpointId = "web2", PortBindings = [new PortBinding(TransportProtocol.Udp, 53, IPAddress.Parse("10.231.9.1"), 5353)] });
        Assert.That(NftRuleset().EnumerateArray().Count(e => e.TryGetProperty("rule", out _)), Is.EqualTo(rules), "publishing a port adds no rule");
        Assert.That(_host.Exec("nft", "list", "map", "ip", "cnmsharp", "dnat-addr-udp"), Does.Contain("10.231.9.1 . 5353 comment \"default\" : 10.231.9.2 . 53"));
        Assert.That(_host.Exec("iptables-save"), Does.Not.Contain("cnmsharp").And.Not.Contain("DOCKER").And.Not.Contain("10.231."),
            "iptables-save (iptables-nft) shows no CnmSharp rule");
        await _backend.TeardownNetworkAsync(Network2);
        await _backend.TeardownNetworkAsync(Network);
        AssertNoRulesLeft();
    }
}
