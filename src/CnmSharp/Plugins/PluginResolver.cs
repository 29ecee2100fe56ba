using System.Collections.Concurrent;
using CnmSharp.Diagnostics;
using CnmSharp.Drivers;
using CnmSharp.Ipam;
using Microsoft.Extensions.Logging;

namespace CnmSharp.Plugins;

/// <summary>
/// Finds plugins by name for one controller and hands out driver and IPAM factories over them. One
/// <see cref="PluginClient"/> per plugin, shared by its driver and its IPAM, so a plugin is activated once.
/// </summary>
internal sealed class PluginResolver : IDisposable
{
    private readonly PluginDiscovery _discovery;
    private readonly PluginOptions _options;
    private readonly ILoggerFactory _loggerFactory;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly ConcurrentDictionary<string, PluginClient> _clients = new(StringComparer.Ordinal);

    public PluginResolver(PluginOptions options, ILoggerFactory loggerFactory, TimeProvider time)
    {
        _options = options;
        _loggerFactory = loggerFactory;
        _logger = loggerFactory.CreateLogger("CnmSharp.Plugins");
        _time = time;
        _discovery = new PluginDiscovery(options, _logger);
    }

    /// <summary>A factory for the network driver plugin <paramref name="name"/>, or null when no such plugin exists
    /// (no socket or discovery file: at once, no retry).</summary>
    public INetworkDriverFactory? FindDriver(string name) => Client(name) is { } client ? new RemoteDriverFactory(client, _loggerFactory) : null;

    /// <summary>A factory for the IPAM plugin <paramref name="name"/>, or null when no such plugin exists.</summary>
    public IIpamDriverFactory? FindIpam(string name) => Client(name) is { } client ? new RemoteIpamFactory(client, _loggerFactory) : null;

    /// <summary>True when discovery finds a plugin of that name (no activation).</summary>
    public bool Exists(string name) => _clients.ContainsKey(name) || _discovery.Find(name) is not null;

    private PluginClient? Client(string name)
    {
        if (_clients.TryGetValue(name, out var existing))
        {
            return existing;
        }

        if (_discovery.Find(name) is not { } spec)
        {
            return null;
        }

        var client = new PluginClient(spec, _options, _logger, _time);
        if (_clients.TryAdd(name, client))
        {
            PluginLog.PluginFound(_logger, name, spec.Address.ToString(), spec.Source);
            return client;
        }

        client.Dispose();
        return _clients[name];
    }

    public void Dispose()
    {
        foreach (var client in _clients.Values)
        {
            client.Dispose();
        }

        _clients.Clear();
    }

    private sealed class RemoteDriverFactory(PluginClient client, ILoggerFactory loggerFactory) : INetworkDriverFactory
    {
        public string Name => client.Name;

        public async ValueTask<INetworkDriver> CreateAsync(DriverContext context, CancellationToken cancellationToken = default)
        {
            var driver = await RemoteDriver.CreateAsync(client, loggerFactory.CreateLogger<RemoteDriver>(), cancellationToken).ConfigureAwait(false);
            driver.Faults = Diagnostics.FaultPoints.From(context.Services);
            return driver;
        }
    }

    private sealed class RemoteIpamFactory(PluginClient client, ILoggerFactory loggerFactory) : IIpamDriverFactory
    {
        public string Name => client.Name;

        public async ValueTask<IIpamDriver> CreateAsync(DriverContext context, CancellationToken cancellationToken = default)
        {
            var ipam = await RemoteIpam.CreateAsync(client, loggerFactory.CreateLogger<RemoteIpam>(), cancellationToken).ConfigureAwait(false);
            ipam.Faults = Diagnostics.FaultPoints.From(context.Services);
            return ipam;
        }
    }
}
