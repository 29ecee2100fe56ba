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
    /// <summary>
    /// Creates a network: validates the request, reserves its pools, gateway and auxiliary addresses through IPAM, and
    /// asks the driver to create it. On failure every reservation and driver step is undone.
    /// </summary>
    /// <param name="name">The name.</param>
    /// <param name="driver">The driver's name.</param>
    /// <param name="options">Options.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The network.</returns>
    public ValueTask<Network> CreateNetworkAsync(string name, string driver, NetworkCreateOptions? options = null, CancellationToken cancellationToken = default) =>
        RunAsync("network.create", () => CreateNetworkCoreAsync(name, driver, options ?? new NetworkCreateOptions(), preDefined: false, cancellationToken), cancellationToken);

    /// <summary>Creates one of the controller's own default networks, marked <see cref="Network.PreDefined"/>.</summary>
    private ValueTask<Network> CreatePreDefinedNetworkAsync(string name, string driver, NetworkCreateOptions options, CancellationToken cancellationToken) =>
        RunAsync("network.create", () => CreateNetworkCoreAsync(name, driver, options, preDefined: true, cancellationToken), cancellationToken);

    private async ValueTask<Network> CreateNetworkCoreAsync(string name, string driverName, NetworkCreateOptions options, bool preDefined, CancellationToken cancellationToken)
    {
        Validation.NetworkCreate(name, options);
        CheckConfigurationOptions(name, options);
        if (options.ConfigOnly)
        {
            return await CreateConfigOnlyNetworkAsync(name, options, cancellationToken).ConfigureAwait(false);
        }

        var config = options.ConfigFrom is { } configFrom ? FindConfigNetwork(name, configFrom) : null;
        if (config is not null)
        {
            options = ApplyConfiguration(config, options);
        }

        var driver = await ResolveDriverAsync(driverName, cancellationToken).ConfigureAwait(false);
        var capability = driver.Capability;
        if (options.Scope is { } scope && scope == DriverScope.Local && capability.DataScope != DriverScope.Local)
        {
            throw new CnmConflictException(CnmErrorCodes.InvalidScope, $"network \"{name}\"", $"cannot downgrade network scope: driver \"{driverName}\" is {ScopeName(capability.DataScope)}");
        }

        if (options.Scope == DriverScope.Swarm)
        {
            throw new CnmConflictException(CnmErrorCodes.InvalidScope, $"network \"{name}\"", "swarm scope needs a cluster, and this controller has none");
        }

        RequireGlobalStore(name, options.Scope ?? capability.DataScope);

        var enableIPv6 = options.EnableIPv6 || Flag(options.DriverOptions, NetLabels.EnableIPv6);
        var isInternal = options.Internal || Flag(options.DriverOptions, NetLabels.Internal);
        var ipv4 = ParseIpamConfigs(name, options.IPv4Config, ipv6: false);
        var ipv6 = ParseIpamConfigs(name, options.IPv6Config, ipv6: true);
        if (!enableIPv6 && ipv6.Count > 0)
        {
            throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidOption, $"network \"{name}\"", "IPv6 configuration given but IPv6 is not enabled");
        }

        var ipamName = capability.UsesIpam ? options.IpamDriver ?? _options.DefaultIpamDriver : null;
        if (string.Equals(ipamName, IpamNames.Default, StringComparison.Ordinal))
        {
            ipamName = _options.DefaultIpamDriver;
        }

        var ipam = ipamName is null ? null : await ResolveIpamAsync(ipamName, cancellationToken).ConfigureAwait(false);
        CheckPoolConfigurations(name, ipam, ipv4);
        CheckPoolConfigurations(name, ipam, ipv6);
        var id = options.Id ?? Ids.NewId();

        // The id, name and driver are reserved under the controller gate; the IPAM and driver calls run outside it,
        // so a slow driver or IPAM (a remote plugin) does not hold up other networks' creation or deletion.
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            ThrowIfNetworkTaken(id, name);

            // Configuration-only networks are recorded with driver "null" but are no instance of any driver.
            if (capability.SingleNetwork && _networks.Values.Where(n => !n.ConfigOnly).Select(n => n.Driver).Concat(_creatingNetworks.Select(n => n.Driver)).Any(d => string.Equals(d, driverName, StringComparison.Ordinal)))
            {
                throw new CnmConflictException(CnmErrorCodes.DriverForbidden, $"network \"{name}\"", $"only one instance of \"{driverName}\" network is allowed");
            }

            if (config is not null)
            {
                ReserveConfigNetwork(id, name, config);
            }

            _creatingNetworks.Add((id, name, driverName));
        }
        finally
        {
            _gate.Release();
        }

        try
        {
            var intent = new IntentTracker(_store, new IntentRecord { Id = Ids.NewId(), Kind = IntentKind.CreateNetwork, NetworkId = id, Driver = driverName, IpamDriver = ipamName }, StoreDurability.Durable);
            await intent.BeginAsync(cancellationToken).ConfigureAwait(false);
            var published = false;
            NetworkRecord? created = null;
            try
            {
                _faults.Hit(FaultPoint.NetworkCreateIntentRecorded);
                var record = created = new NetworkRecord
                {
                    Id = id,
                    Name = name,
                    Driver = driverName,
                    Scope = ScopeName(options.Scope ?? capability.DataScope),
                    Created = _time.GetUtcNow(),
                    PreDefined = preDefined,
                    EnableIPv6 = enableIPv6,
                    Internal = isInternal,
                    Attachable = options.Attachable,
                    DisableDns = options.DisableDns,
                    IpamDriver = ipamName,
                    IpamOptions = new(options.IpamOptions, StringComparer.Ordinal),
                    DriverOptions = new(options.DriverOptions, StringComparer.Ordinal),
                    Labels = new(options.Labels, StringComparer.Ordinal),
                    IPv4Config = ipv4.Select(c => c.Record).ToList(),
                    IPv6Config = ipv6.Select(c => c.Record).ToList(),
                    ConfigFrom = config?.Name,
                };

                if (ipam is not null)
                {
                    // The network's scope picks the address space (libnetwork's DataScope): a global-scope network's pools
                    // are the cluster's, whatever its driver's own scope.
                    var space = (options.Scope ?? capability.DataScope) == DriverScope.Local ? ipam.AddressSpaces.Local : ipam.AddressSpaces.Global;
                    record.IPv4Info.AddRange(await AllocatePoolsAsync(ipam, space, id, record.IpamOptions, ipv4.Count == 0 ? [ParsedIpamConfig.Empty] : ipv4, false, intent, cancellationToken).ConfigureAwait(false));
                    if (enableIPv6)
                    {
                        record.IPv6Info.AddRange(await AllocatePoolsAsync(ipam, space, id, record.IpamOptions, ipv6.Count == 0 ? [ParsedIpamConfig.Empty] : ipv6, true, intent, cancellationToken).ConfigureAwait(false));
                    }
                }

                _faults.Hit(FaultPoint.NetworkCreatePoolsReserved);
                var network = new Network(this, record, 0, driver);
                if (AllocatorOf(driver) is { } allocator)
                {
                    // Cluster-wide resources first (a swarm manager's part); what the driver allocated is passed to
                    // its create and kept in the record, as every node must create the network with it.
                    var allocated = await allocator.AllocateNetworkAsync(id, new Dictionary<string, string>(record.DriverOptions, StringComparer.Ordinal), network.ToIpamData(ipv6: false), network.ToIpamData(ipv6: true), cancellationToken).ConfigureAwait(false);
                    foreach (var (key, value) in allocated)
                    {
                        record.DriverOptions[key] = value;
                    }
                }

                await driver.Driver.CreateNetworkAsync(
                    new NetworkCreateRequest
                    {
                        NetworkId = id,
                        NetworkName = name,
                        DriverOptions = record.DriverOptions,
                        Labels = record.Labels,
                        EnableIPv6 = enableIPv6,
                        Internal = isInternal,
                        IPv4Data = network.ToIpamData(ipv6: false),
                        IPv6Data = network.ToIpamData(ipv6: true),
                    },
                    cancellationToken).ConfigureAwait(false);
                _faults.Hit(FaultPoint.NetworkCreateDriverCreated);

                // A global-scope network is published for the cluster first (create-only), then committed here.
                await PublishNetworkAsync(record, cancellationToken).ConfigureAwait(false);
                published = true;
                var versions = await _store.Store.CommitAsync(
                    [
                        StoreOperation.Put(CoreStore.NetworkKey(id), CoreStore.Serialize(record, CoreJsonContext.Default.NetworkRecord), StoreVersion.Absent),
                        intent.Complete(),
                    ],
                    cancellationToken).ConfigureAwait(false);
                network.Version = versions[0];
                _faults.Hit(FaultPoint.NetworkCreateCommitted);
                await _gate.WaitAsync(CancellationToken.None).ConfigureAwait(false);
                _networks[id] = network;
                _creatingNetworks.Remove((id, name, driverName));
                _creatingFromConfig.Remove(id);
                _gate.Release();
                Log.NetworkCreated(_logger, name, id, driverName);
                return network;
            }
            catch
            {
                // A controller stopped under the operation touches nothing more: its components are disposed, and the
                // intent it leaves is rolled back by the next start, as after a crash.
                if (Volatile.Read(ref _disposed) != 0)
                {
                    throw;
                }

                if (published && created is not null)
                {
                    await UnpublishNetworkAsync(created).ConfigureAwait(false);
                }

                await RollbackAsync(intent.Intent, CancellationToken.None).ConfigureAwait(false);
                await intent.AbandonAsync().ConfigureAwait(false);
                throw;
            }
        }
        catch
        {
            await _gate.WaitAsync(CancellationToken.None).ConfigureAwait(false);
            _creatingNetworks.Remove((id, name, driverName));
            _creatingFromConfig.Remove(id);
            _gate.Release();
            throw;
        }
    }

    /// <summary>Under the controller gate: refuses an id, or (unless duplicates are allowed) a name, that a network
    /// has or is being created with.</summary>
    private void ThrowIfNetworkTaken(string id, string name)
    {
        var existing = _networks.Values.Select(n => (n.Id, n.Name)).Concat(_creatingNetworks.Select(n => (n.Id, n.Name))).ToList();
        if (existing.Any(n => string.Equals(n.Id, id, StringComparison.Ordinal)))
        {
            throw new CnmConflictException(CnmErrorCodes.NetworkExists, $"network id \"{id}\"", "a network with that id already exists");
        }

        if (_options.RejectDuplicateNetworkNames && existing.Any(n => string.Equals(n.Name, name, StringComparison.Ordinal)))
        {
            throw new CnmConflictException(CnmErrorCodes.NetworkExists, $"network \"{name}\"", "a network with that name already exists");
        }
    }

    /// <summary>Requests the pools of one address family with their gateways and auxiliary addresses, recording each
    /// reservation in the intent before the next one is made.</summary>
    private static async ValueTask<List<IpamInfoRecord>> AllocatePoolsAsync(
        RegisteredIpam ipam,
        string addressSpace,
        string networkId,
        IReadOnlyDictionary<string, string> ipamOptions,
        IReadOnlyList<ParsedIpamConfig> configs,
        bool ipv6,
        IntentTracker intent,
        CancellationToken cancellationToken)
    {
        // An IPAM that tracks owners is swept at start, one that releases by owner is released by the intent's owner;
        // others need each reservation on record before the next request.
        var recordEach = ipam.Ipam is not IIpamOwnedAllocations && ipam.ReleaseByOwner is null;
        var owner = NetworkOwner(networkId);
        var result = new List<IpamInfoRecord>();
        foreach (var config in configs)
        {
            var poolOptions = new Dictionary<string, string>(ipamOptions, StringComparer.Ordinal) { [NetLabels.IpamOwner] = owner };
            var pool = await ipam.Ipam.RequestPoolAsync(
                new PoolRequest { AddressSpace = addressSpace, Pool = config.Subnet?.ToString(), SubPool = config.IPRange?.ToString(), Options = poolOptions, IPv6 = ipv6 },
                cancellationToken).ConfigureAwait(false);
            intent.Intent.Pools.Add(pool.PoolId);
            if (recordEach)
            {
                await intent.SaveAsync(cancellationToken).ConfigureAwait(false);
            }

            var addressOptions = new Dictionary<string, string>(ipamOptions, StringComparer.Ordinal) { [NetLabels.IpamOwner] = owner };
            CidrAddress? gateway = null;
            if (config.Gateway is null && pool.Meta.TryGetValue(NetLabels.RequestAddressTypeGateway, out var chosen))
            {
                gateway = CidrAddress.Parse(chosen);
            }
            else
            {
                var gatewayOptions = new Dictionary<string, string>(addressOptions, StringComparer.Ordinal) { [NetLabels.RequestAddressType] = NetLabels.RequestAddressTypeGateway };
                var allocated = await ipam.Ipam.RequestAddressAsync(pool.PoolId, config.Gateway, gatewayOptions, cancellationToken).ConfigureAwait(false);
                if (allocated.Address is { } g)
                {
                    gateway = g;
                    intent.Intent.Addresses.Add([pool.PoolId, g.Address.ToString()]);
                    if (recordEach)
                    {
                        await intent.SaveAsync(cancellationToken).ConfigureAwait(false);
                    }
                }
            }

            var aux = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var (auxName, auxAddress) in config.AuxAddresses)
            {
                if (!pool.Pool.Contains(auxAddress))
                {
                    throw new CnmConflictException(CnmErrorCodes.IPOutOfRange, $"auxiliary address \"{auxName}\"", $"{auxAddress} is not in pool {pool.Pool}");
                }

                try
                {
                    var allocated = await ipam.Ipam.RequestAddressAsync(pool.PoolId, auxAddress, addressOptions, cancellationToken).ConfigureAwait(false);
                    if (allocated.Address is { } a)
                    {
                        intent.Intent.Addresses.Add([pool.PoolId, a.Address.ToString()]);
                        if (recordEach)
                        {
                            await intent.SaveAsync(cancellationToken).ConfigureAwait(false);
                        }
                    }
                }
                catch (CnmException ex) when (ex.Code == CnmErrorCodes.IPOutOfRange)
                {
                    // Outside the sub-pool but inside the pool: nothing to reserve (libnetwork's rule).
                }

                aux[auxName] = new CidrAddress(auxAddress, pool.Pool.PrefixLength).ToString();
            }

            result.Add(new IpamInfoRecord
            {
                PoolId = pool.PoolId,
                AddressSpace = addressSpace,
                Pool = pool.Pool.ToString(),
                Gateway = gateway?.ToString(),
                AuxAddresses = aux,
                Meta = new(pool.Meta, StringComparer.Ordinal),
            });
        }

        return result;
    }

    /// <summary>
    /// Deletes a network. Refused for a pre-defined network (one of the controller's own defaults,
    /// <see cref="CnmErrorCodes.PreDefinedNetwork"/>) and while it has endpoints. The record is marked, then the driver is asked, so a driver
    /// that refuses (<see cref="CnmConflictException"/>) leaves the network exactly as it was; after another driver
    /// failure the network is hidden but kept, with its pools, and its delete retried in the background and at the next
    /// start. IPAM reservations are released last; a crash before that is swept at the next start.
    /// </summary>
    internal ValueTask DeleteNetworkAsync(Network network, CancellationToken cancellationToken) =>
        RunAsync("network.delete", async () =>
        {
            if (network.ConfigOnly)
            {
                await DeleteConfigOnlyNetworkAsync(network, cancellationToken).ConfigureAwait(false);
                return;
            }

            await network.Gate.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                if (!_networks.ContainsKey(network.Id) || network.Deleting)
                {
                    throw new CnmNotFoundException(CnmErrorCodes.NoSuchNetwork, network.ToString(), "no such network");
                }

                if (network.PreDefined)
                {
                    throw new CnmConflictException(CnmErrorCodes.PreDefinedNetwork, network.ToString(), $"{network.Name} is a pre-defined network and cannot be removed");
                }

                if (network.EndpointCount > 0)
                {
                    throw new CnmConflictException(CnmErrorCodes.ActiveEndpoints, network.ToString(), $"network has active endpoints ({string.Join(", ", network.Endpoints.Select(e => e.Name))})");
                }

                // A global network with endpoints on other hosts stays (checked in the global store).
                await CheckNoRemoteEndpointsAsync(network, cancellationToken).ConfigureAwait(false);

                // Endpoints of deleted sandboxes may still hold addresses of the network's pools.
                await WaitForTeardownsAsync(network, cancellationToken).ConfigureAwait(false);
                foreach (var marked in _markedEndpoints.Keys.Where(e => ReferenceEquals(e.Network, network)).ToArray())
                {
                    // A teardown that gave up: one more try, else the network cannot go (the endpoint still exists).
                    if (!await TeardownEndpointOnceAsync(marked, cancellationToken).ConfigureAwait(false))
                    {
                        throw new CnmConflictException(CnmErrorCodes.ActiveEndpoints, network.ToString(), $"endpoint {Ids.Short(marked.Id)} is still being deleted: its driver failed to delete it");
                    }
                }

                // The mark goes first: from here the network is being deleted, and a crash leaves it for the next
                // start to finish. Its record and pools go only once the driver has deleted it.
                await MarkNetworkAsync(network, tearingDown: true, cancellationToken).ConfigureAwait(false);
                _faults.Hit(FaultPoint.NetworkDeleteMarked);
                try
                {
                    await network.RegisteredDriver.Driver.DeleteNetworkAsync(network.Id, cancellationToken).ConfigureAwait(false);
                    _faults.Hit(FaultPoint.NetworkDeleteDriverDeleted);
                }
                catch (CnmConflictException)
                {
                    // The driver refuses: the network stays as it was.
                    await MarkNetworkAsync(network, tearingDown: false, CancellationToken.None).ConfigureAwait(false);
                    throw;
                }
                catch (Exception ex)
                {
                    // Gone for the caller, but its record and pools stay until the driver's delete succeeds:
                    // retried in the background, and at the next start.
                    Log.DriverDeleteNetworkFailed(_logger, ex, network.Driver, network.Id);
                    ScheduleTeardown(network);
                    if (ex is OperationCanceledException)
                    {
                        throw;
                    }

                    return;
                }

                await FinishNetworkDeleteAsync(network, cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                network.Gate.Release();
            }
        }, cancellationToken);

    private async ValueTask ReleaseNetworkIpamAsync(Network network, IIpamDriver ipam)
    {
        foreach (var pool in network.AllPools)
        {
            try
            {
                foreach (var aux in pool.AuxAddresses.Values)
                {
                    await ReleaseIgnoringMissingAsync(ipam, pool.PoolId, aux.Address).ConfigureAwait(false);
                }

                if (pool.Gateway is { } gateway && !pool.Meta.ContainsKey(NetLabels.RequestAddressTypeGateway))
                {
                    await ReleaseIgnoringMissingAsync(ipam, pool.PoolId, gateway.Address).ConfigureAwait(false);
                }

                await ipam.ReleasePoolAsync(pool.PoolId, CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                Log.ReleaseFailed(_logger, ex, $"pool {pool.PoolId}");
            }
        }
    }

    private static async ValueTask ReleaseIgnoringMissingAsync(IIpamDriver ipam, string poolId, IPAddress address)
    {
        try
        {
            await ipam.ReleaseAddressAsync(poolId, address, CancellationToken.None).ConfigureAwait(false);
        }
        catch (CnmException ex) when (ex.Kind is CnmErrorKind.NotFound or CnmErrorKind.InvalidArgument)
        {
            // Already released (for example an aux address outside the sub-pool that was never reserved).
        }
    }

    /// <summary>Lets the IPAM refuse a configuration (one that leaves no address for an endpoint, say) before anything
    /// is reserved; how many addresses a pool offers is the IPAM's rule, not the core's.</summary>
    private static void CheckPoolConfigurations(string network, RegisteredIpam? ipam, IReadOnlyList<ParsedIpamConfig> configs)
    {
        if (ipam?.Ipam is not IIpamPoolConfigurationCheck check)
        {
            return;
        }

        foreach (var config in configs)
        {
            if (config.Subnet is { } subnet)
            {
                check.CheckPoolConfiguration($"network \"{network}\"", new PoolConfiguration(subnet, config.IPRange, config.Gateway, config.AuxAddresses.Select(a => a.Address).ToArray()));
            }
        }
    }

    private static bool Flag(IReadOnlyDictionary<string, string> options, string key) =>
        options.TryGetValue(key, out var value) && bool.TryParse(value, out var flag) && flag;

    /// <summary>An IPAM configuration, parsed and checked before anything is reserved.</summary>
    private sealed record ParsedIpamConfig(IPNetwork? Subnet, IPNetwork? IPRange, IPAddress? Gateway, IReadOnlyList<(string Name, IPAddress Address)> AuxAddresses, IpamConfigRecord Record)
    {
        public static ParsedIpamConfig Empty { get; } = new(null, null, null, [], new IpamConfigRecord());
    }

    private static List<ParsedIpamConfig> ParseIpamConfigs(string network, IReadOnlyList<IpamConfig> configs, bool ipv6)
    {
        var subject = $"network \"{network}\"";
        var family = ipv6 ? System.Net.Sockets.AddressFamily.InterNetworkV6 : System.Net.Sockets.AddressFamily.InterNetwork;
        var result = new List<ParsedIpamConfig>(configs.Count);
        foreach (var config in configs)
        {
            IPNetwork? subnet = null;
            if (config.Subnet is not null)
            {
                if (!IPNetworks.TryParse(config.Subnet, allowHostBits: false, out var parsed) || parsed.BaseAddress.AddressFamily != family)
                {
                    throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidPool, subject, $"invalid {(ipv6 ? "IPv6" : "IPv4")} subnet \"{config.Subnet}\"");
                }

                subnet = parsed;
            }

            IPNetwork? range = null;
            if (config.IPRange is not null)
            {
                if (subnet is null || !IPNetworks.TryParse(config.IPRange, allowHostBits: false, out var parsed) || parsed.BaseAddress.AddressFamily != family
                    || !subnet.Value.Contains(parsed.BaseAddress) || parsed.PrefixLength < subnet.Value.PrefixLength)
                {
                    throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidSubPool, subject, $"invalid IP range \"{config.IPRange}\": it must be a subnet of the network's subnet");
                }

                range = parsed;
            }

            IPAddress? gateway = null;
            if (config.Gateway is not null)
            {
                if (!IPAddressText.TryParseStrict(config.Gateway, out gateway) || gateway.AddressFamily != family)
                {
                    throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidGateway, subject, $"invalid gateway \"{config.Gateway}\"");
                }

                if (subnet is null || !subnet.Value.Contains(gateway))
                {
                    throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidGateway, subject, $"gateway {gateway} is not in subnet {config.Subnet ?? "(none given)"}");
                }
            }

            var aux = new List<(string, IPAddress)>();
            foreach (var (auxName, auxText) in config.AuxAddresses)
            {
                if (!IPAddressText.TryParseStrict(auxText, out var auxAddress) || auxAddress.AddressFamily != family)
                {
                    throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidAddress, subject, $"invalid auxiliary address {auxName}=\"{auxText}\"");
                }

                if (subnet is null || !subnet.Value.Contains(auxAddress))
                {
                    throw new CnmInvalidArgumentException(CnmErrorCodes.IPOutOfRange, subject, $"auxiliary address {auxName}={auxAddress} is not in subnet {config.Subnet ?? "(none given)"}");
                }

                aux.Add((auxName, auxAddress));
            }

            result.Add(new ParsedIpamConfig(subnet, range, gateway, aux, new IpamConfigRecord
            {
                Subnet = config.Subnet,
                IPRange = config.IPRange,
                Gateway = config.Gateway,
                AuxAddresses = new(config.AuxAddresses, StringComparer.Ordinal),
            }));
        }

        if (configs.Count > 0)
        {
            for (var i = 0; i < result.Count; i++)
            {
                for (var j = i + 1; j < result.Count; j++)
                {
                    if (result[i].Subnet is { } a && result[j].Subnet is { } b && a.Overlaps(b))
                    {
                        throw new CnmInvalidArgumentException(CnmErrorCodes.PoolOverlap, subject, $"subnets {a} and {b} overlap");
                    }
                }
            }
        }

        return result;
    }
}
