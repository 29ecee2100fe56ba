using System.Net;
using CnmSharp.Testing;

namespace CnmSharp.Cli.Tests;

/// <summary>
/// The embedded DNS through the command line: <c>network connect</c> starts the one <c>cnm dns serve</c> process of the
/// run directory, which serves 127.0.0.11 in the sandboxes, follows connects and disconnects at once, and exits when
/// no sandbox needs it. The only upstream is a fake DNS server on the network's gateway address in the lab's host
/// namespace. The resolver process is stopped by its PID at the end whatever happens.
/// </summary>
[TestFixture]
[RequiresRoot]
[NonParallelizable]
public sealed class DnsCliTests : CliFixture
{
    private async Task<ProcessResult> OkAsync(params string[] args)
    {
        var result = await Cnm(args);
        Assert.That(result.ExitCode, Is.Zero, $"cnm {string.Join(' ', args)}\n{result}");
        return result;
    }

    [TearDown]
    public Task StopResolverAsync() => Lab.StopDnsResolverAsync();

    [Test]
    public async Task Sandboxes_ping_each_other_by_name_and_alias_through_the_resolver_process_which_follows_changes_and_exits_when_unneeded()
    {
        var (net, other) = (Unique("dnsn"), Unique("dnso"));
        var (s1, s2, s3) = (Unique("dns1"), Unique("dns2"), Unique("dns3"));
        await OkAsync("network", "create", "--subnet", "10.74.0.0/24", net);
        await OkAsync("network", "create", "--subnet", "10.74.1.0/24", other);
        await using var upstream = await FakeDnsServer.StartAsync(new IPEndPoint(IPAddress.Parse("10.74.0.1"), 53), Host.Namespace, Host.Manager);
        foreach (var s in new[] { s1, s2, s3 })
        {
            await OkAsync("sandbox", "create", "--dns", "10.74.0.1", s);
        }

        await OkAsync("network", "connect", net, s1);
        var pid = Lab.DnsResolverPid();
        Assert.That(pid, Is.Not.Null, "connect started the resolver process");
        await OkAsync("network", "connect", "--alias", "db", net, s2);
        await OkAsync("network", "connect", other, s3);
        Assert.That(Lab.DnsResolverPid(), Is.EqualTo(pid), "one resolver for the run directory");

        var resolv = await OkAsync("sandbox", "exec", s1, "--", "cat", "/etc/resolv.conf");
        Assert.That(resolv.StdOut, Does.Contain("nameserver 127.0.0.11").And.Contain("options ndots:0").And.Not.Contain("10.74.0.1"));

        await OkAsync("sandbox", "exec", s1, "--", "ping", "-c1", "-W2", s2);
        await OkAsync("sandbox", "exec", s2, "--", "ping", "-c1", "-W2", s1);
        await OkAsync("sandbox", "exec", s1, "--", "ping", "-c1", "-W2", "db");
        var upstreamAnswer = await OkAsync("sandbox", "exec", s3, "--", "busybox", "nslookup", "www.example.test.");
        Assert.That(upstreamAnswer.StdOut, Does.Contain(FakeDnsServer.AddressOf("www.example.test").ToString()));

        var hidden = await Cnm("sandbox", "exec", s3, "--", "busybox", "nslookup", s2 + ".");
        Assert.That(hidden.StdOut + hidden.StdErr, Does.Contain("NXDOMAIN"), hidden.ToString());

        await OkAsync("network", "disconnect", net, s2);
        var gone = await Cnm("sandbox", "exec", s1, "--", "busybox", "nslookup", s2 + ".");
        Assert.That(gone.StdOut + gone.StdErr, Does.Contain("NXDOMAIN"), "the name went with the disconnect, at once\n" + gone);

        await OkAsync("sandbox", "rm", s1, s2, s3);
        using var process = System.Diagnostics.Process.GetProcessById(pid!.Value);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        await process.WaitForExitAsync(cts.Token);
        Assert.That(File.Exists(Path.Combine(Lab.RunDirectory, "dns.pid")), Is.False, "the resolver exited when no sandbox needed it");
        await OkAsync("network", "rm", net, other);
    }
}
