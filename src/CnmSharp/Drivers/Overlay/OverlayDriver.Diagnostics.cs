using System.Globalization;
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

        return findings;
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
