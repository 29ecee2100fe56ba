using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;

namespace CnmSharp.Cli;

/// <summary>
/// Addresses from the command line, parsed strictly: an IPv4 address is four dotted decimal parts (0 to 255, no
/// leading zeros), so the legacy short forms <see cref="IPAddress.TryParse(string?, out IPAddress?)"/> accepts
/// (<c>1.2.3</c> read as 1.2.0.3, <c>10</c>, <c>0x0a.0.0.1</c>, octal <c>010.0.0.1</c>) are refused; an IPv6 address has
/// no zone (<c>%eth0</c>). A refusal is a <see cref="UsageException"/> (exit code 2).
/// </summary>
internal static partial class StrictAddress
{
    [GeneratedRegex(@"^(?:0|[1-9][0-9]{0,2})(?:\.(?:0|[1-9][0-9]{0,2})){3}\z", RegexOptions.CultureInvariant)]
    private static partial Regex DottedQuad();

    [GeneratedRegex(@"^[0-9A-Fa-f:.]+\z", RegexOptions.CultureInvariant)]
    private static partial Regex IPv6Text();

    [GeneratedRegex(@"^(?:0|[1-9][0-9]{0,2})\z", RegexOptions.CultureInvariant)]
    private static partial Regex PrefixLength();

    /// <summary>Parses an IPv4 or IPv6 address, or returns null.</summary>
    public static IPAddress? TryParse(string? text)
    {
        if (string.IsNullOrEmpty(text) || !IPAddress.TryParse(text, out var address))
        {
            return null;
        }

        return address.AddressFamily switch
        {
            AddressFamily.InterNetwork when DottedQuad().IsMatch(text) => address,
            AddressFamily.InterNetworkV6 when text.Contains(':', StringComparison.Ordinal) && IPv6Text().IsMatch(text) => address,
            _ => null,
        };
    }

    /// <summary>An address of <paramref name="family"/> (any family when null), or a usage error naming the option.</summary>
    public static IPAddress Parse(string text, string option, AddressFamily? family = null)
    {
        var address = TryParse(text) ?? throw new UsageException($"{option} {text}: invalid IP address");
        if (family is { } f && address.AddressFamily != f)
        {
            throw new UsageException($"{option} {text}: not an {(f == AddressFamily.InterNetwork ? "IPv4" : "IPv6")} address");
        }

        return address;
    }

    /// <summary>A network in CIDR form (address strict, prefix length in range, no host bits set), or a usage error.</summary>
    public static IPNetwork ParseNetwork(string text, string option)
    {
        var slash = text.LastIndexOf('/');
        if (slash > 0 && TryParse(text[..slash]) is { } address && PrefixLength().IsMatch(text[(slash + 1)..]) &&
            int.Parse(text[(slash + 1)..], CultureInfo.InvariantCulture) <= (address.AddressFamily == AddressFamily.InterNetwork ? 32 : 128) &&
            IPNetwork.TryParse(text, out var network))
        {
            return network;
        }

        throw new UsageException($"{option} {text}: invalid CIDR");
    }
}
