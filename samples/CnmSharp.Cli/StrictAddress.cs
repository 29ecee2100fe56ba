using System.Net;
using System.Net.Sockets;

namespace CnmSharp.Cli;

/// <summary>
/// Addresses from the command line, parsed by the library's strict rules (<see cref="IPAddressText"/>,
/// <see cref="IPNetworks.TryParse(string?, bool, out IPNetwork)"/>): no legacy IPv4 short forms, no IPv6 zone. Here a
/// refusal is a <see cref="UsageException"/> (exit code 2), since the command line alone shows it.
/// </summary>
internal static class StrictAddress
{
    /// <summary>Parses an IPv4 or IPv6 address, or returns null.</summary>
    public static IPAddress? TryParse(string? text) => IPAddressText.TryParseStrict(text, out var address) ? address : null;

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
    public static IPNetwork ParseNetwork(string text, string option) =>
        IPNetworks.TryParse(text, allowHostBits: false, out var network) ? network : throw new UsageException($"{option} {text}: invalid CIDR");
}

/// <summary>
/// The library's own rules for option values (<see cref="EndpointCreateOptions.Validate"/>,
/// <see cref="SandboxCreateOptions.Validate"/>), applied before a controller is opened: a refusal is a
/// <see cref="UsageException"/> (exit code 2) naming the option and value, and nothing has been made.
/// </summary>
internal static class LibraryRules
{
    public static void Check(string what, Action validate)
    {
        try
        {
            validate();
        }
        catch (CnmInvalidArgumentException ex)
        {
            throw new UsageException($"{what}: {ex.Reason}");
        }
    }
}
