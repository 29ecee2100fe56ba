using CnmSharp.Diagnostics;

namespace CnmSharp.Drivers.Common;

internal abstract partial class ParentLinkDriver : IDriverDiagnostics
{
    /// <summary>
    /// The driver's records against the core's objects, and the parents the driver made against the host namespace.
    /// The endpoints' devices live in the sandboxes' namespaces (the core checks those); in the host namespace only a
    /// parent the driver created (recorded with its kind and index before and after it was made) is proven its own.
    /// </summary>
    public async ValueTask<IReadOnlyList<InvariantFinding>> CheckAsync(DriverCheckRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        var findings = new List<InvariantFinding>();
        var networks = await _store.ListNetworksAsync(cancellationToken).ConfigureAwait(false);
        var endpoints = await _store.ListEndpointsAsync(null, cancellationToken).ConfigureAwait(false);
        var live = networks.Where(n => request.NetworkIds.Contains(n.Id)).ToList();
        var deleted = false;
        foreach (var network in networks.Where(n => !request.NetworkIds.Contains(n.Id)))
        {
            var repaired = false;
            string? action = null;
            if (request.Repair)
            {
                (repaired, action) = await DeleteOrphanNetworkAsync(network, endpoints, live, cancellationToken).ConfigureAwait(false);
                deleted |= repaired;
            }

            findings.Add(new InvariantFinding
            {
                Kind = InvariantKinds.OrphanDriverRecord,
                Subject = $"{DriverName} network record {Short(network.Id)} ({network.Name})",
                Detail = $"the core's store has no network {Short(network.Id)}; its parent is {network.Parent}{(network.CreatedParent is null ? string.Empty : " (made by the driver)")}",
                Repaired = repaired,
                Repair = action,
            });
        }

        if (deleted)
        {
            // The network deletes took their endpoints' records with them.
            networks = await _store.ListNetworksAsync(cancellationToken).ConfigureAwait(false);
            endpoints = await _store.ListEndpointsAsync(null, cancellationToken).ConfigureAwait(false);
        }

        foreach (var record in endpoints.Where(e => !request.EndpointIds.Contains(e.Id)))
        {
            if (request.Repair)
            {
                await _store.DeleteEndpointAsync(record.NetworkId, record.Id, cancellationToken).ConfigureAwait(false);
                if (_networks.TryGetValue(record.NetworkId, out var loaded))
                {
                    loaded.Endpoints.TryRemove(record.Id, out _);
                }
            }

            findings.Add(new InvariantFinding
            {
                Kind = InvariantKinds.OrphanDriverRecord,
                Subject = $"{DriverName} endpoint record {Short(record.Id)} on network {Short(record.NetworkId)}",
                Detail = "the core's store has no such endpoint",
                Repaired = request.Repair,
                Repair = request.Repair ? "record deleted (its device lived in a sandbox namespace)" : null,
            });
        }

        MissingDriverRecords.Report(request, networks.Select(n => n.Id), endpoints.Select(e => e.Id),
            $"a {DriverName} network of the core's store of which the driver has no record (its parent and mode are unknown to it)",
            $"an endpoint of a {DriverName} network in the core's store of which the driver has no record",
            findings);
        var links = await _kernel.Netlink.GetLinksAsync(cancellationToken).ConfigureAwait(false);
        foreach (var network in networks.Where(n => request.NetworkIds.Contains(n.Id) && n.CreatedParent is { Index: > 0 }))
        {
            var link = links.FirstOrDefault(l => string.Equals(l.Name, network.Parent, StringComparison.Ordinal));
            if (link is null || link.Index != network.CreatedParent!.Index)
            {
                findings.Add(new InvariantFinding
                {
                    Kind = InvariantKinds.MissingLink,
                    Subject = $"parent {network.Parent} of {DriverName} network {network.Name}",
                    Detail = link is null ? "the driver made it, and it is not in the host namespace" : $"a link of that name exists with index {link.Index}, not the {network.CreatedParent!.Index} the driver made",
                });
            }
        }

        return findings;
    }

    /// <summary>Deletes a network record the core does not have, as the network's delete does (its endpoints' records,
    /// and the parent only when the record proves the driver made it), unless a live network of the driver names the
    /// same parent.</summary>
    private ValueTask<(bool Repaired, string Action)> DeleteOrphanNetworkAsync(ParentLinkNetworkRecord network, IReadOnlyCollection<ParentLinkEndpointRecord> endpoints, List<ParentLinkNetworkRecord> live, CancellationToken cancellationToken) =>
        OrphanNetworkRepair.DeleteAsync(
            network.CreatedParent is not null && live.FirstOrDefault(l => string.Equals(l.Parent, network.Parent, StringComparison.Ordinal)) is { } sharer
                ? $"network {sharer.Name} ({Short(sharer.Id)}) of the core uses the same parent: delete the record by hand"
                : null,
            () => DeleteNetworkAsync(network.Id, cancellationToken),
            async () => await _store.GetNetworkAsync(network.Id, cancellationToken).ConfigureAwait(false) is null,
            () => $"{endpoints.Count(e => e.NetworkId == network.Id)} endpoint record(s){(network.CreatedParent is null ? string.Empty : $", the parent {network.Parent} the driver made (when still the one it made)")}");

    private static string Short(string id) => id.Length > 12 ? id[..12] : id;
}
