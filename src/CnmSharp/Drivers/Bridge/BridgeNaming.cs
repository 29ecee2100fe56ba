using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;

namespace CnmSharp.Drivers.Bridge;

/// <summary>Deterministic names and addresses of endpoints: every call can be repeated after a crash and finds what
/// the previous attempt made.</summary>
internal static class BridgeNaming
{
    /// <summary>The host end of an endpoint's veth: <c>veth</c> and the first 7 characters of the endpoint id.</summary>
    public static string HostVeth(string endpointId) => "veth" + Short(endpointId);

    /// <summary>The container end, created inside the sandbox (the core renames it <c>eth&lt;N&gt;</c>):
    /// <c>vc</c> and the first 7 characters of the endpoint id.</summary>
    public static string ContainerVeth(string endpointId) => "vc" + Short(endpointId);

    /// <summary>The MAC Docker derives from an IPv4 address: <c>02:42:</c> and the 4 octets.</summary>
    public static PhysicalAddress MacFromIPv4(IPAddress address)
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

    /// <summary>An IPv6 address in <paramref name="subnet"/> whose last 48 bits are the MAC (libnetwork's rule); the
    /// subnet needs at least 48 host bits.</summary>
    public static IPAddress? IPv6FromMac(IPNetwork subnet, PhysicalAddress mac)
    {
        ArgumentNullException.ThrowIfNull(mac);
        if (subnet.BaseAddress.AddressFamily != AddressFamily.InterNetworkV6 || subnet.PrefixLength > 80)
        {
            return null;
        }

        var bytes = subnet.BaseAddress.GetAddressBytes();
        mac.GetAddressBytes().CopyTo(bytes, 10);
        return new IPAddress(bytes);
    }

    public static string FormatMac(PhysicalAddress mac) =>
        string.Join(':', mac.GetAddressBytes().Select(b => b.ToString("x2", System.Globalization.CultureInfo.InvariantCulture)));

    public static PhysicalAddress ParseMac(string text) => PhysicalAddress.Parse(text);

    /// <summary>A random locally administered unicast MAC (for bridges, so a port cannot change the bridge's MAC).</summary>
    public static PhysicalAddress RandomMac()
    {
        var bytes = System.Security.Cryptography.RandomNumberGenerator.GetBytes(6);
        bytes[0] = (byte)((bytes[0] & 0xFE) | 0x02);
        return new PhysicalAddress(bytes);
    }

    private static string Short(string id)
    {
        ArgumentException.ThrowIfNullOrEmpty(id);
        Span<char> buffer = stackalloc char[7];
        var n = 0;
        foreach (var c in id)
        {
            if (char.IsAsciiLetterOrDigit(c))
            {
                buffer[n++] = char.ToLowerInvariant(c);
                if (n == buffer.Length)
                {
                    break;
                }
            }
        }

        return n == 0 ? throw new ArgumentException($"endpoint id \"{id}\" has no letters or digits", nameof(id)) : new string(buffer[..n]);
    }
}
