using System.Globalization;
using System.Net;
using System.Net.NetworkInformation;
using CnmSharp.Netlink;
using CnmSharp.Store;

namespace CnmSharp.Drivers.Overlay;

/// <summary>
/// The overlay driver's part in the global store. Keys, under <see cref="DriverContext.GlobalStoreKeyPrefix"/>:
/// <c>vni/&lt;vni&gt;</c> (the VNI's network, compare-and-swap create), <c>network/&lt;nid&gt;</c> (the network's VNIs,
/// written once), <c>node/&lt;nid&gt;/&lt;node&gt;</c> and <c>peer/&lt;nid&gt;/&lt;node&gt;/&lt;eid&gt;</c> (on the host's lease).
/// Each host follows <c>peer/</c> and programs the other hosts' peers into its networks' namespaces.
/// </summary>
internal sealed partial class OverlayDriver
{
    private readonly SemaphoreSlim _leaseGate = new(1, 1);
    private readonly Dictionary<string, OverlayPeerRecord> _remote = new(StringComparer.Ordinal);
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, byte> _pendingWithdrawals = new(StringComparer.Ordinal);
    private Task? _followTask;
    private Task? _keepAliveTask;
    private long _leaseId;
    private int _clusterStarted;

    private string Prefix => _context.GlobalStoreKeyPrefix!;

    private string PeerPrefix => Prefix + "peer/";

    private string NodePrefix(string networkId) => Prefix + "node/" + networkId + "/";

    private string PeerKey(string networkId, string endpointId) => PeerPrefix + networkId + "/" + _context.NodeName + "/" + endpointId;

    // ---------------------------------------------------------------- lease and publishing

    /// <summary>Starts the lease and the follower once (the first network, or a restore with networks).</summary>
    private async ValueTask StartClusterAsync(CancellationToken cancellationToken)
    {
        if (Interlocked.Exchange(ref _clusterStarted, 1) != 0)
        {
            return;
        }

        await _leaseGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await RenewLeaseLockedAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (CnmUnavailableException ex)
        {
            OverlayLog.GlobalStoreUnavailable(_logger, ex.Message);
        }
        finally
        {
            _leaseGate.Release();
        }

        // The other hosts' peers, programmed before the start returns (the follower lists again, then watches): a
        // short-lived controller (one cnm command) brings this host's FDB up to date even if it stops at once.
        try
        {
            var peers = await _context.GlobalStore!.ListAsync(PeerPrefix, cancellationToken).ConfigureAwait(false);
            await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                foreach (var entry in peers)
                {
                    if (ParseRemote(entry.Value) is { } peer)
                    {
                        _remote[entry.Key] = peer;
                    }
                }

                foreach (var network in _networks.Values)
                {
                    await ReconcileLockedAsync(network, cancellationToken).ConfigureAwait(false);
                }
            }
            finally
            {
                _gate.Release();
            }
        }
        catch (CnmUnavailableException ex)
        {
            OverlayLog.GlobalStoreUnavailable(_logger, ex.Message);
        }

        _keepAliveTask = Task.Run(() => KeepAliveLoopAsync(_stop.Token), CancellationToken.None);
        _followTask = Task.Run(() => FollowLoopAsync(_stop.Token), CancellationToken.None);
    }

    /// <summary>Grants a new lease and writes every key this host owns on it again (memberships, joined endpoints),
    /// and deletes this host's peer keys that no local record backs. Called with the lease gate held.</summary>
    private async ValueTask RenewLeaseLockedAsync(CancellationToken cancellationToken)
    {
        var global = _context.GlobalStore!;
        var lease = await global.GrantLeaseAsync(_options.LeaseTtl, cancellationToken).ConfigureAwait(false);
        Volatile.Write(ref _leaseId, lease.Id);

        List<StoreOperation> puts = [];
        HashSet<string> mine = new(StringComparer.Ordinal);
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            foreach (var network in _networks.Values)
            {
                puts.Add(MembershipPut(network.Record.Id, lease.Id));
                foreach (var endpoint in network.Endpoints.Values.Where(e => e.SandboxKey is not null))
                {
                    puts.Add(PeerPut(endpoint, lease.Id));
                    mine.Add(PeerKey(endpoint.NetworkId, endpoint.Id));
                }
            }
        }
        finally
        {
            _gate.Release();
        }

        if (puts.Count > 0)
        {
            await global.CommitAsync(puts, cancellationToken).ConfigureAwait(false);
        }

        foreach (var entry in await global.ListAsync(PeerPrefix, cancellationToken).ConfigureAwait(false))
        {
            if (OverlayJson.TryRead(entry.Value, OverlayJsonContext.Default.OverlayPeerRecord) is { } peer && peer.Node == _context.NodeName && !mine.Contains(entry.Key))
            {
                await global.DeleteAsync(entry.Key, entry.Version, cancellationToken).ConfigureAwait(false);
            }
        }

        OverlayLog.LeaseGranted(_logger, lease.Id, lease.Ttl.TotalSeconds, puts.Count);
    }

    /// <summary>A clean stop, called with the driver's gate held and the follower and keep-alive ended: this host's
    /// memberships and joined endpoints are written again without a lease, then the lease is revoked. Best effort
    /// (a store out of reach leaves them on the lease, which then expires).</summary>
    private async ValueTask ParkAsync()
    {
        var lease = Volatile.Read(ref _leaseId);
        if (lease == 0 || _context.GlobalStore is not { } global || _context.GlobalStoreKeyPrefix is null || _context.NodeName is null || _context.AdvertiseAddress is null)
        {
            return;
        }

        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            List<StoreOperation> puts = [];
            foreach (var network in _networks.Values)
            {
                puts.Add(MembershipPut(network.Record.Id, StoreLease.None));
                puts.AddRange(network.Endpoints.Values.Where(e => e.SandboxKey is not null).Select(e => PeerPut(e, StoreLease.None)));
            }

            if (puts.Count > 0)
            {
                await global.CommitAsync(puts, timeout.Token).ConfigureAwait(false);
            }

            await global.RevokeLeaseAsync(lease, timeout.Token).ConfigureAwait(false);
            OverlayLog.Parked(_logger, puts.Count, lease);
        }
        catch (Exception ex) when (ex is CnmException or OperationCanceledException or ObjectDisposedException)
        {
            OverlayLog.ParkFailed(_logger, ex, lease);
        }
    }

    private StoreOperation MembershipPut(string networkId, long lease) =>
        StoreOperation.Put(
            NodePrefix(networkId) + _context.NodeName,
            OverlayJson.Write(new OverlayNodeRecord { Node = _context.NodeName!, Vtep = _context.AdvertiseAddress!.ToString() }, OverlayJsonContext.Default.OverlayNodeRecord),
            StoreVersion.Any,
            lease);

    private StoreOperation PeerPut(OverlayEndpointRecord endpoint, long lease) =>
        StoreOperation.Put(
            PeerKey(endpoint.NetworkId, endpoint.Id),
            OverlayJson.Write(
                new OverlayPeerRecord
                {
                    NetworkId = endpoint.NetworkId,
                    EndpointId = endpoint.Id,
                    Node = _context.NodeName!,
                    Vtep = _context.AdvertiseAddress!.ToString(),
                    Address = endpoint.Address,
                    Mac = endpoint.Mac,
                },
                OverlayJsonContext.Default.OverlayPeerRecord),
            StoreVersion.Any,
            lease);

    /// <summary>Writes one key on the lease; a lease that expired meanwhile is replaced (which writes everything again).</summary>
    private async ValueTask PutOnLeaseAsync(Func<long, StoreOperation> operation, CancellationToken cancellationToken)
    {
        var global = _context.GlobalStore!;
        await _leaseGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var lease = Volatile.Read(ref _leaseId);
            if (lease == 0)
            {
                await RenewLeaseLockedAsync(cancellationToken).ConfigureAwait(false);
                return;
            }

            try
            {
                await global.CommitAsync([operation(lease)], cancellationToken).ConfigureAwait(false);
            }
            catch (CnmNotFoundException ex) when (ex.Code == CnmErrorCodes.LeaseNotFound)
            {
                await RenewLeaseLockedAsync(cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            _leaseGate.Release();
        }
    }

    private ValueTask PublishMembershipAsync(string networkId, CancellationToken cancellationToken) =>
        PutOnLeaseAsync(lease => MembershipPut(networkId, lease), cancellationToken);

    private async ValueTask PublishPeerAsync(string networkId, string endpointId, CancellationToken cancellationToken)
    {
        OverlayEndpointRecord? endpoint;
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            endpoint = _networks.TryGetValue(networkId, out var network) && network.Endpoints.TryGetValue(endpointId, out var e) ? e : null;
        }
        finally
        {
            _gate.Release();
        }

        if (endpoint?.SandboxKey is not null)
        {
            await PutOnLeaseAsync(lease => PeerPut(endpoint, lease), cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Deletes this host's key for the endpoint. With the store unreachable the leave goes on; the stale key
    /// is deleted when the lease is next renewed or replaced (see <see cref="RenewLeaseLockedAsync"/>) or expires.</summary>
    private async ValueTask WithdrawPeerAsync(string networkId, string endpointId, CancellationToken cancellationToken)
    {
        if (_context.GlobalStore is not { } global || _context.GlobalStoreKeyPrefix is null || _context.NodeName is null)
        {
            return;
        }

        try
        {
            await global.DeleteAsync(PeerKey(networkId, endpointId), StoreVersion.Any, cancellationToken).ConfigureAwait(false);
        }
        catch (CnmUnavailableException ex)
        {
            // Retried after each lease renewal, so a stale key does not outlive a short outage.
            OverlayLog.GlobalWriteFailed(_logger, ex, PeerKey(networkId, endpointId));
            _pendingWithdrawals[PeerKey(networkId, endpointId)] = 0;
        }
    }

    /// <summary>Deletes the peer keys whose withdrawal failed while the store was unreachable.</summary>
    private async ValueTask RetryWithdrawalsAsync(CancellationToken cancellationToken)
    {
        foreach (var key in _pendingWithdrawals.Keys)
        {
            await _context.GlobalStore!.DeleteAsync(key, StoreVersion.Any, cancellationToken).ConfigureAwait(false);
            _pendingWithdrawals.TryRemove(key, out _);
        }
    }

    /// <summary>Removes this host from a network in the global store; the last host to leave deletes the network's
    /// record and frees its VNIs.</summary>
    private async ValueTask WithdrawNetworkAsync(string networkId, CancellationToken cancellationToken)
    {
        if (_context.GlobalStore is not { } global || _context.GlobalStoreKeyPrefix is null || _context.NodeName is null)
        {
            return;
        }

        await global.DeleteAsync(NodePrefix(networkId) + _context.NodeName, StoreVersion.Any, cancellationToken).ConfigureAwait(false);
        foreach (var entry in await global.ListAsync(PeerPrefix + networkId + "/" + _context.NodeName + "/", cancellationToken).ConfigureAwait(false))
        {
            await global.DeleteAsync(entry.Key, entry.Version, cancellationToken).ConfigureAwait(false);
        }

        if ((await global.ListAsync(NodePrefix(networkId), cancellationToken).ConfigureAwait(false)).Count > 0)
        {
            return;
        }

        await new OverlayVniAllocator(global, Prefix, _logger).FreeNetworkAsync(networkId, cancellationToken).ConfigureAwait(false);
    }

    private async Task KeepAliveLoopAsync(CancellationToken cancellationToken)
    {
        var global = _context.GlobalStore!;
        var period = TimeSpan.FromTicks(Math.Max(_options.LeaseTtl.Ticks / 3, TimeSpan.FromMilliseconds(200).Ticks));
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(period, _context.TimeProvider, cancellationToken).ConfigureAwait(false);
                await _leaseGate.WaitAsync(cancellationToken).ConfigureAwait(false);
                try
                {
                    var lease = Volatile.Read(ref _leaseId);
                    if (lease == 0)
                    {
                        await RenewLeaseLockedAsync(cancellationToken).ConfigureAwait(false);
                    }
                    else
                    {
                        try
                        {
                            await global.KeepLeaseAliveAsync(lease, cancellationToken).ConfigureAwait(false);
                        }
                        catch (CnmNotFoundException ex) when (ex.Code == CnmErrorCodes.LeaseNotFound)
                        {
                            // Expired (the store was unreachable too long): everything this host published is gone.
                            OverlayLog.LeaseLost(_logger, lease);
                            Volatile.Write(ref _leaseId, 0);
                            await RenewLeaseLockedAsync(cancellationToken).ConfigureAwait(false);
                        }
                    }
                }
                finally
                {
                    _leaseGate.Release();
                }

                await RetryWithdrawalsAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (ObjectDisposedException)
            {
                return;
            }
            catch (CnmException ex)
            {
                OverlayLog.GlobalStoreUnavailable(_logger, ex.Message);
            }
        }
    }

    // ---------------------------------------------------------------- following the other hosts

    private async Task FollowLoopAsync(CancellationToken cancellationToken)
    {
        var global = _context.GlobalStore!;
        try
        {
            await foreach (var update in global.FollowAsync(PeerPrefix, _options.RetryDelay, ex => OverlayLog.GlobalStoreUnavailable(_logger, ex.Message), _context.TimeProvider, cancellationToken).ConfigureAwait(false))
            {
                await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
                try
                {
                    if (update.Snapshot is { } snapshot)
                    {
                        _remote.Clear();
                        foreach (var entry in snapshot.Entries)
                        {
                            if (ParseRemote(entry.Value) is { } peer)
                            {
                                _remote[entry.Key] = peer;
                            }
                        }

                        foreach (var network in _networks.Values)
                        {
                            await ReconcileLockedAsync(network, cancellationToken).ConfigureAwait(false);
                        }
                    }
                    else if (update.Change is { } change)
                    {
                        await ApplyLockedAsync(change, cancellationToken).ConfigureAwait(false);
                    }
                }
                finally
                {
                    _gate.Release();
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Stopping.
        }
        catch (ObjectDisposedException)
        {
            // Stopping.
        }
    }

    /// <summary>A peer record of another host, or null (this host's own, or unreadable).</summary>
    private OverlayPeerRecord? ParseRemote(ReadOnlyMemory<byte> value) =>
        OverlayJson.TryRead(value, OverlayJsonContext.Default.OverlayPeerRecord) is { } peer && peer.Node != _context.NodeName ? peer : null;

    private async ValueTask ApplyLockedAsync(StoreEvent change, CancellationToken cancellationToken)
    {
        if (change.Kind == StoreEventKind.Delete)
        {
            _remote.Remove(change.Key);
            foreach (var network in _networks.Values)
            {
                if (network.Programmed.Remove(change.Key, out var old))
                {
                    await UnprogramAsync(network, old, cancellationToken).ConfigureAwait(false);
                }
            }

            return;
        }

        if (ParseRemote(change.Value) is not { } peer)
        {
            return;
        }

        _remote[change.Key] = peer;
        if (_networks.TryGetValue(peer.NetworkId, out var target))
        {
            if (target.Programmed.Remove(change.Key, out var previous))
            {
                await UnprogramAsync(target, previous, cancellationToken).ConfigureAwait(false);
            }

            await ProgramAsync(target, change.Key, peer, cancellationToken).ConfigureAwait(false);
        }
    }

    private async ValueTask ProgramKnownPeersAsync(string networkId, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_networks.TryGetValue(networkId, out var network))
            {
                await ReconcileLockedAsync(network, cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Makes the peers programmed in a network exactly the remote peers the view holds for it.</summary>
    private async ValueTask ReconcileLockedAsync(OverlayNetwork network, CancellationToken cancellationToken)
    {
        foreach (var (key, old) in network.Programmed.ToList())
        {
            if (!_remote.TryGetValue(key, out var now) || now != old)
            {
                network.Programmed.Remove(key);
                await UnprogramAsync(network, old, cancellationToken).ConfigureAwait(false);
            }
        }

        foreach (var (key, peer) in _remote)
        {
            if (peer.NetworkId == network.Record.Id && !network.Programmed.ContainsKey(key))
            {
                await ProgramAsync(network, key, peer, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>A permanent neighbour entry (IP to MAC) on the subnet's VXLAN device, which answers ARP for it (proxy),
    /// and an FDB entry on the device sending the MAC to the peer's host (NDA_DST).</summary>
    private async ValueTask ProgramAsync(OverlayNetwork network, string key, OverlayPeerRecord peer, CancellationToken cancellationToken)
    {
        if (!TryDecode(peer, out var address, out var mac, out var vtep) || network.SubnetIndex(address) is var index && index < 0)
        {
            return;
        }

        var vxlan = network.VxlanIndex[index];
        try
        {
            await network.Client.ReplaceNeighbourAsync(new NeighbourSpec(vxlan, address, mac), cancellationToken).ConfigureAwait(false);
            await network.Client.AddFdbEntryAsync(new FdbEntrySpec(vxlan, mac) { Destination = vtep, Replace = true }, cancellationToken).ConfigureAwait(false);

            network.Programmed[key] = peer;
            OverlayLog.PeerAdded(_logger, network.Record.Id, peer.Address, peer.Mac, peer.Vtep, peer.Node);
        }
        catch (NetlinkException ex)
        {
            OverlayLog.PeerFailed(_logger, ex, network.Record.Id, peer.Address, peer.Node);
        }
    }

    private async ValueTask UnprogramAsync(OverlayNetwork network, OverlayPeerRecord peer, CancellationToken cancellationToken)
    {
        if (!TryDecode(peer, out var address, out var mac, out var vtep) || network.SubnetIndex(address) is var index && index < 0)
        {
            return;
        }

        var vxlan = network.VxlanIndex[index];
        try
        {
            try
            {
                await network.Client.DeleteNeighbourAsync(new NeighbourSpec(vxlan, address, mac), cancellationToken).ConfigureAwait(false);
            }
            catch (NetlinkException ex) when (ex.IsNotFound)
            {
                // Gone already.
            }

            try
            {
                await network.Client.DeleteFdbEntryAsync(new FdbEntrySpec(vxlan, mac) { Destination = vtep }, cancellationToken).ConfigureAwait(false);
            }
            catch (NetlinkException ex) when (ex.IsNotFound)
            {
                // Gone already.
            }

            OverlayLog.PeerRemoved(_logger, network.Record.Id, peer.Address, peer.Node);
        }
        catch (NetlinkException ex)
        {
            OverlayLog.PeerFailed(_logger, ex, network.Record.Id, peer.Address, peer.Node);
        }
    }

    private static bool TryDecode(OverlayPeerRecord peer, out IPAddress address, out PhysicalAddress mac, out IPAddress vtep)
    {
        address = IPAddress.None;
        mac = PhysicalAddress.None;
        vtep = IPAddress.None;
        if (!CidrAddress.TryParse(peer.Address, out var cidr) || !IPAddress.TryParse(peer.Vtep, out var parsedVtep))
        {
            return false;
        }

        try
        {
            mac = PhysicalAddress.Parse(peer.Mac.Replace(':', '-'));
        }
        catch (FormatException)
        {
            return false;
        }

        address = cidr.Address;
        vtep = parsedVtep;
        return mac.GetAddressBytes().Length == 6;
    }
}
