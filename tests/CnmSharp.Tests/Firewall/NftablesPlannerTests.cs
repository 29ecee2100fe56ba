using System.Net;
using CnmSharp.Drivers;
using CnmSharp.Firewall;
using CnmSharp.Firewall.Internal;
using CnmSharp.Firewall.Nftables;
using CnmSharp.Netlink.Nftables;
using B = CnmSharp.Firewall.Nftables.NftablesRuleBuilder;

namespace CnmSharp.Tests.Firewall;

/// <summary>The nftables model (what chains, rules and elements records produce) and the planner's batches. Pure: no kernel.</summary>
public class NftablesPlannerTests
{
    private const NftFamily Ip = NftFamily.IPv4;
    private const NftFamily Ip6 = NftFamily.IPv6;

    private static FirewallNetwork Net(string id = "n1", string bridge = "br-t1", string subnet = "172.30.0.0/16", string? subnet6 = null, string owner = "bridge") => new()
    {
        NetworkId = id,
        Owner = owner,
        BridgeName = bridge,
        IPv4Subnets = [IPNetwork.Parse(subnet)],
        IPv6Subnets = subnet6 is null ? [] : [IPNetwork.Parse(subnet6)],
        BridgeIPv4 = IPAddress.Parse(subnet.Split('/')[0]),
    };

    private static FirewallPortForward Forward(string network = "n1", string bridge = "br-t1", string container = "172.30.0.2", string? container6 = null,
        params PortBinding[] bindings) => new()
        {
            NetworkId = network,
            EndpointId = "ep-" + container,
            BridgeName = bridge,
            ContainerIPv4 = IPAddress.Parse(container),
            ContainerIPv6 = container6 is null ? null : IPAddress.Parse(container6),
            PortBindings = bindings,
        };

    private static NftModel Model(NftFamily family, FirewallNetwork[] networks, params FirewallPortForward[] forwards) =>
        FirewallRecords.From(networks, forwards).Build(family);

    private static string[] Comments(NftModel model, string chain) => [.. model.Chain(chain)!.Rules.Select(r => r.Comment)];

    private static NftExpression Verdict(NftModel model, string chain, string comment) =>
        model.Chain(chain)!.Rules.Single(r => r.Comment == comment).Expressions[^1];

    private static int Elements(NftModel model, string set) => model.Elements.GetValueOrDefault(set)?.Count ?? 0;

    [Test]
    public void One_network_makes_the_shared_chains_its_own_chains_and_one_element_per_map()
    {
        var model = Model(Ip, [Net()]);
        Assert.Multiple(() =>
        {
            Assert.That(model.Chains.Select(c => c.Name), Is.EqualTo(new[]
            {
                B.Forward, B.Prerouting, B.Output, B.Publish, B.Postrouting, "fwd-in-br-t1", "fwd-out-br-t1", "nat-out-br-t1", "nat-in-br-t1",
            }));
            Assert.That(model.Chains.Where(c => c.Base is not null).Select(c => (c.Name, c.Base!.Hook, c.Base.Priority)), Is.EqualTo(new[]
            {
                (B.Forward, NftHook.Forward, 0), (B.Prerouting, NftHook.Prerouting, -100), (B.Output, NftHook.Output, -100), (B.Postrouting, NftHook.Postrouting, 100),
            }));
            Assert.That(model.Chains.Select(c => c.Owner).Distinct(), Is.EquivalentTo(new[] { B.SharedOwner, "bridge" }));
            Assert.That(Comments(model, "fwd-in-br-t1"), Is.EqualTo(new[] { "bridge:established", "bridge:published", "bridge:icc-accept", "bridge:isolate" }));
            Assert.That(Verdict(model, "fwd-in-br-t1", "bridge:icc-accept"), Is.EqualTo(new NftImmediateVerdict(NftVerdict.Accept)));
            Assert.That(Verdict(model, "fwd-in-br-t1", "bridge:isolate"), Is.EqualTo(new NftImmediateVerdict(NftVerdict.Drop)));
            Assert.That(Comments(model, "fwd-out-br-t1"), Is.EqualTo(new[] { "bridge:out" }));
            Assert.That(Comments(model, "nat-out-br-t1"), Is.EqualTo(new[] { "bridge:masq 172.30.0.0/16" }));
            Assert.That(Comments(model, "nat-in-br-t1"), Is.EqualTo(new[] { "bridge:hairpin-local", "bridge:hairpin-self" }));
            Assert.That(Comments(model, B.Output), Is.EqualTo(new[] { "*:publish" }), "hairpin: loopback destinations are published too");
            foreach (var map in new[] { B.FwdIn, B.FwdOut, B.NatIn, B.NatOut })
            {
                Assert.That(model.Elements[map].Values.Single().Verdict, Is.EqualTo(NftVerdict.JumpTo(map + "-br-t1")), map);
                Assert.That(model.Elements[map].Values.Single().Comment, Is.EqualTo("bridge"), map);
            }

            Assert.That(Elements(model, B.NoHairpin) + Elements(model, B.Published) + Elements(model, B.DnatAny(TransportProtocol.Tcp)), Is.Zero);
        });
    }

    [Test]
    public void Icc_off_drops_between_containers_of_the_bridge()
    {
        var model = Model(Ip, [Net() with { EnableIcc = false }]);
        Assert.That(Comments(model, "fwd-in-br-t1"), Does.Contain("bridge:icc-drop").And.Not.Contain("bridge:icc-accept"));
        Assert.That(Verdict(model, "fwd-in-br-t1", "bridge:icc-drop"), Is.EqualTo(new NftImmediateVerdict(NftVerdict.Drop)));
    }

    [Test]
    public void An_internal_network_isolates_and_publishes_nothing()
    {
        var model = Model(Ip, [Net() with { Internal = true }], Forward(bindings: new PortBinding(TransportProtocol.Tcp, 80, IPAddress.Any, 8080)));
        Assert.Multiple(() =>
        {
            Assert.That(Comments(model, "fwd-in-br-t1"), Is.EqualTo(new[] { "bridge:icc-accept", "bridge:isolate" }));
            Assert.That(Comments(model, "fwd-out-br-t1"), Is.EqualTo(new[] { "bridge:internal" }));
            Assert.That(Verdict(model, "fwd-out-br-t1", "bridge:internal"), Is.EqualTo(new NftImmediateVerdict(NftVerdict.Drop)));
            Assert.That(model.Chain("nat-out-br-t1"), Is.Null);
            Assert.That(model.Chain("nat-in-br-t1"), Is.Null);
            Assert.That(Elements(model, B.Published) + Elements(model, B.DnatAny(TransportProtocol.Tcp)) + Elements(model, B.NatOut), Is.Zero);
        });
    }

    [Test]
    public void Without_masquerade_there_is_no_nat_out_chain_and_with_host_ipv4_it_is_snat()
    {
        var none = Model(Ip, [Net() with { EnableMasquerade = false }]);
        var snat = Model(Ip, [Net() with { EnableMasquerade = false, SnatSource = IPAddress.Parse("192.0.2.5") }]);
        Assert.Multiple(() =>
        {
            Assert.That(none.Chain("nat-out-br-t1"), Is.Null);
            Assert.That(Elements(none, B.NatOut), Is.Zero);
            Assert.That(Comments(snat, "nat-out-br-t1"), Is.EqualTo(new[] { "bridge:snat 172.30.0.0/16 192.0.2.5" }));
            Assert.That(Verdict(snat, "nat-out-br-t1", "bridge:snat 172.30.0.0/16 192.0.2.5"), Is.EqualTo(new NftNat(NftNatType.Snat, Ip, NftRegisters.Reg1)));
        });
    }

    [Test]
    public void Without_hairpin_the_bridge_is_in_no_hairpin_and_loopback_is_not_published()
    {
        var model = Model(Ip, [Net() with { Hairpin = false }], Forward(bindings: new PortBinding(TransportProtocol.Tcp, 80, IPAddress.Any, 8080)));
        Assert.Multiple(() =>
        {
            Assert.That(model.Chain("nat-in-br-t1"), Is.Null);
            Assert.That(Elements(model, B.NoHairpin), Is.EqualTo(1));
            Assert.That(Elements(model, B.HairpinSet), Is.Zero);
            Assert.That(Comments(model, B.Output), Is.EqualTo(new[] { "*:publish-not-loopback" }));
        });
    }

    [Test]
    public void A_forward_is_elements_only_per_binding_and_family()
    {
        var network = Net(subnet6: "fd00:30::/64");
        var forward = Forward(container6: "fd00:30::2", bindings:
        [
            new PortBinding(TransportProtocol.Tcp, 80, IPAddress.Any, 8080),
            new PortBinding(TransportProtocol.Udp, 53, IPAddress.Parse("192.0.2.1"), 5353),
            new PortBinding(TransportProtocol.Tcp, 80, IPAddress.IPv6Any, 8080),
        ]);
        var without = Model(Ip, [network]);
        var v4 = Model(Ip, [network], forward);
        var v6 = Model(Ip6, [network], forward);
        Assert.Multiple(() =>
        {
            Assert.That(v4.Chains.Select(c => Comments(v4, c.Name)), Is.EqualTo(without.Chains.Select(c => Comments(without, c.Name))), "no rule changes");
            Assert.That(Elements(v4, B.Published), Is.EqualTo(2));
            Assert.That(Elements(v4, B.HairpinSet), Is.EqualTo(2));
            Assert.That(v4.Elements[B.DnatAny(TransportProtocol.Tcp)].Values.Single(), Is.EqualTo(new NftSetElement(NftValues.Be16(8080),
                NftValues.Concat(NftValues.Address(IPAddress.Parse("172.30.0.2")), NftValues.Be16(80))) { Comment = "bridge" }).Using<NftSetElement>((a, b) => a.SameAs(b) && a.Comment == b.Comment));
            Assert.That(v4.Elements[B.DnatAddress(TransportProtocol.Udp)].Values.Single().Key,
                Is.EqualTo(NftValues.Concat(NftValues.Address(IPAddress.Parse("192.0.2.1")), NftValues.Be16(5353))));
            Assert.That(Elements(v6, B.Published), Is.EqualTo(1), "only the binding on ::");
            Assert.That(v6.Elements[B.DnatAny(TransportProtocol.Tcp)].Values.Single().Data,
                Is.EqualTo(NftValues.Concat(NftValues.Address(IPAddress.Parse("fd00:30::2")), NftValues.Be16(80))));
            Assert.That(Elements(v6, B.DnatAddress(TransportProtocol.Udp)), Is.Zero);
        });
    }

    [Test]
    public void Ipv6_rules_exist_only_for_networks_with_an_ipv6_subnet()
    {
        Assert.That(Model(Ip6, [Net()]).IsEmpty, Is.True);
        var model = Model(Ip6, [Net(subnet6: "fd00:30::/64"), Net("n2", "br-t2", "172.31.0.0/16")]);
        Assert.Multiple(() =>
        {
            Assert.That(model.Chain("fwd-in-br-t1"), Is.Not.Null);
            Assert.That(model.Chain("fwd-in-br-t2"), Is.Null);
            Assert.That(Comments(model, "nat-out-br-t1"), Is.EqualTo(new[] { "bridge:masq fd00:30::/64" }));
            Assert.That(model.Chain("nat-out-br-t1")!.Rules[0].Expressions, Has.Some.EqualTo(new NftPayload(NftPayloadBase.Network, 8, 8)), "ip6 saddr, 8 prefix bytes");
        });
    }

    [Test]
    public void Adding_a_forward_to_a_synced_table_is_one_element_add_per_map()
    {
        var network = Net();
        var old = Model(Ip, [network]);
        var @new = Model(Ip, [network], Forward(bindings: new PortBinding(TransportProtocol.Tcp, 80, IPAddress.Any, 8080)));
        using var batch = new NftablesBatch();
        NftablesPlanner.PlanChange(batch, Ip, "cnmsharp", old, @new);
        Assert.That(batch.Descriptions, Is.EquivalentTo(new[]
        {
            "add 1 element(s) ip cnmsharp dnat-any-tcp", "add 1 element(s) ip cnmsharp hairpin", "add 1 element(s) ip cnmsharp published",
        }));

        using var back = new NftablesBatch();
        NftablesPlanner.PlanChange(back, Ip, "cnmsharp", @new, old);
        Assert.That(back.Descriptions.All(d => d.StartsWith("delete 1 element(s)", StringComparison.Ordinal)), Is.True, string.Join("; ", back.Descriptions));
        Assert.That(back.Count, Is.EqualTo(3));
    }

    [Test]
    public void The_first_network_creates_the_table_a_second_adds_its_chains_and_the_last_deletes_the_table()
    {
        var one = Model(Ip, [Net()]);
        var two = Model(Ip, [Net(), Net("n2", "br-t2", "172.31.0.0/16")]);
        using var first = new NftablesBatch();
        NftablesPlanner.PlanChange(first, Ip, "cnmsharp", new NftModel(), one);
        using var second = new NftablesBatch();
        NftablesPlanner.PlanChange(second, Ip, "cnmsharp", one, two);
        using var last = new NftablesBatch();
        NftablesPlanner.PlanChange(last, Ip, "cnmsharp", one, new NftModel());
        Assert.Multiple(() =>
        {
            Assert.That(first.Descriptions[0], Is.EqualTo("add table ip cnmsharp"));
            Assert.That(first.Descriptions, Has.Some.EqualTo("add map ip cnmsharp fwd-in").And.Some.EqualTo("add set ip cnmsharp published"));
            Assert.That(second.Descriptions, Has.None.StartsWith("add table").And.None.StartsWith("flush"));
            Assert.That(second.Descriptions.Where(d => d.StartsWith("add chain", StringComparison.Ordinal)),
                Is.EquivalentTo(new[] { "fwd-in-br-t2", "fwd-out-br-t2", "nat-out-br-t2", "nat-in-br-t2" }.Select(c => "add chain ip cnmsharp " + c)));
            Assert.That(last.Descriptions, Is.EqualTo(new[] { "delete table ip cnmsharp" }));
        });
    }

    [Test]
    public void Switching_icc_refills_only_that_chain()
    {
        var old = Model(Ip, [Net(), Net("n2", "br-t2", "172.31.0.0/16")]);
        var @new = Model(Ip, [Net() with { EnableIcc = false }, Net("n2", "br-t2", "172.31.0.0/16")]);
        using var batch = new NftablesBatch();
        NftablesPlanner.PlanChange(batch, Ip, "cnmsharp", old, @new);
        Assert.That(batch.Descriptions[0], Is.EqualTo("flush chain ip cnmsharp fwd-in-br-t1"));
        Assert.That(batch.Descriptions.Skip(1), Has.All.StartWith("add rule ip cnmsharp fwd-in-br-t1"));
        Assert.That(batch.Count, Is.EqualTo(5));
    }

    [Test]
    public void An_owners_sync_leaves_another_owners_chains_and_elements_alone()
    {
        var bridge = Net();
        var overlay = Net("n2", "br-t2", "172.31.0.0/16", owner: "overlay");
        var both = Model(Ip, [bridge, overlay]);
        var state = new NftablesState { TableExists = true };
        foreach (var set in B.Sets(Ip))
        {
            state.Sets.Add(set.Name);
            state.Elements[set.Name] = new Dictionary<string, NftSetElement>(StringComparer.Ordinal);
        }

        // The kernel holds the overlay's chains and elements only (the bridge's part was never made).
        foreach (var chain in both.Chains.Where(c => c.Owner == "overlay"))
        {
            state.Chains[chain.Name] = new NftChain(Ip, "cnmsharp", chain.Name, 1, null, "overlay");
            state.Rules[chain.Name] = [];
        }

        foreach (var (set, elements) in both.Elements)
        {
            foreach (var (key, element) in elements.Where(e => e.Value.Comment == "overlay"))
            {
                state.Elements[set][key] = element;
            }
        }

        var desired = Model(Ip, [bridge]);
        using var mine = new NftablesBatch();
        NftablesPlanner.PlanSync(mine, Ip, "cnmsharp", state, desired, "bridge");
        using var all = new NftablesBatch();
        NftablesPlanner.PlanSync(all, Ip, "cnmsharp", state, desired, owner: null);
        Assert.Multiple(() =>
        {
            Assert.That(mine.Descriptions, Has.None.Contains("br-t2").And.None.StartsWith("delete"), "the overlay's part is not the bridge's to touch");
            Assert.That(mine.Descriptions, Has.Some.EqualTo("add chain ip cnmsharp fwd-in-br-t1"));
            Assert.That(all.Descriptions, Has.Some.EqualTo("delete chain ip cnmsharp fwd-in-br-t2"), "a reconcile of every owner removes what no record wants");
            Assert.That(all.Descriptions, Has.Some.StartsWith("delete 1 element(s) ip cnmsharp fwd-in"));
        });
    }

    [Test]
    public void A_forwards_elements_alone_plan_the_same_batch_as_the_whole_models()
    {
        var network = Net(subnet6: "fd00:30::/64");
        var other = Forward(container: "172.30.0.3", bindings: new PortBinding(TransportProtocol.Tcp, 80, IPAddress.Any, 9090));
        var web = Forward(container6: "fd00:30::2", bindings:
        [
            new PortBinding(TransportProtocol.Tcp, 80, IPAddress.Any, 8080),
            new PortBinding(TransportProtocol.Udp, 53, IPAddress.Parse("192.0.2.1"), 5353),
            new PortBinding(TransportProtocol.Tcp, 80, IPAddress.IPv6Any, 8080),
        ]);
        var moved = web with { PortBindings = [new PortBinding(TransportProtocol.Tcp, 80, IPAddress.Any, 8081)] };
        var before = FirewallRecords.From([network], [other, web]);
        var after = before.WithForward(moved);
        foreach (var family in new[] { Ip, Ip6 })
        {
            using var whole = new NftablesBatch();
            NftablesPlanner.PlanChange(whole, family, "cnmsharp", before.Build(family), after.Build(family));
            using var elements = new NftablesBatch();
            NftablesPlanner.PlanElements(elements, family, "cnmsharp",
                B.BuildForwards(family, before.Forwards.Where(f => f.EndpointId == web.EndpointId).Select(f => (f, before.NetworkOf(f)))),
                B.BuildForwards(family, after.Forwards.Where(f => f.EndpointId == web.EndpointId).Select(f => (f, after.NetworkOf(f)))));
            Assert.That(elements.Descriptions, Is.EqualTo(whole.Descriptions), family.ToString());
            Assert.That(elements.Count, Is.GreaterThan(0));
        }
    }
}
