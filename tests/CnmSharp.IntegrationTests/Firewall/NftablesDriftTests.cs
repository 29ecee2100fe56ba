using System.Net;
using System.Text.RegularExpressions;
using CnmSharp.Drivers;
using CnmSharp.Firewall;
using CnmSharp.Firewall.Nftables;
using CnmSharp.Netlink.Nftables;
using CnmSharp.Testing;

namespace CnmSharp.IntegrationTests.Firewall;

/// <summary>
/// nftables only: a rule edited in place with its comment kept (<c>nft replace rule … handle N</c>) is found by
/// reconcile from its content; an unchanged ruleset reconciles with no batch (every rule the model makes matches its
/// dump); the drift watch restores a rule and an element deleted with <c>nft</c>, without a reconcile call.
/// </summary>
[RequiresRoot]
[NonParallelizable]
public partial class NftablesDriftTests
{
    private TestNamespace _host = null!;
    private NftablesFirewallBackend _backend = null!;
    private string _br1 = null!;
    private string _br2 = null!;

    [SetUp]
    public void SetUp()
    {
        _host = new TestNamespace("h");
        _br1 = "br-" + Sh.NewName()[Sh.Prefix.Length..];
        _br2 = "br-" + Sh.NewName()[Sh.Prefix.Length..];
    }

    [TearDown]
    public void TearDown()
    {
        _backend?.Dispose();
        _backend = null!;
        _host.Dispose();
        Assert.That(Sh.RootRuleCount(), Is.Zero, "the root namespace must still have no rules");
    }

    private NftablesFirewallBackend Create(bool watch = false) =>
        _backend = new NftablesFirewallBackend(new NftablesFirewallBackendOptions { HostNamespacePath = _host.Path, WatchForDrift = watch });

    private FirewallNetwork Bridge => new()
    {
        NetworkId = "n1",
        Owner = "bridge",
        BridgeName = _br1,
        IPv4Subnets = [IPNetwork.Parse("10.231.31.0/24")],
        IPv6Subnets = [IPNetwork.Parse("fd00:231:31::/64")],
        BridgeIPv4 = IPAddress.Parse("10.231.31.1"),
    };

    private FirewallPortForward Web => new()
    {
        NetworkId = "n1",
        EndpointId = "e1",
        BridgeName = _br1,
        ContainerIPv4 = IPAddress.Parse("10.231.31.2"),
        ContainerIPv6 = IPAddress.Parse("fd00:231:31::2"),
        PortBindings =
        [
            new PortBinding(TransportProtocol.Tcp, 80, IPAddress.Any, 8080),
            new PortBinding(TransportProtocol.Udp, 53, IPAddress.Parse("10.9.9.9"), 5353),
            new PortBinding(TransportProtocol.Tcp, 80, IPAddress.IPv6Any, 8080),
        ],
    };

    [GeneratedRegex("^(?<rule>.*) comment \"(?<comment>[^\"]*)\" # handle (?<handle>\\d+)$")]
    private static partial Regex RuleLine();

    /// <summary>The rules of one chain of <c>ip cnmsharp</c> as <c>nft -a</c> prints them: text, comment, handle.</summary>
    private List<(string Rule, string Comment, string Handle)> Rules(string chain) =>
    [
        .. _host.Exec("nft", "-a", "list", "chain", "ip", "cnmsharp", chain).Split('\n').Select(l => RuleLine().Match(l.Trim())).Where(m => m.Success)
            .Select(m => (m.Groups["rule"].Value, m.Groups["comment"].Value, m.Groups["handle"].Value)),
    ];

    [Test]
    public async Task A_rule_edited_in_place_with_its_comment_kept_is_restored_by_reconcile()
    {
        var backend = Create();
        await backend.SetupNetworkAsync(Bridge);
        await backend.SetupPortForwardsAsync(Web);
        var chain = NftablesRuleBuilder.FwdInChain(_br1);
        var before = Rules(chain);
        var icc = before.Single(r => r.Rule == $"iifname \"{_br1}\" accept");

        _host.Exec("nft", "replace", "rule", "ip", "cnmsharp", chain, "handle", icc.Handle, "iifname", _br1, "drop", "comment", $"\"{icc.Comment}\"");
        Assert.That(Rules(chain).Select(r => (r.Rule, r.Comment)), Does.Contain(($"iifname \"{_br1}\" drop", icc.Comment)), "the edit kept the comment");

        var batches = backend.BatchCount;
        await backend.ReconcileOwnerAsync("bridge", [Bridge], [Web]);
        Assert.That(backend.BatchCount, Is.EqualTo(batches + 1), "the edit was found: one repair batch");
        Assert.That(Rules(chain).Select(r => (r.Rule, r.Comment)), Is.EqualTo(before.Select(r => (r.Rule, r.Comment))), "the chain holds its rules again, in order");
    }

    [Test]
    public async Task An_unchanged_ruleset_reconciles_with_no_batch()
    {
        // Every kind of rule the model makes: masquerade and SNAT, ICC off, internal, no hairpin, IPv6, address and
        // wildcard forwards. If any dumped rule failed to match its model, reconcile would flush and refill its chain.
        var backend = Create();
        var snat = Bridge with { EnableIcc = false, SnatSource = IPAddress.Parse("10.9.9.9") };
        var plain = new FirewallNetwork
        {
            NetworkId = "n2", Owner = "bridge", BridgeName = _br2, IPv4Subnets = [IPNetwork.Parse("10.231.32.0/24")],
            EnableMasquerade = false, Hairpin = false,
        };
        var inner = new FirewallNetwork
        {
            NetworkId = "n3", Owner = "overlay", BridgeName = "br-" + Sh.NewName()[Sh.Prefix.Length..],
            IPv4Subnets = [IPNetwork.Parse("10.231.33.0/24")], IPv6Subnets = [IPNetwork.Parse("fd00:231:33::/64")], Internal = true,
        };
        var forward2 = new FirewallPortForward
        {
            NetworkId = "n2", EndpointId = "e2", BridgeName = _br2, ContainerIPv4 = IPAddress.Parse("10.231.32.2"),
            PortBindings = [new PortBinding(TransportProtocol.Tcp, 443, IPAddress.Any, 8443)],
        };
        await backend.ReconcileAsync([snat, plain, inner], [Web, forward2]);
        Assert.That(Rules(NftablesRuleBuilder.FwdInChain(_br1)), Is.Not.Empty);

        var batches = backend.BatchCount;
        await backend.ReconcileAsync([snat, plain, inner], [Web, forward2]);
        await backend.ReconcileOwnerAsync("overlay", [inner], []);
        Assert.That(backend.BatchCount, Is.EqualTo(batches), "nothing drifted: no batch");
    }

    [Test]
    public async Task The_drift_watch_restores_a_rule_and_an_element_deleted_with_nft()
    {
        var backend = Create(watch: true);
        var repaired = new List<NftablesDriftEventArgs>();
        var first = new TaskCompletionSource<NftablesDriftEventArgs>(TaskCreationOptions.RunContinuationsAsynchronously);
        backend.DriftRepaired += (_, e) =>
        {
            lock (repaired)
            {
                repaired.Add(e);
            }

            first.TrySetResult(e);
        };
        await backend.SetupNetworkAsync(Bridge);
        await backend.SetupPortForwardsAsync(Web);
        Assert.That(backend.IsWatchingDrift, Is.True);

        // Our own changes are not drift.
        await Task.Delay(300);
        Assert.That(repaired, Is.Empty, "the backend's own batches are not drift");

        var chain = NftablesRuleBuilder.FwdInChain(_br1);
        var before = Rules(chain);
        var established = before.Single(r => r.Rule.StartsWith("ct state", StringComparison.Ordinal));
        _host.Exec("nft", "delete", "rule", "ip", "cnmsharp", chain, "handle", established.Handle);

        var e = await first.Task.WaitAsync(TimeSpan.FromSeconds(20));
        Assert.That((e.Owner, e.Family), Is.EqualTo(("bridge", NftFamily.IPv4)));
        Assert.That(e.Cause, Does.Contain("DeleteRule").And.Contain(established.Comment));
        Assert.That(Rules(chain).Select(r => (r.Rule, r.Comment)), Is.EqualTo(before.Select(r => (r.Rule, r.Comment))), "restored in place");

        // An element: the watch puts it back too.
        var count = repaired.Count;
        _host.Exec("nft", "delete", "element", "ip", "cnmsharp", "dnat-any-tcp", "{ 8080 }");
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (!_host.Exec("nft", "list", "map", "ip", "cnmsharp", "dnat-any-tcp").Contains("8080", StringComparison.Ordinal) && DateTime.UtcNow < deadline)
        {
            await Task.Delay(50);
        }

        Assert.That(_host.Exec("nft", "list", "map", "ip", "cnmsharp", "dnat-any-tcp"), Does.Contain("8080 comment \"bridge\" : 10.231.31.2 . 80"));
        lock (repaired)
        {
            Assert.That(repaired, Has.Count.GreaterThan(count));
            Assert.That(repaired[^1].Cause, Does.Contain("DeleteElement").And.Contain("dnat-any-tcp"));
        }
    }

    [Test]
    public async Task The_drift_watch_is_off_by_default()
    {
        var backend = Create();
        await backend.SetupNetworkAsync(Bridge);
        Assert.That(backend.IsWatchingDrift, Is.False);
    }

    [Test]
    public async Task A_controller_with_FirewallDriftWatch_restores_a_rule_of_its_bridge_network_deleted_with_nft()
    {
        var temp = Directory.CreateTempSubdirectory("cnmdrift-").FullName;
        try
        {
            await using (var controller = await new NetworkControllerBuilder(new CnmOptions
            {
                HostNamespacePath = _host.Path,
                StateDirectory = Path.Combine(temp, "state"),
                RunDirectory = Path.Combine(temp, "run"),
                CreateDefaultNetworks = false,
                Firewall = FirewallBackendChoice.Nftables,
                FirewallDriftWatch = true,
            }).BuildAsync())
            {
                var network = await controller.CreateNetworkAsync("drift", "bridge", new NetworkCreateOptions
                {
                    IPv4Config = [new IpamConfig { Subnet = "10.231.32.0/24" }],
                    DriverOptions = new Dictionary<string, string> { ["com.docker.network.bridge.name"] = _br2 },
                });
                var chain = NftablesRuleBuilder.FwdInChain(_br2);
                var before = Rules(chain);
                var established = before.Single(r => r.Rule.StartsWith("ct state", StringComparison.Ordinal));
                _host.Exec("nft", "delete", "rule", "ip", "cnmsharp", chain, "handle", established.Handle);

                var deadline = DateTime.UtcNow.AddSeconds(20);
                while (Rules(chain).Count < before.Count && DateTime.UtcNow < deadline)
                {
                    await Task.Delay(50);
                }

                Assert.That(Rules(chain).Select(r => (r.Rule, r.Comment)), Is.EquivalentTo(before.Select(r => (r.Rule, r.Comment))), "restored without a reconcile call");
                await network.DeleteAsync();
            }
        }
        finally
        {
            Directory.Delete(temp, recursive: true);
        }
    }
}
