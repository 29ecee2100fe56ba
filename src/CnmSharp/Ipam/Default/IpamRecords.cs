using System.Text.Json;
using System.Text.Json.Serialization;
using CnmSharp.Store;

namespace CnmSharp.Ipam.Default;

/// <summary>Per address space state: the round-robin positions of the predefined search. Every creation or removal
/// of a master pool rewrites it with compare-and-swap, so pool changes of several instances serialize.</summary>
internal sealed record AddressSpaceRecord
{
    public int Schema { get; init; } = IpamStoreLayout.Schema;

    public required string AddressSpace { get; init; }

    /// <summary>A counter bumped on every master pool change.</summary>
    public long Generation { get; init; }

    /// <summary>The index where the next IPv4 predefined search starts (decimal).</summary>
    public string NextV4 { get; init; } = "0";

    /// <summary>The index where the next IPv6 predefined search starts (decimal).</summary>
    public string NextV6 { get; init; } = "0";
}

/// <summary>A pool: a master pool (no <see cref="SubPool"/>) or a sub-pool of one.</summary>
internal sealed record PoolRecord
{
    public int Schema { get; init; } = IpamStoreLayout.Schema;

    public required string AddressSpace { get; init; }

    /// <summary>The master pool in CIDR form.</summary>
    public required string Pool { get; init; }

    /// <summary>The sub-pool in CIDR form, or null for a master pool.</summary>
    public string? SubPool { get; init; }

    /// <summary>Master pools: the references (one per sub-pool, plus one when requested itself).</summary>
    public int RefCount { get; init; }

    /// <summary>Master pools: requested itself (not only created as the parent of sub-pools).</summary>
    public bool Explicit { get; init; }

    /// <summary>The owner given with <see cref="NetLabels.IpamOwner"/> when the pool was requested (a master pool:
    /// while it is <see cref="Explicit"/>), or null.</summary>
    public string? Owner { get; init; }
}

/// <summary>One allocated address.</summary>
internal sealed record AddressRecord
{
    public int Schema { get; init; } = IpamStoreLayout.Schema;

    /// <summary>The owner given with <see cref="NetLabels.IpamOwner"/>, or null.</summary>
    public string? Owner { get; init; }
}

[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(AddressSpaceRecord))]
[JsonSerializable(typeof(PoolRecord))]
[JsonSerializable(typeof(AddressRecord))]
internal sealed partial class IpamJsonContext : JsonSerializerContext;

/// <summary>The store keys of the default IPAM under the driver's prefix.</summary>
internal static class IpamStoreLayout
{
    public const int Schema = 1;

    public const string SpaceSegment = "space/";
    public const string PoolSegment = "pool/";
    public const string AddressSegment = "addr/";

    public static string SpaceKey(string prefix, string addressSpace) => prefix + SpaceSegment + addressSpace;

    public static string PoolKey(string prefix, string poolId) => prefix + PoolSegment + poolId;

    public static string AddressPrefix(string prefix, string masterPoolId) => prefix + AddressSegment + masterPoolId + "/";

    public static string AddressKey(string prefix, string masterPoolId, string address) =>
        AddressPrefix(prefix, masterPoolId) + address;

    public static byte[] Serialize(AddressSpaceRecord record) =>
        JsonSerializer.SerializeToUtf8Bytes(record, IpamJsonContext.Default.AddressSpaceRecord);

    public static byte[] Serialize(PoolRecord record) =>
        JsonSerializer.SerializeToUtf8Bytes(record, IpamJsonContext.Default.PoolRecord);

    public static byte[] Serialize(AddressRecord record) =>
        JsonSerializer.SerializeToUtf8Bytes(record, IpamJsonContext.Default.AddressRecord);

    public static AddressSpaceRecord ReadSpace(StoreEntry entry) =>
        Read(entry, IpamJsonContext.Default.AddressSpaceRecord);

    public static PoolRecord ReadPool(StoreEntry entry) => Read(entry, IpamJsonContext.Default.PoolRecord);

    public static AddressRecord ReadAddress(StoreEntry entry) =>
        entry.Value.IsEmpty ? new AddressRecord() : Read(entry, IpamJsonContext.Default.AddressRecord);

    private static T Read<T>(StoreEntry entry, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> info)
        where T : class
    {
        T? record;
        try
        {
            record = JsonSerializer.Deserialize(entry.Value.Span, info);
        }
        catch (JsonException ex)
        {
            throw Corrupt(entry.Key, "not valid JSON", ex);
        }

        if (record is null)
        {
            throw Corrupt(entry.Key, "empty record", null);
        }

        var schema = record switch
        {
            AddressSpaceRecord s => s.Schema,
            PoolRecord p => p.Schema,
            AddressRecord a => a.Schema,
            _ => Schema,
        };
        if (schema != Schema)
        {
            throw Corrupt(entry.Key, $"unknown schema {schema}", null);
        }

        return record;
    }

    private static CnmInternalException Corrupt(string key, string reason, Exception? inner) =>
        new(CnmErrorCodes.CorruptRecord, $"IPAM record \"{key}\"", reason, inner);
}
