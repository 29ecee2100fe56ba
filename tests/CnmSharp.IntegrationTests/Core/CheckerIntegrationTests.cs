using System.Text.Json.Nodes;
using CnmSharp.Diagnostics;
using CnmSharp.Drivers.Bridge;
using CnmSharp.Firewall;
using CnmSharp.Netlink;
using CnmSharp.Store;
using CnmSharp.Testing;

namespace CnmSharp.IntegrationTests.Core;

/// <summary>
/// <see cref="NetworkController.CheckAsync"/> against the kernel, for each firewall backend: leaks made on purpose in a
/// private host namespace (a veth on the network's bridge, a firewall rule in CnmSharp's chain or table, an orphan
/// namespace bind-mounted in the run directory, a duplicated endpoint record in the store) are each reported,
/// <see cref="CheckOptions.Repair"/> removes each, and a second check is clean.
/// </summary>
[RequiresRoot]
[NonParallelizable]
[TestFixture(FirewallBackendChoice.Iptables)]
[TestFixture(FirewallBackendChoice.Nftables)]
public sealed class CheckerIntegrationTests(FirewallBackendChoice firewall)
{
    [Test]
    public async Task Leaks_made_on_purpose_are_reported_repaired_and_gone()
    {
        await using var host = await TestHostNamespace.CreateAsync();
        var temp = Directory.CreateTempSubdirectory("cnmcheck-").FullName;
        var run = Path.Combine(temp, "run");
        await using var store = new InMemoryKeyValueStore();
        var leakNamespaces = new NetworkNamespaceManager(new NetworkNamespaceManagerOptions { RunDirectory = Path.Combine(run, "netns"), MakeRunDirectoryShared = false });
        NetworkController? controller = null;
        try
        {
            controller = await new NetworkControllerBuilder(new CnmOptions
                {
                    HostNamespacePath = host.Path,
                    RunDirectory = run,
                    StateDirectory = Path.Combine(temp, "state"),
                    CreateDefaultNetworks = false,
                    Firewall = firewall,
                })
                .AddDriver(new BridgeDriverFactory())
                .UseStore(store)
                .BuildAsync();
            var network = await controller.CreateNetworkAsync("n", "bridge", new NetworkCreateOptions { IPv4Config = [new IpamConfig { Subnet = "10.96.7.0/24" }] });
            var sandbox = await controller.CreateSandboxAsync("c1");
            var endpoint = await network.CreateEndpointAsync("e1");
            await endpoint.JoinAsync(sandbox);
            var clean = await controller.CheckAsync();
            Assert.That(clean.Findings, Is.Empty, "before the leaks:\n" + string.Join("\n", clean.Findings));

            // The leaks.
            var bridge = (await IpTool.JsonAsync(host.Path, "link", "show", "type", "bridge")).EnumerateArray().Single().GetProperty("ifname").GetString()!;
            await IpTool.RunAsync(host.Path, "link", "add", "ckleak0", "type", "veth", "peer", "name", "ckleak1");
            await IpTool.RunAsync(host.Path, "link", "set", "ckleak0", "master", bridge);
            await IpTool.RunAsync(host.Path, "link", "add", "ckmine0", "type", "veth", "peer", "name", "ckmine1");
            await AddRuleAsync(host.Path);
            await leakNamespaces.CreateAsync("ckleakns");
            var leakPath = Path.Combine(run, "netns", "ckleakns");
            var copyId = await CopyEndpointRecordAsync(store, network.Id, endpoint.Id);

            var report = await controller.CheckAsync();
            var text = string.Join("\n", report.Findings);
            Assert.That(report.Findings.Select(f => f.Kind).Order(), Is.EqualTo(new[]
            {
                InvariantKinds.DuplicateAddress, InvariantKinds.LeakedFirewallRule, InvariantKinds.LeakedLink, InvariantKinds.LeakedNamespace,
            }.Order()), text);
            Assert.That(report.Findings.Single(f => f.Kind == InvariantKinds.LeakedLink).Subject, Does.Contain("ckleak0"), text);
            Assert.That(report.Findings.Single(f => f.Kind == InvariantKinds.LeakedFirewallRule).Subject, Does.Contain(firewall == FirewallBackendChoice.Iptables ? "ckleak9" : "handle"), text);
            Assert.That(report.Findings.Single(f => f.Kind == InvariantKinds.LeakedNamespace).Subject, Does.Contain(leakPath), text);
            Assert.That(report.Findings.Single(f => f.Kind == InvariantKinds.DuplicateAddress).Subject, Does.Contain(copyId[..12]), text);
            Assert.That(report.Findings.Any(f => f.Repaired), Is.False);

            var repaired = await controller.CheckAsync(new CheckOptions { Repair = true });
            Assert.That(repaired.Findings, Has.Count.EqualTo(4), string.Join("\n", repaired.Findings));
            Assert.That(repaired.AllRepaired, Is.True, string.Join("\n", repaired.Findings));
            Assert.That(await IpTool.LinkAsync(host.Path, "ckleak0"), Is.Null);
            Assert.That(await IpTool.LinkAsync(host.Path, "ckmine0"), Is.Not.Null, "a veth on no bridge of ours is not proven ours and stays");
            Assert.That(File.Exists(leakPath), Is.False);
            Assert.That(await RulesetAsync(host.Path), Does.Not.Contain("ckleak9"));
            Assert.That(await IpTool.LinkAsync(host.Path, bridge), Is.Not.Null);

            var after = await controller.CheckAsync();
            Assert.That(after.Findings, Is.Empty, string.Join("\n", after.Findings));

            await sandbox.DeleteAsync();
            await controller.WaitForTeardownsAsync();
            await network.DeleteAsync();
        }
        finally
        {
            if (controller is not null)
            {
                await controller.DisposeAsync();
            }

            if (File.Exists(Path.Combine(run, "netns", "ckleakns")))
            {
                await leakNamespaces.DeleteAsync("ckleakns");
            }

            await CnmSharp.IntegrationTests.Core.StopInvariants.UnmountSandboxesAsync(run);
            Directory.Delete(temp, recursive: true);
        }
    }

    private async Task AddRuleAsync(string hostPath)
    {
        if (firewall == FirewallBackendChoice.Iptables)
        {
            await RunAsync("nsenter", $"--net={hostPath}", "iptables", "-t", "nat", "-A", "DOCKER", "-i", "ckleak9", "-j", "RETURN");
            return;
        }

        // A rule in CnmSharp's table, tagged as the bridge driver tags its rules, that no record produces.
        var chains = await RunAsync("nsenter", $"--net={hostPath}", "nft", "list", "table", "ip", "cnmsharp");
        var chain = chains.Split('\n').Select(l => l.Trim()).First(l => l.StartsWith("chain ", StringComparison.Ordinal)).Split(' ')[1];
        await RunAsync("nsenter", $"--net={hostPath}", "nft", "add", "rule", "ip", "cnmsharp", chain, "iifname", "ckleak9", "counter", "comment", "\"bridge:leak-test\"");
    }

    private async Task<string> RulesetAsync(string hostPath) =>
        firewall == FirewallBackendChoice.Iptables
            ? await RunAsync("nsenter", $"--net={hostPath}", "iptables-save")
            : await RunAsync("nsenter", $"--net={hostPath}", "nft", "list", "ruleset");

    private static async Task<string> RunAsync(string file, params string[] args)
    {
        var result = await IpTool.ExecAsync(file, args);
        Assert.That(result.ExitCode, Is.Zero, $"{file} {string.Join(' ', args)}: {result.StandardError}");
        return result.StandardOutput;
    }

    /// <summary>A copy of an endpoint record under a new id and name, without its join: one address and MAC held by
    /// two records of the store.</summary>
    private static async Task<string> CopyEndpointRecordAsync(IKeyValueStore store, string networkId, string endpointId)
    {
        var entry = (await store.GetAsync($"cnm/v1/endpoint/{networkId}/{endpointId}"))!;
        var node = JsonNode.Parse(entry.Value.Span)!.AsObject();
        var id = Convert.ToHexStringLower(Guid.NewGuid().ToByteArray()) + Convert.ToHexStringLower(Guid.NewGuid().ToByteArray());
        node["id"] = id;
        node["name"] = "e1-copy";
        node.Remove("join");
        await store.PutAsync($"cnm/v1/endpoint/{networkId}/{id}", System.Text.Encoding.UTF8.GetBytes(node.ToJsonString()), StoreVersion.Absent);
        return id;
    }
}
