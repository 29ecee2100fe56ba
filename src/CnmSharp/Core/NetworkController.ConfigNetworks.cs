using CnmSharp.Core;
using CnmSharp.Core.Persistence;
using CnmSharp.Diagnostics;
using CnmSharp.Drivers;
using CnmSharp.Store;

namespace CnmSharp;

/// <summary>
/// Configuration-only networks (libnetwork's <c>ConfigOnly</c> and <c>ConfigFrom</c>): a configuration-only network
/// records a configuration (IPv6 flag, IPAM driver, options and configurations, driver options, labels) and nothing
/// else: no driver call, no pool, no endpoint. A network created with <c>ConfigFrom</c> takes that configuration at
/// creation and may set none of it itself; the configuration network cannot be deleted while such a network exists.
/// </summary>
public sealed partial class NetworkController
{
    /// <summary>The driver name a configuration-only network is recorded with (libnetwork's: it names no driver that
    /// is ever called, whatever the caller named).</summary>
    internal const string ConfigOnlyDriverName = "null";

    /// <summary>Networks being created from a configuration network: their id and the configuration network's name.
    /// Guarded by the controller gate.</summary>
    private readonly Dictionary<string, (string Config, string Network)> _creatingFromConfig = new(StringComparer.Ordinal);

    /// <summary>The rules of <see cref="NetworkCreateOptions.ConfigOnly"/> and <see cref="NetworkCreateOptions.ConfigFrom"/>
    /// that need no state (libnetwork's <c>validateConfiguration</c>), checked before anything is reserved.</summary>
    private static void CheckConfigurationOptions(string name, NetworkCreateOptions options)
    {
        var subject = $"network \"{name}\"";
        if (options.ConfigOnly)
        {
            if (options.ConfigFrom is not null)
            {
                throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidOption, subject, "a configuration-only network cannot take its configuration from another network");
            }

            if (options.Internal || Flag(options.DriverOptions, NetLabels.Internal) || options.Attachable || options.Scope is not null)
            {
                throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidOption, subject, "a configuration-only network holds only network-specific settings: internal, attachable and scope are not supported");
            }
        }

        if (options.ConfigFrom is { } from)
        {
            Validation.Name(from, "configuration network");
            if (options.EnableIPv6
                || (options.IpamDriver is { } ipam && !string.Equals(ipam, Ipam.IpamNames.Default, StringComparison.Ordinal))
                || options.IpamOptions.Count > 0
                || options.IPv4Config.Count > 0
                || options.IPv6Config.Count > 0
                || options.Labels.Count > 0)
            {
                throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidOption, subject, $"a network that takes its configuration from \"{from}\" cannot set IPv6, an IPAM driver, IPAM options or configurations, or labels");
            }

            if (options.DriverOptions.Count > 0)
            {
                throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidOption, subject, $"a network that takes its configuration from \"{from}\" cannot set driver options");
            }
        }
    }

    /// <summary>The configuration-only network named <paramref name="configName"/> (libnetwork looks it up by name).</summary>
    private Network FindConfigNetwork(string name, string configName)
    {
        var subject = $"network \"{name}\"";
        var named = _networks.Values.Where(n => !n.Deleting && string.Equals(n.Name, configName, StringComparison.Ordinal)).ToList();
        var configs = named.Where(n => n.ConfigOnly).ToList();
        return configs.Count switch
        {
            1 => configs[0],
            0 when named.Count > 0 => throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidOption, subject, $"network \"{configName}\" is not a configuration-only network"),
            0 => throw new CnmNotFoundException(CnmErrorCodes.NoSuchNetwork, subject, $"configuration network \"{configName}\" does not exist"),
            _ => throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidOption, subject, $"several configuration-only networks are named \"{configName}\""),
        };
    }

    /// <summary>The options of a network created from <paramref name="config"/>: its own operator settings (internal,
    /// attachable, scope, id) with the configuration network's configuration (libnetwork's <c>applyConfigurationTo</c>).</summary>
    private static NetworkCreateOptions ApplyConfiguration(Network config, NetworkCreateOptions options) => options with
    {
        EnableIPv6 = config.EnableIPv6,
        IpamDriver = config.IpamDriver,
        IpamOptions = new Dictionary<string, string>(config.IpamOptions, StringComparer.Ordinal),
        IPv4Config = config.IPv4Config,
        IPv6Config = config.IPv6Config,
        DriverOptions = new Dictionary<string, string>(config.DriverOptions, StringComparer.Ordinal),
        Labels = new Dictionary<string, string>(config.Labels, StringComparer.Ordinal),
    };

    /// <summary>Under the controller gate: the configuration network is still there (not deleted since it was read),
    /// and the network being created is recorded as its user until it exists or fails.</summary>
    private void ReserveConfigNetwork(string networkId, string name, Network config)
    {
        if (config.Deleting || !_networks.ContainsKey(config.Id))
        {
            throw new CnmNotFoundException(CnmErrorCodes.NoSuchNetwork, $"network \"{name}\"", $"configuration network \"{config.Name}\" does not exist");
        }

        _creatingFromConfig[networkId] = (config.Name, name);
    }

    /// <summary>
    /// Creates a configuration-only network: its settings are checked as a network's are (IPAM configurations
    /// included), then its record is written. No driver, no IPAM: nothing else to undo, so no intent.
    /// </summary>
    private async ValueTask<Network> CreateConfigOnlyNetworkAsync(string name, NetworkCreateOptions options, CancellationToken cancellationToken)
    {
        var enableIPv6 = options.EnableIPv6 || Flag(options.DriverOptions, NetLabels.EnableIPv6);
        var ipv4 = ParseIpamConfigs(name, options.IPv4Config, ipv6: false);
        var ipv6 = ParseIpamConfigs(name, options.IPv6Config, ipv6: true);
        if (!enableIPv6 && ipv6.Count > 0)
        {
            throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidOption, $"network \"{name}\"", "IPv6 configuration given but IPv6 is not enabled");
        }

        // The IPAM that networks created from it will use, when it is here, checks the pools now.
        var ipamName = options.IpamDriver is null || string.Equals(options.IpamDriver, Ipam.IpamNames.Default, StringComparison.Ordinal) ? _options.DefaultIpamDriver : options.IpamDriver;
        var ipam = _registry.ContainsIpam(ipamName) ? _registry.GetIpam(ipamName) : null;
        CheckPoolConfigurations(name, ipam, ipv4);
        CheckPoolConfigurations(name, ipam, ipv6);
        var id = options.Id ?? Ids.NewId();
        var record = new NetworkRecord
        {
            Id = id,
            Name = name,
            Driver = ConfigOnlyDriverName,
            Scope = ScopeName(DriverScope.Local),
            Created = _time.GetUtcNow(),
            EnableIPv6 = enableIPv6,
            IpamDriver = options.IpamDriver,
            IpamOptions = new(options.IpamOptions, StringComparer.Ordinal),
            DriverOptions = new(options.DriverOptions, StringComparer.Ordinal),
            Labels = new(options.Labels, StringComparer.Ordinal),
            IPv4Config = ipv4.Select(c => c.Record).ToList(),
            IPv6Config = ipv6.Select(c => c.Record).ToList(),
            ConfigOnly = true,
        };

        Network network;
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            ThrowIfNetworkTaken(id, name);
            var version = await _store.Store.PutAsync(CoreStore.NetworkKey(id), CoreStore.Serialize(record, CoreJsonContext.Default.NetworkRecord), StoreVersion.Absent, cancellationToken).ConfigureAwait(false);
            network = new Network(this, record, version, driver: null);
            _networks[id] = network;
        }
        finally
        {
            _gate.Release();
        }

        Log.NetworkCreated(_logger, name, id, ConfigOnlyDriverName);
        return network;
    }

    /// <summary>
    /// Deletes a configuration-only network: refused while a network (created, being created, or not loaded because
    /// its driver is not registered) took its configuration from it. Only its record goes.
    /// </summary>
    private async ValueTask DeleteConfigOnlyNetworkAsync(Network network, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (!_networks.ContainsKey(network.Id) || network.Deleting)
            {
                throw new CnmNotFoundException(CnmErrorCodes.NoSuchNetwork, network.ToString(), "no such network");
            }

            var users = _networks.Values.Select(n => n.Record)
                .Concat(_unloadedNetworks.Select(n => n.Record))
                .Where(r => string.Equals(r.ConfigFrom, network.Name, StringComparison.Ordinal))
                .Select(r => r.Name)
                .Concat(_creatingFromConfig.Values.Where(c => string.Equals(c.Config, network.Name, StringComparison.Ordinal)).Select(c => c.Network))
                .Order(StringComparer.Ordinal)
                .ToList();
            if (users.Count > 0)
            {
                throw new CnmConflictException(
                    CnmErrorCodes.ConfigNetworkInUse,
                    network.ToString(),
                    $"configuration network \"{network.Name}\" is in use by network {string.Join(", ", users.Select(u => $"\"{u}\""))}: delete that first");
            }

            await _store.Store.DeleteAsync(CoreStore.NetworkKey(network.Id), network.Version, cancellationToken).ConfigureAwait(false);
            network.Deleting = true;
            _networks.TryRemove(network.Id, out _);
        }
        finally
        {
            _gate.Release();
        }

        Log.NetworkDeleted(_logger, network.Name, network.Id);
    }

    /// <summary>A network as loaded from the store: with its registered driver, or none when configuration-only.
    /// Null when its driver is not registered (yet).</summary>
    private Network? LoadedNetwork(NetworkRecord record, long version) =>
        record.ConfigOnly ? new Network(this, record, version, driver: null)
        : _registry.ContainsDriver(record.Driver) ? new Network(this, record, version, _registry.GetDriver(record.Driver))
        : null;
}
