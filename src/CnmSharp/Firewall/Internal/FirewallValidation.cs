using System.Net;
using System.Net.Sockets;
using CnmSharp.Drivers;

namespace CnmSharp.Firewall.Internal;

/// <summary>Checks firewall records before any backend touches the kernel.</summary>
internal static class FirewallValidation
{
    /// <summary>The longest interface name Linux accepts (IFNAMSIZ - 1).</summary>
    public const int MaxInterfaceNameLength = 15;

    /// <summary>Checks a network record.</summary>
    /// <param name="network">The record.</param>
    /// <exception cref="CnmInvalidArgumentException">It is malformed.</exception>
    public static void Validate(FirewallNetwork network)
    {
        ArgumentNullException.ThrowIfNull(network);
        var subject = $"network \"{network.NetworkId}\"";
        RequireId(network.NetworkId, subject);
        ValidateOwner(network.Owner, subject);
        RequireBridgeName(network.BridgeName, subject);
        foreach (var subnet in network.IPv4Subnets ?? [])
        {
            if (subnet.BaseAddress.AddressFamily != AddressFamily.InterNetwork)
            {
                throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidAddress, subject, $"{subnet} is not an IPv4 subnet");
            }
        }

        foreach (var subnet in network.IPv6Subnets ?? [])
        {
            if (subnet.BaseAddress.AddressFamily != AddressFamily.InterNetworkV6)
            {
                throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidAddress, subject, $"{subnet} is not an IPv6 subnet");
            }
        }

        if (network.SnatSource is { AddressFamily: not AddressFamily.InterNetwork } snat)
        {
            throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidAddress, subject, $"SNAT source {snat} is not an IPv4 address");
        }
    }

    /// <summary>Checks a port-forward record.</summary>
    /// <param name="forward">The record.</param>
    /// <exception cref="CnmInvalidArgumentException">It is malformed.</exception>
    public static void Validate(FirewallPortForward forward)
    {
        ArgumentNullException.ThrowIfNull(forward);
        var subject = $"endpoint \"{forward.EndpointId}\" of network \"{forward.NetworkId}\"";
        RequireId(forward.NetworkId, subject);
        RequireId(forward.EndpointId, subject);
        RequireBridgeName(forward.BridgeName, subject);
        if (forward.ContainerIPv4 is { AddressFamily: not AddressFamily.InterNetwork } v4)
        {
            throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidAddress, subject, $"container IPv4 {v4} is not an IPv4 address");
        }

        if (forward.ContainerIPv6 is { AddressFamily: not AddressFamily.InterNetworkV6 } v6)
        {
            throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidAddress, subject, $"container IPv6 {v6} is not an IPv6 address");
        }

        foreach (var binding in forward.PortBindings ?? [])
        {
            if (binding is null)
            {
                throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidOption, subject, "null port binding");
            }

            if (!Enum.IsDefined(binding.Protocol))
            {
                throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidOption, subject, $"unsupported protocol {(int)binding.Protocol}");
            }

            if (binding.HostPort == 0 || (binding.HostPortEnd != 0 && binding.HostPortEnd != binding.HostPort))
            {
                throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidOption, subject,
                    $"host port {binding.HostPort}-{binding.HostPortEnd} is not resolved (allocate it first)");
            }

            if (binding.ContainerPort == 0)
            {
                throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidOption, subject, "container port 0");
            }

            var ipv6 = binding.HostIP is { AddressFamily: AddressFamily.InterNetworkV6, IsIPv4MappedToIPv6: false };
            if (ipv6 ? forward.ContainerIPv6 is null : forward.ContainerIPv4 is null)
            {
                throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidAddress, subject,
                    $"binding on {binding.HostIP ?? IPAddress.Any} needs a container {(ipv6 ? "IPv6" : "IPv4")} address");
            }
        }
    }

    /// <summary>Checks an owner name: 1 to 32 letters, digits, <c>-</c> or <c>_</c> (it goes into rule comments).</summary>
    /// <param name="owner">The owner.</param>
    /// <param name="subject">What carries it, for the error.</param>
    /// <exception cref="CnmInvalidArgumentException">It is malformed.</exception>
    public static void ValidateOwner(string owner, string subject)
    {
        if (string.IsNullOrEmpty(owner) || owner.Length > 32 || !owner.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_'))
        {
            throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidName, subject,
                $"firewall owner \"{owner}\" must be 1 to 32 characters of letters, digits, '-', '_'");
        }
    }

    /// <summary>Checks the records of one owner's reconcile: the owner is valid and every network has it.</summary>
    /// <param name="owner">The owner.</param>
    /// <param name="networks">The owner's networks.</param>
    /// <exception cref="CnmInvalidArgumentException">A network names another owner.</exception>
    public static void RequireOwner(string owner, IReadOnlyList<FirewallNetwork> networks)
    {
        ValidateOwner(owner, $"owner \"{owner}\"");
        ArgumentNullException.ThrowIfNull(networks);
        foreach (var network in networks)
        {
            if (network?.Owner != owner)
            {
                throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidOption, $"network \"{network?.NetworkId}\"",
                    $"the network belongs to owner \"{network?.Owner}\", not \"{owner}\"");
            }
        }
    }

    private static void RequireId(string id, string subject)
    {
        if (string.IsNullOrWhiteSpace(id) || id.Any(char.IsWhiteSpace))
        {
            throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidId, subject, "id is empty or has white space");
        }
    }

    private static void RequireBridgeName(string name, string subject)
    {
        if (string.IsNullOrEmpty(name) || name.Length > MaxInterfaceNameLength
            || !name.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '.' or '-') || name is "." or "..")
        {
            throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidName, subject,
                $"bridge name \"{name}\" must be 1 to {MaxInterfaceNameLength} characters of letters, digits, '_', '.', '-'");
        }
    }
}
