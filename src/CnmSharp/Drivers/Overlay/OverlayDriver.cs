using System.Globalization;
using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using CnmSharp.Diagnostics;
using CnmSharp.Drivers.Common;
using CnmSharp.Netlink;
using CnmSharp.Store;
using Microsoft.Extensions.Logging;

namespace CnmSharp.Drivers.Overlay;

/// <summary>
/// The overlay driver. Every call that touches the kernel or the driver's view runs under one gate, and so does the
/// programming of remote peers (libnetwork runs peer operations serially too). Local records (the controller's store)
/// prove what the driver made on this host; the global store carries what the hosts share: the network's VNIs, each
/// host's membership and its joined endpoints, the latter two on the host's lease.
/// </summary>
internal sealed partial class OverlayDriver : INetworkDriver, IAsyncDisposable
{
    /// <summary>libnetwork's <c>com.docker.network.driver.overlay.vxlanid_list</c>: one VNI per subnet, comma-separated.</summary>
    public const string VxlanIdListOption = "com.docker.network.driver.overlay.vxlanid_list";

    /// <summary>The short MTU option (the same as <see cref="NetLabels.DriverMtu"/>).</summary>
    public const string MtuOption = "mtu";

    /// <summary>VXLAN's overhead: outer Ethernet, IPv4, UDP and VXLAN headers.</summary>
    public const int VxlanOverhead = 50;

    /// <summary>How long a VXLAN create waits for its VNI to be freed by a namespace the kernel is still reaping.</summary>
    private static readonly TimeSpan VniReleaseWait = TimeSpan.FromSeconds(3);

    /// <summary>The first VNI the allocator hands out (libnetwork's ovmanager range).</summary>
    public const uint FirstVni = 4096;

    /// <summary>The largest VNI (24 bits).</summary>
    public const uint LastVni = (1 << 24) - 1;

    private readonly DriverContext _context;
    private readonly OverlayDriverOptions _options;
    private readonly ILogger _logger;
    private readonly OverlayLocalStore _local;
    private readonly HostNetlink _host;
    private readonly NetworkNamespaceManager _namespaces;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly Dictionary<string, OverlayNetwork> _networks = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _stop = new();
    private int _disposed;

    /// <summary>The controller's fault injector (tests only), or null.</summary>
    private readonly FaultPoints? _faults;

    public OverlayDriver(DriverContext context, OverlayDriverOptions options)
    {
        _context = context;
        _options = options;
        _logger = context.LoggerFactory.CreateLogger<OverlayDriver>();
        _faults = FaultPoints.From(context.Services);
        _local = new OverlayLocalStore(context.Store, context.StoreKeyPrefix);
        _host = new HostNetlink(context.HostNamespacePath);
        _namespaces = new NetworkNamespaceManager(new NetworkNamespaceManagerOptions
        {
            RunDirectory = Path.Combine(context.RunDirectory, OverlayDriverFactory.NamespaceDirectory),
            MakeRunDirectoryShared = false,
        });
    }

    /// <summary>Data scope global, connectivity scope global.</summary>
    public DriverCapability Capability { get; } = new(DriverScope.Global, DriverScope.Global) { NoExternalConnectivity = true };

    /// <summary>The namespace name of a network: <c>ov-</c> and the first 12 characters of its id.</summary>
    public static string NamespaceName(string networkId) => "ov-" + (networkId.Length > 12 ? networkId[..12] : networkId);

    // ---------------------------------------------------------------- start and stop

    /// <summary>Re-opens (or re-makes) the namespaces and devices its records say it made, then publishes its joined
    /// endpoints again and follows the other hosts.</summary>
    internal async ValueTask RestoreAsync(CancellationToken cancellationToken)
    {
        var records = await _local.ListNetworksAsync(cancellationToken).ConfigureAwait(false);
        if (records.Count == 0)
        {
            return;
        }

        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            foreach (var record in records)
            {
                try
                {
                    var network = await OpenKernelAsync(record, cancellationToken).ConfigureAwait(false);
                    _networks[record.Id] = network;
                    foreach (var endpoint in await _local.ListEndpointsAsync(record.Id, cancellationToken).ConfigureAwait(false))
                    {
                        // A joined endpoint whose veth went with its sandbox is no longer joined.
                        if (endpoint.SandboxKey is not null && await network.Client.GetLinkAsync(endpoint.HostVeth, cancellationToken).ConfigureAwait(false) is null)
                        {
                            network.Endpoints[endpoint.Id] = endpoint with { SandboxKey = null };
                            await _local.PutAsync(network.Endpoints[endpoint.Id], cancellationToken).ConfigureAwait(false);
                        }
                        else
                        {
                            network.Endpoints[endpoint.Id] = endpoint;
                        }
                    }

                    await AttachHostVethsAsync(network, cancellationToken).ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is NetlinkException or NamespaceException)
                {
                    OverlayLog.RestoreFailed(_logger, ex, record.Id);
                }
            }
        }
        finally
        {
            _gate.Release();
        }

        if (_context.GlobalStore is not null && _context.NodeName is not null && _context.AdvertiseAddress is not null)
        {
            await StartClusterAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Stops renewing the lease and following the store; the kernel is left as it is, so the endpoints keep
    /// working. A clean stop (this call, with the global store still open) writes this host's memberships and joined
    /// endpoints again without a lease and revokes the lease, so the other hosts keep them, as the controller's clean
    /// stop keeps its endpoint records (a <c>cnm</c> command is such a stop); the next start puts them on its lease
    /// again. A host that dies without it loses them when its lease runs out (see docs/overlay.md).</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await _stop.CancelAsync().ConfigureAwait(false);
        foreach (var task in new[] { _followTask, _keepAliveTask })
        {
            if (task is not null)
            {
                try
                {
                    await task.ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is OperationCanceledException or CnmException)
                {
                    // Stopping.
                }
            }
        }

        await _gate.WaitAsync().ConfigureAwait(false);
        await ParkAsync().ConfigureAwait(false);
        foreach (var network in _networks.Values)
        {
            network.Dispose();
        }

        _networks.Clear();
        _gate.Release();
        _host.Dispose();
        _stop.Dispose();
    }

    // ---------------------------------------------------------------- networks

    /// <inheritdoc />
    public async ValueTask CreateNetworkAsync(NetworkCreateRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        var subject = $"network \"{request.NetworkName}\"";
        var (global, node, vtep) = RequireCluster(subject);

        // 1. The request, checked before anything is touched.
        int? mtuOption = null;
        List<uint>? vniList = null;
        foreach (var (key, value) in request.DriverOptions)
        {
            if (key is NetLabels.DriverMtu or MtuOption)
            {
                if (!int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var m) || m is < 68 + VxlanOverhead or > 65535)
                {
                    throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidOption, subject, $"{key} \"{value}\" must be an integer from {68 + VxlanOverhead} to 65535");
                }

                mtuOption = m;
            }
            else if (key == VxlanIdListOption)
            {
                vniList = [];
                foreach (var part in value.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
                {
                    if (!uint.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out var vni) || vni is 0 or > LastVni)
                    {
                        throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidOption, subject, $"{key}: \"{part}\" is not a VNI (1 to {LastVni})");
                    }

                    vniList.Add(vni);
                }
            }
        }

        if (request.EnableIPv6 || request.IPv6Data.Count > 0)
        {
            throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidOption, subject, "the overlay driver does not support IPv6 yet");
        }

        if (request.IPv4Data.Count == 0)
        {
            throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidOption, subject, "an overlay network needs an IPv4 pool");
        }

        var subnets = request.IPv4Data.Select(d => d.Pool.ToString()).ToList();
        if (vniList is not null && vniList.Count < subnets.Count)
        {
            throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidOption, subject, $"{VxlanIdListOption} gives {vniList.Count} VNIs for {subnets.Count} subnets");
        }

        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_networks.ContainsKey(request.NetworkId))
            {
                throw new CnmConflictException(CnmErrorCodes.NetworkExists, subject, $"the overlay driver already has network {request.NetworkId}");
            }

            // 2. The cluster-wide VNIs (the first host to create the network picks them; the others read them).
            var vnis = await new OverlayVniAllocator(global, _context.GlobalStoreKeyPrefix!, _logger).ResolveAsync(request.NetworkId, subnets, vniList, subject, cancellationToken).ConfigureAwait(false);
            var mtu = (mtuOption ?? await UnderlayMtuAsync(vtep, cancellationToken).ConfigureAwait(false)) - VxlanOverhead;
            var record = new OverlayNetworkRecord
            {
                Id = request.NetworkId,
                Name = request.NetworkName,
                Namespace = NamespaceName(request.NetworkId),
                Mtu = mtu,
                Port = _options.VxlanPort,
                Subnets = [.. request.IPv4Data.Select((d, i) => new OverlaySubnetRecord
                {
                    Subnet = d.Pool.ToString(),
                    Gateway = d.Gateway?.ToString(),
                    Vni = vnis[i],
                    Bridge = "br" + i.ToString(CultureInfo.InvariantCulture),
                    Vxlan = "vxlan" + i.ToString(CultureInfo.InvariantCulture),
                })],
            };

            // 3. The record first (it proves the namespace is ours), then the kernel; a failure undoes both.
            await _local.PutAsync(record, cancellationToken).ConfigureAwait(false);
            _faults.Hit(FaultPoint.OverlayNetworkRecordPersisted);
            OverlayNetwork network;
            try
            {
                network = await OpenKernelAsync(record, cancellationToken).ConfigureAwait(false);
                _faults.Hit(FaultPoint.OverlayNetworkKernelCreated);
            }
            catch (Exception ex)
            {
                await DeleteKernelAsync(record).ConfigureAwait(false);
                await _local.DeleteNetworkAsync(record.Id, CancellationToken.None).ConfigureAwait(false);
                throw ex is NetlinkException n ? KernelError(subject, n) : ex is NamespaceException ns ? new CnmInternalException(CnmErrorCodes.KernelError, subject, ns.Message, ns) : ex;
            }

            _networks[record.Id] = network;
            OverlayLog.NetworkCreated(_logger, record.Id, string.Join(',', vnis), mtu, node);
        }
        finally
        {
            _gate.Release();
        }

        try
        {
            await StartClusterAsync(cancellationToken).ConfigureAwait(false);
            await PublishMembershipAsync(request.NetworkId, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is CnmException or OperationCanceledException)
        {
            // Not announced to the cluster: the network is not made on this host either.
            try
            {
                await DeleteNetworkAsync(request.NetworkId, CancellationToken.None).ConfigureAwait(false);
            }
            catch (CnmException undo)
            {
                OverlayLog.UndoFailed(_logger, undo, $"network {request.NetworkId}");
            }

            throw;
        }

        await ProgramKnownPeersAsync(request.NetworkId, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask DeleteNetworkAsync(string networkId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(networkId);
        OverlayNetworkRecord? record;
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_networks.Remove(networkId, out var network))
            {
                record = network.Record;
                network.Dispose();
            }
            else
            {
                record = (await _local.ListNetworksAsync(cancellationToken).ConfigureAwait(false)).FirstOrDefault(r => r.Id == networkId);
            }

            if (record is null)
            {
                return;
            }

            await DeleteKernelAsync(record).ConfigureAwait(false);
            _faults.Hit(FaultPoint.OverlayNetworkKernelDeleted);
            foreach (var endpoint in await _local.ListEndpointsAsync(networkId, cancellationToken).ConfigureAwait(false))
            {
                await _local.DeleteEndpointAsync(networkId, endpoint.Id, cancellationToken).ConfigureAwait(false);
            }

            await _local.DeleteNetworkAsync(networkId, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }

        await WithdrawNetworkAsync(networkId, cancellationToken).ConfigureAwait(false);
        OverlayLog.NetworkDeleted(_logger, networkId);
    }

    // ---------------------------------------------------------------- endpoints

    /// <inheritdoc />
    public async ValueTask CreateEndpointAsync(EndpointCreateRequest request, IInterfaceInfo interfaceInfo, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(interfaceInfo);
        var subject = $"endpoint \"{request.EndpointName}\"";
        if (request.PortBindings.Count > 0)
        {
            throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidOption, subject, "the overlay driver does not publish ports");
        }

        if (interfaceInfo.Address is not { } address)
        {
            throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidOption, subject, "an overlay endpoint needs an IPv4 address");
        }

        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var network = GetNetwork(request.NetworkId);
            if (network.Endpoints.ContainsKey(request.EndpointId))
            {
                throw new CnmConflictException(CnmErrorCodes.EndpointExists, subject, $"the overlay driver already has endpoint {request.EndpointId}");
            }

            if (network.SubnetIndex(address.Address) < 0)
            {
                throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidOption, subject, $"address {address} is in no subnet of network {network.Record.Name}");
            }

            var mac = interfaceInfo.MacAddress;
            if (mac is null)
            {
                mac = MacAddresses.FromIPv4(address.Address);
                interfaceInfo.SetMacAddress(mac);
            }

            var stem = request.EndpointId.Length > 10 ? request.EndpointId[..10] : request.EndpointId;
            var record = new OverlayEndpointRecord
            {
                Id = request.EndpointId,
                NetworkId = request.NetworkId,
                Mac = MacAddresses.Format(mac),
                Address = address.ToString(),
                HostVeth = "ve-" + stem,
                ContainerVeth = "ovc" + stem,
            };
            await _local.PutAsync(record, cancellationToken).ConfigureAwait(false);
            network.Endpoints[record.Id] = record;
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <inheritdoc />
    public async ValueTask DeleteEndpointAsync(string networkId, string endpointId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(networkId);
        ArgumentException.ThrowIfNullOrEmpty(endpointId);
        await LeaveAsync(networkId, endpointId, cancellationToken).ConfigureAwait(false);
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await _local.DeleteEndpointAsync(networkId, endpointId, cancellationToken).ConfigureAwait(false);
            if (_networks.TryGetValue(networkId, out var network))
            {
                network.Endpoints.Remove(endpointId);
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyDictionary<string, string>> GetEndpointOperationalInfoAsync(string networkId, string endpointId, CancellationToken cancellationToken = default)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var endpoint = GetEndpoint(GetNetwork(networkId), endpointId);
            return new Dictionary<string, string>(StringComparer.Ordinal) { [NetLabels.MacAddress] = endpoint.Mac };
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Creates the endpoint's veth in one request: the host end in the network's namespace, enslaved to the
    /// bridge of the endpoint's subnet, the container end directly inside the sandbox (MAC and MTU set). Then the
    /// endpoint is published for the other hosts. The network's gateway is not reported: outbound access goes through a
    /// local gateway network, not through the overlay.</summary>
    public async ValueTask JoinAsync(JoinRequest request, IJoinInfo joinInfo, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(joinInfo);
        var subject = $"endpoint {request.EndpointId}";
        if (request.SandboxUsesHostNamespace)
        {
            throw new CnmConflictException(CnmErrorCodes.DriverForbidden, subject, "an overlay endpoint cannot join a sandbox that uses the host namespace");
        }

        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var network = GetNetwork(request.NetworkId);
            var endpoint = GetEndpoint(network, request.EndpointId);
            var index = network.SubnetIndex(CidrAddress.Parse(endpoint.Address).Address);
            NetworkNamespace sandbox;
            try
            {
                sandbox = _namespaces.Open(request.SandboxKey);
            }
            catch (NamespaceException ex)
            {
                throw new CnmNotFoundException(CnmErrorCodes.NoSuchSandbox, $"sandbox {request.SandboxId}", $"cannot open its namespace {request.SandboxKey}", ex);
            }

            try
            {
                using (sandbox)
                {
                    // A host end left by an earlier attempt at this join is ours (our record names it, in our namespace).
                    if (await network.Client.GetLinkAsync(endpoint.HostVeth, cancellationToken).ConfigureAwait(false) is { } stale)
                    {
                        await DeleteLinkQuietlyAsync(network.Client, stale.Index, cancellationToken).ConfigureAwait(false);
                    }

                    await network.Client.CreateLinkAsync(
                        new VethLinkSpec(endpoint.HostVeth, endpoint.ContainerVeth)
                        {
                            Mtu = network.Record.Mtu,
                            PeerMtu = network.Record.Mtu,
                            PeerNamespace = sandbox.Handle,
                            PeerMac = PhysicalAddress.Parse(endpoint.Mac.Replace(':', '-')),
                            MasterIndex = network.BridgeIndex[index],
                            Up = true,
                        },
                        cancellationToken).ConfigureAwait(false);
                    _faults.Hit(FaultPoint.OverlayJoinVethCreated);
                }
            }
            catch (NetlinkException ex)
            {
                throw KernelError(subject, ex);
            }

            joinInfo.SetInterfaceName(endpoint.ContainerVeth, "eth", InterfacePlacement.Sandbox);
            endpoint = endpoint with { SandboxKey = request.SandboxKey };
            network.Endpoints[endpoint.Id] = endpoint;
            await _local.PutAsync(endpoint, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }

        await PublishPeerAsync(request.NetworkId, request.EndpointId, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Withdraws the endpoint from the other hosts and deletes the veth (both ends go).</summary>
    public async ValueTask LeaveAsync(string networkId, string endpointId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(networkId);
        ArgumentException.ThrowIfNullOrEmpty(endpointId);
        await WithdrawPeerAsync(networkId, endpointId, cancellationToken).ConfigureAwait(false);
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (!_networks.TryGetValue(networkId, out var network) || !network.Endpoints.TryGetValue(endpointId, out var endpoint))
            {
                return;
            }

            try
            {
                if (await network.Client.GetLinkAsync(endpoint.HostVeth, cancellationToken).ConfigureAwait(false) is { Kind: "veth" } link)
                {
                    await DeleteLinkQuietlyAsync(network.Client, link.Index, cancellationToken).ConfigureAwait(false);
                }
            }
            catch (NetlinkException ex)
            {
                throw KernelError($"endpoint {endpointId}", ex);
            }

            if (endpoint.SandboxKey is not null)
            {
                endpoint = endpoint with { SandboxKey = null };
                network.Endpoints[endpointId] = endpoint;
                await _local.PutAsync(endpoint, cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    // ---------------------------------------------------------------- kernel

    /// <summary>Opens the network's namespace (making it when missing) and makes the bridge and VXLAN device of each
    /// subnet that are missing there. Everything in that namespace is ours: the record names it.</summary>
    private async ValueTask<OverlayNetwork> OpenKernelAsync(OverlayNetworkRecord record, CancellationToken cancellationToken)
    {
        var ns = _namespaces.Exists(record.Namespace)
            ? _namespaces.OpenByName(record.Namespace)
            : await _namespaces.CreateAsync(record.Namespace, cancellationToken).ConfigureAwait(false);
        _faults.Hit(FaultPoint.OverlayNetworkNamespaceCreated);
        var network = new OverlayNetwork(record, ns, RtnetlinkClient.Open(ns.Handle));
        try
        {
            var client = network.Client;
            if (await client.GetLinkAsync("lo", cancellationToken).ConfigureAwait(false) is { } lo)
            {
                await client.SetLinkUpAsync(lo.Index, cancellationToken).ConfigureAwait(false);
            }

            for (var i = 0; i < record.Subnets.Count; i++)
            {
                var subnet = record.Subnets[i];
                var bridge = await client.GetLinkAsync(subnet.Bridge, cancellationToken).ConfigureAwait(false);
                if (bridge is null)
                {
                    await client.CreateLinkAsync(new BridgeLinkSpec(subnet.Bridge) { Mtu = record.Mtu, Up = true }, cancellationToken).ConfigureAwait(false);
                    bridge = await client.GetLinkAsync(subnet.Bridge, cancellationToken).ConfigureAwait(false)
                        ?? throw new CnmInternalException(CnmErrorCodes.KernelError, $"network {record.Id}", $"bridge {subnet.Bridge} vanished right after it was made");
                    if (subnet.Gateway is { } gw)
                    {
                        var gateway = CidrAddress.Parse(gw);
                        await client.AddAddressAsync(new AddressSpec(bridge.Index, gateway.Address, gateway.PrefixLength), cancellationToken).ConfigureAwait(false);
                    }
                }

                var vxlan = await client.GetLinkAsync(subnet.Vxlan, cancellationToken).ConfigureAwait(false);
                if (vxlan is null)
                {
                    // Made by the host namespace's socket, directly inside the network's namespace: the device's UDP
                    // socket lives in the host namespace (the underlay), the device in the network's namespace.
                    await CreateVxlanAsync(
                        new VxlanLinkSpec(subnet.Vxlan, subnet.Vni)
                        {
                            Port = record.Port,
                            Local = _context.AdvertiseAddress,
                            Learning = false,
                            Proxy = true,
                            Mtu = record.Mtu,
                            Namespace = ns.Handle,
                        },
                        cancellationToken).ConfigureAwait(false);
                    vxlan = await client.GetLinkAsync(subnet.Vxlan, cancellationToken).ConfigureAwait(false)
                        ?? throw new CnmInternalException(CnmErrorCodes.KernelError, $"network {record.Id}", $"vxlan device {subnet.Vxlan} vanished right after it was made");
                    await client.SetLinkMasterAsync(vxlan.Index, bridge.Index, cancellationToken).ConfigureAwait(false);
                    await client.SetLinkUpAsync(vxlan.Index, cancellationToken).ConfigureAwait(false);
                }
                else if (vxlan.MasterIndex != bridge.Index)
                {
                    // The bridge was made again: the device lost its master with the old one.
                    await client.SetLinkMasterAsync(vxlan.Index, bridge.Index, cancellationToken).ConfigureAwait(false);
                }

                network.BridgeIndex[i] = bridge.Index;
                network.VxlanIndex[i] = vxlan.Index;
            }

            return network;
        }
        catch
        {
            network.Dispose();
            throw;
        }
    }

    /// <summary>Enslaves again to its subnet's bridge the host veth of each joined endpoint that is not on it (a bridge
    /// made again has no ports). Only veths an endpoint record names, in the network's own namespace.</summary>
    /// <returns>How many were enslaved again.</returns>
    private static async ValueTask<int> AttachHostVethsAsync(OverlayNetwork network, CancellationToken cancellationToken)
    {
        var enslaved = 0;
        foreach (var endpoint in network.Endpoints.Values.Where(e => e.SandboxKey is not null))
        {
            var index = network.SubnetIndex(CidrAddress.Parse(endpoint.Address).Address);
            if (index >= 0
                && await network.Client.GetLinkAsync(endpoint.HostVeth, cancellationToken).ConfigureAwait(false) is { Kind: "veth" } veth
                && veth.MasterIndex != network.BridgeIndex[index])
            {
                await network.Client.SetLinkMasterAsync(veth.Index, network.BridgeIndex[index], cancellationToken).ConfigureAwait(false);
                enslaved++;
            }
        }

        return enslaved;
    }

    /// <summary>
    /// Makes a VXLAN device. Its VNI may still be held for a moment by a device of a namespace deleted just before (ours
    /// after a crash or a repair, whose devices the kernel reaps later): EEXIST is retried for up to
    /// <see cref="VniReleaseWait"/>, then reported.
    /// </summary>
    private async ValueTask CreateVxlanAsync(VxlanLinkSpec spec, CancellationToken cancellationToken)
    {
        var deadline = Environment.TickCount64 + (long)VniReleaseWait.TotalMilliseconds;
        var delay = 20;
        while (true)
        {
            try
            {
                await _host.Client.CreateLinkAsync(spec, cancellationToken).ConfigureAwait(false);
                return;
            }
            catch (NetlinkException ex) when (ex.IsAlreadyExists && Environment.TickCount64 < deadline)
            {
                await Task.Delay(delay, cancellationToken).ConfigureAwait(false);
                delay = Math.Min(delay * 2, 250);
            }
        }
    }

    /// <summary>Deletes the network's namespace (with the bridges, VXLAN devices and veth host ends in it) when it
    /// exists. Only the namespace the record names is touched. The VXLAN devices are deleted first, one by one: a VNI
    /// stays taken in the host namespace until its device is gone, and the kernel reaps a deleted namespace's devices
    /// later, so a network made again at once with the same VNI would fail with EEXIST.</summary>
    private async ValueTask DeleteKernelAsync(OverlayNetworkRecord record)
    {
        try
        {
            if (_namespaces.Exists(record.Namespace))
            {
                await DeleteVxlanDevicesAsync(record).ConfigureAwait(false);
                await _namespaces.DeleteAsync(record.Namespace, CancellationToken.None).ConfigureAwait(false);
            }
        }
        catch (NamespaceException ex)
        {
            OverlayLog.UndoFailed(_logger, ex, $"namespace {record.Namespace}");
        }
    }

    /// <summary>Deletes the record's VXLAN devices in its namespace (only links of kind vxlan with the record's names).
    /// A failure is logged: the namespace's delete still takes the devices with it, only later.</summary>
    private async ValueTask DeleteVxlanDevicesAsync(OverlayNetworkRecord record)
    {
        try
        {
            using var ns = _namespaces.OpenByName(record.Namespace);
            using var client = RtnetlinkClient.Open(ns.Handle);
            foreach (var subnet in record.Subnets)
            {
                if (await client.GetLinkAsync(subnet.Vxlan, CancellationToken.None).ConfigureAwait(false) is { Kind: "vxlan" } vxlan)
                {
                    await DeleteLinkQuietlyAsync(client, vxlan.Index, CancellationToken.None).ConfigureAwait(false);
                }
            }
        }
        catch (Exception ex) when (ex is NetlinkException or NamespaceException)
        {
            OverlayLog.UndoFailed(_logger, ex, $"the VXLAN devices in namespace {record.Namespace}");
        }
    }

    /// <summary>The MTU of the host link that holds the advertise address (1500 when none does).</summary>
    private async ValueTask<int> UnderlayMtuAsync(IPAddress vtep, CancellationToken cancellationToken)
    {
        try
        {
            var addresses = await _host.Client.GetAddressesAsync(null, vtep.AddressFamily, cancellationToken).ConfigureAwait(false);
            if (addresses.FirstOrDefault(a => a.Address.Equals(vtep)) is { } owner
                && await _host.Client.GetLinkAsync(owner.LinkIndex, cancellationToken).ConfigureAwait(false) is { } link)
            {
                return link.Mtu;
            }
        }
        catch (NetlinkException ex)
        {
            throw KernelError("underlay", ex);
        }

        return 1500;
    }

    private static async ValueTask DeleteLinkQuietlyAsync(RtnetlinkClient client, int index, CancellationToken cancellationToken)
    {
        try
        {
            await client.DeleteLinkAsync(index, cancellationToken).ConfigureAwait(false);
        }
        catch (NetlinkException ex) when (ex.IsNotFound)
        {
            // Gone already.
        }
    }

    // ---------------------------------------------------------------- helpers

    private (ISharedKeyValueStore Global, string Node, IPAddress Vtep) RequireCluster(string subject)
    {
        if (_context.GlobalStore is not { } global || _context.GlobalStoreKeyPrefix is null || _context.NodeName is not { } node || _context.AdvertiseAddress is not { } vtep)
        {
            throw new CnmUnavailableException(CnmErrorCodes.GlobalStoreRequired, subject, "the overlay driver needs a global store, a node name and an advertise address");
        }

        if (vtep.AddressFamily != AddressFamily.InterNetwork)
        {
            throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidOption, subject, $"the overlay driver needs an IPv4 advertise address, not {vtep}");
        }

        return (global, node, vtep);
    }

    private OverlayNetwork GetNetwork(string networkId) =>
        _networks.TryGetValue(networkId, out var network)
            ? network
            : throw new CnmNotFoundException(CnmErrorCodes.NoSuchNetwork, $"network {networkId}", "the overlay driver has no such network");

    private static OverlayEndpointRecord GetEndpoint(OverlayNetwork network, string endpointId) =>
        network.Endpoints.TryGetValue(endpointId, out var endpoint)
            ? endpoint
            : throw new CnmNotFoundException(CnmErrorCodes.NoSuchEndpoint, $"endpoint {endpointId}", "the overlay driver has no such endpoint");

    private static CnmInternalException KernelError(string subject, NetlinkException ex) => new(CnmErrorCodes.KernelError, subject, ex.Message, ex);
}

/// <summary>A network on this host: its record, its namespace with a socket there, the device indices, its endpoints
/// and the remote peers programmed in it.</summary>
internal sealed class OverlayNetwork(OverlayNetworkRecord record, NetworkNamespace ns, RtnetlinkClient client) : IDisposable
{
    public OverlayNetworkRecord Record { get; } = record;

    public NetworkNamespace Namespace { get; } = ns;

    public RtnetlinkClient Client { get; } = client;

    public int[] BridgeIndex { get; } = new int[record.Subnets.Count];

    public int[] VxlanIndex { get; } = new int[record.Subnets.Count];

    private readonly IPNetwork[] _subnets = [.. record.Subnets.Select(s => IPNetwork.Parse(s.Subnet))];

    public Dictionary<string, OverlayEndpointRecord> Endpoints { get; } = new(StringComparer.Ordinal);

    /// <summary>Remote peers programmed here, by their global key.</summary>
    public Dictionary<string, OverlayPeerRecord> Programmed { get; } = new(StringComparer.Ordinal);

    /// <summary>The index of the subnet holding <paramref name="address"/>, or -1.</summary>
    public int SubnetIndex(IPAddress address) => Array.FindIndex(_subnets, s => s.Contains(address));

    public void Dispose()
    {
        Client.Dispose();
        Namespace.Dispose();
    }
}
