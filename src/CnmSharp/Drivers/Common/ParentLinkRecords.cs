using System.Text.Json;
using System.Text.Json.Serialization;
using CnmSharp.Store;

namespace CnmSharp.Drivers.Common;

/// <summary>A link the driver made for a network's parent (an 802.1Q sub-interface, or the internal parent of a network
/// without one). Only such a link is ever deleted with the network, and only while the link found still matches.</summary>
internal sealed record CreatedParentRecord
{
    /// <summary>The kind made: <c>vlan</c>, <c>dummy</c>, or the stand-in <c>bridge</c>.</summary>
    public required string Kind { get; init; }

    /// <summary>Its interface index; 0 while not known yet (recorded before the link is made, then updated).</summary>
    public int Index { get; init; }
}

/// <summary>One IPAM pool of a network with its gateway.</summary>
internal sealed record ParentLinkPoolRecord
{
    public required string Subnet { get; init; }

    public string? Gateway { get; init; }
}

/// <summary>The driver's record of one network, persisted before the kernel is touched.</summary>
internal sealed record ParentLinkNetworkRecord
{
    public int Schema { get; init; } = 1;

    public required string Id { get; init; }

    public required string Name { get; init; }

    /// <summary>The parent link's name (the user's, <c>NAME.VID</c>, or the internal <c>dm-...</c>).</summary>
    public required string Parent { get; init; }

    /// <summary>The per-kind mode (<c>bridge</c>, <c>l2</c>, ...), as the option spells it.</summary>
    public required string Mode { get; init; }

    /// <summary>The per-kind flag (ipvlan), or null.</summary>
    public string? Flag { get; init; }

    public int Mtu { get; init; }

    public bool Internal { get; init; }

    public bool EnableIPv6 { get; init; }

    public List<ParentLinkPoolRecord> IPv4Pools { get; init; } = [];

    public List<ParentLinkPoolRecord> IPv6Pools { get; init; } = [];

    /// <summary>Set when the driver made the parent (and so deletes it with the network); null for the user's link.</summary>
    public CreatedParentRecord? CreatedParent { get; init; }
}

/// <summary>The driver's record of one endpoint.</summary>
internal sealed record ParentLinkEndpointRecord
{
    public int Schema { get; init; } = 1;

    public required string Id { get; init; }

    public required string NetworkId { get; init; }

    public string? MacAddress { get; init; }

    public string? Address { get; init; }

    public string? AddressIPv6 { get; init; }
}

[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(ParentLinkNetworkRecord))]
[JsonSerializable(typeof(ParentLinkEndpointRecord))]
internal sealed partial class ParentLinkJsonContext : JsonSerializerContext;

/// <summary>The driver's keys under its own store prefix: <c>network/&lt;id&gt;</c> and <c>endpoint/&lt;nid&gt;/&lt;eid&gt;</c>.</summary>
internal sealed class ParentLinkStore(IKeyValueStore store, string prefix, string driverName)
{
    public string NetworkPrefix => prefix + "network/";

    public string EndpointPrefix => prefix + "endpoint/";

    public string NetworkKey(string id) => NetworkPrefix + id;

    public string EndpointKey(string networkId, string id) => EndpointPrefix + networkId + "/" + id;

    // As the bridge driver: a network record is declared state (durable), an endpoint record per-container (relaxed).
    public ValueTask<long> PutAsync(ParentLinkNetworkRecord record, CancellationToken cancellationToken) =>
        store.PutAsync(NetworkKey(record.Id), JsonSerializer.SerializeToUtf8Bytes(record, ParentLinkJsonContext.Default.ParentLinkNetworkRecord), StoreVersion.Any, cancellationToken);

    public ValueTask<long> PutAsync(ParentLinkEndpointRecord record, CancellationToken cancellationToken) =>
        store.PutAsync(EndpointKey(record.NetworkId, record.Id), JsonSerializer.SerializeToUtf8Bytes(record, ParentLinkJsonContext.Default.ParentLinkEndpointRecord), StoreVersion.Any, StoreDurability.Relaxed, cancellationToken);

    public async ValueTask DeleteNetworkAsync(string id, CancellationToken cancellationToken) =>
        await store.DeleteAsync(NetworkKey(id), StoreVersion.Any, cancellationToken).ConfigureAwait(false);

    public async ValueTask DeleteEndpointAsync(string networkId, string id, CancellationToken cancellationToken) =>
        await store.DeleteAsync(EndpointKey(networkId, id), StoreVersion.Any, StoreDurability.Relaxed, cancellationToken).ConfigureAwait(false);

    public async ValueTask<ParentLinkNetworkRecord?> GetNetworkAsync(string id, CancellationToken cancellationToken)
    {
        var entry = await store.GetAsync(NetworkKey(id), cancellationToken).ConfigureAwait(false);
        return entry is null ? null : Read(entry, ParentLinkJsonContext.Default.ParentLinkNetworkRecord);
    }

    public async ValueTask<List<ParentLinkNetworkRecord>> ListNetworksAsync(CancellationToken cancellationToken) =>
        [.. (await store.ListAsync(NetworkPrefix, cancellationToken).ConfigureAwait(false)).Select(e => Read(e, ParentLinkJsonContext.Default.ParentLinkNetworkRecord))];

    public async ValueTask<List<ParentLinkEndpointRecord>> ListEndpointsAsync(string? networkId, CancellationToken cancellationToken) =>
        [.. (await store.ListAsync(networkId is null ? EndpointPrefix : EndpointPrefix + networkId + "/", cancellationToken).ConfigureAwait(false)).Select(e => Read(e, ParentLinkJsonContext.Default.ParentLinkEndpointRecord))];

    private T Read<T>(StoreEntry entry, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> info)
    {
        try
        {
            return JsonSerializer.Deserialize(entry.Value.Span, info) ?? throw new JsonException("null record");
        }
        catch (JsonException ex)
        {
            throw new CnmInternalException(CnmErrorCodes.CorruptRecord, $"store key \"{entry.Key}\"", $"the {driverName} driver's record cannot be read: " + ex.Message, ex);
        }
    }
}
