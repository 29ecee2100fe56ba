using System.Net;
using CnmSharp.Drivers;
using CnmSharp.Firewall;
using CnmSharp.Firewall.Iptables;
using Records = CnmSharp.Firewall.Internal.FirewallRecords;

namespace CnmSharp.Tests.Firewall;

public class IptablesRuleGenerationTests
{
    internal static FirewallNetwork Net(string id = "n1", string bridge = "br-test1", string subnet = "172.30.0.0/16") => new()
    {
        NetworkId = id,
        BridgeName = bridge,
        IPv4Subnets = [IPNetwork.Parse(subnet)],
        BridgeIPv4 = IPAddress.Parse(subnet.Split('/')[0]),
    };

    internal static FirewallPortForward Forward(string network = "n1", string bridge = "br-test1", string container = "172.30.0.2", params PortBinding[] bindings) => new()
    {
        NetworkId = network,
        EndpointId = "ep1",
        BridgeName = bridge,
        ContainerIPv4 = IPAddress.Parse(container),
        PortBindings = bindings,
    };

    private static string Plan(Records after, Records? before = null, IptablesFamily family = IptablesFamily.IPv4, string? state = null) =>
        IptablesFirewallBackend.PlanFor(family, IptablesState.Parse(state ?? FakeIptables.EmptyTables), before ?? Records.Empty, after);

    [Test]
    public void First_network_creates_the_chains_and_its_rules()
    {
        var text = Plan(Records.Empty.WithNetwork(Net()));
        Assert.That(text, Is.EqualTo("""
            *nat
            :DOCKER - [0:0]
            -A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
            -A OUTPUT -m addrtype --dst-type LOCAL -j DOCKER
            -A POSTROUTING -s 172.30.0.0/16 ! -o br-test1 -j MASQUERADE
            -A POSTROUTING -o br-test1 -m addrtype --src-type LOCAL -j MASQUERADE
            COMMIT
            *filter
            :DOCKER - [0:0]
            :DOCKER-ISOLATION-STAGE-1 - [0:0]
            :DOCKER-ISOLATION-STAGE-2 - [0:0]
            :DOCKER-USER - [0:0]
            -A FORWARD -j DOCKER-USER
            -A FORWARD -j DOCKER-ISOLATION-STAGE-1
            -A FORWARD -o br-test1 -j DOCKER
            -A FORWARD -o br-test1 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
            -A FORWARD -i br-test1 ! -o br-test1 -j ACCEPT
            -A FORWARD -i br-test1 -o br-test1 -j ACCEPT
            -A DOCKER-ISOLATION-STAGE-1 -i br-test1 ! -o br-test1 -j DOCKER-ISOLATION-STAGE-2
            -A DOCKER-ISOLATION-STAGE-1 -j RETURN
            -A DOCKER-ISOLATION-STAGE-2 -o br-test1 -j DROP
            -A DOCKER-ISOLATION-STAGE-2 -j RETURN
            -A DOCKER-USER -j RETURN
            COMMIT

            """.ReplaceLineEndings("\n")));
    }

    [Test]
    public void No_hairpin_no_icc_snat_variant()
    {
        var network = Net() with { Hairpin = false, EnableIcc = false, SnatSource = IPAddress.Parse("198.51.100.7") };
        var text = Plan(Records.Empty.WithNetwork(network));
        Assert.That(text, Does.Contain("-A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER\n"));
        Assert.That(text, Does.Contain("-A POSTROUTING -s 172.30.0.0/16 ! -o br-test1 -j SNAT --to-source 198.51.100.7\n"));
        Assert.That(text, Does.Contain("-A DOCKER -i br-test1 -j RETURN\n"));
        Assert.That(text, Does.Contain("-A FORWARD -i br-test1 -o br-test1 -j DROP\n"));
        Assert.That(text, Does.Not.Contain("--src-type LOCAL"));
    }

    [Test]
    public void No_masquerade_drops_only_the_masquerade_rule()
    {
        var text = Plan(Records.Empty.WithNetwork(Net() with { EnableMasquerade = false }));
        Assert.That(text, Does.Not.Contain("! -o br-test1 -j MASQUERADE"));
        Assert.That(text, Does.Contain("-o br-test1 -m addrtype --src-type LOCAL -j MASQUERADE"));
    }

    [Test]
    public void Internal_network_gets_isolation_drops_and_icc_only()
    {
        var text = Plan(Records.Empty.WithNetwork(Net() with { Internal = true, EnableIcc = false }));
        Assert.That(text, Does.Contain("""
            -A FORWARD -j DOCKER-USER
            -A FORWARD -j DOCKER-ISOLATION-STAGE-1
            -A FORWARD -i br-test1 -o br-test1 -j DROP
            -A DOCKER-ISOLATION-STAGE-1 ! -s 172.30.0.0/16 -o br-test1 -j DROP
            -A DOCKER-ISOLATION-STAGE-1 ! -d 172.30.0.0/16 -i br-test1 -j DROP
            -A DOCKER-ISOLATION-STAGE-1 -j RETURN

            """.ReplaceLineEndings("\n")));
        Assert.That(text, Does.Not.Contain("MASQUERADE"));
        Assert.That(text, Does.Not.Contain("-o br-test1 -j DOCKER\n"));
    }

    [Test]
    public void Second_network_is_inserted_before_the_first_and_before_the_returns()
    {
        var one = Records.Empty.WithNetwork(Net());
        var state = IptablesState.Parse(FakeIptables.EmptyTables);
        var first = IptablesFirewallBackend.PlanFor(IptablesFamily.IPv4, state, Records.Empty, one);
        Assert.That(first, Is.Not.Empty);

        var two = one.WithNetwork(Net("n2", "br-test2", "172.31.0.0/16"));
        var second = IptablesFirewallBackend.PlanFor(IptablesFamily.IPv4, state, one, two);
        Assert.That(second, Does.Not.Contain(":DOCKER"), "existing chains are never declared (that would flush them)");
        Assert.That(second, Does.Contain("-A FORWARD -o br-test2 -j DOCKER\n"));
        Assert.That(second, Does.Contain("-I DOCKER-ISOLATION-STAGE-1 2 -i br-test2 ! -o br-test2 -j DOCKER-ISOLATION-STAGE-2\n"));
        Assert.That(second, Does.Contain("-I DOCKER-ISOLATION-STAGE-2 2 -o br-test2 -j DROP\n"));
        Assert.That(state.Rules("filter", IptablesRuleBuilder.IsolationStage1), Is.EqualTo(new[]
        {
            "-i br-test1 ! -o br-test1 -j DOCKER-ISOLATION-STAGE-2",
            "-i br-test2 ! -o br-test2 -j DOCKER-ISOLATION-STAGE-2",
            "-j RETURN",
        }));

        // Running the same change again writes nothing: setup is idempotent.
        Assert.That(IptablesFirewallBackend.PlanFor(IptablesFamily.IPv4, state, one, two), Is.Empty);
        Assert.That(IptablesFirewallBackend.PlanFor(IptablesFamily.IPv4, state, Records.Empty, two), Is.Empty);
    }

    [Test]
    public void Own_rules_go_before_foreign_forward_rules_but_after_the_jumps()
    {
        var state = IptablesState.Parse(FakeIptables.EmptyTables.Replace(":OUTPUT ACCEPT [0:0]\nCOMMIT\n*nat", ":OUTPUT ACCEPT [0:0]\n-A FORWARD -j REJECT\nCOMMIT\n*nat", StringComparison.Ordinal));
        IptablesFirewallBackend.PlanFor(IptablesFamily.IPv4, state, Records.Empty, Records.Empty.WithNetwork(Net()));
        Assert.That(state.Rules("filter", "FORWARD"), Is.EqualTo(new[]
        {
            "-j DOCKER-USER",
            "-j DOCKER-ISOLATION-STAGE-1",
            "-o br-test1 -j DOCKER",
            "-o br-test1 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
            "-i br-test1 ! -o br-test1 -j ACCEPT",
            "-i br-test1 -o br-test1 -j ACCEPT",
            "-j REJECT",
        }));
    }

    [Test]
    public void Teardown_of_one_network_deletes_only_its_rules_and_of_the_last_the_chains()
    {
        var one = Records.Empty.WithNetwork(Net());
        var two = one.WithNetwork(Net("n2", "br-test2", "172.31.0.0/16"));
        var state = IptablesState.Parse(FakeIptables.EmptyTables);
        IptablesFirewallBackend.PlanFor(IptablesFamily.IPv4, state, Records.Empty, two);

        var text = IptablesFirewallBackend.PlanFor(IptablesFamily.IPv4, state, two, two.WithoutNetwork("n1"));
        Assert.That(text, Does.Contain("-D FORWARD -o br-test1 -j DOCKER\n"));
        Assert.That(text, Does.Not.Contain("br-test2"));
        Assert.That(text, Does.Not.Contain("-X"));

        var last = IptablesFirewallBackend.PlanFor(IptablesFamily.IPv4, state, two.WithoutNetwork("n1"), Records.Empty);
        Assert.That(last, Does.Contain("-D FORWARD -j DOCKER-USER\n"));
        Assert.That(last, Does.Contain("-X DOCKER-ISOLATION-STAGE-1\n"));
        Assert.That(state.CountRules(), Is.Zero);
        Assert.That(state.HasChain(new ChainRef("filter", "DOCKER-USER")), Is.False);
        Assert.That(state.HasChain(new ChainRef("nat", "DOCKER")), Is.False);
    }

    [Test]
    public void Teardown_skips_rules_already_missing()
    {
        var one = Records.Empty.WithNetwork(Net());
        var state = IptablesState.Parse(FakeIptables.EmptyTables);
        IptablesFirewallBackend.PlanFor(IptablesFamily.IPv4, state, Records.Empty, one);
        state.Rules("filter", "FORWARD").Remove("-o br-test1 -j DOCKER");

        var text = IptablesFirewallBackend.PlanFor(IptablesFamily.IPv4, state, one, Records.Empty);
        Assert.That(text, Does.Not.Contain("-D FORWARD -o br-test1 -j DOCKER\n"));
        Assert.That(text, Does.Contain("-D FORWARD -i br-test1 -o br-test1 -j ACCEPT\n"));
    }

    [Test]
    public void Port_forwards_dnat_accept_and_hairpin_masquerade()
    {
        var network = Net();
        var records = Records.Empty.WithNetwork(network);
        var state = IptablesState.Parse(FakeIptables.EmptyTables);
        IptablesFirewallBackend.PlanFor(IptablesFamily.IPv4, state, Records.Empty, records);

        var forward = Forward(bindings:
        [
            new PortBinding(TransportProtocol.Tcp, 80, IPAddress.Any, 8080),
            new PortBinding(TransportProtocol.Udp, 53, IPAddress.Parse("192.0.2.1"), 5353),
            new PortBinding(TransportProtocol.Sctp, 9, IPAddress.Any, 9999),
        ]);
        var text = IptablesFirewallBackend.PlanFor(IptablesFamily.IPv4, state, records, records.WithForward(forward));
        Assert.That(text, Is.EqualTo("""
            *nat
            -A POSTROUTING -s 172.30.0.2/32 -d 172.30.0.2/32 -p tcp -m tcp --dport 80 -j MASQUERADE
            -A POSTROUTING -s 172.30.0.2/32 -d 172.30.0.2/32 -p udp -m udp --dport 53 -j MASQUERADE
            -A POSTROUTING -s 172.30.0.2/32 -d 172.30.0.2/32 -p sctp -m sctp --dport 9 -j MASQUERADE
            -A DOCKER -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.30.0.2:80
            -A DOCKER -d 192.0.2.1/32 -p udp -m udp --dport 5353 -j DNAT --to-destination 172.30.0.2:53
            -A DOCKER -p sctp -m sctp --dport 9999 -j DNAT --to-destination 172.30.0.2:9
            COMMIT
            *filter
            -A DOCKER -d 172.30.0.2/32 ! -i br-test1 -o br-test1 -p tcp -m tcp --dport 80 -j ACCEPT
            -A DOCKER -d 172.30.0.2/32 ! -i br-test1 -o br-test1 -p udp -m udp --dport 53 -j ACCEPT
            -A DOCKER -d 172.30.0.2/32 ! -i br-test1 -o br-test1 -p sctp -m sctp --dport 9 -j ACCEPT
            COMMIT

            """.ReplaceLineEndings("\n")));
    }

    [Test]
    public void Without_hairpin_dnat_excludes_the_bridge()
    {
        var records = Records.Empty.WithNetwork(Net() with { Hairpin = false });
        var forward = Forward(bindings: [new PortBinding(TransportProtocol.Tcp, 80, IPAddress.Any, 8080)]);
        var text = Plan(records.WithForward(forward));
        Assert.That(text, Does.Contain("-A DOCKER ! -i br-test1 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.30.0.2:80\n"));
    }

    [Test]
    public void Ipv6_rules_go_to_ip6tables_only()
    {
        var network = new FirewallNetwork
        {
            NetworkId = "n6",
            BridgeName = "br-six",
            IPv4Subnets = [IPNetwork.Parse("172.30.0.0/16")],
            IPv6Subnets = [IPNetwork.Parse("fd00:1::/64")],
        };
        var forward = new FirewallPortForward
        {
            NetworkId = "n6",
            EndpointId = "e",
            BridgeName = "br-six",
            ContainerIPv4 = IPAddress.Parse("172.30.0.2"),
            ContainerIPv6 = IPAddress.Parse("fd00:1::2"),
            PortBindings = [new PortBinding(TransportProtocol.Tcp, 80, IPAddress.IPv6Any, 8080), new PortBinding(TransportProtocol.Tcp, 81, IPAddress.IPv6Loopback, 8081)],
        };
        var records = Records.Empty.WithNetwork(network).WithForward(forward);
        var v6 = Plan(records, family: IptablesFamily.IPv6);
        Assert.That(v6, Does.Contain("-A POSTROUTING -s fd00:1::/64 ! -o br-six -j MASQUERADE\n"));
        Assert.That(v6, Does.Contain("-A DOCKER -p tcp -m tcp --dport 8080 -j DNAT --to-destination [fd00:1::2]:80\n"));
        Assert.That(v6, Does.Contain("-A DOCKER -d ::1/128 -p tcp -m tcp --dport 8081 -j DNAT --to-destination [fd00:1::2]:81\n"));
        Assert.That(v6, Does.Contain("-A DOCKER -d fd00:1::2/128 ! -i br-six -o br-six -p tcp -m tcp --dport 80 -j ACCEPT\n"));
        Assert.That(v6, Does.Not.Contain("172.30."));

        var v4 = Plan(records);
        Assert.That(v4, Does.Not.Contain("DNAT"));
        Assert.That(v4, Does.Not.Contain("fd00"));

        var v4only = Plan(Records.Empty.WithNetwork(Net()), family: IptablesFamily.IPv6);
        Assert.That(v4only, Is.Empty);
    }

    [Test]
    public void Forward_on_internal_network_adds_nothing()
    {
        var records = Records.Empty.WithNetwork(Net() with { Internal = true });
        var forward = Forward(bindings: [new PortBinding(TransportProtocol.Tcp, 80, IPAddress.Any, 8080)]);
        Assert.That(Plan(records.WithForward(forward), before: records, state: null), Does.Not.Contain("DNAT"));
    }

    [Test]
    public void A_chain_still_referenced_by_a_foreign_rule_is_flushed_but_kept()
    {
        var one = Records.Empty.WithNetwork(Net());
        var state = IptablesState.Parse(FakeIptables.EmptyTables);
        IptablesFirewallBackend.PlanFor(IptablesFamily.IPv4, state, Records.Empty, one);
        state.Rules("filter", "INPUT").Add("-j DOCKER-ISOLATION-STAGE-2");
        state.Rules("filter", "DOCKER-ISOLATION-STAGE-2").Insert(0, "-s 192.0.2.0/24 -j DROP");

        var text = IptablesFirewallBackend.PlanFor(IptablesFamily.IPv4, state, one, Records.Empty);
        Assert.That(text, Does.Contain("-F DOCKER-ISOLATION-STAGE-2\n"));
        Assert.That(text, Does.Not.Contain("-X DOCKER-ISOLATION-STAGE-2\n"));
        Assert.That(text, Does.Contain("-X DOCKER-ISOLATION-STAGE-1\n"));
        Assert.That(state.HasChain(new ChainRef("filter", "DOCKER-ISOLATION-STAGE-2")), Is.True);
        Assert.That(state.Rules("filter", "INPUT"), Is.EqualTo(new[] { "-j DOCKER-ISOLATION-STAGE-2" }));
    }

    [Test]
    public void DOCKER_USER_with_an_administrators_rule_is_not_touched_when_the_last_network_goes()
    {
        var one = Records.Empty.WithNetwork(Net());
        var state = IptablesState.Parse(FakeIptables.EmptyTables);
        IptablesFirewallBackend.PlanFor(IptablesFamily.IPv4, state, Records.Empty, one);
        state.Rules("filter", "DOCKER-USER").Insert(0, "-s 192.0.2.0/24 -j DROP");

        var text = IptablesFirewallBackend.PlanFor(IptablesFamily.IPv4, state, one, Records.Empty);
        Assert.That(text, Does.Not.Contain("DOCKER-USER"));
        Assert.That(text, Does.Contain("-X DOCKER-ISOLATION-STAGE-1\n"));
        Assert.That(state.Rules("filter", "DOCKER-USER"), Is.EqualTo(new[] { "-s 192.0.2.0/24 -j DROP", "-j RETURN" }));
        Assert.That(state.Rules("filter", "FORWARD"), Is.EqualTo(new[] { "-j DOCKER-USER" }));
    }

    [Test]
    public void Save_output_round_trips()
    {
        const string Saved = """
            # Generated by iptables-save v1.8.9 (nf_tables)
            *filter
            :INPUT ACCEPT [0:0]
            :FORWARD DROP [0:0]
            :DOCKER - [0:0]
            -A FORWARD -j DOCKER
            -A DOCKER -d 10.0.0.2/32 ! -i br0 -o br0 -p tcp -m tcp --dport 80 -j ACCEPT
            COMMIT
            # Completed
            """;
        var state = IptablesState.Parse(Saved);
        Assert.That(state.CountRules(), Is.EqualTo(2));
        Assert.That(state.HasChain(new ChainRef("filter", "DOCKER")), Is.True);
        Assert.That(state.IsReferenced(new ChainRef("filter", "DOCKER")), Is.True);
        Assert.That(IptablesState.Parse(state.ToSaveText()).ToSaveText(), Is.EqualTo(state.ToSaveText()));
        Assert.Throws<FormatException>(() => IptablesState.Parse("-A FORWARD -j ACCEPT"));
    }
}
