using System.Globalization;
using CnmSharp.Diagnostics;
using CnmSharp.Drivers.Common;
using CnmSharp.Netlink;

namespace CnmSharp.Drivers.Bridge;

internal sealed partial class BridgeDriver : IDriverDiagnostics
{
    /// <summary>
    /// The driver's records against the core's objects, and the host namespace against the records. A link is proven
    /// to be the driver's by its records: a bridge a network record names (one the driver created, not an adopted one,
    /// for the ports), and a veth enslaved to such a bridge. A port of such a bridge that no endpoint record names is a
    /// leak (a join or create that died between the kernel and the store); an adopted bridge's ports may be anyone's and
    /// are never judged. Repairs: an orphan network record is deleted as the network's delete does (its endpoints'
    /// records and host veths, its rules, its own bridge; an adopted bridge keeps everything but the addresses the
    /// network added); an orphan endpoint record goes with its host veth; a missing bridge is created again from the
    /// network's record, as the start's restore does (addresses, MTU, the endpoints' host veths enslaved again, the
    /// rules reconciled). A core object the driver has no record of is reported only.
    /// </summary>
    public async ValueTask<IReadOnlyList<InvariantFinding>> CheckAsync(DriverCheckRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        var findings = new List<InvariantFinding>();
        var networks = await _store.ListNetworksAsync(cancellationToken).ConfigureAwait(false);
        var endpoints = await _store.ListEndpointsAsync(null, cancellationToken).ConfigureAwait(false);
        var live = networks.Where(n => request.NetworkIds.Contains(n.Id)).ToList();
        foreach (var network in networks.Where(n => !request.NetworkIds.Contains(n.Id)))
        {
            var (repaired, action) = request.Repair ? await DeleteOrphanNetworkAsync(network, endpoints, live, cancellationToken).ConfigureAwait(false) : (false, null);
            findings.Add(new InvariantFinding
            {
                Kind = InvariantKinds.OrphanDriverRecord,
                Subject = $"bridge network record {Short(network.Id)} ({network.Name})",
                Detail = $"the core's store has no network {Short(network.Id)}; its bridge is {network.BridgeName}{(network.AdoptedBridge ? " (adopted)" : string.Empty)}",
                Repaired = repaired,
                Repair = action,
            });
        }

        if (findings.Any(f => f.Repaired))
        {
            // The network deletes took their endpoints' records with them.
            networks = await _store.ListNetworksAsync(cancellationToken).ConfigureAwait(false);
            endpoints = await _store.ListEndpointsAsync(null, cancellationToken).ConfigureAwait(false);
        }

        foreach (var record in endpoints.Where(e => !request.EndpointIds.Contains(e.Id)))
        {
            var repaired = false;
            string? action = null;
            if (request.Repair)
            {
                var bridge = networks.FirstOrDefault(n => n.Id == record.NetworkId)?.BridgeName;
                await EnsureHostVethGoneAsync(record, bridge, null, cancellationToken).ConfigureAwait(false);
                await _store.DeleteEndpointAsync(record.NetworkId, record.Id, cancellationToken).ConfigureAwait(false);
                if (_networks.TryGetValue(record.NetworkId, out var loaded))
                {
                    loaded.Endpoints.TryRemove(record.Id, out _);
                }

                (repaired, action) = (true, $"record deleted, host veth {record.HostVeth} removed if it was ours");
            }

            findings.Add(new InvariantFinding
            {
                Kind = InvariantKinds.OrphanDriverRecord,
                Subject = $"bridge endpoint record {Short(record.Id)} on network {Short(record.NetworkId)}",
                Detail = "the core's store has no such endpoint",
                Repaired = repaired,
                Repair = action,
            });
        }

        Common.MissingDriverRecords.Report(request, networks.Select(n => n.Id), endpoints.Select(e => e.Id),
            "a bridge network of the core's store of which the bridge driver has no record (its bridge, addresses and rules are unknown to it)",
            "an endpoint of a bridge network in the core's store of which the bridge driver has no record (its veth names and MAC are unknown to it)",
            findings);

        var links = await _kernel.Netlink.GetLinksAsync(cancellationToken).ConfigureAwait(false);
        foreach (var network in networks.Where(n => request.NetworkIds.Contains(n.Id)))
        {
            var bridge = links.FirstOrDefault(l => string.Equals(l.Name, network.BridgeName, StringComparison.Ordinal));
            if (bridge is null || !string.Equals(bridge.Kind, "bridge", StringComparison.Ordinal))
            {
                var repaired = false;
                string? action = null;
                if (request.Repair && bridge is null)
                {
                    (repaired, action) = await RecreateBridgeAsync(network, endpoints, cancellationToken).ConfigureAwait(false);
                }
                else if (request.Repair)
                {
                    action = "the link of that name is not a bridge, so not the driver's: remove or rename it by hand, then check again";
                }

                findings.Add(new InvariantFinding
                {
                    Kind = InvariantKinds.MissingLink,
                    Subject = $"bridge {network.BridgeName} of network {network.Name}",
                    Detail = bridge is null ? "not in the host namespace" : $"the link of that name is a {bridge.Kind ?? "device of unknown kind"}",
                    Repaired = repaired,
                    Repair = action,
                });
                continue;
            }

            if (network.AdoptedBridge)
            {
                continue;
            }

            var ports = endpoints.Where(e => e.NetworkId == network.Id).Select(e => e.HostVeth).ToHashSet(StringComparer.Ordinal);
            foreach (var link in links.Where(l => IsVethOfBridge(l, bridge.Index) && !ports.Contains(l.Name)))
            {
                var repaired = false;
                string? action = null;
                if (request.Repair)
                {
                    try
                    {
                        await _kernel.Netlink.DeleteLinkAsync(link.Index, cancellationToken).ConfigureAwait(false);
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
                    Subject = $"link {link.Name}",
                    Detail = $"a veth enslaved to bridge {network.BridgeName} of network {network.Name} (created by this driver) that no endpoint record names",
                    Repaired = repaired,
                    Repair = action,
                });
            }
        }

        return findings;
    }

    /// <summary>Deletes a network record the core does not have, as the network's delete does, unless a live network
    /// of the driver names the same bridge (then the bridge may be that network's and nothing is touched).</summary>
    private ValueTask<(bool Repaired, string Action)> DeleteOrphanNetworkAsync(BridgeNetworkRecord network, List<BridgeEndpointRecord> endpoints, List<BridgeNetworkRecord> live, CancellationToken cancellationToken) =>
        OrphanNetworkRepair.DeleteAsync(
            live.FirstOrDefault(l => string.Equals(l.BridgeName, network.BridgeName, StringComparison.Ordinal)) is { } sharer
                ? $"network {sharer.Name} ({Short(sharer.Id)}) of the core names the same bridge: delete the record by hand"
                : null,
            () => DeleteNetworkAsync(network.Id, cancellationToken),
            async () => await _store.GetNetworkAsync(network.Id, cancellationToken).ConfigureAwait(false) is null,
            () => string.Create(
                CultureInfo.InvariantCulture,
                $"{endpoints.Count(e => e.NetworkId == network.Id)} endpoint record(s) and their host veths, its firewall rules, {(network.AdoptedBridge ? $"the adopted bridge {network.BridgeName} kept, the addresses the network added removed" : $"its bridge {network.BridgeName} deleted")}"));

    /// <summary>Creates a recorded network's bridge again, as the start's restore does: the bridge with the record's
    /// addresses and MTU, up; the sysctls; the host veths the endpoint records name that lost their master when the
    /// bridge went (a veth of that name with no master) enslaved again with hairpin; then the rules reconciled.</summary>
    private async ValueTask<(bool Repaired, string Action)> RecreateBridgeAsync(BridgeNetworkRecord record, List<BridgeEndpointRecord> endpoints, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var network = _networks.TryGetValue(record.Id, out var held) && held.Record == record ? held : new BridgeNetwork(record);
            await EnsureBridgeAsync(network, null, cancellationToken).ConfigureAwait(false);
            await WriteSysctlsAsync(record, cancellationToken).ConfigureAwait(false);
            var enslaved = 0;
            foreach (var endpoint in endpoints.Where(e => e.NetworkId == record.Id))
            {
                var link = await _kernel.Netlink.GetLinkAsync(endpoint.HostVeth, cancellationToken).ConfigureAwait(false);
                if (link is null || link.MasterIndex != 0 || !string.Equals(link.Kind, "veth", StringComparison.Ordinal))
                {
                    continue;
                }

                await _kernel.Netlink.SetLinkMasterAsync(link.Index, network.BridgeIndex, cancellationToken).ConfigureAwait(false);
                await _kernel.Netlink.SetBridgePortHairpinAsync(link.Index, true, cancellationToken).ConfigureAwait(false);
                enslaved++;
            }

            await ReconcileFirewallCoreAsync(cancellationToken).ConfigureAwait(false);
            var addresses = string.Join(", ", network.BridgeAddresses().Select(a => a.ToString()));
            return (true, string.Create(CultureInfo.InvariantCulture,
                $"created again from the driver's record (addresses {(addresses.Length == 0 ? "none" : addresses)}, MTU {(record.Mtu == 0 ? "default" : record.Mtu.ToString(CultureInfo.InvariantCulture))}), {enslaved} endpoint veth(s) enslaved again, firewall rules reconciled"));
        }
        catch (Exception ex) when (ex is CnmException or NetlinkException)
        {
            return (false, ex.Message);
        }
        finally
        {
            _gate.Release();
        }
    }

    private static string Short(string id) => id.Length > 12 ? id[..12] : id;
}
