using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace CnmSharp;

/// <summary>
/// An address with its prefix length, as an interface carries it (<c>172.18.0.2/16</c>). Unlike
/// <see cref="IPNetwork"/>, host bits are kept; <see cref="Network"/> gives the subnet.
/// </summary>
public readonly record struct CidrAddress : ISpanFormattable
{
    /// <summary>Creates a CIDR address.</summary>
    /// <param name="address">The address.</param>
    /// <param name="prefixLength">The prefix length: 0 to 32 for IPv4, 0 to 128 for IPv6.</param>
    /// <exception cref="ArgumentOutOfRangeException">The prefix length does not fit the family.</exception>
    public CidrAddress(IPAddress address, int prefixLength)
    {
        ArgumentNullException.ThrowIfNull(address);
        ArgumentOutOfRangeException.ThrowIfNegative(prefixLength);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(prefixLength, address.AddressFamily == AddressFamily.InterNetwork ? 32 : 128);
        Address = address;
        PrefixLength = prefixLength;
    }

    /// <summary>The address.</summary>
    public IPAddress Address { get; }

    /// <summary>The prefix length.</summary>
    public int PrefixLength { get; }

    /// <summary>True for IPv6.</summary>
    public bool IsIPv6 => Address.AddressFamily == AddressFamily.InterNetworkV6;

    /// <summary>The subnet the address belongs to.</summary>
    public IPNetwork Network => IPNetworks.Containing(Address, PrefixLength);

    /// <summary>Parses <c>ip/len</c>; a bare address gets the full-length prefix. The address is parsed strictly
    /// (<see cref="IPAddressText.TryParseStrict(ReadOnlySpan{char}, out IPAddress?, bool)"/>, no scope id) and the
    /// prefix length is decimal without leading zeros.</summary>
    /// <param name="text">The text.</param>
    /// <exception cref="CnmInvalidArgumentException">The text is not a CIDR address.</exception>
    public static CidrAddress Parse(string text) =>
        TryParse(text, out var result)
            ? result
            : throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidAddress, $"address \"{IPAddressText.Printable(text)}\"", "not a valid IP address or CIDR");

    /// <summary>Tries to parse <c>ip/len</c>; a bare address gets the full-length prefix. Strict, as <see cref="Parse"/>.</summary>
    /// <param name="text">The text.</param>
    /// <param name="result">The parsed address.</param>
    /// <returns>True when it parsed.</returns>
    public static bool TryParse([NotNullWhen(true)] string? text, out CidrAddress result)
    {
        result = default;
        if (string.IsNullOrWhiteSpace(text))
        {
            return false;
        }

        var span = text.AsSpan().Trim();
        var slash = span.IndexOf('/');
        var addressPart = slash < 0 ? span : span[..slash];

        // Strict: dotted-quad IPv4 without leading zeros (no inet_aton short forms like "10.1"), standard IPv6 text,
        // and no zone id (it has no place in a CIDR).
        if (!IPAddressText.TryParseStrict(addressPart, out var address))
        {
            return false;
        }

        var max = address.AddressFamily == AddressFamily.InterNetwork ? 32 : 128;
        var length = max;
        if (slash >= 0)
        {
            var lengthText = span[(slash + 1)..];
            if (lengthText.IsEmpty || lengthText.Length > 3 || (lengthText.Length > 1 && lengthText[0] == '0')
                || !int.TryParse(lengthText, NumberStyles.None, CultureInfo.InvariantCulture, out length) || length > max)
            {
                return false;
            }
        }

        result = new CidrAddress(address, length);
        return true;
    }

    /// <inheritdoc />
    public override string ToString() => ToString(null, null);

    /// <inheritdoc />
    public string ToString(string? format, IFormatProvider? formatProvider) =>
        string.Create(CultureInfo.InvariantCulture, $"{Address}/{PrefixLength}");

    /// <inheritdoc />
    public bool TryFormat(Span<char> destination, out int charsWritten, ReadOnlySpan<char> format, IFormatProvider? provider) =>
        destination.TryWrite(CultureInfo.InvariantCulture, $"{Address}/{PrefixLength}", out charsWritten);
}

/// <summary>Helpers for <see cref="IPNetwork"/> used across the contracts.</summary>
public static class IPNetworks
{
    /// <summary>The subnet of the given length that contains <paramref name="address"/> (host bits cleared).</summary>
    /// <param name="address">Any address in the subnet.</param>
    /// <param name="prefixLength">The prefix length.</param>
    /// <returns>The subnet.</returns>
    public static IPNetwork Containing(IPAddress address, int prefixLength)
    {
        ArgumentNullException.ThrowIfNull(address);
        Span<byte> bytes = stackalloc byte[16];
        if (!address.TryWriteBytes(bytes, out var written))
        {
            throw new ArgumentException("unwritable address", nameof(address));
        }

        bytes = bytes[..written];
        for (var bit = prefixLength; bit < written * 8; bit++)
        {
            bytes[bit / 8] &= (byte)~(0x80 >> (bit % 8));
        }

        return new IPNetwork(new IPAddress(bytes), prefixLength);
    }

    /// <summary>Parses a subnet in CIDR form; host bits must be zero unless <paramref name="allowHostBits"/>.</summary>
    /// <param name="text">The text, for example <c>10.1.0.0/16</c>.</param>
    /// <param name="allowHostBits">When true, <c>10.1.2.3/16</c> is accepted as <c>10.1.0.0/16</c>.</param>
    /// <param name="result">The subnet.</param>
    /// <returns>True when it parsed.</returns>
    public static bool TryParse([NotNullWhen(true)] string? text, bool allowHostBits, out IPNetwork result)
    {
        result = default;
        if (!CidrAddress.TryParse(text, out var cidr) || !text.Contains('/', StringComparison.Ordinal))
        {
            return false;
        }

        result = cidr.Network;
        return allowHostBits || result.BaseAddress.Equals(cidr.Address);
    }

    /// <summary>True when the two subnets share at least one address.</summary>
    /// <param name="a">One subnet.</param>
    /// <param name="b">The other.</param>
    /// <returns>True when they overlap.</returns>
    public static bool Overlaps(this IPNetwork a, IPNetwork b) =>
        a.BaseAddress.AddressFamily == b.BaseAddress.AddressFamily && (a.Contains(b.BaseAddress) || b.Contains(a.BaseAddress));

    /// <summary>True for an IPv6 subnet.</summary>
    /// <param name="network">The subnet.</param>
    /// <returns>True for IPv6.</returns>
    public static bool IsIPv6(this IPNetwork network) => network.BaseAddress.AddressFamily == AddressFamily.InterNetworkV6;
}
