using CnmSharp.Diagnostics;
using System.Net;
using System.Net.Sockets;
using CnmSharp.Firewall;

namespace CnmSharp.Drivers.Bridge;

internal sealed partial class BridgeDriver
{
    /// <summary>Allocates the endpoint's host ports (port 0 = ephemeral, ranges, the network's default host address),
    /// programs the forwards, and persists the chosen ports so a restarted controller takes the same ones.</summary>
    public async ValueTask ProgramExternalConnectivityAsync(string networkId, string endpointId, CancellationToken cancellationToken = default)
    {
        var network = GetNetwork(networkId);
        var endpoint = GetEndpoint(network, endpointId);
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (endpoint.Published is { } programmed)
            {
                // Already allocated (a repeat, or restored at start): make sure the rules are there.
                if (_firewall is not null && programmed.Count > 0)
                {
                    await _firewall.SetupPortForwardsAsync(ToForward(network, endpoint, programmed), cancellationToken).ConfigureAwait(false);
                }

                return;
            }

            var requested = endpoint.Record.PortBindings.Select(ToBinding)
                .Select(b => b.HostIP.Equals(IPAddress.Any) && network.HostBindingIPv4 is { } defaultHost ? b with { HostIP = defaultHost } : b)
                .ToList();
            var allocated = _ports.AllocateAll(requested).ToList();
            var before = endpoint.Record;
            var recorded = false;
            try
            {
                allocated.AddRange(_ports.AllocateAll(IPv6Copies(network, endpoint, requested, allocated)));

                // The ports are recorded before their rules exist: a crash in between leaves a record whose unpublish
                // (the recovery of the interrupted join) removes rules that may or may not be there; the other order
                // would leave rules that no record names.
                var record = endpoint.Record with { PublishedPorts = [.. allocated.Select(ToRecord)] };
                await _store.PutAsync(record, cancellationToken).ConfigureAwait(false);
                recorded = true;
                _faults.Hit(FaultPoint.BridgePortsRecorded);
                if (_firewall is not null && allocated.Count > 0)
                {
                    await _firewall.SetupPortForwardsAsync(ToForward(network, endpoint, allocated), cancellationToken).ConfigureAwait(false);
                }

                endpoint.Record = record;
                endpoint.Published = allocated;
            }
            catch
            {
                if (recorded)
                {
                    try
                    {
                        await _store.PutAsync(before, CancellationToken.None).ConfigureAwait(false);
                    }
                    catch (CnmException ex)
                    {
                        BridgeLog.CleanupFailed(_logger, ex, $"port record of endpoint {endpointId}");
                    }
                }

                if (_firewall is not null && allocated.Count > 0)
                {
                    try
                    {
                        await _firewall.TeardownPortForwardsAsync(ToForward(network, endpoint, allocated), CancellationToken.None).ConfigureAwait(false);
                    }
                    catch (CnmException ex)
                    {
                        BridgeLog.CleanupFailed(_logger, ex, $"port forwards of endpoint {endpointId}");
                    }
                }

                foreach (var binding in allocated)
                {
                    _ports.Release(binding);
                }

                throw;
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Removes the endpoint's forwards and frees its host ports.</summary>
    public async ValueTask RevokeExternalConnectivityAsync(string networkId, string endpointId, CancellationToken cancellationToken = default)
    {
        if (!_networks.TryGetValue(networkId, out var network) || !network.Endpoints.TryGetValue(endpointId, out var endpoint))
        {
            return;
        }

        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await UnpublishAsync(network, endpoint, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Re-creates every rule the driver holds (networks and published ports) after an external flush or a rule
    /// deleted behind its back; other owners' rules are left alone.</summary>
    public async ValueTask ReconcileFirewallAsync(CancellationToken cancellationToken = default)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await ReconcileFirewallCoreAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
    }

    private async ValueTask ReconcileFirewallCoreAsync(CancellationToken cancellationToken)
    {
        if (_firewall is not null)
        {
            var (networks, forwards) = FirewallRecords();
            await _firewall.ReconcileOwnerAsync(FirewallOwner, networks, forwards, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Tells the firewall backend what is set up now (another controller changed it), without applying.</summary>
    private async ValueTask AdoptFirewallRecordsAsync(CancellationToken cancellationToken)
    {
        if (_firewall is not null)
        {
            var (networks, forwards) = FirewallRecords();
            await _firewall.AdoptOwnerAsync(FirewallOwner, networks, forwards, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>The firewall records of every network and published endpoint the driver holds.</summary>
    private (List<FirewallNetwork> Networks, List<FirewallPortForward> Forwards) FirewallRecords()
    {
        var networks = _networks.Values.OrderBy(n => n.Id, StringComparer.Ordinal).ToList();
        var forwards = networks
            .SelectMany(n => n.Endpoints.Values.Where(e => e.Published is { Count: > 0 }).Select(e => ToForward(n, e, e.Published!)))
            .ToList();
        return ([.. networks.Select(n => n.ToFirewall())], forwards);
    }

    /// <summary>Undoes <see cref="ProgramExternalConnectivityAsync"/>; the caller holds the gate.</summary>
    private async ValueTask UnpublishAsync(BridgeNetwork network, BridgeEndpoint endpoint, CancellationToken cancellationToken)
    {
        if (endpoint.Published is not { } published)
        {
            return;
        }

        if (_firewall is not null && published.Count > 0)
        {
            await _firewall.TeardownPortForwardsAsync(ToForward(network, endpoint, published), cancellationToken).ConfigureAwait(false);
        }

        foreach (var binding in published)
        {
            _ports.Release(binding);
        }

        endpoint.Published = null;
        var record = endpoint.Record with { PublishedPorts = null };
        endpoint.Record = record;
        if (network.Endpoints.ContainsKey(endpoint.Id))
        {
            await _store.PutAsync(record, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// As Docker does on a network with IPv6: a binding on every IPv4 address (<c>0.0.0.0</c>) is published on every
    /// IPv6 address (<c>[::]</c>) too, with the same host port, when the endpoint has an IPv6 address to forward to and
    /// the request has no IPv6 binding of its own for that container port.
    /// </summary>
    private static List<PortBinding> IPv6Copies(BridgeNetwork network, BridgeEndpoint endpoint, IReadOnlyList<PortBinding> requested, IReadOnlyList<PortBinding> allocated)
    {
        if (!network.Record.EnableIPv6 || endpoint.AddressIPv6 is null)
        {
            return [];
        }

        return allocated
            .Where(b => b.HostIP.Equals(IPAddress.Any))
            .Where(b => !requested.Any(r => r.HostIP.AddressFamily == AddressFamily.InterNetworkV6 && r.Protocol == b.Protocol && r.ContainerPort == b.ContainerPort))
            .Select(b => b with { HostIP = IPAddress.IPv6Any })
            .ToList();
    }

    private static FirewallPortForward ToForward(BridgeNetwork network, BridgeEndpoint endpoint, IReadOnlyList<PortBinding> bindings)
    {
        var v4 = endpoint.Address.Address;
        var v6 = endpoint.AddressIPv6?.Address;
        return new FirewallPortForward
        {
            NetworkId = network.Id,
            EndpointId = endpoint.Id,
            BridgeName = network.BridgeName,
            ContainerIPv4 = v4,
            ContainerIPv6 = v6,
            PortBindings = [.. bindings.Select(b => b with { ContainerIP = b.HostIP.AddressFamily == AddressFamily.InterNetworkV6 ? v6 : v4 })],
        };
    }
}
