using System.Globalization;
using CnmSharp.Diagnostics;
using CnmSharp.Netlink;
using CnmSharp.Store;

namespace CnmSharp.Drivers.Overlay;

internal sealed partial class OverlayDriver : IDriverDiagnostics
{
    /// <summary>
    /// The driver's local records against the core's objects and the kernel. Proven its own: the namespaces of the
    /// driver's own namespace directory (<c>&lt;RunDirectory&gt;/overlay</c>, which only this driver writes), and inside
    /// a recorded network's namespace the veths enslaved to its recorded bridges. A namespace of that directory no
    /// network record names, and a bridge port no endpoint record names, are leaks.
    /// </summary>
    public async ValueTask<IReadOnlyList<InvariantFinding>> CheckAsync(DriverCheckRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        var findings = new List<InvariantFinding>();
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var records = await _local.ListNetworksAsync(cancellationToken).ConfigureAwait(false);
            var endpoints = await _local.ListEndpointsAsync(null, cancellationToken).ConfigureAwait(false);
            foreach (var record in records.Where(r => !request.NetworkIds.Contains(r.Id)))
            {
                findings.Add(new InvariantFinding
                {
                    Kind = InvariantKinds.OrphanDriverRecord,
                    Subject = $"overlay network record {Short(record.Id)} ({record.Name})",
                    Detail = $"the core's store has no network {Short(record.Id)}; its namespace is {record.Namespace}",
                    Repair = request.Repair ? "a network record is declared state: delete the network by hand" : null,
                });
            }

            foreach (var endpoint in endpoints.Where(e => !request.EndpointIds.Contains(e.Id)))
            {
                findings.Add(new InvariantFinding
                {
                    Kind = InvariantKinds.OrphanDriverRecord,
                    Subject = $"overlay endpoint record {Short(endpoint.Id)} on network {Short(endpoint.NetworkId)}",
                    Detail = "the core's store has no such endpoint",
                    Repair = request.Repair ? "left for the network's delete (the driver deletes its endpoints' records and devices with it)" : null,
                });
            }

            var directory = Path.Combine(_context.RunDirectory, OverlayDriverFactory.NamespaceDirectory);
            var named = records.Select(r => r.Namespace).ToHashSet(StringComparer.Ordinal);
            foreach (var path in Directory.Exists(directory) ? Directory.EnumerateFileSystemEntries(directory).Order(StringComparer.Ordinal).ToList() : [])
            {
                var name = Path.GetFileName(path);
                if (named.Contains(name))
                {
                    continue;
                }

                var repaired = false;
                string? action = null;
                if (request.Repair)
                {
                    try
                    {
                        await _namespaces.DeleteAsync(name, cancellationToken).ConfigureAwait(false);
                        (repaired, action) = (!File.Exists(path), "unmounted and deleted");
                    }
                    catch (Exception ex) when (ex is NamespaceException or IOException)
                    {
                        action = ex.Message;
                    }
                }

                findings.Add(new InvariantFinding
                {
                    Kind = InvariantKinds.LeakedNamespace,
                    Subject = $"namespace {path}",
                    Detail = "in the overlay driver's namespace directory; no overlay network record names it",
                    Repaired = repaired,
                    Repair = action,
                });
            }

            foreach (var network in _networks.Values.Where(n => request.NetworkIds.Contains(n.Record.Id)).ToList())
            {
                await CheckDevicesAsync(network, request.Repair, findings, cancellationToken).ConfigureAwait(false);
            }

            foreach (var network in _networks.Values.Where(n => request.NetworkIds.Contains(n.Record.Id)))
            {
                var ports = endpoints.Where(e => e.NetworkId == network.Record.Id).Select(e => e.HostVeth).ToHashSet(StringComparer.Ordinal);
                var bridges = network.BridgeIndex.Where(i => i != 0).ToHashSet();
                foreach (var link in await network.Client.GetLinksAsync(cancellationToken).ConfigureAwait(false))
                {
                    if (!string.Equals(link.Kind, "veth", StringComparison.Ordinal) || !bridges.Contains(link.MasterIndex) || ports.Contains(link.Name))
                    {
                        continue;
                    }

                    var repaired = false;
                    string? action = null;
                    if (request.Repair)
                    {
                        try
                        {
                            await network.Client.DeleteLinkAsync(link.Index, cancellationToken).ConfigureAwait(false);
                            (repaired, action) = (true, "deleted (with its peer)");
                        }
                        catch (NetlinkException ex)
                        {
                            action = ex.Message;
                        }
                    }

                    findings.Add(new InvariantFinding
                    {
                        Kind = InvariantKinds.LeakedLink,
                        Subject = $"link {link.Name} in {network.Record.Namespace}",
                        Detail = $"a veth enslaved to a bridge of overlay network {network.Record.Name} that no endpoint record names",
                        Repaired = repaired,
                        Repair = action,
                    });
                }
            }
        }
        finally
        {
            _gate.Release();
        }

        await CheckGlobalKeysAsync(request.Repair, findings, cancellationToken).ConfigureAwait(false);
        return findings;
    }

    /// <summary>
    /// This host's own keys in the global store (only keys that name this node: <c>node/&lt;nid&gt;/&lt;node&gt;</c>, and
    /// <c>peer/</c> keys whose record names this node) against what the driver holds. A membership of a network it does
    /// not hold, or a peer of an endpoint it has not joined, is a leak (the others program it: traffic to an address no
    /// one answers), deleted at the version read. The membership of a network it holds, or a joined endpoint's peer,
    /// missing or saying something else (the others cannot reach it) is written again on the lease. Runs without the
    /// driver's gate (the lease path takes it), on what it read under the gate; with the global store out of reach it is
    /// skipped and logged.
    /// </summary>
    private async ValueTask CheckGlobalKeysAsync(bool repair, List<InvariantFinding> findings, CancellationToken cancellationToken)
    {
        if (_context.GlobalStore is not { } global || _context.GlobalStoreKeyPrefix is null || _context.NodeName is null || _context.AdvertiseAddress is null)
        {
            return;
        }

        var wanted = new Dictionary<string, StoreOperation>(StringComparer.Ordinal);
        var what = new Dictionary<string, string>(StringComparer.Ordinal);
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            // Every network the driver holds (an orphan record's too: the driver still serves it, and the next lease
            // renewal would write its keys again; that record is reported on its own).
            foreach (var network in _networks.Values)
            {
                var membership = MembershipPut(network.Record.Id, StoreLease.None);
                wanted[membership.Key] = membership;
                what[membership.Key] = $"this host's membership of overlay network {network.Record.Name}";
                foreach (var endpoint in network.Endpoints.Values.Where(e => e.SandboxKey is not null))
                {
                    var peer = PeerPut(endpoint, StoreLease.None);
                    wanted[peer.Key] = peer;
                    what[peer.Key] = $"the peer of joined endpoint {Short(endpoint.Id)} ({endpoint.Address}) of overlay network {network.Record.Name}";
                }
            }
        }
        finally
        {
            _gate.Release();
        }

        try
        {
            var present = new Dictionary<string, StoreEntry>(StringComparer.Ordinal);
            foreach (var entry in await global.ListAsync(Prefix + "node/", cancellationToken).ConfigureAwait(false))
            {
                if (entry.Key.EndsWith("/" + _context.NodeName, StringComparison.Ordinal) && entry.Key.Count(c => c == '/') - Prefix.Count(c => c == '/') == 2)
                {
                    present[entry.Key] = entry;
                }
            }

            foreach (var entry in await global.ListAsync(PeerPrefix, cancellationToken).ConfigureAwait(false))
            {
                if (OverlayJson.TryRead(entry.Value, OverlayJsonContext.Default.OverlayPeerRecord) is { } peer && peer.Node == _context.NodeName)
                {
                    present[entry.Key] = entry;
                }
            }

            foreach (var (key, entry) in present.Where(p => !wanted.ContainsKey(p.Key)).OrderBy(p => p.Key, StringComparer.Ordinal))
            {
                var repaired = false;
                string? action = null;
                if (repair)
                {
                    try
                    {
                        (repaired, action) = await global.DeleteAsync(key, entry.Version, cancellationToken).ConfigureAwait(false)
                            ? (true, "deleted (at the version read)")
                            : (false, "gone meanwhile");
                    }
                    catch (CnmConflictException ex) when (ex.Code == CnmErrorCodes.VersionConflict)
                    {
                        action = "changed meanwhile: left alone";
                    }
                }

                findings.Add(new InvariantFinding
                {
                    Kind = InvariantKinds.OrphanDriverRecord,
                    Subject = $"global store key {key}",
                    Detail = $"names this node ({_context.NodeName}), and the overlay driver has no {(key.StartsWith(PeerPrefix, StringComparison.Ordinal) ? "joined endpoint" : "network")} it belongs to",
                    Repaired = repaired,
                    Repair = action,
                });
            }

            foreach (var (key, put) in wanted.Where(w => !present.TryGetValue(w.Key, out var entry) || !entry.Value.Span.SequenceEqual(w.Value.Value.Span)).OrderBy(w => w.Key, StringComparer.Ordinal))
            {
                var repaired = false;
                string? action = null;
                if (repair)
                {
                    await PutOnLeaseAsync(lease => StoreOperation.Put(put.Key, put.Value, StoreVersion.Any, lease), cancellationToken).ConfigureAwait(false);
                    (repaired, action) = (true, "written again on this host's lease");
                }

                findings.Add(new InvariantFinding
                {
                    Kind = InvariantKinds.MissingDriverRecord,
                    Subject = $"global store key {key}",
                    Detail = $"{what[key]} is {(present.ContainsKey(key) ? "out of date" : "missing")}: the other hosts cannot reach it",
                    Repaired = repaired,
                    Repair = action,
                });
            }
        }
        catch (CnmUnavailableException ex)
        {
            OverlayLog.GlobalStoreUnavailable(_logger, "the check of this host's global keys is skipped: " + ex.Message);
        }
    }

    /// <summary>
    /// A live network's namespace file and, in its namespace, each subnet's bridge and VXLAN device. A namespace file
    /// gone behind the driver's back is reported only (the driver still holds the namespace open, so its devices work
    /// until the next start, which makes a new one). Missing devices are made again from the record as the start's
    /// restore does, the joined endpoints' host veths are enslaved again, and the known peers programmed again.
    /// </summary>
    private async ValueTask CheckDevicesAsync(OverlayNetwork network, bool repair, List<InvariantFinding> findings, CancellationToken cancellationToken)
    {
        var record = network.Record;
        if (!_namespaces.Exists(record.Namespace))
        {
            findings.Add(new InvariantFinding
            {
                Kind = InvariantKinds.MissingNamespace,
                Subject = $"namespace {OverlayDriverFactory.NetworkNamespacePath(_context.RunDirectory, record.Id)}",
                Detail = $"the namespace of overlay network {record.Name} is no longer mounted; the driver still holds it open, so its devices work until the driver stops",
                Repair = repair ? "not repaired: the next start makes the namespace and its devices again (joined endpoints must join again)" : null,
            });
            return;
        }

        var missing = new List<(string Link, string What)>();
        foreach (var subnet in record.Subnets)
        {
            foreach (var (name, kind, what) in new[] { (subnet.Bridge, "bridge", "bridge"), (subnet.Vxlan, "vxlan", "VXLAN device") })
            {
                if (await network.Client.GetLinkAsync(name, cancellationToken).ConfigureAwait(false) is not { } link || !string.Equals(link.Kind, kind, StringComparison.Ordinal))
                {
                    missing.Add((name, $"the {what} of subnet {subnet.Subnet} (VNI {subnet.Vni}) of overlay network {record.Name}"));
                }
            }
        }

        if (missing.Count == 0)
        {
            return;
        }

        var repaired = false;
        string? action = null;
        if (repair)
        {
            try
            {
                var fresh = await OpenKernelAsync(record, cancellationToken).ConfigureAwait(false);
                foreach (var (id, endpoint) in network.Endpoints)
                {
                    fresh.Endpoints[id] = endpoint;
                }

                _networks[record.Id] = fresh;
                network.Dispose();
                var enslaved = await AttachHostVethsAsync(fresh, cancellationToken).ConfigureAwait(false);
                await ReconcileLockedAsync(fresh, cancellationToken).ConfigureAwait(false);
                (repaired, action) = (true, string.Create(CultureInfo.InvariantCulture, $"made again from the network's record, as a start does; {enslaved} joined endpoint veth(s) enslaved again, {fresh.Programmed.Count} remote peer(s) programmed again"));
            }
            catch (Exception ex) when (ex is NetlinkException or NamespaceException or CnmException)
            {
                action = ex.Message;
            }
        }

        foreach (var (link, what) in missing)
        {
            findings.Add(new InvariantFinding
            {
                Kind = InvariantKinds.MissingLink,
                Subject = $"link {link} in {record.Namespace}",
                Detail = what + " is missing",
                Repaired = repaired,
                Repair = action,
            });
        }
    }

    private static string Short(string id) => id.Length > 12 ? id[..12] : id;
}
