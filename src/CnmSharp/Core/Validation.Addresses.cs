using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using CnmSharp.Drivers;

namespace CnmSharp.Core;

/// <summary>The address rules of <see cref="Validation"/>: endpoint addresses, MACs, port bindings and pool capacity.</summary>
/// <remarks>
/// <list type="bullet">
/// <item>Addresses given as text are parsed with <see cref="IPAddressText.TryParseStrict(string?, out IPAddress?, bool)"/>.</item>
/// <item>An endpoint's wanted IPv4 address must be IPv4, its IPv6 address IPv6, neither with a scope id; link-local
/// addresses carry no scope id either and must be link-local (IPv4 169.254.0.0/16, IPv6 fe80::/10).</item>
/// <item>A MAC address is 6 bytes, unicast (the group bit of the first byte clear, so not broadcast either) and not
/// all zero: the kernel refuses the others (<c>EADDRNOTAVAIL</c>).</item>
/// <item>A port binding is not null, has a known protocol, a container port, a host address (IPv4 or IPv6, no scope
/// id) and a host port range that is not reversed.</item>
/// <item>A subnet (or IP range) must leave at least one address for an endpoint after the network, broadcast, gateway
/// and auxiliary addresses.</item>
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

    /// <summary>
    /// Refuses a subnet that has no address left to hand out to an endpoint: the usable addresses are all of the
    /// subnet except the network address and, for IPv4, the broadcast address (an IPv4 /31 or /32 and an IPv6 /127 or
    /// /128 have neither, RFC 3021 and RFC 6164); an IP range narrows them to the range; the gateway (given, or chosen by
    /// IPAM from them) and the auxiliary addresses in them are taken.
    /// </summary>
    public static void PoolCapacity(string subject, IPNetwork subnet, IPNetwork? range, IPAddress? gateway, IEnumerable<IPAddress> auxAddresses)
    {
        var bits = subnet.BaseAddress.AddressFamily == AddressFamily.InterNetwork ? 32 : 128;
        var hostBits = bits - subnet.PrefixLength;
        var first = ToUInt128(subnet.BaseAddress);
        var last = first + (hostBits == 128 ? UInt128.MaxValue : (UInt128.One << hostBits) - 1);
        var lo = first;
        var hi = last;
        if (hostBits > 1)
        {
            lo = first + 1;
            hi = bits == 32 ? last - 1 : last;
        }

        if (range is { } r)
        {
            var rangeHostBits = bits - r.PrefixLength;
            var rangeFirst = ToUInt128(r.BaseAddress);
            var rangeLast = rangeFirst + (rangeHostBits == 128 ? UInt128.MaxValue : (UInt128.One << rangeHostBits) - 1);
            lo = UInt128.Max(lo, rangeFirst);
            hi = UInt128.Min(hi, rangeLast);
        }

        var available = hi >= lo ? hi - lo + 1 : UInt128.Zero;
        var taken = new HashSet<UInt128>();
        var takenCount = UInt128.Zero;
        if (gateway is null)
        {
            takenCount++; // IPAM picks the gateway from these addresses
        }
        else if (ToUInt128(gateway) is var g && g >= lo && g <= hi && taken.Add(g))
        {
            takenCount++;
        }

        foreach (var aux in auxAddresses)
        {
            if (ToUInt128(aux) is var a && a >= lo && a <= hi && taken.Add(a))
            {
                takenCount++;
            }
        }

        if (available > takenCount)
        {
            return;
        }

        var where = range is { } shown ? $"IP range {shown} of subnet {subnet}" : $"subnet {subnet}";
        var smallest = bits == 32 ? "/31" : "/127";
        throw Invalid(
            range is null ? CnmErrorCodes.InvalidPool : CnmErrorCodes.InvalidSubPool,
            subject,
            $"{where} has no address left for an endpoint after the gateway{(taken.Count > (gateway is null ? 0 : 1) ? " and the auxiliary addresses" : "")}: a network needs at least a {smallest} (one gateway and one endpoint)");
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

    private static UInt128 ToUInt128(IPAddress address)
    {
        Span<byte> bytes = stackalloc byte[16];
        address.TryWriteBytes(bytes, out var written);
        var value = UInt128.Zero;
        foreach (var b in bytes[..written])
        {
            value = (value << 8) | b;
        }

        return value;
    }
}
