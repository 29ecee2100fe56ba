using System.Diagnostics;
using System.Security.Cryptography;

namespace CnmSharp.IntegrationTests.Firewall;

/// <summary>Runs commands for the firewall tests and owns the namespaces they create (prefix <c>cnmfw-</c>).</summary>
internal static class Sh
{
    public const string Prefix = "cnmfw-";

    public static string NewName(string kind = "") => Prefix + kind + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4));

    /// <summary>Runs a program; throws with its stderr when it fails.</summary>
    public static string Run(params string[] args)
    {
        var (code, stdout, stderr) = TryRun(args);
        if (code != 0)
        {
            throw new InvalidOperationException($"{string.Join(' ', args)} failed ({code}): {stderr}");
        }

        return stdout;
    }

    public static (int Code, string Stdout, string Stderr) TryRun(params string[] args)
    {
        var info = new ProcessStartInfo(args[0]) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in args.Skip(1))
        {
            info.ArgumentList.Add(arg);
        }

        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, stdout.Result, stderr);
    }

    /// <summary>The rules of the root namespace (must stay 0: these tests never touch it).</summary>
    public static int RootRuleCount() =>
        Run("iptables-save").Split('\n').Count(l => l.StartsWith("-A ", StringComparison.Ordinal))
        + Run("ip6tables-save").Split('\n').Count(l => l.StartsWith("-A ", StringComparison.Ordinal));
}

/// <summary>A private network namespace created with <c>ip netns add</c>, deleted on dispose.</summary>
internal sealed class TestNamespace : IDisposable
{
    public TestNamespace(string kind = "")
    {
        Name = Sh.NewName(kind);
        Sh.Run("ip", "netns", "add", Name);
    }

    public string Name { get; }

    public string Path => "/run/netns/" + Name;

    /// <summary>Runs a program inside the namespace.</summary>
    public string Exec(params string[] args) => Sh.Run(["nsenter", "--net=" + Path, .. args]);

    public (int Code, string Stdout, string Stderr) TryExec(params string[] args) => Sh.TryRun(["nsenter", "--net=" + Path, .. args]);

    /// <summary>The <c>-A</c> lines of iptables-save (or ip6tables-save) in the namespace, per table.</summary>
    public List<string> Rules(bool ipv6 = false)
    {
        var rules = new List<string>();
        string? table = null;
        foreach (var line in Exec(ipv6 ? "ip6tables-save" : "iptables-save").Split('\n'))
        {
            if (line.StartsWith('*'))
            {
                table = line[1..];
            }
            else if (line.StartsWith("-A ", StringComparison.Ordinal))
            {
                rules.Add($"{table} {line}");
            }
        }

        return rules;
    }

    /// <summary>The user chains of the namespace, as <c>table:chain</c>.</summary>
    public List<string> UserChains(bool ipv6 = false)
    {
        var chains = new List<string>();
        string? table = null;
        foreach (var line in Exec(ipv6 ? "ip6tables-save" : "iptables-save").Split('\n'))
        {
            if (line.StartsWith('*'))
            {
                table = line[1..];
            }
            else if (line.StartsWith(':') && line.Contains(" - ", StringComparison.Ordinal))
            {
                chains.Add($"{table}:{line[1..line.IndexOf(' ', StringComparison.Ordinal)]}");
            }
        }

        return chains;
    }

    public void Dispose() => Sh.TryRun("ip", "netns", "del", Name);
}
