using System.Net;
using CnmSharp.Drivers;
using CnmSharp.Firewall;
using CnmSharp.Firewall.Iptables;
using CnmSharp.Firewall.Nftables;
using CnmSharp.Testing;

namespace CnmSharp.IntegrationTests.Firewall;

/// <summary>
/// Ownership and drift, for both backends: a rule deleted behind CnmSharp's back (<c>nft delete rule</c>,
/// <c>iptables -D</c>) is restored by the owner's reconcile, and a second owner's rules survive the first owner's
/// reconcile, deleted ones included (they are that owner's to restore).
/// </summary>
[RequiresRoot]
[NonParallelizable]
[TestFixture(IptablesFirewallBackend.BackendName)]
[TestFixture(NftablesFirewallBackend.BackendName)]
public class FirewallOwnershipTests(string backendName) : FirewallBackendFixture(backendName)
{
    private TestNamespace _host = null!;
    private IFirewallBackend _backend = null!;
    private string _br1 = null!;
    private string _br2 = null!;

    [SetUp]
    public void SetUp()
    {
        _host = new TestNamespace("h");
        _br1 = "br-" + Sh.NewName()[Sh.Prefix.Length..];
        _br2 = "br-" + Sh.NewName()[Sh.Prefix.Length..];
        _backend = CreateBackend(_host);
    }

    [TearDown]
    public void TearDown()
    {
        (_backend as IDisposable)?.Dispose();
        _host.Dispose();
        AssertRootHasNoRules();
    }

    private FirewallNetwork Bridge => new()
    {
        NetworkId = "n1",
        Owner = "bridge",
        BridgeName = _br1,
        IPv4Subnets = [IPNetwork.Parse("10.231.21.0/24")],
    };

    private FirewallNetwork Overlay => new()
    {
        NetworkId = "n2",
        Owner = "overlay",
        BridgeName = _br2,
        IPv4Subnets = [IPNetwork.Parse("10.231.22.0/24")],
    };

    private FirewallPortForward Web => new()
    {
        NetworkId = "n1",
        EndpointId = "e1",
        BridgeName = _br1,
        ContainerIPv4 = IPAddress.Parse("10.231.21.2"),
        PortBindings = [new PortBinding(TransportProtocol.Tcp, 80, IPAddress.Any, 8080)],
    };

    /// <summary>The rules of a bridge's network: nftables, "chain comment" of the rules of its chains
    /// (<c>nft -j list ruleset</c>); iptables, the iptables-save lines that name it.</summary>
    private List<string> RulesOf(string bridge)
    {
        if (!IsNftables)
        {
            return [.. _host.Rules().Where(r => r.Contains(bridge, StringComparison.Ordinal))];
        }

        using var doc = System.Text.Json.JsonDocument.Parse(_host.Exec("nft", "-j", "list", "ruleset"));
        return
        [
            .. doc.RootElement.GetProperty("nftables").EnumerateArray()
                .Where(e => e.TryGetProperty("rule", out var r) && r.GetProperty("chain").GetString()!.EndsWith(bridge, StringComparison.Ordinal))
                .Select(e => e.GetProperty("rule"))
                .Select(r => $"{r.GetProperty("family").GetString()} {r.GetProperty("chain").GetString()} {(r.TryGetProperty("comment", out var c) ? c.GetString() : "")}"),
        ];
    }

    /// <summary>Deletes, behind the backend's back, the first rule of the bridge's network that the tool lists.</summary>
    private string DeleteOneRule(string bridge, string contains)
    {
        if (IsNftables)
        {
            // nft -a prints each rule with its handle; the chain is the last "chain X {" line above it.
            string? chain = null;
            foreach (var line in _host.Exec("nft", "-a", "list", "table", "ip", "cnmsharp").Split('\n').Select(l => l.Trim()))
            {
                if (line.StartsWith("chain ", StringComparison.Ordinal))
                {
                    chain = line.Split(' ')[1];
                }
                else if (chain == "fwd-in-" + bridge && line.Contains(contains, StringComparison.Ordinal) && line.Contains("# handle ", StringComparison.Ordinal))
                {
                    var handle = line[(line.LastIndexOf(' ') + 1)..];
                    _host.Exec("nft", "delete", "rule", "ip", "cnmsharp", chain, "handle", handle);
                    return line;
                }
            }

            throw new InvalidOperationException($"no rule with {contains} in fwd-in-{bridge}");
        }

        var rule = _host.Rules().First(r => r.StartsWith("filter -A FORWARD", StringComparison.Ordinal) && r.Contains(bridge, StringComparison.Ordinal) && r.Contains(contains, StringComparison.Ordinal));
        _host.Exec(["iptables", "-t", "filter", .. rule["filter -A ".Length..].Split(' ').Prepend("-D").Select((a, i) => i == 0 ? "-D" : a)]);
        return rule;
    }

    [Test]
    public async Task A_rule_deleted_behind_our_back_is_restored_by_reconcile()
    {
        await _backend.SetupNetworkAsync(Bridge);
        await _backend.SetupPortForwardsAsync(Web);
        var before = RulesOf(_br1);
        var deleted = DeleteOneRule(_br1, IsNftables ? "established" : "ESTABLISHED");
        Assert.That(RulesOf(_br1), Has.Count.EqualTo(before.Count - 1), $"deleted: {deleted}");
        if (IsNftables)
        {
            _host.Exec("nft", "delete", "element", "ip", "cnmsharp", "dnat-any-tcp", "{ 8080 }");
        }

        await _backend.ReconcileOwnerAsync("bridge", [Bridge], [Web]);
        Assert.That(RulesOf(_br1), Is.EquivalentTo(before));
        if (IsNftables)
        {
            Assert.That(_host.Exec("nft", "list", "map", "ip", "cnmsharp", "dnat-any-tcp"), Does.Contain("8080 comment \"bridge\" : 10.231.21.2 . 80"),
                "a map element deleted behind our back is restored too");
        }
        else
        {
            Assert.That(_host.Rules(), Does.Contain(deleted));
        }
    }

    [Test]
    public async Task A_second_owners_rules_survive_the_first_owners_reconcile()
    {
        await _backend.SetupNetworkAsync(Bridge);
        await _backend.SetupNetworkAsync(Overlay);
        var overlay = RulesOf(_br2);
        Assert.That(overlay, Is.Not.Empty);

        // The bridge owner reconciles with no networks left: its rules go, the overlay's stay.
        await _backend.ReconcileOwnerAsync("bridge", [], []);
        Assert.That(RulesOf(_br1), Is.Empty, "the owner's part is exactly its records: none");
        Assert.That(RulesOf(_br2), Is.EquivalentTo(overlay), "the other owner's part is untouched");

        // A rule of the overlay deleted behind our back is the overlay's to restore: the bridge's reconcile leaves it.
        await _backend.ReconcileOwnerAsync("bridge", [Bridge], []);
        var deleted = DeleteOneRule(_br2, IsNftables ? "established" : "ESTABLISHED");
        await _backend.ReconcileOwnerAsync("bridge", [Bridge], []);
        Assert.That(RulesOf(_br2), Has.Count.EqualTo(overlay.Count - 1), $"still missing: {deleted}");
        await _backend.ReconcileOwnerAsync("overlay", [Overlay], []);
        Assert.That(RulesOf(_br2), Is.EquivalentTo(overlay));
        Assert.That(RulesOf(_br1), Is.Not.Empty);
    }

    [Test]
    public async Task Reconcile_refuses_another_owners_network()
    {
        var e = await Assert.ThrowsAsync<CnmInvalidArgumentException>(async () => await _backend.ReconcileOwnerAsync("bridge", [Overlay], []));
        Assert.That(e!.Message, Does.Contain("overlay"));
    }
}
