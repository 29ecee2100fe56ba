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
        foreach (var network in networks.Where(n => !request.NetworkIds.Contains(n.Id)))
        {
            findings.Add(new InvariantFinding
            {
                Kind = InvariantKinds.OrphanDriverRecord,
                Subject = $"{DriverName} network record {Short(network.Id)} ({network.Name})",
                Detail = $"the core's store has no network {Short(network.Id)}; its parent is {network.Parent}",
                Repair = request.Repair ? "a network record is declared state: delete the network by hand" : null,
            });
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

    private static string Short(string id) => id.Length > 12 ? id[..12] : id;
}
