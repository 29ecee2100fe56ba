namespace CnmSharp.Benchmarks.Common;

/// <summary>
/// What a pass must not change in the root namespace: its links, its iptables rules (none on these machines), its
/// forwarding sysctl, and the mounts under the pass's private directory (none may be left).
/// </summary>
internal sealed record RootNamespaceCheck(IReadOnlySet<string> Links, int Rules, string IpForward)
{
    public static async Task<RootNamespaceCheck> TakeAsync()
    {
        var links = (await Exec.RunAsync("ip", ["-o", "link", "show"]).ConfigureAwait(false))
            .Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(line => line.Split(':', 3)[1].Trim().Split('@')[0])
            .ToHashSet(StringComparer.Ordinal);
        return new RootNamespaceCheck(links, await RuleCountAsync().ConfigureAwait(false), (await File.ReadAllTextAsync("/proc/sys/net/ipv4/ip_forward").ConfigureAwait(false)).Trim());
    }

    /// <summary>Lines starting with <c>-A</c> in <c>iptables-save</c> of the root namespace.</summary>
    public static async Task<int> RuleCountAsync(string? netnsPath = null)
    {
        var output = netnsPath is null
            ? await Exec.RunAsync("iptables-save", []).ConfigureAwait(false)
            : await Exec.RunAsync("nsenter", [$"--net={netnsPath}", "iptables-save"]).ConfigureAwait(false);
        return output.Split('\n').Count(l => l.StartsWith("-A", StringComparison.Ordinal));
    }

    /// <summary>Throws when the root namespace changed or anything of the pass in <paramref name="privateDirectory"/> is left.</summary>
    public async Task AssertUnchangedAsync(string privateDirectory, string hostPath, string what)
    {
        var now = await TakeAsync().ConfigureAwait(false);
        var problems = new List<string>();
        if (!now.Links.SetEquals(Links))
        {
            problems.Add($"root links changed: added [{string.Join(' ', now.Links.Except(Links))}] removed [{string.Join(' ', Links.Except(now.Links))}]");
        }

        if (now.Rules != Rules)
        {
            problems.Add($"root iptables rules {Rules} -> {now.Rules}");
        }

        if (now.IpForward != IpForward)
        {
            problems.Add($"root ip_forward {IpForward} -> {now.IpForward}");
        }

        if (PrivateHost.MountsUnder(privateDirectory).Count > 0 || Directory.Exists(privateDirectory) || File.Exists(hostPath))
        {
            problems.Add($"{privateDirectory} (or H, its namespaces or mounts) is still there");
        }

        if (problems.Count > 0)
        {
            throw new InvalidOperationException($"{what}: safety check failed: {string.Join("; ", problems)}");
        }
    }
}
