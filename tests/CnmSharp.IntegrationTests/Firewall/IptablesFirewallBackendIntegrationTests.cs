using System.Diagnostics;
using System.Net;
using CnmSharp.Drivers;
using CnmSharp.Firewall;
using CnmSharp.Firewall.Iptables;
using CnmSharp.Testing;

namespace CnmSharp.IntegrationTests.Firewall;

/// <summary>The iptables backend against the real kernel, each test in its own private host namespace.</summary>
[RequiresRoot]
[NonParallelizable]
public class IptablesFirewallBackendIntegrationTests
{
    private TestNamespace _host = null!;
    private IptablesFirewallBackend _backend = null!;
    private string _br1 = null!;
    private string _br2 = null!;

    [SetUp]
    public void SetUp()
    {
        Assert.That(Sh.RootRuleCount(), Is.Zero, "the root namespace must have no rules before the test");
        _host = new TestNamespace();
        _backend = new IptablesFirewallBackend(_host.Path);
        _br1 = Sh.NewName("a")[Sh.Prefix.Length..].Insert(0, "br-");
        _br2 = Sh.NewName("b")[Sh.Prefix.Length..].Insert(0, "br-");
    }

    [TearDown]
    public void TearDown()
    {
        _backend.Dispose();
        _host.Dispose();
        Assert.That(File.Exists(_host.Path), Is.False);
        Assert.That(Sh.RootRuleCount(), Is.Zero, "the root namespace must still have no rules");
    }

    private FirewallNetwork Net1 => new()
    {
        NetworkId = "net1",
        BridgeName = _br1,
        IPv4Subnets = [IPNetwork.Parse("10.231.1.0/24")],
        BridgeIPv4 = IPAddress.Parse("10.231.1.1"),
    };

    private FirewallNetwork Net2 => new()
    {
        NetworkId = "net2",
        BridgeName = _br2,
        IPv4Subnets = [IPNetwork.Parse("10.231.2.0/24")],
        BridgeIPv4 = IPAddress.Parse("10.231.2.1"),
    };

    private FirewallPortForward Web => new()
    {
        NetworkId = "net1",
        EndpointId = "ep1",
        BridgeName = _br1,
        ContainerIPv4 = IPAddress.Parse("10.231.1.2"),
        PortBindings = [new PortBinding(TransportProtocol.Tcp, 80, IPAddress.Any, 8080), new PortBinding(TransportProtocol.Udp, 53, IPAddress.Parse("10.231.1.1"), 5353)],
    };

    private static string Canonical(IEnumerable<string> rules) =>
        string.Join("\n", rules.Select((r, i) => (r, i))
            .OrderBy(x => string.Join(' ', x.r.Split(' ').Take(3)), StringComparer.Ordinal)
            .ThenBy(x => x.i)
            .Select(x => x.r));

    private static List<string> Net1Rules(string b) =>
    [
        "filter -A FORWARD -j DOCKER-USER",
        "filter -A FORWARD -j DOCKER-ISOLATION-STAGE-1",
        $"filter -A FORWARD -o {b} -j DOCKER",
        $"filter -A FORWARD -o {b} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
        $"filter -A FORWARD -i {b} ! -o {b} -j ACCEPT",
        $"filter -A FORWARD -i {b} -o {b} -j ACCEPT",
        $"filter -A DOCKER-ISOLATION-STAGE-1 -i {b} ! -o {b} -j DOCKER-ISOLATION-STAGE-2",
        "filter -A DOCKER-ISOLATION-STAGE-1 -j RETURN",
        $"filter -A DOCKER-ISOLATION-STAGE-2 -o {b} -j DROP",
        "filter -A DOCKER-ISOLATION-STAGE-2 -j RETURN",
        "filter -A DOCKER-USER -j RETURN",
        "nat -A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER",
        "nat -A OUTPUT -m addrtype --dst-type LOCAL -j DOCKER",
        $"nat -A POSTROUTING -s 10.231.1.0/24 ! -o {b} -j MASQUERADE",
        $"nat -A POSTROUTING -o {b} -m addrtype --src-type LOCAL -j MASQUERADE",
    ];

    [Test]
    public async Task Network_setup_writes_exactly_dockers_rules_once()
    {
        var watch = Stopwatch.StartNew();
        await _backend.SetupNetworkAsync(Net1);
        var first = watch.Elapsed;
        Assert.That(Canonical(_host.Rules()), Is.EqualTo(Canonical(Net1Rules(_br1))));
        Assert.That(_host.UserChains(), Is.EquivalentTo(new[] { "filter:DOCKER", "filter:DOCKER-ISOLATION-STAGE-1", "filter:DOCKER-ISOLATION-STAGE-2", "filter:DOCKER-USER", "nat:DOCKER" }));

        await _backend.SetupNetworkAsync(Net1);
        Assert.That(Canonical(_host.Rules()), Is.EqualTo(Canonical(Net1Rules(_br1))), "setup again adds nothing");
        Assert.That(_host.Rules(ipv6: true), Is.Empty, "an IPv4-only network leaves ip6tables alone");
        TestContext.Out.WriteLine($"first SetupNetworkAsync: {first.TotalMilliseconds:F1} ms");
    }

    [Test]
    public async Task Second_network_adds_isolation_and_teardown_keeps_the_other()
    {
        await _backend.SetupNetworkAsync(Net1);
        await _backend.SetupNetworkAsync(Net2);
        var rules = _host.Rules();
        var stage1 = rules.Where(r => r.StartsWith("filter -A DOCKER-ISOLATION-STAGE-1 ", StringComparison.Ordinal)).ToList();
        Assert.That(stage1, Is.EqualTo(new[]
        {
            $"filter -A DOCKER-ISOLATION-STAGE-1 -i {_br1} ! -o {_br1} -j DOCKER-ISOLATION-STAGE-2",
            $"filter -A DOCKER-ISOLATION-STAGE-1 -i {_br2} ! -o {_br2} -j DOCKER-ISOLATION-STAGE-2",
            "filter -A DOCKER-ISOLATION-STAGE-1 -j RETURN",
        }));
        Assert.That(rules, Does.Contain($"filter -A DOCKER-ISOLATION-STAGE-2 -o {_br2} -j DROP"));
        Assert.That(rules.Take(2), Is.EqualTo(new[] { "filter -A FORWARD -j DOCKER-USER", "filter -A FORWARD -j DOCKER-ISOLATION-STAGE-1" }));

        await _backend.TeardownNetworkAsync(Net1);
        Assert.That(Canonical(_host.Rules()), Is.EqualTo(Canonical(Net1Rules(_br2).Select(r => r.Replace("10.231.1.0/24", "10.231.2.0/24", StringComparison.Ordinal)))));

        await _backend.TeardownNetworkAsync(Net2);
        Assert.That(_host.Rules(), Is.Empty);
        Assert.That(_host.UserChains(), Is.Empty);

        // Tearing down again is harmless.
        await _backend.TeardownNetworkAsync(Net2);
    }

    [Test]
    public async Task Port_forwards_add_and_remove_their_dnat_rules()
    {
        await _backend.SetupNetworkAsync(Net1);
        var networkOnly = Canonical(_host.Rules());
        var watch = Stopwatch.StartNew();
        await _backend.SetupPortForwardsAsync(Web);
        TestContext.Out.WriteLine($"SetupPortForwardsAsync: {watch.Elapsed.TotalMilliseconds:F1} ms");
        var rules = _host.Rules();
        Assert.That(rules, Is.SupersetOf(new[]
        {
            "nat -A DOCKER -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.231.1.2:80",
            "nat -A DOCKER -d 10.231.1.1/32 -p udp -m udp --dport 5353 -j DNAT --to-destination 10.231.1.2:53",
            $"filter -A DOCKER -d 10.231.1.2/32 ! -i {_br1} -o {_br1} -p tcp -m tcp --dport 80 -j ACCEPT",
            $"filter -A DOCKER -d 10.231.1.2/32 ! -i {_br1} -o {_br1} -p udp -m udp --dport 53 -j ACCEPT",
            "nat -A POSTROUTING -s 10.231.1.2/32 -d 10.231.1.2/32 -p tcp -m tcp --dport 80 -j MASQUERADE",
        }));

        await _backend.TeardownPortForwardsAsync(Web);
        Assert.That(Canonical(_host.Rules()), Is.EqualTo(networkOnly));

        // Forwards of a network go with it.
        await _backend.SetupPortForwardsAsync(Web);
        await _backend.TeardownNetworkAsync(Net1);
        Assert.That(_host.Rules(), Is.Empty);
        Assert.That(_host.UserChains(), Is.Empty);
    }

    [Test]
    public async Task Teardown_ignores_rules_removed_behind_its_back()
    {
        await _backend.SetupNetworkAsync(Net1);
        await _backend.SetupPortForwardsAsync(Web);
        _host.Exec("iptables", "-t", "nat", "-D", "DOCKER", "-p", "tcp", "-m", "tcp", "--dport", "8080", "-j", "DNAT", "--to-destination", "10.231.1.2:80");
        _host.Exec("iptables", "-D", "FORWARD", "-o", _br1, "-j", "DOCKER");
        await _backend.TeardownNetworkAsync(Net1);
        Assert.That(_host.Rules(), Is.Empty);
    }

    [Test]
    public async Task Reconcile_after_flush_restores_the_ruleset()
    {
        await _backend.SetupNetworkAsync(Net1);
        await _backend.SetupNetworkAsync(Net2 with { EnableIcc = false, Internal = true });
        await _backend.SetupPortForwardsAsync(Web);
        var full = Canonical(_host.Rules());

        foreach (var table in new[] { "filter", "nat" })
        {
            _host.Exec("iptables", "-t", table, "-F");
            _host.Exec("iptables", "-t", table, "-X");
        }

        Assert.That(_host.Rules(), Is.Empty);
        Assert.That(_host.UserChains(), Is.Empty);

        await _backend.ReconcileAsync([Net1, Net2 with { EnableIcc = false, Internal = true }], [Web]);
        Assert.That(Canonical(_host.Rules()), Is.EqualTo(full));

        // Only a flush (chains kept) is repaired as well.
        _host.Exec("iptables", "-F", "FORWARD");
        await _backend.ReconcileAsync([Net1, Net2 with { EnableIcc = false, Internal = true }], [Web]);
        Assert.That(Canonical(_host.Rules()), Is.EqualTo(full));

        await _backend.ReconcileAsync([], []);
        Assert.That(_host.Rules(), Is.Empty);
        Assert.That(_host.UserChains(), Is.Empty);
    }

    [Test]
    public async Task Invalid_record_changes_nothing()
    {
        await _backend.SetupNetworkAsync(Net1);
        var before = Canonical(_host.Rules());
        var ex = await Assert.ThrowsAsync<CnmInvalidArgumentException>(async () =>
            await _backend.SetupNetworkAsync(Net2 with { BridgeName = "br-0123456789abcdef" }));
        Assert.That(ex!.Code, Is.EqualTo(CnmErrorCodes.InvalidName));
        Assert.That(Canonical(_host.Rules()), Is.EqualTo(before));
    }

    [Test]
    public async Task Kernel_failure_midway_is_rolled_back_and_reported()
    {
        await _backend.SetupNetworkAsync(Net1);
        var before = Canonical(_host.Rules());

        // A restore that applies the nat table, then fails in the filter table (a real partial commit).
        var script = Path.Combine(Path.GetTempPath(), Sh.NewName("restore") + ".sh");
        await File.WriteAllTextAsync(script, "#!/bin/sh\nsed 's/^\\*filter$/*filter\\n-A NO-SUCH-CHAIN -j ACCEPT/' | iptables-restore \"$@\"\n");
        Sh.Run("chmod", "700", script);
        try
        {
            using var broken = new IptablesFirewallBackend(new IptablesFirewallBackendOptions { HostNamespacePath = _host.Path, IptablesRestore = script });
            await broken.ReconcileAsync([Net1], []);
            var ex = await Assert.ThrowsAsync<CnmInternalException>(async () => await broken.SetupPortForwardsAsync(Web));
            Assert.That(ex!.Code, Is.EqualTo(CnmErrorCodes.KernelError));
            Assert.That(ex.Reason, Does.Contain("NO-SUCH-CHAIN").Or.Contain("line"));
            Assert.That(Canonical(_host.Rules()), Is.EqualTo(before), "the nat part that was committed is rolled back");
        }
        finally
        {
            File.Delete(script);
        }
    }

    [Test]
    public async Task Ipv6_subnets_get_ip6tables_rules()
    {
        var network = Net1 with { IPv6Subnets = [IPNetwork.Parse("fd31:7::/64")] };
        var forward = Web with
        {
            ContainerIPv6 = IPAddress.Parse("fd31:7::2"),
            PortBindings = [new PortBinding(TransportProtocol.Tcp, 80, IPAddress.IPv6Any, 8080)],
        };
        await _backend.SetupNetworkAsync(network);
        await _backend.SetupPortForwardsAsync(forward);
        var v6 = _host.Rules(ipv6: true);
        Assert.That(v6, Does.Contain($"nat -A POSTROUTING -s fd31:7::/64 ! -o {_br1} -j MASQUERADE"));
        Assert.That(v6, Does.Contain("nat -A DOCKER -p tcp -m tcp --dport 8080 -j DNAT --to-destination [fd31:7::2]:80"));
        Assert.That(v6, Does.Contain($"filter -A DOCKER -d fd31:7::2/128 ! -i {_br1} -o {_br1} -p tcp -m tcp --dport 80 -j ACCEPT"));
        Assert.That(_host.Rules(), Does.Not.Contain("nat -A DOCKER -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.231.1.2:80"));

        await _backend.TeardownNetworkAsync(network);
        Assert.That(_host.Rules(ipv6: true), Is.Empty);
        Assert.That(_host.Rules(), Is.Empty);
        Assert.That(_host.UserChains(ipv6: true), Is.Empty);
    }

    [Test]
    public async Task Two_backends_in_two_namespaces_are_independent()
    {
        using var other = new TestNamespace();
        using var backend2 = new IptablesFirewallBackend(other.Path);
        await _backend.SetupNetworkAsync(Net1);
        await backend2.SetupNetworkAsync(Net1);
        await _backend.TeardownNetworkAsync(Net1);
        Assert.That(_host.Rules(), Is.Empty);
        Assert.That(other.Rules(), Has.Count.EqualTo(Net1Rules(_br1).Count));
        await backend2.TeardownNetworkAsync(Net1);
    }

    [Test]
    public async Task Port_range_of_the_host_namespace_is_read()
    {
        _host.Exec("sysctl", "-q", "-w", "net.ipv4.ip_local_port_range=40000 40099");
        var allocator = await HostPortAllocator.CreateForNamespaceAsync(_host.Path);
        Assert.That((allocator.EphemeralStart, allocator.EphemeralEnd), Is.EqualTo(((ushort)40000, (ushort)40099)));
        var missing = await HostPortAllocator.CreateForNamespaceAsync("/run/netns/" + Sh.NewName("missing"));
        Assert.That(missing.EphemeralStart, Is.EqualTo(HostPortAllocatorOptions.DefaultEphemeralStart));
    }

    [Test]
    public async Task Every_rule_variant_is_written_as_iptables_save_prints_it()
    {
        var variant = Net2 with { Hairpin = false, EnableIcc = false, SnatSource = IPAddress.Parse("192.0.2.7"), IPv6Subnets = [IPNetwork.Parse("fd31:8::/64")] };
        var isolated = new FirewallNetwork
        {
            NetworkId = "net3",
            BridgeName = _br1 + "i",
            IPv4Subnets = [IPNetwork.Parse("10.231.3.0/24"), IPNetwork.Parse("10.231.4.0/24")],
            IPv6Subnets = [IPNetwork.Parse("fd31:9::/64")],
            Internal = true,
        };
        var forward = new FirewallPortForward
        {
            NetworkId = "net2",
            EndpointId = "ep2",
            BridgeName = _br2,
            ContainerIPv4 = IPAddress.Parse("10.231.2.5"),
            ContainerIPv6 = IPAddress.Parse("fd31:8::5"),
            PortBindings =
            [
                new PortBinding(TransportProtocol.Tcp, 80, IPAddress.Parse("192.0.2.1"), 8080),
                new PortBinding(TransportProtocol.Udp, 53, IPAddress.Any, 5353),
                new PortBinding(TransportProtocol.Sctp, 9, IPAddress.Any, 9999),
                new PortBinding(TransportProtocol.Tcp, 80, IPAddress.IPv6Any, 8080),
                new PortBinding(TransportProtocol.Udp, 53, IPAddress.Parse("fd31:8::1"), 5353),
            ],
        };
        FirewallNetwork[] networks = [Net1, variant, isolated];
        await _backend.ReconcileAsync(networks, [Web, forward]);
        var v4 = _host.Rules();
        var v6 = _host.Rules(ipv6: true);
        Assert.That(v4, Is.Unique);
        Assert.That(v6, Is.Unique);

        // If any generated rule differed from iptables-save's text, the backend would think it missing and add it again.
        var processes = _backend.ProcessCount;
        await _backend.ReconcileAsync(networks, [Web, forward]);
        await _backend.SetupNetworkAsync(variant);
        await _backend.SetupPortForwardsAsync(forward);
        Assert.That(_backend.ProcessCount - processes, Is.EqualTo(6), "three changes, each only an iptables-save and an ip6tables-save");
        Assert.That(_host.Rules(), Is.EqualTo(v4));
        Assert.That(_host.Rules(ipv6: true), Is.EqualTo(v6));

        await _backend.ReconcileAsync([], []);
        Assert.That(_host.Rules().Concat(_host.Rules(ipv6: true)), Is.Empty);
        Assert.That(_host.UserChains().Concat(_host.UserChains(ipv6: true)), Is.Empty);
    }

    [TestCase(true)]
    [TestCase(false)]
    public async Task Measure_cost_of_setup_calls(bool readStateEachChange)
    {
        using var backend = new IptablesFirewallBackend(new IptablesFirewallBackendOptions { HostNamespacePath = _host.Path, ReadStateBeforeEachChange = readStateEachChange });
        var network = new List<double>();
        var forwards = new List<double>();
        for (var i = 0; i < 12; i++)
        {
            var net = Net1 with { NetworkId = $"m{i}", BridgeName = $"br-m{i}", IPv4Subnets = [IPNetwork.Parse($"10.232.{i}.0/24")] };
            var watch = Stopwatch.StartNew();
            await backend.SetupNetworkAsync(net);
            network.Add(watch.Elapsed.TotalMilliseconds);
            watch.Restart();
            await backend.SetupPortForwardsAsync(Web with { NetworkId = net.NetworkId, BridgeName = net.BridgeName, ContainerIPv4 = IPAddress.Parse($"10.232.{i}.2") });
            forwards.Add(watch.Elapsed.TotalMilliseconds);
        }

        // The floor on this machine right now: one bare process in the namespace.
        var spawn = new List<double>();
        for (var i = 0; i < 12; i++)
        {
            var watch = Stopwatch.StartNew();
            _host.Exec("true");
            spawn.Add(watch.Elapsed.TotalMilliseconds);
        }

        static double Median(List<double> values) => values.Skip(2).Order().ElementAt((values.Count - 2) / 2);
        TestContext.Out.WriteLine($"readStateEachChange={readStateEachChange}: SetupNetworkAsync median {Median(network):F1} ms, SetupPortForwardsAsync median {Median(forwards):F1} ms, bare 'nsenter true' median {Median(spawn):F1} ms (12 runs, first 2 discarded)");
        await backend.ReconcileAsync([], []);
        Assert.That(_host.Rules(), Is.Empty);
    }
}
