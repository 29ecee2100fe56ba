using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;

namespace CnmSharp.Drivers.Bridge;

/// <summary>Names and addresses of endpoints. Interface names are chosen once, when the endpoint is created, and kept
/// in the driver's record, so every later call (a repeated join, a delete, recovery) finds what the previous attempt
/// made.</summary>
internal static class BridgeNaming
{
    /// <summary>The kernel's limit on an interface name (IFNAMSIZ less the terminating zero).</summary>
    public const int MaxInterfaceNameLength = 15;

    /// <summary>Prefix of the host end of a veth.</summary>
    public const string HostVethPrefix = "veth";

    /// <summary>Prefix of the container end (created inside the sandbox; the core renames it <c>eth&lt;N&gt;</c>).</summary>
    public const string ContainerVethPrefix = "vc";

    /// <summary>Characters of the endpoint id in the first candidate name (as Docker: <c>veth</c> + 7).</summary>
    public const int ShortIdLength = 7;

    private const int MaxSuffixLength = MaxInterfaceNameLength - 4; // HostVethPrefix.Length

    /// <summary>
    /// Chooses the names of an endpoint's veth: host end <c>veth</c> + S, container end <c>vc</c> + S, where S is the
    /// first suffix whose two names are both absent from <paramref name="taken"/>. Candidates, in order: the first 7
    /// letters or digits of the id (lower case), then 8, 9, 10 and 11 of them (the 15-byte limit), then the first
    /// characters of the id followed by <c>-1</c>, <c>-2</c>, ... (shortened so the name stays within 15 bytes). A pure
    /// function of its arguments; it always finds a name, since the candidates are all distinct and
    /// <paramref name="taken"/> is finite.
    /// </summary>
    /// <param name="endpointId">The endpoint id (only its letters and digits are used).</param>
    /// <param name="taken">Interface names that must not be chosen (host and container ends of every other endpoint,
    /// and names the kernel refused).</param>
    /// <returns>The host and container names.</returns>
    public static (string Host, string Container) ChooseVethNames(string endpointId, IReadOnlySet<string> taken)
    {
        ArgumentNullException.ThrowIfNull(taken);
        var digits = Alphanumerics(endpointId, MaxSuffixLength);
        for (var length = Math.Min(ShortIdLength, digits.Length); length <= digits.Length; length++)
        {
            if (TryCandidate(digits[..length], taken) is { } names)
            {
                return names;
            }
        }

        for (var counter = 1; ; counter++)
        {
            var tag = "-" + counter.ToString(System.Globalization.CultureInfo.InvariantCulture);
            var keep = Math.Min(digits.Length, MaxSuffixLength - tag.Length);
            if (keep < 1)
            {
                // Unreachable in practice (it would take 10^9 taken names): refuse rather than exceed IFNAMSIZ.
                throw new CnmUnavailableException(CnmErrorCodes.KernelError, $"endpoint {endpointId}", "no free interface name is left");
            }

            if (TryCandidate(digits[..keep] + tag, taken) is { } names)
            {
                return names;
            }
        }
    }

    private static (string Host, string Container)? TryCandidate(string suffix, IReadOnlySet<string> taken)
    {
        var host = HostVethPrefix + suffix;
        var container = ContainerVethPrefix + suffix;
        return taken.Contains(host) || taken.Contains(container) ? null : (host, container);
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


    public static PhysicalAddress ParseMac(string text) => PhysicalAddress.Parse(text);

    /// <summary>A random locally administered unicast MAC (for bridges, so a port cannot change the bridge's MAC).</summary>
    public static PhysicalAddress RandomMac()
    {
        var bytes = new byte[6];
        CnmSharp.Core.Ids.FillRandom(bytes);
        bytes[0] = (byte)((bytes[0] & 0xFE) | 0x02);
        return new PhysicalAddress(bytes);
    }

    private static string Alphanumerics(string id, int max)
    {
        ArgumentException.ThrowIfNullOrEmpty(id);
        Span<char> buffer = stackalloc char[max];
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
