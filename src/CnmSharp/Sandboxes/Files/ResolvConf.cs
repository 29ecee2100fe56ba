using System.Buffers;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;

namespace CnmSharp.Sandboxes.Files;

/// <summary>What <see cref="ResolvConf.UpdateAsync"/> did.</summary>
public enum ResolvConfUpdateResult
{
    /// <summary>The file was rewritten.</summary>
    Updated,

    /// <summary>The new content equals the current content; nothing was written.</summary>
    Unchanged,

    /// <summary>The file's hash does not match the <c>.hash</c> file: the user edited it, so it was left alone.</summary>
    UserModified,

    /// <summary>The file does not exist; nothing was written.</summary>
    Missing,
}

/// <summary>The resolv.conf of a sandbox whose DNS goes through the embedded resolver.</summary>
/// <param name="Content">The file's content.</param>
/// <param name="ExternalNameservers">The IPv4 servers the embedded resolver forwards to (loopback ones must be queried from the host namespace).</param>
public sealed record EmbeddedDnsResolvConf(string Content, IReadOnlyList<IPAddress> ExternalNameservers);

/// <summary>
/// A sandbox's resolv.conf: generated from the user's DNS settings over the host's file, written with a <c>.hash</c>
/// file so later updates leave a file the user edited alone.
/// </summary>
public static class ResolvConf
{
    private static readonly SearchValues<char> s_forbidden = SearchValues.Create(" \t\r\n\0#;");

    /// <summary>The host's resolv.conf.</summary>
    public const string DefaultHostPath = "/etc/resolv.conf";

    /// <summary>The file systemd-resolved keeps with the real upstream servers.</summary>
    public const string SystemdResolvedPath = "/run/systemd/resolve/resolv.conf";

    /// <summary>The stub address of systemd-resolved.</summary>
    public const string SystemdResolvedStub = "127.0.0.53";

    /// <summary>The address of the embedded DNS server inside a sandbox.</summary>
    public const string EmbeddedDnsAddress = "127.0.0.11";

    /// <summary>The suffix of the hash file next to a written resolv.conf.</summary>
    public const string HashSuffix = ".hash";

    /// <summary>The servers used when no usable IPv4 nameserver is left: 8.8.8.8, 8.8.4.4.</summary>
    public static IReadOnlyList<string> DefaultIPv4Nameservers { get; } = ["8.8.8.8", "8.8.4.4"];

    /// <summary>The servers added to <see cref="DefaultIPv4Nameservers"/> when IPv6 is enabled.</summary>
    public static IReadOnlyList<string> DefaultIPv6Nameservers { get; } = ["2001:4860:4860::8888", "2001:4860:4860::8844"];

    /// <summary>Parses resolv.conf content.</summary>
    /// <param name="content">The content.</param>
    /// <returns>The document.</returns>
    public static ResolvConfDocument Parse(string content) => ResolvConfDocument.Parse(content);

    /// <summary>
    /// Builds a file: one <c>search</c> line (left out when empty or just <c>.</c>), one <c>nameserver</c> line per
    /// server, one <c>options</c> line (left out when empty).
    /// </summary>
    /// <param name="nameservers">IP addresses.</param>
    /// <param name="search">Search domains.</param>
    /// <param name="options">Options.</param>
    /// <returns>The content.</returns>
    /// <exception cref="ArgumentException">A nameserver is not an IP address, or a domain or option is empty or contains white space or <c>#</c>.</exception>
    public static string Build(IEnumerable<string> nameservers, IEnumerable<string> search, IEnumerable<string> options)
    {
        ArgumentNullException.ThrowIfNull(nameservers);
        ArgumentNullException.ThrowIfNull(search);
        ArgumentNullException.ThrowIfNull(options);
        var builder = new StringBuilder();
        var domains = search.ToList();
        domains.ForEach(d => ValidateToken(d, nameof(search)));
        if (domains.Count > 0 && !(domains.Count == 1 && domains[0] == "."))
        {
            builder.Append("search ").AppendJoin(' ', domains).Append('\n');
        }

        foreach (var server in nameservers)
        {
            if (server is null || !IPAddress.TryParse(server, out _) || server.AsSpan().IndexOfAny(s_forbidden) >= 0)
            {
                throw new ArgumentException($"Nameserver '{server}' is not an IP address.", nameof(nameservers));
            }

            builder.Append("nameserver ").Append(server).Append('\n');
        }

        var opts = options.ToList();
        opts.ForEach(o => ValidateToken(o, nameof(options)));
        if (opts.Count > 0)
        {
            builder.Append("options ").AppendJoin(' ', opts).Append('\n');
        }

        return builder.ToString();
    }

    /// <summary>
    /// The resolv.conf of a new sandbox. When the user gave DNS servers, search domains or options, it is built from them,
    /// taking the host's values for the parts not given (the host's servers filtered as below). Otherwise it is the host's
    /// file with loopback nameservers (127.0.0.0/8, ::1) removed, and IPv6 ones too when IPv6 is disabled; if no
    /// nameserver is left, <see cref="DefaultIPv4Nameservers"/> (and <see cref="DefaultIPv6Nameservers"/> with IPv6) are used.
    /// </summary>
    /// <param name="host">The host's file (<see cref="ResolvConfDocument.Empty"/> when it does not exist).</param>
    /// <param name="dnsServers">The user's servers, or empty.</param>
    /// <param name="dnsSearch">The user's search domains, or empty.</param>
    /// <param name="dnsOptions">The user's options, or empty.</param>
    /// <param name="ipv6Enabled">Whether the sandbox has IPv6.</param>
    /// <returns>The content.</returns>
    public static string Generate(
        ResolvConfDocument host,
        IReadOnlyCollection<string> dnsServers,
        IReadOnlyCollection<string> dnsSearch,
        IReadOnlyCollection<string> dnsOptions,
        bool ipv6Enabled)
    {
        ArgumentNullException.ThrowIfNull(host);
        ArgumentNullException.ThrowIfNull(dnsServers);
        ArgumentNullException.ThrowIfNull(dnsSearch);
        ArgumentNullException.ThrowIfNull(dnsOptions);
        if (dnsServers.Count == 0 && dnsSearch.Count == 0 && dnsOptions.Count == 0)
        {
            return FilterHost(host, ipv6Enabled);
        }

        IReadOnlyCollection<string> servers = dnsServers;
        if (servers.Count == 0)
        {
            var usable = host.Nameservers.Where(s => IsUsable(s, ipv6Enabled)).ToList();
            servers = usable.Count > 0 ? usable : Defaults(ipv6Enabled);
        }

        return Build(
            servers,
            dnsSearch.Count > 0 ? dnsSearch : host.Search,
            dnsOptions.Count > 0 ? dnsOptions : host.Options);
    }

    /// <summary>
    /// The host's file with loopback nameservers removed (and IPv6 ones when IPv6 is disabled); every other line,
    /// comments included, is kept. When no nameserver is left the defaults are appended.
    /// </summary>
    /// <param name="host">The host's file.</param>
    /// <param name="ipv6Enabled">Whether the sandbox has IPv6.</param>
    /// <returns>The content (LF line ends, ending with one).</returns>
    public static string FilterHost(ResolvConfDocument host, bool ipv6Enabled)
    {
        ArgumentNullException.ThrowIfNull(host);
        var kept = host.Lines
            .Where(l => l.Kind != ResolvConfLineKind.Nameserver || IsUsable(l.Values[0], ipv6Enabled))
            .ToList();
        var lines = kept.Select(l => l.Text).ToList();
        if (!kept.Any(l => l.Kind == ResolvConfLineKind.Nameserver))
        {
            lines.AddRange(Defaults(ipv6Enabled).Select(s => "nameserver " + s));
        }

        return AtomicFile.JoinLines(lines);
    }

    /// <summary>
    /// Rewrites a sandbox's resolv.conf for the embedded DNS server: <c>nameserver &lt;embedded&gt;</c>, then the file's
    /// IPv6 nameservers, the file's search domains, and its options plus <c>ndots:0</c> unless an <c>ndots:N</c> option
    /// is already there. Applying it to its own output gives the same content.
    /// </summary>
    /// <param name="current">The sandbox's file as generated for the user's settings.</param>
    /// <param name="embeddedNameserver">The embedded server's address; <see cref="EmbeddedDnsAddress"/> when null.</param>
    /// <returns>The content and the IPv4 servers the embedded resolver forwards to.</returns>
    public static EmbeddedDnsResolvConf BuildForEmbeddedDns(ResolvConfDocument current, string? embeddedNameserver = null)
    {
        ArgumentNullException.ThrowIfNull(current);
        var embedded = embeddedNameserver ?? EmbeddedDnsAddress;
        var embeddedAddress = IPAddress.Parse(embedded);
        var external = new List<IPAddress>();
        var servers = new List<string> { embedded };
        foreach (var server in current.Nameservers)
        {
            var address = IPAddress.Parse(server);
            if (address.Equals(embeddedAddress))
            {
                continue;
            }

            if (address.AddressFamily == AddressFamily.InterNetworkV6)
            {
                servers.Add(server);
            }
            else
            {
                external.Add(address);
            }
        }

        var options = current.Options.ToList();
        if (!options.Any(IsNdots))
        {
            options.Add("ndots:0");
        }

        return new EmbeddedDnsResolvConf(Build(servers, current.Search, options), external);
    }

    /// <summary>Whether a nameserver is a loopback address (127.0.0.0/8 or ::1).</summary>
    /// <param name="nameserver">The address as written.</param>
    /// <returns>True for loopback.</returns>
    public static bool IsLocalhost(string nameserver) =>
        IPAddress.TryParse(nameserver, out var address) && IPAddress.IsLoopback(address);

    /// <summary>
    /// The host file to copy from: <paramref name="systemdResolvedPath"/> when <paramref name="hostPath"/> lists exactly one
    /// nameserver, systemd-resolved's stub <see cref="SystemdResolvedStub"/>, and that file exists; otherwise <paramref name="hostPath"/>.
    /// </summary>
    /// <param name="hostPath">The host's resolv.conf.</param>
    /// <param name="systemdResolvedPath">systemd-resolved's file.</param>
    /// <param name="cancellationToken">Cancels the read.</param>
    /// <returns>The path to use.</returns>
    public static async Task<string> ResolveHostPathAsync(
        string hostPath, string systemdResolvedPath = SystemdResolvedPath, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(hostPath);
        ArgumentException.ThrowIfNullOrEmpty(systemdResolvedPath);
        var content = await AtomicFile.TryReadTextAsync(hostPath, cancellationToken).ConfigureAwait(false);
        if (content is null)
        {
            return hostPath;
        }

        var servers = Parse(content).Nameservers;
        return servers is [SystemdResolvedStub] && File.Exists(systemdResolvedPath) ? systemdResolvedPath : hostPath;
    }

    /// <summary>Reads and parses a file; a missing file gives <see cref="ResolvConfDocument.Empty"/>.</summary>
    /// <param name="path">The file.</param>
    /// <param name="cancellationToken">Cancels the read.</param>
    /// <returns>The document.</returns>
    public static async Task<ResolvConfDocument> ReadAsync(string path, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var content = await AtomicFile.TryReadTextAsync(path, cancellationToken).ConfigureAwait(false);
        return content is null ? ResolvConfDocument.Empty : Parse(content);
    }

    /// <summary>The hash recorded for content: <c>sha256:</c> and the lower-case hex SHA-256 of its UTF-8 bytes.</summary>
    /// <param name="content">The content.</param>
    /// <returns>The hash.</returns>
    public static string ComputeHash(string content)
    {
        ArgumentNullException.ThrowIfNull(content);
        return ComputeHash(AtomicFile.Encode(content));
    }

    /// <summary>Writes a sandbox's resolv.conf and its <c>.hash</c> file (hash first; both atomically).</summary>
    /// <param name="path">The file.</param>
    /// <param name="content">The content.</param>
    /// <param name="cancellationToken">Cancels the write.</param>
    /// <returns>A task that completes when both files are in place.</returns>
    public static Task WriteAsync(string path, string content, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(content);
        return WriteBytesAsync(path, AtomicFile.Encode(content), cancellationToken);
    }

    /// <summary>Writes a sandbox's resolv.conf, exactly these bytes, and its <c>.hash</c> file.</summary>
    internal static async Task WriteBytesAsync(string path, byte[] bytes, CancellationToken cancellationToken)
    {
        var hash = ComputeHash(bytes);
        var hashPath = path + HashSuffix;
        var previous = await AtomicFile.TryReadBytesAsync(path, cancellationToken).ConfigureAwait(false);

        // Hash first. When a file is replaced, the hash file lists the old and the new hash until the new file is in
        // place, so a crash in between never makes CnmSharp's own file look edited by the user.
        var transitional = previous is null ? hash + "\n" : ComputeHash(previous) + "\n" + hash + "\n";
        await AtomicFile.WriteTextAsync(hashPath, transitional, cancellationToken).ConfigureAwait(false);
        await AtomicFile.WriteAsync(path, bytes, cancellationToken).ConfigureAwait(false);
        if (previous is not null)
        {
            await AtomicFile.WriteTextAsync(hashPath, hash + "\n", cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Regenerates a sandbox's resolv.conf unless the user edited it: when the file's hash is not one recorded in the
    /// <c>.hash</c> file, it is left alone. A missing <c>.hash</c> file does not block the update. Crash-safe: the hash
    /// file lists both the old and the new hash while the file is being replaced.
    /// </summary>
    /// <param name="path">The sandbox's resolv.conf.</param>
    /// <param name="rebuild">Gives the new content from the current file.</param>
    /// <param name="cancellationToken">Cancels the update.</param>
    /// <returns>What happened.</returns>
    public static async Task<ResolvConfUpdateResult> UpdateAsync(
        string path, Func<ResolvConfDocument, string> rebuild, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(rebuild);
        return await UpdateCoreAsync(path, current => AtomicFile.Encode(rebuild(Parse(AtomicFile.Decode(current)))), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>As <see cref="UpdateAsync(string, Func{ResolvConfDocument, string}, CancellationToken)"/>, to exactly these bytes.</summary>
    internal static Task<ResolvConfUpdateResult> UpdateBytesAsync(string path, byte[] content, CancellationToken cancellationToken) =>
        UpdateCoreAsync(path, _ => content, cancellationToken);

    private static async Task<ResolvConfUpdateResult> UpdateCoreAsync(string path, Func<byte[], byte[]> rebuild, CancellationToken cancellationToken)
    {
        var current = await AtomicFile.TryReadBytesAsync(path, cancellationToken).ConfigureAwait(false);
        if (current is null)
        {
            return ResolvConfUpdateResult.Missing;
        }

        var currentHash = ComputeHash(current);
        var hashPath = path + HashSuffix;
        var recorded = await AtomicFile.TryReadTextAsync(hashPath, cancellationToken).ConfigureAwait(false);
        if (recorded is not null && !AtomicFile.SplitLines(recorded).Any(h => h.Trim() == currentHash))
        {
            return ResolvConfUpdateResult.UserModified;
        }

        var content = rebuild(current);
        var newHash = ComputeHash(content);
        if (newHash == currentHash)
        {
            if (recorded is null || recorded != currentHash + "\n")
            {
                await AtomicFile.WriteTextAsync(hashPath, currentHash + "\n", cancellationToken).ConfigureAwait(false);
            }

            return ResolvConfUpdateResult.Unchanged;
        }

        await AtomicFile.WriteTextAsync(hashPath, currentHash + "\n" + newHash + "\n", cancellationToken).ConfigureAwait(false);
        await AtomicFile.WriteAsync(path, content, cancellationToken).ConfigureAwait(false);
        await AtomicFile.WriteTextAsync(hashPath, newHash + "\n", cancellationToken).ConfigureAwait(false);
        return ResolvConfUpdateResult.Updated;
    }

    /// <summary>Whether an option sets <c>ndots</c> to a non-negative number.</summary>
    /// <param name="option">The option.</param>
    /// <returns>True for <c>ndots:N</c> with N a non-negative integer.</returns>
    public static bool IsNdots(string option) =>
        option is not null && option.StartsWith("ndots:", StringComparison.Ordinal) &&
        int.TryParse(option.AsSpan(6), NumberStyles.None, CultureInfo.InvariantCulture, out _);

    private static string ComputeHash(byte[] content) =>
        "sha256:" + Convert.ToHexStringLower(SHA256.HashData(content));

    private static IReadOnlyList<string> Defaults(bool ipv6Enabled) =>
        ipv6Enabled ? [.. DefaultIPv4Nameservers, .. DefaultIPv6Nameservers] : DefaultIPv4Nameservers;

    private static bool IsUsable(string nameserver, bool ipv6Enabled) =>
        IPAddress.TryParse(nameserver, out var address) && !IPAddress.IsLoopback(address) &&
        (ipv6Enabled || address.AddressFamily != AddressFamily.InterNetworkV6);

    private static void ValidateToken(string token, string parameterName)
    {
        if (string.IsNullOrEmpty(token) || token.AsSpan().IndexOfAny(s_forbidden) >= 0)
        {
            throw new ArgumentException($"'{token}' is not a valid resolv.conf value.", parameterName);
        }
    }
}
