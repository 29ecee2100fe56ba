using System.Text.Json;
using CnmSharp.Drivers.Bridge;
using CnmSharp.Store;
using CnmSharp.Testing;

namespace CnmSharp.IntegrationTests.Core;

/// <summary>
/// A controller stopped at a random moment while 8 workers join and leave; after each restart on the same store,
/// every joined endpoint's interface is in its sandbox with its address, and no interface is there that no endpoint
/// names. (The SIGKILL half of this test, with the controller in a child process, is not written yet.)
/// </summary>
[RequiresRoot]
[NonParallelizable]
public sealed class StopDuringWorkTests
{
    private const int Workers = 8;
    private const int Rounds = 20;

    [Test]
    public async Task A_controller_disposed_at_random_moments_while_8_workers_join_and_leave_is_consistent_after_each_restart()
    {
        await using var host = await TestHostNamespace.CreateAsync();
        var temp = Directory.CreateTempSubdirectory("cnmstop-").FullName;
        await using var store = new InMemoryKeyValueStore();
        var random = new Random(20260);
        var failures = new List<string>();
        try
        {
            for (var round = 0; round < Rounds; round++)
            {
                var controller = await BuildAsync(host, temp, store);
                var network = controller.FindNetworkByName("n") ?? await controller.CreateNetworkAsync("n", "bridge", new NetworkCreateOptions { IPv4Config = [new IpamConfig { Subnet = "10.97.0.0/16" }] });
                if (round > 0)
                {
                    failures.AddRange(await InconsistenciesAsync(controller, round));
                }

                using var stop = new CancellationTokenSource();
                var workers = Enumerable.Range(0, Workers).Select(w => Task.Run(() => WorkAsync(controller, network, w, stop.Token))).ToArray();
                await Task.Delay(random.Next(20, 400));
                await controller.DisposeAsync();
                await stop.CancelAsync();
                await Task.WhenAll(workers);
            }

            var last = await BuildAsync(host, temp, store);
            failures.AddRange(await InconsistenciesAsync(last, Rounds));
            foreach (var sandbox in last.Sandboxes.ToArray())
            {
                await sandbox.DeleteAsync();
            }

            await last.WaitForTeardownsAsync();
            await last.DisposeAsync();
        }
        finally
        {
            // Sandbox namespaces a failed round left mounted go first, or the directory cannot be deleted.
            var netns = Path.Combine(temp, "run", "netns");
            if (Directory.Exists(netns))
            {
                var manager = new CnmSharp.Netlink.NetworkNamespaceManager(new CnmSharp.Netlink.NetworkNamespaceManagerOptions { RunDirectory = netns, MakeRunDirectoryShared = false });
                foreach (var file in Directory.GetFiles(netns))
                {
                    await manager.DeleteAsync(Path.GetFileName(file));
                }
            }

            Directory.Delete(temp, recursive: true);
        }

        Assert.That(failures, Is.Empty);
    }

    private static ValueTask<NetworkController> BuildAsync(TestHostNamespace host, string temp, IKeyValueStore store) =>
        new NetworkControllerBuilder(new CnmOptions
        {
            HostNamespacePath = host.Path,
            RunDirectory = Path.Combine(temp, "run"),
            StateDirectory = Path.Combine(temp, "state"),
            CreateDefaultNetworks = false,
        })
        .AddDriver(new BridgeDriverFactory(new BridgeDriverOptions { ReapTimeout = TimeSpan.FromSeconds(3) }))
        .UseStore(store)
        .BuildAsync();

    /// <summary>One worker: its own sandbox and two endpoints, joined and left in turn until stopped; any error (the
    /// controller stopping under it) ends it.</summary>
    private static async Task WorkAsync(NetworkController controller, Network network, int worker, CancellationToken stop)
    {
        try
        {
            var sandbox = controller.FindSandboxByContainerId("w" + worker) ?? await controller.CreateSandboxAsync("w" + worker, null, CancellationToken.None);
            var endpoints = new List<Endpoint>();
            foreach (var name in new[] { $"w{worker}a", $"w{worker}b" })
            {
                endpoints.Add(network.FindEndpointByName(name) ?? await network.CreateEndpointAsync(name, null, CancellationToken.None));
            }

            for (var i = 0; !stop.IsCancellationRequested; i++)
            {
                var endpoint = endpoints[i % 2];
                if (endpoint.Sandbox is null)
                {
                    await endpoint.JoinAsync(sandbox, null, CancellationToken.None);
                }
                else
                {
                    await endpoint.LeaveAsync(sandbox, CancellationToken.None);
                }
            }
        }
        catch (Exception ex) when (ex is ObjectDisposedException or CnmException or OperationCanceledException)
        {
            // The controller stopped under the worker.
        }
    }

    /// <summary>What does not match between the controller's view and each sandbox's namespace.</summary>
    private static async Task<List<string>> InconsistenciesAsync(NetworkController controller, int round)
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

        return failures;
    }
}
