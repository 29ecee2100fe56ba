using CnmSharp.Diagnostics;
using System.Net;
using CnmSharp.Netlink;

namespace CnmSharp.Drivers.Bridge;

internal sealed partial class BridgeDriver
{
    /// <inheritdoc />
    public async ValueTask CreateNetworkAsync(NetworkCreateRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        var options = BridgeNetworkOptions.Parse(request, _options);
        var subject = $"network \"{request.NetworkName}\"";
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_networks.ContainsKey(request.NetworkId))
            {
                throw new CnmConflictException(CnmErrorCodes.NetworkExists, subject, $"the bridge driver already has network {request.NetworkId}");
            }

            CheckConflicts(subject, options);
            var existing = await _kernel.Netlink.GetLinkAsync(options.BridgeName, cancellationToken).ConfigureAwait(false);
            if (existing is not null && !string.Equals(existing.Kind, "bridge", StringComparison.Ordinal))
            {
                throw new CnmConflictException(CnmErrorCodes.DriverForbidden, subject, $"device {options.BridgeName} exists and is not a bridge ({existing.Kind ?? "unknown kind"})");
            }

            // Docker's -b: a default bridge with a name of its own is adopted, never made; only the driver's own
            // default name (DefaultBridgeName) is created when missing (libnetwork's NonDefaultBridgeExistError).
            if (existing is null && options.DefaultBridge && !string.Equals(options.BridgeName, _options.DefaultBridgeName, StringComparison.Ordinal))
            {
                throw new CnmConflictException(CnmErrorCodes.DriverForbidden, subject, $"bridge device with non default name {options.BridgeName} must be created manually");
            }

            var network = new BridgeNetwork(ToRecord(request, options, adopted: existing is not null));
            await BuildCreatePlan(network).RunAsync(cancellationToken).ConfigureAwait(false);
            _networks[network.Id] = network;
            BridgeLog.NetworkCreated(_logger, network.Id, network.BridgeName, existing is null ? "created" : "adopted");
        }
        catch (NetlinkException ex)
        {
            throw KernelError(subject, ex);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>The steps of a network's creation, in order, each with its undo.</summary>
    internal SetupPlan BuildCreatePlan(BridgeNetwork network)
    {
        var record = network.Record;
        var added = new List<CidrAddress>();
        var plan = new SetupPlan("create network " + record.Id, _logger)
            .Add(
                "persist record",
                async ct =>
                {
                    await _store.PutAsync(record, ct).ConfigureAwait(false);
                    _faults.Hit(FaultPoint.BridgeNetworkRecordPersisted);
                },
                () => _store.DeleteNetworkAsync(record.Id, CancellationToken.None));
        if (!record.AdoptedBridge)
        {
            plan.Add(
                "create bridge",
                async ct =>
                {
                    await _kernel.Netlink.CreateLinkAsync(new BridgeLinkSpec(record.BridgeName) { Mtu = record.Mtu, Mac = BridgeNaming.RandomMac() }, ct).ConfigureAwait(false);
                    _faults.Hit(FaultPoint.BridgeNetworkBridgeCreated);
                },
                () => DeleteLinkIfPresentAsync(record.BridgeName, CancellationToken.None));
        }

        plan.Add(
                "configure bridge (addresses, MTU, up)",
                async ct =>
                {
                    await EnsureBridgeAsync(network, added, ct).ConfigureAwait(false);
                    _faults.Hit(FaultPoint.BridgeNetworkBridgeConfigured);
                },
                () => RemoveAddressesAsync(network, added))
            .Add("sysctls", ct => WriteSysctlsAsync(record, ct));
        if (_firewall is { } firewall)
        {
            plan.Add(
                "firewall",
                ct => firewall.SetupNetworkAsync(network.ToFirewall(), ct),
                () => firewall.TeardownNetworkAsync(network.ToFirewall(), CancellationToken.None));
        }

        return plan;
    }

    /// <inheritdoc />
    public async ValueTask DeleteNetworkAsync(string networkId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(networkId);
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var network = _networks.TryGetValue(networkId, out var known) ? known
                : await _store.GetNetworkAsync(networkId, cancellationToken).ConfigureAwait(false) is { } record ? new BridgeNetwork(record)
                : null;
            if (network is null)
            {
                return;
            }

            // Endpoints the core no longer knows (a crash between its delete and ours): their rules, ports and veths go
            // too. Without the network in memory (a crash before the core recorded it, or memory lost), their records say
            // which veths are ours.
            var endpoints = known is not null
                ? network.Endpoints.Values.ToList()
                : (await _store.ListEndpointsAsync(networkId, cancellationToken).ConfigureAwait(false)).Select(r => new BridgeEndpoint(r)).ToList();
            foreach (var endpoint in endpoints)
            {
                await UnpublishAsync(network, endpoint, cancellationToken).ConfigureAwait(false);
                await EnsureHostVethGoneAsync(endpoint.Record, network.BridgeName, null, cancellationToken).ConfigureAwait(false);
                _faults.Hit(FaultPoint.BridgeNetworkEndpointRemoved);
            }

            if (_firewall is not null)
            {
                await _firewall.TeardownNetworkAsync(network.ToFirewall(), cancellationToken).ConfigureAwait(false);
            }

            if (network.Record.AdoptedBridge)
            {
                // The user's bridge: only the addresses we added go.
                await RemoveAddressesAsync(network, [.. network.BridgeAddresses()]).ConfigureAwait(false);
            }
            else
            {
                await DeleteOwnBridgeAsync(network, cancellationToken).ConfigureAwait(false);
            }

            _faults.Hit(FaultPoint.BridgeNetworkBridgeDeleted);

            foreach (var endpoint in await _store.ListEndpointsAsync(networkId, cancellationToken).ConfigureAwait(false))
            {
                await _store.DeleteEndpointAsync(networkId, endpoint.Id, cancellationToken).ConfigureAwait(false);
            }

            await _store.DeleteNetworkAsync(networkId, cancellationToken).ConfigureAwait(false);
            _networks.TryRemove(networkId, out _);
            if ((await _store.ListNetworksAsync(cancellationToken).ConfigureAwait(false)).Count == 0)
            {
                // Nothing left to restore: the driver leaves no record behind (the next network's first start restores).
                await _store.DeleteRestoredInAsync(cancellationToken).ConfigureAwait(false);
            }

            BridgeLog.NetworkDeleted(_logger, networkId, network.BridgeName);
        }
        catch (NetlinkException ex)
        {
            throw KernelError($"network {networkId}", ex);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Deletes the bridge the record says this driver created; a device of that name that is not a bridge is
    /// someone else's and stays.</summary>
    private async ValueTask DeleteOwnBridgeAsync(BridgeNetwork network, CancellationToken cancellationToken)
    {
        var link = await _kernel.Netlink.GetLinkAsync(network.BridgeName, cancellationToken).ConfigureAwait(false);
        if (link is null)
        {
            return;
        }

        if (!string.Equals(link.Kind, "bridge", StringComparison.Ordinal))
        {
            BridgeLog.BridgeNotOwned(_logger, network.BridgeName, network.Id, link.Kind ?? "unknown");
            return;
        }

        await DeleteLinkIfPresentAsync(link.Index, cancellationToken).ConfigureAwait(false);
    }

    private void CheckConflicts(string subject, BridgeNetworkOptions options)
    {
        foreach (var other in _networks.Values)
        {
            if (string.Equals(other.BridgeName, options.BridgeName, StringComparison.Ordinal))
            {
                throw new CnmConflictException(CnmErrorCodes.DriverForbidden, subject, $"bridge {options.BridgeName} is already used by network {other.Record.Name} ({other.Id})");
            }

            if (other.IPv4Subnet.Overlaps(options.IPv4Subnet))
            {
                throw new CnmConflictException(CnmErrorCodes.PoolOverlap, subject, $"subnet {options.IPv4Subnet} overlaps {other.IPv4Subnet} of network {other.Record.Name} ({other.Id})");
            }

            if (options.IPv6Subnet is { } v6 && other.IPv6Subnet is { } otherV6 && otherV6.Overlaps(v6))
            {
                throw new CnmConflictException(CnmErrorCodes.PoolOverlap, subject, $"subnet {v6} overlaps {otherV6} of network {other.Record.Name} ({other.Id})");
            }
        }
    }

    private static BridgeNetworkRecord ToRecord(NetworkCreateRequest request, BridgeNetworkOptions o, bool adopted) => new()
    {
        Id = request.NetworkId,
        Name = request.NetworkName,
        BridgeName = o.BridgeName,
        Mtu = o.Mtu,
        EnableIcc = o.EnableIcc,
        EnableMasquerade = o.EnableMasquerade,
        HostBindingIPv4 = o.HostBindingIPv4?.ToString(),
        InhibitIPv4 = o.InhibitIPv4,
        DefaultBridge = o.DefaultBridge,
        ContainerPrefix = o.ContainerPrefix,
        HostIPv4 = o.HostIPv4?.ToString(),
        Internal = o.Internal,
        EnableIPv6 = o.EnableIPv6,
        IPv4Subnet = o.IPv4Subnet.ToString(),
        IPv4Gateway = o.IPv4Gateway?.ToString(),
        IPv6Subnet = o.IPv6Subnet?.ToString(),
        IPv6Gateway = o.IPv6Gateway?.ToString(),
        DefaultGatewayIPv4 = o.DefaultGatewayIPv4?.ToString(),
        DefaultGatewayIPv6 = o.DefaultGatewayIPv6?.ToString(),
        AdoptedBridge = adopted,
    };

    /// <summary>Makes the bridge match the record: it exists (created when missing), carries the gateway addresses,
    /// has the MTU and is up. Addresses it added are appended to <paramref name="added"/> (for the undo).</summary>
    private async ValueTask EnsureBridgeAsync(BridgeNetwork network, List<CidrAddress>? added, CancellationToken cancellationToken)
    {
        var record = network.Record;
        var netlink = _kernel.Netlink;
        try
        {
            var link = await netlink.GetLinkAsync(record.BridgeName, cancellationToken).ConfigureAwait(false);
            if (link is null)
            {
                await netlink.CreateLinkAsync(new BridgeLinkSpec(record.BridgeName) { Mtu = record.Mtu, Mac = BridgeNaming.RandomMac() }, cancellationToken).ConfigureAwait(false);
                link = await netlink.GetLinkAsync(record.BridgeName, cancellationToken).ConfigureAwait(false)
                    ?? throw new CnmInternalException(CnmErrorCodes.KernelError, $"bridge {record.BridgeName}", "the bridge vanished right after it was created");
            }

            network.BridgeIndex = link.Index;
            var present = await netlink.GetAddressesAsync(link.Index, System.Net.Sockets.AddressFamily.Unspecified, cancellationToken).ConfigureAwait(false);
            foreach (var address in network.BridgeAddresses())
            {
                if (present.Any(p => p.Address.Equals(address.Address) && p.PrefixLength == address.PrefixLength))
                {
                    continue;
                }

                try
                {
                    await netlink.AddAddressAsync(
                        new AddressSpec(link.Index, address.Address, address.PrefixLength)
                        {
                            Flags = address.IsIPv6 ? AddressFlags.NoDad : AddressFlags.None,
                            Broadcast = address.IsIPv6 ? null : Broadcast(address),
                        },
                        cancellationToken).ConfigureAwait(false);
                    added?.Add(address);
                }
                catch (NetlinkException ex) when (ex.IsAlreadyExists)
                {
                    // Present already: nothing to undo.
                }
            }

            if (link.Mtu != record.Mtu)
            {
                await netlink.SetLinkMtuAsync(link.Index, record.Mtu, cancellationToken).ConfigureAwait(false);
            }

            if (!link.IsUp)
            {
                await netlink.SetLinkUpAsync(link.Index, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (NetlinkException ex)
        {
            throw KernelError($"bridge {record.BridgeName}", ex);
        }
    }

    private async ValueTask RemoveAddressesAsync(BridgeNetwork network, List<CidrAddress> addresses)
    {
        if (addresses.Count == 0)
        {
            return;
        }

        var link = await _kernel.Netlink.GetLinkAsync(network.BridgeName, CancellationToken.None).ConfigureAwait(false);
        if (link is null)
        {
            return;
        }

        foreach (var address in addresses)
        {
            try
            {
                await _kernel.Netlink.DeleteAddressAsync(new AddressSpec(link.Index, address.Address, address.PrefixLength), CancellationToken.None).ConfigureAwait(false);
            }
            catch (NetlinkException ex)
            {
                BridgeLog.CleanupFailed(_logger, ex, $"address {address} of bridge {network.BridgeName}");
            }
        }
    }

    /// <summary>Forwarding and bridge netfilter, only in the controller's host namespace. A sysctl that does not exist
    /// there (bridge netfilter not loaded) is logged and skipped.</summary>
    private async ValueTask WriteSysctlsAsync(BridgeNetworkRecord record, CancellationToken cancellationToken)
    {
        if (_options.EnableIPForwarding)
        {
            await SysctlAsync("net.ipv4.ip_forward", "1", cancellationToken).ConfigureAwait(false);
            if (record.EnableIPv6)
            {
                await SysctlAsync("net.ipv6.conf.all.forwarding", "1", cancellationToken).ConfigureAwait(false);
            }
        }

        if (_options.EnableBridgeNetfilter && !record.EnableIcc)
        {
            await SysctlAsync("net.bridge.bridge-nf-call-iptables", "1", cancellationToken).ConfigureAwait(false);
            if (record.EnableIPv6)
            {
                await SysctlAsync("net.bridge.bridge-nf-call-ip6tables", "1", cancellationToken).ConfigureAwait(false);
            }
        }
    }

    private async ValueTask SysctlAsync(string key, string value, CancellationToken cancellationToken)
    {
        if (!await _kernel.TryWriteSysctlAsync(key, value, cancellationToken).ConfigureAwait(false))
        {
            BridgeLog.SysctlMissing(_logger, key);
        }
    }

    private async ValueTask DeleteLinkIfPresentAsync(int index, CancellationToken cancellationToken)
    {
        try
        {
            await _kernel.Netlink.DeleteLinkAsync(index, cancellationToken).ConfigureAwait(false);
        }
        catch (NetlinkException ex) when (ex.IsNotFound)
        {
            // Gone already.
        }
    }

    private async ValueTask DeleteLinkIfPresentAsync(string name, CancellationToken cancellationToken)
    {
        try
        {
            await _kernel.Netlink.DeleteLinkAsync(name, cancellationToken).ConfigureAwait(false);
        }
        catch (NetlinkException ex) when (ex.IsNotFound)
        {
            // Gone already.
        }
    }

    private static IPAddress Broadcast(CidrAddress address)
    {
        Span<byte> bytes = stackalloc byte[4];
        address.Address.TryWriteBytes(bytes, out _);
        var value = System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(bytes);
        var mask = address.PrefixLength == 0 ? 0u : uint.MaxValue << (32 - address.PrefixLength);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(bytes, value | ~mask);
        return new IPAddress(bytes);
    }
}
