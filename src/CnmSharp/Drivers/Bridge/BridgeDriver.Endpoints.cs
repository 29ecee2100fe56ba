using System.Diagnostics;
using System.Net.Sockets;
using System.Text.Json;
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
        if (network.Endpoints.ContainsKey(request.EndpointId))
        {
            throw new CnmConflictException(CnmErrorCodes.EndpointExists, subject, $"the bridge driver already has endpoint {request.EndpointId}");
        }

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
            mac = BridgeNaming.MacFromIPv4(address.Address);
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

        var record = new BridgeEndpointRecord
        {
            Id = request.EndpointId,
            NetworkId = request.NetworkId,
            MacAddress = BridgeNaming.FormatMac(mac),
            Address = address.ToString(),
            AddressIPv6 = addressIPv6?.ToString(),
            HostVeth = BridgeNaming.HostVeth(request.EndpointId),
            ContainerVeth = BridgeNaming.ContainerVeth(request.EndpointId),
            PortBindings = [.. request.PortBindings.Select(ToRecord)],
        };
        await _store.PutAsync(record, cancellationToken).ConfigureAwait(false);
        network.Endpoints[record.Id] = new BridgeEndpoint(record);
    }

    /// <inheritdoc />
    public async ValueTask DeleteEndpointAsync(string networkId, string endpointId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(networkId);
        ArgumentException.ThrowIfNullOrEmpty(endpointId);
        if (!_networks.TryGetValue(networkId, out var network))
        {
            await DeleteHostVethAsync(BridgeNaming.HostVeth(endpointId), cancellationToken).ConfigureAwait(false);
            await _store.DeleteEndpointAsync(networkId, endpointId, cancellationToken).ConfigureAwait(false);
            return;
        }

        network.Endpoints.TryGetValue(endpointId, out var endpoint);
        if (endpoint is not null)
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
        }

        // The guarantee: when this returns, no device holds the endpoint's address any more, so IPAM may hand it out.
        await EnsureHostVethGoneAsync(BridgeNaming.HostVeth(endpointId), endpoint?.SandboxKey, cancellationToken).ConfigureAwait(false);
        await _store.DeleteEndpointAsync(networkId, endpointId, cancellationToken).ConfigureAwait(false);
        network.Endpoints.TryRemove(endpointId, out _);
    }

    /// <inheritdoc />
    public ValueTask<IReadOnlyDictionary<string, string>> GetEndpointOperationalInfoAsync(string networkId, string endpointId, CancellationToken cancellationToken = default)
    {
        var endpoint = GetEndpoint(GetNetwork(networkId), endpointId);
        var ports = (endpoint.Published ?? []).Select(ToRecord).ToList();
        IReadOnlyDictionary<string, string> info = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            [NetLabels.PortMap] = JsonSerializer.Serialize(ports, BridgeJsonContext.Default.ListBridgePortRecord),
            [NetLabels.MacAddress] = endpoint.Record.MacAddress,
        };
        return ValueTask.FromResult(info);
    }

    /// <summary>
    /// Creates the endpoint's veth in one netlink request: the container end directly inside the sandbox's namespace
    /// (with the endpoint's MAC and the MTU), the host end enslaved to the bridge and up. Then hairpin on the bridge
    /// port, and the join info. On failure the veth is deleted.
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

        var record = endpoint.Record;
        var netlink = _kernel.Netlink;
        var created = false;
        try
        {
            if (network.BridgeIndex == 0)
            {
                network.BridgeIndex = (await netlink.GetLinkAsync(network.BridgeName, cancellationToken).ConfigureAwait(false))?.Index
                    ?? throw new CnmInternalException(CnmErrorCodes.KernelError, subject, $"bridge {network.BridgeName} does not exist");
            }

            // A host end left by an earlier attempt (crash, failed join) would make the creation fail.
            await DeleteLinkIfPresentAsync(record.HostVeth, cancellationToken).ConfigureAwait(false);
            NetworkNamespace sandbox;
            try
            {
                sandbox = _kernel.OpenNamespace(request.SandboxKey);
            }
            catch (NamespaceException ex)
            {
                throw new CnmNotFoundException(CnmErrorCodes.NoSuchSandbox, $"sandbox {request.SandboxId}", $"cannot open its namespace {request.SandboxKey}", ex);
            }

            using (sandbox)
            using (var batch = new RtnetlinkBatch())
            {
                batch.CreateLink(new VethLinkSpec(record.HostVeth, record.ContainerVeth)
                {
                    Mtu = network.Record.Mtu,
                    PeerMtu = network.Record.Mtu,
                    PeerNamespace = sandbox.Handle,
                    PeerMac = endpoint.Mac,
                    MasterIndex = network.BridgeIndex,
                    Up = true,
                });
                var result = await netlink.ExecuteBatchAsync(batch, cancellationToken).ConfigureAwait(false);
                result.ThrowIfFailed();
            }

            created = true;
            var host = await netlink.GetLinkAsync(record.HostVeth, cancellationToken).ConfigureAwait(false)
                ?? throw new CnmInternalException(CnmErrorCodes.KernelError, subject, $"veth {record.HostVeth} vanished right after it was created");
            await netlink.SetBridgePortHairpinAsync(host.Index, true, cancellationToken).ConfigureAwait(false);

            joinInfo.SetInterfaceName(record.ContainerVeth, network.Record.ContainerPrefix, InterfacePlacement.Sandbox);
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

            endpoint.SandboxKey = request.SandboxKey;
        }
        catch (Exception ex)
        {
            if (created)
            {
                await DeleteHostVethAsync(record.HostVeth, CancellationToken.None).ConfigureAwait(false);
            }

            if (ex is NetlinkException netlinkError)
            {
                throw KernelError(subject, netlinkError);
            }

            throw;
        }
    }

    /// <summary>Nothing to do: the core deletes the container end (or deleting the sandbox's namespace reaps it),
    /// and either end going takes the pair. <see cref="DeleteEndpointAsync"/> makes sure the host end is gone.</summary>
    public ValueTask LeaveAsync(string networkId, string endpointId, CancellationToken cancellationToken = default) => ValueTask.CompletedTask;

    /// <summary>
    /// Returns once the endpoint's host-side veth no longer exists. When its sandbox's namespace is gone, the kernel
    /// is reaping the pair already (in batch, cheaper than a delete): wait for that, bounded by
    /// <see cref="BridgeDriverOptions.ReapTimeout"/>, then delete it ourselves.
    /// </summary>
    private async ValueTask EnsureHostVethGoneAsync(string hostVeth, string? sandboxKey, CancellationToken cancellationToken)
    {
        var netlink = _kernel.Netlink;
        if (await HostLinkAsync(netlink, hostVeth, cancellationToken).ConfigureAwait(false) is null)
        {
            return;
        }

        if (sandboxKey is not null && !_kernel.NamespaceExists(sandboxKey))
        {
            var started = Stopwatch.GetTimestamp();
            var delay = TimeSpan.FromMilliseconds(2);
            while (_time.GetElapsedTime(started) < _options.ReapTimeout)
            {
                await Task.Delay(delay, _time, cancellationToken).ConfigureAwait(false);
                if (await HostLinkAsync(netlink, hostVeth, cancellationToken).ConfigureAwait(false) is null)
                {
                    BridgeLog.VethReaped(_logger, hostVeth, (long)Stopwatch.GetElapsedTime(started).TotalMilliseconds);
                    return;
                }

                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromMilliseconds(50).Ticks));
            }

            BridgeLog.ReapTimedOut(_logger, hostVeth, (long)Stopwatch.GetElapsedTime(started).TotalMilliseconds, sandboxKey);
        }

        await DeleteHostVethAsync(hostVeth, cancellationToken).ConfigureAwait(false);
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
