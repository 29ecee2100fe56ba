using System.Diagnostics.Metrics;
using CnmSharp.Core;
using CnmSharp.Drivers;
using CnmSharp.Drivers.Host;
using CnmSharp.Drivers.Null;
using CnmSharp.Firewall;
using CnmSharp.Firewall.Iptables;
using CnmSharp.Firewall.Nftables;
using CnmSharp.Ipam;
using CnmSharp.Ipam.Default;
using CnmSharp.Ipam.Null;
using CnmSharp.Sandboxes;
using CnmSharp.Sandboxes.Files;
using CnmSharp.Store;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace CnmSharp;

/// <summary>
/// Builds a <see cref="NetworkController"/> without dependency injection. The built-in drivers (<c>null</c>,
/// <c>host</c>, <c>bridge</c>, <c>macvlan</c>, <c>ipvlan</c>) and IPAMs (<c>default</c>, <c>null</c>) are registered unless <see cref="WithoutBuiltIns"/> is called;
/// the store defaults to the embedded durable store under <see cref="CnmOptions.StateDirectory"/>.
/// </summary>
public sealed class NetworkControllerBuilder
{
    private readonly List<INetworkDriverFactory> _drivers = [];
    private readonly List<IIpamDriverFactory> _ipams = [];
    private Func<CancellationToken, ValueTask<(IKeyValueStore Store, bool Owned)>>? _store;
    private Func<CancellationToken, ValueTask<(ISharedKeyValueStore Store, bool Owned)>>? _globalStore;
    private ISandboxNetworking? _sandboxNetworking;
    private ISandboxFiles? _sandboxFiles;
    private Func<Dns.IEmbeddedDns>? _embeddedDns;
    private ILoggerFactory _loggerFactory = NullLoggerFactory.Instance;
    private IMeterFactory? _meterFactory;
    private TimeProvider _timeProvider = TimeProvider.System;
    private IServiceProvider? _services;
    private IFirewallBackendFactory? _firewall;
    private bool _firewallGiven;
    private Diagnostics.FaultPoints? _faults;
    private bool _builtIns = true;
    private DefaultIpamOptions _defaultIpamOptions = new();

    /// <summary>Creates a builder with default options.</summary>
    public NetworkControllerBuilder()
        : this(new CnmOptions())
    {
    }

    /// <summary>Creates a builder on the given options (used as they are, not copied).</summary>
    /// <param name="options">The options.</param>
    public NetworkControllerBuilder(CnmOptions options) => Options = options ?? throw new ArgumentNullException(nameof(options));

    /// <summary>The options; change them directly or with <see cref="Configure"/>.</summary>
    public CnmOptions Options { get; }

    /// <summary>Changes the options.</summary>
    /// <param name="configure">The change.</param>
    /// <returns>This builder.</returns>
    public NetworkControllerBuilder Configure(Action<CnmOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(configure);
        configure(Options);
        return this;
    }

    /// <summary>Registers a network driver.</summary>
    /// <param name="factory">The driver's factory.</param>
    /// <returns>This builder.</returns>
    public NetworkControllerBuilder AddDriver(INetworkDriverFactory factory)
    {
        ArgumentNullException.ThrowIfNull(factory);
        _drivers.Add(factory);
        return this;
    }

    /// <summary>Registers an IPAM driver.</summary>
    /// <param name="factory">The IPAM's factory.</param>
    /// <returns>This builder.</returns>
    public NetworkControllerBuilder AddIpamDriver(IIpamDriverFactory factory)
    {
        ArgumentNullException.ThrowIfNull(factory);
        _ipams.Add(factory);
        return this;
    }

    /// <summary>Sets the default IPAM's pools.</summary>
    /// <param name="options">The options.</param>
    /// <returns>This builder.</returns>
    public NetworkControllerBuilder ConfigureDefaultIpam(DefaultIpamOptions options)
    {
        _defaultIpamOptions = options ?? throw new ArgumentNullException(nameof(options));
        return this;
    }

    /// <summary>Registers no built-in driver or IPAM: only what is added explicitly.</summary>
    /// <returns>This builder.</returns>
    public NetworkControllerBuilder WithoutBuiltIns()
    {
        _builtIns = false;
        return this;
    }

    /// <summary>Uses a store the caller owns (it is not disposed with the controller).</summary>
    /// <param name="store">The store.</param>
    /// <returns>This builder.</returns>
    public NetworkControllerBuilder UseStore(IKeyValueStore store)
    {
        ArgumentNullException.ThrowIfNull(store);
        _store = _ => ValueTask.FromResult((store, false));
        return this;
    }

    /// <summary>Uses a store opened at build time and disposed with the controller.</summary>
    /// <param name="open">Opens the store.</param>
    /// <returns>This builder.</returns>
    public NetworkControllerBuilder UseStore(Func<CancellationToken, ValueTask<IKeyValueStore>> open)
    {
        ArgumentNullException.ThrowIfNull(open);
        _store = async ct => (await open(ct).ConfigureAwait(false), true);
        return this;
    }

    /// <summary>Uses a fresh in-memory store (state is lost with the process).</summary>
    /// <returns>This builder.</returns>
    public NetworkControllerBuilder UseInMemoryStore() => UseStore(_ => ValueTask.FromResult<IKeyValueStore>(new InMemoryKeyValueStore()));

    /// <summary>Uses a cluster-wide store the caller owns (not disposed with the controller) for global-scope networks,
    /// their endpoints and the default IPAM's <c>GlobalDefault</c> space, shared by the controllers of every host
    /// (<see cref="CnmOptions.Cluster"/> names this one). Without it, creating a global-scope network fails with
    /// <see cref="CnmErrorCodes.GlobalStoreRequired"/>.</summary>
    /// <param name="store">The store (etcd: <c>CnmSharp.Store.Etcd</c>).</param>
    /// <returns>This builder.</returns>
    public NetworkControllerBuilder UseGlobalStore(ISharedKeyValueStore store)
    {
        ArgumentNullException.ThrowIfNull(store);
        _globalStore = _ => ValueTask.FromResult((store, false));
        return this;
    }

    /// <summary>Uses a cluster-wide store opened at build time and disposed with the controller (see
    /// <see cref="UseGlobalStore(ISharedKeyValueStore)"/>).</summary>
    /// <param name="open">Opens the store.</param>
    /// <returns>This builder.</returns>
    public NetworkControllerBuilder UseGlobalStore(Func<CancellationToken, ValueTask<ISharedKeyValueStore>> open)
    {
        ArgumentNullException.ThrowIfNull(open);
        _globalStore = async ct => (await open(ct).ConfigureAwait(false), true);
        return this;
    }

    /// <summary>Sets the kernel side of sandboxes (by default the Linux one, on <c>CnmSharp.Netlink</c>).</summary>
    /// <param name="sandboxNetworking">The implementation.</param>
    /// <returns>This builder.</returns>
    public NetworkControllerBuilder UseSandboxNetworking(ISandboxNetworking sandboxNetworking)
    {
        _sandboxNetworking = sandboxNetworking ?? throw new ArgumentNullException(nameof(sandboxNetworking));
        return this;
    }

    /// <summary>Sets how sandbox files (/etc/hosts, resolv.conf) are written (by default <see cref="SandboxFiles"/>).</summary>
    /// <param name="sandboxFiles">The implementation.</param>
    /// <returns>This builder.</returns>
    public NetworkControllerBuilder UseSandboxFiles(ISandboxFiles sandboxFiles)
    {
        _sandboxFiles = sandboxFiles ?? throw new ArgumentNullException(nameof(sandboxFiles));
        return this;
    }

    /// <summary>Sets the in-process embedded DNS server (tests). By default there is one only with the built-in sandbox
    /// networking, whose keys are real namespaces.</summary>
    internal NetworkControllerBuilder UseEmbeddedDns(Func<Dns.IEmbeddedDns> factory)
    {
        _embeddedDns = factory;
        return this;
    }

    /// <summary>Sets the firewall backend (iptables by default); null makes the controller manage no firewall.</summary>
    /// <param name="factory">Creates the backend for the controller's host namespace.</param>
    /// <returns>This builder.</returns>
    public NetworkControllerBuilder UseFirewall(IFirewallBackendFactory? factory)
    {
        _firewall = factory;
        _firewallGiven = true;
        return this;
    }

    /// <summary>Sets the fault injector (tests only; docs/reliability.md, "Fault points"): the controller, its drivers,
    /// its firewall backend and its sandbox networking call it at every fault point.</summary>
    internal NetworkControllerBuilder UseFaultPoints(Diagnostics.FaultPoints faults)
    {
        _faults = faults ?? throw new ArgumentNullException(nameof(faults));
        return this;
    }

    /// <summary>Sets logging.</summary>
    /// <param name="loggerFactory">The logger factory.</param>
    /// <returns>This builder.</returns>
    public NetworkControllerBuilder UseLoggerFactory(ILoggerFactory loggerFactory)
    {
        _loggerFactory = loggerFactory ?? throw new ArgumentNullException(nameof(loggerFactory));
        return this;
    }

    /// <summary>Sets the meter factory the controller's instruments come from.</summary>
    /// <param name="meterFactory">The meter factory.</param>
    /// <returns>This builder.</returns>
    public NetworkControllerBuilder UseMeterFactory(IMeterFactory meterFactory)
    {
        _meterFactory = meterFactory ?? throw new ArgumentNullException(nameof(meterFactory));
        return this;
    }

    /// <summary>Sets the clock.</summary>
    /// <param name="timeProvider">The clock.</param>
    /// <returns>This builder.</returns>
    public NetworkControllerBuilder UseTimeProvider(TimeProvider timeProvider)
    {
        _timeProvider = timeProvider ?? throw new ArgumentNullException(nameof(timeProvider));
        return this;
    }

    /// <summary>Sets the services offered to drivers through <see cref="DriverContext.Services"/>.</summary>
    /// <param name="services">The services.</param>
    /// <returns>This builder.</returns>
    public NetworkControllerBuilder UseServices(IServiceProvider services)
    {
        _services = services ?? throw new ArgumentNullException(nameof(services));
        return this;
    }

    /// <summary>Builds and starts the controller (or, with <see cref="CnmOptions.ReadOnly"/>, opens the state for
    /// reading only: see there).</summary>
    /// <param name="cancellationToken">Cancels the start.</param>
    /// <returns>The controller.</returns>
    /// <exception cref="CnmInvalidArgumentException">A path in the options is relative, or the state or run directory
    /// (or the store file) is owned by another user or writable by group or others (code
    /// <see cref="CnmErrorCodes.UnsafeDirectory"/>).</exception>
    /// <exception cref="CnmUnavailableException">Read-only, on a store no read-write controller has started yet
    /// (<see cref="CnmErrorCodes.StateNotInitialized"/>).</exception>
    public async ValueTask<NetworkController> BuildAsync(CancellationToken cancellationToken = default)
    {
        Validation.ControllerOptions(Options);

        // The run directory is created (mode 0711 whatever the umask) and checked only when the built-in sandbox
        // networking or files use it; each gets its own subfolder, the only place it ever unmounts or deletes.
        var namespaceDirectory = Path.Combine(Options.RunDirectory, "netns");
        var filesDirectory = Path.Combine(Options.RunDirectory, "sandboxes");
        // A read-only controller (CnmOptions.ReadOnly) creates no directory but the store's, and no firewall backend.
        if (!Options.ReadOnly && (_sandboxNetworking is null || _sandboxFiles is null))
        {
            EnsureDirectory(Options.RunDirectory, OwnedDirectory.RunMode, "run directory");
            if (_sandboxNetworking is null)
            {
                EnsureDirectory(namespaceDirectory, OwnedDirectory.RunMode, "sandbox namespace directory");
            }

            if (_sandboxFiles is null)
            {
                EnsureDirectory(filesDirectory, OwnedDirectory.RunMode, "sandbox files directory");
            }
        }

        var drivers = new List<INetworkDriverFactory>();
        var ipams = new List<IIpamDriverFactory>();
        if (_builtIns)
        {
            drivers.AddRange(BuiltIns.Drivers().Where(b => !_drivers.Any(d => d.Name == b.Name)));
            ipams.AddRange(BuiltIns.Ipams(_defaultIpamOptions).Where(b => !_ipams.Any(d => d.Name == b.Name)));
        }

        drivers.AddRange(_drivers);
        ipams.AddRange(_ipams);
        var (store, owned) = await (_store ?? OpenDefaultStore)(cancellationToken).ConfigureAwait(false);
        (ISharedKeyValueStore? Store, bool Owned) global = (null, false);
        try
        {
            if (_globalStore is not null)
            {
                global = await _globalStore(cancellationToken).ConfigureAwait(false);
            }
        }
        catch
        {
            if (owned)
            {
                await store.DisposeAsync().ConfigureAwait(false);
            }

            throw;
        }

        var firewall = Options.ReadOnly || Options.Firewall == FirewallBackendChoice.None ? null
            : _firewallGiven ? _firewall?.Create(Options.HostNamespacePath)
            : new SelectingFirewallBackendFactory(Options.Firewall, nftablesOptions: Options.FirewallDriftWatch ? new NftablesFirewallBackendOptions { WatchForDrift = true } : null, loggerFactory: _loggerFactory).Create(Options.HostNamespacePath);
        if (firewall is not null && _faults is not null)
        {
            firewall = FaultingFirewallBackend.Wrap(firewall, _faults);
        }

        return await NetworkController.StartAsync(
            new ControllerStartInfo
            {
                Options = Options,
                Store = store,
                OwnsStore = owned,
                GlobalStore = global.Store,
                OwnsGlobalStore = global.Owned,
                Drivers = drivers,
                Ipams = ipams,
                SandboxNetworking = _sandboxNetworking ?? new LinuxSandboxNetworking(Options.HostNamespacePath, namespaceDirectory, _loggerFactory) { Faults = _faults },
                OwnsSandboxNetworking = _sandboxNetworking is null,
                Firewall = firewall,
                SandboxFiles = _sandboxFiles ?? new SandboxFiles(filesDirectory),
                LoggerFactory = _loggerFactory,
                MeterFactory = _meterFactory,
                TimeProvider = _timeProvider,
                Services = _services,
                Faults = _faults,
                EmbeddedDnsFactory = _embeddedDns ?? (_sandboxNetworking is null ? () => new Dns.EmbeddedDnsServer(Options.Dns, new Dns.LinuxDnsNamespaces(), _loggerFactory) : null),
            },
            cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Creates a directory of the controller with its mode whatever the umask, and checks that it is ours.</summary>
    private static void EnsureDirectory(string path, UnixFileMode mode, string what)
    {
        try
        {
            OwnedDirectory.Ensure(path, mode, what);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidOption, $"{what} {path}", "cannot create or use it: " + ex.Message, ex);
        }
    }

    private async ValueTask<(IKeyValueStore, bool)> OpenDefaultStore(CancellationToken cancellationToken)
    {
        // Mode 0700 whatever the umask; refused when another user owns it or group or others can write it.
        EnsureDirectory(Options.StateDirectory, OwnedDirectory.StateMode, "state directory");
        return (await SqliteKeyValueStore.OpenAsync(
            new SqliteStoreOptions
            {
                Path = Path.Combine(Options.StateDirectory, "cnm.db"),


                // Tiered by default: what a user declares is synced, per-container records (which a reboot makes moot)
                // are not; a process crash loses nothing either way.
                Durability = Options.Durability,
            },
            cancellationToken).ConfigureAwait(false), true);
    }
}

/// <summary>The built-in drivers and IPAMs.</summary>
internal static class BuiltIns
{
    public static IEnumerable<INetworkDriverFactory> Drivers() => [new NullDriverFactory(), new HostDriverFactory(), new CnmSharp.Drivers.Bridge.BridgeDriverFactory(), new CnmSharp.Drivers.Macvlan.MacvlanDriverFactory(), new CnmSharp.Drivers.Ipvlan.IpvlanDriverFactory(), new CnmSharp.Drivers.Overlay.OverlayDriverFactory()];

    public static IEnumerable<IIpamDriverFactory> Ipams(DefaultIpamOptions options) => [new DefaultIpamFactory(options), new NullIpamFactory()];
}
