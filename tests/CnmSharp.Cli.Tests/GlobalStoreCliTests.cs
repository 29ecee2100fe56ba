using System.Text.Json;
using CnmSharp.Testing;

namespace CnmSharp.Cli.Tests;

/// <summary>
/// Two hosts (each its own private host namespace, state and run directories) whose <c>cnm</c> processes share one
/// etcd (Debian's etcd-server, started by the test on loopback) with <c>--store etcd://...</c>: a global network made on
/// host 1 is listed on host 2, each host connects a sandbox, and <c>network inspect</c> on either host lists both
/// endpoints with their node.
/// </summary>
[TestFixture]
[RequiresRoot]
[NonParallelizable]
public sealed class GlobalStoreCliTests
{
    [Test]
    public async Task Two_hosts_sharing_etcd_see_a_global_network_and_each_others_endpoints_with_their_node()
    {
        await using var etcd = await EtcdCluster.StartAsync();
        await using var h1 = await CliLab.CreateAsync();
        await using var h2 = await CliLab.CreateAsync();
        var store = "etcd://" + etcd.ClientUrls[0]["http://".Length..];
        string[] Cluster(string node) => ["--store", store, "--node-name", node, "--advertise-address", node == "h1" ? "192.0.2.1" : "192.0.2.2"];
        async Task<ProcessResult> On(CliLab lab, string node, params string[] args)
        {
            var result = await lab.CnmAsync([.. Cluster(node), .. args]);
            Assert.That(result.ExitCode, Is.Zero, $"cnm {string.Join(' ', args)} on {node}: {result}");
            return result;
        }

        var net = "gnet-" + h1.Suffix;
        var id = (await On(h1, "h1", "network", "create", "--scope", "global", "--subnet", "10.97.0.0/24", net)).StdOut.Trim();

        // Host 2 lists it (a read of the cluster), then uses it (its first read-write command creates it there).
        var ls = await On(h2, "h2", "network", "ls", "--no-trunc");
        Assert.That(ls.StdOut, Does.Contain(id).And.Contain("global"), ls.ToString());
        await On(h1, "h1", "sandbox", "create", "c1-" + h1.Suffix);
        await On(h1, "h1", "network", "connect", net, "c1-" + h1.Suffix);
        await On(h2, "h2", "sandbox", "create", "c2-" + h2.Suffix);
        await On(h2, "h2", "network", "connect", net, "c2-" + h2.Suffix);

        foreach (var (lab, node) in new[] { (h1, "h1"), (h2, "h2") })
        {
            var inspect = await On(lab, node, "network", "inspect", net);
            using var doc = JsonDocument.Parse(inspect.StdOut);
            var n = doc.RootElement[0];
            Assert.That(n.GetProperty("Scope").GetString(), Is.EqualTo("global"));
            var endpoints = n.GetProperty("Containers").EnumerateObject()
                .Select(c => (Name: c.Value.GetProperty("Name").GetString(), Node: c.Value.GetProperty("Node").GetString(), Address: c.Value.GetProperty("IPv4Address").GetString()))
                .OrderBy(e => e.Node, StringComparer.Ordinal).ToList();
            Assert.That(endpoints.Select(e => (e.Name, e.Node)), Is.EqualTo(new[] { ("c1-" + h1.Suffix, "h1"), ("c2-" + h2.Suffix, "h2") }), $"on {node}: {inspect.StdOut}");
            Assert.That(endpoints.Select(e => e.Address), Is.Unique.And.All.StartWith("10.97.0."), "addresses from the one global pool, never twice");
        }

        // Without its own endpoint, host 1 still cannot delete the network: it has an endpoint on host 2.
        await On(h1, "h1", "network", "disconnect", net, "c1-" + h1.Suffix);
        var rm = await h1.CnmAsync([.. Cluster("h1"), "network", "rm", net]);
        Assert.That(rm.ExitCode, Is.Not.Zero, rm.ToString());
        Assert.That(rm.StdErr, Does.Contain("other hosts"), rm.ToString());
    }
}
