using System.Net;
using CnmSharp.Drivers;
using CnmSharp.Firewall;
using CnmSharp.Firewall.Iptables;
using static CnmSharp.Tests.Firewall.IptablesRuleGenerationTests;

namespace CnmSharp.Tests.Firewall;

public class IptablesFirewallBackendTests
{
    private static (IptablesFirewallBackend Backend, FakeIptables Fake) Create(bool readEachTime = true, string? ns = "/run/netns/x")
    {
        var fake = new FakeIptables();
        var backend = new IptablesFirewallBackend(new IptablesFirewallBackendOptions { HostNamespacePath = ns, ReadStateBeforeEachChange = readEachTime }, fake);
        return (backend, fake);
    }

    private static PortBinding Http => new(TransportProtocol.Tcp, 80, IPAddress.Any, 8080);

    [Test]
    public async Task Setup_runs_one_save_and_one_restore_and_is_idempotent()
    {
        var (backend, fake) = Create();
        await backend.SetupNetworkAsync(Net());
        Assert.That(fake.Calls.Select(c => c.Tool), Is.EqualTo(new[] { "iptables-save", "iptables-restore" }));
        var rules = fake.State().CountRules();

        await backend.SetupNetworkAsync(Net());
        Assert.That(fake.Calls.Select(c => c.Tool), Is.EqualTo(new[] { "iptables-save", "iptables-restore", "iptables-save" }), "nothing to do: no restore");
        Assert.That(fake.State().CountRules(), Is.EqualTo(rules));
        Assert.That(backend.Name, Is.EqualTo("iptables"));
    }

    [Test]
    public async Task Without_namespace_the_tools_run_directly()
    {
        var fake = new FakeIptables();
        var backend = new IptablesFirewallBackend(new IptablesFirewallBackendOptions(), fake);
        await backend.SetupNetworkAsync(Net());
        Assert.That(fake.Calls, Has.Count.EqualTo(2));
    }

    [Test]
    public async Task Trusting_the_cache_runs_one_process_per_change_and_recovers_from_a_flush()
    {
        var (backend, fake) = Create(readEachTime: false);
        await backend.SetupNetworkAsync(Net());
        fake.Calls.Clear();
        await backend.SetupPortForwardsAsync(Forward(bindings: Http));
        Assert.That(fake.Calls.Select(c => c.Tool), Is.EqualTo(new[] { "iptables-restore" }));

        // Someone deletes the chains behind our back: the stale batch fails, the backend re-reads and retries.
        var clean = IptablesState.Parse(FakeIptables.EmptyTables);
        fake.State().Rules("filter", "FORWARD").Clear();
        foreach (var chain in IptablesRuleBuilder.OwnedChains)
        {
            fake.State().FindRules(chain.Table, chain.Name)?.Clear();
            fake.State().DeleteChain(chain);
        }

        foreach (var chain in new[] { "PREROUTING", "OUTPUT", "POSTROUTING" })
        {
            fake.State().Rules("nat", chain).Clear();
        }

        Assert.That(fake.State().CountRules(), Is.Zero);
        await backend.SetupNetworkAsync(Net("n2", "br-test2", "172.31.0.0/16"));
        Assert.That(fake.State().Rules("filter", IptablesRuleBuilder.IsolationStage2), Does.Contain("-o br-test2 -j DROP"));
        Assert.That(fake.State().Rules("nat", "DOCKER"), Has.Count.EqualTo(1), "the diff against the real state re-adds n1's forward too");
        Assert.That(clean.CountRules(), Is.Zero);
    }

    [Test]
    public async Task Failed_batch_is_rolled_back_across_tables()
    {
        var (backend, fake) = Create();
        await backend.SetupNetworkAsync(Net());
        var before = fake.State().ToSaveText();

        fake.FailOn = "-A DOCKER -d 172.30.0.2/32"; // the filter part of the batch: nat commits first
        var ex = await Assert.ThrowsAsync<CnmInternalException>(async () => await backend.SetupPortForwardsAsync(Forward(bindings: Http)));
        Assert.That(ex!.Code, Is.EqualTo(CnmErrorCodes.KernelError));
        Assert.That(ex.Message, Does.Contain("line"));
        Assert.That(fake.State().ToSaveText(), Is.EqualTo(before));

        // The failed forward is not remembered: a later teardown of the network removes everything.
        fake.FailOn = null;
        await backend.TeardownNetworkAsync(Net());
        Assert.That(fake.State().CountRules(), Is.Zero);
    }

    [Test]
    public async Task Failed_first_network_leaves_no_chains()
    {
        var (backend, fake) = Create();
        fake.FailOn = "-A DOCKER-USER -j RETURN";
        await Assert.ThrowsAsync<CnmInternalException>(async () => await backend.SetupNetworkAsync(Net()));
        Assert.That(fake.State().ToSaveText(), Is.EqualTo(IptablesState.Parse(FakeIptables.EmptyTables).ToSaveText()));
    }

    [Test]
    public async Task Invalid_records_fail_before_any_process()
    {
        var (backend, fake) = Create();
        var tooLong = await Assert.ThrowsAsync<CnmInvalidArgumentException>(async () => await backend.SetupNetworkAsync(Net(bridge: "br-0123456789abcdef")));
        Assert.That(tooLong!.Code, Is.EqualTo(CnmErrorCodes.InvalidName));
        await Assert.ThrowsAsync<CnmInvalidArgumentException>(async () => await backend.SetupNetworkAsync(Net(bridge: "br x")));
        await Assert.ThrowsAsync<CnmInvalidArgumentException>(async () => await backend.SetupNetworkAsync(Net() with { IPv4Subnets = [IPNetwork.Parse("fd00::/64")] }));
        await Assert.ThrowsAsync<CnmInvalidArgumentException>(async () => await backend.SetupNetworkAsync(Net() with { SnatSource = IPAddress.IPv6Loopback }));
        await Assert.ThrowsAsync<CnmInvalidArgumentException>(async () => await backend.SetupNetworkAsync(Net(id: "")));
        await Assert.ThrowsAsync<CnmInvalidArgumentException>(async () => await backend.SetupPortForwardsAsync(Forward(bindings: Http with { HostPort = 0 })));
        await Assert.ThrowsAsync<CnmInvalidArgumentException>(async () => await backend.SetupPortForwardsAsync(Forward(bindings: Http with { HostPortEnd = 8090 })));
        await Assert.ThrowsAsync<CnmInvalidArgumentException>(async () => await backend.SetupPortForwardsAsync(Forward(bindings: Http with { HostIP = IPAddress.IPv6Any })));
        Assert.That(fake.Calls, Is.Empty);
    }

    [Test]
    public async Task Port_forwards_need_their_network_and_its_bridge()
    {
        var (backend, fake) = Create();
        var ex = await Assert.ThrowsAsync<CnmNotFoundException>(async () => await backend.SetupPortForwardsAsync(Forward(bindings: Http)));
        Assert.That(ex!.Code, Is.EqualTo(CnmErrorCodes.NoSuchNetwork));
        await backend.SetupNetworkAsync(Net());
        await Assert.ThrowsAsync<CnmInvalidArgumentException>(async () => await backend.SetupPortForwardsAsync(Forward(bridge: "br-other", bindings: Http)));
        Assert.That(fake.Calls, Has.Count.EqualTo(2));
    }

    [Test]
    public async Task Two_networks_cannot_share_a_bridge()
    {
        var (backend, _) = Create();
        await backend.SetupNetworkAsync(Net());
        var ex = await Assert.ThrowsAsync<CnmConflictException>(async () => await backend.SetupNetworkAsync(Net("n2", "br-test1", "172.31.0.0/16")));
        Assert.That(ex!.Kind, Is.EqualTo(CnmErrorKind.Conflict));
    }

    [Test]
    public async Task Forwards_add_and_remove_only_their_rules()
    {
        var (backend, fake) = Create();
        await backend.SetupNetworkAsync(Net());
        var networkOnly = fake.State().ToSaveText();
        var forward = Forward(bindings: Http);
        await backend.SetupPortForwardsAsync(forward);
        Assert.That(fake.State().Rules("nat", "DOCKER"), Is.EqualTo(new[] { "-p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.30.0.2:80" }));

        await backend.TeardownPortForwardsAsync(forward);
        Assert.That(fake.State().ToSaveText(), Is.EqualTo(networkOnly));

        // Again: everything is missing already, nothing is run but the read.
        fake.Calls.Clear();
        await backend.TeardownPortForwardsAsync(forward);
        Assert.That(fake.Calls.Select(c => c.Tool), Is.EqualTo(new[] { "iptables-save" }));
    }

    [Test]
    public async Task Replacing_a_forward_swaps_its_rules()
    {
        var (backend, fake) = Create();
        await backend.SetupNetworkAsync(Net());
        await backend.SetupPortForwardsAsync(Forward(bindings: Http));
        await backend.SetupPortForwardsAsync(Forward(bindings: Http with { HostPort = 9090 }));
        Assert.That(fake.State().Rules("nat", "DOCKER"), Is.EqualTo(new[] { "-p tcp -m tcp --dport 9090 -j DNAT --to-destination 172.30.0.2:80" }));
        Assert.That(fake.State().Rules("filter", "DOCKER"), Has.Count.EqualTo(1));
    }

    [Test]
    public async Task Teardown_of_an_unknown_network_removes_what_exists()
    {
        var (first, fake) = Create();
        await first.SetupNetworkAsync(Net());
        await first.SetupPortForwardsAsync(Forward(bindings: Http));

        // A new backend (after a restart) that was never told about n1.
        var second = new IptablesFirewallBackend(new IptablesFirewallBackendOptions { HostNamespacePath = "/run/netns/x" }, fake);
        await second.TeardownPortForwardsAsync(Forward(bindings: Http));
        Assert.That(fake.State().Rules("nat", "DOCKER"), Is.Empty);
        await second.TeardownNetworkAsync(Net());
        Assert.That(fake.State().CountRules(), Is.Zero);
    }

    [Test]
    public async Task The_last_network_takes_DOCKER_USER_along_unless_an_administrator_put_rules_in_it()
    {
        var (backend, fake) = Create();
        await backend.SetupNetworkAsync(Net());
        await backend.TeardownNetworkAsync(Net());
        Assert.That(fake.State().CountRules(), Is.Zero, "nothing of ours is left");
        Assert.That(fake.State().HasChain(new ChainRef("filter", IptablesRuleBuilder.DockerUser)), Is.False);

        await backend.SetupNetworkAsync(Net());
        fake.State().Rules("filter", IptablesRuleBuilder.DockerUser).Insert(0, "-s 10.9.9.9/32 -j DROP");
        await backend.TeardownNetworkAsync(Net());

        Assert.Multiple(() =>
        {
            Assert.That(fake.State().Rules("filter", IptablesRuleBuilder.DockerUser), Is.EqualTo(new[] { "-s 10.9.9.9/32 -j DROP", "-j RETURN" }), "the administrator's rule survives");
            Assert.That(fake.State().Rules("filter", "FORWARD"), Is.EqualTo(new[] { "-j DOCKER-USER" }), "and is still reached");
            Assert.That(fake.State().Rules("nat", "POSTROUTING"), Is.Empty);
            Assert.That(fake.State().HasChain(new ChainRef("filter", IptablesRuleBuilder.IsolationStage1)), Is.False);
        });

        // The next network finds the chain in place and adds nothing twice.
        await backend.SetupNetworkAsync(Net());
        Assert.That(fake.State().Rules("filter", IptablesRuleBuilder.DockerUser), Is.EqualTo(new[] { "-s 10.9.9.9/32 -j DROP", "-j RETURN" }));
        Assert.That(fake.State().Rules("filter", "FORWARD").Count(r => r == "-j DOCKER-USER"), Is.EqualTo(1));
    }

    [Test]
    public async Task Reconcile_restores_a_flushed_ruleset_and_drops_forgotten_records()
    {
        var (backend, fake) = Create();
        var n1 = Net();
        var n2 = Net("n2", "br-test2", "172.31.0.0/16");
        await backend.SetupNetworkAsync(n1);
        await backend.SetupNetworkAsync(n2);
        await backend.SetupPortForwardsAsync(Forward(bindings: Http));
        var full = fake.State().ToSaveText();

        foreach (var (table, chain) in new[] { ("filter", "FORWARD"), ("filter", "DOCKER"), ("filter", "DOCKER-USER"), ("nat", "POSTROUTING"), ("nat", "DOCKER") })
        {
            fake.State().Rules(table, chain).Clear();
        }

        fake.Calls.Clear();
        await backend.ReconcileAsync([n1, n2], [Forward(bindings: Http)]);
        Assert.That(fake.Calls.Select(c => c.Tool), Is.EqualTo(new[] { "iptables-save", "iptables-restore" }));
        Assert.That(fake.State().ToSaveText(), Is.EqualTo(full));

        await backend.ReconcileAsync([n2], []);
        Assert.That(fake.State().ToSaveText(), Does.Not.Contain("br-test1"));
        Assert.That(fake.State().ToSaveText(), Does.Contain("br-test2"));
    }

    [Test]
    public async Task Reconcile_validates_everything_first()
    {
        var (backend, fake) = Create();
        await Assert.ThrowsAsync<CnmNotFoundException>(async () => await backend.ReconcileAsync([Net()], [Forward(network: "nope", bindings: Http)]));
        await Assert.ThrowsAsync<CnmConflictException>(async () => await backend.ReconcileAsync([Net(), Net("n2")], []));
        Assert.That(fake.Calls, Is.Empty);
    }

    [Test]
    public async Task Ipv6_network_runs_ip6tables_too()
    {
        var (backend, fake) = Create();
        await backend.SetupNetworkAsync(Net() with { IPv6Subnets = [IPNetwork.Parse("fd00:1::/64")] });
        Assert.That(fake.Calls.Select(c => c.Tool), Is.EqualTo(new[] { "iptables-save", "iptables-restore", "ip6tables-save", "ip6tables-restore" }));
        Assert.That(fake.State("ip6tables").Rules("nat", "POSTROUTING"), Does.Contain("-s fd00:1::/64 ! -o br-test1 -j MASQUERADE"));
    }

    [Test]
    public async Task Failed_ipv6_batch_rolls_back_ipv4()
    {
        var (backend, fake) = Create();
        fake.FailOn = "fd00:1::/64";
        await Assert.ThrowsAsync<CnmInternalException>(async () => await backend.SetupNetworkAsync(Net() with { IPv6Subnets = [IPNetwork.Parse("fd00:1::/64")] }));
        Assert.That(fake.State().CountRules(), Is.Zero);
        Assert.That(fake.State().HasChain(new ChainRef("filter", "DOCKER")), Is.False);
    }

    [Test]
    public void Factory_creates_iptables_backends_for_a_namespace()
    {
        IFirewallBackendFactory factory = new IptablesFirewallBackendFactory();
        var backend = factory.Create("/run/netns/h1");
        Assert.That(factory.Name, Is.EqualTo("iptables"));
        Assert.That(backend, Is.TypeOf<IptablesFirewallBackend>());
        Assert.That(((IptablesFirewallBackend)backend).HostNamespacePath, Is.EqualTo("/run/netns/h1"));
    }
}
