using System.Security.Cryptography;
using System.Text.Json;
using CnmSharp.Testing;

namespace CnmSharp.Cli.Tests;

/// <summary>
/// <c>cnm network create --config-only</c> and <c>--config-from NETWORK</c> as <c>docker network create</c> takes
/// them: one process per command, a real embedded store in a temporary state directory, and a private host namespace.
/// </summary>
[TestFixture]
[RequiresRoot]
public sealed class ConfigNetworkCliTests : CliFixture
{
    private async Task<JsonElement> InspectAsync(string network)
    {
        var r = await Cnm("network", "inspect", network);
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        using var doc = JsonDocument.Parse(r.StdOut);
        return doc.RootElement[0].Clone();
    }

    private static void AssertRefused(ProcessResult r, params string[] mentions)
    {
        Assert.That(r.ExitCode, Is.EqualTo(1), r.ToString());
        Assert.That(r.StdOut, Is.Empty, r.ToString());
        Assert.That(r.StdErrLines, Has.Length.EqualTo(1), r.ToString());
        Assert.That(r.StdErr, Does.StartWith("cnm: "));
        foreach (var mention in mentions)
        {
            Assert.That(r.StdErr, Does.Contain(mention));
        }
    }

    [Test]
    public async Task Config_only_then_config_from_shows_in_ls_and_inspect_and_the_config_goes_only_after_its_user()
    {
        var cfg = Unique("cfg");
        var net = Unique("net");
        var sandbox = Unique("sb");

        var createCfg = await Cnm("network", "create", "--config-only", "--subnet", "10.96.0.0/24", "--gateway", "10.96.0.254", "--label", "team=cfg", cfg);
        Assert.That(createCfg.ExitCode, Is.Zero, createCfg.ToString());
        var createNet = await Cnm("network", "create", "-d", "bridge", "--config-from", cfg, net);
        Assert.That(createNet.ExitCode, Is.Zero, createNet.ToString());
        var netId = createNet.StdOut.Trim();

        var ls = await Cnm("network", "ls");
        Assert.That(ls.ExitCode, Is.Zero, ls.ToString());
        var rows = ls.StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries).Skip(1).Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries)).ToList();
        Assert.That(rows.Single(r => r[1] == cfg)[2..], Is.EqualTo(new[] { "null", "local" }), ls.StdOut);
        Assert.That(rows.Single(r => r[1] == net)[2..], Is.EqualTo(new[] { "bridge", "local" }), ls.StdOut);

        var c = await InspectAsync(cfg);
        var n = await InspectAsync(net);
        Assert.Multiple(() =>
        {
            Assert.That(c.GetProperty("ConfigOnly").GetBoolean(), Is.True);
            Assert.That(c.GetProperty("ConfigFrom").GetProperty("Network").GetString(), Is.Empty);
            Assert.That(c.GetProperty("Driver").GetString(), Is.EqualTo("null"));
            Assert.That(c.GetProperty("IPAM").GetProperty("Config")[0].GetProperty("Subnet").GetString(), Is.EqualTo("10.96.0.0/24"));
            Assert.That(n.GetProperty("ConfigOnly").GetBoolean(), Is.False);
            Assert.That(n.GetProperty("ConfigFrom").GetProperty("Network").GetString(), Is.EqualTo(cfg));
            Assert.That(n.GetProperty("Driver").GetString(), Is.EqualTo("bridge"));
            Assert.That(n.GetProperty("IPAM").GetProperty("Config")[0].GetProperty("Subnet").GetString(), Is.EqualTo("10.96.0.0/24"));
            Assert.That(n.GetProperty("IPAM").GetProperty("Config")[0].GetProperty("Gateway").GetString(), Is.EqualTo("10.96.0.254"));
            Assert.That(n.GetProperty("Labels").GetProperty("team").GetString(), Is.EqualTo("cfg"));
        });

        // The rules, refused with one line each, and nothing made.
        AssertRefused(await Cnm("network", "create", "--config-from", cfg, "--subnet", "10.97.0.0/24", Unique("own")), cfg);
        AssertRefused(await Cnm("network", "create", "--config-from", cfg, "--label", "a=b", Unique("own")), cfg);
        AssertRefused(await Cnm("network", "create", "--config-only", "--internal", Unique("int")), "configuration-only");
        AssertRefused(await Cnm("network", "create", "--config-only", "--config-from", cfg, Unique("chain")), "configuration-only");
        AssertRefused(await Cnm("network", "create", "--config-from", "no-such-cfg", Unique("own")), "\"no-such-cfg\"");
        Assert.That((await Cnm("sandbox", "create", sandbox)).ExitCode, Is.Zero);
        AssertRefused(await Cnm("network", "connect", cfg, sandbox), "configuration-only");
        AssertRefused(await Cnm("network", "rm", cfg), "in use", $"\"{net}\"");
        var names = (await Cnm("network", "ls")).StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries).Skip(1).Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]).ToList();
        Assert.That(names.Where(x => x.StartsWith("own-", StringComparison.Ordinal) || x.StartsWith("int-", StringComparison.Ordinal) || x.StartsWith("chain-", StringComparison.Ordinal)), Is.Empty);
        Assert.That(names, Does.Contain(cfg).And.Contain(net));

        // The bridge of the network exists in the host namespace while it does.
        var bridge = "br-" + netId[..12];
        Assert.That((await CnmRunner.RunAsync("nsenter", ["--net=" + Host.Path, "ip", "-br", "addr", "show", "dev", bridge], TimeSpan.FromSeconds(10))).StdOut, Does.Contain("10.96.0.254/24"));

        Assert.That((await Cnm("sandbox", "rm", sandbox)).ExitCode, Is.Zero);
        var rm = await Cnm("network", "rm", net, cfg);
        Assert.That(rm.ExitCode, Is.Zero, rm.ToString());
        var after = await Cnm("network", "ls");
        Assert.That(after.StdOut, Does.Not.Contain(cfg).And.Not.Contain(net));
        Assert.That((await CnmRunner.RunAsync("nsenter", ["--net=" + Host.Path, "ip", "link", "show", "dev", bridge], TimeSpan.FromSeconds(10))).ExitCode, Is.Not.Zero, "the bridge is gone");
    }

    [Test]
    public async Task Prune_removes_a_config_network_after_the_network_made_from_it()
    {
        // "a-" sorts before "z-": by name alone the configuration network would be tried first, and refused.
        var cfg = Unique("a-cfg");
        var net = Unique("z-net");
        Assert.That((await Cnm("network", "create", "--config-only", "--subnet", "10.98.0.0/24", cfg)).ExitCode, Is.Zero);
        Assert.That((await Cnm("network", "create", "--config-from", cfg, net)).ExitCode, Is.Zero);

        var prune = await Cnm("network", "prune");
        Assert.That(prune.ExitCode, Is.Zero, prune.ToString());
        var lines = prune.StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.That(Array.IndexOf(lines, net), Is.GreaterThan(0).And.LessThan(Array.IndexOf(lines, cfg)), prune.StdOut);
        var ls = await Cnm("network", "ls");
        Assert.That(ls.StdOut, Does.Not.Contain(cfg).And.Not.Contain(net));
    }
}
