using System.Net;
using System.Net.Sockets;

namespace CnmSharp.Ipam.Default;

/// <summary>Address arithmetic on <see cref="UInt128"/> (IPv4 addresses use the low 32 bits).</summary>
internal static class IpMath
{
    /// <summary>The number of bits of the family of <paramref name="address"/>.</summary>
    public static int Bits(IPAddress address) => address.AddressFamily == AddressFamily.InterNetwork ? 32 : 128;

    /// <summary>The address as a big-endian integer.</summary>
    public static UInt128 ToUInt128(IPAddress address)
    {
        Span<byte> bytes = stackalloc byte[16];
        if (!address.TryWriteBytes(bytes, out var written))
        {
            throw new ArgumentException("unwritable address", nameof(address));
        }

        UInt128 value = 0;
        for (var i = 0; i < written; i++)
        {
            value = (value << 8) | bytes[i];
        }

        return value;
    }

    /// <summary>The address of an integer value.</summary>
    public static IPAddress FromUInt128(UInt128 value, bool ipv6)
    {
        var length = ipv6 ? 16 : 4;
        Span<byte> bytes = stackalloc byte[length];
        for (var i = length - 1; i >= 0; i--)
        {
            bytes[i] = (byte)(value & 0xFF);
            value >>= 8;
        }

        return new IPAddress(bytes);
    }

    /// <summary>The offset of the last address of a subnet (its size minus one).</summary>
    public static UInt128 LastOffset(IPNetwork network)
    {
        var hostBits = Bits(network.BaseAddress) - network.PrefixLength;
        return hostBits >= 128 ? UInt128.MaxValue : (UInt128.One << hostBits) - 1;
    }

    /// <summary>The first and last address of a subnet as integers.</summary>
    public static (UInt128 First, UInt128 Last) Range(IPNetwork network)
    {
        var first = ToUInt128(network.BaseAddress);
        return (first, first + LastOffset(network));
    }

    /// <summary>The subnet of <paramref name="prefixLength"/> starting at <paramref name="first"/>.</summary>
    public static IPNetwork Network(UInt128 first, int prefixLength, bool ipv6) =>
        new(FromUInt128(first, ipv6), prefixLength);

    /// <summary>Canonical CIDR text of a subnet.</summary>
    public static string Format(IPNetwork network) => network.ToString();
}
