using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using CnmSharp.Store;

namespace CnmSharp.Drivers.Overlay;

/// <summary>One subnet of an overlay network on this host: its VNI and the devices made for it in the network's
/// namespace.</summary>
internal sealed record OverlaySubnetRecord
{
    public required string Subnet { get; init; }

    public string? Gateway { get; init; }

    public required uint Vni { get; init; }

    /// <summary>The bridge inside the network's namespace (<c>br0</c>, <c>br1</c>, ...).</summary>
    public required string Bridge { get; init; }

    /// <summary>The VXLAN device inside the network's namespace (<c>vxlan0</c>, ...).</summary>
    public required string Vxlan { get; init; }
}

/// <summary>The driver's local record of one network (local store), written before the kernel is touched: it is what
/// proves the namespace and devices are ours.</summary>
internal sealed record OverlayNetworkRecord
{
    public int Schema { get; init; } = 1;

    public required string Id { get; init; }

    public required string Name { get; init; }

    /// <summary>The network namespace's name in the driver's namespace directory.</summary>
    public required string Namespace { get; init; }

    public required int Mtu { get; init; }

    public required ushort Port { get; init; }

    public List<OverlaySubnetRecord> Subnets { get; init; } = [];
}

/// <summary>The driver's local record of one endpoint.</summary>
internal sealed record OverlayEndpointRecord
{
    public int Schema { get; init; } = 1;

    public required string Id { get; init; }

    public required string NetworkId { get; init; }

    public required string Mac { get; init; }

    public required string Address { get; init; }

    /// <summary>The host end of the veth, inside the network's namespace.</summary>
    public required string HostVeth { get; init; }

    /// <summary>The container end's name when it is created inside the sandbox.</summary>
    public required string ContainerVeth { get; init; }

    /// <summary>The sandbox key while joined, else null.</summary>
    public string? SandboxKey { get; init; }
}

/// <summary>The cluster-wide record of an overlay network (global store, <c>network/&lt;nid&gt;</c>): written once by
/// the first host that creates the network; every other host takes its VNIs from it.</summary>
internal sealed record OverlayGlobalNetwork
{
    public required string Id { get; init; }

    /// <summary>The subnets, in order, and the VNI of each.</summary>
    public required List<string> Subnets { get; init; }

    public required List<uint> Vnis { get; init; }
}

/// <summary>A VNI's owner (global store, <c>vni/&lt;vni&gt;</c>).</summary>
internal sealed record OverlayVniClaim
{
    public required string NetworkId { get; init; }
}

/// <summary>A host's membership of a network (global store, <c>node/&lt;nid&gt;/&lt;node&gt;</c>, on the host's lease).</summary>
internal sealed record OverlayNodeRecord
{
    public required string Node { get; init; }

    public required string Vtep { get; init; }
}

/// <summary>An endpoint joined on some host (global store, <c>peer/&lt;nid&gt;/&lt;node&gt;/&lt;eid&gt;</c>, on that host's
/// lease): what every other host programs to reach it.</summary>
internal sealed record OverlayPeerRecord
{
    public required string NetworkId { get; init; }

    public required string EndpointId { get; init; }

    public required string Node { get; init; }

    /// <summary>The host's VXLAN tunnel endpoint (its advertise address).</summary>
    public required string Vtep { get; init; }

    /// <summary>The endpoint's IPv4 address with prefix.</summary>
    public required string Address { get; init; }

    public required string Mac { get; init; }
}

[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(OverlayNetworkRecord))]
[JsonSerializable(typeof(OverlayEndpointRecord))]
[JsonSerializable(typeof(OverlayGlobalNetwork))]
[JsonSerializable(typeof(OverlayVniClaim))]
[JsonSerializable(typeof(OverlayNodeRecord))]
[JsonSerializable(typeof(OverlayPeerRecord))]
internal sealed partial class OverlayJsonContext : JsonSerializerContext;

/// <summary>Serialization of the overlay records, with a typed error for a record that cannot be read.</summary>
internal static class OverlayJson
{
    public static byte[] Write<T>(T value, JsonTypeInfo<T> info) => JsonSerializer.SerializeToUtf8Bytes(value, info);

    public static T Read<T>(string key, ReadOnlyMemory<byte> value, JsonTypeInfo<T> info)
    {
        try
        {
            return JsonSerializer.Deserialize(value.Span, info) ?? throw new JsonException("null record");
        }
        catch (JsonException ex)
        {
            throw new CnmInternalException(CnmErrorCodes.CorruptRecord, $"store key \"{key}\"", "the overlay driver's record cannot be read: " + ex.Message, ex);
        }
    }

    public static T? TryRead<T>(ReadOnlyMemory<byte> value, JsonTypeInfo<T> info)
        where T : class
    {
        try
        {
            return JsonSerializer.Deserialize(value.Span, info);
        }
        catch (JsonException)
        {
            return null;
        }
    }
}

/// <summary>The driver's keys in the controller's local store: <c>network/&lt;id&gt;</c>, <c>endpoint/&lt;nid&gt;/&lt;eid&gt;</c>.</summary>
internal sealed class OverlayLocalStore(IKeyValueStore store, string prefix)
{
    private string NetworkPrefix => prefix + "network/";

    private string EndpointPrefix => prefix + "endpoint/";

    public async ValueTask PutAsync(OverlayNetworkRecord record, CancellationToken cancellationToken) =>
        await store.PutAsync(NetworkPrefix + record.Id, OverlayJson.Write(record, OverlayJsonContext.Default.OverlayNetworkRecord), StoreVersion.Any, cancellationToken).ConfigureAwait(false);

    public async ValueTask PutAsync(OverlayEndpointRecord record, CancellationToken cancellationToken) =>
        await store.PutAsync(EndpointPrefix + record.NetworkId + "/" + record.Id, OverlayJson.Write(record, OverlayJsonContext.Default.OverlayEndpointRecord), StoreVersion.Any, StoreDurability.Relaxed, cancellationToken).ConfigureAwait(false);

    public async ValueTask DeleteNetworkAsync(string id, CancellationToken cancellationToken) =>
        await store.DeleteAsync(NetworkPrefix + id, StoreVersion.Any, cancellationToken).ConfigureAwait(false);

    public async ValueTask DeleteEndpointAsync(string networkId, string id, CancellationToken cancellationToken) =>
        await store.DeleteAsync(EndpointPrefix + networkId + "/" + id, StoreVersion.Any, StoreDurability.Relaxed, cancellationToken).ConfigureAwait(false);

    public async ValueTask<List<OverlayNetworkRecord>> ListNetworksAsync(CancellationToken cancellationToken) =>
        [.. (await store.ListAsync(NetworkPrefix, cancellationToken).ConfigureAwait(false)).Select(e => OverlayJson.Read(e.Key, e.Value, OverlayJsonContext.Default.OverlayNetworkRecord))];

    public async ValueTask<List<OverlayEndpointRecord>> ListEndpointsAsync(string? networkId, CancellationToken cancellationToken) =>
        [.. (await store.ListAsync(networkId is null ? EndpointPrefix : EndpointPrefix + networkId + "/", cancellationToken).ConfigureAwait(false)).Select(e => OverlayJson.Read(e.Key, e.Value, OverlayJsonContext.Default.OverlayEndpointRecord))];
}
