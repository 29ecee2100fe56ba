using System.Text.Json;
using CnmSharp.Store;
using CnmSharp.Testing;

namespace CnmSharp.IntegrationTests.Core;

/// <summary>
/// What the stop tests check after a restart: the controller's view against the kernel (each sandbox's namespace and
/// the host namespace) and the store. Each finding is one line naming the round.
/// </summary>
internal static class StopInvariants
{
    private const string IntentPrefix = "cnm/v1/intent/";
    private const string QuarantinePrefix = "cnm/v1/quarantine/";
    private const string BridgeEndpointPrefix = "cnm/v1/driver/bridge/endpoint/";

    /// <summary>
    /// The inconsistencies: a joined endpoint whose interface is missing from its sandbox or lacks its address; an
    /// interface in a sandbox that no endpoint names; a veth in the host namespace that is not the host end of a joined
    /// endpoint (by the bridge driver's records), or a joined endpoint whose host end is missing or on no bridge; an
    /// intent or a quarantined record in the store.
    /// </summary>
    public static async Task<List<string>> FindAsync(NetworkController controller, IKeyValueStore store, string hostNamespacePath, int round)
    {
        var failures = new List<string>();
        foreach (var sandbox in controller.Sandboxes)
        {
            var links = await IpTool.JsonAsync(sandbox.Key, "address", "show");
            var kernel = links.EnumerateArray()
                .Where(l => l.GetProperty("ifname").GetString() != "lo")
                .ToDictionary(
                    l => l.GetProperty("ifname").GetString()!,
                    l => l.TryGetProperty("addr_info", out var a) ? a.EnumerateArray().Select(x => x.GetProperty("local").GetString()!).ToArray() : []);
            var joined = sandbox.Endpoints.ToDictionary(e => e.InterfaceName!, e => e.Address!.Value.Address.ToString());
            foreach (var (name, address) in joined)
            {
                if (!kernel.TryGetValue(name, out var addresses))
                {
                    failures.Add($"round {round}: sandbox {sandbox.ContainerId}: joined interface {name} is missing");
                }
                else if (!addresses.Contains(address))
                {
                    failures.Add($"round {round}: sandbox {sandbox.ContainerId}: {name} lacks {address} (has {string.Join(",", addresses)})");
                }
            }

            foreach (var name in kernel.Keys.Where(k => !joined.ContainsKey(k)))
            {
                failures.Add($"round {round}: sandbox {sandbox.ContainerId}: interface {name} that no endpoint names");
            }
        }

        // Host ends: every veth in the (private) host namespace is the host end of a joined endpoint, on a bridge.
        var hostVeths = new Dictionary<string, string>(); // endpoint id -> host veth name, from the driver's records
        foreach (var entry in await store.ListAsync(BridgeEndpointPrefix))
        {
            using var record = JsonDocument.Parse(entry.Value);
            hostVeths[record.RootElement.GetProperty("id").GetString()!] = record.RootElement.GetProperty("hostVeth").GetString()!;
        }

        var joinedIds = controller.Sandboxes.SelectMany(s => s.Endpoints).Select(e => e.Id).ToHashSet();
        var expected = joinedIds.Where(hostVeths.ContainsKey).Select(id => hostVeths[id]).ToHashSet();
        foreach (var id in joinedIds.Where(id => !hostVeths.ContainsKey(id)))
        {
            failures.Add($"round {round}: joined endpoint {id} has no bridge record");
        }

        var veths = (await IpTool.JsonAsync(hostNamespacePath, "link", "show", "type", "veth")).EnumerateArray()
            .ToDictionary(l => l.GetProperty("ifname").GetString()!, l => l.TryGetProperty("master", out var m) ? m.GetString() : null);
        foreach (var (name, master) in veths)
        {
            if (!expected.Contains(name))
            {
                failures.Add($"round {round}: host veth {name} (on {master ?? "no bridge"}) that no joined endpoint names");
            }
            else if (master is null)
            {
                failures.Add($"round {round}: host veth {name} of a joined endpoint is on no bridge");
            }
        }

        foreach (var name in expected.Where(n => !veths.ContainsKey(n)))
        {
            failures.Add($"round {round}: host veth {name} of a joined endpoint is missing");
        }

        foreach (var entry in await store.ListAsync(IntentPrefix))
        {
            failures.Add($"round {round}: intent left in the store: {entry.Key}");
        }

        foreach (var entry in await store.ListAsync(QuarantinePrefix))
        {
            failures.Add($"round {round}: record quarantined: {entry.Key}");
        }

        return failures;
    }

    /// <summary>Unmounts the sandbox namespaces a failed round left under the run directory (or the directory cannot be
    /// deleted); every file there was made by the test's controllers.</summary>
    public static async Task UnmountSandboxesAsync(string runDirectory)
    {
        var netns = Path.Combine(runDirectory, "netns");
        if (Directory.Exists(netns))
        {
            var manager = new CnmSharp.Netlink.NetworkNamespaceManager(new CnmSharp.Netlink.NetworkNamespaceManagerOptions { RunDirectory = netns, MakeRunDirectoryShared = false });
            foreach (var file in Directory.GetFiles(netns))
            {
                await manager.DeleteAsync(Path.GetFileName(file));
            }
        }
    }
}
