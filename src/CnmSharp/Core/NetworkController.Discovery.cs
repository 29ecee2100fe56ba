using System.Collections.Concurrent;
using CnmSharp.Core;
using CnmSharp.Diagnostics;
using CnmSharp.Drivers;

namespace CnmSharp;

/// <summary>
/// Node discovery (libnetwork's <c>pushNodeDiscovery</c>) and cluster-wide network allocation. Drivers with global
/// connectivity that implement <see cref="IDiscoveryAwareDriver"/> learn every known node when they are registered
/// (this node itself at least) and every node added or removed later. Drivers with global data scope that implement
/// <see cref="INetworkAllocatorDriver"/> allocate a network's cluster-wide resources before it is created, as a swarm
/// manager's allocator does; a controller has no manager apart from itself, so it plays that part.
/// </summary>
public sealed partial class NetworkController
{
    /// <summary>The address of this node when <see cref="CnmOptions.AdvertiseAddress"/> gives none (what a dockerd
    /// outside a swarm sends).</summary>
    private const string DefaultSelfAddress = "127.0.0.1";

    private ConcurrentDictionary<string, NodeDiscovery>? _nodes;

    private ConcurrentDictionary<string, NodeDiscovery> Nodes =>
        LazyInitializer.EnsureInitialized(ref _nodes, () =>
        {
            var self = new NodeDiscovery(_options.AdvertiseAddress ?? DefaultSelfAddress, "", Self: true);
            return new ConcurrentDictionary<string, NodeDiscovery>(StringComparer.Ordinal) { [self.Address] = self };
        });

    /// <summary>The nodes this controller knows (itself first), as discovery-aware drivers are told.</summary>
    public IReadOnlyList<NodeDiscovery> KnownNodes => [.. Nodes.Values.OrderByDescending(n => n.Self).ThenBy(n => n.Address, StringComparer.Ordinal)];

    /// <summary>Tells every driver with global connectivity that wants discovery events that a node joined.</summary>
    /// <param name="address">The node's advertise address (an IP address).</param>
    /// <param name="bindAddress">The node's bind address, or empty.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when every such driver has been told (a driver's failure is logged).</returns>
    public ValueTask AddNodeAsync(string address, string bindAddress = "", CancellationToken cancellationToken = default)
    {
        var node = new NodeDiscovery(CheckNodeAddress(address), bindAddress ?? "", Self: false);
        return RunAsync("node.add", async () =>
        {
            if (Nodes.TryAdd(node.Address, node))
            {
                foreach (var driver in _registry.Drivers)
                {
                    await PushDiscoveryAsync(driver, node, add: true, cancellationToken).ConfigureAwait(false);
                }
            }
        }, cancellationToken);
    }

    /// <summary>Tells every driver with global connectivity that wants discovery events that a node left.</summary>
    /// <param name="address">The node's advertise address.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when every such driver has been told (a driver's failure is logged).</returns>
    public ValueTask RemoveNodeAsync(string address, CancellationToken cancellationToken = default)
    {
        var key = CheckNodeAddress(address);
        return RunAsync("node.remove", async () =>
        {
            if (Nodes.TryGetValue(key, out var node) && !node.Self && Nodes.TryRemove(key, out _))
            {
                foreach (var driver in _registry.Drivers)
                {
                    await PushDiscoveryAsync(driver, node, add: false, cancellationToken).ConfigureAwait(false);
                }
            }
        }, cancellationToken);
    }

    private static string CheckNodeAddress(string address) =>
        IPAddressText.TryParseStrict(address, out var parsed)
            ? parsed.ToString()
            : throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidAddress, $"node \"{address}\"", "a node's address must be an IP address");

    /// <summary>Tells a newly registered driver every known node (libnetwork does so when a driver registers).</summary>
    private async ValueTask PushKnownNodesAsync(RegisteredDriver driver, CancellationToken cancellationToken)
    {
        if (!WantsDiscovery(driver))
        {
            return;
        }

        foreach (var node in KnownNodes)
        {
            await PushDiscoveryAsync(driver, node, add: true, cancellationToken).ConfigureAwait(false);
        }
    }

    private static bool WantsDiscovery(RegisteredDriver driver) =>
        driver.Capability.ConnectivityScope == DriverScope.Global && driver.Driver is IDiscoveryAwareDriver;

    private async ValueTask PushDiscoveryAsync(RegisteredDriver driver, NodeDiscovery node, bool add, CancellationToken cancellationToken)
    {
        if (!WantsDiscovery(driver))
        {
            return;
        }

        var aware = (IDiscoveryAwareDriver)driver.Driver;
        try
        {
            if (add)
            {
                await aware.DiscoverNewAsync(node, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                await aware.DiscoverDeleteAsync(node, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // libnetwork logs a driver's discovery failure and goes on.
            PluginLog.DiscoveryFailed(_logger, ex, driver.Name, add ? "new" : "delete", node.Address);
        }
    }

    /// <summary>The allocator of a network's driver, when the core must call it (global data scope).</summary>
    private static INetworkAllocatorDriver? AllocatorOf(RegisteredDriver driver) =>
        driver.Capability.DataScope == DriverScope.Global ? driver.Driver as INetworkAllocatorDriver : null;

    /// <summary>Frees a deleted network's cluster-wide resources; a failure is logged (the network is gone).</summary>
    private async ValueTask FreeNetworkAsync(Network network)
    {
        if (AllocatorOf(network.RegisteredDriver) is not { } allocator)
        {
            return;
        }

        try
        {
            await allocator.FreeNetworkAsync(network.Id, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            PluginLog.FreeNetworkFailed(_logger, ex, network.Driver, network.Id);
        }
    }
}
