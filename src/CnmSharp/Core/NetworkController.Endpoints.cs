using System.Net;
using CnmSharp.Core;
using CnmSharp.Core.Persistence;
using CnmSharp.Diagnostics;
using CnmSharp.Drivers;
using CnmSharp.Ipam;
using CnmSharp.Store;

namespace CnmSharp;

public sealed partial class NetworkController
{
    internal ValueTask<Endpoint> CreateEndpointAsync(Network network, string name, EndpointCreateOptions options, CancellationToken cancellationToken) =>
        RunAsync("endpoint.create", async () =>
        {
            Validation.EndpointCreate(name, options);
            Validation.EndpointAddresses(name, options);
            if (network.ConfigOnly)
            {
                throw new CnmConflictException(CnmErrorCodes.ConfigOnlyNetwork, network.ToString(), "cannot create an endpoint on a configuration-only network");
            }

            await network.Gate.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                if (network.Deleting || !_networks.ContainsKey(network.Id))
                {
                    throw new CnmNotFoundException(CnmErrorCodes.NoSuchNetwork, network.ToString(), "no such network");
                }

                if (network.FindEndpointByName(name) is not null)
                {
                    throw new CnmConflictException(CnmErrorCodes.EndpointExists, $"endpoint \"{name}\"", $"endpoint with name {name} already exists in network {network.Name}");
                }

                var ipam = network.IpamDriver is null ? null : await ResolveIpamAsync(network.IpamDriver, cancellationToken).ConfigureAwait(false);
                CheckWantedAddresses(network, ipam, name, options);
                var id = Ids.NewId();
                var intent = new IntentTracker(_store, new IntentRecord { Id = Ids.NewId(), Kind = IntentKind.CreateEndpoint, NetworkId = network.Id, EndpointId = id, Driver = network.Driver, IpamDriver = ipam?.Name },
                    // An IPAM that records owners has its leftovers swept at start; for another, the intent is what
                    // lists the addresses to release, so it must survive whatever the IPAM's own writes survive.
                    ipam is null || ipam.Ipam is IIpamOwnedAllocations ? StoreDurability.Relaxed : StoreDurability.Durable);
                await intent.BeginAsync(cancellationToken).ConfigureAwait(false);
                try
                {
                    _faults.Hit(FaultPoint.EndpointCreateIntentRecorded);
                    var info = new InterfaceInfo { LinkLocalAddresses = options.LinkLocalAddresses };
                    if (options.MacAddress is not null)
                    {
                        info.SetMacAddress(options.MacAddress);
                    }

                    string? poolV4 = null, poolV6 = null;
                    if (ipam is not null)
                    {
                        var ipamOptions = new Dictionary<string, string>(network.IpamOptions, StringComparer.Ordinal);
                        foreach (var (k, v) in options.IpamOptions)
                        {
                            ipamOptions[k] = v;
                        }

                        ipamOptions[NetLabels.IpamOwner] = id;
                        if (ipam.Ipam.Capability.RequiresMacAddress)
                        {
                            if (info.MacAddress is null)
                            {
                                info.SetMacAddress(Macs.Random());
                            }

                            ipamOptions[NetLabels.MacAddress] = Macs.Format(info.MacAddress!);
                        }

                        poolV4 = await AssignAddressAsync(network, ipam, network.IPv4Info, options.IPv4Address, ipamOptions, info, intent, "IPv4", cancellationToken).ConfigureAwait(false);
                        if (network.IPv6Info.Count > 0)
                        {
                            poolV6 = await AssignAddressAsync(network, ipam, network.IPv6Info, options.IPv6Address, ipamOptions, info, intent, "IPv6", cancellationToken).ConfigureAwait(false);
                        }
                    }

                    _faults.Hit(FaultPoint.EndpointCreateAddressesReserved);
                    await network.RegisteredDriver.Driver.CreateEndpointAsync(
                        new EndpointCreateRequest
                        {
                            NetworkId = network.Id,
                            EndpointId = id,
                            EndpointName = name,
                            DriverOptions = options.DriverOptions,
                            ExposedPorts = options.ExposedPorts,
                            PortBindings = options.PortBindings,
                        },
                        info,
                        cancellationToken).ConfigureAwait(false);
                    _faults.Hit(FaultPoint.EndpointCreateDriverCreated);

                    var record = new EndpointRecord
                    {
                        Id = id,
                        Name = name,
                        NetworkId = network.Id,
                        MacAddress = info.MacAddress is null ? null : Macs.Format(info.MacAddress),
                        Address = info.Address?.ToString(),
                        AddressIPv6 = info.AddressIPv6?.ToString(),
                        PoolIdV4 = poolV4,
                        PoolIdV6 = poolV6,
                        LinkLocalAddresses = options.LinkLocalAddresses.Select(a => a.ToString()).ToList(),
                        Aliases = [.. options.Aliases],
                        Anonymous = options.Anonymous,
                        DisableResolution = options.DisableResolution,
                        ExposedPorts = options.ExposedPorts.Select(p => new[] { (int)p.Protocol, p.Port }).ToList(),
                        PortBindings = options.PortBindings.Select(p => new PortBindingRecord { Protocol = (int)p.Protocol, ContainerPort = p.ContainerPort, HostIP = p.HostIP.ToString(), HostPort = p.HostPort, HostPortEnd = p.HostPortEnd }).ToList(),
                        DriverOptions = new(options.DriverOptions, StringComparer.Ordinal),
                        Node = _global is not null && IsGlobal(network.Record) ? _global.NodeName : null,
                    };

                    // An endpoint of a global network is published for the cluster first, then committed here.
                    await PublishEndpointRecordAsync(network, record, cancellationToken).ConfigureAwait(false);
                    var versions = await _store.Store.CommitAsync(
                        [StoreOperation.Put(CoreStore.EndpointKey(network.Id, id), CoreStore.Serialize(record, CoreJsonContext.Default.EndpointRecord), StoreVersion.Absent), intent.Complete()],
                        StoreDurability.Relaxed,
                        cancellationToken).ConfigureAwait(false);
                    _faults.Hit(FaultPoint.EndpointCreateCommitted);
                    var endpoint = new Endpoint(network, record, versions[0]);
                    network.TryAddEndpoint(endpoint);
                    Log.EndpointCreated(_logger, name, id, network.Name);
                    return endpoint;
                }
                catch
                {
                    // A controller stopped under the operation touches nothing more: its components are disposed, and the
                    // intent it leaves is rolled back by the next start, as after a crash.
                    if (Volatile.Read(ref _disposed) != 0)
                    {
                        throw;
                    }

                    if (_global is not null && IsGlobal(network.Record))
                    {
                        await DeletePublishedEndpointAsync(network.Id, id).ConfigureAwait(false);
                    }

                    await RollbackAsync(intent.Intent, CancellationToken.None).ConfigureAwait(false);
                    await intent.AbandonAsync().ConfigureAwait(false);
                    throw;
                }
            }
            finally
            {
                network.Gate.Release();
            }
        }, cancellationToken);

    /// <summary>
    /// Reserves the endpoint's address of one family: the pool that contains the preferred address, or the first pool
    /// with a free address. Returns the pool id, or null when the IPAM handed out no address (null IPAM). An address
    /// may still be held by an endpoint being torn down (a container restarted with its static address, or a full
    /// pool): then the network's pending teardowns are awaited first.
    /// </summary>
    private async ValueTask<string?> AssignAddressAsync(
        Network network,
        RegisteredIpam ipam,
        IReadOnlyList<IpamInfo> pools,
        IPAddress? preferred,
        IReadOnlyDictionary<string, string> options,
        InterfaceInfo info,
        IntentTracker intent,
        string family,
        CancellationToken cancellationToken)
    {
        if (pools.Count == 0)
        {
            return null;
        }

        var subject = $"network \"{network.Name}\"";
        if (preferred is not null && !pools.Any(p => p.Pool.Contains(preferred)))
        {
            throw new CnmInvalidArgumentException(CnmErrorCodes.IPOutOfRange, subject, $"requested address {preferred} does not belong to any of this network's subnets");
        }

        var waited = preferred is not null && await WaitForTeardownsAsync(network, cancellationToken).ConfigureAwait(false);
        while (true)
        {
            foreach (var pool in pools)
            {
                if (preferred is not null && !pool.Pool.Contains(preferred))
                {
                    continue;
                }

                AllocatedAddress allocated;
                try
                {
                    allocated = await ipam.Ipam.RequestAddressAsync(pool.PoolId, preferred, options, cancellationToken).ConfigureAwait(false);
                }
                catch (CnmException ex) when (preferred is null && ex.Code == CnmErrorCodes.NoAvailableIPs)
                {
                    continue;
                }

                if (allocated.Address is not { } address)
                {
                    return null;
                }

                intent.Intent.Addresses.Add([pool.PoolId, address.Address.ToString()]);

                // An owned allocation is found by its owner at the next start's sweep, except in a global network's
                // pool, which the sweep leaves alone (other hosts' endpoints hold its addresses); an IPAM that
                // releases by owner has it released by the rollback. Otherwise the intent records it, so a crash
                // before the commit releases it by the rollback.
                if (OwnerReleaseFor(ipam, network) is null && (ipam.Ipam is not IIpamOwnedAllocations || (_global is not null && IsGlobal(network.Record))))
                {
                    await intent.SaveAsync(cancellationToken).ConfigureAwait(false);
                }

                info.SetIPAddress(address);
                return pool.PoolId;
            }

            if (waited || !await WaitForTeardownsAsync(network, cancellationToken).ConfigureAwait(false))
            {
                throw new CnmUnavailableException(CnmErrorCodes.NoAvailableIPs, subject, $"no available {family} addresses");
            }

            waited = true;
        }
    }

    /// <summary>
    /// Deletes an endpoint. A joined endpoint is refused unless forced (then it leaves first). The record is marked
    /// first, then the driver deletes the endpoint, then the record goes, then the addresses; a crash after the mark
    /// leaves it for the next start to finish, and one after the record is gone leaves addresses that the sweep at the
    /// next start releases.
    /// </summary>
    internal ValueTask DeleteEndpointAsync(Endpoint endpoint, bool force, CancellationToken cancellationToken) =>
        RunAsync("endpoint.delete", async () =>
        {
            if (endpoint.Record.Join is { } join)
            {
                if (!force)
                {
                    throw new CnmConflictException(CnmErrorCodes.ActiveContainer, endpoint.ToString(), $"endpoint is joined to sandbox {Ids.Short(join.SandboxId)}; leave first or force");
                }

                if (FindSandboxById(join.SandboxId) is { } sandbox)
                {
                    await LeaveCoreAsync(endpoint, sandbox, removeInterface: true, convergeGatewayNetwork: true, cancellationToken).ConfigureAwait(false);
                }
                else if (!_sandboxes.ContainsKey(join.SandboxId))
                {
                    await ForgetJoinAsync(endpoint, cancellationToken).ConfigureAwait(false);
                }
            }

            await DeleteEndpointCoreAsync(endpoint, cancellationToken).ConfigureAwait(false);
        }, cancellationToken);

    // A forced delete of an endpoint whose sandbox no longer exists: undo the driver's join and drop the join record
    // (libnetwork's forced delete proceeds without the sandbox too).
    private async ValueTask ForgetJoinAsync(Endpoint endpoint, CancellationToken cancellationToken)
    {
        var network = endpoint.Network;
        await endpoint.Gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (endpoint.Record.Join is null)
            {
                return;
            }

            if (!network.Internal && network.RegisteredDriver.Driver is IExternalConnectivityDriver ext)
            {
                await ext.RevokeExternalConnectivityAsync(network.Id, endpoint.Id, cancellationToken).ConfigureAwait(false);
            }

            await network.RegisteredDriver.Driver.LeaveAsync(network.Id, endpoint.Id, cancellationToken).ConfigureAwait(false);
            var cleared = endpoint.Record with { Join = null };
            endpoint.Version = await _store.Store.PutAsync(CoreStore.EndpointKey(network.Id, endpoint.Id), CoreStore.Serialize(cleared, CoreJsonContext.Default.EndpointRecord), endpoint.Version, StoreDurability.Relaxed, cancellationToken).ConfigureAwait(false);
            endpoint.Record = cleared;
        }
        finally
        {
            endpoint.Gate.Release();
        }
    }

    private async ValueTask DeleteEndpointCoreAsync(Endpoint endpoint, CancellationToken cancellationToken)
    {
        var network = endpoint.Network;
        await network.Gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await endpoint.Gate.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                if (endpoint.Deleted)
                {
                    throw new CnmNotFoundException(CnmErrorCodes.NoSuchEndpoint, endpoint.ToString(), "no such endpoint");
                }

                if (endpoint.Record.Join is { } join)
                {
                    throw new CnmConflictException(CnmErrorCodes.ActiveContainer, endpoint.ToString(), $"endpoint is joined to sandbox {Ids.Short(join.SandboxId)}");
                }

                // The mark goes first: from here the endpoint is being deleted, and a crash leaves it for the next
                // start to finish. Its record and addresses go only once the driver has deleted it.
                await MarkEndpointAsync(endpoint, tearingDown: true, cancellationToken).ConfigureAwait(false);
                _faults.Hit(FaultPoint.EndpointDeleteMarked);
                try
                {
                    await network.RegisteredDriver.Driver.DeleteEndpointAsync(network.Id, endpoint.Id, cancellationToken).ConfigureAwait(false);
                    _faults.Hit(FaultPoint.EndpointDeleteDriverDeleted);
                }
                catch (CnmConflictException)
                {
                    // The driver refuses: the endpoint stays as it was.
                    await MarkEndpointAsync(endpoint, tearingDown: false, CancellationToken.None).ConfigureAwait(false);
                    throw;
                }
                catch (Exception ex)
                {
                    // Gone for the caller (hidden, its name free), but its record and address stay until the
                    // driver's delete succeeds: retried in the background, and at the next start.
                    Log.DriverDeleteEndpointFailed(_logger, ex, network.Driver, endpoint.Id);
                    ScheduleTeardown(endpoint);
                    if (ex is OperationCanceledException)
                    {
                        throw;
                    }

                    return;
                }

                await FinishEndpointDeleteAsync(endpoint, cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                endpoint.Gate.Release();
            }
        }
        finally
        {
            network.Gate.Release();
        }
    }

    private async ValueTask ReleaseEndpointAddressesAsync(Endpoint endpoint, IIpamDriver ipam)
    {
        var record = endpoint.Record;
        foreach (var (poolId, address) in new[] { (record.PoolIdV4, record.Address), (record.PoolIdV6, record.AddressIPv6) })
        {
            if (poolId is null || address is null)
            {
                continue;
            }

            try
            {
                await ipam.ReleaseAddressAsync(poolId, CidrAddress.Parse(address).Address, CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                Log.ReleaseFailed(_logger, ex, $"address {address} of pool {poolId}");
            }
        }
    }

    /// <summary>A wanted address needs a pool of its family to come from: an IPv6 address on a network without IPv6,
    /// or any address on a network whose driver takes no IPAM, would be silently dropped, so it is refused.</summary>
    private static void CheckWantedAddresses(Network network, RegisteredIpam? ipam, string name, EndpointCreateOptions options)
    {
        var subject = $"endpoint \"{name}\"";
        foreach (var (wanted, pools, family) in new[] { (options.IPv4Address, network.IPv4Info, "IPv4"), (options.IPv6Address, network.IPv6Info, "IPv6") })
        {
            if (wanted is null)
            {
                continue;
            }

            if (ipam is null)
            {
                throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidAddress, subject, $"{family} address {wanted} was given, but network \"{network.Name}\" (driver {network.Driver}) assigns no addresses");
            }

            if (pools.Count == 0)
            {
                throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidAddress, subject, $"{family} address {wanted} was given, but network \"{network.Name}\" has no {family} subnet{(family == "IPv6" ? " (IPv6 is not enabled)" : "")}");
            }
        }
    }
}
