using System.Globalization;
using System.Net;
using System.Net.Sockets;
using CnmSharp.Drivers;

namespace CnmSharp.Cli;

/// <summary>
/// <c>-p/--publish</c> values in Docker's syntax, <c>[IP:][HOSTPORT[-END]:]CONTAINERPORT[-END][/tcp|udp|sctp]</c>, with
/// Docker's rules (go-connections <c>nat.ParsePortSpec</c>): the host address may be in brackets (<c>[::1]:8080:80</c>);
/// a missing host port is ephemeral (0); a container port range takes a host port range of the same length (one
/// binding per port), and a single container port takes a host port range as the range to pick its host port from.
/// Addresses go through the library's strict parser (<see cref="StrictAddress"/>). Every refusal is a
/// <see cref="UsageException"/>.
/// </summary>
internal static class PortSpec
{
    /// <summary>The bindings one <c>-p</c> value stands for.</summary>
    public static IReadOnlyList<PortBinding> Parse(string spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var (ipText, hostText, containerText) = SplitParts(spec);
        var slash = containerText.IndexOf('/', StringComparison.Ordinal);
        var protocolText = slash < 0 ? "tcp" : containerText[(slash + 1)..];
        containerText = slash < 0 ? containerText : containerText[..slash];
        if (containerText.Length == 0)
        {
            throw Bad(spec, "no container port");
        }

        var protocol = protocolText.ToLowerInvariant() switch
        {
            "tcp" or "" => TransportProtocol.Tcp,
            "udp" => TransportProtocol.Udp,
            "sctp" => TransportProtocol.Sctp,
            _ => throw Bad(spec, $"unknown protocol \"{protocolText}\" (tcp, udp or sctp)"),
        };

        var hostIP = IPAddress.Any;
        if (ipText.Length > 0)
        {
            if (ipText[0] == '[')
            {
                if (ipText.Length < 3 || ipText[^1] != ']')
                {
                    throw Bad(spec, $"invalid host address \"{ipText}\"");
                }

                ipText = ipText[1..^1];
            }

            hostIP = StrictAddress.TryParse(ipText) ?? throw Bad(spec, $"invalid host address \"{ipText}\"");
        }

        var (containerStart, containerEnd) = Range(containerText, spec, "container port");
        if (containerStart == 0)
        {
            throw Bad(spec, "the container port is 0");
        }

        var hostStart = 0;
        var hostEnd = 0;
        if (hostText.Length > 0)
        {
            (hostStart, hostEnd) = Range(hostText, spec, "host port");
            if (containerEnd - containerStart != hostEnd - hostStart && containerEnd != containerStart)
            {
                throw Bad(spec, $"the host port range {hostText} and the container port range {containerText} differ in length");
            }

            if (hostStart == 0 && hostEnd != 0)
            {
                throw Bad(spec, $"the host port range {hostText} starts at 0");
            }
        }

        var count = containerEnd - containerStart + 1;
        var bindings = new List<PortBinding>(count);
        for (var i = 0; i < count; i++)
        {
            var hostPort = hostText.Length == 0 || hostStart == 0 ? 0 : hostStart + i;
            var hostPortEnd = count == 1 && hostStart != hostEnd ? hostEnd : 0;
            bindings.Add(new PortBinding(protocol, (ushort)(containerStart + i), hostIP, (ushort)hostPort, (ushort)hostPortEnd));
        }

        return bindings;
    }

    /// <summary>A binding as <c>docker port</c> prints it: <c>80/tcp -> 0.0.0.0:8080</c>, <c>80/tcp -> [::]:8080</c>.</summary>
    public static string Format(PortBinding binding) =>
        $"{Key(binding)} -> {HostAddress(binding.HostIP)}:{HostPort(binding)}";

    /// <summary>The container port as Docker keys it: <c>80/tcp</c>.</summary>
    public static string Key(PortBinding binding) =>
        string.Create(CultureInfo.InvariantCulture, $"{binding.ContainerPort}/{binding.Protocol.ToString().ToLowerInvariant()}");

    /// <summary>The host port as Docker shows it: <c>8080</c>, a range not resolved yet as <c>8000-8010</c>, and
    /// ephemeral not chosen yet as the empty string.</summary>
    public static string HostPort(PortBinding binding) =>
        binding.HostPort == 0 ? ""
        : binding.HostPortEnd > binding.HostPort ? string.Create(CultureInfo.InvariantCulture, $"{binding.HostPort}-{binding.HostPortEnd}")
        : binding.HostPort.ToString(CultureInfo.InvariantCulture);

    private static string HostAddress(IPAddress address) =>
        address.AddressFamily == AddressFamily.InterNetworkV6 ? $"[{address}]" : address.ToString();

    /// <summary>Docker's <c>splitParts</c>: the last part is the container port, the one before it the host port, and
    /// everything before those the host address (so an IPv6 address needs no brackets).</summary>
    private static (string Ip, string Host, string Container) SplitParts(string spec)
    {
        var parts = spec.Split(':');
        return parts.Length switch
        {
            1 => ("", "", parts[0]),
            2 => ("", parts[0], parts[1]),
            _ => (string.Join(':', parts[..^2]), parts[^2], parts[^1]),
        };
    }

    private static (int Start, int End) Range(string text, string spec, string what)
    {
        var dash = text.IndexOf('-', StringComparison.Ordinal);
        var start = Port(dash < 0 ? text : text[..dash], spec, what);
        var end = dash < 0 ? start : Port(text[(dash + 1)..], spec, what);
        if (end < start)
        {
            throw Bad(spec, $"the {what} range {text} is reversed");
        }

        return (start, end);
    }

    private static int Port(string text, string spec, string what)
    {
        if (text.Length == 0 || text.Length > 5 || !text.All(char.IsAsciiDigit)
            || !int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port > ushort.MaxValue)
        {
            throw Bad(spec, $"invalid {what} \"{text}\" (0 to 65535)");
        }

        return port;
    }

    private static UsageException Bad(string spec, string reason) => new($"--publish {spec}: {reason}");
}
