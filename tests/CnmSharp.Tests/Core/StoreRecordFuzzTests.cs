using System.Text;
using System.Text.Json.Nodes;
using CnmSharp.Core.Persistence;
using CnmSharp.Store;
using CnmSharp.Testing;
using CsCheck;
using static CnmSharp.Testing.HostileJson;

namespace CnmSharp.Tests.Core;

/// <summary>
/// Hostile store records (docs/reliability.md, "Hostile input"): a real state (networks with IPv4 and IPv6 pools,
/// endpoints, sandboxes, joins, the default IPAM's spaces, pools and addresses) is written, then one record at a time
/// is replaced by a corrupt one (a field set to a wrong type, null, a huge or malformed value, the record truncated,
/// random bytes, deep nesting) and a new controller starts on it, lists everything, and creates, joins and deletes on
/// top. Every step must succeed (the record skipped or quarantined) or fail with a <see cref="CnmException"/>.
/// </summary>
public sealed class StoreRecordFuzzTests : ControllerTestBase
{
    private const int Iterations = 60;

    private async Task<StoreEntry[]> ValidStateAsync()
    {
        var c = await F.StartAsync();
        var web = await c.CreateNetworkAsync("web", ControllerFixture.DriverName, Subnet("10.70.0.0/24"));
        var dual = await c.CreateNetworkAsync("dual", ControllerFixture.DriverName, new NetworkCreateOptions { EnableIPv6 = true, Labels = new Dictionary<string, string> { ["a"] = "b" } });
        var w0 = await web.CreateEndpointAsync("w0");
        var d0 = await dual.CreateEndpointAsync("d0");
        var s1 = await c.CreateSandboxAsync("c1");
        await w0.JoinAsync(s1);
        await d0.JoinAsync(s1);
        await web.CreateEndpointAsync("w1");
        await c.DisposeAsync();

        // The run directory (sandbox files) belongs to this state: each iteration starts from a copy of it.
        CopyDirectory(Path.Combine(F.Directory, "run"), Path.Combine(F.Directory, "run-state"));
        _routes = F.CoreRoutes.ToDictionary(kv => kv.Key, kv => kv.Value.ToList(), StringComparer.Ordinal);
        return [.. await F.Store.ListAsync("")];
    }

    private Dictionary<string, List<CnmSharp.Sandboxes.SandboxGatewayRoute>> _routes = [];

    /// <summary>Puts the run directory and the fake kernel's routes back as the valid state left them.</summary>
    private void RestoreRunDirectory()
    {
        F.CoreRoutes.Clear();
        foreach (var (key, routes) in _routes)
        {
            F.CoreRoutes[key] = [.. routes];
        }

        var run = Path.Combine(F.Directory, "run");
        if (Directory.Exists(run))
        {
            Directory.Delete(run, recursive: true);
        }

        CopyDirectory(Path.Combine(F.Directory, "run-state"), run);
    }

    private static void CopyDirectory(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var file in Directory.GetFiles(from))
        {
            File.Copy(file, Path.Combine(to, Path.GetFileName(file)));
        }

        foreach (var directory in Directory.GetDirectories(from))
        {
            CopyDirectory(directory, Path.Combine(to, Path.GetFileName(directory)));
        }
    }

    /// <summary>A corrupt version of a record: one of its fields (at any depth) replaced, or the whole body.</summary>
    private static Gen<byte[]> Corrupt(byte[] record)
    {
        var node = TryParse(record);
        var paths = node is null ? [] : Paths(node, "").ToArray();
        var field = paths.Length == 0
            ? Body(Gen.Const(Encoding.UTF8.GetString(record)))
            : Gen.Select(Gen.Int[0, paths.Length - 1], Value(2, paths.Select(p => p[(p.LastIndexOf('/') + 1)..]).ToArray())).Select(t =>
            {
                // The field gets a placeholder, then the hostile value's raw text in its place (JsonNode could not
                // carry an invalid one).
                var copy = TryParse(record)!;
                Replace(copy, paths[t.Item1], Placeholder);
                return Encoding.UTF8.GetBytes(copy.ToJsonString().Replace(Quote(Placeholder), t.Item2, StringComparison.Ordinal));
            });
        return Gen.Frequency((4, field), (1, Body(Gen.Const(Encoding.UTF8.GetString(record)))));
    }

    private const string Placeholder = "fuzz-placeholder-7f3a";

    private static JsonNode? TryParse(byte[] record)
    {
        try
        {
            return JsonNode.Parse(record);
        }
        catch (System.Text.Json.JsonException)
        {
            return null;
        }
    }

    private static IEnumerable<string> Paths(JsonNode node, string path)
    {
        if (node is JsonObject o)
        {
            foreach (var (name, child) in o)
            {
                yield return path + "/" + name;
                if (child is not null)
                {
                    foreach (var p in Paths(child, path + "/" + name))
                    {
                        yield return p;
                    }
                }
            }
        }
        else if (node is JsonArray a)
        {
            for (var i = 0; i < a.Count; i++)
            {
                yield return path + "/" + i;
                if (a[i] is { } child)
                {
                    foreach (var p in Paths(child, path + "/" + i))
                    {
                        yield return p;
                    }
                }
            }
        }
    }

    private static void Replace(JsonNode root, string path, string value)
    {
        var parts = path.Split('/', StringSplitOptions.RemoveEmptyEntries);
        var parent = root;
        foreach (var part in parts[..^1])
        {
            parent = parent is JsonArray pa ? pa[int.Parse(part, System.Globalization.CultureInfo.InvariantCulture)]! : parent[part]!;
        }

        JsonNode replacement = JsonValue.Create(value);

        if (parent is JsonArray array)
        {
            array[int.Parse(parts[^1], System.Globalization.CultureInfo.InvariantCulture)] = replacement;
        }
        else
        {
            parent[parts[^1]] = replacement;
        }
    }

    /// <summary>Starts on the state with one record corrupted and works on it; only typed errors may come out.</summary>
    private async Task CheckAsync(StoreEntry[] state, string key, byte[] corrupt)
    {
        RestoreRunDirectory();
        var store = new InMemoryKeyValueStore();
        await using var disposeStore = store;
        foreach (var entry in state)
        {
            await store.PutAsync(entry.Key, entry.Key == key ? corrupt : entry.Value);
        }

        NetworkController? c = null;
        try
        {
            c = await F.StartAsync(store);
            foreach (var network in c.Networks)
            {
                _ = network.Endpoints.Count;
                _ = network.IPv4Info.Count + network.IPv6Info.Count;
            }

            foreach (var sandbox in c.Sandboxes)
            {
                _ = sandbox.Endpoints.Count;
            }

            _ = await c.GetQuarantinedRecordsAsync();
            await Step(async () =>
            {
                var n = c.FindNetworkByName("web") ?? await c.CreateNetworkAsync("web2", ControllerFixture.DriverName, Subnet("10.71.0.0/24"));
                var e = await n.CreateEndpointAsync("fz");
                var s = (c.Sandboxes.Count > 0 ? c.Sandboxes[0] : null) ?? await c.CreateSandboxAsync("c9");
                await e.JoinAsync(s);
                await e.LeaveAsync(s);
                await e.DeleteAsync();
            });
            await Step(async () =>
            {
                if (c.FindNetworkByName("dual") is { } dual)
                {
                    foreach (var endpoint in dual.Endpoints)
                    {
                        if (endpoint.Sandbox is { } s)
                        {
                            await endpoint.LeaveAsync(s);
                        }

                        await endpoint.DeleteAsync();
                    }

                    await dual.DeleteAsync();
                }
            });
            await Step(async () =>
            {
                foreach (var sandbox in c.Sandboxes.ToArray())
                {
                    await sandbox.DeleteAsync();
                }

                await c.WaitForTeardownsAsync();
            });
        }
        catch (CnmException)
        {
            // A typed refusal (for example at start): what a corrupt record may give.
        }
        finally
        {
            if (c is not null)
            {
                await c.DisposeAsync();
            }
        }

        static async Task Step(Func<Task> step)
        {
            try
            {
                await step();
            }
            catch (CnmException)
            {
            }
        }
    }

    [Test]
    public async Task A_corrupt_record_of_any_kind_gives_only_typed_errors()
    {
        var state = await ValidStateAsync();
        Assert.That(state.Select(e => e.Key), Has.Some.StartWith(CoreStore.NetworkPrefix).And.Some.StartWith(CoreStore.EndpointPrefix).And.Some.StartWith(CoreStore.SandboxPrefix).And.Some.StartWith(CoreStore.IpamPrefix));
        var gen = Gen.Int[0, state.Length - 1].SelectMany(i => Corrupt(state[i].Value.ToArray()).Select(bytes => (state[i].Key, bytes)));
        await Fuzz.RunAsync(gen, t => CheckAsync(state, t.Key, t.bytes), Iterations, seed: 501, print: t => $"{t.Key} = {Encoding.UTF8.GetString(t.bytes)}");
    }

    [TestCaseSource(nameof(CorpusCases))]
    public async Task Corpus_records_give_only_typed_errors(string file)
    {
        // <key with '/' written as '~'>.json: the record that replaces the valid state's record of that key (or is added).
        var state = await ValidStateAsync();
        var key = file[..^5].Replace('~', '/');
        var pattern = state.FirstOrDefault(e => e.Key.StartsWith(key, StringComparison.Ordinal))?.Key ?? key;
        await CheckAsync([.. state, .. state.Any(e => e.Key == pattern) ? [] : new[] { new StoreEntry(pattern, Array.Empty<byte>(), 0) }], pattern, Fuzz.CorpusBytes("store-records", file));
    }

    private static IEnumerable<TestCaseData> CorpusCases() => Fuzz.Corpus("store-records");
}
