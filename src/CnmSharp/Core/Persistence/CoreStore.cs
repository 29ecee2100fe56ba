using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using CnmSharp.Store;

namespace CnmSharp.Core.Persistence;

/// <summary>The core's typed view of the store: key layout and (de)serialization of its records.</summary>
internal sealed class CoreStore(IKeyValueStore store)
{
    public const string Root = "cnm/v1/";
    public const string ControllerKey = Root + "controller";
    public const string NetworkPrefix = Root + "network/";
    public const string EndpointPrefix = Root + "endpoint/";
    public const string SandboxPrefix = Root + "sandbox/";
    public const string IntentPrefix = Root + "intent/";
    public const string DriverPrefix = Root + "driver/";
    public const string IpamPrefix = Root + "ipam/";
    public const string QuarantinePrefix = Root + "quarantine/";

    public IKeyValueStore Store { get; } = store;

    /// <summary>The owner written into this controller instance's intents.</summary>
    public IntentOwnerRecord Owner { get; } = new() { Instance = Ids.NewId(), Pid = Environment.ProcessId, Host = Environment.MachineName };

    /// <summary>The intents of this controller instance's running operations: recovery never touches them.</summary>
    public System.Collections.Concurrent.ConcurrentDictionary<string, byte> LiveIntents { get; } = new(StringComparer.Ordinal);

    public static string NetworkKey(string id) => NetworkPrefix + id;

    public static string EndpointKey(string networkId, string id) => EndpointPrefix + networkId + "/" + id;

    public static string SandboxKey(string id) => SandboxPrefix + id;

    public static string IntentKey(string id) => IntentPrefix + id;

    /// <summary>Where a record of the core's is kept when set aside: its key, moved under <c>quarantine/</c>.</summary>
    public static string QuarantineKey(string key) => QuarantinePrefix + (key.StartsWith(Root, StringComparison.Ordinal) ? key[Root.Length..] : key);

    public static byte[] Serialize<T>(T record, JsonTypeInfo<T> info) => JsonSerializer.SerializeToUtf8Bytes(record, info);

    public static T Deserialize<T>(StoreEntry entry, JsonTypeInfo<T> info)
    {
        try
        {
            return JsonSerializer.Deserialize(entry.Value.Span, info)
                ?? throw new JsonException("null record");
        }
        catch (JsonException ex)
        {
            throw new CnmInternalException(CnmErrorCodes.CorruptRecord, $"store key \"{entry.Key}\"", "the record cannot be read: " + ex.Message, ex);
        }
    }

    public async ValueTask<List<(T Record, long Version)>> ListAsync<T>(string prefix, JsonTypeInfo<T> info, CancellationToken cancellationToken)
    {
        var entries = await Store.ListAsync(prefix, cancellationToken).ConfigureAwait(false);
        var result = new List<(T, long)>(entries.Count);
        foreach (var entry in entries)
        {
            result.Add((Deserialize(entry, info), entry.Version));
        }

        return result;
    }

    public ValueTask<long> PutIntentAsync(IntentRecord intent, long expectedVersion, StoreDurability durability, CancellationToken cancellationToken) =>
        Store.PutAsync(IntentKey(intent.Id), Serialize(intent, CoreJsonContext.Default.IntentRecord), expectedVersion, durability, cancellationToken);
}
