using System.Buffers;
using System.Diagnostics.CodeAnalysis;
using System.Net;
using System.Net.Sockets;

namespace CnmSharp;

/// <summary>
/// Strict parsing of an IP address a user wrote. <see cref="IPAddress.Parse(string)"/> follows <c>inet_aton</c> and
/// accepts legacy forms that nobody means in a network configuration: <c>1.2.3</c> (read as 1.2.0.3), <c>1</c>,
/// <c>0x7f.1</c>, <c>010.0.0.1</c> (octal), and IPv6 with a scope id (<c>fe80::1%1</c>). Every address CnmSharp takes
/// as text goes through this parser instead.
/// </summary>
/// <remarks>
/// <list type="bullet">
/// <item>IPv4: exactly four decimal parts, each 0 to 255, without leading zeros (<c>010.0.0.1</c> is refused, as Go's
/// <c>net.ParseIP</c> refuses it since Go 1.17, because other parsers read it as octal).</item>
/// <item>IPv6: the standard text of RFC 4291 section 2.2 (hexadecimal groups of at most four digits, one <c>::</c>,
/// an optional dotted-quad tail that follows the IPv4 rule). No brackets, no prefix length.</item>
/// <item>A scope id (<c>%eth0</c>, <c>%2</c>) only on IPv6 and only when the caller allows it.</item>
/// <item>No white space anywhere.</item>
/// </list>
/// </remarks>
public static class IPAddressText
{
    /// <summary>Parses an address strictly (see the type's remarks).</summary>
    /// <param name="text">The text.</param>
    /// <param name="address">The address, or null when the text is not one.</param>
    /// <param name="allowScopeId">Accept an IPv6 scope id (<c>fe80::1%eth0</c>); refused when false.</param>
    /// <returns>True when the text is a valid address.</returns>
    public static bool TryParseStrict(ReadOnlySpan<char> text, [NotNullWhen(true)] out IPAddress? address, bool allowScopeId = false)
    {
        address = null;
        if (text.IsEmpty || text.Length > 64)
        {
            return false;
        }

        if (!text.Contains(':'))
        {
            return IsStrictIPv4(text) && IPAddress.TryParse(text, out address) && address.AddressFamily == AddressFamily.InterNetwork;
        }

        var percent = text.IndexOf('%');
        var body = percent < 0 ? text : text[..percent];
        if (percent >= 0)
        {
            var zone = text[(percent + 1)..];
            if (!allowScopeId || zone.IsEmpty || zone.Length > 15 || zone.IndexOfAnyExcept(ZoneCharacters) >= 0)
            {
                return false;
            }
        }

        if (!IsStrictIPv6(body) || !IPAddress.TryParse(text, out var parsed) || parsed.AddressFamily != AddressFamily.InterNetworkV6)
        {
            return false;
        }

        if (parsed.ScopeId != 0 && !allowScopeId)
        {
            return false;
        }

        address = parsed;
        return true;
    }

    /// <summary>Parses an address strictly (see the type's remarks).</summary>
    /// <param name="text">The text.</param>
    /// <param name="address">The address, or null when the text is not one.</param>
    /// <param name="allowScopeId">Accept an IPv6 scope id; refused when false.</param>
    /// <returns>True when the text is a valid address.</returns>
    public static bool TryParseStrict([NotNullWhen(true)] string? text, [NotNullWhen(true)] out IPAddress? address, bool allowScopeId = false)
    {
        address = null;
        return text is not null && TryParseStrict(text.AsSpan(), out address, allowScopeId);
    }

    /// <summary>Parses an address strictly (see the type's remarks).</summary>
    /// <param name="text">The text.</param>
    /// <param name="subject">What the address is, for the error (for example <c>option host_binding_ipv4</c>).</param>
    /// <param name="allowScopeId">Accept an IPv6 scope id; refused when false.</param>
    /// <returns>The address.</returns>
    /// <exception cref="CnmInvalidArgumentException">The text is not a valid address (code
    /// <see cref="CnmErrorCodes.InvalidAddress"/>).</exception>
    public static IPAddress ParseStrict(string? text, string subject = "address", bool allowScopeId = false) =>
        TryParseStrict(text, out var address, allowScopeId)
            ? address
            : throw new CnmInvalidArgumentException(
                CnmErrorCodes.InvalidAddress,
                $"{subject} \"{Printable(text)}\"",
                allowScopeId
                    ? "not an IP address: use four decimal parts 0-255 without leading zeros (IPv4) or standard IPv6 text"
                    : "not an IP address: use four decimal parts 0-255 without leading zeros (IPv4) or standard IPv6 text without a scope id");

    /// <summary>True for an IPv6 address that carries a scope id (<c>fe80::1%2</c>).</summary>
    /// <param name="address">The address.</param>
    /// <returns>True when scoped.</returns>
    public static bool HasScopeId(IPAddress address)
    {
        ArgumentNullException.ThrowIfNull(address);
        return address.AddressFamily == AddressFamily.InterNetworkV6 && address.ScopeId != 0;
    }

    private static readonly SearchValues<char> ZoneCharacters = SearchValues.Create("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-@");

    private static readonly SearchValues<char> HexDigits = SearchValues.Create("0123456789abcdefABCDEF");

    private static bool IsStrictIPv4(ReadOnlySpan<char> text)
    {
        var parts = 0;
        foreach (var range in text.Split('.'))
        {
            var part = text[range];
            if (++parts > 4 || part.IsEmpty || part.Length > 3 || part.IndexOfAnyExceptInRange('0', '9') >= 0 || (part.Length > 1 && part[0] == '0'))
            {
                return false;
            }

            var value = 0;
            foreach (var c in part)
            {
                value = (value * 10) + (c - '0');
            }

            if (value > 255)
            {
                return false;
            }
        }

        return parts == 4;
    }

    private static bool IsStrictIPv6(ReadOnlySpan<char> text)
    {
        // The groups before an optional dotted-quad tail: hexadecimal, at most four digits each; "::" at most once.
        var lastColon = text.LastIndexOf(':');
        if (lastColon < 0)
        {
            return false;
        }

        var tail = text[(lastColon + 1)..];
        var groups = text;
        if (tail.Contains('.'))
        {
            if (!IsStrictIPv4(tail))
            {
                return false;
            }

            groups = text[..(lastColon + 1)];
        }

        var doubleColon = groups.IndexOf("::", StringComparison.Ordinal);
        if (doubleColon >= 0 && groups[(doubleColon + 1)..].IndexOf("::", StringComparison.Ordinal) >= 0)
        {
            return false;
        }

        foreach (var range in groups.Split(':'))
        {
            var group = groups[range];
            if (group.Length > 4 || group.IndexOfAnyExcept(HexDigits) >= 0)
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>A value as it may appear in an error message: control characters escaped, long values cut.</summary>
    internal static string Printable(string? value)
    {
        if (value is null)
        {
            return "(null)";
        }

        var shown = value.Length > 80 ? value[..80] + "..." : value;
        return string.Concat(shown.Select(c => char.IsControl(c) ? "\\x" + ((int)c).ToString("x2", System.Globalization.CultureInfo.InvariantCulture) : c.ToString()));
    }
}
