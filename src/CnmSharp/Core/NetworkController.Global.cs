using System.Collections.Concurrent;
using System.Text.Json.Serialization;
using CnmSharp.Core;
using CnmSharp.Core.Persistence;
using CnmSharp.Drivers;
using CnmSharp.Store;
using Microsoft.Extensions.Logging;

namespace CnmSharp;

/// <summary>An endpoint of a global-scope network as the cluster sees it: made by this host or another one.</summary>
/// <param name="Id">The endpoint id.</param>
/// <param name="Name">The endpoint name.</param>
/// <param name="NetworkId">Its network.</param>
/// <param name="Node">The node (host) that made it (<see cref="ClusterOptions.NodeName"/> there).</param>
/// <param name="Address">Its IPv4 address, or null.</param>
/// <param name="AddressIPv6">Its IPv6 address, or null.</param>
/// <param name="MacAddress">Its MAC address (<c>aa:bb:cc:dd:ee:ff</c>), or null.</param>
public sealed record ClusterEndpoint(string Id, string Name, string NetworkId, string Node, CidrAddress? Address, CidrAddress? AddressIPv6, string? MacAddress);

/// <summary>A host's liveness record in the global store (<c>cnm/v1/node/&lt;name&gt;</c>): attached to the host's
/// lease while its controller runs; written without a lease and <see cref="Running"/> false by a clean stop, so others
/// keep its endpoints. A record that vanished (its lease expired) means the host died: others remove its endpoints.</summary>
internal sealed record NodeRecord
{
    public required string Name { get; init; }
    public string? AdvertiseAddress { get; init; }
    public required string ControllerId { get; init; }
    public bool Running { get; init; }
    public DateTimeOffset Updated { get; init; }
}

[JsonSourceGenerationOptions(DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull, PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(NodeRecord))]
internal sealed partial class GlobalJsonContext : JsonSerializerContext
{
}

/// <summary>The controller's part of a cluster: its global store, node name and lease, and the other hosts' endpoints.</summary>
internal sealed class GlobalState(ISharedKeyValueStore store, bool owned, CnmOptions options)
{
    public const string NodePrefix = CoreStore.Root + "node/";

    public ISharedKeyValueStore Store { get; } = store;

    public bool Owned { get; } = owned;

    public string NodeName { get; } = options.Cluster.EffectiveNodeName();

    public TimeSpan LeaseTtl { get; } = options.Cluster.NodeLeaseTtl;

    public long LeaseId { get; set; }

    public CancellationTokenSource Stop { get; } = new();

    public Task? Follower { get; set; }

    public Task? KeepAlive { get; set; }

    /// <summary>Endpoints of global networks made by other hosts: network id, then endpoint id.</summary>
    public ConcurrentDictionary<string, ConcurrentDictionary<string, (ClusterEndpoint Endpoint, long Version)>> Remote { get; } = new(StringComparer.Ordinal);

    /// <summary>Nodes with a liveness record (running or cleanly stopped).</summary>
    public ConcurrentDictionary<string, bool> Nodes { get; } = new(StringComparer.Ordinal);

    public static string NodeKey(string name) => NodePrefix + name;
}

/// <summary>
/// The global store (issue 13): global-scope networks and their endpoints are published there for every host, the
/// default IPAM keeps <c>GlobalDefault</c> there, and each controller follows it (list, then watch from the listing's
/// revision; list again after a compaction) to show every host's global networks and endpoints, to create on its own
/// host the global networks others made (so it can attach endpoints to them) and to remove those others deleted.
/// The local store keeps this host's own records (its copy of each global network it has, its endpoints, joins and
/// intents), so every local operation stays one atomic local commit; the global records are published after it.
/// </summary>
public sealed partial class NetworkController
{
    private readonly GlobalState? _global;

    /// <summary>The cluster node name of this controller, or null when it has no global store.</summary>
    public string? NodeName => _global?.NodeName;

    /// <summary>True when the controller shares a global store with other hosts.</summary>
    public bool HasGlobalStore => _global is not null;

    private static bool IsGlobal(NetworkRecord record) => !record.ConfigOnly && string.Equals(record.Scope, "global", StringComparison.Ordinal);

    /// <summary>The endpoints other hosts made on a network (empty for local-scope networks or without a global store).</summary>
    internal IReadOnlyList<ClusterEndpoint> RemoteEndpointsOf(string networkId) =>
        _global is not null && _global.Remote.TryGetValue(networkId, out var endpoints)
            ? endpoints.Values.Select(e => e.Endpoint).OrderBy(e => e.Node, StringComparer.Ordinal).ThenBy(e => e.Name, StringComparer.Ordinal).ToArray()
            : [];

    /// <summary>Refuses a global-scope network without a global store (<see cref="CnmErrorCodes.GlobalStoreRequired"/>).</summary>
    private void RequireGlobalStore(string name, DriverScope scope)
    {
        if (scope == DriverScope.Global && _global is null)
        {
            throw new CnmUnavailableException(CnmErrorCodes.GlobalStoreRequired, $"network \"{name}\"",
                "a global-scope network needs a global store shared by the cluster's hosts (NetworkControllerBuilder.UseGlobalStore, cnm --store etcd://...)");
        }
    }

    /// <summary>Publishes a new global network's record (create-only: an id taken in the cluster is a conflict).</summary>
    private async ValueTask PublishNetworkAsync(NetworkRecord record, CancellationToken cancellationToken)
    {
        if (_global is null || !IsGlobal(record))
        {
            return;
        }

        await _global.Store.PutAsync(CoreStore.NetworkKey(record.Id), CoreStore.Serialize(record, CoreJsonContext.Default.NetworkRecord), StoreVersion.Absent, StoreDurability.Durable, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Removes a global network's record from the cluster (best effort: logged).</summary>
    private async ValueTask UnpublishNetworkAsync(NetworkRecord record)
    {
        if (_global is null || !IsGlobal(record))
        {
            return;
        }

        try
        {
            await _global.Store.DeleteAsync(CoreStore.NetworkKey(record.Id), StoreVersion.Any, StoreDurability.Durable, CancellationToken.None).ConfigureAwait(false);
        }
        catch (CnmException ex)
        {
            GlobalLog.PublishFailed(_logger, ex, "network " + record.Id);
        }
    }

    /// <summary>Publishes one of this host's endpoints of a global network (with its node name).</summary>
    private async ValueTask PublishEndpointAsync(Endpoint endpoint, CancellationToken cancellationToken)
    {
        if (_global is null || !IsGlobal(endpoint.Network.Record))
        {
            return;
        }

        var record = endpoint.Record with { Node = _global.NodeName, Join = null };
        await _global.Store.PutAsync(CoreStore.EndpointKey(endpoint.Network.Id, endpoint.Id), CoreStore.Serialize(record, CoreJsonContext.Default.EndpointRecord), StoreVersion.Any, StoreDurability.Durable, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Publishes a new endpoint's record before its local commit.</summary>
    private async ValueTask PublishEndpointRecordAsync(Network network, EndpointRecord record, CancellationToken cancellationToken)
    {
        if (_global is null || !IsGlobal(network.Record))
        {
            return;
        }

        await _global.Store.PutAsync(CoreStore.EndpointKey(network.Id, record.Id), CoreStore.Serialize(record with { Node = _global.NodeName }, CoreJsonContext.Default.EndpointRecord), StoreVersion.Any, StoreDurability.Durable, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The pools of every global network in the cluster: the sweep leaves them alone.</summary>
    private async ValueTask<IEnumerable<string>> GlobalPoolIdsAsync(CancellationToken cancellationToken)
    {
        var pools = _networks.Values.Where(n => IsGlobal(n.Record)).SelectMany(n => n.AllPools.Select(p => p.PoolId)).ToList();
        if (_global is not null)
        {
            foreach (var entry in await _global.Store.ListAsync(CoreStore.NetworkPrefix, cancellationToken).ConfigureAwait(false))
            {
                var record = CoreStore.Deserialize(entry, CoreJsonContext.Default.NetworkRecord);
                pools.AddRange(record.IPv4Info.Concat(record.IPv6Info).Select(p => p.PoolId));
            }
        }

        return pools;
    }

    /// <summary>Removes one of this host's endpoints from the cluster's view (best effort: logged).</summary>
    private ValueTask UnpublishEndpointAsync(Endpoint endpoint) =>
        _global is null || !IsGlobal(endpoint.Network.Record) ? ValueTask.CompletedTask : DeletePublishedEndpointAsync(endpoint.Network.Id, endpoint.Id);

    private async ValueTask DeletePublishedEndpointAsync(string networkId, string endpointId)
    {
        try
        {
            await _global!.Store.DeleteAsync(CoreStore.EndpointKey(networkId, endpointId), StoreVersion.Any, StoreDurability.Durable, CancellationToken.None).ConfigureAwait(false);
        }
        catch (CnmException ex)
        {
            GlobalLog.PublishFailed(_logger, ex, "endpoint " + endpointId);
        }
    }

    /// <summary>A global network with endpoints on other hosts cannot be deleted (read from the store, not the view).</summary>
    private async ValueTask CheckNoRemoteEndpointsAsync(Network network, CancellationToken cancellationToken)
    {
        if (_global is null || !IsGlobal(network.Record))
        {
            return;
        }

        var remote = new List<string>();
        foreach (var entry in await _global.Store.ListAsync(CoreStore.EndpointPrefix + network.Id + "/", cancellationToken).ConfigureAwait(false))
        {
            var record = CoreStore.Deserialize(entry, CoreJsonContext.Default.EndpointRecord);
            if (!string.Equals(record.Node, _global.NodeName, StringComparison.Ordinal))
            {
                remote.Add($"{record.Name} on {record.Node}");
            }
        }

        if (remote.Count > 0)
        {
            throw new CnmConflictException(CnmErrorCodes.ActiveEndpoints, network.ToString(), $"network has active endpoints on other hosts ({string.Join(", ", remote)})");
        }
    }

    /// <summary>At start (read-write): registers this host's liveness, publishes its global endpoints again, reads the
    /// cluster's state (creating here the global networks others made, removing those they deleted, cleaning the
    /// endpoints of hosts that died) and starts following it.</summary>
    private async ValueTask StartGlobalAsync(CancellationToken cancellationToken)
    {
        if (_global is null)
        {
            return;
        }

        await RegisterNodeAsync(cancellationToken).ConfigureAwait(false);
        await RemoveOwnStaleEndpointsAsync(cancellationToken).ConfigureAwait(false);
        var listing = await _global.Store.ListAtAsync(CoreStore.Root, StoreRevision.Latest, cancellationToken).ConfigureAwait(false);
        await ApplyGlobalSnapshotAsync(listing, cancellationToken).ConfigureAwait(false);
        var stop = _global.Stop.Token;
        _global.KeepAlive = Task.Run(() => KeepNodeAliveAsync(stop), CancellationToken.None);
        _global.Follower = Task.Run(() => FollowGlobalAsync(stop), CancellationToken.None);
    }

    /// <summary>Read-only start: the cluster's global networks and other hosts' endpoints, read once.</summary>
    private async ValueTask ReadGlobalAsync(CancellationToken cancellationToken)
    {
        if (_global is null)
        {
            return;
        }

        var listing = await _global.Store.ListAtAsync(CoreStore.Root, StoreRevision.Latest, cancellationToken).ConfigureAwait(false);
        var listed = new HashSet<string>(StringComparer.Ordinal);
        foreach (var entry in listing.Entries)
        {
            if (entry.Key.StartsWith(CoreStore.NetworkPrefix, StringComparison.Ordinal))
            {
                var record = CoreStore.Deserialize(entry, CoreJsonContext.Default.NetworkRecord);
                listed.Add(record.Id);
                if (!_networks.ContainsKey(record.Id) && _registry.ContainsDriver(record.Driver))
                {
                    _networks[record.Id] = new Network(this, record with { TearingDown = false }, 0, _registry.GetDriver(record.Driver));
                }
            }
            else if (entry.Key.StartsWith(CoreStore.EndpointPrefix, StringComparison.Ordinal))
            {
                ApplyRemoteEndpoint(entry);
            }
        }

        // This host's copy of a global network another host deleted since this host's last read-write start is not
        // shown (a read-write start detaches it; one with endpoints here is kept and published again there).
        foreach (var network in _networks.Values.Where(n => IsGlobal(n.Record) && n.EndpointCount == 0 && !listed.Contains(n.Id)).ToArray())
        {
            _networks.TryRemove(network.Id, out _);
        }
    }

    /// <summary>
    /// At start, after recovery: a published endpoint of this node that has no local record is one a crash interrupted
    /// (its delete after the local record went, or its create after the publish and before the commit, whose rollback
    /// does not know the publish). Nothing here owns it any more: its record is deleted from the cluster
    /// (compare-and-swap on its version) and its addresses, still allocated to it in the global pool, are released. The
    /// start's sweep cannot do this: it leaves global pools alone. Best effort (logged). It runs inside the start's
    /// exclusive hold of the state lock, after recovery: no other process on this store is in the middle of an
    /// operation, so a published endpoint with no local record is no running operation's.
    /// </summary>
    private async ValueTask RemoveOwnStaleEndpointsAsync(CancellationToken cancellationToken)
    {
        var global = _global!;
        foreach (var entry in await global.Store.ListAsync(CoreStore.EndpointPrefix, cancellationToken).ConfigureAwait(false))
        {
            EndpointRecord record;
            try
            {
                record = CoreStore.Deserialize(entry, CoreJsonContext.Default.EndpointRecord);
            }
            catch (CnmInternalException ex)
            {
                GlobalLog.ApplyFailed(_logger, ex);
                continue;
            }

            if (!string.Equals(record.Node, global.NodeName, StringComparison.Ordinal) || FindEndpoint(record.Id) is not null
                || _markedEndpoints.Keys.Any(e => string.Equals(e.Id, record.Id, StringComparison.Ordinal)))
            {
                continue;
            }

            try
            {
                // Only what is still this endpoint's (an address released before the crash may have gone to another
                // endpoint since): released by its owner.
                if (_networks.TryGetValue(record.NetworkId, out var network) && network.IpamDriver is { } ipamName && _registry.ContainsIpam(ipamName)
                    && OwnerReleaseFor(_registry.GetIpam(ipamName), network) is { } byOwner)
                {
                    await byOwner.ReleaseOwnerAsync(record.Id, cancellationToken).ConfigureAwait(false);
                }

                await global.Store.DeleteAsync(entry.Key, entry.Version, StoreDurability.Durable, cancellationToken).ConfigureAwait(false);
                GlobalLog.StaleOwnEndpointRemoved(_logger, record.Name, record.Id);
            }
            catch (CnmException ex)
            {
                GlobalLog.PublishFailed(_logger, ex, "stale endpoint " + record.Id);
            }
        }
    }

    private async ValueTask RegisterNodeAsync(CancellationToken cancellationToken)
    {
        var global = _global!;
        var lease = await global.Store.GrantLeaseAsync(global.LeaseTtl, cancellationToken).ConfigureAwait(false);
        global.LeaseId = lease.Id;
        var record = new NodeRecord { Name = global.NodeName, AdvertiseAddress = _options.AdvertiseAddress, ControllerId = Id, Running = true, Updated = _time.GetUtcNow() };
        await global.Store.PutWithLeaseAsync(GlobalState.NodeKey(global.NodeName), CoreStore.Serialize(record, GlobalJsonContext.Default.NodeRecord), StoreVersion.Any, lease.Id, cancellationToken).ConfigureAwait(false);

        // This host's endpoints, again: others may have removed them while its lease was gone.
        foreach (var network in _networks.Values.Where(n => IsGlobal(n.Record)))
        {
            foreach (var endpoint in network.Endpoints)
            {
                await PublishEndpointAsync(endpoint, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    private async Task KeepNodeAliveAsync(CancellationToken stop)
    {
        var global = _global!;
        var period = global.LeaseTtl / 3;
        while (!stop.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(period, _time, stop).ConfigureAwait(false);
                await global.Store.KeepLeaseAliveAsync(global.LeaseId, stop).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return;
            }
            catch (CnmNotFoundException)
            {
                // The lease expired (the store was out of reach for longer than its TTL): others may have removed this
                // host's endpoints. Register again and publish them again.
                try
                {
                    await RunAsync("cluster.register", () => RegisterNodeAsync(stop), stop).ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is CnmException or ObjectDisposedException)
                {
                    GlobalLog.KeepAliveFailed(_logger, ex);
                }
            }
            catch (Exception ex) when (ex is CnmException or ObjectDisposedException)
            {
                GlobalLog.KeepAliveFailed(_logger, ex);
            }
        }
    }

    private async Task FollowGlobalAsync(CancellationToken stop)
    {
        var global = _global!;
        try
        {
            await foreach (var update in global.Store.FollowAsync(CoreStore.Root, onUnavailable: ex => GlobalLog.FollowUnavailable(_logger, ex), timeProvider: _time, cancellationToken: stop).ConfigureAwait(false))
            {
                try
                {
                    if (update.Snapshot is { } snapshot)
                    {
                        await ApplyGlobalSnapshotAsync(snapshot, stop).ConfigureAwait(false);
                    }
                    else if (update.Change is { } change)
                    {
                        await ApplyGlobalChangeAsync(change, stop).ConfigureAwait(false);
                    }
                }
                catch (OperationCanceledException) when (stop.IsCancellationRequested)
                {
                    return;
                }
                catch (ObjectDisposedException)
                {
                    return;
                }
                catch (Exception ex)
                {
                    GlobalLog.ApplyFailed(_logger, ex);
                }
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
        }
    }

    private async ValueTask ApplyGlobalSnapshotAsync(StoreListing listing, CancellationToken cancellationToken)
    {
        var global = _global!;
        var networks = new Dictionary<string, NetworkRecord>(StringComparer.Ordinal);
        var endpoints = new List<StoreEntry>();
        var nodes = new HashSet<string>(StringComparer.Ordinal);
        foreach (var entry in listing.Entries)
        {
            if (entry.Key.StartsWith(CoreStore.NetworkPrefix, StringComparison.Ordinal))
            {
                try
                {
                    var record = CoreStore.Deserialize(entry, CoreJsonContext.Default.NetworkRecord);
                    networks[record.Id] = record;
                }
                catch (CnmInternalException ex)
                {
                    // Unreadable (another host wrote it): skipped, so it does not stop the rest of the listing.
                    GlobalLog.ApplyFailed(_logger, ex);
                }
            }
            else if (entry.Key.StartsWith(CoreStore.EndpointPrefix, StringComparison.Ordinal))
            {
                endpoints.Add(entry);
            }
            else if (entry.Key.StartsWith(GlobalState.NodePrefix, StringComparison.Ordinal))
            {
                nodes.Add(entry.Key[GlobalState.NodePrefix.Length..]);
            }
        }

        global.Nodes.Clear();
        foreach (var node in nodes)
        {
            global.Nodes[node] = true;
        }

        global.Remote.Clear();
        foreach (var entry in endpoints)
        {
            var record = ApplyRemoteEndpoint(entry);
            if (record?.Node is { } node && !nodes.Contains(node) && !string.Equals(node, global.NodeName, StringComparison.Ordinal))
            {
                // Its host has no liveness record: its controller died and its lease expired.
                await RemoveDeadEndpointAsync(entry, record, node, cancellationToken).ConfigureAwait(false);
            }
        }

        foreach (var record in networks.Values)
        {
            if (!_networks.ContainsKey(record.Id))
            {
                await AdoptGlobalNetworkAsync(record, cancellationToken).ConfigureAwait(false);
            }
        }

        foreach (var network in _networks.Values.Where(n => IsGlobal(n.Record) && !networks.ContainsKey(n.Id)).ToArray())
        {
            // The listing may be older than a network this host created meanwhile (published before it was added
            // here): only one whose record is gone from the store now was deleted elsewhere.
            if (await global.Store.GetAsync(CoreStore.NetworkKey(network.Id), cancellationToken).ConfigureAwait(false) is null)
            {
                await DetachGlobalNetworkAsync(network.Id, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    private async ValueTask ApplyGlobalChangeAsync(StoreEvent change, CancellationToken cancellationToken)
    {
        var global = _global!;
        var put = change.Kind == StoreEventKind.Put;
        if (change.Key.StartsWith(CoreStore.NetworkPrefix, StringComparison.Ordinal))
        {
            if (put)
            {
                var record = CoreStore.Deserialize(new StoreEntry(change.Key, change.Value, change.Version), CoreJsonContext.Default.NetworkRecord);
                if (!_networks.ContainsKey(record.Id))
                {
                    await AdoptGlobalNetworkAsync(record, cancellationToken).ConfigureAwait(false);
                }
            }
            else
            {
                var id = change.Key[CoreStore.NetworkPrefix.Length..];
                global.Remote.TryRemove(id, out _);
                await DetachGlobalNetworkAsync(id, cancellationToken).ConfigureAwait(false);
            }
        }
        else if (change.Key.StartsWith(CoreStore.EndpointPrefix, StringComparison.Ordinal))
        {
            if (put)
            {
                ApplyRemoteEndpoint(new StoreEntry(change.Key, change.Value, change.Version));
            }
            else
            {
                var rest = change.Key[CoreStore.EndpointPrefix.Length..];
                var slash = rest.IndexOf('/', StringComparison.Ordinal);
                if (slash > 0 && global.Remote.TryGetValue(rest[..slash], out var map))
                {
                    map.TryRemove(rest[(slash + 1)..], out _);
                }
            }
        }
        else if (change.Key.StartsWith(GlobalState.NodePrefix, StringComparison.Ordinal))
        {
            var node = change.Key[GlobalState.NodePrefix.Length..];
            if (put)
            {
                global.Nodes[node] = true;
                return;
            }

            global.Nodes.TryRemove(node, out _);
            if (string.Equals(node, global.NodeName, StringComparison.Ordinal))
            {
                return; // Our own lease expired: the keep-alive registers again and publishes our endpoints.
            }

            GlobalLog.NodeGone(_logger, node);
            foreach (var entry in await global.Store.ListAsync(CoreStore.EndpointPrefix, cancellationToken).ConfigureAwait(false))
            {
                var record = CoreStore.Deserialize(entry, CoreJsonContext.Default.EndpointRecord);
                if (string.Equals(record.Node, node, StringComparison.Ordinal))
                {
                    await RemoveDeadEndpointAsync(entry, record, node, cancellationToken).ConfigureAwait(false);
                }
            }
        }
    }

    /// <summary>Puts another host's endpoint into the view; returns its record (null when unreadable).</summary>
    private EndpointRecord? ApplyRemoteEndpoint(StoreEntry entry)
    {
        var global = _global!;
        EndpointRecord record;
        ClusterEndpoint endpoint;
        try
        {
            // Another host wrote this record: nothing in it is trusted until it has passed the same checks as a
            // caller's value.
            record = CoreStore.Deserialize(entry, CoreJsonContext.Default.EndpointRecord);
            Validation.Id(record.Id, "endpoint");
            Validation.Id(record.NetworkId, "network");
            if (record.Node is not { } node || string.Equals(node, global.NodeName, StringComparison.Ordinal))
            {
                return record;
            }

            endpoint = new ClusterEndpoint(
                record.Id,
                record.Name,
                record.NetworkId,
                node,
                record.Address is { } a ? CidrAddress.Parse(a) : null,
                record.AddressIPv6 is { } a6 ? CidrAddress.Parse(a6) : null,
                record.MacAddress);
        }
        catch (CnmException ex) when (ex is CnmInternalException or CnmInvalidArgumentException)
        {
            GlobalLog.ApplyFailed(_logger, ex);
            return null;
        }

        global.Remote.GetOrAdd(record.NetworkId, _ => new(StringComparer.Ordinal))[record.Id] = (endpoint, entry.Version);
        return record;
    }

    /// <summary>Removes a dead host's endpoint from the cluster's view (compare-and-swap: a host that came back and
    /// published it again keeps it). Its address stays reserved: the host may come back with it.</summary>
    private async ValueTask RemoveDeadEndpointAsync(StoreEntry entry, EndpointRecord record, string node, CancellationToken cancellationToken)
    {
        var global = _global!;
        try
        {
            if (await global.Store.DeleteAsync(entry.Key, entry.Version, StoreDurability.Durable, cancellationToken).ConfigureAwait(false))
            {
                GlobalLog.DeadEndpointRemoved(_logger, record.Name, record.Id, node);
            }
        }
        catch (CnmConflictException)
        {
            // Written again meanwhile (its host is back): kept.
            return;
        }

        if (global.Remote.TryGetValue(record.NetworkId, out var map))
        {
            map.TryRemove(record.Id, out _);
        }
    }

    /// <summary>Creates on this host a global network another host made: the driver's create with the record's
    /// pools and options, then this host's copy of the record. Skipped when the driver is not registered here.</summary>
    private async ValueTask AdoptGlobalNetworkAsync(NetworkRecord record, CancellationToken cancellationToken)
    {
        if (record.TearingDown || !_registry.ContainsDriver(record.Driver))
        {
            return;
        }

        try
        {
            // Another host wrote this record: its id and name pass the caller's checks before they reach a store key,
            // a driver or the kernel (the driver validates the options as at any create). A bad one is skipped, so
            // it does not stop the other networks of a listing.
            Validation.Id(record.Id, "network");
            Validation.Name(record.Name, "network");
        }
        catch (CnmInvalidArgumentException ex)
        {
            GlobalLog.ApplyFailed(_logger, ex);
            return;
        }

        await RunAsync("network.adopt", async () =>
        {
            await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                if (_networks.ContainsKey(record.Id) || _deletingGlobalNetworks.ContainsKey(record.Id) || _creatingNetworks.Any(n => string.Equals(n.Id, record.Id, StringComparison.Ordinal)))
                {
                    return;
                }

                _creatingNetworks.Add((record.Id, record.Name, record.Driver));
            }
            finally
            {
                _gate.Release();
            }

            try
            {
                // The listing or event may be older than a delete of the record (here or on another host): only a
                // record still in the store is adopted.
                if (await _global!.Store.GetAsync(CoreStore.NetworkKey(record.Id), cancellationToken).ConfigureAwait(false) is null)
                {
                    return;
                }

                var driver = _registry.GetDriver(record.Driver);
                var network = new Network(this, record, 0, driver);
                await driver.Driver.CreateNetworkAsync(
                    new NetworkCreateRequest
                    {
                        NetworkId = record.Id,
                        NetworkName = record.Name,
                        DriverOptions = record.DriverOptions,
                        Labels = record.Labels,
                        EnableIPv6 = record.EnableIPv6,
                        Internal = record.Internal,
                        IPv4Data = network.ToIpamData(ipv6: false),
                        IPv6Data = network.ToIpamData(ipv6: true),
                    },
                    cancellationToken).ConfigureAwait(false);
                var existing = await _store.Store.GetAsync(CoreStore.NetworkKey(record.Id), cancellationToken).ConfigureAwait(false);
                network.Version = existing?.Version
                    ?? await _store.Store.PutAsync(CoreStore.NetworkKey(record.Id), CoreStore.Serialize(record, CoreJsonContext.Default.NetworkRecord), StoreVersion.Absent, StoreDurability.Durable, cancellationToken).ConfigureAwait(false);
                _networks[record.Id] = network;
                GlobalLog.NetworkAdopted(_logger, record.Name, record.Id, record.Driver);
            }
            finally
            {
                await _gate.WaitAsync(CancellationToken.None).ConfigureAwait(false);
                _creatingNetworks.Remove((record.Id, record.Name, record.Driver));
                _gate.Release();
            }
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Removes from this host a global network another host deleted: the driver's delete and this host's
    /// copy of the record; its pools were released by the host that deleted it.</summary>
    private async ValueTask DetachGlobalNetworkAsync(string networkId, CancellationToken cancellationToken)
    {
        if (!_networks.TryGetValue(networkId, out var known) || known.Deleting || !IsGlobal(known.Record))
        {
            return;
        }

        await RunAsync("network.detach", async () =>
        {
            if (!_networks.TryGetValue(networkId, out var network) || network.Deleting)
            {
                return;
            }

            await network.Gate.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                if (network.EndpointCount > 0)
                {
                    // Deleted elsewhere while this host attached an endpoint: kept here, and published again.
                    GlobalLog.DetachRefused(_logger, network.Name, network.Id, network.EndpointCount);
                    await _global!.Store.PutAsync(CoreStore.NetworkKey(network.Id), CoreStore.Serialize(network.Record with { TearingDown = false }, CoreJsonContext.Default.NetworkRecord), StoreVersion.Absent, StoreDurability.Durable, cancellationToken).ConfigureAwait(false);
                    return;
                }

                await network.RegisteredDriver.Driver.DeleteNetworkAsync(network.Id, cancellationToken).ConfigureAwait(false);
                await _store.Store.DeleteAsync(CoreStore.NetworkKey(network.Id), StoreVersion.Any, StoreDurability.Durable, cancellationToken).ConfigureAwait(false);
                network.Deleting = true;
                _networks.TryRemove(network.Id, out _);
                GlobalLog.NetworkDetached(_logger, network.Name, network.Id);
            }
            finally
            {
                network.Gate.Release();
            }
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>At stop: the follower and keep-alive end; the liveness record is written without the lease (a clean
    /// stop: others keep this host's endpoints, as its kernel keeps them) and the lease is revoked.</summary>
    private async ValueTask StopGlobalAsync()
    {
        if (_global is null)
        {
            return;
        }

        await _global.Stop.CancelAsync().ConfigureAwait(false);
        foreach (var task in new[] { _global.Follower, _global.KeepAlive })
        {
            if (task is not null)
            {
                await task.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }
        }

        if (_global.LeaseId == 0)
        {
            return;
        }

        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            var record = new NodeRecord { Name = _global.NodeName, AdvertiseAddress = _options.AdvertiseAddress, ControllerId = Id, Running = false, Updated = _time.GetUtcNow() };
            await _global.Store.PutAsync(GlobalState.NodeKey(_global.NodeName), CoreStore.Serialize(record, GlobalJsonContext.Default.NodeRecord), StoreVersion.Any, StoreDurability.Durable, timeout.Token).ConfigureAwait(false);
            await _global.Store.RevokeLeaseAsync(_global.LeaseId, timeout.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is CnmException or OperationCanceledException or ObjectDisposedException)
        {
            GlobalLog.KeepAliveFailed(_logger, ex);
        }

        _global.Stop.Dispose();
    }
}

/// <summary>Log messages of the global store's part.</summary>
internal static partial class GlobalLog
{
    [LoggerMessage(1400, LogLevel.Warning, "Global store: publishing {What} failed")]
    public static partial void PublishFailed(ILogger logger, Exception exception, string what);

    [LoggerMessage(1401, LogLevel.Warning, "Global store: keeping this node's lease alive failed")]
    public static partial void KeepAliveFailed(ILogger logger, Exception exception);

    [LoggerMessage(1402, LogLevel.Warning, "Global store unreachable while following it; retrying")]
    public static partial void FollowUnavailable(ILogger logger, Exception exception);

    [LoggerMessage(1403, LogLevel.Warning, "Global store: applying a change from another host failed")]
    public static partial void ApplyFailed(ILogger logger, Exception exception);

    [LoggerMessage(1404, LogLevel.Warning, "Node {Node} is gone (its lease expired): removing its endpoints from the cluster's view")]
    public static partial void NodeGone(ILogger logger, string node);

    [LoggerMessage(1405, LogLevel.Warning, "Removed endpoint {Name} ({EndpointId}) of dead node {Node} from the global store")]
    public static partial void DeadEndpointRemoved(ILogger logger, string name, string endpointId, string node);

    [LoggerMessage(1406, LogLevel.Information, "Global network {Name} ({NetworkId}, driver {Driver}) made by another host created here")]
    public static partial void NetworkAdopted(ILogger logger, string name, string networkId, string driver);

    [LoggerMessage(1407, LogLevel.Information, "Global network {Name} ({NetworkId}) deleted by another host removed here")]
    public static partial void NetworkDetached(ILogger logger, string name, string networkId);

    [LoggerMessage(1408, LogLevel.Warning, "Global network {Name} ({NetworkId}) was deleted by another host but has {Endpoints} endpoint(s) here: kept and published again")]
    public static partial void DetachRefused(ILogger logger, string name, string networkId, int endpoints);

    [LoggerMessage(1409, LogLevel.Warning, "Removed this node's endpoint {Name} ({EndpointId}) from the global store: a crash left it published with no local record; its addresses are released")]
    public static partial void StaleOwnEndpointRemoved(ILogger logger, string name, string endpointId);
}
