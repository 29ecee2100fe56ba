using System.Text.Json;
using CnmSharp.IntegrationTests.Bridge;
using CnmSharp.Testing;

namespace CnmSharp.IntegrationTests.Macvlan;

/// <summary>The ipvlan driver against the kernel, in a private host namespace with a veth end as the parent. Where the
/// kernel has no ipvlan (this machine's), the first join is a typed error that leaves nothing behind, and the test is
/// reported as skipped naming the kind.</summary>
[RequiresRoot]
[Parallelizable(ParallelScope.All)]
public class IpvlanIntegrationTests
{
    private static Dictionary<string, string> Options(string mode, string? flag = null)
    {
        var options = new Dictionary<string, string> { ["parent"] = ParentLinkHarness.Parent, ["ipvlan_mode"] = mode };
        if (flag is not null)
        {
            options["ipvlan_flag"] = flag;
        }

        return options;
    }

    /// <summary>Joins a new sandbox, or checks that the missing kind left nothing and ignores the test.</summary>
    private static async Task<(Sandbox Sandbox, Endpoint Endpoint)> ContainerOrIgnoreAsync(ParentLinkHarness lab, Network network, string name)
    {
        var sandbox = await lab.Controller.CreateSandboxAsync(name);
        var endpoint = await network.CreateEndpointAsync(name);
        try
        {
            await endpoint.JoinAsync(sandbox);
        }
        catch (CnmNotImplementedException ex) when (ex.Reason.Contains("'ipvlan'", StringComparison.Ordinal))
        {
            Assert.Multiple(() =>
            {
                Assert.That(BridgeHarness.LinksOf(sandbox.Key), Is.EquivalentTo(new[] { "lo" }), "nothing left in the sandbox");
                Assert.That(endpoint.Sandbox, Is.Null, "the endpoint is not joined");
                Assert.That(lab.HostLinks(), Is.EquivalentTo(new[] { "lo", ParentLinkHarness.Parent, ParentLinkHarness.Peer }));
            });
            TestEnvironment.IgnoreMissingDeviceKind("ipvlan");
        }

        return (sandbox, endpoint);
    }

    [Test]
    public async Task L2_sandboxes_reach_each_other_with_the_ipam_gateway()
    {
        await using var lab = await ParentLinkHarness.CreateAsync();
        var network = await lab.NetworkAsync("ipvlan", "ivl2", "10.94.0.0/24", Options("l2"));
        var (s1, e1) = await ContainerOrIgnoreAsync(lab, network, "c1");
        var (s2, e2) = await ContainerOrIgnoreAsync(lab, network, "c2");

        Assert.Multiple(() =>
        {
            Assert.That(ParentLinkHarness.KindAndMode(s1.Key, e1.InterfaceName!), Is.EqualTo(("ipvlan", "l2")));
            Assert.That(BridgeHarness.Ping(s1.Key, e2.Address!.Value.Address.ToString()), Is.True, "c1 -> c2");
            Assert.That(e1.Gateway?.ToString(), Is.EqualTo("10.94.0.1"));
        });
    }

    [Test]
    public async Task L3_has_no_gateway_and_a_default_route_on_the_device()
    {
        await using var lab = await ParentLinkHarness.CreateAsync();
        var network = await lab.NetworkAsync("ipvlan", "ivl3", "10.95.0.0/24", Options("l3"));
        var (s1, e1) = await ContainerOrIgnoreAsync(lab, network, "c1");

        var routes = JsonDocument.Parse(BridgeHarness.Exec(s1.Key, "ip", "-j", "route", "show", "default")).RootElement;
        Assert.Multiple(() =>
        {
            Assert.That(ParentLinkHarness.KindAndMode(s1.Key, e1.InterfaceName!), Is.EqualTo(("ipvlan", "l3")));
            Assert.That(e1.Gateway, Is.Null);
            Assert.That(routes.GetArrayLength(), Is.EqualTo(1));
            Assert.That(routes[0].GetProperty("dev").GetString(), Is.EqualTo(e1.InterfaceName));
            Assert.That(routes[0].TryGetProperty("gateway", out _), Is.False, "no next hop");
        });
    }

    [TestCase("ipvlan_mode", "l4")]
    [TestCase("ipvlan_flag", "hairpin")]
    public async Task Bad_mode_or_flag_is_a_typed_error_and_leaves_nothing(string key, string value)
    {
        await using var lab = await ParentLinkHarness.CreateAsync();
        var options = Options("l2");
        options[key] = value;
        var error = await Assert.ThrowsAsync<CnmInvalidArgumentException>(async () => await lab.NetworkAsync("ipvlan", "bad", "10.96.0.0/24", options));
        Assert.Multiple(async () =>
        {
            Assert.That(error!.Reason, Does.Contain(key));
            Assert.That(lab.Controller.Networks, Is.Empty);
            Assert.That(await lab.LeftoverStoreKeysAsync(), Is.Empty);
        });
    }

    [Test]
    public async Task Internal_parent_is_made_and_removed_and_a_shared_parent_is_refused()
    {
        await using var lab = await ParentLinkHarness.CreateAsync();
        var inner = await lab.NetworkAsync("ipvlan", "ivi", "10.97.0.0/24", []);
        Assert.That(lab.HostLinks(), Does.Contain("dm-" + inner.Id[..12]));
        await lab.NetworkAsync("ipvlan", "one", "10.98.0.0/24", Options("l2"));
        await Assert.ThrowsAsync<CnmConflictException>(async () => await lab.NetworkAsync("ipvlan", "two", "10.99.0.0/24", Options("l3")));
        await lab.DeleteEverythingAsync();
        Assert.Multiple(async () =>
        {
            Assert.That(lab.HostLinks(), Is.EquivalentTo(new[] { "lo", ParentLinkHarness.Parent, ParentLinkHarness.Peer }));
            Assert.That(await lab.LeftoverStoreKeysAsync(), Is.Empty);
        });
    }
}
