using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using CnmSharp.Core;
using CnmSharp.Core.Persistence;
using CnmSharp.Diagnostics;
using CnmSharp.Drivers;
using CnmSharp.Ipam;
using CnmSharp.Sandboxes;
using CnmSharp.Store;
using Microsoft.Extensions.Logging;

namespace CnmSharp;

/// <summary>
/// The entry point of the Container Network Model: it holds the drivers and IPAMs of one host namespace, and creates,
/// finds and deletes networks and sandboxes. Build one with <see cref="NetworkControllerBuilder"/> or
/// <c>services.AddCnmSharp(...)</c>. Several controllers may live in one process, each on its own host namespace and
/// store.
/// </summary>
public sealed partial class NetworkController : IAsyncDisposable
{
    private readonly CnmOptions _options;
    private readonly CoreStore _store;
    private readonly IKeyValueStore? _ownedStore;
    private readonly DriverRegistry _registry = new();
    private readonly ISandboxNetworking _sandboxNetworking;
    private readonly bool _ownsSandboxNetworking;
    private readonly Sandboxes.Files.ISandboxFiles _sandboxFiles;
    private readonly ILoggerFactory _loggerFactory;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly IServiceProvider? _services;
    private readonly CnmSharp.Firewall.IFirewallBackend? _firewall;
    private readonly ControllerInstruments _instruments;
    private readonly SemaphoreSlim _gate = new(1, 1);

    /// <summary>The fault injector (tests only, docs/reliability.md), null otherwise.</summary>
    private readonly FaultPoints? _faults;

    /// <summary>Opened with <see cref="CnmOptions.ReadOnly"/>: reads only, every change refused.</summary>
    private readonly bool _readOnly;
    private readonly ConcurrentDictionary<string, Network> _networks = new(StringComparer.Ordinal);

    /// <summary>Networks being created (guarded by <see cref="_gate"/>): their id, name and driver are taken.</summary>
    private readonly List<(string Id, string Name, string Driver)> _creatingNetworks = [];

    /// <summary>Global networks this host is deleting, from the removal of its copy until the cluster record is gone:
    /// the follower must not adopt them again from a listing or event of the record in between.</summary>
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, byte> _deletingGlobalNetworks = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, Sandbox> _sandboxes = new(StringComparer.Ordinal);

    /// <summary>Container id to sandbox id; an empty value reserves the container while its sandbox is created.</summary>
    private readonly ConcurrentDictionary<string, string> _containerSandboxes = new(StringComparer.Ordinal);
    private int _disposed;

    /// <summary>Driver and IPAM names being registered (guarded by <see cref="_gate"/>): taken, not yet usable.</summary>
    private readonly HashSet<string> _registering = new(StringComparer.Ordinal);

    private NetworkController(ControllerStartInfo info, string id)
    {
        _options = info.Options;
        _readOnly = info.Options.ReadOnly;
        _store = new CoreStore(info.Store);
        _ownedStore = info.OwnsStore ? info.Store : null;
        _global = info.GlobalStore is null ? null : new GlobalState(info.GlobalStore, info.OwnsGlobalStore, info.Options);
        _sandboxNetworking = info.SandboxNetworking;
        _ownsSandboxNetworking = info.OwnsSandboxNetworking;
        _sandboxFiles = info.SandboxFiles;
        _dnsFactory = info.EmbeddedDnsFactory;
        _loggerFactory = info.LoggerFactory;
        _logger = info.LoggerFactory.CreateLogger<NetworkController>();
        _time = info.TimeProvider;
        _services = info.Services;
        _firewall = info.Firewall;
        _faults = info.Faults;
        Id = id;
        _instruments = new ControllerInstruments(info.MeterFactory, id, MeasureAllocatedAddresses);
        var stateLock = info.Store is IStateLockProvider provider ? provider.CreateStateLock() : new InProcessStateLock().CreateHandle();
        _lease = new StateLease(stateLock, OnStateAcquiredAsync, OnStateReleasingAsync);
    }

    /// <summary>The controller's id (64 hex characters), stable across restarts on the same store.</summary>
    public string Id { get; }

    /// <summary>True when the controller was opened read-only (<see cref="CnmOptions.ReadOnly"/>): it shows the state and
    /// refuses every change.</summary>
    public bool IsReadOnly => _readOnly;

    /// <summary>The host namespace this controller works in, or null for the process's own.</summary>
    public string? HostNamespacePath => _options.HostNamespacePath;

    /// <summary>The names of the registered network drivers.</summary>
    public IReadOnlyList<string> Drivers => _registry.Drivers.Select(d => d.Name).ToArray();

    /// <summary>The names of the registered IPAM drivers.</summary>
    public IReadOnlyList<string> IpamDrivers => _registry.Ipams.Select(d => d.Name).ToArray();

    /// <summary>Every network, ordered by name.</summary>
    public IReadOnlyList<Network> Networks =>
        _networks.Values.Where(n => !n.Deleting).OrderBy(n => n.Name, StringComparer.Ordinal).ThenBy(n => n.Id, StringComparer.Ordinal).ToArray();

    /// <summary>Every sandbox, ordered by container id.</summary>
    public IReadOnlyList<Sandbox> Sandboxes =>
        _sandboxes.Values.Where(s => !s.Deleting).OrderBy(s => s.ContainerId, StringComparer.Ordinal).ToArray();

    /// <summary>The capability of a registered driver.</summary>
    /// <param name="driver">The driver's name.</param>
    /// <returns>Its capability.</returns>
    /// <exception cref="CnmConflictException">The controller is read-only: its drivers are not created
    /// (<see cref="CnmErrorCodes.ReadOnlyController"/>).</exception>
    public DriverCapability GetDriverCapability(string driver) =>
        _readOnly ? throw ReadOnlyRefusal($"driver \"{driver}\"") : _registry.GetDriver(driver).Capability;

    /// <summary>Registers a driver at run time (for example a plugin found later). Networks of that driver that the
    /// store holds are loaded then, with their endpoints and their places in sandboxes.</summary>
    /// <param name="factory">The driver's factory.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when the driver is registered.</returns>
    public ValueTask RegisterDriverAsync(INetworkDriverFactory factory, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(factory);
        ValidateRegistrationName(factory.Name, "driver");
        return RunAsync("driver.register", async () =>
        {
            await ReserveRegistrationAsync("driver:" + factory.Name, $"driver \"{factory.Name}\"", () => _registry.ContainsDriver(factory.Name), cancellationToken).ConfigureAwait(false);
            try
            {
                var driver = await factory.CreateAsync(CreateContext(CoreStore.DriverPrefix, factory.Name), cancellationToken).ConfigureAwait(false);
                var registered = new RegisteredDriver(factory.Name, driver, driver.Capability);
                _registry.Add(registered);
                await PushKnownNodesAsync(registered, cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                await EndRegistrationAsync("driver:" + factory.Name).ConfigureAwait(false);
            }

            if (_loaded)
            {
                await AdoptNetworksAsync(factory.Name, cancellationToken).ConfigureAwait(false);
            }
        }, cancellationToken);
    }

    /// <summary>Registers an IPAM driver at run time.</summary>
    /// <param name="factory">The IPAM's factory.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when the IPAM is registered.</returns>
    public ValueTask RegisterIpamDriverAsync(IIpamDriverFactory factory, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(factory);
        ValidateRegistrationName(factory.Name, "IPAM driver");
        return RunAsync("ipam.register", async () =>
        {
            await ReserveRegistrationAsync("ipam:" + factory.Name, $"IPAM driver \"{factory.Name}\"", () => _registry.ContainsIpam(factory.Name), cancellationToken).ConfigureAwait(false);
            try
            {
                var ipam = await factory.CreateAsync(CreateContext(CoreStore.IpamPrefix, factory.Name), cancellationToken).ConfigureAwait(false);
                try
                {
                    var spaces = await ipam.GetDefaultAddressSpacesAsync(cancellationToken).ConfigureAwait(false);
                    var registered = new RegisteredIpam(factory.Name, ipam, spaces);
                    _registry.Add(registered);
                    await SetUpReplayAsync(registered, cancellationToken).ConfigureAwait(false);
                }
                catch
                {
                    if (ipam is IAsyncDisposable disposable)
                    {
                        await disposable.DisposeAsync().ConfigureAwait(false);
                    }

                    throw;
                }
            }
            finally
            {
                await EndRegistrationAsync("ipam:" + factory.Name).ConfigureAwait(false);
            }
        }, cancellationToken);
    }

    /// <summary>Takes a registration name: one caller creates the driver, a concurrent or later one is refused
    /// before it creates anything.</summary>
    private async ValueTask ReserveRegistrationAsync(string slot, string subject, Func<bool> registered, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (registered() || !_registering.Add(slot))
            {
                throw new CnmConflictException(CnmErrorCodes.ActiveRegistration, subject, "one with that name is already registered");
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    private async ValueTask EndRegistrationAsync(string slot)
    {
        await _gate.WaitAsync(CancellationToken.None).ConfigureAwait(false);
        try
        {
            _registering.Remove(slot);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Finds a network by name (the first, by id, when names are not unique).</summary>
    /// <param name="name">The name.</param>
    /// <returns>The network, or null.</returns>
    /// <exception cref="CnmInvalidArgumentException">The name is empty.</exception>
    public Network? FindNetworkByName(string name)
    {
        if (string.IsNullOrWhiteSpace(name))
        {
            throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidName, "network name", "the name is empty");
        }

        return Networks.FirstOrDefault(n => string.Equals(n.Name, name, StringComparison.Ordinal));
    }

    /// <summary>Finds a network by id.</summary>
    /// <param name="id">The id.</param>
    /// <returns>The network, or null.</returns>
    /// <exception cref="CnmInvalidArgumentException">The id is empty.</exception>
    public Network? FindNetworkById(string id)
    {
        if (string.IsNullOrWhiteSpace(id))
        {
            throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidId, "network id", "the id is empty");
        }

        return _networks.TryGetValue(id, out var network) && !network.Deleting ? network : null;
    }

    /// <summary>Finds a network by id, name, or unique id prefix, as <c>docker network</c> does.</summary>
    /// <param name="nameOrId">A name, an id or an id prefix.</param>
    /// <returns>The network.</returns>
    /// <exception cref="CnmNotFoundException">No such network.</exception>
    public Network GetNetwork(string nameOrId)
    {
        if (string.IsNullOrWhiteSpace(nameOrId))
        {
            throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidName, "network", "the name or id is empty");
        }

        var network = FindNetworkById(nameOrId) ?? FindNetworkByName(nameOrId);
        if (network is null)
        {
            var byPrefix = Networks.Where(n => n.Id.StartsWith(nameOrId, StringComparison.Ordinal)).Take(2).ToArray();
            network = byPrefix.Length == 1 ? byPrefix[0] : null;
        }

        return network ?? throw new CnmNotFoundException(CnmErrorCodes.NoSuchNetwork, $"network \"{nameOrId}\"", "no such network");
    }

    /// <summary>Calls <paramref name="walker"/> on each network until it returns true.</summary>
    /// <param name="walker">Returns true to stop.</param>
    /// <returns>The network the walk stopped at, or null.</returns>
    public Network? WalkNetworks(Func<Network, bool> walker)
    {
        ArgumentNullException.ThrowIfNull(walker);
        return Networks.FirstOrDefault(walker);
    }

    /// <summary>Finds a sandbox by id.</summary>
    /// <param name="id">The id.</param>
    /// <returns>The sandbox, or null.</returns>
    /// <exception cref="CnmInvalidArgumentException">The id is empty.</exception>
    public Sandbox? FindSandboxById(string id)
    {
        if (string.IsNullOrWhiteSpace(id))
        {
            throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidId, "sandbox id", "the id is empty");
        }

        return _sandboxes.TryGetValue(id, out var sandbox) && !sandbox.Deleting ? sandbox : null;
    }

    /// <summary>Finds the sandbox of a container.</summary>
    /// <param name="containerId">The container id.</param>
    /// <returns>The sandbox, or null.</returns>
    public Sandbox? FindSandboxByContainerId(string containerId) =>
        containerId is not null && _containerSandboxes.TryGetValue(containerId, out var id) && id.Length > 0 ? FindSandboxById(id) : null;

    /// <summary>Calls <paramref name="walker"/> on each sandbox until it returns true.</summary>
    /// <param name="walker">Returns true to stop.</param>
    /// <returns>The sandbox the walk stopped at, or null.</returns>
    public Sandbox? WalkSandboxes(Func<Sandbox, bool> walker)
    {
        ArgumentNullException.ThrowIfNull(walker);
        return Sandboxes.FirstOrDefault(walker);
    }

    /// <summary>
    /// Re-creates the firewall rules of every driver that programs them (drivers implementing
    /// <see cref="IFirewallReconcilableDriver"/>), for example after a firewalld reload or an <c>iptables -F</c>.
    /// </summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when the rules are back.</returns>
    public ValueTask ReconcileFirewallAsync(CancellationToken cancellationToken = default) =>
        RunAsync("firewall.reconcile", async () =>
        {
            foreach (var driver in _registry.Drivers)
            {
                if (driver.Driver is IFirewallReconcilableDriver reconcilable)
                {
                    await reconcilable.ReconcileFirewallAsync(cancellationToken).ConfigureAwait(false);
                }
            }
        }, cancellationToken);

    /// <summary>Deletes the sandbox of a container; a container without one is not an error.</summary>
    /// <param name="containerId">The container id.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when it is gone.</returns>
    public async ValueTask DestroySandboxAsync(string containerId, CancellationToken cancellationToken = default)
    {
        if (FindSandboxByContainerId(containerId) is { } sandbox)
        {
            await DeleteSandboxAsync(sandbox, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Stops the controller: closes the store it owns. Networks, endpoints and sandboxes stay in the kernel
    /// and in the store; a new controller on the same store takes them over.</summary>
    /// <returns>A task that completes when stopped.</returns>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        // New operations are refused from here on. Teardowns' back-off waits end now (one left unfinished keeps its
        // record marked, and the next start finishes it); the running operations and teardowns (bounded by their
        // drivers, such as the bridge's reap timeout) end first, so nothing below is disposed under them.
        await _teardownStop.CancelAsync().ConfigureAwait(false);
        Interlocked.Increment(ref _teardownWaiters);
        try
        {
            await _lease.CloseAsync().ConfigureAwait(false);
        }
        finally
        {
            Interlocked.Decrement(ref _teardownWaiters);
        }

        await WaitForTeardownsAsync(CancellationToken.None).ConfigureAwait(false);
        await StopGlobalAsync().ConfigureAwait(false);

        foreach (var driver in _registry.Drivers)
        {
            if (driver.Driver is IAsyncDisposable disposable)
            {
                await disposable.DisposeAsync().ConfigureAwait(false);
            }
        }

        foreach (var ipam in _registry.Ipams)
        {
            if (ipam.Ipam is IAsyncDisposable disposable)
            {
                await disposable.DisposeAsync().ConfigureAwait(false);
            }
        }

        _pluginResolver?.Dispose();
        // The resolvers' sockets live in the sandboxes' namespaces: closed before the namespaces are let go.
        await DisposeDnsAsync().ConfigureAwait(false);

        // Open namespace handles keep sandbox namespaces alive; a stopped controller must not hold them.
        if (_ownsSandboxNetworking && _sandboxNetworking is IAsyncDisposable sandboxNetworking)
        {
            await sandboxNetworking.DisposeAsync().ConfigureAwait(false);
        }

        // The firewall backend was made for this controller (its netlink socket, its lock).
        (_firewall as IDisposable)?.Dispose();

        if (_ownedStore is not null)
        {
            await _ownedStore.DisposeAsync().ConfigureAwait(false);
        }

        if (_global is { Owned: true })
        {
            await _global.Store.DisposeAsync().ConfigureAwait(false);
        }

        _lease.Dispose();
        _instruments.Dispose();
        _gate.Dispose();
        _teardownSlots.Dispose();
        _teardownStop.Dispose();
    }

    internal ILogger Logger => _logger;

    /// <summary>The controller's store (tests only: the kill harness plants a state no operation leaves, a driver record
    /// whose core record is gone).</summary>
    internal IKeyValueStore StateStore => _store.Store;

    /// <summary>The one operation a read-only controller runs: reading the state again.</summary>
    private const string RefreshOperation = "state.refresh";

    /// <summary>The error of a change asked of a read-only controller.</summary>
    internal static CnmConflictException ReadOnlyRefusal(string subject) =>
        new(CnmErrorCodes.ReadOnlyController, subject, "the controller was opened read-only (CnmOptions.ReadOnly): open it read-write to change the state");

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);

    private DriverContext CreateContext(string prefix, string name) => new()
    {
        ControllerId = Id,
        HostNamespacePath = _options.HostNamespacePath,
        RunDirectory = _options.RunDirectory,
        Store = _store.Store,
        StoreKeyPrefix = prefix + name + "/",
        GlobalStore = _global?.Store,
        GlobalStoreKeyPrefix = _global is null ? null : prefix + name + "/",
        NodeName = _global?.NodeName,
        AdvertiseAddress = _options.AdvertiseAddress is { } advertise ? IPAddressText.ParseStrict(advertise, "advertise address") : null,
        LoggerFactory = _loggerFactory,
        TimeProvider = _time,
        Firewall = _firewall,
        Services = _faults is null ? _services : new FaultPointServices(_faults, _services),
    };

    private static void ValidateRegistrationName(string name, string what)
    {
        if (string.IsNullOrWhiteSpace(name) || name.Contains('/', StringComparison.Ordinal))
        {
            throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidName, $"{what} \"{name}\"", "a registered name must be non-empty and contain no '/'");
        }
    }

    private IEnumerable<Measurement<long>> MeasureAllocatedAddresses()
    {
        foreach (var network in _networks.Values)
        {
            foreach (var pool in network.AllPools)
            {
                long count = (pool.Gateway is null ? 0 : 1) + pool.AuxAddresses.Count;
                foreach (var endpoint in network.Endpoints)
                {
                    var address = pool.Pool.IsIPv6() ? endpoint.AddressIPv6 : endpoint.Address;
                    if (address is { } a && pool.Pool.Contains(a.Address))
                    {
                        count++;
                    }
                }

                yield return new Measurement<long>(count, new KeyValuePair<string, object?>("cnmsharp.ipam.pool", pool.PoolId), new KeyValuePair<string, object?>("cnmsharp.network", network.Name));
            }
        }
    }

    private static string ScopeName(DriverScope scope) => scope switch
    {
        DriverScope.Global => "global",
        DriverScope.Swarm => "swarm",
        _ => "local",
    };

    /// <summary>Runs one public operation: a span, counters, duration, and failure accounting.</summary>
    private ValueTask<T> RunAsync<T>(string name, Func<ValueTask<T>> body, CancellationToken cancellationToken = default) =>
        RunAsync(name, exclusive: false, body, cancellationToken);

    private async ValueTask<T> RunAsync<T>(string name, bool exclusive, Func<ValueTask<T>> body, CancellationToken cancellationToken)
    {
        // An operation called from inside another (recovery deleting a stale sandbox, start creating the default
        // networks) shares its hold on the state; only outermost calls wait for the state lock and check disposal.
        var nested = _lease.InScope;
        if (!nested)
        {
            ThrowIfDisposed();
        }

        if (_readOnly && !string.Equals(name, RefreshOperation, StringComparison.Ordinal))
        {
            throw ReadOnlyRefusal("controller");
        }

        var op = _instruments.Start(name);
        try
        {
            if (nested)
            {
                return await body().ConfigureAwait(false);
            }

            await _lease.EnterAsync(exclusive, cancellationToken).ConfigureAwait(false);
            _lease.MarkScope();
            try
            {
                return await body().ConfigureAwait(false);
            }
            finally
            {
                await _lease.ExitAsync().ConfigureAwait(false);
            }
        }
        catch (Exception ex)
        {
            op.Fail(ex);
            throw;
        }
        finally
        {
            op.Dispose();
        }
    }

    private ValueTask RunAsync(string name, Func<ValueTask> body, CancellationToken cancellationToken = default) =>
        RunAsync(name, exclusive: false, body, cancellationToken);

    private async ValueTask RunAsync(string name, bool exclusive, Func<ValueTask> body, CancellationToken cancellationToken) =>
        await RunAsync<bool>(
            name,
            exclusive,
            async () =>
            {
                await body().ConfigureAwait(false);
                return true;
            },
            cancellationToken).ConfigureAwait(false);

    /// <summary>Runs a list of undo steps in order, logging and continuing past failures.</summary>
    private async ValueTask UndoAsync(string operation, IEnumerable<(string Step, Func<ValueTask> Undo)> steps)
    {
        foreach (var (step, undo) in steps)
        {
            try
            {
                await undo().ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                Log.RollbackStepFailed(_logger, ex, step, operation);
            }
        }
    }
}
