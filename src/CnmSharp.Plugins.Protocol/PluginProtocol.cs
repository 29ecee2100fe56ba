namespace CnmSharp.Plugins.Protocol;

/// <summary>Constants of Docker's plugin protocol: paths, headers, interface names and option keys.</summary>
public static class PluginProtocol
{
    /// <summary>The <c>Accept</c> header a client sends.</summary>
    public const string AcceptMediaType = "application/vnd.docker.plugins.v1.2+json";

    /// <summary>The <c>Content-Type</c> a plugin answers with (clients must not insist on it).</summary>
    public const string ResponseMediaType = "application/vnd.docker.plugins.v1+json";

    /// <summary>The network driver interface, as <c>Plugin.Activate</c> lists it.</summary>
    public const string NetworkDriverInterface = "NetworkDriver";

    /// <summary>The IPAM interface, as <c>Plugin.Activate</c> lists it.</summary>
    public const string IpamDriverInterface = "IpamDriver";

    /// <summary>Discovery type of a node event.</summary>
    public const int NodeDiscoveryType = 1;

    /// <summary>Discovery type of a datastore event.</summary>
    public const int DatastoreDiscoveryType = 2;

    /// <summary>Route type: through a next hop.</summary>
    public const int RouteTypeNextHop = 0;

    /// <summary>Route type: directly connected on the interface.</summary>
    public const int RouteTypeConnected = 1;

    /// <summary>CreateNetwork option: the user's <c>-o k=v</c> map.</summary>
    public const string GenericOption = "com.docker.network.generic";

    /// <summary>CreateNetwork option: IPv6 enabled (a boolean).</summary>
    public const string EnableIPv6Option = "com.docker.network.enable_ipv6";

    /// <summary>CreateNetwork option: internal network (a boolean).</summary>
    public const string InternalOption = "com.docker.network.internal";

    /// <summary>CreateEndpoint option: exposed ports <c>[{"Proto":6,"Port":80}]</c>.</summary>
    public const string ExposedPortsOption = "com.docker.network.endpoint.exposedports";

    /// <summary>CreateEndpoint option: published ports <c>[{"Proto","IP","Port","HostIP","HostPort","HostPortEnd"}]</c>.</summary>
    public const string PortMapOption = "com.docker.network.portmap";

    /// <summary>CreateEndpoint option: the MAC address, base64 of its 6 bytes; RequestAddress option: its text form.</summary>
    public const string MacAddressOption = "com.docker.network.endpoint.macaddress";

    /// <summary>RequestAddress option key naming the request type.</summary>
    public const string RequestAddressTypeOption = "RequestAddressType";

    /// <summary>RequestAddress type of a gateway; RequestPool reply data key of a gateway the IPAM chose.</summary>
    public const string GatewayRequestType = "com.docker.network.gateway";
}

/// <summary>The methods of the protocol, as their URL paths.</summary>
public static class PluginMethods
{
    /// <summary><c>/Plugin.Activate</c>.</summary>
    public const string Activate = "/Plugin.Activate";

    /// <summary><c>/NetworkDriver.GetCapabilities</c>.</summary>
    public const string NetworkGetCapabilities = "/NetworkDriver.GetCapabilities";

    /// <summary><c>/NetworkDriver.CreateNetwork</c>.</summary>
    public const string CreateNetwork = "/NetworkDriver.CreateNetwork";

    /// <summary><c>/NetworkDriver.DeleteNetwork</c>.</summary>
    public const string DeleteNetwork = "/NetworkDriver.DeleteNetwork";

    /// <summary><c>/NetworkDriver.AllocateNetwork</c>.</summary>
    public const string AllocateNetwork = "/NetworkDriver.AllocateNetwork";

    /// <summary><c>/NetworkDriver.FreeNetwork</c>.</summary>
    public const string FreeNetwork = "/NetworkDriver.FreeNetwork";

    /// <summary><c>/NetworkDriver.CreateEndpoint</c>.</summary>
    public const string CreateEndpoint = "/NetworkDriver.CreateEndpoint";

    /// <summary><c>/NetworkDriver.EndpointOperInfo</c>.</summary>
    public const string EndpointOperInfo = "/NetworkDriver.EndpointOperInfo";

    /// <summary><c>/NetworkDriver.DeleteEndpoint</c>.</summary>
    public const string DeleteEndpoint = "/NetworkDriver.DeleteEndpoint";

    /// <summary><c>/NetworkDriver.Join</c>.</summary>
    public const string Join = "/NetworkDriver.Join";

    /// <summary><c>/NetworkDriver.Leave</c>.</summary>
    public const string Leave = "/NetworkDriver.Leave";

    /// <summary><c>/NetworkDriver.ProgramExternalConnectivity</c>.</summary>
    public const string ProgramExternalConnectivity = "/NetworkDriver.ProgramExternalConnectivity";

    /// <summary><c>/NetworkDriver.RevokeExternalConnectivity</c>.</summary>
    public const string RevokeExternalConnectivity = "/NetworkDriver.RevokeExternalConnectivity";

    /// <summary><c>/NetworkDriver.DiscoverNew</c>.</summary>
    public const string DiscoverNew = "/NetworkDriver.DiscoverNew";

    /// <summary><c>/NetworkDriver.DiscoverDelete</c>.</summary>
    public const string DiscoverDelete = "/NetworkDriver.DiscoverDelete";

    /// <summary><c>/IpamDriver.GetCapabilities</c>.</summary>
    public const string IpamGetCapabilities = "/IpamDriver.GetCapabilities";

    /// <summary><c>/IpamDriver.GetDefaultAddressSpaces</c>.</summary>
    public const string GetDefaultAddressSpaces = "/IpamDriver.GetDefaultAddressSpaces";

    /// <summary><c>/IpamDriver.RequestPool</c>.</summary>
    public const string RequestPool = "/IpamDriver.RequestPool";

    /// <summary><c>/IpamDriver.ReleasePool</c>.</summary>
    public const string ReleasePool = "/IpamDriver.ReleasePool";

    /// <summary><c>/IpamDriver.RequestAddress</c>.</summary>
    public const string RequestAddress = "/IpamDriver.RequestAddress";

    /// <summary><c>/IpamDriver.ReleaseAddress</c>.</summary>
    public const string ReleaseAddress = "/IpamDriver.ReleaseAddress";

    /// <summary><c>/IpamDriver.ReleaseOwner</c>, a CnmSharp extension that Docker never calls: releases every pool and
    /// address requested with the given owner option. Called only on plugins whose capabilities say
    /// <c>"ReleasesByOwner": true</c>.</summary>
    public const string ReleaseOwner = "/IpamDriver.ReleaseOwner";
}
