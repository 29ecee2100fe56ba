using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using CnmSharp.Drivers;

namespace CnmSharp.Core;

/// <summary>The address rules of <see cref="Validation"/>: endpoint addresses, MACs and port bindings (pool capacity is the IPAM's rule: <see cref="Ipam.IIpamPoolConfigurationCheck"/>).</summary>
/// <remarks>
/// <list type="bullet">
/// <item>Addresses given as text are parsed with <see cref="IPAddressText.TryParseStrict(string?, out IPAddress?, bool)"/>.</item>
/// <item>An endpoint's wanted IPv4 address must be IPv4, its IPv6 address IPv6, neither with a scope id; link-local
/// addresses carry no scope id either and must be link-local (IPv4 169.254.0.0/16, IPv6 fe80::/10).</item>
/// <item>A MAC address is 6 bytes, unicast (the group bit of the first byte clear, so not broadcast either) and not
/// all zero: the kernel refuses the others (<c>EADDRNOTAVAIL</c>).</item>
/// <item>A port binding is not null, has a known protocol, a container port, a host address (IPv4 or IPv6, no scope
/// id) and a host port range that is not reversed.</item>
/// </list>
/// </remarks>
internal static partial class Validation
{
    /// <summary>The address parts of <see cref="NetworkController.CreateEndpointAsync"/>'s options.</summary>
    public static void EndpointAddresses(string name, EndpointCreateOptions options) =>
        EndpointAddressesOf($"endpoint \"{Printable(name)}\"", options);

    private static void EndpointAddressesOf(string subject, EndpointCreateOptions options)
    {
        if (options.IPv4Address is { } v4 && (v4.AddressFamily != AddressFamily.InterNetwork))
        {
            throw Invalid(CnmErrorCodes.InvalidAddress, subject, $"the IPv4 address option was given {v4}, which is not an IPv4 address");
        }

        if (options.IPv6Address is { } v6 && (v6.AddressFamily != AddressFamily.InterNetworkV6 || v6.IsIPv4MappedToIPv6))
        {
            throw Invalid(CnmErrorCodes.InvalidAddress, subject, $"the IPv6 address option was given {v6}, which is not an IPv6 address");
        }

        if (options.IPv6Address is { } scoped && IPAddressText.HasScopeId(scoped))
        {
            throw Invalid(CnmErrorCodes.InvalidAddress, subject, $"the IPv6 address {scoped} has a scope id; give the address without it");
        }

        ArgumentNullException.ThrowIfNull(options.LinkLocalAddresses);
        foreach (var linkLocal in options.LinkLocalAddresses)
        {
            if (IPAddressText.HasScopeId(linkLocal.Address))
            {
                throw Invalid(CnmErrorCodes.InvalidAddress, subject, $"link-local address {linkLocal.Address} has a scope id; the endpoint's interface is its scope");
            }

            if (!(linkLocal.Address.IsIPv6LinkLocal || IsIPv4LinkLocal(linkLocal.Address)))
            {
                throw Invalid(CnmErrorCodes.InvalidAddress, subject, $"{linkLocal} is not a link-local address");
            }
        }

        if (options.MacAddress is { } mac)
        {
            MacAddress(mac, subject);
        }

        ArgumentNullException.ThrowIfNull(options.PortBindings);
        foreach (var binding in options.PortBindings)
        {
            PortBinding(binding, subject);
        }
    }

    /// <summary>A MAC address an endpoint is given: 6 bytes, unicast, not all zero.</summary>
    public static void MacAddress(PhysicalAddress mac, string subject)
    {
        var bytes = mac.GetAddressBytes();
        if (bytes.Length != 6)
        {
            throw Invalid(CnmErrorCodes.InvalidAddress, subject, $"MAC address {Macs.Describe(bytes)} is not 6 bytes long");
        }

        if ((bytes[0] & 1) != 0)
        {
            throw Invalid(CnmErrorCodes.InvalidAddress, subject, $"MAC address {Macs.Describe(bytes)} is a multicast or broadcast address; an interface needs a unicast one (the lowest bit of the first byte clear)");
        }

        if (bytes.All(b => b == 0))
        {
            throw Invalid(CnmErrorCodes.InvalidAddress, subject, "MAC address 00:00:00:00:00:00 is not a valid interface address");
        }
    }

    /// <summary>One port binding of an endpoint.</summary>
    public static void PortBinding(PortBinding? binding, string subject)
    {
        if (binding is null)
        {
            throw Invalid(CnmErrorCodes.InvalidOption, subject, "a port binding is null");
        }

        if (!Enum.IsDefined(binding.Protocol))
        {
            throw Invalid(CnmErrorCodes.InvalidOption, subject, $"port binding to container port {binding.ContainerPort}: unknown protocol {(int)binding.Protocol}");
        }

        if (binding.ContainerPort == 0)
        {
            throw Invalid(CnmErrorCodes.InvalidOption, subject, "port binding: the container port is 0");
        }

        if (binding.HostIP is not { } hostIP)
        {
            throw Invalid(CnmErrorCodes.InvalidAddress, subject, $"port binding {binding.Protocol.ToString().ToLowerInvariant()}/{binding.ContainerPort}: the host address is null; use IPAddress.Any (0.0.0.0) or IPAddress.IPv6Any (::) for every address");
        }

        if (hostIP.AddressFamily is not (AddressFamily.InterNetwork or AddressFamily.InterNetworkV6))
        {
            throw Invalid(CnmErrorCodes.InvalidAddress, subject, $"port binding {binding.Protocol.ToString().ToLowerInvariant()}/{binding.ContainerPort}: host address {hostIP} is not an IPv4 or IPv6 address");
        }

        if (IPAddressText.HasScopeId(hostIP))
        {
            throw Invalid(CnmErrorCodes.InvalidAddress, subject, $"port binding {binding.Protocol.ToString().ToLowerInvariant()}/{binding.ContainerPort}: host address {hostIP} has a scope id; iptables cannot match a scoped address, publish on an address without a scope id");
        }

        if (binding.HostPortEnd != 0 && binding.HostPortEnd < binding.HostPort)
        {
            throw Invalid(CnmErrorCodes.InvalidOption, subject, $"port binding {binding.Protocol.ToString().ToLowerInvariant()}/{binding.ContainerPort}: host port range {binding.HostPort}-{binding.HostPortEnd} is reversed");
        }
    }

    private static bool IsIPv4LinkLocal(IPAddress address)
    {
        if (address.AddressFamily != AddressFamily.InterNetwork)
        {
            return false;
        }

        Span<byte> b = stackalloc byte[4];
        address.TryWriteBytes(b, out _);
        return b[0] == 169 && b[1] == 254;
    }
}
