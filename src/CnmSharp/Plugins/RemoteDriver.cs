using System.Buffers;
using System.Net;
using System.Text.Json;
using CnmSharp.Core;
using CnmSharp.Diagnostics;
using CnmSharp.Drivers;
using CnmSharp.Plugins.Protocol;
using Microsoft.Extensions.Logging;
using Wire = CnmSharp.Plugins.Protocol;

namespace CnmSharp.Plugins;

/// <summary>
/// A network driver served by a Docker plugin (libnetwork's <c>drivers/remote</c>): every contract call is one
/// <c>NetworkDriver.*</c> call. Replies are applied whole and checked: a CreateEndpoint reply that cannot be applied
/// (a value the caller already set, a malformed address or MAC) is rolled back with DeleteEndpoint; a Join reply gives
/// the interface (created in the host namespace: the core moves it), the gateways, the static routes and
/// DisableGatewayService. A 404 on ProgramExternalConnectivity / RevokeExternalConnectivity means "not implemented"
/// and is fine; AllocateNetwork and FreeNetwork treat it the same way (a plugin that allocates nothing).
/// </summary>
public sealed class RemoteDriver : INetworkDriver, IExternalConnectivityDriver, IDiscoveryAwareDriver, INetworkAllocatorDriver
{
    private readonly PluginClient _client;
    private readonly ILogger _logger;

    private RemoteDriver(PluginClient client, DriverCapability capability, ILogger logger)
    {
        _client = client;
        Capability = capability;
        _logger = logger;
    }

    /// <inheritdoc />
    public DriverCapability Capability { get; }

    /// <summary>The plugin's name.</summary>
    public string Name => _client.Name;

    /// <summary>Activates the plugin, checks it is a network driver, and reads its capabilities
    /// (<c>Scope</c> is required: <c>{}</c> or an unknown scope is a protocol error).</summary>
    /// <param name="client">The plugin.</param>
    /// <param name="logger">Logging.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The driver.</returns>
    public static async ValueTask<RemoteDriver> CreateAsync(PluginClient client, ILogger logger, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(logger);
        var reply = await client.CallAsync(PluginProtocol.NetworkDriverInterface, PluginMethods.NetworkGetCapabilities, (NetworkIdRequest?)null, PluginJsonContext.Default.NetworkIdRequest, PluginJsonContext.Default.NetworkCapabilitiesResponse, cancellationToken).ConfigureAwait(false);
        var scope = ParseScope(client.Name, "Scope", reply.Scope, required: true)!.Value;
        var connectivity = ParseScope(client.Name, "ConnectivityScope", reply.ConnectivityScope, required: false) ?? scope;
        return new RemoteDriver(client, new DriverCapability(scope, connectivity), logger);
    }

    private static DriverScope? ParseScope(string name, string field, string? value, bool required) => value switch
    {
        "local" => DriverScope.Local,
        "global" => DriverScope.Global,
        null or "" when !required => null,
        _ => throw new CnmInternalException(CnmErrorCodes.PluginProtocolError, $"plugin \"{name}\"", $"NetworkDriver.GetCapabilities: invalid {field} \"{value}\" (local or global expected)"),
    };

    /// <summary>The controller's fault injector (tests only), or null.</summary>
    internal Diagnostics.FaultPoints? Faults { get; set; }

    private async ValueTask<TResponse> CallAsync<TRequest, TResponse>(string method, TRequest request, System.Text.Json.Serialization.Metadata.JsonTypeInfo<TRequest> requestInfo, System.Text.Json.Serialization.Metadata.JsonTypeInfo<TResponse> responseInfo, CancellationToken cancellationToken)
        where TResponse : class, new()
    {
        var reply = await _client.CallAsync(PluginProtocol.NetworkDriverInterface, method, request, requestInfo, responseInfo, cancellationToken).ConfigureAwait(false);
        Diagnostics.FaultPointExtensions.Hit(Faults, Diagnostics.FaultPoint.PluginDriverReplied);
        return reply;
    }

    /// <inheritdoc />
    public async ValueTask CreateNetworkAsync(NetworkCreateRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        var options = new Dictionary<string, JsonElement>(StringComparer.Ordinal)
        {
            [PluginProtocol.GenericOption] = JsonSerializer.SerializeToElement(new Dictionary<string, string>(request.DriverOptions, StringComparer.Ordinal), PluginJsonContext.Default.DictionaryStringString),
            [PluginProtocol.EnableIPv6Option] = JsonSerializer.SerializeToElement(request.EnableIPv6, PluginJsonContext.Default.Boolean),
            [PluginProtocol.InternalOption] = JsonSerializer.SerializeToElement(request.Internal, PluginJsonContext.Default.Boolean),
        };
        await CallAsync(PluginMethods.CreateNetwork, new CreateNetworkRequest { NetworkId = request.NetworkId, Options = options, IPv4Data = ToWire(request.IPv4Data), IPv6Data = ToWire(request.IPv6Data) }, PluginJsonContext.Default.CreateNetworkRequest, PluginJsonContext.Default.NetworkResponse, cancellationToken).ConfigureAwait(false);
    }

    internal static List<WireIpamData> ToWire(IReadOnlyList<IpamData> data) =>
        data.Select(d => new WireIpamData
        {
            AddressSpace = d.AddressSpace,
            Pool = d.Pool.ToString(),
            Gateway = d.Gateway?.ToString() ?? "",
            AuxAddresses = d.AuxAddresses.ToDictionary(kv => kv.Key, kv => kv.Value.ToString(), StringComparer.Ordinal),
        }).ToList();

    /// <inheritdoc />
    public async ValueTask DeleteNetworkAsync(string networkId, CancellationToken cancellationToken = default) =>
        await CallAsync(PluginMethods.DeleteNetwork, new NetworkIdRequest { NetworkId = networkId }, PluginJsonContext.Default.NetworkIdRequest, PluginJsonContext.Default.NetworkResponse, cancellationToken).ConfigureAwait(false);

    /// <inheritdoc />
    public async ValueTask CreateEndpointAsync(EndpointCreateRequest request, IInterfaceInfo interfaceInfo, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(interfaceInfo);
        var options = new Dictionary<string, JsonElement>(StringComparer.Ordinal);
        foreach (var (key, value) in request.DriverOptions)
        {
            options[key] = JsonSerializer.SerializeToElement(value, PluginJsonContext.Default.String);
        }

        if (request.ExposedPorts.Count > 0)
        {
            options[PluginProtocol.ExposedPortsOption] = JsonArray(w =>
            {
                foreach (var port in request.ExposedPorts)
                {
                    w.WriteStartObject();
                    w.WriteNumber("Proto", (int)port.Protocol);
                    w.WriteNumber("Port", port.Port);
                    w.WriteEndObject();
                }
            });
        }

        if (request.PortBindings.Count > 0)
        {
            options[PluginProtocol.PortMapOption] = JsonArray(w =>
            {
                foreach (var binding in request.PortBindings)
                {
                    w.WriteStartObject();
                    w.WriteNumber("Proto", (int)binding.Protocol);
                    w.WriteString("IP", binding.ContainerIP?.ToString() ?? "");
                    w.WriteNumber("Port", binding.ContainerPort);
                    w.WriteString("HostIP", binding.HostIP.ToString());
                    w.WriteNumber("HostPort", binding.HostPort);
                    w.WriteNumber("HostPortEnd", binding.HostPortEnd);
                    w.WriteEndObject();
                }
            });
        }

        if (interfaceInfo.MacAddress is { } mac)
        {
            options[PluginProtocol.MacAddressOption] = JsonSerializer.SerializeToElement(Convert.ToBase64String(mac.GetAddressBytes()), PluginJsonContext.Default.String);
        }

        var wire = new CreateEndpointRequest
        {
            NetworkId = request.NetworkId,
            EndpointId = request.EndpointId,
            Interface = new EndpointInterface
            {
                Address = interfaceInfo.Address?.ToString() ?? "",
                AddressIPv6 = interfaceInfo.AddressIPv6?.ToString() ?? "",
                MacAddress = interfaceInfo.MacAddress is { } m ? Macs.Format(m) : "",
            },
            Options = options,
        };
        var reply = await CallAsync(PluginMethods.CreateEndpoint, wire, PluginJsonContext.Default.CreateEndpointRequest, PluginJsonContext.Default.CreateEndpointResponse, cancellationToken).ConfigureAwait(false);
        try
        {
            ApplyInterface(reply.Interface, interfaceInfo);
        }
        catch (CnmException ex)
        {
            // The endpoint exists in the plugin but cannot be used: delete it there, then fail.
            PluginLog.EndpointRollback(_logger, ex, Name, request.EndpointId);
            try
            {
                await DeleteEndpointAsync(request.NetworkId, request.EndpointId, CancellationToken.None).ConfigureAwait(false);
            }
            catch (CnmException rollback)
            {
                // The caller's own rollback (its intent) calls DeleteEndpoint again.
                PluginLog.EndpointRollback(_logger, rollback, Name, request.EndpointId);
            }

            throw;
        }
    }

    private static void ApplyInterface(EndpointInterface? reply, IInterfaceInfo info)
    {
        if (reply is null)
        {
            return;
        }

        // Fill only what the caller left empty; a value it already set is a conflict (the setters refuse it).
        if (!string.IsNullOrEmpty(reply.MacAddress))
        {
            if (!System.Net.NetworkInformation.PhysicalAddress.TryParse(reply.MacAddress, out var mac) || mac.GetAddressBytes().Length != 6)
            {
                throw Protocol(PluginMethods.CreateEndpoint, $"invalid MacAddress \"{reply.MacAddress}\"");
            }

            info.SetMacAddress(mac);
        }

        foreach (var (field, text) in new[] { ("Address", reply.Address), ("AddressIPv6", reply.AddressIPv6) })
        {
            if (string.IsNullOrEmpty(text))
            {
                continue;
            }

            if (!CidrAddress.TryParse(text, out var address) || (address.Address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6) != (field == "AddressIPv6"))
            {
                throw Protocol(PluginMethods.CreateEndpoint, $"invalid {field} \"{text}\"");
            }

            info.SetIPAddress(address);
        }
    }

    private static JsonElement JsonArray(Action<Utf8JsonWriter> items)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartArray();
            items(writer);
            writer.WriteEndArray();
        }

        using var document = JsonDocument.Parse(buffer.WrittenMemory);
        return document.RootElement.Clone();
    }

    /// <inheritdoc />
    public async ValueTask DeleteEndpointAsync(string networkId, string endpointId, CancellationToken cancellationToken = default) =>
        await CallAsync(PluginMethods.DeleteEndpoint, new EndpointRequest { NetworkId = networkId, EndpointId = endpointId }, PluginJsonContext.Default.EndpointRequest, PluginJsonContext.Default.NetworkResponse, cancellationToken).ConfigureAwait(false);

    /// <inheritdoc />
    public async ValueTask<IReadOnlyDictionary<string, string>> GetEndpointOperationalInfoAsync(string networkId, string endpointId, CancellationToken cancellationToken = default)
    {
        var reply = await CallAsync(PluginMethods.EndpointOperInfo, new EndpointRequest { NetworkId = networkId, EndpointId = endpointId }, PluginJsonContext.Default.EndpointRequest, PluginJsonContext.Default.EndpointOperInfoResponse, cancellationToken).ConfigureAwait(false);
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (key, value) in reply.Value ?? [])
        {
            try
            {
                result[key] = value.ValueKind == JsonValueKind.String ? value.GetString()! : value.GetRawText();
            }
            catch (InvalidOperationException ex)
            {
                // A lone surrogate escape: not valid UTF-16.
                throw new CnmInternalException(CnmErrorCodes.PluginProtocolError, $"plugin \"{Name}\"", $"{PluginMethods.EndpointOperInfo.TrimStart('/')}: value {key} is not valid text", ex);
            }
        }

        return result;
    }

    /// <inheritdoc />
    public async ValueTask JoinAsync(Drivers.JoinRequest request, IJoinInfo joinInfo, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(joinInfo);
        var options = request.Options.ToDictionary(kv => kv.Key, kv => JsonSerializer.SerializeToElement(kv.Value, PluginJsonContext.Default.String), StringComparer.Ordinal);
        var reply = await CallAsync(PluginMethods.Join, new Wire.JoinRequest { NetworkId = request.NetworkId, EndpointId = request.EndpointId, SandboxKey = request.SandboxKey, Options = options }, PluginJsonContext.Default.JoinRequest, PluginJsonContext.Default.JoinResponse, cancellationToken).ConfigureAwait(false);
        ApplyJoin(reply, joinInfo);
    }

    private static void ApplyJoin(JoinResponse reply, IJoinInfo info)
    {
        // The whole reply is checked before anything is applied.
        var gateway = ParseIP(reply.Gateway, "Gateway", System.Net.Sockets.AddressFamily.InterNetwork);
        var gateway6 = ParseIP(reply.GatewayIPv6, "GatewayIPv6", System.Net.Sockets.AddressFamily.InterNetworkV6);
        var routes = new List<StaticRoute>();
        foreach (var route in reply.StaticRoutes ?? [])
        {
            if (route is null)
            {
                throw Protocol(PluginMethods.Join, "a static route is null");
            }

            if (!IPNetworks.TryParse(route.Destination, allowHostBits: true, out var destination))
            {
                throw Protocol(PluginMethods.Join, $"invalid static route destination \"{route.Destination}\"");
            }

            switch (route.RouteType)
            {
                case PluginProtocol.RouteTypeNextHop:
                    var nextHop = ParseIP(route.NextHop, "NextHop", destination.BaseAddress.AddressFamily)
                        ?? throw Protocol(PluginMethods.Join, $"static route to {route.Destination} has no next hop");
                    routes.Add(new StaticRoute(destination, RouteType.NextHop, nextHop));
                    break;
                case PluginProtocol.RouteTypeConnected:
                    routes.Add(new StaticRoute(destination, RouteType.Connected, null));
                    break;
                default:
                    throw Protocol(PluginMethods.Join, $"static route to {route.Destination} has unknown RouteType {route.RouteType}");
            }
        }

        // A field sent as JSON null reads as null whatever its declared type.
        if (reply.InterfaceName is { } name && (!string.IsNullOrEmpty(name.SrcName) || !string.IsNullOrEmpty(name.DstPrefix)))
        {
            if (string.IsNullOrEmpty(name.SrcName) || string.IsNullOrEmpty(name.DstPrefix))
            {
                throw Protocol(PluginMethods.Join, "InterfaceName needs both SrcName and DstPrefix");
            }

            // The plugin made it in the caller's namespace, as Docker expects: the core moves it into the sandbox.
            info.SetInterfaceName(name.SrcName, name.DstPrefix, InterfacePlacement.HostNamespace);
        }

        if (gateway is not null)
        {
            info.SetGateway(gateway);
        }

        if (gateway6 is not null)
        {
            info.SetGatewayIPv6(gateway6);
        }

        foreach (var route in routes)
        {
            info.AddStaticRoute(route);
        }

        if (reply.DisableGatewayService)
        {
            info.DisableGatewayService();
        }
    }

    private static IPAddress? ParseIP(string? text, string field, System.Net.Sockets.AddressFamily family)
    {
        if (string.IsNullOrEmpty(text))
        {
            return null;
        }

        return IPAddressText.TryParseStrict(text, out var address) && address.AddressFamily == family
            ? address
            : throw Protocol(PluginMethods.Join, $"invalid {field} \"{text}\"");
    }

    private static CnmInternalException Protocol(string method, string reason) =>
        new(CnmErrorCodes.PluginProtocolError, "remote driver reply", $"{method.TrimStart('/')}: {reason}");

    /// <inheritdoc />
    public async ValueTask LeaveAsync(string networkId, string endpointId, CancellationToken cancellationToken = default) =>
        await CallAsync(PluginMethods.Leave, new EndpointRequest { NetworkId = networkId, EndpointId = endpointId }, PluginJsonContext.Default.EndpointRequest, PluginJsonContext.Default.NetworkResponse, cancellationToken).ConfigureAwait(false);

    /// <inheritdoc />
    public async ValueTask ProgramExternalConnectivityAsync(string networkId, string endpointId, CancellationToken cancellationToken = default)
    {
        try
        {
            await CallAsync(PluginMethods.ProgramExternalConnectivity, new ProgramExternalConnectivityRequest { NetworkId = networkId, EndpointId = endpointId }, PluginJsonContext.Default.ProgramExternalConnectivityRequest, PluginJsonContext.Default.NetworkResponse, cancellationToken).ConfigureAwait(false);
        }
        catch (CnmNotImplementedException ex) when (ex.Code == CnmErrorCodes.NotImplemented)
        {
            // 404: the plugin does not implement it, which is fine.
        }
    }

    /// <inheritdoc />
    public async ValueTask RevokeExternalConnectivityAsync(string networkId, string endpointId, CancellationToken cancellationToken = default)
    {
        try
        {
            await CallAsync(PluginMethods.RevokeExternalConnectivity, new EndpointRequest { NetworkId = networkId, EndpointId = endpointId }, PluginJsonContext.Default.EndpointRequest, PluginJsonContext.Default.NetworkResponse, cancellationToken).ConfigureAwait(false);
        }
        catch (CnmNotImplementedException ex) when (ex.Code == CnmErrorCodes.NotImplemented)
        {
            // 404: not implemented, fine.
        }
    }

    /// <inheritdoc />
    public ValueTask DiscoverNewAsync(DiscoveryEvent discovery, CancellationToken cancellationToken = default) =>
        DiscoverAsync(PluginMethods.DiscoverNew, discovery, cancellationToken);

    /// <inheritdoc />
    public ValueTask DiscoverDeleteAsync(DiscoveryEvent discovery, CancellationToken cancellationToken = default) =>
        DiscoverAsync(PluginMethods.DiscoverDelete, discovery, cancellationToken);

    private async ValueTask DiscoverAsync(string method, DiscoveryEvent discovery, CancellationToken cancellationToken)
    {
        var notification = discovery switch
        {
            NodeDiscovery node => new DiscoveryNotification
            {
                DiscoveryType = PluginProtocol.NodeDiscoveryType,
                DiscoveryData = JsonSerializer.SerializeToElement(new NodeDiscoveryData { Address = node.Address, BindAddress = node.BindAddress, Self = node.Self }, PluginJsonContext.Default.NodeDiscoveryData),
            },
            DatastoreDiscovery store => new DiscoveryNotification
            {
                DiscoveryType = PluginProtocol.DatastoreDiscoveryType,
                DiscoveryData = JsonSerializer.SerializeToElement(new DatastoreDiscoveryData { Scope = store.Scope.ToString().ToLowerInvariant(), Provider = store.Provider, Address = store.Address }, PluginJsonContext.Default.DatastoreDiscoveryData),
            },
            _ => null,
        };
        if (notification is not null)
        {
            await CallAsync(method, notification, PluginJsonContext.Default.DiscoveryNotification, PluginJsonContext.Default.NetworkResponse, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyDictionary<string, string>> AllocateNetworkAsync(string networkId, IReadOnlyDictionary<string, string> options, IReadOnlyList<IpamData> ipv4, IReadOnlyList<IpamData> ipv6, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        try
        {
            var reply = await CallAsync(PluginMethods.AllocateNetwork, new AllocateNetworkRequest { NetworkId = networkId, Options = new(options, StringComparer.Ordinal), IPv4Data = ToWire(ipv4), IPv6Data = ToWire(ipv6) }, PluginJsonContext.Default.AllocateNetworkRequest, PluginJsonContext.Default.AllocateNetworkResponse, cancellationToken).ConfigureAwait(false);
            return reply.Options ?? [];
        }
        catch (CnmNotImplementedException ex) when (ex.Code == CnmErrorCodes.NotImplemented)
        {
            return EmptyOptions.Instance;
        }
    }

    /// <inheritdoc />
    public async ValueTask FreeNetworkAsync(string networkId, CancellationToken cancellationToken = default)
    {
        try
        {
            await CallAsync(PluginMethods.FreeNetwork, new NetworkIdRequest { NetworkId = networkId }, PluginJsonContext.Default.NetworkIdRequest, PluginJsonContext.Default.NetworkResponse, cancellationToken).ConfigureAwait(false);
        }
        catch (CnmNotImplementedException ex) when (ex.Code == CnmErrorCodes.NotImplemented)
        {
            // 404: nothing was allocated.
        }
    }
}
