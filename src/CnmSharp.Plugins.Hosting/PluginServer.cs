using CnmSharp.Drivers;
using CnmSharp.Firewall;
using CnmSharp.Ipam;
using CnmSharp.Store;
using Microsoft.Extensions.Logging;

namespace CnmSharp.Plugins.Hosting;

/// <summary>What a <see cref="PluginServer"/> serves and where it keeps its state.</summary>
public sealed class PluginServerOptions
{
    /// <summary>Where and how to listen; its <see cref="PluginHostOptions.Name"/> is the plugin's name.</summary>
    public PluginHostOptions Host { get; set; } = new();

    /// <summary>The network driver to serve, or null for an IPAM-only plugin.</summary>
    public INetworkDriverFactory? Driver { get; set; }

    /// <summary>The IPAM to serve, or null for a driver-only plugin.</summary>
    public IIpamDriverFactory? Ipam { get; set; }

    /// <summary>The directory of the embedded store (created 0700 when missing); the store is
    /// <c>plugins/&lt;name&gt;.db</c> in it, so a controller's <c>cnm.db</c> beside it is never shared.</summary>
    public string StateDirectory { get; set; } = "/var/lib/cnmsharp";

    /// <summary>The run directory given to the driver (runtime files).</summary>
    public string RunDirectory { get; set; } = "/var/run/cnmsharp";

    /// <summary>The network namespace the driver treats as the host (the daemon's), or null for the process's own.</summary>
    public string? HostNamespacePath { get; set; }

    /// <summary>The firewall backend the driver programs through (<see cref="FirewallBackendChoice.None"/>: none).</summary>
    public FirewallBackendChoice Firewall { get; set; } = FirewallBackendChoice.Iptables;
}

/// <summary>
/// A ready-to-run plugin: the driver and IPAM made from their factories on an embedded SQLite store (so what they
/// created survives a restart of the server: they restore it from the store when made again), a firewall backend in
/// the host namespace, a <see cref="PluginRequestHandler"/> and a <see cref="PluginHost"/> serving it.
/// </summary>
public sealed class PluginServer : IAsyncDisposable
{
    private readonly SqliteKeyValueStore _store;
    private readonly IFirewallBackend? _firewall;
    private readonly INetworkDriver? _driver;
    private readonly IIpamDriver? _ipam;
    private int _disposed;

    private PluginServer(SqliteKeyValueStore store, IFirewallBackend? firewall, INetworkDriver? driver, IIpamDriver? ipam, PluginRequestHandler handler, PluginHost host)
    {
        _store = store;
        _firewall = firewall;
        _driver = driver;
        _ipam = ipam;
        Handler = handler;
        Host = host;
    }

    /// <summary>The server listening.</summary>
    public PluginHost Host { get; }

    /// <summary>The request handler (for in-process use).</summary>
    public PluginRequestHandler Handler { get; }

    /// <summary>The store (for inspection).</summary>
    public IKeyValueStore Store => _store;

    /// <summary>Makes the driver and IPAM (restoring what they stored) and starts serving them.</summary>
    /// <param name="options">What to serve and where.</param>
    /// <param name="loggerFactory">Logging.</param>
    /// <param name="cancellationToken">Cancels the start.</param>
    /// <returns>The running server; dispose it to stop.</returns>
    public static async Task<PluginServer> StartAsync(PluginServerOptions options, ILoggerFactory loggerFactory, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(loggerFactory);
        var name = options.Host.Name;
        if (!PluginDiscovery.IsValidName(name))
        {
            throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidOption, "plugin host name", $"\"{name}\" is not a valid plugin name (1 to 255 of [A-Za-z0-9_.-], starting with a letter or digit)");
        }

        if (options.Driver is null && options.Ipam is null)
        {
            throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidOption, "plugin host", "serves nothing: give a network driver, an IPAM or both");
        }

        var directory = Path.Combine(Path.GetFullPath(options.StateDirectory), "plugins");
        SocketFiles.CreatePrivateDirectory(directory);
        var store = await SqliteKeyValueStore.OpenAsync(new SqliteStoreOptions { Path = Path.Combine(directory, name + ".db") }, cancellationToken).ConfigureAwait(false);
        IFirewallBackend? firewall = null;
        INetworkDriver? driver = null;
        IIpamDriver? ipam = null;
        try
        {
            firewall = options.Firewall == FirewallBackendChoice.None ? null
                : new SelectingFirewallBackendFactory(options.Firewall, loggerFactory: loggerFactory).Create(options.HostNamespacePath);
            DriverContext Context(string prefix) => new()
            {
                ControllerId = "plugin-" + name,
                HostNamespacePath = options.HostNamespacePath,
                RunDirectory = options.RunDirectory,
                Store = store,
                StoreKeyPrefix = prefix,
                LoggerFactory = loggerFactory,
                Firewall = firewall,
            };
            if (options.Driver is { } driverFactory)
            {
                driver = await driverFactory.CreateAsync(Context("plugin-driver/" + driverFactory.Name + "/"), cancellationToken).ConfigureAwait(false);
            }

            if (options.Ipam is { } ipamFactory)
            {
                ipam = await ipamFactory.CreateAsync(Context("plugin-ipam/" + ipamFactory.Name + "/"), cancellationToken).ConfigureAwait(false);
            }

            var handler = new PluginRequestHandler(driver, ipam, store, loggerFactory.CreateLogger<PluginRequestHandler>());
            var host = await PluginHost.StartAsync(options.Host, handler, loggerFactory, cancellationToken).ConfigureAwait(false);
            return new PluginServer(store, firewall, driver, ipam, handler, host);
        }
        catch
        {
            await ReleaseAsync(store, firewall, driver, ipam).ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Stops serving (the socket and discovery file go), then releases the driver, IPAM, firewall backend
    /// and store. What the driver created (bridges, veths, rules) stays, for the next start to restore.</summary>
    /// <returns>A task that completes when stopped.</returns>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        try
        {
            await Host.DisposeAsync().ConfigureAwait(false);
        }
        finally
        {
            await ReleaseAsync(_store, _firewall, _driver, _ipam).ConfigureAwait(false);
        }
    }

    private static async ValueTask ReleaseAsync(SqliteKeyValueStore store, IFirewallBackend? firewall, INetworkDriver? driver, IIpamDriver? ipam)
    {
        try
        {
            if (driver is IAsyncDisposable asyncDriver)
            {
                await asyncDriver.DisposeAsync().ConfigureAwait(false);
            }
            else
            {
                (driver as IDisposable)?.Dispose();
            }

            if (ipam is IAsyncDisposable asyncIpam)
            {
                await asyncIpam.DisposeAsync().ConfigureAwait(false);
            }
            else
            {
                (ipam as IDisposable)?.Dispose();
            }

            (firewall as IDisposable)?.Dispose();
        }
        finally
        {
            await store.DisposeAsync().ConfigureAwait(false);
        }
    }
}
