using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using CnmSharp.Drivers;

namespace CnmSharp.Core;

/// <summary>The interface info offered to a driver: setters refuse overwrites.</summary>
internal sealed class InterfaceInfo : IInterfaceInfo
{
    public PhysicalAddress? MacAddress { get; private set; }

    public CidrAddress? Address { get; private set; }

    public CidrAddress? AddressIPv6 { get; private set; }

    public IReadOnlyList<CidrAddress> LinkLocalAddresses { get; init; } = [];

    public void SetMacAddress(PhysicalAddress macAddress)
    {
        ArgumentNullException.ThrowIfNull(macAddress);
        Validation.MacAddress(macAddress, "interface MAC address");

        if (MacAddress is not null)
        {
            throw new CnmConflictException(CnmErrorCodes.AlreadySet, "interface MAC address", $"already set to {Macs.Format(MacAddress)}");
        }

        MacAddress = macAddress;
    }

    public void SetIPAddress(CidrAddress address)
    {
        if (address.Address is null)
        {
            throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidAddress, "interface address", "the address is empty");
        }

        if (address.IsIPv6)
        {
            if (AddressIPv6 is { } existing6)
            {
                throw new CnmConflictException(CnmErrorCodes.AlreadySet, "interface IPv6 address", $"already set to {existing6}");
            }

            AddressIPv6 = address;
        }
        else
        {
            if (Address is { } existing)
            {
                throw new CnmConflictException(CnmErrorCodes.AlreadySet, "interface IPv4 address", $"already set to {existing}");
            }

            Address = address;
        }
    }
}

/// <summary>The join info offered to a driver: setters refuse overwrites.</summary>
internal sealed class JoinInfo(IInterfaceInfo interfaceInfo) : IJoinInfo
{
    private readonly List<StaticRoute> _routes = [];

    public IInterfaceInfo InterfaceInfo { get; } = interfaceInfo;

    public string? SourceName { get; private set; }

    public string? DestinationPrefix { get; private set; }

    public InterfacePlacement Placement { get; private set; }

    public IPAddress? Gateway { get; private set; }

    public IPAddress? GatewayIPv6 { get; private set; }

    public bool GatewayServiceDisabled { get; private set; }

    public IReadOnlyList<StaticRoute> StaticRoutes => _routes;

    public void SetInterfaceName(string sourceName, string destinationPrefix, InterfacePlacement placement = InterfacePlacement.HostNamespace)
    {
        if (string.IsNullOrWhiteSpace(sourceName) || string.IsNullOrWhiteSpace(destinationPrefix))
        {
            throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidName, "join interface name", "source name and destination prefix must not be empty");
        }

        Validation.InterfaceNames(sourceName, destinationPrefix);

        if (SourceName is not null)
        {
            throw new CnmConflictException(CnmErrorCodes.AlreadySet, "join interface name", $"already set to {SourceName}");
        }

        SourceName = sourceName;
        DestinationPrefix = destinationPrefix;
        Placement = placement;
    }

    public void SetGateway(IPAddress gateway)
    {
        ArgumentNullException.ThrowIfNull(gateway);
        if (gateway.AddressFamily != AddressFamily.InterNetwork)
        {
            throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidGateway, "join gateway", $"{gateway} is not an IPv4 address");
        }

        if (Gateway is not null)
        {
            throw new CnmConflictException(CnmErrorCodes.AlreadySet, "join gateway", $"already set to {Gateway}");
        }

        Gateway = gateway;
    }

    public void SetGatewayIPv6(IPAddress gateway)
    {
        ArgumentNullException.ThrowIfNull(gateway);
        if (gateway.AddressFamily != AddressFamily.InterNetworkV6)
        {
            throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidGateway, "join IPv6 gateway", $"{gateway} is not an IPv6 address");
        }

        if (GatewayIPv6 is not null)
        {
            throw new CnmConflictException(CnmErrorCodes.AlreadySet, "join IPv6 gateway", $"already set to {GatewayIPv6}");
        }

        GatewayIPv6 = gateway;
    }

    public void AddStaticRoute(StaticRoute route)
    {
        ArgumentNullException.ThrowIfNull(route);
        if (route.Type == RouteType.NextHop && route.NextHop is null)
        {
            throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidAddress, $"static route {route.Destination}", "a next-hop route needs a next hop");
        }

        _routes.Add(route);
    }

    public void DisableGatewayService() => GatewayServiceDisabled = true;
}

/// <summary>MAC address text form.</summary>
internal static class Macs
{
    public static string Format(PhysicalAddress mac) =>
        string.Join(':', mac.GetAddressBytes().Select(b => b.ToString("x2", System.Globalization.CultureInfo.InvariantCulture)));

    /// <summary>The bytes of a MAC of any length, for messages.</summary>
    public static string Describe(byte[] bytes) =>
        bytes.Length == 0 ? "(empty)" : string.Join(':', bytes.Select(b => b.ToString("x2", System.Globalization.CultureInfo.InvariantCulture)));

    public static PhysicalAddress Parse(string text) =>
        PhysicalAddress.TryParse(text, out var mac) && mac.GetAddressBytes().Length == 6
            ? mac
            : throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidAddress, $"MAC address \"{text}\"", "not a 6-byte MAC address");

    /// <summary>A random locally administered unicast MAC.</summary>
    public static PhysicalAddress Random()
    {
        Span<byte> bytes = stackalloc byte[6];
        Ids.FillRandom(bytes);
        bytes[0] = (byte)((bytes[0] & 0xFE) | 0x02);
        return new PhysicalAddress(bytes.ToArray());
    }
}
