using CnmSharp.Diagnostics;
using CnmSharp.Drivers.Common;
using System.Diagnostics;
using System.Net.Sockets;
using CnmSharp.Netlink;

namespace CnmSharp.Drivers.Bridge;

internal sealed partial class BridgeDriver
{
    /// <inheritdoc />
    public async ValueTask CreateEndpointAsync(EndpointCreateRequest request, IInterfaceInfo interfaceInfo, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(interfaceInfo);
        var network = GetNetwork(request.NetworkId);
        var subject = $"endpoint \"{request.EndpointName}\"";
        if (interfaceInfo.Address is not { } address)
        {
            throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidAddress, subject, "a bridge endpoint needs an IPv4 address");
        }

        foreach (var binding in request.PortBindings)
        {
            ValidateBinding(subject, network, binding, interfaceInfo.AddressIPv6 is not null || network.Record.EnableIPv6);
        }

        var mac = interfaceInfo.MacAddress;
        if (mac is null)
        {
            mac = MacAddresses.FromIPv4(address.Address);
            interfaceInfo.SetMacAddress(mac);
        }

        var addressIPv6 = interfaceInfo.AddressIPv6;
        if (addressIPv6 is null && network.Record.EnableIPv6 && network.IPv6Subnet is { } v6)
        {
            var derived = BridgeNaming.IPv6FromMac(v6, mac)
                ?? throw new CnmConflictException(CnmErrorCodes.DriverForbidden, subject, $"cannot derive an IPv6 address from the MAC: subnet {v6} has fewer than 48 host bits");
            addressIPv6 = new CidrAddress(derived, v6.PrefixLength);
            interfaceInfo.SetIPAddress(addressIPv6.Value);
        }

        // The interface names are chosen, and persisted, under the gate: no other endpoint of this driver (any network,
        // any endpoint being created at the same time) can get the same ones.
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (!_networks.TryGetValue(request.NetworkId, out var current) || !ReferenceEquals(current, network))
            {
                throw new CnmNotFoundException(CnmErrorCodes.NoSuchNetwork, $"network {request.NetworkId}", "the bridge driver has no such network");
            }

            if (network.Endpoints.ContainsKey(request.EndpointId))
            {
                throw new CnmConflictException(CnmErrorCodes.EndpointExists, subject, $"the bridge driver already has endpoint {request.EndpointId}");
            }

            var (hostVeth, containerVeth) = BridgeNaming.ChooseVethNames(request.EndpointId, TakenInterfaceNames(null));
            var record = new BridgeEndpointRecord
            {
                Id = request.EndpointId,
                NetworkId = request.NetworkId,
                MacAddress = MacAddresses.Format(mac),
                Address = address.ToString(),
                AddressIPv6 = addressIPv6?.ToString(),
                HostVeth = hostVeth,
                ContainerVeth = containerVeth,
                PortBindings = [.. request.PortBindings.Select(ToRecord)],
            };
            await _store.PutAsync(record, cancellationToken).ConfigureAwait(false);
            _faults.Hit(FaultPoint.BridgeEndpointRecordPersisted);
            network.Endpoints[record.Id] = new BridgeEndpoint(record);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>The interface names of every endpoint the driver holds (both ends), plus <paramref name="refused"/>.
    /// The caller holds the gate.</summary>
    private HashSet<string> TakenInterfaceNames(IEnumerable<string>? refused)
    {
        var taken = new HashSet<string>(StringComparer.Ordinal);
        foreach (var network in _networks.Values)
        {
            foreach (var endpoint in network.Endpoints.Values)
            {
                taken.Add(endpoint.Record.HostVeth);
                taken.Add(endpoint.Record.ContainerVeth);
            }
        }

        if (refused is not null)
        {
            taken.UnionWith(refused);
        }

        return taken;
    }

    /// <inheritdoc />
    public async ValueTask DeleteEndpointAsync(string networkId, string endpointId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(networkId);
        ArgumentException.ThrowIfNullOrEmpty(endpointId);
        _networks.TryGetValue(networkId, out var network);
        BridgeEndpoint? endpoint = null;
        network?.Endpoints.TryGetValue(endpointId, out endpoint);
        if (network is not null && endpoint is not null)
        {
            await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                await UnpublishAsync(network, endpoint, cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                _gate.Release();
            }

            _faults.Hit(FaultPoint.BridgeEndpointPortsUnpublished);
        }

        // Only the link our record names is ours to delete: without a record this driver never made one.
        var record = endpoint?.Record ?? await _store.GetEndpointAsync(networkId, endpointId, cancellationToken).ConfigureAwait(false);
        if (record is not null)
        {
            var bridgeName = network?.BridgeName ?? (await _store.GetNetworkAsync(networkId, cancellationToken).ConfigureAwait(false))?.BridgeName;

            // The guarantee: when this returns, no device holds the endpoint's address any more, so IPAM may hand it out.
            await EnsureHostVethGoneAsync(record, bridgeName, endpoint?.SandboxKey, cancellationToken).ConfigureAwait(false);
            _faults.Hit(FaultPoint.BridgeEndpointVethDeleted);
        }

        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await _store.DeleteEndpointAsync(networkId, endpointId, cancellationToken).ConfigureAwait(false);
            if (_networks.TryGetValue(networkId, out var current))
            {
                current.Endpoints.TryRemove(endpointId, out _);
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <inheritdoc />
    public ValueTask<IReadOnlyDictionary<string, string>> GetEndpointOperationalInfoAsync(string networkId, string endpointId, CancellationToken cancellationToken = default)
    {
        var endpoint = GetEndpoint(GetNetwork(networkId), endpointId);
        IReadOnlyDictionary<string, string> info = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            // The bindings as published, with the host ports actually given (the core reports these).
            [NetLabels.PortMap] = PortMap.Format(endpoint.Published ?? []),
            [NetLabels.MacAddress] = endpoint.Record.MacAddress,
        };
        return ValueTask.FromResult(info);
    }

    /// <summary>
    /// Creates the endpoint's veth in one netlink request: the container end directly inside the sandbox's namespace
    /// (in the host namespace when <see cref="JoinRequest.InterfaceInHostNamespace"/> asks, for the caller to move)
    /// (with the endpoint's MAC and the MTU), the host end enslaved to the bridge and up. Then hairpin on the bridge
    /// port, and the join info. When the kernel says a name exists: a veth of our bridge under the name our record gives
    /// this endpoint is left from an earlier attempt at this join and is replaced; anything else is not ours, so the
    /// endpoint gets other names (persisted before the next attempt) and the link is left alone. On failure the veth
    /// this call made is deleted.
    /// </summary>
    public async ValueTask JoinAsync(JoinRequest request, IJoinInfo joinInfo, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(joinInfo);
        var network = GetNetwork(request.NetworkId);
        var endpoint = GetEndpoint(network, request.EndpointId);
        var subject = $"endpoint {request.EndpointId}";
        if (request.SandboxUsesHostNamespace)
        {
            throw new CnmConflictException(CnmErrorCodes.DriverForbidden, subject, "a bridge endpoint cannot join a sandbox that uses the host namespace");
        }

        var netlink = _kernel.Netlink;
        string? created = null;
        try
        {
            if (network.BridgeIndex == 0)
            {
                network.BridgeIndex = (await netlink.GetLinkAsync(network.BridgeName, cancellationToken).ConfigureAwait(false))?.Index
                    ?? throw new CnmInternalException(CnmErrorCodes.KernelError, subject, $"bridge {network.BridgeName} does not exist");
            }

            // The container end goes straight into the sandbox, unless the caller moves it itself (a plugin host:
            // Docker's daemon moves it), then it stays in the host namespace.
            NetworkNamespace? sandbox = null;
            if (!request.InterfaceInHostNamespace)
            {
                try
                {
                    sandbox = _kernel.OpenNamespace(request.SandboxKey);
                }
                catch (NamespaceException ex)
                {
                    throw new CnmNotFoundException(CnmErrorCodes.NoSuchSandbox, $"sandbox {request.SandboxId}", $"cannot open its namespace {request.SandboxKey}", ex);
                }
            }

            using (sandbox)
            {
                var refused = new List<string>();
                for (var attempt = 1; ; attempt++)
                {
                    var names = endpoint.Record;
                    var error = await TryCreateVethAsync(network, endpoint, names, sandbox, cancellationToken).ConfigureAwait(false);
                    if (error is null)
                    {
                        created = names.HostVeth;
                        _faults.Hit(FaultPoint.BridgeJoinVethCreated);
                        break;
                    }

                    if (!error.IsAlreadyExists || attempt >= MaxJoinAttempts)
                    {
                        throw error;
                    }

                    var existing = await netlink.GetLinkAsync(names.HostVeth, cancellationToken).ConfigureAwait(false);
                    if (existing is not null && IsVethOfBridge(existing, network.BridgeIndex))
                    {
                        // Our record gives this endpoint that name, and names are unique among our records: the host end
                        // of an earlier attempt at this join (a crash, a repeated join). Replace it.
                        await DeleteLinkIfPresentAsync(existing.Index, cancellationToken).ConfigureAwait(false);
                        continue;
                    }

                    // Not ours (another program's link in the host namespace, or a name taken inside the sandbox).
                    refused.Add(names.HostVeth);
                    refused.Add(names.ContainerVeth);
                    var renamed = await RenameEndpointAsync(network, endpoint, refused, cancellationToken).ConfigureAwait(false);
                    BridgeLog.VethNameTaken(_logger, names.HostVeth, endpoint.Id, renamed.HostVeth);
                }
            }

            var record = endpoint.Record;
            var host = await netlink.GetLinkAsync(record.HostVeth, cancellationToken).ConfigureAwait(false)
                ?? throw new CnmInternalException(CnmErrorCodes.KernelError, subject, $"veth {record.HostVeth} vanished right after it was created");
            await netlink.SetBridgePortHairpinAsync(host.Index, true, cancellationToken).ConfigureAwait(false);

            joinInfo.SetInterfaceName(record.ContainerVeth, network.Record.ContainerPrefix, sandbox is null ? InterfacePlacement.HostNamespace : InterfacePlacement.Sandbox);
            if (!network.Record.Internal)
            {
                var gateway = network.DefaultGatewayIPv4 ?? (network.Record.InhibitIPv4 ? null : network.IPv4Gateway?.Address);
                if (gateway is not null)
                {
                    joinInfo.SetGateway(gateway);
                }

                var gateway6 = network.DefaultGatewayIPv6 ?? network.IPv6Gateway?.Address;
                if (network.Record.EnableIPv6 && gateway6 is not null)
                {
                    joinInfo.SetGatewayIPv6(gateway6);
                }
            }

            // Only where the container end went into the sandbox is the kernel known to reap the pair with the
            // namespace; an interface the caller moves (Docker moves it back out at leave) is deleted at DeleteEndpoint.
            endpoint.SandboxKey = sandbox is null ? null : request.SandboxKey;
        }
        catch (Exception ex)
        {
            if (created is not null)
            {
                await DeleteHostVethAsync(created, CancellationToken.None).ConfigureAwait(false);
            }

            if (ex is NetlinkException netlinkError)
            {
                throw KernelError(subject, netlinkError);
            }

            throw;
        }
    }

    /// <summary>How many times a join tries to create the veth (names taken by links that are not ours, or a leftover
    /// of an earlier attempt to replace) before it gives up.</summary>
    private const int MaxJoinAttempts = 8;

    /// <summary>One <c>RTM_NEWLINK</c> for the pair; the kernel's error, or null on success.</summary>
    private async ValueTask<NetlinkException?> TryCreateVethAsync(BridgeNetwork network, BridgeEndpoint endpoint, BridgeEndpointRecord names, NetworkNamespace? sandbox, CancellationToken cancellationToken)
    {
        using var batch = new RtnetlinkBatch();
        batch.CreateLink(new VethLinkSpec(names.HostVeth, names.ContainerVeth)
        {
            Mtu = network.Record.Mtu,
            PeerMtu = network.Record.Mtu,
            PeerNamespace = sandbox?.Handle,
            PeerMac = endpoint.Mac,
            MasterIndex = network.BridgeIndex,
            Up = true,
        });
        var result = await _kernel.Netlink.ExecuteBatchAsync(batch, cancellationToken).ConfigureAwait(false);
        return result.Errors.FirstOrDefault(e => e is not null);
    }

    /// <summary>Gives the endpoint new interface names, unique among the driver's endpoints and not among
    /// <paramref name="refused"/>, and persists them before they are used.</summary>
    private async ValueTask<BridgeEndpointRecord> RenameEndpointAsync(BridgeNetwork network, BridgeEndpoint endpoint, IReadOnlyCollection<string> refused, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var (hostVeth, containerVeth) = BridgeNaming.ChooseVethNames(endpoint.Id, TakenInterfaceNames(refused));
            var record = endpoint.Record with { HostVeth = hostVeth, ContainerVeth = containerVeth };
            if (network.Endpoints.ContainsKey(endpoint.Id))
            {
                await _store.PutAsync(record, cancellationToken).ConfigureAwait(false);
            }

            endpoint.Record = record;
            return record;
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>A veth enslaved to the bridge of that index (0: unknown, never matches).</summary>
    private static bool IsVethOfBridge(LinkInfo link, int bridgeIndex) =>
        bridgeIndex != 0 && link.MasterIndex == bridgeIndex && string.Equals(link.Kind, "veth", StringComparison.Ordinal);

    /// <summary>Nothing to do: the core deletes the container end (or deleting the sandbox's namespace reaps it),
    /// and either end going takes the pair. <see cref="DeleteEndpointAsync"/> makes sure the host end is gone.</summary>
    public ValueTask LeaveAsync(string networkId, string endpointId, CancellationToken cancellationToken = default) => ValueTask.CompletedTask;

    /// <summary>
    /// Returns once the endpoint's host-side veth, as its record names it, no longer exists. When its sandbox's namespace
    /// is gone, the kernel is reaping the pair already (in batch, cheaper than a delete): wait for that, bounded by
    /// <see cref="BridgeDriverOptions.ReapTimeout"/>, then delete it ourselves. A link of that name is deleted only when
    /// it is ours (<see cref="IsOwnHostVethAsync"/>); anything else is logged and left alone.
    /// </summary>
    private async ValueTask EnsureHostVethGoneAsync(BridgeEndpointRecord record, string? bridgeName, string? sandboxKey, CancellationToken cancellationToken)
    {
        var hostVeth = record.HostVeth;
        var netlink = _kernel.Netlink;
        var link = await HostLinkAsync(netlink, hostVeth, cancellationToken).ConfigureAwait(false);
        if (link is null)
        {
            return;
        }

        if (!await IsOwnHostVethAsync(link, bridgeName, cancellationToken).ConfigureAwait(false))
        {
            BridgeLog.LinkNotOwned(_logger, hostVeth, link.Kind ?? "unknown", link.MasterIndex, record.Id);
            return;
        }

        if (sandboxKey is not null && !_kernel.NamespaceExists(sandboxKey))
        {
            var started = Stopwatch.GetTimestamp();
            var delay = TimeSpan.FromMilliseconds(2);
            while (_time.GetElapsedTime(started) < _options.ReapTimeout)
            {
                await Task.Delay(delay, _time, cancellationToken).ConfigureAwait(false);
                var now = await HostLinkAsync(netlink, hostVeth, cancellationToken).ConfigureAwait(false);
                if (now is null || now.Index != link.Index)
                {
                    BridgeLog.VethReaped(_logger, hostVeth, (long)Stopwatch.GetElapsedTime(started).TotalMilliseconds);
                    return;
                }

                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromMilliseconds(50).Ticks));
            }

            BridgeLog.ReapTimedOut(_logger, hostVeth, (long)Stopwatch.GetElapsedTime(started).TotalMilliseconds, sandboxKey);
        }

        // By index: the very link found (and judged ours) above, never another that took the name since.
        try
        {
            await DeleteLinkIfPresentAsync(link.Index, cancellationToken).ConfigureAwait(false);
        }
        catch (NetlinkException ex)
        {
            throw KernelError($"veth {hostVeth}", ex);
        }
    }

    /// <summary>
    /// Whether a link named by one of our endpoint records is ours: a veth enslaved to the network's bridge, or a veth
    /// with no master (its bridge was deleted, or the network's record is gone). A veth on any other device, or a link of
    /// another kind, belongs to someone else.
    /// </summary>
    private async ValueTask<bool> IsOwnHostVethAsync(LinkInfo link, string? bridgeName, CancellationToken cancellationToken)
    {
        if (!string.Equals(link.Kind, "veth", StringComparison.Ordinal))
        {
            return false;
        }

        if (link.MasterIndex == 0)
        {
            return true;
        }

        if (bridgeName is null)
        {
            return false;
        }

        var bridge = await _kernel.Netlink.GetLinkAsync(bridgeName, cancellationToken).ConfigureAwait(false);
        return bridge is not null && bridge.Index == link.MasterIndex;
    }

    private static async ValueTask<LinkInfo?> HostLinkAsync(IRtnetlinkClient netlink, string hostVeth, CancellationToken cancellationToken)
    {
        try
        {
            return await netlink.GetLinkAsync(hostVeth, cancellationToken).ConfigureAwait(false);
        }
        catch (NetlinkException ex)
        {
            throw KernelError($"veth {hostVeth}", ex);
        }
    }

    /// <summary>Deletes a veth this driver made (by name: the caller just created it).</summary>
    private async ValueTask DeleteHostVethAsync(string hostVeth, CancellationToken cancellationToken)
    {
        try
        {
            await DeleteLinkIfPresentAsync(hostVeth, cancellationToken).ConfigureAwait(false);
        }
        catch (NetlinkException ex)
        {
            throw KernelError($"veth {hostVeth}", ex);
        }
    }

    private static void ValidateBinding(string subject, BridgeNetwork network, PortBinding binding, bool hasIPv6)
    {
        if (binding is null || binding.HostIP is null)
        {
            throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidAddress, subject, "invalid port binding: null, or without a host address (use 0.0.0.0 or :: for every address)");
        }

        if (IPAddressText.HasScopeId(binding.HostIP))
        {
            // iptables matches no scope: the DNAT rule would not match what its teardown deletes.
            throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidAddress, subject, $"invalid port binding: host address {binding.HostIP} has a scope id");
        }

        if (!Enum.IsDefined(binding.Protocol) || binding.ContainerPort == 0)
        {
            throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidOption, subject, $"invalid port binding {binding}: unknown protocol or container port 0");
        }

        if (binding.HostPortEnd != 0 && binding.HostPortEnd < binding.HostPort)
        {
            throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidOption, subject, $"invalid port binding: host port range {binding.HostPort}-{binding.HostPortEnd} is reversed");
        }

        if (binding.HostIP.AddressFamily == AddressFamily.InterNetworkV6 && !binding.HostIP.IsIPv4MappedToIPv6 && !hasIPv6)
        {
            throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidOption, subject, $"port binding on IPv6 host address {binding.HostIP} needs an IPv6 network (network {network.Record.Name} has none)");
        }
    }
}
