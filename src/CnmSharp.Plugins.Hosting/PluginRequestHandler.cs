using System.Globalization;
using System.Net;
using System.Net.NetworkInformation;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using CnmSharp.Drivers;
using CnmSharp.Ipam;
using CnmSharp.Plugins.Protocol;
using CnmSharp.Store;
using Microsoft.Extensions.Logging;
using Wire = CnmSharp.Plugins.Protocol;

namespace CnmSharp.Plugins.Hosting;

/// <summary>One reply of the plugin protocol: the HTTP status and the JSON body.</summary>
/// <param name="StatusCode">200 on success; see <see cref="PluginRequestHandler"/> for errors.</param>
/// <param name="Body">The UTF-8 JSON body (never empty).</param>
public sealed record PluginReply(int StatusCode, byte[] Body);

/// <summary>
/// Answers Docker's plugin protocol for one CnmSharp network driver and/or IPAM, independent of the HTTP server: a
/// path (<c>/Plugin.Activate</c>, <c>/NetworkDriver.*</c>, <c>/IpamDriver.*</c>) and a body in, a <see cref="PluginReply"/>
/// out. Requests are read as dockerd sends them (empty bodies for calls without arguments, any Content-Type, field
/// names case-insensitive, unknown fields ignored); replies are what dockerd expects:
/// <list type="bullet">
/// <item>success: 200 and the reply (<c>{}</c> when there is nothing to say);</item>
/// <item>a NetworkDriver error: 500 and <c>{"Err": "..."}</c> (400 for a request that does not parse);</item>
/// <item>an IpamDriver error: 200 and <c>{"Error": "..."}</c> (dockerd reads an IPAM error from that field of a 200
/// reply; a non-200 reply would show it the raw JSON);</item>
/// <item>a method the wrapped driver does not implement (external connectivity, network allocation) or an unknown
/// path: 404 and <c>{"Err": "..."}</c>, which dockerd treats as "not implemented" where the protocol allows it.</item>
/// </list>
/// The host keeps a record of each network and endpoint it created (<see cref="HostState"/>) so that a Join after a
/// restart of the host finds the endpoint's interface; the wrapped driver and IPAM keep their own state.
/// </summary>
public sealed partial class PluginRequestHandler
{
    private static readonly byte[] s_empty = "{}"u8.ToArray();
    private readonly INetworkDriver? _driver;
    private readonly IIpamDriver? _ipam;
    private readonly HostState _state;
    private readonly ILogger _logger;

    /// <summary>Creates the handler.</summary>
    /// <param name="driver">The network driver to serve, or null for an IPAM-only plugin.</param>
    /// <param name="ipam">The IPAM to serve, or null for a driver-only plugin.</param>
    /// <param name="store">Where the host keeps its records of networks and endpoints (under <c>plugin-host/</c>).</param>
    /// <param name="logger">Logging.</param>
    public PluginRequestHandler(INetworkDriver? driver, IIpamDriver? ipam, IKeyValueStore store, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(logger);
        if (driver is null && ipam is null)
        {
            throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidOption, "plugin host", "serves nothing: give a network driver, an IPAM or both");
        }

        _driver = driver;
        _ipam = ipam;
        _state = new HostState(store);
        _logger = logger;
    }

    /// <summary>The interfaces <c>Plugin.Activate</c> lists.</summary>
    public IReadOnlyList<string> Implements =>
        [.. _driver is null ? [] : new[] { PluginProtocol.NetworkDriverInterface }, .. _ipam is null ? [] : new[] { PluginProtocol.IpamDriverInterface }];

    /// <summary>Answers one call.</summary>
    /// <param name="path">The request path, for example <c>/NetworkDriver.Join</c>.</param>
    /// <param name="body">The request body (empty for calls without arguments).</param>
    /// <param name="cancellationToken">Cancels the call (the client went away, the host stops).</param>
    /// <returns>The reply.</returns>
    public async ValueTask<PluginReply> HandleAsync(string path, ReadOnlyMemory<byte> body, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(path);
        var ipamCall = path.StartsWith("/IpamDriver.", StringComparison.Ordinal);
        try
        {
            if (path == PluginMethods.Activate)
            {
                return Ok(new ActivateResponse { Implements = [.. Implements] }, PluginJsonContext.Default.ActivateResponse);
            }

            if (ipamCall)
            {
                return _ipam is null ? NotFound(path, "this plugin implements no IpamDriver") : await HandleIpamAsync(_ipam, path, body, cancellationToken).ConfigureAwait(false);
            }

            if (path.StartsWith("/NetworkDriver.", StringComparison.Ordinal))
            {
                return _driver is null ? NotFound(path, "this plugin implements no NetworkDriver") : await HandleNetworkAsync(_driver, path, body, cancellationToken).ConfigureAwait(false);
            }

            return NotFound(path, "unknown method");
        }
        catch (JsonException ex)
        {
            Log.BadRequest(_logger, path, ex.Message);
            return Error(ipamCall, 400, $"{path.TrimStart('/')}: malformed request: {ex.Message}");
        }
        catch (CnmNotImplementedException ex) when (!ipamCall)
        {
            return NotFound(path, Describe(ex));
        }
        catch (CnmException ex)
        {
            var text = Describe(ex);
            Log.CallFailed(_logger, path, ex.Code, text);
            return Error(ipamCall, 500, text);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            Log.CallCrashed(_logger, path, ex);
            return Error(ipamCall, 500, $"{path.TrimStart('/')}: internal error: {ex.Message}");
        }
    }

    private static string Describe(CnmException ex) => string.IsNullOrEmpty(ex.Subject) ? ex.Reason : $"{ex.Subject}: {ex.Reason}";

    private async ValueTask<PluginReply> HandleNetworkAsync(INetworkDriver driver, string path, ReadOnlyMemory<byte> body, CancellationToken ct)
    {
        switch (path)
        {
            case PluginMethods.NetworkGetCapabilities:
                return Ok(new NetworkCapabilitiesResponse { Scope = ScopeName(driver.Capability.DataScope), ConnectivityScope = ScopeName(driver.Capability.ConnectivityScope) }, PluginJsonContext.Default.NetworkCapabilitiesResponse);

            case PluginMethods.CreateNetwork:
                await CreateNetworkAsync(driver, Read(body, PluginJsonContext.Default.CreateNetworkRequest), ct).ConfigureAwait(false);
                return OkEmpty();

            case PluginMethods.DeleteNetwork:
            {
                var request = Read(body, PluginJsonContext.Default.NetworkIdRequest);
                RequireId(request.NetworkId, "NetworkID");
                await driver.DeleteNetworkAsync(request.NetworkId, ct).ConfigureAwait(false);
                await _state.DeleteNetworkAsync(request.NetworkId, ct).ConfigureAwait(false);
                return OkEmpty();
            }

            case PluginMethods.AllocateNetwork:
            {
                var request = Read(body, PluginJsonContext.Default.AllocateNetworkRequest);
                RequireId(request.NetworkId, "NetworkID");
                if (driver is not INetworkAllocatorDriver allocator)
                {
                    return NotFound(path, "the driver allocates no network resources");
                }

                var options = await allocator.AllocateNetworkAsync(request.NetworkId, request.Options ?? [], ToIpamData(request.IPv4Data, "IPv4Data"), ToIpamData(request.IPv6Data, "IPv6Data"), ct).ConfigureAwait(false);
                return Ok(new AllocateNetworkResponse { Options = new Dictionary<string, string>(options, StringComparer.Ordinal) }, PluginJsonContext.Default.AllocateNetworkResponse);
            }

            case PluginMethods.FreeNetwork:
            {
                var request = Read(body, PluginJsonContext.Default.NetworkIdRequest);
                RequireId(request.NetworkId, "NetworkID");
                if (driver is not INetworkAllocatorDriver allocator)
                {
                    return NotFound(path, "the driver allocates no network resources");
                }

                await allocator.FreeNetworkAsync(request.NetworkId, ct).ConfigureAwait(false);
                return OkEmpty();
            }

            case PluginMethods.CreateEndpoint:
                return await CreateEndpointAsync(driver, Read(body, PluginJsonContext.Default.CreateEndpointRequest), ct).ConfigureAwait(false) is { } filled
                    ? Ok(filled, PluginJsonContext.Default.CreateEndpointResponse)
                    : OkEmpty();

            case PluginMethods.DeleteEndpoint:
            {
                var request = ReadEndpoint(body);
                await driver.DeleteEndpointAsync(request.NetworkId, request.EndpointId, ct).ConfigureAwait(false);
                await _state.DeleteEndpointAsync(request.NetworkId, request.EndpointId, ct).ConfigureAwait(false);
                return OkEmpty();
            }

            case PluginMethods.EndpointOperInfo:
            {
                var request = ReadEndpoint(body);
                var info = await driver.GetEndpointOperationalInfoAsync(request.NetworkId, request.EndpointId, ct).ConfigureAwait(false);
                var value = info.ToDictionary(kv => kv.Key, kv => JsonSerializer.SerializeToElement(kv.Value, PluginJsonContext.Default.String), StringComparer.Ordinal);
                return Ok(new EndpointOperInfoResponse { Value = value }, PluginJsonContext.Default.EndpointOperInfoResponse);
            }

            case PluginMethods.Join:
                return Ok(await JoinAsync(driver, Read(body, PluginJsonContext.Default.JoinRequest), ct).ConfigureAwait(false), PluginJsonContext.Default.JoinResponse);

            case PluginMethods.Leave:
            {
                var request = ReadEndpoint(body);
                await driver.LeaveAsync(request.NetworkId, request.EndpointId, ct).ConfigureAwait(false);
                return OkEmpty();
            }

            case PluginMethods.ProgramExternalConnectivity:
            {
                var request = Read(body, PluginJsonContext.Default.ProgramExternalConnectivityRequest);
                RequireId(request.NetworkId, "NetworkID");
                RequireId(request.EndpointId, "EndpointID");
                if (driver is not IExternalConnectivityDriver external)
                {
                    return NotFound(path, "the driver programs no external connectivity");
                }

                await external.ProgramExternalConnectivityAsync(request.NetworkId, request.EndpointId, ct).ConfigureAwait(false);
                return OkEmpty();
            }

            case PluginMethods.RevokeExternalConnectivity:
            {
                var request = ReadEndpoint(body);
                if (driver is not IExternalConnectivityDriver external)
                {
                    return NotFound(path, "the driver programs no external connectivity");
                }

                await external.RevokeExternalConnectivityAsync(request.NetworkId, request.EndpointId, ct).ConfigureAwait(false);
                return OkEmpty();
            }

            case PluginMethods.DiscoverNew:
            case PluginMethods.DiscoverDelete:
            {
                var request = Read(body, PluginJsonContext.Default.DiscoveryNotification);
                if (driver is IDiscoveryAwareDriver aware && ToDiscovery(request) is { } discovery)
                {
                    if (path == PluginMethods.DiscoverNew)
                    {
                        await aware.DiscoverNewAsync(discovery, ct).ConfigureAwait(false);
                    }
                    else
                    {
                        await aware.DiscoverDeleteAsync(discovery, ct).ConfigureAwait(false);
                    }
                }

                return OkEmpty();
            }

            default:
                return NotFound(path, "unknown method");
        }
    }

    private async ValueTask CreateNetworkAsync(INetworkDriver driver, Wire.CreateNetworkRequest request, CancellationToken ct)
    {
        RequireId(request.NetworkId, "NetworkID");

        // A field sent as JSON null reads as null whatever its declared type: no options.
        var requestOptions = request.Options ?? [];
        var driverOptions = new Dictionary<string, string>(StringComparer.Ordinal);
        if (requestOptions.TryGetValue(PluginProtocol.GenericOption, out var generic))
        {
            if (generic.ValueKind == JsonValueKind.Object)
            {
                foreach (var property in generic.EnumerateObject())
                {
                    driverOptions[property.Name] = OptionText(property.Value);
                }
            }
            else if (generic.ValueKind is not (JsonValueKind.Null or JsonValueKind.Undefined))
            {
                throw Invalid("CreateNetwork", $"option {PluginProtocol.GenericOption} must be an object");
            }
        }

        var ipv4 = ToIpamData(request.IPv4Data, "IPv4Data");
        var ipv6 = ToIpamData(request.IPv6Data, "IPv6Data");
        var create = new NetworkCreateRequest
        {
            NetworkId = request.NetworkId,
            NetworkName = request.NetworkId.Length > 12 ? request.NetworkId[..12] : request.NetworkId,
            DriverOptions = driverOptions,
            EnableIPv6 = Flag(requestOptions, PluginProtocol.EnableIPv6Option) || ipv6.Count > 0,
            Internal = Flag(requestOptions, PluginProtocol.InternalOption),
            IPv4Data = ipv4,
            IPv6Data = ipv6,
        };

        // The record first: a host stopped between the two still knows the network, and a DeleteNetwork removes both.
        await _state.PutNetworkAsync(new HostNetworkRecord { Id = request.NetworkId, IPv4Pools = [.. ipv4.Select(d => d.Pool.ToString())], IPv6Pools = [.. ipv6.Select(d => d.Pool.ToString())] }, ct).ConfigureAwait(false);
        try
        {
            await driver.CreateNetworkAsync(create, ct).ConfigureAwait(false);
        }
        catch
        {
            await _state.DeleteNetworkAsync(request.NetworkId, CancellationToken.None).ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Creates the endpoint; the reply's interface holds only what the driver filled in, null when nothing.</summary>
    private async ValueTask<CreateEndpointResponse?> CreateEndpointAsync(INetworkDriver driver, Wire.CreateEndpointRequest request, CancellationToken ct)
    {
        RequireId(request.NetworkId, "NetworkID");
        RequireId(request.EndpointId, "EndpointID");
        var wire = request.Interface ?? new EndpointInterface();
        var address = ParseCidr(wire.Address, "Interface.Address", ipv6: false);
        var address6 = ParseCidr(wire.AddressIPv6, "Interface.AddressIPv6", ipv6: true);
        var mac = ParseMac(wire.MacAddress, "Interface.MacAddress");
        var driverOptions = new Dictionary<string, string>(StringComparer.Ordinal);
        IReadOnlyList<TransportPort> exposed = [];
        IReadOnlyList<PortBinding> bindings = [];
        foreach (var (key, value) in request.Options ?? [])
        {
            switch (key)
            {
                case PluginProtocol.ExposedPortsOption:
                    exposed = ParseExposedPorts(value);
                    break;
                case PluginProtocol.PortMapOption:
                    bindings = ParsePortMap(value);
                    break;
                case PluginProtocol.MacAddressOption:
                    mac ??= ParseBase64Mac(value);
                    break;
                default:
                    if (value.ValueKind is not (JsonValueKind.Null or JsonValueKind.Undefined))
                    {
                        driverOptions[key] = OptionText(value);
                    }

                    break;
            }
        }

        var info = new HostInterfaceInfo(mac, address, address6);
        var create = new EndpointCreateRequest
        {
            NetworkId = request.NetworkId,
            EndpointId = request.EndpointId,
            EndpointName = request.EndpointId.Length > 12 ? request.EndpointId[..12] : request.EndpointId,
            DriverOptions = driverOptions,
            ExposedPorts = exposed,
            PortBindings = bindings,
        };
        await driver.CreateEndpointAsync(create, info, ct).ConfigureAwait(false);
        try
        {
            await _state.PutEndpointAsync(new HostEndpointRecord
            {
                NetworkId = request.NetworkId,
                Id = request.EndpointId,
                Address = info.Address?.ToString() ?? "",
                AddressIPv6 = info.AddressIPv6?.ToString() ?? "",
                MacAddress = info.MacAddress is { } m ? FormatMac(m) : "",
            }, ct).ConfigureAwait(false);
        }
        catch
        {
            await driver.DeleteEndpointAsync(request.NetworkId, request.EndpointId, CancellationToken.None).ConfigureAwait(false);
            throw;
        }

        // Only what the driver filled in: returning a value the caller set is a conflict for dockerd.
        if (info.SetMac is null && info.SetAddress is null && info.SetAddressIPv6 is null)
        {
            return null;
        }

        return new CreateEndpointResponse
        {
            Interface = new EndpointInterface
            {
                Address = info.SetAddress?.ToString() ?? "",
                AddressIPv6 = info.SetAddressIPv6?.ToString() ?? "",
                MacAddress = info.SetMac is { } set ? FormatMac(set) : "",
            },
        };
    }

    private async ValueTask<JoinResponse> JoinAsync(INetworkDriver driver, Wire.JoinRequest request, CancellationToken ct)
    {
        RequireId(request.NetworkId, "NetworkID");
        RequireId(request.EndpointId, "EndpointID");
        if (string.IsNullOrEmpty(request.SandboxKey))
        {
            throw Invalid("Join", "SandboxKey is required");
        }

        var record = await _state.GetEndpointAsync(request.NetworkId, request.EndpointId, ct).ConfigureAwait(false)
            ?? throw new CnmNotFoundException(CnmErrorCodes.NoSuchEndpoint, $"endpoint {request.EndpointId}", $"not found in network {request.NetworkId}");
        var interfaceInfo = new HostInterfaceInfo(
            ParseMac(record.MacAddress, "MacAddress"),
            ParseCidr(record.Address, "Address", ipv6: false),
            ParseCidr(record.AddressIPv6, "AddressIPv6", ipv6: true));
        var options = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (key, value) in request.Options ?? [])
        {
            if (value.ValueKind is not (JsonValueKind.Null or JsonValueKind.Undefined))
            {
                options[key] = OptionText(value);
            }
        }

        var join = new Drivers.JoinRequest
        {
            NetworkId = request.NetworkId,
            EndpointId = request.EndpointId,
            SandboxId = Path.GetFileName(request.SandboxKey) is { Length: > 0 } id ? id : request.SandboxKey,
            SandboxKey = request.SandboxKey,
            Options = options,

            // The daemon moves the interface into the sandbox: it must stay in the host namespace.
            InterfaceInHostNamespace = true,
        };
        var info = new HostJoinInfo(interfaceInfo);
        await driver.JoinAsync(join, info, ct).ConfigureAwait(false);
        if (info.SourceName is not null && info.Placement != InterfacePlacement.HostNamespace)
        {
            // A driver that cannot leave the interface in the host namespace cannot be served through the protocol.
            await driver.LeaveAsync(request.NetworkId, request.EndpointId, CancellationToken.None).ConfigureAwait(false);
            throw new CnmNotImplementedException(CnmErrorCodes.NotImplemented, $"endpoint {request.EndpointId}", "the driver created the interface inside the sandbox; a plugin must leave it in the host namespace for the daemon to move");
        }

        return new JoinResponse
        {
            InterfaceName = info.SourceName is null ? null : new InterfaceName { SrcName = info.SourceName, DstPrefix = info.DestinationPrefix! },
            Gateway = info.Gateway?.ToString() ?? "",
            GatewayIPv6 = info.GatewayIPv6?.ToString() ?? "",
            StaticRoutes = info.Routes.Count == 0 ? null : [.. info.Routes.Select(r => new WireStaticRoute
            {
                Destination = r.Destination.ToString(),
                RouteType = r.Type == RouteType.Connected ? PluginProtocol.RouteTypeConnected : PluginProtocol.RouteTypeNextHop,
                NextHop = r.NextHop?.ToString() ?? "",
            })],
            DisableGatewayService = info.GatewayServiceDisabled,
        };
    }

    private static async ValueTask<PluginReply> HandleIpamAsync(IIpamDriver ipam, string path, ReadOnlyMemory<byte> body, CancellationToken ct)
    {
        switch (path)
        {
            case PluginMethods.IpamGetCapabilities:
                return Ok(new IpamCapabilitiesResponse
                {
                    RequiresMacAddress = ipam.Capability.RequiresMacAddress,
                    RequiresRequestReplay = ipam.Capability.RequiresRequestReplay,
                    ReleasesByOwner = IIpamOwnerRelease.Of(ipam) is not null,
                }, PluginJsonContext.Default.IpamCapabilitiesResponse);

            case PluginMethods.GetDefaultAddressSpaces:
            {
                var spaces = await ipam.GetDefaultAddressSpacesAsync(ct).ConfigureAwait(false);
                return Ok(new AddressSpacesResponse { LocalDefaultAddressSpace = spaces.Local, GlobalDefaultAddressSpace = spaces.Global }, PluginJsonContext.Default.AddressSpacesResponse);
            }

            case PluginMethods.RequestPool:
            {
                var request = Read(body, PluginJsonContext.Default.RequestPoolRequest);
                var pool = await ipam.RequestPoolAsync(new PoolRequest
                {
                    AddressSpace = request.AddressSpace,
                    Pool = NullIfEmpty(request.Pool),
                    SubPool = NullIfEmpty(request.SubPool),
                    Options = request.Options ?? [],
                    IPv6 = request.V6,
                }, ct).ConfigureAwait(false);
                return Ok(new RequestPoolResponse { PoolId = pool.PoolId, Pool = pool.Pool.ToString(), Data = new Dictionary<string, string>(pool.Meta, StringComparer.Ordinal) }, PluginJsonContext.Default.RequestPoolResponse);
            }

            case PluginMethods.ReleasePool:
            {
                var request = Read(body, PluginJsonContext.Default.ReleasePoolRequest);
                RequirePoolId(request.PoolId);
                await ipam.ReleasePoolAsync(request.PoolId, ct).ConfigureAwait(false);
                return OkEmpty();
            }

            case PluginMethods.RequestAddress:
            {
                var request = Read(body, PluginJsonContext.Default.RequestAddressRequest);
                RequirePoolId(request.PoolId);
                var preferred = ParseIP(request.Address, "Address");
                var address = await ipam.RequestAddressAsync(request.PoolId, preferred, request.Options ?? [], ct).ConfigureAwait(false);
                if (address.Address is not { } given)
                {
                    throw new CnmNotImplementedException(CnmErrorCodes.NotImplemented, $"pool {request.PoolId}", "this IPAM gives no addresses");
                }

                return Ok(new RequestAddressResponse { Address = given.ToString(), Data = new Dictionary<string, string>(address.Meta, StringComparer.Ordinal) }, PluginJsonContext.Default.RequestAddressResponse);
            }

            case PluginMethods.ReleaseAddress:
            {
                var request = Read(body, PluginJsonContext.Default.ReleaseAddressRequest);
                RequirePoolId(request.PoolId);
                var address = ParseIP(request.Address, "Address") ?? throw Invalid("ReleaseAddress", "Address is required");
                await ipam.ReleaseAddressAsync(request.PoolId, address, ct).ConfigureAwait(false);
                return OkEmpty();
            }

            case PluginMethods.ReleaseOwner when IIpamOwnerRelease.Of(ipam) is { } release:
            {
                var request = Read(body, PluginJsonContext.Default.ReleaseOwnerRequest);
                if (string.IsNullOrEmpty(request.Owner))
                {
                    throw Invalid("ReleaseOwner", "Owner is required");
                }

                var released = await release.ReleaseOwnerAsync(request.Owner, ct).ConfigureAwait(false);
                return Ok(new ReleaseOwnerResponse { Released = released }, PluginJsonContext.Default.ReleaseOwnerResponse);
            }

            default:
                return NotFound(path, "unknown method");
        }
    }

    private static string ScopeName(DriverScope scope) => scope == DriverScope.Local ? "local" : "global";

    private static DiscoveryEvent? ToDiscovery(DiscoveryNotification request)
    {
        if (request.DiscoveryType == PluginProtocol.NodeDiscoveryType && request.DiscoveryData.ValueKind == JsonValueKind.Object)
        {
            var node = request.DiscoveryData.Deserialize(PluginJsonContext.Default.NodeDiscoveryData);
            return node is null ? null : new NodeDiscovery(node.Address, node.BindAddress, node.Self);
        }

        if (request.DiscoveryType == PluginProtocol.DatastoreDiscoveryType && request.DiscoveryData.ValueKind == JsonValueKind.Object)
        {
            var store = request.DiscoveryData.Deserialize(PluginJsonContext.Default.DatastoreDiscoveryData);
            return store is null ? null : new DatastoreDiscovery(string.Equals(store.Scope, "global", StringComparison.Ordinal) ? DriverScope.Global : DriverScope.Local, store.Provider, store.Address);
        }

        return null;
    }

    private static T Read<T>(ReadOnlyMemory<byte> body, JsonTypeInfo<T> info)
        where T : class
    {
        if (body.IsEmpty)
        {
            throw new JsonException("empty body");
        }

        return JsonSerializer.Deserialize(body.Span, info) ?? throw new JsonException("null body");
    }

    private static EndpointRequest ReadEndpoint(ReadOnlyMemory<byte> body)
    {
        var request = Read(body, PluginJsonContext.Default.EndpointRequest);
        RequireId(request.NetworkId, "NetworkID");
        RequireId(request.EndpointId, "EndpointID");
        return request;
    }

    private static void RequireId(string? value, string field)
    {
        if (string.IsNullOrEmpty(value) || value.Contains('/', StringComparison.Ordinal) || value.Any(char.IsControl))
        {
            throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidRequest, field, string.IsNullOrEmpty(value) ? "is required" : "is not a valid id");
        }
    }

    private static void RequirePoolId(string? value)
    {
        if (string.IsNullOrEmpty(value))
        {
            throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidRequest, "PoolID", "is required");
        }
    }

    private static CnmInvalidArgumentException Invalid(string method, string reason) => new(CnmErrorCodes.InvalidRequest, method, reason);

    private static bool Flag(Dictionary<string, JsonElement> options, string key) =>
        options.TryGetValue(key, out var value) && value.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.String => bool.TryParse(Text(value), out var b) && b,
            _ => false,
        };

    /// <summary>An option value as the drivers take it: a JSON string's text, anything else its raw JSON.</summary>
    private static string OptionText(JsonElement value) =>
        value.ValueKind == JsonValueKind.String ? Text(value) ?? "" : value.GetRawText();

    /// <summary>A JSON string's text; a lone surrogate escape (not valid UTF-16) is a malformed request.</summary>
    private static string? Text(JsonElement value)
    {
        try
        {
            return value.GetString();
        }
        catch (InvalidOperationException ex)
        {
            throw new JsonException("a string is not valid UTF-16: " + ex.Message, ex);
        }
    }

    private static string? NullIfEmpty(string? text) => string.IsNullOrEmpty(text) ? null : text;

    private static List<IpamData> ToIpamData(List<WireIpamData>? data, string field)
    {
        var result = new List<IpamData>();
        foreach (var d in data ?? [])
        {
            if (d is null)
            {
                throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidPool, field, "an entry is null");
            }

            if (!IPNetworks.TryParse(d.Pool, allowHostBits: false, out var pool))
            {
                throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidPool, field, $"invalid pool \"{d.Pool}\"");
            }

            CidrAddress? gateway = null;
            if (!string.IsNullOrEmpty(d.Gateway))
            {
                gateway = CidrAddress.TryParse(d.Gateway, out var g) && d.Gateway.Contains('/', StringComparison.Ordinal) && pool.Contains(g.Address)
                    ? g
                    : throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidGateway, field, $"invalid gateway \"{d.Gateway}\" for pool {d.Pool} (ip/len expected)");
            }

            var aux = new Dictionary<string, CidrAddress>(StringComparer.Ordinal);
            foreach (var (name, text) in d.AuxAddresses ?? [])
            {
                aux[name] = CidrAddress.TryParse(text, out var a) && text.Contains('/', StringComparison.Ordinal)
                    ? a
                    : throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidAddress, field, $"invalid auxiliary address {name} \"{text}\" (ip/len expected)");
            }

            result.Add(new IpamData(d.AddressSpace ?? "", pool, gateway, aux));
        }

        return result;
    }

    private static CidrAddress? ParseCidr(string? text, string field, bool ipv6)
    {
        if (string.IsNullOrEmpty(text))
        {
            return null;
        }

        return CidrAddress.TryParse(text, out var address) && text.Contains('/', StringComparison.Ordinal) && address.IsIPv6 == ipv6
            ? address
            : throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidAddress, field, $"invalid address \"{text}\" ({(ipv6 ? "IPv6" : "IPv4")} ip/len expected)");
    }

    private static IPAddress? ParseIP(string? text, string field) =>
        string.IsNullOrEmpty(text) ? null
            : IPAddressText.TryParseStrict(text, out var address) ? address
            : throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidAddress, field, $"invalid address \"{text}\" (a plain IP expected)");

    private static PhysicalAddress? ParseMac(string? text, string field)
    {
        if (string.IsNullOrEmpty(text))
        {
            return null;
        }

        var parts = text.Split(':');
        var bytes = new byte[6];
        if (parts.Length != 6 || !parts.Select((p, i) => p.Length == 2 && byte.TryParse(p, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out bytes[i])).All(ok => ok))
        {
            throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidAddress, field, $"invalid MAC address \"{text}\" (aa:bb:cc:dd:ee:ff expected)");
        }

        return new PhysicalAddress(bytes);
    }

    private static PhysicalAddress? ParseBase64Mac(JsonElement value)
    {
        if (value.ValueKind != JsonValueKind.String || string.IsNullOrEmpty(Text(value)))
        {
            return null;
        }

        try
        {
            var bytes = Convert.FromBase64String(Text(value)!);
            return bytes.Length == 6 ? new PhysicalAddress(bytes) : throw new FormatException("not 6 bytes");
        }
        catch (FormatException ex)
        {
            throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidAddress, PluginProtocol.MacAddressOption, $"invalid MAC address option: {ex.Message}");
        }
    }

    private static string FormatMac(PhysicalAddress mac) =>
        string.Join(':', mac.GetAddressBytes().Select(b => b.ToString("x2", CultureInfo.InvariantCulture)));

    private static List<TransportPort> ParseExposedPorts(JsonElement value)
    {
        var ports = new List<TransportPort>();
        if (value.ValueKind == JsonValueKind.Null)
        {
            return ports;
        }

        if (value.ValueKind != JsonValueKind.Array)
        {
            throw Invalid("CreateEndpoint", $"option {PluginProtocol.ExposedPortsOption} must be an array");
        }

        foreach (var item in value.EnumerateArray())
        {
            ports.Add(new TransportPort(Protocol(item), Port(item, "Port")));
        }

        return ports;
    }

    private static List<PortBinding> ParsePortMap(JsonElement value)
    {
        var bindings = new List<PortBinding>();
        if (value.ValueKind == JsonValueKind.Null)
        {
            return bindings;
        }

        if (value.ValueKind != JsonValueKind.Array)
        {
            throw Invalid("CreateEndpoint", $"option {PluginProtocol.PortMapOption} must be an array");
        }

        foreach (var item in value.EnumerateArray())
        {
            var protocol = Protocol(item);
            var hostIP = PortMapText(item, "HostIP") is { Length: > 0 } hostText
                ? ParseIP(hostText, "HostIP")!
                : IPAddress.Any;
            var containerIP = PortMapText(item, "IP") is { Length: > 0 } containerText ? ParseIP(containerText, "IP") : null;
            bindings.Add(new PortBinding(protocol, Port(item, "Port"), hostIP, Port(item, "HostPort"), Port(item, "HostPortEnd")) { ContainerIP = containerIP });
        }

        return bindings;
    }

    /// <summary>A port map entry's address field: a string, null or absent; anything else is refused.</summary>
    private static string? PortMapText(JsonElement item, string field) =>
        !item.TryGetProperty(field, out var value) || value.ValueKind == JsonValueKind.Null ? null
            : value.ValueKind == JsonValueKind.String ? Text(value)
            : throw Invalid("CreateEndpoint", $"port map field {field} must be a string");

    private static TransportProtocol Protocol(JsonElement item)
    {
        if (item.ValueKind != JsonValueKind.Object || !item.TryGetProperty("Proto", out var proto) || !proto.TryGetInt32(out var number))
        {
            throw Invalid("CreateEndpoint", "a port needs a numeric Proto");
        }

        return number switch
        {
            6 => TransportProtocol.Tcp,
            17 => TransportProtocol.Udp,
            132 => TransportProtocol.Sctp,
            _ => throw Invalid("CreateEndpoint", $"unknown port protocol {number} (6, 17 or 132 expected)"),
        };
    }

    private static ushort Port(JsonElement item, string field) =>
        !item.TryGetProperty(field, out var port) || port.ValueKind == JsonValueKind.Null ? (ushort)0
            : port.TryGetUInt16(out var value) ? value
            : throw Invalid("CreateEndpoint", $"invalid {field}");

    private static PluginReply Ok<T>(T reply, JsonTypeInfo<T> info) => new(200, JsonSerializer.SerializeToUtf8Bytes(reply, info));

    private static PluginReply OkEmpty() => new(200, s_empty);

    private static PluginReply NotFound(string path, string reason) =>
        new(404, JsonSerializer.SerializeToUtf8Bytes(new NetworkResponse { Err = $"{path.TrimStart('/')}: {reason}" }, PluginJsonContext.Default.NetworkResponse));

    private static PluginReply Error(bool ipam, int status, string text) =>
        ipam
            ? new(200, JsonSerializer.SerializeToUtf8Bytes(new IpamResponse { Error = text }, PluginJsonContext.Default.IpamResponse))
            : new(status, JsonSerializer.SerializeToUtf8Bytes(new NetworkResponse { Err = text }, PluginJsonContext.Default.NetworkResponse));

    private static partial class Log
    {
        [LoggerMessage(EventId = 1, Level = LogLevel.Warning, Message = "Plugin call {Path}: malformed request: {Reason}")]
        public static partial void BadRequest(ILogger logger, string path, string reason);

        [LoggerMessage(EventId = 2, Level = LogLevel.Information, Message = "Plugin call {Path} refused ({Code}): {Reason}")]
        public static partial void CallFailed(ILogger logger, string path, string code, string reason);

        [LoggerMessage(EventId = 3, Level = LogLevel.Error, Message = "Plugin call {Path} failed")]
        public static partial void CallCrashed(ILogger logger, string path, Exception exception);
    }
}
