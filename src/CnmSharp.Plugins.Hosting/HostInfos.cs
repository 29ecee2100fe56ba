using System.Net;
using System.Net.NetworkInformation;
using CnmSharp.Drivers;

namespace CnmSharp.Plugins.Hosting;

/// <summary>The interface of a CreateEndpoint request, offered to the wrapped driver; what it fills is the reply.</summary>
internal sealed class HostInterfaceInfo(PhysicalAddress? mac, CidrAddress? address, CidrAddress? addressIPv6) : IInterfaceInfo
{
    public PhysicalAddress? MacAddress { get; private set; } = mac;

    public CidrAddress? Address { get; private set; } = address;

    public CidrAddress? AddressIPv6 { get; private set; } = addressIPv6;

    public IReadOnlyList<CidrAddress> LinkLocalAddresses => [];

    /// <summary>The MAC the driver set (to be returned).</summary>
    public PhysicalAddress? SetMac { get; private set; }

    /// <summary>The IPv4 address the driver set.</summary>
    public CidrAddress? SetAddress { get; private set; }

    /// <summary>The IPv6 address the driver set.</summary>
    public CidrAddress? SetAddressIPv6 { get; private set; }

    public void SetMacAddress(PhysicalAddress macAddress)
    {
        ArgumentNullException.ThrowIfNull(macAddress);
        if (MacAddress is not null)
        {
            throw new CnmConflictException(CnmErrorCodes.AlreadySet, "endpoint interface", "the MAC address is already set");
        }

        MacAddress = SetMac = macAddress;
    }

    public void SetIPAddress(CidrAddress address)
    {
        if (address.IsIPv6)
        {
            if (AddressIPv6 is not null)
            {
                throw new CnmConflictException(CnmErrorCodes.AlreadySet, "endpoint interface", "the IPv6 address is already set");
            }

            AddressIPv6 = SetAddressIPv6 = address;
        }
        else
        {
            if (Address is not null)
            {
                throw new CnmConflictException(CnmErrorCodes.AlreadySet, "endpoint interface", "the IPv4 address is already set");
            }

            Address = SetAddress = address;
        }
    }
}

/// <summary>What the wrapped driver reports at Join, turned into the Join reply.</summary>
internal sealed class HostJoinInfo(IInterfaceInfo interfaceInfo) : IJoinInfo
{
    public IInterfaceInfo InterfaceInfo { get; } = interfaceInfo;

    public string? SourceName { get; private set; }

    public string? DestinationPrefix { get; private set; }

    public InterfacePlacement Placement { get; private set; }

    public IPAddress? Gateway { get; private set; }

    public IPAddress? GatewayIPv6 { get; private set; }

    public List<StaticRoute> Routes { get; } = [];

    public bool GatewayServiceDisabled { get; private set; }

    public void SetInterfaceName(string sourceName, string destinationPrefix, InterfacePlacement placement = InterfacePlacement.HostNamespace)
    {
        ArgumentException.ThrowIfNullOrEmpty(sourceName);
        ArgumentException.ThrowIfNullOrEmpty(destinationPrefix);
        if (SourceName is not null)
        {
            throw new CnmConflictException(CnmErrorCodes.AlreadySet, "join", "the interface name is already set");
        }

        SourceName = sourceName;
        DestinationPrefix = destinationPrefix;
        Placement = placement;
    }

    public void SetGateway(IPAddress gateway)
    {
        ArgumentNullException.ThrowIfNull(gateway);
        if (Gateway is not null)
        {
            throw new CnmConflictException(CnmErrorCodes.AlreadySet, "join", "the IPv4 gateway is already set");
        }

        Gateway = gateway;
    }

    public void SetGatewayIPv6(IPAddress gateway)
    {
        ArgumentNullException.ThrowIfNull(gateway);
        if (GatewayIPv6 is not null)
        {
            throw new CnmConflictException(CnmErrorCodes.AlreadySet, "join", "the IPv6 gateway is already set");
        }

        GatewayIPv6 = gateway;
    }

    public void AddStaticRoute(StaticRoute route)
    {
        ArgumentNullException.ThrowIfNull(route);
        Routes.Add(route);
    }

    public void DisableGatewayService() => GatewayServiceDisabled = true;
}
