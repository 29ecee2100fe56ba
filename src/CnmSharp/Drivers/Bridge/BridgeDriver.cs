using CnmSharp.Drivers.Common;
using System.Collections.Concurrent;
using System.Net;
using System.Net.NetworkInformation;
using CnmSharp.Diagnostics;
using CnmSharp.Firewall;
using CnmSharp.Netlink;
using Microsoft.Extensions.Logging;

namespace CnmSharp.Drivers.Bridge;

/// <summary>
/// The bridge driver of one controller. State: the networks and endpoints it made (in memory, persisted under the
/// driver's store prefix), the host ports it allocated. Split by concern: networks (<c>.Networks.cs</c>), endpoints and
/// joins (<c>.Endpoints.cs</c>), published ports and firewall reconciliation (<c>.Ports.cs</c>).
/// </summary>
internal sealed partial class BridgeDriver : INetworkDriver, IExternalConnectivityDriver, IFirewallReconcilableDriver, CnmSharp.Store.IStateReloadable, IAsyncDisposable
{
    private readonly BridgeDriverOptions _options;
    private readonly IBridgeKernel _kernel;
    private readonly IFirewallBackend? _firewall;
    private readonly HostPortAllocator _ports;
    private readonly BridgeStore _store;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly SemaphoreSlim _gate = new(1, 1);

    /// <summary>The controller's fault injector (tests only), or null.</summary>
    private readonly FaultPoints? _faults;
    private readonly ConcurrentDictionary<string, BridgeNetwork> _networks = new(StringComparer.Ordinal);
    private int _disposed;

    internal BridgeDriver(DriverContext context, BridgeDriverOptions options, IBridgeKernel kernel, HostPortAllocator ports)
    {
        ArgumentNullException.ThrowIfNull(context);
        _options = options;
        _kernel = kernel;
        _firewall = options.EnableFirewall ? context.Firewall : null;
        _ports = ports;
        _store = new BridgeStore(context.Store, context.StoreKeyPrefix);
        _logger = context.LoggerFactory.CreateLogger<BridgeDriver>();
        _time = context.TimeProvider;
        _faults = FaultPoints.From(context.Services);
    }

    /// <summary>The bridge driver's part of the firewall rule set (<see cref="FirewallNetwork.Owner"/>).</summary>
    internal const string FirewallOwner = "bridge";

    /// <inheritdoc />
    public DriverCapability Capability => DriverCapability.LocalScope;

    internal IReadOnlyCollection<BridgeNetwork> NetworksForTest => [.. _networks.Values];

    /// <summary>Creates the driver of one controller and restores what it persisted (adopting bridges and rules).</summary>
    public static async ValueTask<BridgeDriver> CreateAsync(DriverContext context, BridgeDriverOptions options, CancellationToken cancellationToken)
    {
        HostNamespaceGuard.Check(context.HostNamespacePath, "bridge driver");
        var ports = await HostPortAllocator.CreateForNamespaceAsync(context.HostNamespacePath, cancellationToken).ConfigureAwait(false);
        var kernel = new LinuxBridgeKernel(context.HostNamespacePath);
        var driver = new BridgeDriver(context, options, kernel, ports);
        return await DriverStart.RestoreAsync(driver, static (d, ct) => d.RestoreAsync(ct), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Loads the records and re-takes the published host ports; then, once per instance of the host namespace (after a
    /// reboot, or in a namespace made anew), re-creates missing kernel objects of each network and puts the firewall
    /// rules back in one reconcile. A later start in the same instance, with the same firewall backend, finds the
    /// restore marker (<see cref="BridgeStore.RestoredKey"/>) naming both and only adopts the records in the firewall backend: the
    /// bridges and rules are there, since every change since went through a controller (an interrupted one is
    /// recovered from its intent). A `cnm` command is one start, so this is what keeps each command from running
    /// <c>iptables-save</c> (see docs/cli-performance.md); <see cref="ReconcileFirewallAsync"/> repairs an external
    /// flush on demand, as it always did.
    /// </summary>
    internal async ValueTask RestoreAsync(CancellationToken cancellationToken)
    {
        foreach (var record in await _store.ListNetworksAsync(cancellationToken).ConfigureAwait(false))
        {
            _networks[record.Id] = new BridgeNetwork(record);
        }

        var endpointCount = 0;
        foreach (var record in await _store.ListEndpointsAsync(null, cancellationToken).ConfigureAwait(false))
        {
            if (!_networks.TryGetValue(record.NetworkId, out var network))
            {
                // Its network is gone: a crash between the two deletes. Finish the job (the veth only if it is ours: with
                // its bridge gone, a veth of that name with no master).
                await EnsureHostVethGoneAsync(record, null, null, cancellationToken).ConfigureAwait(false);
                await _store.DeleteEndpointAsync(record.NetworkId, record.Id, cancellationToken).ConfigureAwait(false);
                continue;
            }

            var endpoint = new BridgeEndpoint(record);
            if (record.PublishedPorts is { Count: > 0 } published)
            {
                var bindings = published.Select(ToBinding).ToList();
                foreach (var binding in bindings)
                {
                    _ports.Allocate(binding);
                }

                endpoint.Published = bindings;
            }

            network.Endpoints[record.Id] = endpoint;
            endpointCount++;
        }

        if (_networks.IsEmpty)
        {
            return;
        }

        // The marker also names the firewall backend: a start that chose another backend (iptables to nftables or
        // back) must reconcile, since that is where the old backend's rules are removed and the new one's installed.
        var instance = await _kernel.HostInstanceAsync(cancellationToken).ConfigureAwait(false) is { } hostInstance
            ? $"{hostInstance} firewall={_firewall?.Name ?? "none"}"
            : null;
        if (instance is not null && string.Equals(await _store.GetRestoredInAsync(cancellationToken).ConfigureAwait(false), instance, StringComparison.Ordinal))
        {
            await AdoptFirewallRecordsAsync(cancellationToken).ConfigureAwait(false);
            BridgeLog.Adopted(_logger, _networks.Count, endpointCount, instance);
            return;
        }

        var complete = true;
        foreach (var network in _networks.Values)
        {
            try
            {
                await EnsureBridgeAsync(network, null, cancellationToken).ConfigureAwait(false);
                await WriteSysctlsAsync(network.Record, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                BridgeLog.RestoreFailed(_logger, ex, network.Id, network.BridgeName);
                complete = false;
            }
        }

        if (_firewall is not null)
        {
            await ReconcileFirewallCoreAsync(cancellationToken).ConfigureAwait(false);
        }

        if (complete && instance is not null)
        {
            // Only a restore that did everything marks the instance: one that failed somewhere runs again next start.
            await _store.PutRestoredInAsync(instance, cancellationToken).ConfigureAwait(false);
        }

        BridgeLog.Restored(_logger, _networks.Count, endpointCount);
    }

    /// <summary>
    /// Re-reads the driver's networks, endpoints (with their interface names) and published host ports from its store
    /// records, replacing the in-memory view, without touching the kernel or the firewall: for when another process
    /// changed the store. Objects still recorded keep their identity and what only memory knows (a network's bridge
    /// index, an endpoint's sandbox key); networks and endpoints whose records are gone are dropped, new ones appear,
    /// and the host port allocator holds exactly the recorded ports.
    /// </summary>
    internal async ValueTask ReloadAsync(CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var networkRecords = await _store.ListNetworksAsync(cancellationToken).ConfigureAwait(false);
            var endpointRecords = await _store.ListEndpointsAsync(null, cancellationToken).ConfigureAwait(false);

            // From here on nothing awaits: the swap is seen whole by everything else in this process.
            foreach (var network in _networks.Values)
            {
                foreach (var endpoint in network.Endpoints.Values)
                {
                    foreach (var binding in endpoint.Published ?? [])
                    {
                        _ports.Release(binding);
                    }
                }
            }

            var networks = new Dictionary<string, BridgeNetwork>(StringComparer.Ordinal);
            foreach (var record in networkRecords)
            {
                networks[record.Id] = _networks.TryGetValue(record.Id, out var kept) && kept.Record == record ? kept : new BridgeNetwork(record);
            }

            var endpointCount = 0;
            foreach (var group in endpointRecords.GroupBy(r => r.NetworkId, StringComparer.Ordinal))
            {
                if (!networks.TryGetValue(group.Key, out var network))
                {
                    continue; // its network's record is gone: a start's restore finishes that delete
                }

                var ids = new HashSet<string>(StringComparer.Ordinal);
                foreach (var record in group)
                {
                    ids.Add(record.Id);
                    var endpoint = network.Endpoints.TryGetValue(record.Id, out var kept) ? kept : new BridgeEndpoint(record);
                    endpoint.Record = record;
                    endpoint.Published = record.PublishedPorts is { } published ? TakePorts(record.Id, published) : null;
                    network.Endpoints[record.Id] = endpoint;
                    endpointCount++;
                }

                foreach (var gone in network.Endpoints.Keys.Where(id => !ids.Contains(id)).ToList())
                {
                    network.Endpoints.TryRemove(gone, out _);
                }
            }

            foreach (var network in networks.Values.Where(n => !endpointRecords.Any(r => string.Equals(r.NetworkId, n.Id, StringComparison.Ordinal))))
            {
                network.Endpoints.Clear();
            }

            foreach (var gone in _networks.Keys.Where(id => !networks.ContainsKey(id)).ToList())
            {
                _networks.TryRemove(gone, out _);
            }

            foreach (var (id, network) in networks)
            {
                _networks[id] = network;
            }

            // The firewall backend plans each change from what it believes is set up: that changed too.
            await AdoptFirewallRecordsAsync(cancellationToken).ConfigureAwait(false);
            BridgeLog.Reloaded(_logger, _networks.Count, endpointCount);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Takes recorded host ports again in the allocator; one that cannot be taken is logged and left out.</summary>
    private List<PortBinding> TakePorts(string endpointId, List<BridgePortRecord> published)
    {
        var taken = new List<PortBinding>(published.Count);
        foreach (var binding in published.Select(ToBinding))
        {
            try
            {
                taken.Add(_ports.Allocate(binding));
            }
            catch (CnmException ex)
            {
                BridgeLog.ReloadPortConflict(_logger, ex, binding.ToString(), endpointId);
            }
        }

        return taken;
    }

    /// <inheritdoc />
    ValueTask CnmSharp.Store.IStateReloadable.ReloadAsync(CancellationToken cancellationToken) => ReloadAsync(cancellationToken);

    /// <inheritdoc />
    public ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            _kernel.Dispose();
            _gate.Dispose();
        }

        return ValueTask.CompletedTask;
    }

    private BridgeNetwork GetNetwork(string networkId) =>
        _networks.TryGetValue(networkId, out var network)
            ? network
            : throw new CnmNotFoundException(CnmErrorCodes.NoSuchNetwork, $"network {networkId}", "the bridge driver has no such network");

    private static BridgeEndpoint GetEndpoint(BridgeNetwork network, string endpointId) =>
        network.Endpoints.TryGetValue(endpointId, out var endpoint)
            ? endpoint
            : throw new CnmNotFoundException(CnmErrorCodes.NoSuchEndpoint, $"endpoint {endpointId}", "the bridge driver has no such endpoint");

    private static CnmInternalException KernelError(string subject, Exception ex) => new(CnmErrorCodes.KernelError, subject, ex.Message, ex);

    private static PortBinding ToBinding(BridgePortRecord r) =>
        new((TransportProtocol)r.Protocol, (ushort)r.ContainerPort, IPAddress.Parse(r.HostIP), (ushort)r.HostPort, (ushort)r.HostPortEnd);

    private static BridgePortRecord ToRecord(PortBinding b) =>
        new() { Protocol = (int)b.Protocol, ContainerPort = b.ContainerPort, HostIP = b.HostIP.ToString(), HostPort = b.HostPort, HostPortEnd = b.HostPortEnd };
}

/// <summary>A network the driver holds: its record (the parsed view is cached) and its endpoints.</summary>
internal sealed class BridgeNetwork
{
    public BridgeNetwork(BridgeNetworkRecord record)
    {
        Record = record;
        IPv4Subnet = IPNetwork.Parse(record.IPv4Subnet);
        IPv4Gateway = record.IPv4Gateway is { } g ? CidrAddress.Parse(g) : null;
        IPv6Subnet = record.IPv6Subnet is { } s6 ? IPNetwork.Parse(s6) : null;
        IPv6Gateway = record.IPv6Gateway is { } g6 ? CidrAddress.Parse(g6) : null;
        DefaultGatewayIPv4 = record.DefaultGatewayIPv4 is { } d4 ? IPAddress.Parse(d4) : null;
        DefaultGatewayIPv6 = record.DefaultGatewayIPv6 is { } d6 ? IPAddress.Parse(d6) : null;
        HostBindingIPv4 = record.HostBindingIPv4 is { } hb ? IPAddress.Parse(hb) : null;
    }

    public BridgeNetworkRecord Record { get; }
    public string Id => Record.Id;
    public string BridgeName => Record.BridgeName;
    public IPNetwork IPv4Subnet { get; }
    public CidrAddress? IPv4Gateway { get; }
    public IPNetwork? IPv6Subnet { get; }
    public CidrAddress? IPv6Gateway { get; }
    public IPAddress? DefaultGatewayIPv4 { get; }
    public IPAddress? DefaultGatewayIPv6 { get; }
    public IPAddress? HostBindingIPv4 { get; }

    /// <summary>The bridge's interface index, once known (0 before).</summary>
    public int BridgeIndex { get; set; }

    public ConcurrentDictionary<string, BridgeEndpoint> Endpoints { get; } = new(StringComparer.Ordinal);

    /// <summary>The addresses the bridge carries (gateways), with their prefix lengths.</summary>
    public IEnumerable<CidrAddress> BridgeAddresses()
    {
        if (!Record.InhibitIPv4 && IPv4Gateway is { } g4)
        {
            yield return g4;
        }

        if (Record.EnableIPv6 && IPv6Gateway is { } g6)
        {
            yield return g6;
        }
    }

    public FirewallNetwork ToFirewall() => new()
    {
        NetworkId = Record.Id,
        Owner = BridgeDriver.FirewallOwner,
        BridgeName = Record.BridgeName,
        IPv4Subnets = [IPv4Subnet],
        IPv6Subnets = Record.EnableIPv6 && IPv6Subnet is { } v6 ? [v6] : [],
        BridgeIPv4 = Record.InhibitIPv4 ? null : IPv4Gateway?.Address,
        Internal = Record.Internal,
        EnableIcc = Record.EnableIcc,
        EnableMasquerade = Record.EnableMasquerade,
        SnatSource = Record.HostIPv4 is { } snat ? IPAddress.Parse(snat) : null,
        Hairpin = true,
    };
}

/// <summary>An endpoint the driver holds.</summary>
internal sealed class BridgeEndpoint(BridgeEndpointRecord record)
{
    public BridgeEndpointRecord Record { get; set; } = record;
    public string Id => Record.Id;
    public PhysicalAddress Mac => BridgeNaming.ParseMac(Record.MacAddress);
    public CidrAddress Address => CidrAddress.Parse(Record.Address);
    public CidrAddress? AddressIPv6 => Record.AddressIPv6 is { } a ? CidrAddress.Parse(a) : null;

    /// <summary>The sandbox key of the last join (memory only): where the container end lives.</summary>
    public string? SandboxKey { get; set; }

    /// <summary>The resolved bindings programmed in the firewall, or null when external connectivity is off.</summary>
    public List<PortBinding>? Published { get; set; }
}
