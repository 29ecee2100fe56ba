using System.Globalization;
using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;

namespace CnmSharp.Drivers.Common;

/// <summary>The MAC rules the drivers share: Docker's MAC derived from an IPv4 address, and the text form kept in
/// driver records.</summary>
internal static class MacAddresses
{
    /// <summary><c>02:42:</c> and the 4 octets of the IPv4 address (libnetwork's <c>GenerateMACFromIP</c>).</summary>
    /// <param name="address">An IPv4 address.</param>
    public static PhysicalAddress FromIPv4(IPAddress address)
    {
        ArgumentNullException.ThrowIfNull(address);
        if (address.AddressFamily != AddressFamily.InterNetwork)
        {
            throw new ArgumentException("an IPv4 address is needed", nameof(address));
        }

        var bytes = new byte[6];
        bytes[0] = 0x02;
        bytes[1] = 0x42;
        address.TryWriteBytes(bytes.AsSpan(2), out _);
        return new PhysicalAddress(bytes);
    }

    /// <summary>Lower-case hex octets separated by colons (<c>02:42:0a:00:00:05</c>).</summary>
    /// <param name="mac">The address.</param>
    public static string Format(PhysicalAddress mac) =>
        string.Join(':', mac.GetAddressBytes().Select(b => b.ToString("x2", CultureInfo.InvariantCulture)));
}
