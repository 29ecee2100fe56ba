using System.Net;
using System.Text.Json;
using CnmSharp.Netlink;
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

    [Test]
    public async Task Three_hosts_each_a_cnm_process_share_an_overlay_network_made_on_host1_and_their_sandboxes_ping_across_hosts()
    {
        // Three hosts: a CliLab each (host namespace, state and run directories), legs 192.168.79.N on an underlay
        // bridge in a namespace of the test's; every cnm command runs for one host (--host-netns, its own state) with
        // the cluster options.
        await using var etcd = await EtcdCluster.StartAsync();
        await using var underlay = await TestHostNamespace.CreateAsync();
        var labs = new List<CliLab>();
        try
        {
            using (var client = underlay.OpenClient())
            {
                await client.CreateLinkAsync(new BridgeLinkSpec("ulbr") { Up = true });
            }

            for (var n = 1; n <= 3; n++)
            {
                var lab = await CliLab.CreateAsync();
                labs.Add(lab);
                using (var client = underlay.OpenClient())
                {
                    var bridge = await client.GetLinkAsync("ulbr") ?? throw new InvalidOperationException("no ulbr");
                    await client.CreateLinkAsync(new VethLinkSpec("ulp" + n, "ul0") { PeerNamespace = lab.Host.Handle, MasterIndex = bridge.Index, Up = true });
                }

                using (var client = lab.Host.OpenClient())
                {
                    var leg = await client.GetLinkAsync("ul0") ?? throw new InvalidOperationException("no ul0");
                    await client.AddAddressAsync(new AddressSpec(leg.Index, IPAddress.Parse($"192.168.79.{n}"), 24));
                    await client.SetLinkUpAsync(leg.Index);
                }
            }

            var store = "etcd://" + etcd.ClientUrls[0]["http://".Length..];
            async Task<ProcessResult> On(int host, params string[] args)
            {
                var result = await labs[host - 1].CnmAsync(["--store", store, "--node-name", $"h{host}", "--advertise-address", $"192.168.79.{host}", .. args]);
                Assert.That(result.ExitCode, Is.Zero, $"cnm {string.Join(' ', args)} on h{host}: {result}");
                return result;
            }

            var suffix = labs[0].Suffix;
            var net = "ovl-" + suffix;
            var id = (await On(1, "network", "create", "-d", "overlay", "--subnet", "10.103.0.0/24", net)).StdOut.Trim();
            var ls = await On(2, "network", "ls", "--no-trunc");
            Assert.That(ls.StdOut, Does.Contain(id).And.Contain("overlay").And.Contain("global"), $"network ls on h2: {ls}");

            // One sandbox per host, connected in turn; each connect's controller programs the peers it finds. cnm has
            // no long-running per-host agent, so a host's FDB follows the cluster only while a read-write command
            // runs there: hosts 1 and 2 run one more (a sandbox create) after host 3 connected.
            for (var host = 1; host <= 3; host++)
            {
                await On(host, "sandbox", "create", $"c{host}-{suffix}");
                await On(host, "network", "connect", net, $"c{host}-{suffix}");
            }

            await On(1, "sandbox", "create", "refresh1-" + suffix);
            await On(2, "sandbox", "create", "refresh2-" + suffix);

            // network inspect on hosts 2 and 3: the endpoints of all three hosts, each with its node.
            var addresses = new Dictionary<string, string>();
            foreach (var host in new[] { 2, 3 })
            {
                var inspect = await On(host, "network", "inspect", net);
                using var doc = JsonDocument.Parse(inspect.StdOut);
                var n = doc.RootElement[0];
                Assert.That(n.GetProperty("Driver").GetString(), Is.EqualTo("overlay"));
                Assert.That(n.GetProperty("Scope").GetString(), Is.EqualTo("global"));
                var endpoints = n.GetProperty("Containers").EnumerateObject()
                    .Select(c => (Name: c.Value.GetProperty("Name").GetString()!, Node: c.Value.GetProperty("Node").GetString()!, Address: c.Value.GetProperty("IPv4Address").GetString()!))
                    .OrderBy(e => e.Node, StringComparer.Ordinal).ToList();
                Assert.That(endpoints.Select(e => (e.Name, e.Node)), Is.EqualTo(new[] { ($"c1-{suffix}", "h1"), ($"c2-{suffix}", "h2"), ($"c3-{suffix}", "h3") }), $"on h{host}: {inspect.StdOut}");
                foreach (var e in endpoints)
                {
                    addresses[e.Node] = e.Address.Split('/')[0];
                }
            }

            // Each sandbox pings the two on the other hosts (6 pairs), from inside its namespace.
            var failures = new List<string>();
            for (var from = 1; from <= 3; from++)
            {
                using var doc = JsonDocument.Parse((await On(from, "sandbox", "inspect", $"c{from}-{suffix}")).StdOut);
                var key = doc.RootElement[0].GetProperty("Key").GetString()!;
                for (var to = 1; to <= 3; to++)
                {
                    if (to != from && (await CnmRunner.RunAsync("nsenter", ["--net=" + key, "ping", "-c1", "-W2", addresses[$"h{to}"]], TimeSpan.FromSeconds(10))).ExitCode != 0)
                    {
                        failures.Add($"h{from} -> h{to} ({addresses[$"h{to}"]})");
                    }
                }
            }

            Assert.That(failures, Is.Empty, "pings that failed");

            // Teardown: every host removes its sandboxes, host 1 removes the network, and host 2's next `network ls`
            // (a read-only view of its local copy and the cluster) no longer lists it.
            await On(1, "sandbox", "rm", $"c1-{suffix}", "refresh1-" + suffix);
            await On(2, "sandbox", "rm", $"c2-{suffix}", "refresh2-" + suffix);
            await On(3, "sandbox", "rm", $"c3-{suffix}");
            await On(1, "network", "rm", net);
            var after = await On(2, "network", "ls", "--no-trunc");
            Assert.That(after.StdOut, Does.Not.Contain(id), after.ToString());
        }
        finally
        {
            foreach (var lab in labs)
            {
                await lab.DisposeAsync();
            }
        }
    }
}
