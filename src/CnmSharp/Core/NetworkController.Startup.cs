using System.Diagnostics.Metrics;
using CnmSharp.Core;
using CnmSharp.Core.Persistence;
using CnmSharp.Diagnostics;
using CnmSharp.Drivers;
using CnmSharp.Ipam;
using CnmSharp.Plugins;
using CnmSharp.Sandboxes;
using CnmSharp.Store;
using Microsoft.Extensions.Logging;

namespace CnmSharp;

/// <summary>Everything a controller is built from (see <see cref="NetworkControllerBuilder"/>).</summary>
internal sealed record ControllerStartInfo
{
    public required CnmOptions Options { get; init; }
    public required IKeyValueStore Store { get; init; }
    public bool OwnsStore { get; init; }

    /// <summary>The cluster-wide store (global-scope networks, their endpoints, <c>GlobalDefault</c>), or null.</summary>
    public ISharedKeyValueStore? GlobalStore { get; init; }
    public bool OwnsGlobalStore { get; init; }
    public required IReadOnlyList<INetworkDriverFactory> Drivers { get; init; }
    public required IReadOnlyList<IIpamDriverFactory> Ipams { get; init; }
    public required ISandboxNetworking SandboxNetworking { get; init; }
    public bool OwnsSandboxNetworking { get; init; }
    public CnmSharp.Firewall.IFirewallBackend? Firewall { get; init; }
    public required Sandboxes.Files.ISandboxFiles SandboxFiles { get; init; }
    public required ILoggerFactory LoggerFactory { get; init; }
    public IMeterFactory? MeterFactory { get; init; }
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;
    public IServiceProvider? Services { get; init; }

    /// <summary>The fault injector (tests only), or null.</summary>
    public FaultPoints? Faults { get; init; }

    /// <summary>Creates the in-process embedded DNS server (null: none, for sandbox networking that is not the kernel's).</summary>
    public Func<Dns.IEmbeddedDns>? EmbeddedDnsFactory { get; init; }
}

public sealed partial class NetworkController
{
    /// <summary>Networks in the store whose driver is not registered (yet): loaded when it is.</summary>
    private readonly List<(NetworkRecord Record, long Version)> _unloadedNetworks = [];

    /// <summary>Set once the store's objects are in memory; a driver registered later adopts its networks.</summary>
    private bool _loaded;

    /// <summary>Starts a controller: loads its id, creates its drivers and IPAMs, loads the CNM objects, finishes or
    /// rolls back operations a crash interrupted, and creates the default networks on a fresh store.</summary>
    internal static async ValueTask<NetworkController> StartAsync(ControllerStartInfo info, CancellationToken cancellationToken)
    {
        var validation = new CnmOptionsValidator().Validate(null, info.Options);
        if (validation.Failed)
        {
            throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidOption, "controller options", validation.FailureMessage);
        }

        info.Options.Plugins.Validate();

        if (info.Options.ReadOnly)
        {
            return await StartReadOnlyAsync(info, cancellationToken).ConfigureAwait(false);
        }

        var store = new CoreStore(info.Store);
        var record = await GetOrCreateControllerRecordAsync(store, info.Options.ControllerId, cancellationToken).ConfigureAwait(false);
        var controller = new NetworkController(info, record.Id);
        try
        {
            // Everything a start does (drivers restoring their kernel objects, recovery, the default networks) runs
            // under the state lock, alone: another process's operation cannot interleave with it.
            await controller._lease.EnterAsync(exclusive: true, cancellationToken).ConfigureAwait(false);
            controller._lease.MarkScope();
            try
            {
                foreach (var factory in info.Drivers)
                {
                    await controller.RegisterDriverAsync(factory, cancellationToken).ConfigureAwait(false);
                }

                foreach (var factory in info.Ipams)
                {
                    await controller.RegisterIpamDriverAsync(factory, cancellationToken).ConfigureAwait(false);
                }

                await controller.LoadAsync(cancellationToken).ConfigureAwait(false);
                await controller.ReplayAllIpamsAsync(cancellationToken).ConfigureAwait(false);
                await controller.ResolveStoredPluginsAsync(cancellationToken).ConfigureAwait(false);
                await controller.RecoverCoreAsync(cancellationToken).ConfigureAwait(false);
                var entry = await store.Store.GetAsync(CoreStore.ControllerKey, cancellationToken).ConfigureAwait(false);
                var current = entry is null ? record : CoreStore.Deserialize(entry, CoreJsonContext.Default.ControllerRecord);
                if (!current.DefaultsCreated)
                {
                    if (info.Options.CreateDefaultNetworks)
                    {
                        await controller.CreateDefaultNetworksAsync(cancellationToken).ConfigureAwait(false);
                    }

                    await store.Store.PutAsync(CoreStore.ControllerKey, CoreStore.Serialize(current with { DefaultsCreated = true }, CoreJsonContext.Default.ControllerRecord), entry?.Version ?? StoreVersion.Absent, cancellationToken).ConfigureAwait(false);
                }

                // The cluster: liveness, this host's endpoints published again, others' networks and endpoints.
                await controller.StartGlobalAsync(cancellationToken).ConfigureAwait(false);

                // Sandboxes a crash left without (or with a needless) gateway network endpoint: made whole.
                await controller.ConvergeGatewayNetworksAsync(cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                await controller._lease.ExitAsync().ConfigureAwait(false);
            }

            Log.ControllerStarted(controller._logger, record.Id, info.Options.HostNamespacePath ?? "(own)", controller._networks.Count, controller._networks.Values.Sum(n => n.EndpointCount), controller._sandboxes.Count);

            // The resolvers of the sandboxes that had one come back with every record (a restart loses none).
            await controller.UpdateDnsAsync(cancellationToken).ConfigureAwait(false);
            return controller;
        }
        catch
        {
            await controller.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>
    /// Opens the state for reading (<see cref="CnmOptions.ReadOnly"/>): under the state lock, so that no other
    /// process's operation is half visible, the records are read into memory, and that is all. Drivers are registered
    /// by name only (<see cref="ReadOnlyDriver"/>); nothing is created, recovered, quarantined or written.
    /// </summary>
    private static async ValueTask<NetworkController> StartReadOnlyAsync(ControllerStartInfo info, CancellationToken cancellationToken)
    {
        var entry = await info.Store.GetAsync(CoreStore.ControllerKey, cancellationToken).ConfigureAwait(false);
        var record = entry is null ? null : CoreStore.Deserialize(entry, CoreJsonContext.Default.ControllerRecord);
        if (record is not { DefaultsCreated: true })
        {
            // A fresh store (or one whose first start did not finish): a read-write start initializes it.
            throw new CnmUnavailableException(CnmErrorCodes.StateNotInitialized, "controller state", "the store has not been initialized by a read-write controller yet");
        }

        var controller = new NetworkController(info, record.Id);
        try
        {
            await controller._lease.EnterAsync(exclusive: false, cancellationToken).ConfigureAwait(false);
            controller._lease.MarkScope();
            try
            {
                foreach (var name in info.Drivers.Select(f => f.Name).Distinct(StringComparer.Ordinal))
                {
                    controller._registry.Add(new RegisteredDriver(name, new ReadOnlyDriver(name), DriverCapability.LocalScope));
                }

                await controller.RegisterStoredPluginNamesAsync(cancellationToken).ConfigureAwait(false);
                await controller.LoadAsync(cancellationToken).ConfigureAwait(false);
                await controller.ReadGlobalAsync(cancellationToken).ConfigureAwait(false);
                await controller.CheckRecoveryPendingAsync(cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                await controller._lease.ExitAsync().ConfigureAwait(false);
            }

            Log.ControllerStarted(controller._logger, record.Id, info.Options.HostNamespacePath ?? "(own)", controller._networks.Count, controller._networks.Values.Sum(n => n.EndpointCount), controller._sandboxes.Count);
            return controller;
        }
        catch
        {
            await controller.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>
    /// Read-only start: a stored network whose driver is no registered driver but a plugin that discovery finds (a
    /// socket or spec file, no activation) is shown too, through a <see cref="ReadOnlyDriver"/> of that name. A name
    /// discovery does not find stays unloaded, as in a read-write start.
    /// </summary>
    private async ValueTask RegisterStoredPluginNamesAsync(CancellationToken cancellationToken)
    {
        if (!_options.Plugins.Enabled)
        {
            return;
        }

        var discovery = new PluginDiscovery(_options.Plugins, _logger);
        foreach (var (network, _) in await ListNetworksAsync(cancellationToken).ConfigureAwait(false))
        {
            var name = network.Driver;
            if (!network.ConfigOnly && !_registry.ContainsDriver(name) && PluginDiscovery.IsValidName(name) && discovery.Find(name) is not null)
            {
                _registry.Add(new RegisteredDriver(name, new ReadOnlyDriver(name), DriverCapability.LocalScope));
            }
        }
    }

    /// <summary>Reads the controller record, creating it on a fresh store (another process may create it at the same
    /// moment: then its record is the one).</summary>
    private static async ValueTask<ControllerRecord> GetOrCreateControllerRecordAsync(CoreStore store, string? requestedId, CancellationToken cancellationToken)
    {
        while (true)
        {
            var entry = await store.Store.GetAsync(CoreStore.ControllerKey, cancellationToken).ConfigureAwait(false);
            if (entry is not null)
            {
                return CoreStore.Deserialize(entry, CoreJsonContext.Default.ControllerRecord);
            }

            var record = new ControllerRecord { Id = requestedId ?? Ids.NewId() };
            try
            {
                await store.Store.PutAsync(CoreStore.ControllerKey, CoreStore.Serialize(record, CoreJsonContext.Default.ControllerRecord), StoreVersion.Absent, cancellationToken).ConfigureAwait(false);
                return record;
            }
            catch (CnmConflictException)
            {
                // Created by another process in between: read theirs.
            }
        }
    }

    private async ValueTask CreateDefaultNetworksAsync(CancellationToken cancellationToken)
    {
        foreach (var spec in _options.DefaultNetworks ?? DefaultNetwork.Standard())
        {
            if (!_registry.ContainsDriver(spec.Driver) || FindNetworkByName(spec.Name) is not null)
            {
                continue;
            }

            await CreatePreDefinedNetworkAsync(spec.Name, spec.Driver, new NetworkCreateOptions { DriverOptions = new Dictionary<string, string>(spec.DriverOptions, StringComparer.Ordinal), DisableDns = spec.DisableDns }, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Loads networks, endpoints and sandboxes from the store into memory. Objects whose driver is not
    /// registered stay in the store untouched.</summary>
    private async ValueTask LoadAsync(CancellationToken cancellationToken)
    {
        foreach (var (record, version) in await ListNetworksAsync(cancellationToken).ConfigureAwait(false))
        {
            if (LoadedNetwork(record, version) is { } network)
            {
                _networks[record.Id] = network;
            }
            else
            {
                _unloadedNetworks.Add((record, version));
            }
        }

        foreach (var (record, version) in await ListSandboxesAsync(cancellationToken).ConfigureAwait(false))
        {
            _sandboxes[record.Id] = new Sandbox(this, record, version);
            _containerSandboxes[record.ContainerId] = record.Id;
        }

        foreach (var (record, version) in await ListEndpointsAsync(CoreStore.EndpointPrefix, cancellationToken).ConfigureAwait(false))
        {
            if (_networks.TryGetValue(record.NetworkId, out var network) && LoadEndpoint(network, record, version) is { } tearingDown)
            {
                _recoveredTeardowns.Add(tearingDown);
            }
        }

        _loaded = true;
    }

    /// <summary>Puts a stored endpoint in memory: in its network and, when joined, in its sandbox. Returns it when
    /// it is marked for teardown instead (its sandbox was deleted): the caller finishes that.</summary>
    private Endpoint? LoadEndpoint(Network network, EndpointRecord record, long version)
    {
        var endpoint = new Endpoint(network, record, version);
        if (record.TearingDown)
        {
            return endpoint;
        }

        network.TryAddEndpoint(endpoint);
        if (record.Join is { } join && _sandboxes.TryGetValue(join.SandboxId, out var sandbox))
        {
            sandbox.AddEndpoint(endpoint);
        }

        return null;
    }

    /// <summary>
    /// Loads the networks of a driver registered after start (a plugin that came up later): the networks, their
    /// endpoints and their places in sandboxes, as a start would have; endpoints marked for teardown are torn down.
    /// </summary>
    private async ValueTask AdoptNetworksAsync(string driverName, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var adopted = _unloadedNetworks.Where(n => string.Equals(n.Record.Driver, driverName, StringComparison.Ordinal)).ToList();
            foreach (var (record, version) in adopted)
            {
                var network = new Network(this, record, version, _registry.GetDriver(driverName));
                var tearingDown = new List<Endpoint>();
                foreach (var (endpointRecord, endpointVersion) in await ListEndpointsAsync(CoreStore.EndpointPrefix + record.Id + "/", cancellationToken).ConfigureAwait(false))
                {
                    if (LoadEndpoint(network, endpointRecord, endpointVersion) is { } endpoint)
                    {
                        tearingDown.Add(endpoint);
                    }
                }

                _networks[record.Id] = network;
                _unloadedNetworks.Remove((record, version));
                foreach (var endpoint in tearingDown)
                {
                    ScheduleTeardown(endpoint);
                }

                Log.NetworkAdopted(_logger, record.Name, record.Id, driverName, network.EndpointCount);
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>
    /// Makes the state whole after a crash: rolls back every recorded intent (the same undo code an in-process failure
    /// runs), removes sandboxes whose namespace is gone, and releases IPAM pools and addresses that no object owns.
    /// </summary>
    private async ValueTask RecoverCoreAsync(CancellationToken cancellationToken)
    {
        await RecoverIntentsAsync(cancellationToken).ConfigureAwait(false);

        // Deletes a crash interrupted (marked sandboxes, endpoints and networks): finished now, before the sweep
        // looks for addresses without owners.
        await RecoverMarkedDeletesAsync(cancellationToken).ConfigureAwait(false);
        foreach (var sandbox in _sandboxes.Values.ToArray())
        {
            if (!sandbox.UsesHostNamespace && !await _sandboxNetworking.NamespaceExistsAsync(sandbox.Key, cancellationToken).ConfigureAwait(false))
            {
                Log.StaleSandbox(_logger, sandbox.Id, sandbox.Key);
                try
                {
                    await DeleteSandboxAsync(sandbox, cancellationToken).ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    // Best effort: the sandbox stays listed and can be deleted later; one failing driver must not
                    // keep the controller from starting.
                    Log.RollbackStepFailed(_logger, ex, $"remove stale sandbox {sandbox.Id}", "recovery");
                }
            }
        }

        // Stale sandboxes' endpoints were scheduled for teardown: their addresses must be released by the teardown,
        // not found ownerless by the sweep (which counts endpoints still marked as owners).
        await WaitForFirstTeardownAttemptsAsync(cancellationToken).ConfigureAwait(false);
        await SweepIpamAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Releases what IPAMs hold for objects that do not exist: pools no network references, and addresses
    /// whose recorded owner is neither a live endpoint nor the network of the pool.</summary>
    private async ValueTask SweepIpamAsync(CancellationToken cancellationToken)
    {
        foreach (var registered in _registry.Ipams)
        {
            if (registered.Ipam is not IIpamOwnedAllocations owned)
            {
                continue;
            }

            var poolOwners = _networks.Values
                .Where(n => string.Equals(n.IpamDriver, registered.Name, StringComparison.Ordinal))
                .SelectMany(n => n.AllPools.Select(p => (p.PoolId, Network: n)))
                .ToDictionary(x => x.PoolId, x => x.Network, StringComparer.Ordinal);

            // Networks whose driver is not registered are not loaded, but they still exist: keep what they hold.
            var unloadedPools = _unloadedNetworks
                .Select(n => n.Record)
                .Where(n => string.Equals(n.IpamDriver, registered.Name, StringComparison.Ordinal))
                .SelectMany(n => n.IPv4Info.Concat(n.IPv6Info).Select(p => p.PoolId))
                .ToHashSet(StringComparer.Ordinal);

            // Pools of the cluster's global networks (other hosts' endpoints hold their addresses) are not this
            // host's to sweep.
            unloadedPools.UnionWith(await GlobalPoolIdsAsync(cancellationToken).ConfigureAwait(false));
            foreach (var poolId in await owned.GetPoolIdsAsync(cancellationToken).ConfigureAwait(false))
            {
                if (unloadedPools.Contains(poolId))
                {
                    continue;
                }

                if (!poolOwners.TryGetValue(poolId, out var network))
                {
                    Log.ReleasedOrphanPool(_logger, poolId);
                    await registered.Ipam.ReleasePoolAsync(poolId, cancellationToken).ConfigureAwait(false);
                    continue;
                }

                var live = network.Endpoints.Concat(_markedEndpoints.Keys.Where(e => ReferenceEquals(e.Network, network)))
                    .Select(e => e.Id).Append(NetworkOwner(network.Id)).ToHashSet(StringComparer.Ordinal);
                foreach (var allocation in await owned.GetAllocationsAsync(poolId, cancellationToken).ConfigureAwait(false))
                {
                    if (allocation.Owner is { Length: > 0 } owner && !live.Contains(owner))
                    {
                        Log.ReleasedOrphanAddress(_logger, allocation.Address.ToString(), poolId, owner);
                        await registered.Ipam.ReleaseAddressAsync(poolId, allocation.Address, cancellationToken).ConfigureAwait(false);
                    }
                }
            }
        }
    }

    /// <summary>
    /// What the core itself may have done in a join before it failed or the process died, undone from the sandbox's
    /// committed state (the joining endpoint is not in its endpoint list): the gateway is converged again as if the
    /// joining endpoint had taken it (revoking it is a no-op if it had not, and programming the rightful owner again is
    /// idempotent), its hosts lines go, resolv.conf is written again from the committed record, and its interface is
    /// removed under either name it may have had.
    /// </summary>
    private void AddJoinUndoSteps(IntentRecord intent, string endpointId, List<(string, Func<ValueTask>)> steps, CancellationToken cancellationToken)
    {
        if (intent.SandboxId is not { } sandboxId || !_sandboxes.TryGetValue(sandboxId, out var sandbox))
        {
            return;
        }

        if (FindEndpoint(endpointId) is { } endpoint)
        {
            steps.Add(("restore gateway", async () =>
            {
                var touched = new Dictionary<Endpoint, EndpointRecord>();
                // As if nothing the core installed were there: the rightful routes go in again (a route that exists is
                // kept); the joining endpoint's own routes go with its interface, which the steps below remove.
                await ConvergeGatewayAsync(sandbox, sandbox.Record with { ExternalConnectivityEndpointId = endpointId, GatewayRoutes = [] }, endpoint, sandboxGoing: false, touched, cancellationToken).ConfigureAwait(false);
                await SaveTouchedAsync(touched, cancellationToken).ConfigureAwait(false);
            }));
            var addresses = HostEntriesOf(sandbox, endpoint).Select(h => h.Address).Distinct().ToArray();
            if (addresses.Length > 0)
            {
                steps.Add(("remove hosts entries", async () => await _sandboxFiles.RemoveHostEntriesAsync(sandbox.FilesDirectory, addresses, cancellationToken).ConfigureAwait(false)));
            }

            if (!sandbox.UsesHostNamespace && (endpoint.Network.EnableIPv6 || !sandbox.Record.EmbeddedDns))
            {
                // The join may have rewritten resolv.conf (for the embedded DNS, or for IPv6 servers) before it failed:
                // written again from the committed record, which the failed join never changed (a file the user
                // edited is left alone, as on every rewrite).
                steps.Add(("restore resolv.conf", async () => await _sandboxFiles.UpdateResolvConfAsync(
                    sandbox.FilesDirectory,
                    FileOptions(sandbox.Record, enableIPv6: sandbox.Endpoints.Any(e => e.Network.EnableIPv6)),
                    cancellationToken).ConfigureAwait(false)));
            }
        }

        if (intent.Interface is null && !sandbox.UsesHostNamespace && FindEndpoint(endpointId)?.MacAddress is { } mac)
        {
            // The driver may have created the interface in the sandbox before the core learnt its name: find it by
            // the endpoint's MAC among the interfaces no joined endpoint names.
            steps.Add(("remove unnamed interface", () => RemoveUnclaimedInterfacesAsync(sandbox, mac, cancellationToken)));
        }

        if (intent.Interface is { } created && !sandbox.UsesHostNamespace)
        {
            var placement = created.CreatedInSandbox ? InterfacePlacement.Sandbox : InterfacePlacement.HostNamespace;
            foreach (var name in new[] { created.DestinationName, created.SourceName }.Distinct(StringComparer.Ordinal))
            {
                steps.Add(($"remove interface {name}", () => _sandboxNetworking.RemoveInterfaceAsync(
                    sandbox.Key,
                    new SandboxInterface { SourceName = created.SourceName, DestinationName = name, Placement = placement },
                    cancellationToken)));
            }
        }
    }

    /// <summary>Removes the interfaces of a sandbox that carry <paramref name="mac"/> and that no endpoint joined to
    /// the sandbox names: what a join that stopped between the driver's join and the recording of the interface's
    /// name left.</summary>
    private async ValueTask RemoveUnclaimedInterfacesAsync(Sandbox sandbox, System.Net.NetworkInformation.PhysicalAddress mac, CancellationToken cancellationToken)
    {
        var claimed = sandbox.Endpoints
            .SelectMany(e => new[] { e.Record.Join?.DestinationName, e.Record.Join?.SourceName })
            .OfType<string>()
            .ToHashSet(StringComparer.Ordinal);
        foreach (var link in await _sandboxNetworking.GetInterfacesAsync(sandbox.Key, cancellationToken).ConfigureAwait(false))
        {
            if (!claimed.Contains(link.Name) && mac.Equals(link.MacAddress))
            {
                await _sandboxNetworking.RemoveInterfaceAsync(
                    sandbox.Key,
                    new SandboxInterface { SourceName = link.Name, DestinationName = link.Name, Placement = InterfacePlacement.Sandbox },
                    cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>
    /// Finishes a leave a crash interrupted (rolling forward is what the caller asked for): the same leave code runs
    /// from the committed state, whose steps are idempotent: the gateway converges, the driver leaves, the interface
    /// goes under either name, the hosts lines go, and the endpoint is committed without its join.
    /// </summary>
    /// <remarks>A leave that cannot be finished throws: recovery then quarantines its intent (the endpoint stays
    /// joined and visible, for the user to leave again), and the start goes on.</remarks>
    private async ValueTask FinishLeaveAsync(IntentRecord intent, string endpointId, CancellationToken cancellationToken)
    {
        if (intent.SandboxId is not { } sandboxId || !_sandboxes.TryGetValue(sandboxId, out var sandbox))
        {
            return;
        }

        var endpoint = FindEndpoint(endpointId);
        if (endpoint?.Record.Join is { } join && string.Equals(join.SandboxId, sandboxId, StringComparison.Ordinal))
        {
            await sandbox.Gate.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                await LeaveLockedAsync(endpoint, sandbox, intent.RemoveInterface, intent.SandboxGoing, intent, cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                sandbox.Gate.Release();
            }

            if (intent.SandboxGoing)
            {
                ScheduleTeardown(endpoint);
            }

            return;
        }

        // The endpoint is not joined there (any more): only its interface may be left.
        if (intent.Interface is { } removed && !sandbox.UsesHostNamespace)
        {
            await UndoAsync("Leave", [(
                $"remove interface {removed.DestinationName}",
                () => RemoveJoinInterfaceAsync(sandbox, removed, cancellationToken))]).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// How a create's rollback releases what an IPAM reserved for it: by the owner the intent names (also what a
    /// process killed before recording the reply left) when the IPAM can and the start's sweep would not find it (a
    /// plugin's allocations, <see cref="RegisteredIpam.ReleaseByOwner"/>; an address in a global network's pool, which
    /// the sweep leaves to the cluster); else null, and the rollback releases what the intent recorded.
    /// </summary>
    private IIpamOwnerRelease? OwnerReleaseFor(RegisteredIpam ipam, Network? network) =>
        ipam.ReleaseByOwner
        ?? (network is not null && _global is not null && IsGlobal(network.Record) ? IIpamOwnerRelease.Of(ipam.Ipam) : null);

    /// <summary>The IPAM owner tag of a network's own addresses (gateway, aux addresses).</summary>
    internal static string NetworkOwner(string networkId) => "network:" + networkId;

    /// <summary>
    /// Undoes what an interrupted create or join may have done, and finishes an interrupted leave. Every step is
    /// idempotent, so this runs both when an operation fails in process and when a crash left its intent behind.
    /// </summary>
    private async ValueTask RollbackAsync(IntentRecord intent, CancellationToken cancellationToken)
    {
        var steps = new List<(string, Func<ValueTask>)>();
        var driver = intent.Driver is { } d && _registry.ContainsDriver(d) ? _registry.GetDriver(d).Driver : null;
        var registeredIpam = intent.IpamDriver is { } i && _registry.ContainsIpam(i) ? _registry.GetIpam(i) : null;
        var ipam = registeredIpam?.Ipam;
        switch (intent.Kind)
        {
            case IntentKind.Join when intent.EndpointId is { } eid:
                AddJoinUndoSteps(intent, eid, steps, cancellationToken);
                if (driver is not null)
                {
                    steps.Add(("driver leave", () => driver.LeaveAsync(intent.NetworkId, eid, cancellationToken)));
                }

                break;
            case IntentKind.Leave when intent.EndpointId is { } eid:
                // Rolled forward, not back.
                await FinishLeaveAsync(intent, eid, cancellationToken).ConfigureAwait(false);
                break;
            case IntentKind.CreateEndpoint when intent.EndpointId is { } eid && driver is not null:
                steps.Add(("driver delete endpoint", () => driver.DeleteEndpointAsync(intent.NetworkId, eid, cancellationToken)));
                break;
            case IntentKind.CreateNetwork when driver is not null:
                steps.Add(("driver delete network", () => driver.DeleteNetworkAsync(intent.NetworkId, cancellationToken)));
                if (AllocatorOf(_registry.GetDriver(intent.Driver!)) is { } allocator)
                {
                    steps.Add(("driver free network", () => allocator.FreeNetworkAsync(intent.NetworkId, cancellationToken)));
                }

                break;
        }

        var owner = intent.Kind switch
        {
            IntentKind.CreateNetwork => NetworkOwner(intent.NetworkId),
            IntentKind.CreateEndpoint => intent.EndpointId,
            _ => null,
        };
        var ownerNetwork = intent.Kind == IntentKind.CreateEndpoint && _networks.TryGetValue(intent.NetworkId, out var n) ? n : null;
        if (registeredIpam is not null && OwnerReleaseFor(registeredIpam, ownerNetwork) is { } byOwner && owner is not null)
        {
            // Everything requested for the object goes, also a pool or address whose reply the intent never recorded
            // (the process died in between): the owner was recorded before the first request.
            steps.Add(($"release what {owner} holds", async () => await byOwner.ReleaseOwnerAsync(owner, cancellationToken).ConfigureAwait(false)));
        }
        else if (ipam is not null)
        {
            foreach (var address in intent.Addresses)
            {
                steps.Add(($"release address {address[1]}", () => ipam.ReleaseAddressAsync(address[0], System.Net.IPAddress.Parse(address[1]), cancellationToken)));
            }

            foreach (var pool in Enumerable.Reverse(intent.Pools))
            {
                steps.Add(($"release pool {pool}", () => ipam.ReleasePoolAsync(pool, cancellationToken)));
            }
        }

        await UndoAsync(intent.Kind.ToString(), steps).ConfigureAwait(false);
    }
}
