using System.Text.Json;
using System.Text.Json.Serialization;
using CnmSharp.Store;

namespace CnmSharp.Drivers.Bridge;

/// <summary>The driver's record of one network, persisted before the kernel is touched.</summary>
internal sealed record BridgeNetworkRecord
{
    public int Schema { get; init; } = 1;
    public required string Id { get; init; }
    public required string Name { get; init; }
    public required string BridgeName { get; init; }
    public int Mtu { get; init; }
    public bool EnableIcc { get; init; } = true;
    public bool EnableMasquerade { get; init; } = true;
    public string? HostBindingIPv4 { get; init; }
    public bool InhibitIPv4 { get; init; }
    public bool DefaultBridge { get; init; }
    public string ContainerPrefix { get; init; } = BridgeNetworkOptions.DefaultContainerPrefix;
    public string? HostIPv4 { get; init; }
    public bool Internal { get; init; }
    public bool EnableIPv6 { get; init; }
    public required string IPv4Subnet { get; init; }
    public string? IPv4Gateway { get; init; }
    public string? IPv6Subnet { get; init; }
    public string? IPv6Gateway { get; init; }
    public string? DefaultGatewayIPv4 { get; init; }
    public string? DefaultGatewayIPv6 { get; init; }

    /// <summary>True when the bridge existed before the network (it is adopted, and kept when the network goes).</summary>
    public bool AdoptedBridge { get; init; }
}

/// <summary>One published port (a resolved host port, or a request as the user gave it).</summary>
internal sealed record BridgePortRecord
{
    public int Protocol { get; init; }
    public int ContainerPort { get; init; }
    public string HostIP { get; init; } = "0.0.0.0";
    public int HostPort { get; init; }
    public int HostPortEnd { get; init; }
}

/// <summary>The driver's record of one endpoint.</summary>
internal sealed record BridgeEndpointRecord
{
    public int Schema { get; init; } = 1;
    public required string Id { get; init; }
    public required string NetworkId { get; init; }
    public required string MacAddress { get; init; }
    public required string Address { get; init; }
    public string? AddressIPv6 { get; init; }
    /// <summary>The host end's name, chosen unique among the driver's endpoints when the endpoint was created (or
    /// when a join found the name taken by a link that is not ours), and persisted before any kernel call uses it.</summary>
    public required string HostVeth { get; init; }

    /// <summary>The container end's name (inside the sandbox, before the core renames it); same suffix as the host end.</summary>
    public required string ContainerVeth { get; init; }
    public List<BridgePortRecord> PortBindings { get; init; } = [];

    /// <summary>The host ports chosen when external connectivity was programmed; null when it is not.</summary>
    public List<BridgePortRecord>? PublishedPorts { get; init; }
}

[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(BridgeNetworkRecord))]
[JsonSerializable(typeof(BridgeEndpointRecord))]
[JsonSerializable(typeof(List<BridgePortRecord>))]
internal sealed partial class BridgeJsonContext : JsonSerializerContext;

/// <summary>The driver's keys under its store prefix: <c>network/&lt;id&gt;</c> and <c>endpoint/&lt;nid&gt;/&lt;eid&gt;</c>.</summary>
internal sealed class BridgeStore(IKeyValueStore store, string prefix)
{
    public string NetworkPrefix => prefix + "network/";

    public string EndpointPrefix => prefix + "endpoint/";

    public string NetworkKey(string id) => NetworkPrefix + id;

    public string EndpointKey(string networkId, string id) => EndpointPrefix + networkId + "/" + id;

    // A network record is declared state (durable); an endpoint record, with its port bindings, is per-container state
    // that a reboot makes moot (relaxed: a power loss may undo its last writes, never a process crash).
    public ValueTask<long> PutAsync(BridgeNetworkRecord record, CancellationToken cancellationToken) =>
        store.PutAsync(NetworkKey(record.Id), JsonSerializer.SerializeToUtf8Bytes(record, BridgeJsonContext.Default.BridgeNetworkRecord), StoreVersion.Any, cancellationToken);

    public ValueTask<long> PutAsync(BridgeEndpointRecord record, CancellationToken cancellationToken) =>
        store.PutAsync(EndpointKey(record.NetworkId, record.Id), JsonSerializer.SerializeToUtf8Bytes(record, BridgeJsonContext.Default.BridgeEndpointRecord), StoreVersion.Any, StoreDurability.Relaxed, cancellationToken);

    public async ValueTask DeleteNetworkAsync(string id, CancellationToken cancellationToken) =>
        await store.DeleteAsync(NetworkKey(id), StoreVersion.Any, cancellationToken).ConfigureAwait(false);

    public async ValueTask DeleteEndpointAsync(string networkId, string id, CancellationToken cancellationToken) =>
        await store.DeleteAsync(EndpointKey(networkId, id), StoreVersion.Any, StoreDurability.Relaxed, cancellationToken).ConfigureAwait(false);

    public async ValueTask<BridgeNetworkRecord?> GetNetworkAsync(string id, CancellationToken cancellationToken)
    {
        var entry = await store.GetAsync(NetworkKey(id), cancellationToken).ConfigureAwait(false);
        return entry is null ? null : Read(entry, BridgeJsonContext.Default.BridgeNetworkRecord);
    }

    public async ValueTask<BridgeEndpointRecord?> GetEndpointAsync(string networkId, string id, CancellationToken cancellationToken)
    {
        var entry = await store.GetAsync(EndpointKey(networkId, id), cancellationToken).ConfigureAwait(false);
        return entry is null ? null : Read(entry, BridgeJsonContext.Default.BridgeEndpointRecord);
    }

    public async ValueTask<List<BridgeNetworkRecord>> ListNetworksAsync(CancellationToken cancellationToken) =>
        [.. (await store.ListAsync(NetworkPrefix, cancellationToken).ConfigureAwait(false)).Select(e => Read(e, BridgeJsonContext.Default.BridgeNetworkRecord))];

    public async ValueTask<List<BridgeEndpointRecord>> ListEndpointsAsync(string? networkId, CancellationToken cancellationToken) =>
        [.. (await store.ListAsync(networkId is null ? EndpointPrefix : EndpointPrefix + networkId + "/", cancellationToken).ConfigureAwait(false)).Select(e => Read(e, BridgeJsonContext.Default.BridgeEndpointRecord))];

    /// <summary>The key of the restore marker: the host namespace instance (<c>boot id/namespace cookie</c>) whose kernel
    /// objects and firewall rules a start last restored completely.</summary>
    public string RestoredKey => prefix + "restored-in";

    public async ValueTask<string?> GetRestoredInAsync(CancellationToken cancellationToken)
    {
        var entry = await store.GetAsync(RestoredKey, cancellationToken).ConfigureAwait(false);
        return entry is null ? null : System.Text.Encoding.UTF8.GetString(entry.Value.Span);
    }

    public async ValueTask DeleteRestoredInAsync(CancellationToken cancellationToken) =>
        await store.DeleteAsync(RestoredKey, StoreVersion.Any, StoreDurability.Relaxed, cancellationToken).ConfigureAwait(false);

    // Moot after a reboot (the boot id changes): relaxed.
    public ValueTask<long> PutRestoredInAsync(string instance, CancellationToken cancellationToken) =>
        store.PutAsync(RestoredKey, System.Text.Encoding.UTF8.GetBytes(instance), StoreVersion.Any, StoreDurability.Relaxed, cancellationToken);

    private static T Read<T>(StoreEntry entry, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> info)
    {
        try
        {
            return JsonSerializer.Deserialize(entry.Value.Span, info) ?? throw new JsonException("null record");
        }
        catch (JsonException ex)
        {
            throw new CnmInternalException(CnmErrorCodes.CorruptRecord, $"store key \"{entry.Key}\"", "the bridge driver's record cannot be read: " + ex.Message, ex);
        }
    }
}
