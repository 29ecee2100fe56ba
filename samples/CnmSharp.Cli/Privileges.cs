using System.Globalization;

namespace CnmSharp.Cli;

/// <summary>
/// The capabilities every command that opens the store needs, checked before anything is opened or created: without
/// them the controller cannot work (namespaces, links, mounts), and a half-started one would leave store files behind.
/// </summary>
internal static class Privileges
{
    /// <summary>CAP_NET_ADMIN: links, addresses, routes, firewall rules.</summary>
    public const int NetAdmin = 12;

    /// <summary>CAP_SYS_ADMIN: network namespaces and the mounts that keep them.</summary>
    public const int SysAdmin = 21;

    /// <summary>The one line printed when they are missing.</summary>
    public const string Message = "needs root: CAP_NET_ADMIN and CAP_SYS_ADMIN are required (run cnm as root)";

    /// <summary>Throws a <see cref="CliException"/> (exit code 1) unless the effective capabilities of this process hold
    /// CAP_NET_ADMIN and CAP_SYS_ADMIN (read from <c>CapEff</c> in <c>/proc/self/status</c>).</summary>
    public static void Require()
    {
        if (!HasRequired(ReadEffective()))
        {
            throw new CliException(Message);
        }
    }

    /// <summary>Whether a capability mask holds both capabilities.</summary>
    internal static bool HasRequired(ulong effective) =>
        (effective & (1UL << NetAdmin)) != 0 && (effective & (1UL << SysAdmin)) != 0;

    /// <summary>The effective capability mask; 0 when it cannot be read.</summary>
    private static ulong ReadEffective()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/self/status"))
            {
                if (line.StartsWith("CapEff:", StringComparison.Ordinal) &&
                    ulong.TryParse(line.AsSpan("CapEff:".Length).Trim(), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var mask))
                {
                    return mask;
                }
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return 0;
        }

        return 0;
    }
}

/// <summary>Text the CLI prints that came from a user: control characters escaped, so a name cannot break a line, a
/// table or the terminal.</summary>
internal static class CliText
{
    /// <summary><paramref name="value"/> with every control character (and U+2028, U+2029) written as an escape:
    /// <c>\n</c>, <c>\r</c>, <c>\t</c>, otherwise <c>\xHH</c> or <c>\uHHHH</c>. Other characters are unchanged.</summary>
    public static string Escape(string? value)
    {
        if (string.IsNullOrEmpty(value) || !value.Any(NeedsEscape))
        {
            return value ?? "";
        }

        var text = new System.Text.StringBuilder(value.Length + 8);
        foreach (var c in value)
        {
            if (!NeedsEscape(c))
            {
                text.Append(c);
                continue;
            }

            text.Append(c switch
            {
                '\n' => "\\n",
                '\r' => "\\r",
                '\t' => "\\t",
                _ when c <= 0xff => "\\x" + ((int)c).ToString("x2", CultureInfo.InvariantCulture),
                _ => "\\u" + ((int)c).ToString("x4", CultureInfo.InvariantCulture),
            });
        }

        return text.ToString();
    }

    private static bool NeedsEscape(char c) => char.IsControl(c) || c is '\u2028' or '\u2029';
}
