using System.Text.Json;
using CnmSharp.Testing;

namespace CnmSharp.Cli.Tests;

/// <summary>
/// A macvlan network through <c>cnm</c> as a person types it: a veth end in the lab's private host namespace as the
/// parent (this kernel has no <c>dummy</c>), <c>network create -d macvlan -o parent=IF</c>, two sandboxes connected and
/// pinging each other, then disconnect and removal; the same without a parent (internal parent); and bad input refused
/// with one line, exit 1, and nothing left behind.
/// </summary>
[TestFixture]
[RequiresRoot]
public sealed class MacvlanCliTests : CliFixture
{
    [Test]
    public async Task Macvlan_on_a_veth_parent_create_connect_ping_disconnect_rm()
    {
        var parent = await CreateParentAsync();
        var linksBefore = await LinksAfterDefaultsAsync();
        var net = Unique("mvl");
        var (s1, s2) = (Unique("ms1"), Unique("ms2"));

        var create = await Cnm("network", "create", "-d", "macvlan", "-o", $"parent={parent}", "--subnet", "10.93.0.0/24", "--gateway", "10.93.0.1", net);
        Assert.That(create.ExitCode, Is.Zero, create.ToString());
        var id = create.StdOut.Trim();
        Assert.That(id, Does.Match("^[0-9a-f]{64}$"));

        var row = (await NetworkRowsAsync()).Single(r => r[1] == net);
        Assert.That(row, Is.EqualTo(new[] { id[..12], net, "macvlan", "local" }));
        using (var doc = await InspectAsync("network", net))
        {
            var n = doc.RootElement[0];
            Assert.That(n.GetProperty("Driver").GetString(), Is.EqualTo("macvlan"));
            Assert.That(n.GetProperty("Options").GetProperty("parent").GetString(), Is.EqualTo(parent));
            Assert.That(n.GetProperty("IPAM").GetProperty("Config")[0].GetProperty("Subnet").GetString(), Is.EqualTo("10.93.0.0/24"));
        }

        var s2Address = await ConnectTwoAndPingAsync(net, s1, s2, "10.93.0.");

        // The sandboxes' devices are macvlan devices in bridge mode on the parent (checked against the kernel).
        using (var doc = await InspectAsync("sandbox", s2))
        {
            var s = doc.RootElement[0];
            var ep = s.GetProperty("Endpoints")[0];
            Assert.That(ep.GetProperty("IPv4Address").GetString(), Is.EqualTo(s2Address + "/24"));
            var link = await IpTool.LinkAsync(s.GetProperty("Key").GetString()!, ep.GetProperty("Interface").GetString()!);
            Assert.That(link, Is.Not.Null, "the sandbox has its interface");
            var info = link!.Value.GetProperty("linkinfo");
            Assert.That(info.GetProperty("info_kind").GetString(), Is.EqualTo("macvlan"));
            Assert.That(info.GetProperty("info_data").GetProperty("mode").GetString(), Is.EqualTo("bridge"));
        }

        await DisconnectAndRemoveAsync(net, s1, s2);
        Assert.That(await IpTool.LinkNamesAsync(Host.Path), Is.EquivalentTo(linksBefore), "the parent stays, nothing else is left in the host namespace");
    }

    [Test]
    public async Task Macvlan_without_a_parent_gets_an_internal_parent_that_goes_with_the_network()
    {
        var linksBefore = await LinksAfterDefaultsAsync();
        var net = Unique("mvi");
        var (s1, s2) = (Unique("mi1"), Unique("mi2"));

        var create = await Cnm("network", "create", "-d", "macvlan", "--subnet", "10.94.0.0/24", net);
        Assert.That(create.ExitCode, Is.Zero, create.ToString());
        var added = (await IpTool.LinkNamesAsync(Host.Path)).Except(linksBefore).ToList();
        Assert.That(added, Is.Not.Empty, "an internal parent is made in the host namespace (a dummy, or a stand-in where the kernel has none)");

        await ConnectTwoAndPingAsync(net, s1, s2, "10.94.0.");
        await DisconnectAndRemoveAsync(net, s1, s2);
        Assert.That(await IpTool.LinkNamesAsync(Host.Path), Is.EquivalentTo(linksBefore), $"the internal parent ({string.Join(", ", added)}) went with the network");
    }

    [Test]
    public async Task Bad_macvlan_input_is_one_line_exit_1_and_leaves_nothing()
    {
        var parent = await CreateParentAsync();
        var missing = Unique("nope");
        var cases = new (string[] Options, string Mentions)[]
        {
            (["-o", $"parent={parent}", "-o", "macvlan_mode=bogus"], "bogus"),
            (["-o", $"parent={parent}.4095"], "4095"),
            (["-o", "parent=lo"], "loopback"),
            (["-o", $"parent={missing}"], missing),
        };

        var linksBefore = await LinksAfterDefaultsAsync();
        foreach (var (options, mentions) in cases)
        {
            var net = Unique("mvbad");
            var r = await Cnm(["network", "create", "-d", "macvlan", .. options, "--subnet", "10.95.0.0/24", net]);
            var what = string.Join(' ', options);
            Assert.That(r.ExitCode, Is.EqualTo(1), $"{what}: {r}");
            Assert.That(r.StdOut, Is.Empty, $"{what}: {r}");
            Assert.That(r.StdErrLines, Has.Length.EqualTo(1), $"{what}: {r}");
            Assert.That(r.StdErr, Does.StartWith("cnm: ").And.Contain(mentions), $"{what}: {r}");
            Assert.That((await NetworkRowsAsync()).Select(row => row[1]), Does.Not.Contain(net), $"{what}: no network is left");
            Assert.That(await IpTool.LinkNamesAsync(Host.Path), Is.EquivalentTo(linksBefore), $"{what}: no link is left in the host namespace");
        }

        // The pool of the refused networks was not kept: the same subnet is free for a good one.
        var good = Unique("mvok");
        var ok = await Cnm("network", "create", "-d", "macvlan", "-o", $"parent={parent}", "--subnet", "10.95.0.0/24", good);
        Assert.That(ok.ExitCode, Is.Zero, ok.ToString());
        Assert.That((await Cnm("network", "rm", good)).ExitCode, Is.Zero);
    }

    /// <summary>The links of the lab's host namespace once <c>cnm</c> has made its default networks (the first command on
    /// a fresh store makes the default <c>bridge</c> network and its bridge).</summary>
    private async Task<IReadOnlyList<string>> LinksAfterDefaultsAsync()
    {
        _ = await NetworkRowsAsync();
        return await IpTool.LinkNamesAsync(Host.Path);
    }

    /// <summary>A veth pair in the lab's host namespace, both ends up (so the parent has carrier); returns the parent's
    /// name. It goes with the lab's namespace.</summary>
    private async Task<string> CreateParentAsync()
    {
        var parent = Unique("mvp");
        await IpTool.RunAsync(Host.Path, "link", "add", parent, "type", "veth", "peer", "name", parent + "x");
        await IpTool.RunAsync(Host.Path, "link", "set", parent + "x", "up");
        await IpTool.RunAsync(Host.Path, "link", "set", parent, "up");
        return parent;
    }

    /// <summary>Creates two sandboxes, connects both, pings s2 from s1 by the address inspect shows; returns it.</summary>
    private async Task<string> ConnectTwoAndPingAsync(string net, string s1, string s2, string prefix)
    {
        foreach (var sandbox in new[] { s1, s2 })
        {
            var sb = await Cnm("sandbox", "create", "--hostname", sandbox, sandbox);
            Assert.That(sb.ExitCode, Is.Zero, sb.ToString());
            var connect = await Cnm("network", "connect", net, sandbox);
            Assert.That(connect.ExitCode, Is.Zero, connect.ToString());
        }

        string address;
        using (var doc = await InspectAsync("sandbox", s2))
        {
            address = doc.RootElement[0].GetProperty("Endpoints")[0].GetProperty("IPv4Address").GetString()!.Split('/')[0];
        }

        Assert.That(address, Does.StartWith(prefix));
        var ping = await Cnm("sandbox", "exec", s1, "--", "ping", "-c1", "-W2", address);
        Assert.That(ping.ExitCode, Is.Zero, ping.ToString());
        Assert.That(ping.StdOut, Does.Contain("1 received"));
        return address;
    }

    /// <summary>Disconnects both sandboxes, removes them and the network; checks that none of it is left.</summary>
    private async Task DisconnectAndRemoveAsync(string net, string s1, string s2)
    {
        foreach (var sandbox in new[] { s1, s2 })
        {
            var d = await Cnm("network", "disconnect", net, sandbox);
            Assert.That(d.ExitCode, Is.Zero, d.ToString());
        }

        using (var doc = await InspectAsync("network", net))
        {
            Assert.That(doc.RootElement[0].GetProperty("Containers").EnumerateObject(), Is.Empty);
        }

        var srm = await Cnm("sandbox", "rm", s1, s2);
        Assert.That(srm.ExitCode, Is.Zero, srm.ToString());
        var rm = await Cnm("network", "rm", net);
        Assert.That(rm.ExitCode, Is.Zero, rm.ToString());
        Assert.That(rm.StdOut.Trim(), Is.EqualTo(net));
        Assert.That((await NetworkRowsAsync()).Select(r => r[1]), Does.Not.Contain(net));
    }

    /// <summary>The rows of <c>cnm network ls</c>, split into columns (header dropped).</summary>
    private async Task<List<string[]>> NetworkRowsAsync()
    {
        var ls = await Cnm("network", "ls");
        Assert.That(ls.ExitCode, Is.Zero, ls.ToString());
        return [.. ls.StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries).Skip(1).Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))];
    }

    private async Task<JsonDocument> InspectAsync(string kind, string name)
    {
        var r = await Cnm(kind, "inspect", name);
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        return JsonDocument.Parse(r.StdOut);
    }
}
