using System.Text.Json;
using CnmSharp.IntegrationTests.Bridge;
using CnmSharp.Netlink;
using CnmSharp.Store;
using CnmSharp.Testing;

namespace CnmSharp.IntegrationTests.Macvlan;

/// <summary>
/// One test's world for the link-on-a-parent drivers: a private host namespace holding a veth pair (<c>pv0</c>, the
/// parent, and <c>pv1</c>, both up), a controller on it with the built-in drivers and no firewall, an in-memory store
/// the test inspects. Disposing deletes the sandboxes and networks, the namespace (with everything in it) and the
/// temporary directory, also after a failure.
/// </summary>
internal sealed class ParentLinkHarness : IAsyncDisposable
{
    public const string Parent = "pv0";
    public const string Peer = "pv1";

    private bool _disposed;

    private ParentLinkHarness(TestHostNamespace host, string tempDir, InMemoryKeyValueStore store, NetworkController controller)
    {
        Host = host;
        TempDir = tempDir;
        Store = store;
        Controller = controller;
    }

    public TestHostNamespace Host { get; }

    public string TempDir { get; }

    public InMemoryKeyValueStore Store { get; }

    public NetworkController Controller { get; private set; }

    public static async Task<ParentLinkHarness> CreateAsync(bool vethParent = true)
    {
        var host = await TestHostNamespace.CreateAsync();
        var temp = Directory.CreateTempSubdirectory("cnmmv-").FullName;
        var store = new InMemoryKeyValueStore();
        try
        {
            if (vethParent)
            {
                using var client = host.OpenClient();
                await client.CreateLinkAsync(new VethLinkSpec(Parent, Peer) { Up = true });
                var peer = await client.GetLinkAsync(Peer) ?? throw new InvalidOperationException("no " + Peer);
                await client.SetLinkUpAsync(peer.Index);
            }

            var controller = await Build(host, temp, store);
            return new ParentLinkHarness(host, temp, store, controller);
        }
        catch
        {
            await host.DisposeAsync();
            Directory.Delete(temp, recursive: true);
            throw;
        }
    }

    private static ValueTask<NetworkController> Build(TestHostNamespace host, string temp, IKeyValueStore store) =>
        new NetworkControllerBuilder(new CnmOptions
        {
            HostNamespacePath = host.Path,
            RunDirectory = Path.Combine(temp, "run"),
            StateDirectory = Path.Combine(temp, "state"),
            CreateDefaultNetworks = false,
        })
        .UseFirewall(null)
        .UseStore(store)
        .BuildAsync();

    /// <summary>Stops the controller and starts a new one on the same store and host namespace.</summary>
    public async Task RestartAsync()
    {
        await Controller.DisposeAsync();
        Controller = await Build(Host, TempDir, Store);
    }

    public ValueTask<Network> NetworkAsync(string driver, string name, string subnet, Dictionary<string, string> options, bool @internal = false) =>
        Controller.CreateNetworkAsync(name, driver, new NetworkCreateOptions
        {
            IPv4Config = [new IpamConfig { Subnet = subnet }],
            DriverOptions = options,
            Internal = @internal,
        });

    /// <summary>A sandbox joined to <paramref name="network"/> through a new endpoint.</summary>
    public async Task<(Sandbox Sandbox, Endpoint Endpoint)> ContainerAsync(Network network, string name)
    {
        var sandbox = await Controller.CreateSandboxAsync(name);
        var endpoint = await network.CreateEndpointAsync(name);
        await endpoint.JoinAsync(sandbox);
        return (sandbox, endpoint);
    }

    public List<string> HostLinks() => BridgeHarness.LinksOf(Host.Path);

    /// <summary><c>ip -details -json link show dev NAME</c> inside a namespace.</summary>
    public static JsonElement Link(string netns, string name) =>
        JsonDocument.Parse(BridgeHarness.Exec(netns, "ip", "-details", "-json", "link", "show", "dev", name)).RootElement[0].Clone();

    /// <summary>The kind and mode of a link, from <c>ip -details -json</c>.</summary>
    public static (string? Kind, string? Mode) KindAndMode(string netns, string name)
    {
        var info = Link(netns, name).GetProperty("linkinfo");
        var kind = info.GetProperty("info_kind").GetString();
        var mode = info.TryGetProperty("info_data", out var data) && data.TryGetProperty("mode", out var m) ? m.GetString() : null;
        return (kind, mode);
    }

    /// <summary>Store keys that must be gone when no network exists: driver records, IPAM pools and addresses, core
    /// networks, endpoints and intents.</summary>
    public async Task<List<string>> LeftoverStoreKeysAsync() =>
        [.. (await Store.ListAsync("cnm/v1/")).Select(e => e.Key).Where(k =>
            k.StartsWith("cnm/v1/driver/", StringComparison.Ordinal)
            || (k.StartsWith("cnm/v1/ipam/", StringComparison.Ordinal) && (k.Contains("/pool/", StringComparison.Ordinal) || k.Contains("/addr/", StringComparison.Ordinal)))
            || k.StartsWith("cnm/v1/network/", StringComparison.Ordinal)
            || k.StartsWith("cnm/v1/endpoint/", StringComparison.Ordinal)
            || k.StartsWith("cnm/v1/intent/", StringComparison.Ordinal))];

    public async Task DeleteEverythingAsync()
    {
        foreach (var sandbox in Controller.Sandboxes)
        {
            await sandbox.DeleteAsync();
        }

        await Controller.WaitForTeardownsAsync();
        foreach (var network in Controller.Networks.Where(n => !n.PreDefined))
        {
            foreach (var endpoint in network.Endpoints)
            {
                await endpoint.DeleteAsync(force: true);
            }

            await network.DeleteAsync();
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        try
        {
            await DeleteEverythingAsync();
        }
        catch (Exception ex)
        {
            await TestContext.Out.WriteLineAsync("teardown: " + ex.Message);
        }

        await Controller.DisposeAsync();
        await Host.DisposeAsync();
        foreach (var line in MountTable.LinesUnder(TempDir).Reverse())
        {
            BridgeHarness.Run("umount", "-l", line.Split(' ')[4]);
        }

        Directory.Delete(TempDir, recursive: true);
    }
}
