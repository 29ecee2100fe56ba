using CnmSharp.Drivers.Bridge;
using CnmSharp.Store;

namespace CnmSharp.TestHost;

/// <summary>
/// The controller and the workers of the stop tests (compiled into CnmSharp.TestHost and, linked, into
/// CnmSharp.IntegrationTests): a bridge controller on a private host namespace, and workers that each own a sandbox and
/// two endpoints of network <see cref="NetworkName"/> and join and leave them in turn until stopped.
/// </summary>
internal static class StopWork
{
    /// <summary>How many workers run at once.</summary>
    public const int Workers = 8;

    /// <summary>The network the workers use.</summary>
    public const string NetworkName = "n";

    /// <summary>The network's subnet.</summary>
    public const string Subnet = "10.97.0.0/16";

    /// <summary>Builds (starts, so recovers) a controller: the bridge driver, the given host namespace, no default
    /// networks; <paramref name="store"/> when given, else the SQLite store under the state directory.</summary>
    public static ValueTask<NetworkController> BuildAsync(string hostNamespacePath, string stateDirectory, string runDirectory, IKeyValueStore? store)
    {
        var builder = new NetworkControllerBuilder(new CnmOptions
        {
            HostNamespacePath = hostNamespacePath,
            RunDirectory = runDirectory,
            StateDirectory = stateDirectory,
            CreateDefaultNetworks = false,
        })
        .AddDriver(new BridgeDriverFactory(new BridgeDriverOptions { ReapTimeout = TimeSpan.FromSeconds(3) }));
        if (store is not null)
        {
            builder.UseStore(store);
        }

        return builder.BuildAsync();
    }

    /// <summary>The workers' network, created when it does not exist.</summary>
    public static async ValueTask<Network> EnsureNetworkAsync(NetworkController controller) =>
        controller.FindNetworkByName(NetworkName)
        ?? await controller.CreateNetworkAsync(NetworkName, "bridge", new NetworkCreateOptions { IPv4Config = [new IpamConfig { Subnet = Subnet }] }).ConfigureAwait(false);

    /// <summary>
    /// One worker: its own sandbox (<c>w&lt;N&gt;</c>) and two endpoints (<c>w&lt;N&gt;a</c>, <c>w&lt;N&gt;b</c>), found or
    /// created, joined and left in turn until stopped. With <paramref name="random"/>, the endpoint is picked at random
    /// and now and then an endpoint that is not joined is deleted, or the sandbox is deleted (its endpoints leave), and
    /// made again on the next pass. <paramref name="completed"/>, when given, is called after each operation that
    /// completed. Returns the error that ended it (the controller stopping under it, or a failure),
    /// or null when it was stopped.
    /// </summary>
    public static async Task<Exception?> WorkAsync(NetworkController controller, Network network, int worker, Random? random, CancellationToken stop, Action? completed = null)
    {
        try
        {
            var names = new[] { $"w{worker}a", $"w{worker}b" };
            for (var i = 0; !stop.IsCancellationRequested; i++)
            {
                var sandbox = controller.FindSandboxByContainerId("w" + worker) ?? await controller.CreateSandboxAsync("w" + worker, null, CancellationToken.None).ConfigureAwait(false);
                var name = names[random is null ? i % 2 : random.Next(2)];
                var endpoint = network.FindEndpointByName(name) ?? await network.CreateEndpointAsync(name, null, CancellationToken.None).ConfigureAwait(false);
                var roll = random?.Next(32) ?? -1;
                if (roll == 0)
                {
                    await sandbox.DeleteAsync(CancellationToken.None).ConfigureAwait(false);
                }
                else if (roll == 1 && endpoint.Sandbox is null)
                {
                    await endpoint.DeleteAsync(false, CancellationToken.None).ConfigureAwait(false);
                }
                else if (endpoint.Sandbox is null)
                {
                    await endpoint.JoinAsync(sandbox, null, CancellationToken.None).ConfigureAwait(false);
                }
                else
                {
                    await endpoint.LeaveAsync(sandbox, CancellationToken.None).ConfigureAwait(false);
                }

                completed?.Invoke();
            }

            return null;
        }
        catch (Exception ex) when (ex is ObjectDisposedException or CnmException or OperationCanceledException)
        {
            return ex;
        }
    }
}
