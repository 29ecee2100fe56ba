using System.Collections.Concurrent;
using CnmSharp.Core;
using CnmSharp.Core.Persistence;
using CnmSharp.Diagnostics;
using CnmSharp.Plugins;

namespace CnmSharp;

/// <summary>
/// Plugin resolution (libnetwork's plugin getter): a network driver or IPAM name that no registered driver has is
/// looked up as a Docker plugin when it is needed (network create, endpoint create on a network whose IPAM is a
/// plugin, and the restore of stored networks at start), registered, and then used as any driver. A name a built-in
/// or registered driver has is never looked up, so a plugin cannot shadow one. Nothing here depends on a driver's name.
/// </summary>
public sealed partial class NetworkController
{
    private PluginResolver? _pluginResolver;
    private readonly ConcurrentDictionary<string, Lazy<Task>> _resolving = new(StringComparer.Ordinal);

    private PluginResolver? Plugins
    {
        get
        {
            if (!_options.Plugins.Enabled || _readOnly)
            {
                return null;
            }

            return LazyInitializer.EnsureInitialized(ref _pluginResolver, () => new PluginResolver(_options.Plugins, _loggerFactory, _time));
        }
    }

    /// <summary>The registered driver of that name, registering the plugin of that name first when there is one.</summary>
    private async ValueTask<RegisteredDriver> ResolveDriverAsync(string name, CancellationToken cancellationToken)
    {
        if (!_registry.ContainsDriver(name) && Plugins is { } plugins && PluginDiscovery.IsValidName(name))
        {
            await ResolveOnceAsync("driver:" + name, async () =>
            {
                if (!_registry.ContainsDriver(name) && plugins.FindDriver(name) is { } factory)
                {
                    await RegisterDriverAsync(factory, cancellationToken).ConfigureAwait(false);
                    PluginLog.PluginRegistered(_logger, name, "network driver");
                }
            }).ConfigureAwait(false);
        }

        return _registry.GetDriver(name);
    }

    /// <summary>The registered IPAM of that name, registering the plugin of that name first when there is one.</summary>
    private async ValueTask<RegisteredIpam> ResolveIpamAsync(string name, CancellationToken cancellationToken)
    {
        if (!_registry.ContainsIpam(name) && Plugins is { } plugins && PluginDiscovery.IsValidName(name))
        {
            await ResolveOnceAsync("ipam:" + name, async () =>
            {
                if (!_registry.ContainsIpam(name) && plugins.FindIpam(name) is { } factory)
                {
                    await RegisterIpamDriverAsync(factory, cancellationToken).ConfigureAwait(false);
                    PluginLog.PluginRegistered(_logger, name, "IPAM driver");
                }
            }).ConfigureAwait(false);
        }

        return _registry.GetIpam(name);
    }

    /// <summary>One resolution per name at a time: concurrent callers wait for it; a failed one is forgotten.</summary>
    private async Task ResolveOnceAsync(string key, Func<Task> resolve)
    {
        var lazy = _resolving.GetOrAdd(key, _ => new Lazy<Task>(resolve));
        try
        {
            await lazy.Value.ConfigureAwait(false);
        }
        finally
        {
            _resolving.TryRemove(new KeyValuePair<string, Lazy<Task>>(key, lazy));
        }
    }

    /// <summary>At start, after loading: the stored networks whose driver or IPAM is a plugin get it resolved, so they
    /// are restored (Docker restores its networks at start the same way). A plugin that cannot be reached leaves its
    /// networks unloaded, with a warning; they are adopted when the plugin is resolved later.</summary>
    private async ValueTask ResolveStoredPluginsAsync(CancellationToken cancellationToken)
    {
        if (Plugins is null)
        {
            return;
        }

        // The plugins of interrupted operations too (a network create killed before its record was written names its
        // plugin only in its intent): recovery rolls them back through the plugin, which would otherwise keep the
        // network, pool and addresses it gave.
        var intents = (await _store.Store.ListAsync(CoreStore.IntentPrefix, cancellationToken).ConfigureAwait(false))
            .Select(e => TryReadIntent(e))
            .OfType<IntentRecord>()
            .ToList();
        var drivers = _unloadedNetworks.Select(n => n.Record.Driver).Concat(intents.Select(i => i.Driver).OfType<string>())
            .Where(d => !_registry.ContainsDriver(d)).Distinct(StringComparer.Ordinal).ToArray();
        foreach (var name in drivers)
        {
            await TryResolveAsync("network driver", name, () => ResolveDriverAsync(name, cancellationToken).AsTask(), cancellationToken).ConfigureAwait(false);
        }

        var ipams = _networks.Values.Select(n => n.IpamDriver).Concat(_unloadedNetworks.Select(n => n.Record.IpamDriver)).Concat(intents.Select(i => i.IpamDriver))
            .OfType<string>().Where(i => !_registry.ContainsIpam(i)).Distinct(StringComparer.Ordinal).ToArray();
        foreach (var name in ipams)
        {
            await TryResolveAsync("IPAM driver", name, () => ResolveIpamAsync(name, cancellationToken).AsTask(), cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>An intent record, or null when it cannot be read (recovery quarantines it).</summary>
    private static IntentRecord? TryReadIntent(CnmSharp.Store.StoreEntry entry)
    {
        try
        {
            return CoreStore.Deserialize(entry, CoreJsonContext.Default.IntentRecord);
        }
        catch (CnmException)
        {
            return null;
        }
    }

    private async ValueTask TryResolveAsync(string kind, string name, Func<Task> resolve, CancellationToken cancellationToken)
    {
        try
        {
            await resolve().ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is CnmException && !cancellationToken.IsCancellationRequested)
        {
            PluginLog.PluginRestoreFailed(_logger, ex, name, kind);
        }
    }
}
