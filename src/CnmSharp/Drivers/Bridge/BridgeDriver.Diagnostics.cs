using CnmSharp.Diagnostics;

namespace CnmSharp.Drivers.Bridge;

internal sealed partial class BridgeDriver : IDriverDiagnostics
{
    /// <summary>
    /// The driver's records against the core's objects, and the host namespace against the records. A link is proven
    /// to be the driver's by its records: a bridge a network record names (one the driver created, not an adopted one,
    /// for the ports), and a veth enslaved to such a bridge. A port of such a bridge that no endpoint record names is a
    /// leak (a join or create that died between the kernel and the store); an adopted bridge's ports may be anyone's and
    /// are never judged.
    /// </summary>
    public async ValueTask<IReadOnlyList<InvariantFinding>> CheckAsync(DriverCheckRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        var findings = new List<InvariantFinding>();
        var networks = await _store.ListNetworksAsync(cancellationToken).ConfigureAwait(false);
        var endpoints = await _store.ListEndpointsAsync(null, cancellationToken).ConfigureAwait(false);
        var links = await _kernel.Netlink.GetLinksAsync(cancellationToken).ConfigureAwait(false);
        foreach (var network in networks.Where(n => !request.NetworkIds.Contains(n.Id)))
        {
            findings.Add(new InvariantFinding
            {
                Kind = InvariantKinds.OrphanDriverRecord,
                Subject = $"bridge network record {Short(network.Id)} ({network.Name})",
                Detail = $"the core's store has no network {Short(network.Id)}; its bridge is {network.BridgeName}",
                Repair = request.Repair ? "a network record is declared state: delete the network by hand" : null,
            });
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

        foreach (var network in networks.Where(n => request.NetworkIds.Contains(n.Id)))
        {
            var bridge = links.FirstOrDefault(l => string.Equals(l.Name, network.BridgeName, StringComparison.Ordinal));
            if (bridge is null || !string.Equals(bridge.Kind, "bridge", StringComparison.Ordinal))
            {
                findings.Add(new InvariantFinding
                {
                    Kind = InvariantKinds.MissingLink,
                    Subject = $"bridge {network.BridgeName} of network {network.Name}",
                    Detail = bridge is null ? "not in the host namespace" : $"the link of that name is a {bridge.Kind ?? "device of unknown kind"}",
                    Repair = request.Repair ? "restart the controller in a new host namespace instance, or recreate the network" : null,
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
                    catch (Netlink.NetlinkException ex)
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

    private static string Short(string id) => id.Length > 12 ? id[..12] : id;
}
