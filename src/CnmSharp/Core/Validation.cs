using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;

namespace CnmSharp.Core;

/// <summary>
/// Every rule a caller's value must meet before anything is written: the public entry points call these first, so an
/// invalid value never reaches an intent, the store, a file (<c>/etc/hosts</c>, <c>resolv.conf</c>), a kernel name or a
/// command. Each failure is a <see cref="CnmInvalidArgumentException"/>.
/// </summary>
/// <remarks>
/// <list type="bullet">
/// <item>Object names (networks, endpoints, aliases) and container ids: 1 to 255 characters of <c>[A-Za-z0-9_.-]</c>,
/// starting with a letter or digit (Docker's rule for container and network names).</item>
/// <item>Explicit network ids: 1 to 128 characters of the same set.</item>
/// <item>Hostnames, domain names, extra-host names and DNS search domains: RFC 1123 labels (1 to 63 letters, digits or
/// hyphens, not starting or ending with a hyphen) separated by dots. A hostname is at most 64 characters (Linux's
/// <c>HOST_NAME_MAX</c>); a domain, a search domain and an extra-host name at most 253; a hostname with its domain at
/// most 253. A search domain may end with a dot, or be just <c>.</c> (no search list).</item>
/// <item>DNS servers: an address as <see cref="IPAddressText"/> parses it strictly (dotted quad without leading
/// zeros, or IPv6 without a zone).</item>
/// <item>DNS options: 1 to 64 characters of <c>[A-Za-z0-9_.:-]</c>, starting with a letter (<c>ndots:2</c>, <c>rotate</c>).</item>
/// <item>Extra-host addresses: an IPv4 or IPv6 address without a scope id.</item>
/// <item>Ids read back from the store that paths are built from (sandbox ids): 64 lowercase hex characters.</item>
/// </list>
/// </remarks>
internal static partial class Validation
{
    /// <summary>The longest hostname (Linux's <c>HOST_NAME_MAX</c>).</summary>
    public const int MaxHostnameLength = 64;

    /// <summary>The longest domain name (RFC 1035, without the root dot).</summary>
    public const int MaxDomainLength = 253;

    [GeneratedRegex("^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,254}\\z", RegexOptions.CultureInvariant)]
    private static partial Regex NamePattern();

    [GeneratedRegex("^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}\\z", RegexOptions.CultureInvariant)]
    private static partial Regex IdPattern();

    [GeneratedRegex("^[0-9a-f]{64}\\z", RegexOptions.CultureInvariant)]
    private static partial Regex StoredIdPattern();

    /// <summary>One RFC 1123 label.</summary>
    [GeneratedRegex("^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\\z", RegexOptions.CultureInvariant)]
    private static partial Regex LabelPattern();

    [GeneratedRegex("^[A-Za-z][A-Za-z0-9_.:-]{0,63}\\z", RegexOptions.CultureInvariant)]
    private static partial Regex DnsOptionPattern();

    /// <summary>A kernel interface name a driver gives: 1 to 15 characters, no '/', ':' or white space.</summary>
    [GeneratedRegex("^[A-Za-z0-9_.-]{1,15}\\z", RegexOptions.CultureInvariant)]
    private static partial Regex InterfaceNamePattern();

    /// <summary>An interface name prefix: leaves room for a 3-digit index within the kernel's 15 characters.</summary>
    [GeneratedRegex("^[A-Za-z][A-Za-z0-9_.-]{0,11}\\z", RegexOptions.CultureInvariant)]
    private static partial Regex InterfacePrefixPattern();

    /// <summary>Checks the arguments of <see cref="NetworkController.CreateNetworkAsync"/>.</summary>
    public static void NetworkCreate(string? name, NetworkCreateOptions? options)
    {
        if (options?.Id is { } id)
        {
            Id(id, "network");
        }

        Name(name, "network");
    }

    /// <summary>Checks the arguments of <see cref="Network.CreateEndpointAsync"/>: the name and every alias.</summary>
    public static void EndpointCreate(string? name, EndpointCreateOptions? options)
    {
        Name(name, "endpoint");
        if (options is not null)
        {
            EndpointAliases(options);
        }
    }

    /// <summary>Every value of endpoint options, without an endpoint name (<see cref="EndpointCreateOptions.Validate"/>).</summary>
    public static void EndpointOptions(EndpointCreateOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        EndpointAliases(options);
        EndpointAddressesOf("endpoint options", options);
    }

    private static void EndpointAliases(EndpointCreateOptions options)
    {
        ArgumentNullException.ThrowIfNull(options.Aliases);
        foreach (var alias in options.Aliases)
        {
            Name(alias, "endpoint alias");
        }
    }

    /// <summary>Checks the arguments of <see cref="NetworkController.CreateSandboxAsync"/>: the container id and every
    /// value that is written into the sandbox's hosts and resolv.conf files.</summary>
    public static void SandboxCreate(string? containerId, SandboxCreateOptions? options)
    {
        ContainerId(containerId);
        if (options is not null)
        {
            SandboxOptions(options);
        }
    }

    /// <summary>Every value of sandbox options, without the container id (<see cref="SandboxCreateOptions.Validate"/>).</summary>
    public static void SandboxOptions(SandboxCreateOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Hostname is { } hostname)
        {
            Hostname(hostname);
        }

        if (options.DomainName is { } domain)
        {
            DomainName(domain, "domain name");
            if (options.Hostname is { } host && host.Length + 1 + domain.Length > MaxDomainLength)
            {
                throw Invalid(CnmErrorCodes.InvalidName, $"hostname \"{host}\" with domain \"{domain}\"", $"the full name is longer than {MaxDomainLength} characters");
            }
        }

        ArgumentNullException.ThrowIfNull(options.ExtraHosts);
        ArgumentNullException.ThrowIfNull(options.DnsServers);
        ArgumentNullException.ThrowIfNull(options.DnsSearch);
        ArgumentNullException.ThrowIfNull(options.DnsOptions);
        foreach (var entry in options.ExtraHosts)
        {
            ExtraHost(entry);
        }

        foreach (var server in options.DnsServers)
        {
            DnsServer(server);
        }

        foreach (var search in options.DnsSearch)
        {
            DnsSearch(search);
        }

        foreach (var option in options.DnsOptions)
        {
            DnsOption(option);
        }

        if (options.ShareNetworkWith is { } shared)
        {
            ShareNetworkWith(shared, options);
        }
    }

    /// <summary>Container mode: the sandbox to share is named as a sandbox or container id is (ids are the same
    /// characters), and nothing that belongs to the shared namespace is set (Docker refuses these with
    /// <c>--network container:</c> too).</summary>
    private static void ShareNetworkWith(string shared, SandboxCreateOptions options)
    {
        if (string.IsNullOrEmpty(shared) || !NamePattern().IsMatch(shared))
        {
            throw Invalid(CnmErrorCodes.InvalidId, $"sandbox \"{Printable(shared)}\"", "invalid sandbox to share: give a sandbox id or container id");
        }

        var conflicting = new[]
        {
            (options.UseHostNamespace, "host mode"),
            (options.Hostname is not null, "a hostname"),
            (options.DomainName is not null, "a domain name"),
            (options.ExtraHosts.Count > 0, "extra hosts"),
            (options.DnsServers.Count > 0 || options.DnsSearch.Count > 0 || options.DnsOptions.Count > 0, "DNS settings"),
        }.Where(c => c.Item1).Select(c => c.Item2).ToArray();
        if (conflicting.Length > 0)
        {
            throw Invalid(CnmErrorCodes.InvalidOption, $"sandbox \"{Printable(shared)}\"", $"a sandbox that shares another's network namespace cannot set {string.Join(", ", conflicting)}: they belong to the shared namespace");
        }
    }

    /// <summary>An object name (network, endpoint, alias).</summary>
    public static void Name(string? name, string what)
    {
        if (name is null || !NamePattern().IsMatch(name))
        {
            throw Invalid(
                CnmErrorCodes.InvalidName,
                $"{what} name \"{Printable(name)}\"",
                "invalid name: use 1 to 255 letters, digits, '_', '.' or '-', starting with a letter or digit");
        }
    }

    /// <summary>An id a caller gives (an explicit network id).</summary>
    public static void Id(string? id, string what)
    {
        if (id is null || !IdPattern().IsMatch(id))
        {
            throw Invalid(CnmErrorCodes.InvalidId, $"{what} id \"{Printable(id)}\"", "invalid id: use 1 to 128 letters, digits, '_', '.' or '-', starting with a letter or digit");
        }
    }

    /// <summary>A container id.</summary>
    public static void ContainerId(string? containerId)
    {
        if (string.IsNullOrEmpty(containerId))
        {
            throw Invalid(CnmErrorCodes.InvalidId, "container id", "the container id is empty");
        }

        if (!NamePattern().IsMatch(containerId))
        {
            throw Invalid(CnmErrorCodes.InvalidId, $"container id \"{Printable(containerId)}\"", "invalid container id: use 1 to 255 letters, digits, '_', '.' or '-', starting with a letter or digit");
        }
    }

    /// <summary>A container's hostname: RFC 1123 labels, at most 64 characters.</summary>
    public static void Hostname(string hostname)
    {
        if (!IsDomain(hostname, MaxHostnameLength, allowTrailingDot: false))
        {
            throw Invalid(CnmErrorCodes.InvalidName, $"hostname \"{Printable(hostname)}\"", $"invalid hostname: use RFC 1123 labels (letters, digits and '-', not starting or ending with '-', at most 63 each) separated by '.', at most {MaxHostnameLength} characters");
        }
    }

    /// <summary>A domain name: RFC 1123 labels, at most 253 characters.</summary>
    public static void DomainName(string domain, string what)
    {
        if (!IsDomain(domain, MaxDomainLength, allowTrailingDot: false))
        {
            throw Invalid(CnmErrorCodes.InvalidName, $"{what} \"{Printable(domain)}\"", $"invalid {what}: use RFC 1123 labels (letters, digits and '-', not starting or ending with '-', at most 63 each) separated by '.', at most {MaxDomainLength} characters");
        }
    }

    /// <summary>A DNS search domain: <c>.</c> or a domain name, which may end with a dot.</summary>
    public static void DnsSearch(string search)
    {
        if (search is not "." && !IsDomain(search, MaxDomainLength, allowTrailingDot: true))
        {
            throw Invalid(CnmErrorCodes.InvalidOption, $"DNS search domain \"{Printable(search)}\"", "invalid search domain: use '.' or RFC 1123 labels separated by '.'");
        }
    }

    /// <summary>A DNS server: a dotted-quad IPv4 address or an IPv6 address without a zone.</summary>
    public static void DnsServer(string server)
    {
        var ok = IPAddressText.TryParseStrict(server, out _);
        if (!ok)
        {
            throw Invalid(CnmErrorCodes.InvalidAddress, $"DNS server \"{Printable(server)}\"", "not an IP address (dotted-quad IPv4 without leading zeros, or IPv6 without a zone)");
        }
    }

    /// <summary>A resolv.conf option.</summary>
    public static void DnsOption(string option)
    {
        if (option is null || !DnsOptionPattern().IsMatch(option))
        {
            throw Invalid(CnmErrorCodes.InvalidOption, $"DNS option \"{Printable(option)}\"", "invalid DNS option: use 1 to 64 letters, digits, '_', '.', ':' or '-', starting with a letter");
        }
    }

    /// <summary>An extra /etc/hosts entry: an RFC 1123 name and an address without a scope id.</summary>
    public static void ExtraHost(HostEntry entry)
    {
        if (entry is null)
        {
            throw Invalid(CnmErrorCodes.InvalidOption, "extra host", "the entry is null");
        }

        if (!IsDomain(entry.Name, MaxDomainLength, allowTrailingDot: false))
        {
            throw Invalid(CnmErrorCodes.InvalidName, $"extra host \"{Printable(entry.Name)}\"", "invalid host name: use RFC 1123 labels (letters, digits and '-', not starting or ending with '-', at most 63 each) separated by '.'");
        }

        if (entry.Address is not { } address || address.AddressFamily is not (AddressFamily.InterNetwork or AddressFamily.InterNetworkV6) ||
            (address.AddressFamily == AddressFamily.InterNetworkV6 && address.ScopeId != 0))
        {
            throw Invalid(CnmErrorCodes.InvalidAddress, $"extra host \"{entry.Name}\"", "the address must be an IPv4 or IPv6 address without a scope id");
        }
    }

    /// <summary>The kernel names a driver gives at join: the interface's current name and the prefix of its name in
    /// the sandbox.</summary>
    public static void InterfaceNames(string? sourceName, string? destinationPrefix)
    {
        if (sourceName is null || sourceName is "." or ".." || !InterfaceNamePattern().IsMatch(sourceName))
        {
            throw Invalid(CnmErrorCodes.InvalidName, $"join interface name \"{Printable(sourceName)}\"", "invalid interface name: use 1 to 15 letters, digits, '_', '.' or '-'");
        }

        if (destinationPrefix is null || !InterfacePrefixPattern().IsMatch(destinationPrefix))
        {
            throw Invalid(CnmErrorCodes.InvalidName, $"join interface prefix \"{Printable(destinationPrefix)}\"", "invalid interface prefix: use 1 to 12 letters, digits, '_', '.' or '-', starting with a letter");
        }
    }

    /// <summary>The paths in the controller's options: absolute.</summary>
    public static void ControllerOptions(CnmOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        foreach (var (path, what) in new[] { (options.StateDirectory, "state directory"), (options.RunDirectory, "run directory"), (options.HostNamespacePath, "host namespace path") })
        {
            if (path is not null && (!Path.IsPathRooted(path) || path.Contains('\0', StringComparison.Ordinal)))
            {
                throw Invalid(CnmErrorCodes.InvalidOption, $"{what} \"{Printable(path)}\"", "the path must be absolute");
            }
        }

        if (options.Cluster is { } cluster && (cluster.NodeLeaseTtl < TimeSpan.FromSeconds(2) || cluster.NodeLeaseTtl > TimeSpan.FromMinutes(10)))
        {
            throw Invalid(CnmErrorCodes.InvalidOption, "node lease TTL", "Cluster.NodeLeaseTtl must be between 2 s and 10 min");
        }

        if (options.GatewayNetwork is not { } gateway)
        {
            throw Invalid(CnmErrorCodes.InvalidOption, "gateway network", "GatewayNetwork must be set");
        }

        if (gateway.Enabled)
        {
            Name(gateway.Name, "gateway network");
            if (string.IsNullOrWhiteSpace(gateway.Driver))
            {
                throw Invalid(CnmErrorCodes.InvalidOption, "gateway network driver", "GatewayNetwork.Driver must name a driver");
            }
        }
    }

    /// <summary>A sandbox id read back from the store, before a path is built from it: 64 lowercase hex characters.</summary>
    /// <exception cref="CnmInternalException">It is not (code <see cref="CnmErrorCodes.CorruptRecord"/>).</exception>
    public static string StoredSandboxId(string? id) =>
        id is not null && StoredIdPattern().IsMatch(id)
            ? id
            : throw new CnmInternalException(CnmErrorCodes.CorruptRecord, $"sandbox id \"{Printable(id)}\"", "a stored sandbox id must be 64 lowercase hex characters; no path is built from it");

    private static bool IsDomain(string? name, int maxLength, bool allowTrailingDot)
    {
        if (string.IsNullOrEmpty(name))
        {
            return false;
        }

        var body = allowTrailingDot && name.Length > 1 && name[^1] == '.' ? name[..^1] : name;
        if (body.Length > maxLength)
        {
            return false;
        }

        foreach (var label in body.Split('.'))
        {
            if (!LabelPattern().IsMatch(label))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>A value as it may appear in an error message: control characters escaped, long values cut.</summary>
    private static string Printable(string? value)
    {
        if (value is null)
        {
            return "(null)";
        }

        var shown = value.Length > 80 ? value[..80] + "..." : value;
        return string.Concat(shown.Select(c => char.IsControl(c) ? "\\x" + ((int)c).ToString("x2", CultureInfo.InvariantCulture) : c.ToString()));
    }

    private static CnmInvalidArgumentException Invalid(string code, string subject, string reason) => new(code, subject, reason);
}
