using System.Text.Json;
using System.Text.Json.Serialization;

namespace CnmSharp.Plugins.Protocol;

// Field names are exactly those on the wire. Reading is case-insensitive (Go's decoder is) and ignores unknown fields.
// Every reply type carries the error field of its interface: NetworkDriver replies "Err", IpamDriver replies "Error".

/// <summary>A NetworkDriver reply or error body: <c>{"Err": "..."}</c>.</summary>
public class NetworkResponse
{
    /// <summary>The error text; null or empty on success.</summary>
    [JsonPropertyName("Err")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Err { get; set; }
}

/// <summary>An IpamDriver reply or error body: <c>{"Error": "..."}</c>.</summary>
public class IpamResponse
{
    /// <summary>The error text; null or empty on success.</summary>
    [JsonPropertyName("Error")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Error { get; set; }
}

/// <summary><c>Plugin.Activate</c> reply.</summary>
public sealed class ActivateResponse
{
    /// <summary>The interfaces the plugin implements (<c>NetworkDriver</c>, <c>IpamDriver</c>, ...).</summary>
    public List<string>? Implements { get; set; }

    /// <summary>An error some plugins give instead.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Err { get; set; }
}

/// <summary><c>NetworkDriver.GetCapabilities</c> reply.</summary>
public sealed class NetworkCapabilitiesResponse : NetworkResponse
{
    /// <summary><c>local</c> or <c>global</c> (required).</summary>
    public string? Scope { get; set; }

    /// <summary><c>local</c>, <c>global</c> or empty (then the same as <see cref="Scope"/>).</summary>
    public string? ConnectivityScope { get; set; }
}

/// <summary>One pool of a network (IPAMData): gateway and auxiliary addresses in CIDR form.</summary>
public sealed class WireIpamData
{
    /// <summary>The address space.</summary>
    public string AddressSpace { get; set; } = "";

    /// <summary>The pool, CIDR.</summary>
    public string Pool { get; set; } = "";

    /// <summary>The gateway, <c>ip/len</c>, or empty.</summary>
    public string Gateway { get; set; } = "";

    /// <summary>Named auxiliary addresses, <c>ip/len</c>.</summary>
    public Dictionary<string, string> AuxAddresses { get; set; } = [];
}

/// <summary><c>NetworkDriver.CreateNetwork</c> request.</summary>
public sealed class CreateNetworkRequest
{
    /// <summary>The network id.</summary>
    [JsonPropertyName("NetworkID")]
    public string NetworkId { get; set; } = "";

    /// <summary>Options: <see cref="PluginProtocol.GenericOption"/> (the user's map), enable_ipv6, internal, ...</summary>
    public Dictionary<string, JsonElement> Options { get; set; } = [];

    /// <summary>IPv4 pools.</summary>
    public List<WireIpamData> IPv4Data { get; set; } = [];

    /// <summary>IPv6 pools.</summary>
    public List<WireIpamData> IPv6Data { get; set; } = [];
}

/// <summary>A request naming only a network (<c>DeleteNetwork</c>, <c>FreeNetwork</c>).</summary>
public sealed class NetworkIdRequest
{
    /// <summary>The network id.</summary>
    [JsonPropertyName("NetworkID")]
    public string NetworkId { get; set; } = "";
}

/// <summary><c>NetworkDriver.AllocateNetwork</c> request.</summary>
public sealed class AllocateNetworkRequest
{
    /// <summary>The network id.</summary>
    [JsonPropertyName("NetworkID")]
    public string NetworkId { get; set; } = "";

    /// <summary>The network's options as strings.</summary>
    public Dictionary<string, string> Options { get; set; } = [];

    /// <summary>IPv4 pools.</summary>
    public List<WireIpamData> IPv4Data { get; set; } = [];

    /// <summary>IPv6 pools.</summary>
    public List<WireIpamData> IPv6Data { get; set; } = [];
}

/// <summary><c>NetworkDriver.AllocateNetwork</c> reply.</summary>
public sealed class AllocateNetworkResponse : NetworkResponse
{
    /// <summary>Options every node passes to CreateNetwork.</summary>
    public Dictionary<string, string>? Options { get; set; }
}

/// <summary>An endpoint's interface: addresses in CIDR form, MAC as <c>aa:bb:cc:dd:ee:ff</c>, empty when unset.</summary>
public sealed class EndpointInterface
{
    /// <summary>IPv4 address, CIDR.</summary>
    public string Address { get; set; } = "";

    /// <summary>IPv6 address, CIDR.</summary>
    public string AddressIPv6 { get; set; } = "";

    /// <summary>MAC address.</summary>
    public string MacAddress { get; set; } = "";
}

/// <summary><c>NetworkDriver.CreateEndpoint</c> request.</summary>
public sealed class CreateEndpointRequest
{
    /// <summary>The network id.</summary>
    [JsonPropertyName("NetworkID")]
    public string NetworkId { get; set; } = "";

    /// <summary>The endpoint id.</summary>
    [JsonPropertyName("EndpointID")]
    public string EndpointId { get; set; } = "";

    /// <summary>The interface as the caller set it.</summary>
    public EndpointInterface? Interface { get; set; }

    /// <summary>Options: exposed ports, port map, MAC (base64), the endpoint's driver options as plain keys.</summary>
    public Dictionary<string, JsonElement> Options { get; set; } = [];
}

/// <summary><c>NetworkDriver.CreateEndpoint</c> reply: what the driver filled in, or no interface.</summary>
public sealed class CreateEndpointResponse : NetworkResponse
{
    /// <summary>The driver's values for fields the caller left empty.</summary>
    public EndpointInterface? Interface { get; set; }
}

/// <summary>A request naming an endpoint (<c>DeleteEndpoint</c>, <c>EndpointOperInfo</c>, <c>Leave</c>,
/// <c>RevokeExternalConnectivity</c>).</summary>
public sealed class EndpointRequest
{
    /// <summary>The network id.</summary>
    [JsonPropertyName("NetworkID")]
    public string NetworkId { get; set; } = "";

    /// <summary>The endpoint id.</summary>
    [JsonPropertyName("EndpointID")]
    public string EndpointId { get; set; } = "";
}

/// <summary><c>NetworkDriver.EndpointOperInfo</c> reply.</summary>
public sealed class EndpointOperInfoResponse : NetworkResponse
{
    /// <summary>Operational data.</summary>
    public Dictionary<string, JsonElement>? Value { get; set; }
}

/// <summary><c>NetworkDriver.Join</c> request.</summary>
public sealed class JoinRequest
{
    /// <summary>The network id.</summary>
    [JsonPropertyName("NetworkID")]
    public string NetworkId { get; set; } = "";

    /// <summary>The endpoint id.</summary>
    [JsonPropertyName("EndpointID")]
    public string EndpointId { get; set; } = "";

    /// <summary>The sandbox's network namespace path.</summary>
    public string SandboxKey { get; set; } = "";

    /// <summary>Join options.</summary>
    public Dictionary<string, JsonElement> Options { get; set; } = [];
}

/// <summary>The interface a join names: created in the caller's namespace, moved into the sandbox and named
/// <see cref="DstPrefix"/> + index.</summary>
public sealed class InterfaceName
{
    /// <summary>Its name now.</summary>
    public string SrcName { get; set; } = "";

    /// <summary>The prefix of its name in the sandbox.</summary>
    public string DstPrefix { get; set; } = "";
}

/// <summary>A static route of a join reply.</summary>
public sealed class WireStaticRoute
{
    /// <summary>The destination, CIDR.</summary>
    public string Destination { get; set; } = "";

    /// <summary>0 = next hop, 1 = connected.</summary>
    public int RouteType { get; set; }

    /// <summary>The next hop (plain IP), empty for a connected route.</summary>
    public string NextHop { get; set; } = "";
}

/// <summary><c>NetworkDriver.Join</c> reply.</summary>
public sealed class JoinResponse : NetworkResponse
{
    /// <summary>The interface, or null when the driver gives none.</summary>
    public InterfaceName? InterfaceName { get; set; }

    /// <summary>The IPv4 gateway, plain IP, or empty.</summary>
    public string? Gateway { get; set; }

    /// <summary>The IPv6 gateway, plain IP, or empty.</summary>
    public string? GatewayIPv6 { get; set; }

    /// <summary>Static routes.</summary>
    public List<WireStaticRoute>? StaticRoutes { get; set; }

    /// <summary>The endpoint needs no gateway from elsewhere.</summary>
    public bool DisableGatewayService { get; set; }
}

/// <summary><c>NetworkDriver.ProgramExternalConnectivity</c> request.</summary>
public sealed class ProgramExternalConnectivityRequest
{
    /// <summary>The network id.</summary>
    [JsonPropertyName("NetworkID")]
    public string NetworkId { get; set; } = "";

    /// <summary>The endpoint id.</summary>
    [JsonPropertyName("EndpointID")]
    public string EndpointId { get; set; } = "";

    /// <summary>Options (exposed ports, port map).</summary>
    public Dictionary<string, JsonElement> Options { get; set; } = [];
}

/// <summary><c>NetworkDriver.DiscoverNew</c> / <c>DiscoverDelete</c> request.</summary>
public sealed class DiscoveryNotification
{
    /// <summary>1 = node, 2 = datastore.</summary>
    public int DiscoveryType { get; set; }

    /// <summary>The event's data (<see cref="NodeDiscoveryData"/> for a node).</summary>
    public JsonElement DiscoveryData { get; set; }
}

/// <summary>The data of a node discovery event.</summary>
public sealed class NodeDiscoveryData
{
    /// <summary>The node's advertise address.</summary>
    public string Address { get; set; } = "";

    /// <summary>The node's bind address.</summary>
    public string BindAddress { get; set; } = "";

    /// <summary>True for the node itself.</summary>
    public bool Self { get; set; }
}

/// <summary>The data of a datastore discovery event.</summary>
public sealed class DatastoreDiscoveryData
{
    /// <summary>The store's scope.</summary>
    public string Scope { get; set; } = "";

    /// <summary>The provider.</summary>
    public string Provider { get; set; } = "";

    /// <summary>The address.</summary>
    public string Address { get; set; } = "";
}

/// <summary><c>IpamDriver.GetCapabilities</c> reply.</summary>
public sealed class IpamCapabilitiesResponse : IpamResponse
{
    /// <summary>The IPAM wants the endpoint's MAC in RequestAddress options.</summary>
    [JsonPropertyName("RequiresMACAddress")]
    public bool RequiresMacAddress { get; set; }

    /// <summary>The IPAM wants its requests replayed at start.</summary>
    public bool RequiresRequestReplay { get; set; }

    /// <summary>A CnmSharp extension: the IPAM records the owner option of every request and answers
    /// <see cref="PluginMethods.ReleaseOwner"/>. Docker ignores the field.</summary>
    public bool ReleasesByOwner { get; set; }
}

/// <summary><c>IpamDriver.GetDefaultAddressSpaces</c> reply.</summary>
public sealed class AddressSpacesResponse : IpamResponse
{
    /// <summary>The local default address space.</summary>
    public string? LocalDefaultAddressSpace { get; set; }

    /// <summary>The global default address space.</summary>
    public string? GlobalDefaultAddressSpace { get; set; }
}

/// <summary><c>IpamDriver.RequestPool</c> request.</summary>
public sealed class RequestPoolRequest
{
    /// <summary>The address space.</summary>
    public string AddressSpace { get; set; } = "";

    /// <summary>The wanted pool, CIDR, or empty.</summary>
    public string Pool { get; set; } = "";

    /// <summary>A sub-pool, CIDR, or empty.</summary>
    public string SubPool { get; set; } = "";

    /// <summary>IPAM options.</summary>
    public Dictionary<string, string> Options { get; set; } = [];

    /// <summary>True for an IPv6 pool.</summary>
    public bool V6 { get; set; }
}

/// <summary><c>IpamDriver.RequestPool</c> reply.</summary>
public sealed class RequestPoolResponse : IpamResponse
{
    /// <summary>The pool's id.</summary>
    [JsonPropertyName("PoolID")]
    public string? PoolId { get; set; }

    /// <summary>The pool, CIDR (required).</summary>
    public string? Pool { get; set; }

    /// <summary>Data; <see cref="PluginProtocol.GatewayRequestType"/> holds a gateway the IPAM chose.</summary>
    public Dictionary<string, string>? Data { get; set; }
}

/// <summary><c>IpamDriver.ReleasePool</c> request.</summary>
public sealed class ReleasePoolRequest
{
    /// <summary>The pool's id.</summary>
    [JsonPropertyName("PoolID")]
    public string PoolId { get; set; } = "";
}

/// <summary><c>IpamDriver.RequestAddress</c> request.</summary>
public sealed class RequestAddressRequest
{
    /// <summary>The pool's id.</summary>
    [JsonPropertyName("PoolID")]
    public string PoolId { get; set; } = "";

    /// <summary>The wanted address, plain IP, or empty.</summary>
    public string Address { get; set; } = "";

    /// <summary>Options (request type, MAC, ...).</summary>
    public Dictionary<string, string> Options { get; set; } = [];
}

/// <summary><c>IpamDriver.RequestAddress</c> reply.</summary>
public sealed class RequestAddressResponse : IpamResponse
{
    /// <summary>The address, CIDR (required).</summary>
    public string? Address { get; set; }

    /// <summary>Data.</summary>
    public Dictionary<string, string>? Data { get; set; }
}

/// <summary><c>IpamDriver.ReleaseOwner</c> request (a CnmSharp extension, see <see cref="PluginMethods.ReleaseOwner"/>).</summary>
public sealed class ReleaseOwnerRequest
{
    /// <summary>The owner, as given in the requests' <c>io.cnmsharp.ipam.owner</c> option.</summary>
    public string Owner { get; set; } = "";
}

/// <summary><c>IpamDriver.ReleaseOwner</c> reply.</summary>
public sealed class ReleaseOwnerResponse : IpamResponse
{
    /// <summary>How many pools and addresses were released.</summary>
    public int Released { get; set; }
}

/// <summary><c>IpamDriver.ReleaseAddress</c> request.</summary>
public sealed class ReleaseAddressRequest
{
    /// <summary>The pool's id.</summary>
    [JsonPropertyName("PoolID")]
    public string PoolId { get; set; } = "";

    /// <summary>The address, plain IP.</summary>
    public string Address { get; set; } = "";
}

/// <summary>A <c>.json</c> discovery file: <c>{"Name", "Addr", "TLSConfig"}</c>.</summary>
public sealed class PluginSpecFile
{
    /// <summary>The name (ignored: the name is the file's).</summary>
    public string? Name { get; set; }

    /// <summary>The address URL.</summary>
    public string? Addr { get; set; }

    /// <summary>TLS settings.</summary>
    [JsonPropertyName("TLSConfig")]
    public PluginTlsConfig? TlsConfig { get; set; }
}

/// <summary>TLS settings of a <c>.json</c> discovery file.</summary>
public sealed class PluginTlsConfig
{
    /// <summary>Skip server certificate verification (also when <see cref="CAFile"/> is empty).</summary>
    public bool InsecureSkipVerify { get; set; }

    /// <summary>The CA bundle that signs the plugin's certificate.</summary>
    public string? CAFile { get; set; }

    /// <summary>The client certificate (PEM).</summary>
    public string? CertFile { get; set; }

    /// <summary>The client key (PEM).</summary>
    public string? KeyFile { get; set; }
}

/// <summary>The source-generated JSON context of the protocol: case-insensitive reading, as Go's decoder.</summary>
[JsonSourceGenerationOptions(PropertyNameCaseInsensitive = true, ReadCommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true)]
[JsonSerializable(typeof(NetworkResponse))]
[JsonSerializable(typeof(IpamResponse))]
[JsonSerializable(typeof(ActivateResponse))]
[JsonSerializable(typeof(NetworkCapabilitiesResponse))]
[JsonSerializable(typeof(CreateNetworkRequest))]
[JsonSerializable(typeof(NetworkIdRequest))]
[JsonSerializable(typeof(AllocateNetworkRequest))]
[JsonSerializable(typeof(AllocateNetworkResponse))]
[JsonSerializable(typeof(CreateEndpointRequest))]
[JsonSerializable(typeof(CreateEndpointResponse))]
[JsonSerializable(typeof(EndpointRequest))]
[JsonSerializable(typeof(EndpointOperInfoResponse))]
[JsonSerializable(typeof(JoinRequest))]
[JsonSerializable(typeof(JoinResponse))]
[JsonSerializable(typeof(ProgramExternalConnectivityRequest))]
[JsonSerializable(typeof(DiscoveryNotification))]
[JsonSerializable(typeof(NodeDiscoveryData))]
[JsonSerializable(typeof(DatastoreDiscoveryData))]
[JsonSerializable(typeof(IpamCapabilitiesResponse))]
[JsonSerializable(typeof(AddressSpacesResponse))]
[JsonSerializable(typeof(RequestPoolRequest))]
[JsonSerializable(typeof(RequestPoolResponse))]
[JsonSerializable(typeof(ReleasePoolRequest))]
[JsonSerializable(typeof(RequestAddressRequest))]
[JsonSerializable(typeof(RequestAddressResponse))]
[JsonSerializable(typeof(ReleaseAddressRequest))]
[JsonSerializable(typeof(ReleaseOwnerRequest))]
[JsonSerializable(typeof(ReleaseOwnerResponse))]
[JsonSerializable(typeof(PluginSpecFile))]
[JsonSerializable(typeof(Dictionary<string, string>))]
[JsonSerializable(typeof(Dictionary<string, JsonElement>))]
[JsonSerializable(typeof(bool))]
[JsonSerializable(typeof(string))]
public sealed partial class PluginJsonContext : JsonSerializerContext
{
}
