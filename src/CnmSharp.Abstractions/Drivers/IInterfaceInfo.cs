using System.Net;
using System.Net.NetworkInformation;

namespace CnmSharp.Drivers;

/// <summary>
/// An endpoint's interface as the core and IPAM set it, offered to the driver at <see cref="INetworkDriver.CreateEndpointAsync"/>.
/// The driver may fill what is empty; a setter called on a value that is already set throws
/// <see cref="CnmConflictException"/> (code <see cref="CnmErrorCodes.AlreadySet"/>), which is what lets a remote
/// driver's conflicting reply be rolled back.
/// </summary>
public interface IInterfaceInfo
{
    /// <summary>The MAC address, if set.</summary>
    PhysicalAddress? MacAddress { get; }

    /// <summary>The IPv4 address, if set.</summary>
    CidrAddress? Address { get; }

    /// <summary>The IPv6 address, if set.</summary>
    CidrAddress? AddressIPv6 { get; }

    /// <summary>Link-local addresses requested by the user.</summary>
    IReadOnlyList<CidrAddress> LinkLocalAddresses { get; }

    /// <summary>Sets the MAC address.</summary>
    /// <param name="macAddress">A 6-byte address.</param>
    void SetMacAddress(PhysicalAddress macAddress);

    /// <summary>Sets the IPv4 or IPv6 address (by the address's family).</summary>
    /// <param name="address">The address with its prefix length.</param>
    void SetIPAddress(CidrAddress address);
}

/// <summary>Where the driver left the endpoint's interface at join.</summary>
public enum InterfacePlacement
{
    /// <summary>In the host namespace: the core moves it into the sandbox (a move costs a kernel grace period).</summary>
    HostNamespace,

    /// <summary>Already inside the sandbox's namespace, created there by the driver: the core only renames and
    /// configures it. Deleting the sandbox's namespace reaps it.</summary>
    Sandbox,
}

/// <summary>The kind of a static route a driver adds at join.</summary>
public enum RouteType
{
    /// <summary>Through a next hop, programmed sandbox-wide.</summary>
    NextHop = 0,

    /// <summary>Directly connected on the endpoint's interface (no next hop).</summary>
    Connected = 1,
}

/// <summary>A route the driver asks the core to program in the sandbox.</summary>
/// <param name="Destination">The destination subnet.</param>
/// <param name="Type">Next hop or connected.</param>
/// <param name="NextHop">The next hop, for <see cref="RouteType.NextHop"/>.</param>
public sealed record StaticRoute(IPNetwork Destination, RouteType Type, IPAddress? NextHop);

/// <summary>What a driver reports at <see cref="INetworkDriver.JoinAsync"/>. Setters refuse overwrites.</summary>
public interface IJoinInfo
{
    /// <summary>The endpoint's interface as it was set at creation (read only here).</summary>
    IInterfaceInfo InterfaceInfo { get; }

    /// <summary>Names the interface the core puts in the sandbox. The core names it
    /// <paramref name="destinationPrefix"/> + index (<c>eth0</c>, <c>eth1</c>, ...).</summary>
    /// <param name="sourceName">The interface's current name, in the namespace <paramref name="placement"/> says.</param>
    /// <param name="destinationPrefix">The prefix of its name inside the sandbox, usually <c>eth</c>.</param>
    /// <param name="placement">Where the interface is now.</param>
    void SetInterfaceName(string sourceName, string destinationPrefix, InterfacePlacement placement = InterfacePlacement.HostNamespace);

    /// <summary>Sets the IPv4 gateway of the endpoint.</summary>
    /// <param name="gateway">The gateway.</param>
    void SetGateway(IPAddress gateway);

    /// <summary>Sets the IPv6 gateway of the endpoint.</summary>
    /// <param name="gateway">The gateway.</param>
    void SetGatewayIPv6(IPAddress gateway);

    /// <summary>Adds a static route.</summary>
    /// <param name="route">The route.</param>
    void AddStaticRoute(StaticRoute route);

    /// <summary>Says that this endpoint provides no gateway service even without a gateway (no default gateway
    /// network is needed for it).</summary>
    void DisableGatewayService();
}
