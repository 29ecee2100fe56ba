using System.Buffers;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace CnmSharp.Sandboxes.Files;

/// <summary>
/// A sandbox's <c>/etc/hosts</c>: the base content, the lines a join adds and a leave removes.
/// </summary>
/// <remarks>
/// Lines are <c>&lt;address&gt;\t&lt;names&gt;</c>. The lines <see cref="AddEntriesAsync"/> adds are recorded in a ledger next
/// to the file (<c>&lt;path&gt;.entries</c>); <see cref="RemoveEntriesAsync(string, IEnumerable{IPAddress}, CancellationToken)"/>
/// removes only lines found in the ledger, so every line the user put in the file stays. Writes are atomic (temporary
/// file and rename in the same directory, mode 0644). Callers serialise operations on one file.
/// </remarks>
public static class HostsFile
{
    private static readonly SearchValues<char> s_forbidden = SearchValues.Create("\t\r\n#\0");

    /// <summary>The suffix of the ledger of added lines, next to the hosts file.</summary>
    public const string LedgerSuffix = ".entries";

    /// <summary>The base content every sandbox's hosts file starts with, in this order, tab separated.</summary>
    public const string BaseContent =
        "127.0.0.1\tlocalhost\n" +
        "::1\tlocalhost ip6-localhost ip6-loopback\n" +
        "fe00::0\tip6-localnet\n" +
        "ff00::0\tip6-mcastprefix\n" +
        "ff02::1\tip6-allnodes\n" +
        "ff02::2\tip6-allrouters\n";

    /// <summary>The content of a new hosts file: <see cref="BaseContent"/>, then one line per extra host, in order.</summary>
    /// <param name="extraHosts">Extra hosts (<c>--add-host</c>).</param>
    /// <returns>The file's content.</returns>
    /// <exception cref="ArgumentException">An entry's name is empty or contains a tab, a line break or a <c>#</c>.</exception>
    public static string Build(IEnumerable<HostEntry> extraHosts)
    {
        ArgumentNullException.ThrowIfNull(extraHosts);
        var builder = new StringBuilder(BaseContent);
        foreach (var entry in extraHosts)
        {
            builder.Append(FormatLine(entry)).Append('\n');
        }

        return builder.ToString();
    }

    /// <summary>Formats one entry as a line without its newline: <c>&lt;address&gt;\t&lt;name&gt;</c>.</summary>
    /// <param name="entry">The entry; its name may hold several names separated by single spaces.</param>
    /// <returns>The line.</returns>
    /// <exception cref="ArgumentException">The name is empty or contains a tab, a line break or a <c>#</c>.</exception>
    public static string FormatLine(HostEntry entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        ArgumentNullException.ThrowIfNull(entry.Address);
        ValidateName(entry.Name);
        return entry.Address + "\t" + entry.Name;
    }

    /// <summary>
    /// The entries a join adds for a container: one for the first IPv4 and one for the first IPv6 address. Names are
    /// <c>&lt;hostname&gt;.&lt;domain&gt; &lt;hostname&gt;</c>; a hostname that is already a dotted name and no domain gives
    /// <c>&lt;fqdn&gt; &lt;first label&gt;</c>; a plain hostname without domain gives just the hostname.
    /// </summary>
    /// <param name="hostname">The container's hostname.</param>
    /// <param name="domain">The container's domain name, or null or empty for none.</param>
    /// <param name="addresses">The endpoint's addresses, in order.</param>
    /// <returns>Zero, one or two entries (IPv4 first).</returns>
    public static IReadOnlyList<HostEntry> ContainerEntries(string hostname, string? domain, IEnumerable<IPAddress> addresses)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(hostname);
        ArgumentNullException.ThrowIfNull(addresses);
        var fqdn = string.IsNullOrEmpty(domain) ? hostname : hostname + "." + domain;
        var dot = fqdn.IndexOf('.', StringComparison.Ordinal);
        var names = dot > 0 ? fqdn + " " + fqdn[..dot] : fqdn;
        ValidateName(names);

        IPAddress? v4 = null;
        IPAddress? v6 = null;
        foreach (var address in addresses)
        {
            if (address.AddressFamily == AddressFamily.InterNetwork)
            {
                v4 ??= address;
            }
            else if (address.AddressFamily == AddressFamily.InterNetworkV6)
            {
                v6 ??= address;
            }
        }

        var entries = new List<HostEntry>(2);
        if (v4 is not null)
        {
            entries.Add(new HostEntry(names, v4));
        }

        if (v6 is not null)
        {
            entries.Add(new HostEntry(names, v6));
        }

        return entries;
    }

    /// <summary>Writes a new hosts file with <see cref="Build"/> content (atomically) and an empty ledger.</summary>
    /// <param name="path">The file.</param>
    /// <param name="extraHosts">Extra hosts.</param>
    /// <param name="cancellationToken">Cancels the write.</param>
    /// <returns>A task that completes when the file is in place.</returns>
    public static async Task WriteAsync(string path, IEnumerable<HostEntry> extraHosts, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var content = Build(extraHosts);
        await AtomicFile.WriteTextAsync(path, content, cancellationToken).ConfigureAwait(false);

        // After the file: a crash in between leaves a ledger naming lines the new file lacks, which is harmless.
        DeleteIfExists(path + LedgerSuffix);
    }

    /// <summary>
    /// Appends a line for each entry not already in the file and records it as added by CnmSharp. A line that is
    /// already there is left alone (and, if CnmSharp did not add it, stays the user's). Repeating the call is harmless.
    /// </summary>
    /// <param name="path">The hosts file; it must exist.</param>
    /// <param name="entries">The entries.</param>
    /// <param name="cancellationToken">Cancels the update.</param>
    /// <returns>How many lines were appended.</returns>
    /// <exception cref="FileNotFoundException">The hosts file does not exist.</exception>
    public static async Task<int> AddEntriesAsync(string path, IEnumerable<HostEntry> entries, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(entries);
        var wanted = entries.Select(FormatLine).Distinct(StringComparer.Ordinal).ToList();
        var content = await AtomicFile.TryReadTextAsync(path, cancellationToken).ConfigureAwait(false)
            ?? throw new FileNotFoundException("The hosts file does not exist.", path);
        var lines = AtomicFile.SplitLines(content);
        var ledgerPath = path + LedgerSuffix;
        var ledger = await ReadLedgerAsync(ledgerPath, cancellationToken).ConfigureAwait(false);

        var present = new HashSet<string>(lines, StringComparer.Ordinal);
        var toAppend = new List<string>();
        var ledgerChanged = false;
        foreach (var line in wanted)
        {
            var ours = ledger.Contains(line, StringComparer.Ordinal);
            if (present.Contains(line))
            {
                // Already there: ours from an earlier (repeated) call, or the user's; either way nothing to do.
                continue;
            }

            toAppend.Add(line);
            if (!ours)
            {
                ledger.Add(line);
                ledgerChanged = true;
            }
        }

        if (toAppend.Count == 0)
        {
            return 0;
        }

        // The ledger first: after a crash between the two writes it names a line the file lacks, which a repeated
        // add appends and a remove ignores. The other order could leave a line of ours that looks like the user's.
        if (ledgerChanged)
        {
            await AtomicFile.WriteTextAsync(ledgerPath, AtomicFile.JoinLines(ledger), cancellationToken).ConfigureAwait(false);
        }

        lines.AddRange(toAppend);
        await AtomicFile.WriteTextAsync(path, AtomicFile.JoinLines(lines), cancellationToken).ConfigureAwait(false);
        return toAppend.Count;
    }

    /// <summary>Removes the lines CnmSharp added for any of these addresses; every other line stays.</summary>
    /// <param name="path">The hosts file; a missing file is not an error.</param>
    /// <param name="addresses">The addresses.</param>
    /// <param name="cancellationToken">Cancels the update.</param>
    /// <returns>How many lines were removed.</returns>
    public static Task<int> RemoveEntriesAsync(string path, IEnumerable<IPAddress> addresses, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(addresses);
        var set = addresses.ToHashSet();
        return RemoveAsync(path, line => TryParseLine(line, out var address, out _) && set.Contains(address), cancellationToken);
    }

    /// <summary>Removes the lines CnmSharp added that carry any of these names (case-insensitive); every other line stays.</summary>
    /// <param name="path">The hosts file; a missing file is not an error.</param>
    /// <param name="names">The names.</param>
    /// <param name="cancellationToken">Cancels the update.</param>
    /// <returns>How many lines were removed.</returns>
    public static Task<int> RemoveEntriesAsync(string path, IEnumerable<string> names, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(names);
        var set = names.ToHashSet(StringComparer.OrdinalIgnoreCase);
        return RemoveAsync(
            path,
            line => TryParseLine(line, out _, out var lineNames) && lineNames.Any(set.Contains),
            cancellationToken);
    }

    private static async Task<int> RemoveAsync(string path, Func<string, bool> selects, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var ledgerPath = path + LedgerSuffix;
        var ledger = await ReadLedgerAsync(ledgerPath, cancellationToken).ConfigureAwait(false);
        var selected = ledger.Where(selects).ToHashSet(StringComparer.Ordinal);
        if (selected.Count == 0)
        {
            return 0;
        }

        var removed = 0;
        var content = await AtomicFile.TryReadTextAsync(path, cancellationToken).ConfigureAwait(false);
        if (content is not null)
        {
            var lines = AtomicFile.SplitLines(content);
            removed = lines.RemoveAll(selected.Contains);
            if (removed > 0)
            {
                await AtomicFile.WriteTextAsync(path, AtomicFile.JoinLines(lines), cancellationToken).ConfigureAwait(false);
            }
        }

        // The file first: after a crash between the two writes the ledger names lines the file lacks, which is harmless.
        ledger.RemoveAll(selected.Contains);
        if (ledger.Count == 0)
        {
            DeleteIfExists(ledgerPath);
        }
        else
        {
            await AtomicFile.WriteTextAsync(ledgerPath, AtomicFile.JoinLines(ledger), cancellationToken).ConfigureAwait(false);
        }

        return removed;
    }

    private static async Task<List<string>> ReadLedgerAsync(string ledgerPath, CancellationToken cancellationToken)
    {
        var content = await AtomicFile.TryReadTextAsync(ledgerPath, cancellationToken).ConfigureAwait(false);
        return content is null ? [] : AtomicFile.SplitLines(content).Where(l => l.Length > 0).ToList();
    }

    private static bool TryParseLine(string line, out IPAddress address, out string[] names)
    {
        var tab = line.IndexOf('\t', StringComparison.Ordinal);
        if (tab > 0 && IPAddress.TryParse(line.AsSpan(0, tab), out var parsed))
        {
            address = parsed;
            names = line[(tab + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
            return true;
        }

        address = IPAddress.None;
        names = [];
        return false;
    }

    private static void ValidateName(string name)
    {
        if (string.IsNullOrWhiteSpace(name) || name.AsSpan().IndexOfAny(s_forbidden) >= 0 || name.StartsWith(' ') ||
            name.EndsWith(' ') || name.Contains("  ", StringComparison.Ordinal))
        {
            throw new ArgumentException(
                $"'{name}' is not a valid hosts-file name list (names separated by single spaces, no tabs, line breaks or '#').",
                nameof(name));
        }
    }

    private static void DeleteIfExists(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (DirectoryNotFoundException)
        {
        }
    }
}
