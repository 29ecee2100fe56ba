using CnmSharp.Diagnostics;
using CnmSharp.Netlink;

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

        return findings;
    }

    private static string Short(string id) => id.Length > 12 ? id[..12] : id;
}
