namespace CnmSharp.Sandboxes.Files;

/// <summary>What a sandbox's hosts and resolv.conf are generated from.</summary>
public sealed record SandboxFileOptions
{
    /// <summary>The container's hostname (used by <see cref="HostsFile.ContainerEntries"/> at join), or null.</summary>
    public string? Hostname { get; init; }

    /// <summary>The container's domain name, or null.</summary>
    public string? DomainName { get; init; }

    /// <summary>Extra hosts entries, written after the base content.</summary>
    public IReadOnlyList<HostEntry> ExtraHosts { get; init; } = [];

    /// <summary>
    /// The sandbox uses the host's network namespace (host mode): without extra hosts, the hosts file is a copy of
    /// <see cref="HostHostsPath"/> instead of the base content; without DNS settings, resolv.conf is a copy of
    /// <see cref="HostResolvConfPath"/>.
    /// </summary>
    public bool UseHostNetwork { get; init; }

    /// <summary>The host's hosts file, copied in host mode.</summary>
    public string HostHostsPath { get; init; } = "/etc/hosts";

    /// <summary>DNS servers; empty for the host's.</summary>
    public IReadOnlyList<string> DnsServers { get; init; } = [];

    /// <summary>DNS search domains; empty for the host's.</summary>
    public IReadOnlyList<string> DnsSearch { get; init; } = [];

    /// <summary>DNS options; empty for the host's.</summary>
    public IReadOnlyList<string> DnsOptions { get; init; } = [];

    /// <summary>Whether the sandbox has IPv6: keeps the host's IPv6 nameservers and adds the IPv6 defaults.</summary>
    public bool EnableIPv6 { get; init; }

    /// <summary>The host's resolv.conf. In host mode (<see cref="UseHostNetwork"/>) without DNS servers, search domains
    /// or options of the sandbox's own, the sandbox's file is a byte-for-byte copy of it (an empty file when it does
    /// not exist), localhost nameservers included: the sandbox shares the host's loopback.</summary>
    public string HostResolvConfPath { get; init; } = ResolvConf.DefaultHostPath;

    /// <summary>systemd-resolved's resolv.conf, used instead when the host's lists only <c>127.0.0.53</c>.</summary>
    public string SystemdResolvedConfPath { get; init; } = ResolvConf.SystemdResolvedPath;

    /// <summary>Whether DNS goes through the embedded server (<see cref="ResolvConf.BuildForEmbeddedDns"/>): set by the
    /// controller once the sandbox has a resolver.</summary>
    public bool UseEmbeddedDns { get; init; }
}
