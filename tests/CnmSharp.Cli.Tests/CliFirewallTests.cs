using System.Diagnostics;
using CnmSharp.Testing;

namespace CnmSharp.Cli.Tests;

/// <summary>
/// <c>cnm --firewall</c>: the bridge flow with nftables leaves no rule for <c>iptables-save</c> to show (only
/// CnmSharp's own <c>ip cnmsharp</c> table), and switching backend on the existing state moves the rules.
/// </summary>
[TestFixture]
[RequiresRoot]
public sealed class CliFirewallTests : CliFixture
{
    private async Task<ProcessResult> OkAsync(string firewall, params string[] args)
    {
        var r = await Cnm(["--firewall", firewall, .. args]);
        Assert.That(r.ExitCode, Is.Zero, $"cnm --firewall {firewall} {string.Join(' ', args)}: {r}");
        return r;
    }

    private async Task<string> InHostAsync(params string[] command)
    {
        var r = await IpTool.ExecAsync("nsenter", [$"--net={Host.Path}", .. command]);
        Assert.That(r.ExitCode, Is.Zero, r.StandardError);
        return r.StandardOutput;
    }

    private Task<string> IptablesSaveAsync() => InHostAsync("iptables-save");

    private Task<string> NftRulesetAsync() => InHostAsync("nft", "list", "ruleset");

    private async Task<string> ReplyAsync(string greeting)
    {
        var reply = "";
        for (var attempt = 0; attempt < 30 && !reply.Contains(greeting, StringComparison.Ordinal); attempt++)
        {
            await Task.Delay(attempt == 0 ? 0 : 200);
            reply = (await IpTool.ExecAsync("nsenter", $"--net={Host.Path}", "sh", "-c", "nc -w 2 -N 10.73.0.1 8080 </dev/null")).StandardOutput;
        }

        return reply;
    }

    private Process StartListener(string firewall, string sandbox, string greeting)
    {
        var start = new ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in (string[])[CnmRunner.CnmDll, .. Global, "--firewall", firewall, "sandbox", "exec", sandbox, "--",
                     "timeout", "120", "sh", "-c", $"while :; do echo {greeting} | nc -l -N 80; done"])
        {
            start.ArgumentList.Add(arg);
        }

        var process = Process.Start(start) ?? throw new InvalidOperationException("cannot start the listener");
        _ = process.StandardOutput.ReadToEndAsync();
        _ = process.StandardError.ReadToEndAsync();
        return process;
    }

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

    [Test]
    public async Task Bridge_flow_with_nftables_leaves_iptables_empty_and_switching_backend_moves_the_rules()
    {
        var net = Unique("nft");
        var server = Unique("nsrv");
        await OkAsync("nftables", "network", "create", "--subnet", "10.73.0.0/24", "--gateway", "10.73.0.1", net);
        await OkAsync("nftables", "sandbox", "create", server);
        await OkAsync("nftables", "network", "connect", "--ip", "10.73.0.10", "-p", "8080:80", net, server);

        var iptables = await IptablesSaveAsync();
        Assert.That(iptables, Does.Not.Contain("DOCKER").And.Not.Contain("10.73.0").And.Not.Contain("DNAT").And.Not.Contain("MASQUERADE"),
            "iptables-save shows no CnmSharp rule");
        var nft = await NftRulesetAsync();
        Assert.That(nft, Does.Contain("table ip cnmsharp").And.Contain("8080 comment \"bridge\" : 10.73.0.10 . 80"));

        var greeting = "hello-" + Unique("g");
        var listener = StartListener("nftables", server, greeting);
        try
        {
            Assert.That(await ReplyAsync(greeting), Does.Contain(greeting), "the host reaches the published port through nftables");
        }
        finally
        {
            Stop(listener);
        }

        // Switching to iptables on the existing state: the start's reconcile removes CnmSharp's tables and writes
        // Docker's rules; switching back removes them again.
        await OkAsync("iptables", "sandbox", "create", Unique("sw"));
        Assert.That(await NftRulesetAsync(), Does.Not.Contain("cnmsharp"), "the nftables tables went with the switch");
        Assert.That(await IptablesSaveAsync(), Does.Contain("--dport 8080 -j DNAT --to-destination 10.73.0.10:80"));

        await OkAsync("nftables", "sandbox", "create", Unique("sw"));
        Assert.That(await IptablesSaveAsync(), Does.Not.Contain("10.73.0").And.Not.Contain("DNAT"), "the iptables rules went with the switch back");
        Assert.That(await NftRulesetAsync(), Does.Contain("8080 comment \"bridge\" : 10.73.0.10 . 80"));

        await OkAsync("nftables", "network", "disconnect", net, server);
        await OkAsync("nftables", "network", "rm", net);
        Assert.That(await NftRulesetAsync(), Does.Not.Contain("10.73.0"), "nothing of the network is left");
    }

    [Test]
    public async Task An_unknown_firewall_is_a_usage_error()
    {
        var r = await Cnm("--firewall", "pf", "network", "ls");
        Assert.That(r.ExitCode, Is.Not.Zero);
        Assert.That(r.StdErr, Does.Contain("--firewall pf: expected auto, nftables, iptables or none"));
    }
}
