using System.Security.Cryptography;
using System.Text.Json;
using CnmSharp.Netlink;
using CnmSharp.Testing;

namespace CnmSharp.Cli.Tests;

/// <summary>
/// cnm as a user runs it: one process per command, a real embedded store in a temporary state directory, a temporary
/// run directory, and a private host namespace for the fixture (nothing touches the machine's own network).
/// </summary>
[TestFixture]
[RequiresRoot]
public sealed class CliTests : CliFixture
{
    [Test]
    public async Task Network_lifecycle_create_ls_inspect_connect_exec_disconnect_rm()
    {
        var net = Unique("life");
        var (a, b) = (Unique("ca"), Unique("cb"));

        var create = await Cnm("network", "create", "--subnet", "10.91.0.0/24", "--gateway", "10.91.0.129", "--ip-range", "10.91.0.128/25",
            "--aux-address", "router=10.91.0.140", "--label", "team=net", net);
        Assert.That(create.ExitCode, Is.Zero, create.ToString());
        var id = create.StdOut.Trim();
        Assert.That(id, Does.Match("^[0-9a-f]{64}$"));

        var ls = await Cnm("network", "ls");
        Assert.That(ls.ExitCode, Is.Zero, ls.ToString());
        var lines = ls.StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.That(lines[0], Does.Match(@"^NETWORK ID\s+NAME\s+DRIVER\s+SCOPE$"));
        var row = lines.Single(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1] == net);
        Assert.That(row.Split(' ', StringSplitOptions.RemoveEmptyEntries), Is.EqualTo(new[] { id[..12], net, "bridge", "local" }));
        Assert.That(lines[0].IndexOf("NAME", StringComparison.Ordinal), Is.EqualTo(row.IndexOf(net, StringComparison.Ordinal)), "columns are aligned");

        using (var doc = await InspectAsync(net))
        {
            var n = doc.RootElement[0];
            Assert.Multiple(() =>
            {
                Assert.That(n.GetProperty("Name").GetString(), Is.EqualTo(net));
                Assert.That(n.GetProperty("Id").GetString(), Is.EqualTo(id));
                Assert.That(n.GetProperty("Driver").GetString(), Is.EqualTo("bridge"));
                Assert.That(n.GetProperty("Scope").GetString(), Is.EqualTo("local"));
                Assert.That(n.GetProperty("EnableIPv6").GetBoolean(), Is.False);
                Assert.That(n.GetProperty("Internal").GetBoolean(), Is.False);
                Assert.That(n.GetProperty("Attachable").GetBoolean(), Is.False);
                Assert.That(n.GetProperty("Created").GetDateTimeOffset(), Is.EqualTo(DateTimeOffset.UtcNow).Within(TimeSpan.FromMinutes(5)));
                Assert.That(n.GetProperty("IPAM").GetProperty("Driver").GetString(), Is.EqualTo("default"));
                var config = n.GetProperty("IPAM").GetProperty("Config")[0];
                Assert.That(config.GetProperty("Subnet").GetString(), Is.EqualTo("10.91.0.0/24"));
                Assert.That(config.GetProperty("Gateway").GetString(), Is.EqualTo("10.91.0.129"));
                Assert.That(config.GetProperty("IPRange").GetString(), Is.EqualTo("10.91.0.128/25"));
                Assert.That(config.GetProperty("AuxiliaryAddresses").GetProperty("router").GetString(), Is.EqualTo("10.91.0.140"));
                Assert.That(n.GetProperty("Labels").GetProperty("team").GetString(), Is.EqualTo("net"));
                Assert.That(n.GetProperty("Options").ValueKind, Is.EqualTo(JsonValueKind.Object));
                Assert.That(n.GetProperty("Containers").EnumerateObject(), Is.Empty);
            });
        }

        foreach (var sandbox in new[] { a, b })
        {
            var sb = await Cnm("sandbox", "create", "--hostname", sandbox, sandbox);
            Assert.That(sb.ExitCode, Is.Zero, sb.ToString());
        }

        var connectA = await Cnm("network", "connect", "--ip", "10.91.0.150", net, a);
        Assert.That(connectA.ExitCode, Is.Zero, connectA.ToString());
        var connectB = await Cnm("network", "connect", "--alias", "bee", net, b);
        Assert.That(connectB.ExitCode, Is.Zero, connectB.ToString());

        string addressB;
        using (var doc = await InspectAsync(net))
        {
            var containers = doc.RootElement[0].GetProperty("Containers");
            var ca = containers.GetProperty(a);
            Assert.That(ca.GetProperty("Name").GetString(), Is.EqualTo(a));
            Assert.That(ca.GetProperty("IPv4Address").GetString(), Is.EqualTo("10.91.0.150/24"));
            Assert.That(ca.GetProperty("EndpointID").GetString(), Does.Match("^[0-9a-f]{64}$"));
            Assert.That(ca.GetProperty("MacAddress").GetString(), Does.Match("^([0-9a-f]{2}:){5}[0-9a-f]{2}$"));
            Assert.That(ca.GetProperty("IPv6Address").GetString(), Is.Empty);
            addressB = containers.GetProperty(b).GetProperty("IPv4Address").GetString()!.Split('/')[0];
            Assert.That(addressB, Does.StartWith("10.91.0."));
        }

        var sls = await Cnm("sandbox", "ls");
        Assert.That(sls.StdOut, Does.Match(@"^SANDBOX ID\s+CONTAINER\s+KEY\s+ENDPOINTS"));
        Assert.That(sls.StdOut, Does.Contain($"{net}:{a}"));

        var ping = await Cnm("sandbox", "exec", a, "--", "ping", "-c1", "-W2", addressB);
        Assert.That(ping.ExitCode, Is.Zero, ping.ToString());
        Assert.That(ping.StdOut, Does.Contain("1 received"));

        var exitCode = await Cnm("sandbox", "exec", a, "--", "sh", "-c", "exit 7");
        Assert.That(exitCode.ExitCode, Is.EqualTo(7), "the command's exit code passes through");

        var busy = await Cnm("network", "rm", net);
        Assert.That(busy.ExitCode, Is.EqualTo(1), busy.ToString());
        Assert.That(busy.StdErrLines, Has.Length.EqualTo(1));
        Assert.That(busy.StdErr, Does.StartWith("cnm: ").And.Contain(net).And.Contain("active endpoints"));

        foreach (var sandbox in new[] { a, b })
        {
            var d = await Cnm("network", "disconnect", net, sandbox);
            Assert.That(d.ExitCode, Is.Zero, d.ToString());
        }

        using (var doc = await InspectAsync(net))
        {
            Assert.That(doc.RootElement[0].GetProperty("Containers").EnumerateObject(), Is.Empty);
        }

        var srm = await Cnm("sandbox", "rm", a, b);
        Assert.That(srm.ExitCode, Is.Zero, srm.ToString());
        var rm = await Cnm("network", "rm", net);
        Assert.That(rm.ExitCode, Is.Zero, rm.ToString());
        var after = await Cnm("network", "ls");
        Assert.That(after.StdOut, Does.Not.Contain(net));
        Assert.That(Directory.EnumerateFiles(Path.Combine(Root, "run", "netns")), Is.Empty, "sandbox namespaces removed");
    }

    [Test]
    public async Task Sandbox_inspect_shows_endpoints_and_state_persists_between_invocations()
    {
        var sandbox = Unique("si");
        Assert.That((await Cnm("sandbox", "create", sandbox)).ExitCode, Is.Zero);
        try
        {
            var inspect = await Cnm("sandbox", "inspect", sandbox);
            Assert.That(inspect.ExitCode, Is.Zero, inspect.ToString());
            using var doc = JsonDocument.Parse(inspect.StdOut);
            var s = doc.RootElement[0];
            Assert.That(s.GetProperty("ContainerId").GetString(), Is.EqualTo(sandbox));
            Assert.That(File.Exists(s.GetProperty("Key").GetString()), Is.True, "the namespace file exists");
        }
        finally
        {
            Assert.That((await Cnm("sandbox", "rm", sandbox)).ExitCode, Is.Zero);
        }
    }

    [Test]
    public async Task Unknown_network_is_exit_1_with_one_line_naming_it()
    {
        var r = await Cnm("network", "inspect", "no-such-net");
        Assert.That(r.ExitCode, Is.EqualTo(1), r.ToString());
        Assert.That(r.StdOut, Is.Empty);
        Assert.That(r.StdErrLines, Has.Length.EqualTo(1));
        Assert.That(r.StdErr, Does.StartWith("cnm: ").And.Contain("\"no-such-net\"").And.Contain("no such network"));
    }

    [TestCase("bridge")]
    [TestCase("host")]
    [TestCase("none")]
    public async Task Removing_a_default_network_is_refused_with_exit_1_and_one_line_and_it_stays(string name)
    {
        var before = await InspectAsync(name);
        var id = before.RootElement[0].GetProperty("Id").GetString();
        before.Dispose();

        var r = await Cnm("network", "rm", name);

        Assert.That(r.ExitCode, Is.EqualTo(1), r.ToString());
        Assert.That(r.StdOut, Is.Empty);
        Assert.That(r.StdErrLines, Has.Length.EqualTo(1));
        Assert.That(r.StdErr, Does.StartWith("cnm: ").And.Contain(name + " is a pre-defined network and cannot be removed"));
        using var after = await InspectAsync(name);
        Assert.That(after.RootElement[0].GetProperty("Id").GetString(), Is.EqualTo(id));
    }

    [Test]
    public async Task Duplicate_network_name_is_exit_1()
    {
        var net = Unique("dup");
        Assert.That((await Cnm("network", "create", "--subnet", "10.93.0.0/24", net)).ExitCode, Is.Zero);
        try
        {
            var again = await Cnm("network", "create", "--subnet", "10.93.1.0/24", net);
            Assert.That(again.ExitCode, Is.EqualTo(1), again.ToString());
            Assert.That(again.StdErrLines, Has.Length.EqualTo(1));
            Assert.That(again.StdErr, Does.StartWith("cnm: ").And.Contain(net));
        }
        finally
        {
            Assert.That((await Cnm("network", "rm", net)).ExitCode, Is.Zero);
        }
    }

    [TestCase("10.94.0.0/33")]
    [TestCase("not-a-cidr")]
    public async Task Bad_subnet_is_a_usage_error(string subnet)
    {
        var r = await Cnm("network", "create", "--subnet", subnet, Unique("bad"));
        Assert.That(r.ExitCode, Is.EqualTo(2), r.ToString());
        Assert.That(r.StdErrLines, Has.Length.EqualTo(1));
        Assert.That(r.StdErr, Does.StartWith("cnm: --subnet " + subnet));
    }

    [Test]
    public async Task Prune_removes_networks_without_endpoints_and_keeps_the_defaults()
    {
        var net = Unique("pr");
        Assert.That((await Cnm("network", "create", "--subnet", "10.95.0.0/24", net)).ExitCode, Is.Zero);
        var prune = await Cnm("network", "prune");
        Assert.That(prune.ExitCode, Is.Zero, prune.ToString());
        Assert.That(prune.StdOut, Does.Contain(net));
        var ls = await Cnm("network", "ls");
        var names = ls.StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries).Skip(1).Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]).ToList();
        Assert.That(names, Does.Contain("none").And.Contain("host").And.Contain("bridge").And.Not.Contain(net));
    }

    private async Task<JsonDocument> InspectAsync(string network)
    {
        var r = await Cnm("network", "inspect", network);
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        return JsonDocument.Parse(r.StdOut);
    }
}

/// <summary>Checks that need neither root nor a controller: they fail (or print help) before one is built.</summary>
[TestFixture]
public sealed class CliUsageTests
{
    [TestCase("--store", "etcd://127.0.0.1", "not an etcd client URL")]
    [TestCase("--store", "consul://127.0.0.1:8500", "unknown store")]
    [TestCase("--store-ca", "/etc/hostname", "need --store etcd://")]
    [TestCase("--node-name", "-bad", "--node-name")]
    [TestCase("--advertise-address", "10.0.0", "invalid IP address")]
    public async Task Bad_cluster_options_are_usage_errors(string option, string value, string message)
    {
        var r = await CnmRunner.CnmAsync([], option, value, "network", "ls");
        Assert.That(r.ExitCode, Is.EqualTo(2), r.ToString());
        Assert.That(r.StdErrLines, Has.Length.EqualTo(1));
        Assert.That(r.StdErr, Does.StartWith("cnm: ").And.Contain(message));
    }

    [Test]
    public async Task Unknown_subcommand_is_exit_2()
    {
        var r = await CnmRunner.CnmAsync([], "network", "frobnicate");
        Assert.That(r.ExitCode, Is.EqualTo(2), r.ToString());
        Assert.That(r.StdErr, Does.StartWith("cnm: "));
    }

    [TestCase("--help")]
    [TestCase("network", "--help")]
    [TestCase("network", "create", "--help")]
    [TestCase("sandbox", "exec", "--help")]
    [TestCase("demo", "--help")]
    public async Task Help_is_everywhere(params string[] args)
    {
        var r = await CnmRunner.CnmAsync([], args);
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        Assert.That(r.StdOut, Does.Contain("Usage:"));
    }
}

/// <summary>Removes what cnm leaves in a run directory: sandbox namespace files and the shared mount of their folder.</summary>
internal static class Cleanup
{
    public static async Task RemoveRunDirectoryAsync(string runDirectory)
    {
        var netns = Path.Combine(runDirectory, "netns");
        if (Directory.Exists(netns))
        {
            var manager = new NetworkNamespaceManager(new NetworkNamespaceManagerOptions { RunDirectory = netns, MakeRunDirectoryShared = false });
            foreach (var file in Directory.EnumerateFiles(netns))
            {
                await manager.DeleteAsync(Path.GetFileName(file));
            }

            for (var i = 0; i < 8 && (await CnmRunner.RunAsync("mountpoint", ["-q", netns], TimeSpan.FromSeconds(10))).ExitCode == 0; i++)
            {
                await CnmRunner.RunAsync("umount", ["-l", netns], TimeSpan.FromSeconds(10));
            }
        }
    }
}
