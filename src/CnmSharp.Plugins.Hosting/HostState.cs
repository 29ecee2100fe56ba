using System.Text.Json;
using System.Text.Json.Serialization;
using CnmSharp.Store;

namespace CnmSharp.Plugins.Hosting;

/// <summary>A network the plugin host created for its caller: its id and pools, as the caller gave them.</summary>
internal sealed record HostNetworkRecord
{
    /// <summary>The network id.</summary>
    public required string Id { get; init; }

    /// <summary>The IPv4 pools (CIDR).</summary>
    public List<string> IPv4Pools { get; init; } = [];

    /// <summary>The IPv6 pools (CIDR).</summary>
    public List<string> IPv6Pools { get; init; } = [];
}

/// <summary>An endpoint the plugin host created: its interface as the caller and the driver set it, which a Join after
/// a restart of the host needs.</summary>
internal sealed record HostEndpointRecord
{
    /// <summary>The network id.</summary>
    public required string NetworkId { get; init; }

    /// <summary>The endpoint id.</summary>
    public required string Id { get; init; }

    /// <summary>IPv4 address, CIDR, or empty.</summary>
    public string Address { get; init; } = "";

    /// <summary>IPv6 address, CIDR, or empty.</summary>
    public string AddressIPv6 { get; init; } = "";

    /// <summary>MAC address (<c>aa:bb:cc:dd:ee:ff</c>), or empty.</summary>
    public string MacAddress { get; init; } = "";
}

/// <summary>The source-generated JSON of the host's records.</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(HostNetworkRecord))]
[JsonSerializable(typeof(HostEndpointRecord))]
internal sealed partial class HostJsonContext : JsonSerializerContext
{
}

/// <summary>
/// The plugin host's own records in the store, under <see cref="Prefix"/>: one per network and per endpoint it created.
/// The wrapped driver and IPAM keep their own state under their own prefixes; these records are what the protocol
/// does not send again (dockerd re-sends nothing for existing networks and endpoints).
/// </summary>
internal sealed class HostState(IKeyValueStore store)
{
    /// <summary>The key prefix of the host's records.</summary>
    public const string Prefix = "plugin-host/";

    private static string NetworkKey(string id) => Prefix + "networks/" + id;

    private static string EndpointKey(string networkId, string id) => Prefix + "endpoints/" + networkId + "/" + id;

    public async ValueTask PutNetworkAsync(HostNetworkRecord record, CancellationToken cancellationToken) =>
        await store.PutAsync(NetworkKey(record.Id), JsonSerializer.SerializeToUtf8Bytes(record, HostJsonContext.Default.HostNetworkRecord), StoreVersion.Any, cancellationToken).ConfigureAwait(false);

    public async ValueTask DeleteNetworkAsync(string id, CancellationToken cancellationToken) =>
        await store.DeleteAsync(NetworkKey(id), StoreVersion.Any, cancellationToken).ConfigureAwait(false);

    public async ValueTask PutEndpointAsync(HostEndpointRecord record, CancellationToken cancellationToken) =>
        await store.PutAsync(EndpointKey(record.NetworkId, record.Id), JsonSerializer.SerializeToUtf8Bytes(record, HostJsonContext.Default.HostEndpointRecord), StoreVersion.Any, cancellationToken).ConfigureAwait(false);

    public async ValueTask DeleteEndpointAsync(string networkId, string id, CancellationToken cancellationToken) =>
        await store.DeleteAsync(EndpointKey(networkId, id), StoreVersion.Any, cancellationToken).ConfigureAwait(false);

    public async ValueTask<HostEndpointRecord?> GetEndpointAsync(string networkId, string id, CancellationToken cancellationToken)
    {
        var entry = await store.GetAsync(EndpointKey(networkId, id), cancellationToken).ConfigureAwait(false);
        return entry is null ? null : Read(entry, HostJsonContext.Default.HostEndpointRecord);
    }

    public async ValueTask<IReadOnlyList<HostNetworkRecord>> ListNetworksAsync(CancellationToken cancellationToken) =>
        [.. (await store.ListAsync(Prefix + "networks/", cancellationToken).ConfigureAwait(false)).Select(e => Read(e, HostJsonContext.Default.HostNetworkRecord))];

    public async ValueTask<IReadOnlyList<HostEndpointRecord>> ListEndpointsAsync(CancellationToken cancellationToken) =>
        [.. (await store.ListAsync(Prefix + "endpoints/", cancellationToken).ConfigureAwait(false)).Select(e => Read(e, HostJsonContext.Default.HostEndpointRecord))];

    private static T Read<T>(StoreEntry entry, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> info)
    {
        try
        {
            return JsonSerializer.Deserialize(entry.Value.Span, info)
                ?? throw new CnmInternalException(CnmErrorCodes.CorruptRecord, $"record {entry.Key}", "null record");
        }
        catch (JsonException ex)
        {
            throw new CnmInternalException(CnmErrorCodes.CorruptRecord, $"record {entry.Key}", ex.Message, ex);
        }
    }
}
