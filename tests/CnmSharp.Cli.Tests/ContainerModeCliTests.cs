using System.Text.Json;
using CnmSharp.Testing;

namespace CnmSharp.Cli.Tests;

/// <summary>
/// <c>cnm sandbox create --share SANDBOX NAME</c> (Docker's <c>--network container:SANDBOX</c>) as a user runs it: one
/// process per command, a real embedded store, a private host namespace.
/// </summary>
[TestFixture]
[RequiresRoot]
public sealed class ContainerModeCliTests : CliFixture
{
    private async Task<JsonElement> InspectSandboxAsync(string sandbox)
    {
        var r = await Cnm("sandbox", "inspect", sandbox);
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        using var doc = JsonDocument.Parse(r.StdOut);
        return doc.RootElement[0].Clone();
    }

    private async Task<ProcessResult> OkAsync(params string[] args)
    {
        var r = await Cnm(args);
        Assert.That(r.ExitCode, Is.Zero, $"cnm {string.Join(' ', args)}: {r}");
        return r;
    }

    [Test]
    public async Task Share_ls_inspect_exec_refused_connect_then_rm_original_and_sharer()
    {
        var net = Unique("cmnet");
        var (a, b, side) = (Unique("cma"), Unique("cmb"), Unique("cmside"));
        await OkAsync("network", "create", "--subnet", "10.92.0.0/24", net);
        await OkAsync("sandbox", "create", "--hostname", "web", a);
        await OkAsync("network", "connect", "--ip", "10.92.0.10", net, a);
        await OkAsync("sandbox", "create", b);
        await OkAsync("network", "connect", "--ip", "10.92.0.11", net, b);

        var created = await OkAsync("sandbox", "create", "--share", a, side);
        Assert.That(created.StdOut.Trim(), Does.Match("^[0-9a-f]{64}$"));

        // ls: a column says how each sandbox gets its namespace.
        var ls = await OkAsync("sandbox", "ls");
        var lines = ls.StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.That(lines[0], Does.Match(@"^SANDBOX ID\s+CONTAINER\s+KEY\s+ENDPOINTS\s+NETWORK MODE$"));
        var rows = lines.Skip(1).Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries)).ToList();
        Assert.Multiple(() =>
        {
            Assert.That(rows.Single(r => r[1] == side)[^1], Is.EqualTo("container:" + a), ls.StdOut);
            Assert.That(rows.Single(r => r[1] == side)[3], Is.EqualTo("-"), "no endpoints of its own");
            Assert.That(rows.Single(r => r[1] == a)[^1], Is.EqualTo("own"), ls.StdOut);
        });

        // inspect: what it shares, and who shares the original.
        var s = await InspectSandboxAsync(side);
        var o = await InspectSandboxAsync(a);
        Assert.Multiple(() =>
        {
            Assert.That(s.GetProperty("NetworkMode").GetString(), Is.EqualTo("container:" + a));
            Assert.That(s.GetProperty("SharedFrom").GetProperty("ContainerId").GetString(), Is.EqualTo(a));
            Assert.That(s.GetProperty("SharedFrom").GetProperty("SandboxID").GetString(), Is.EqualTo(o.GetProperty("Id").GetString()));
            Assert.That(s.GetProperty("NetworkSandboxID").GetString(), Is.EqualTo(o.GetProperty("Id").GetString()));
            Assert.That(s.GetProperty("Key").GetString(), Is.EqualTo(o.GetProperty("Key").GetString()));
            Assert.That(s.GetProperty("Hostname").GetString(), Is.EqualTo("web"), "the shared sandbox's hostname");
            Assert.That(s.GetProperty("Endpoints").GetArrayLength(), Is.Zero);
            Assert.That(o.GetProperty("NetworkMode").GetString(), Is.EqualTo("own"));
            Assert.That(o.GetProperty("SharedFrom").ValueKind, Is.EqualTo(JsonValueKind.Null));
            Assert.That(o.GetProperty("SharedBy").EnumerateArray().Select(e => e.GetString()), Is.EqualTo(new[] { side }));
        });
        var key = s.GetProperty("Key").GetString()!;

        // exec in the sharer runs in the shared namespace, with the shared hosts file.
        var addr = await OkAsync("sandbox", "exec", side, "--", "ip", "-br", "-4", "addr", "show", "dev", "eth0");
        Assert.That(addr.StdOut, Does.Contain("10.92.0.10/24"));
        var ping = await OkAsync("sandbox", "exec", side, "--", "ping", "-c1", "-W2", "10.92.0.11");
        Assert.That(ping.StdOut, Does.Contain("1 received"));
        var hosts = await OkAsync("sandbox", "exec", side, "--", "cat", "/etc/hosts");
        Assert.That(hosts.StdOut, Does.Contain("10.92.0.10\tweb"));

        // network connect to the sharer: refused by the library (exit 1, one line), and no endpoint is left.
        var connect = await Cnm("network", "connect", net, side);
        Assert.Multiple(() =>
        {
            Assert.That(connect.ExitCode, Is.EqualTo(1), connect.ToString());
            Assert.That(connect.StdErrLines, Has.Length.EqualTo(1), connect.ToString());
            Assert.That(connect.StdErr, Does.StartWith("cnm: ").And.Contain("shares the network namespace of container \"" + a + "\""));
        });
        var netInspect = await OkAsync("network", "inspect", net);
        using (var doc = JsonDocument.Parse(netInspect.StdOut))
        {
            Assert.That(doc.RootElement[0].GetProperty("Containers").EnumerateObject().Select(p => p.Name), Is.EquivalentTo(new[] { a, b }));
        }

        // Bad input: an unknown sandbox to share is a refusal (1), --share with --host-mode a usage error (2).
        var unknown = await Cnm("sandbox", "create", "--share", Unique("nope"), Unique("x"));
        Assert.That(unknown.ExitCode, Is.EqualTo(1), unknown.ToString());
        Assert.That(unknown.StdErr, Does.Contain("no such sandbox"));
        var usage = await Cnm("sandbox", "create", "--share", a, "--host-mode", Unique("y"));
        Assert.That(usage.ExitCode, Is.EqualTo(2), usage.ToString());

        // rm the original: the namespace stays for the sharer, without the original's interface.
        await OkAsync("sandbox", "rm", a);
        Assert.That(File.Exists(key), Is.True, "the namespace stays while the sharer lives");
        var links = await OkAsync("sandbox", "exec", side, "--", "ip", "-br", "link");
        Assert.That(links.StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split(' ')[0]), Is.EqualTo(new[] { "lo" }), links.StdOut);
        var ls2 = await OkAsync("sandbox", "ls");
        Assert.That(ls2.StdOut, Does.Contain("container:" + a), "the mode still names the container it was created with");

        // rm the sharer: the last user takes the namespace.
        await OkAsync("sandbox", "rm", side, b);
        Assert.Multiple(() =>
        {
            Assert.That(File.Exists(key), Is.False, "the last user removed the namespace");
            Assert.That(MountTable.LinesUnder(key), Is.Empty);
        });
        await OkAsync("network", "rm", net);
    }
}
