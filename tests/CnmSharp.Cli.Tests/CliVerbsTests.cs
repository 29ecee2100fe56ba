using System.Diagnostics;
using System.Text.Json;
using System.Text.RegularExpressions;
using CnmSharp.Testing;

namespace CnmSharp.Cli.Tests;

/// <summary>
/// The options <c>cnm</c> takes with Docker's names and syntax: <c>network connect -p/--publish</c>,
/// <c>--mac-address</c>, <c>--link-local-ip</c>, <c>--driver-opt</c>, and <c>sandbox create --dns</c>,
/// <c>--dns-search</c>, <c>--dns-option</c>, <c>--add-host</c>, <c>--domainname</c>, <c>--hostname</c>. Traffic to a
/// published port goes only between the lab's private host namespace and its sandboxes; listeners are OpenBSD
/// <c>nc</c> run with <c>cnm sandbox exec</c>, bounded by <c>timeout</c> and killed (their process tree, by PID) at the
/// end of the test.
/// </summary>
[TestFixture]
[RequiresRoot]
public sealed partial class CliVerbsTests : CliFixture
{
    [Test]
    public async Task A_port_published_with_p_8080_80_is_reached_from_the_host_namespace_and_another_sandbox_and_goes_at_disconnect()
    {
        var net = Unique("pub");
        var (server, client) = (Unique("psrv"), Unique("pcli"));
        await OkAsync("network", "create", "--subnet", "10.71.0.0/24", "--gateway", "10.71.0.1", net);
        await OkAsync("sandbox", "create", server);
        await OkAsync("sandbox", "create", client);
        await OkAsync("network", "connect", net, client);

        var connect = await OkAsync("network", "connect", "--ip", "10.71.0.10", "-p", "8080:80", net, server);
        Assert.That(Lines(connect.StdOut), Is.EqualTo(new[] { "80/tcp -> 0.0.0.0:8080" }), "printed as docker port prints it");
        using (var doc = await InspectAsync("sandbox", server))
        {
            var ports = doc.RootElement[0].GetProperty("Ports");
            Assert.That(ports.GetProperty("80/tcp").GetArrayLength(), Is.EqualTo(1), ports.ToString());
            Assert.That(ports.GetProperty("80/tcp")[0].GetProperty("HostIp").GetString(), Is.EqualTo("0.0.0.0"));
            Assert.That(ports.GetProperty("80/tcp")[0].GetProperty("HostPort").GetString(), Is.EqualTo("8080"));
        }

        var programmed = await IpTool.ExecAsync("nsenter", $"--net={Host.Path}", "iptables-save", "-t", "nat");
        Assert.That(programmed.StandardOutput, Does.Contain("--dport 8080 -j DNAT --to-destination 10.71.0.10:80"), programmed.StandardOutput);

        var greeting = "hello-" + Unique("g");
        using var listener = StartListener(server, 80, greeting);
        try
        {
            Assert.That(await ReplyAsync(FromHost, "10.71.0.1", 8080, greeting), Does.Contain(greeting), "the host namespace reaches its own bridge address :8080, DNATed to the server's :80");
            Assert.That(await ReplyAsync(From(client), "10.71.0.1", 8080, greeting), Does.Contain(greeting), "another sandbox on the bridge reaches the host port through the hairpin path");

            await OkAsync("network", "disconnect", net, server);
            Assert.That(await ReplyOnceAsync(FromHost, "10.71.0.1", 8080), Does.Not.Contain(greeting), "after disconnect the host port leads nowhere");
            Assert.That(await ReplyOnceAsync(From(client), "10.71.0.1", 8080), Does.Not.Contain(greeting), "nor from the other sandbox");
            var rules = await IpTool.ExecAsync("nsenter", $"--net={Host.Path}", "iptables-save");
            Assert.That(rules.ExitCode, Is.Zero, rules.StandardError);
            Assert.That(rules.StandardOutput, Does.Not.Contain("--dport 8080 "), "no rule for the host port is left");
        }
        finally
        {
            Stop(listener);
        }

        await OkAsync("network", "disconnect", net, client);
        await OkAsync("sandbox", "rm", server, client);
        await OkAsync("network", "rm", net);
    }

    [Test]
    public async Task An_ephemeral_p_80_prints_its_chosen_port_and_inspect_shows_it_and_ranges_follow_dockers_rules()
    {
        var net = Unique("eph");
        var sandbox = Unique("eps");
        await OkAsync("network", "create", "--subnet", "10.72.0.0/24", net);
        await OkAsync("sandbox", "create", sandbox);

        var connect = await OkAsync("network", "connect", "-p", "80", "--publish", "9000-9001:90-91/udp", "-p", "127.0.0.1:9100-9110:92", net, sandbox);
        var lines = Lines(connect.StdOut);
        Assert.That(lines, Has.Length.EqualTo(4), connect.ToString());
        var ephemeral = EphemeralLine().Match(lines[0]);
        Assert.That(ephemeral.Success, Is.True, $"'{lines[0]}' is 80/tcp -> 0.0.0.0:PORT");
        var port = int.Parse(ephemeral.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        Assert.That(port, Is.InRange(1024, 65535), "an ephemeral port was chosen");
        Assert.That(lines[1..], Is.EqualTo(new[] { "90/udp -> 0.0.0.0:9000", "91/udp -> 0.0.0.0:9001", "92/tcp -> 127.0.0.1:9100" }),
            "equal ranges map port by port; a host range with one container port gives the first free port of the range");

        using (var doc = await InspectAsync("sandbox", sandbox))
        {
            var ports = doc.RootElement[0].GetProperty("Ports");
            Assert.That(ports.GetProperty("80/tcp")[0].GetProperty("HostPort").GetString(), Is.EqualTo(port.ToString(System.Globalization.CultureInfo.InvariantCulture)));
            Assert.That(ports.GetProperty("80/tcp")[0].GetProperty("HostIp").GetString(), Is.EqualTo("0.0.0.0"));
            Assert.That(ports.GetProperty("91/udp")[0].GetProperty("HostPort").GetString(), Is.EqualTo("9001"));
            Assert.That(ports.GetProperty("92/tcp")[0].GetProperty("HostIp").GetString(), Is.EqualTo("127.0.0.1"));
            Assert.That(ports.EnumerateObject().Select(p => p.Name), Is.EquivalentTo(new[] { "80/tcp", "90/udp", "91/udp", "92/tcp" }));
        }

        var rules = await IpTool.ExecAsync("nsenter", $"--net={Host.Path}", "iptables-save", "-t", "nat");
        Assert.That(rules.StandardOutput, Does.Contain($"--dport {port}"), "the ephemeral port is forwarded");

        await OkAsync("network", "disconnect", net, sandbox);
        using (var doc = await InspectAsync("sandbox", sandbox))
        {
            Assert.That(doc.RootElement[0].GetProperty("Ports").EnumerateObject(), Is.Empty);
        }

        await OkAsync("sandbox", "rm", sandbox);
        await OkAsync("network", "rm", net);
    }

    [Test]
    public async Task Dns_search_options_extra_hosts_domain_and_hostname_land_in_the_sandbox_files_and_mac_and_link_local_on_its_interface()
    {
        var net = Unique("dns");
        var sandbox = Unique("dsb");
        await OkAsync("network", "create", "--subnet", "10.73.0.0/24", net);
        await OkAsync("sandbox", "create", "--hostname", "web1", "--domainname", "example.test",
            "--dns", "10.0.0.53", "--dns", "2001:db8::53", "--dns-search", "a.test", "--dns-search", "b.test", "--dns-option", "ndots:2",
            "--add-host", "db:10.1.2.3", "--add-host", "cache=10.1.2.4", "--add-host", "six:::1", "--add-host", "seven:[2001:db8::7]",
            sandbox);
        var connect = await OkAsync("network", "connect", "--ip", "10.73.0.5", "--mac-address", "02:42:0a:49:00:99",
            "--link-local-ip", "169.254.10.20", "--link-local-ip", "fe80::1234", "--driver-opt", "com.example.note=1", net, sandbox);
        Assert.That(connect.StdOut, Is.Empty, "nothing published, nothing printed");

        string key, iface;
        using (var doc = await InspectAsync("sandbox", sandbox))
        {
            var s = doc.RootElement[0];
            Assert.That(s.GetProperty("Hostname").GetString(), Is.EqualTo("web1"));
            Assert.That(s.GetProperty("Domainname").GetString(), Is.EqualTo("example.test"));
            key = s.GetProperty("Key").GetString()!;
            iface = s.GetProperty("Endpoints")[0].GetProperty("Interface").GetString()!;
            Assert.That(s.GetProperty("Endpoints")[0].GetProperty("MacAddress").GetString(), Is.EqualTo("02:42:0a:49:00:99"));

            var resolv = Lines(await File.ReadAllTextAsync(s.GetProperty("ResolvConfPath").GetString()!));
            // The connect turned the embedded DNS on: 127.0.0.11 replaces the IPv4 server (the resolver forwards to it), the
            // IPv6 one, the search list and the user's ndots stay.
            Assert.That(resolv, Does.Contain("nameserver 127.0.0.11").And.Contain("nameserver 2001:db8::53").And.Contain("search a.test b.test").And.Contain("options ndots:2")
                .And.Not.Contain("nameserver 10.0.0.53"), string.Join('\n', resolv));

            var hosts = Lines(await File.ReadAllTextAsync(s.GetProperty("HostsPath").GetString()!));
            Assert.That(hosts, Does.Contain("10.1.2.3\tdb").And.Contain("10.1.2.4\tcache").And.Contain("::1\tsix").And.Contain("2001:db8::7\tseven")
                .And.Contain("10.73.0.5\tweb1.example.test web1"), string.Join('\n', hosts));
        }

        var inside = await OkAsync("sandbox", "exec", sandbox, "--", "cat", "/etc/resolv.conf", "/etc/hosts");
        Assert.That(inside.StdOut, Does.Contain("nameserver 127.0.0.11").And.Contain("10.1.2.3\tdb"), "the sandbox sees its files as /etc/resolv.conf and /etc/hosts");

        var link = (await IpTool.JsonAsync(key, "addr", "show", "dev", iface))[0];
        Assert.That(link.GetProperty("address").GetString(), Is.EqualTo("02:42:0a:49:00:99"));
        var addresses = link.GetProperty("addr_info").EnumerateArray().Select(a => $"{a.GetProperty("local").GetString()}/{a.GetProperty("prefixlen").GetInt32()}").ToList();
        Assert.That(addresses, Does.Contain("10.73.0.5/24").And.Contain("169.254.10.20/16").And.Contain("fe80::1234/64"), string.Join(", ", addresses));

        await OkAsync("sandbox", "rm", sandbox);
        await OkAsync("network", "rm", net);
    }

    private static readonly string[][] BadConnects =
    [
        ["-p", "foo"], ["-p", ""], ["-p", "80/xyz"], ["-p", "8080-8081:80-82"], ["-p", "8080:80-81"], ["-p", "0"], ["-p", "70000"],
        ["-p", "9-8:80"], ["-p", "1.2.3:80:80"], ["-p", "010.0.0.1:80:80"], ["-p", "[::1:80:80"], ["-p", "fe80::1%1:80:80"], ["-p", "8080:"],
        ["--mac-address", "zz:42:0a:49:00:99"], ["--mac-address", "02:42:0a:49:00"], ["--mac-address", "ff:ff:ff:ff:ff:ff"],
        ["--mac-address", "00:00:00:00:00:00"], ["--mac-address", "03:42:0a:49:00:99"],
        ["--link-local-ip", "10.0.0.1"], ["--link-local-ip", "fe80::1%1"], ["--link-local-ip", "foo"], ["--link-local-ip", "2001:db8::1"],
        ["--driver-opt", "novalue"], ["--driver-opt", "=v"],
    ];

    private static readonly string[][] BadCreates =
    [
        ["--dns", "foo"], ["--dns", "1.2.3"], ["--dns", "fe80::1%1"], ["--dns-search", "bad..test"], ["--dns-search", "-x.test"],
        ["--dns-option", "bad option"], ["--dns-option", "9x"], ["--add-host", "noaddr"], ["--add-host", ":1.2.3.4"],
        ["--add-host", "h:1.2.3"], ["--add-host", "h:host-gateway"], ["--add-host", "bad_name:1.2.3.4"], ["--add-host", "h=fe80::1%1"],
        ["--domainname", "-bad"], ["--hostname", "bad_host"], ["--share", "other", "--dns", "10.0.0.53"], ["--share", "other", "--add-host", "h:1.2.3.4"],
        ["--share", "other", "--domainname", "example.test"],
    ];

    [Test]
    public async Task Every_bad_value_of_the_new_options_is_a_usage_error_that_leaves_nothing()
    {
        var net = Unique("bad");
        var sandbox = Unique("bsb");
        await OkAsync("network", "create", "--subnet", "10.74.0.0/24", net);
        await OkAsync("sandbox", "create", sandbox);
        var networksBefore = (await OkAsync("network", "ls")).StdOut;
        var sandboxesBefore = (await OkAsync("sandbox", "ls")).StdOut;
        var linksBefore = await IpTool.LinkNamesAsync(Host.Path);
        var namespacesBefore = Directory.GetFiles(Path.Combine(Root, "run", "netns")).Order().ToList();

        foreach (var options in BadConnects)
        {
            var r = await Cnm(["network", "connect", .. options, net, sandbox]);
            AssertUsageError(r, options);
        }

        foreach (var options in BadCreates)
        {
            var name = Unique("bnew");
            var r = await Cnm(["sandbox", "create", .. options, name]);
            AssertUsageError(r, options);
        }

        Assert.That((await OkAsync("network", "ls")).StdOut, Is.EqualTo(networksBefore), "no network was made");
        Assert.That((await OkAsync("sandbox", "ls")).StdOut, Is.EqualTo(sandboxesBefore), "no sandbox was made, none connected");
        using (var doc = await InspectAsync("network", net))
        {
            Assert.That(doc.RootElement[0].GetProperty("Containers").EnumerateObject(), Is.Empty, "no endpoint is left");
        }

        Assert.That(await IpTool.LinkNamesAsync(Host.Path), Is.EqualTo(linksBefore), "the lab's host namespace has the same links");
        Assert.That(Directory.GetFiles(Path.Combine(Root, "run", "netns")).Order().ToList(), Is.EqualTo(namespacesBefore), "no namespace was made");

        await OkAsync("sandbox", "rm", sandbox);
        await OkAsync("network", "rm", net);
    }

    private static void AssertUsageError(ProcessResult r, string[] options)
    {
        var what = string.Join(' ', options);
        Assert.That(r.ExitCode, Is.EqualTo(2), $"{what}: {r}");
        Assert.That(r.StdOut, Is.Empty, $"{what}: {r}");
        Assert.That(r.StdErrLines, Has.Length.EqualTo(1), $"{what}: {r}");
        Assert.That(r.StdErr, Does.StartWith("cnm: "), $"{what}: {r}");
        Assert.That(r.StdErr, Does.Not.Contain("Exception"), $"{what}: {r}");
    }

    private async Task<ProcessResult> OkAsync(params string[] args)
    {
        var r = await Cnm(args);
        Assert.That(r.ExitCode, Is.Zero, $"cnm {string.Join(' ', args)}: {r}");
        return r;
    }

    private async Task<JsonDocument> InspectAsync(string kind, string name) => JsonDocument.Parse((await OkAsync(kind, "inspect", name)).StdOut);

    private static string[] Lines(string text) => text.Split('\n', StringSplitOptions.RemoveEmptyEntries);

    [GeneratedRegex(@"^80/tcp -> 0\.0\.0\.0:(\d+)$")]
    private static partial Regex EphemeralLine();

    /// <summary>How a client command is run: in the lab's host namespace, or in a sandbox through <c>cnm sandbox exec</c>.</summary>
    private delegate Task<string> Client(string shellCommand);

    private Client FromHost => async command => (await IpTool.ExecAsync("nsenter", $"--net={Host.Path}", "sh", "-c", command)).StandardOutput;

    private Client From(string sandbox) => async command => (await Cnm("sandbox", "exec", sandbox, "--", "sh", "-c", command)).StdOut;

    /// <summary>Connects until the greeting comes back (the listener may still be starting), 30 tries at most.</summary>
    private static async Task<string> ReplyAsync(Client client, string address, int port, string greeting)
    {
        var reply = "";
        for (var attempt = 0; attempt < 30 && !reply.Contains(greeting, StringComparison.Ordinal); attempt++)
        {
            if (attempt > 0)
            {
                await Task.Delay(200);
            }

            reply = await ReplyOnceAsync(client, address, port);
        }

        return reply;
    }

    private static Task<string> ReplyOnceAsync(Client client, string address, int port) =>
        client($"nc -w 2 -N {address} {port} </dev/null");

    /// <summary>A listener in the sandbox, serving the greeting to each connection (for 120 s at most).</summary>
    private Process StartListener(string sandbox, int port, string greeting)
    {
        var start = new ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in (string[])[CnmRunner.CnmDll, .. Global, "sandbox", "exec", sandbox, "--",
                     "timeout", "120", "sh", "-c", $"while :; do echo {greeting} | nc -l -N {port}; done"])
        {
            start.ArgumentList.Add(arg);
        }

        var process = Process.Start(start) ?? throw new InvalidOperationException("cannot start the listener");
        _ = process.StandardOutput.ReadToEndAsync();
        _ = process.StandardError.ReadToEndAsync();
        return process;
    }

    /// <summary>Kills the listener this test started: its process and the processes under it, by PID.</summary>
    private static void Stop(Process listener)
    {
        try
        {
            if (!listener.HasExited)
            {
                listener.Kill(entireProcessTree: true);
                listener.WaitForExit(10_000);
            }
        }
        catch (InvalidOperationException)
        {
            // It exited in between.
        }
    }
}
