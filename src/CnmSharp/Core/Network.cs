using System.Net;
using CnmSharp.Core;
using CnmSharp.Core.Persistence;
using CnmSharp.Drivers;

namespace CnmSharp;

/// <summary>A pool a network holds, as IPAM gave it.</summary>
/// <param name="PoolId">The IPAM pool id.</param>
/// <param name="AddressSpace">The address space.</param>
/// <param name="Pool">The subnet.</param>
/// <param name="Gateway">The gateway with the subnet's prefix length.</param>
/// <param name="AuxAddresses">Reserved named addresses.</param>
/// <param name="Meta">IPAM data.</param>
public sealed record IpamInfo(string PoolId, string AddressSpace, IPNetwork Pool, CidrAddress? Gateway, IReadOnlyDictionary<string, CidrAddress> AuxAddresses, IReadOnlyDictionary<string, string> Meta);

/// <summary>
/// A network: a group of endpoints that can reach each other, programmed by one driver, addressed by one IPAM.
/// Obtained from <see cref="NetworkController"/>; its methods are safe to call concurrently.
/// </summary>
public sealed class Network
{
    private readonly Dictionary<string, Endpoint> _endpoints = new(StringComparer.Ordinal);
    private readonly Lock _endpointsLock = new();
    private volatile NetworkRecord _record;

    private readonly RegisteredDriver? _driver;

    /// <param name="controller">The controller.</param>
    /// <param name="record">The record.</param>
    /// <param name="version">The record's store version.</param>
    /// <param name="driver">The driver; null only for a configuration-only network, which has none.</param>
    internal Network(NetworkController controller, NetworkRecord record, long version, RegisteredDriver? driver)
    {
        Controller = controller;
        _record = record;
        Version = version;
        _driver = driver;
        Deleting = record.TearingDown;
        IPv4Info = record.IPv4Info.Select(ToInfo).ToArray();
        IPv6Info = record.IPv6Info.Select(ToInfo).ToArray();
    }

    internal NetworkController Controller { get; }

    /// <summary>The driver. A configuration-only network has none: its endpoint creation and deletion are refused or
    /// handled before any driver call.</summary>
    internal RegisteredDriver RegisteredDriver =>
        _driver ?? throw new CnmConflictException(CnmErrorCodes.ConfigOnlyNetwork, ToString(), "a configuration-only network has no driver");

    internal NetworkRecord Record
    {
        get => _record;
        set => _record = value;
    }

    internal long Version { get; set; }

    /// <summary>Serialises endpoint creation and deletion on this network (name uniqueness).</summary>
    internal SemaphoreSlim Gate { get; } = new(1, 1);

    internal bool Deleting { get; set; }

    /// <summary>The id (64 hex characters).</summary>
    public string Id => _record.Id;

    /// <summary>The name.</summary>
    public string Name => _record.Name;

    /// <summary>The driver's name.</summary>
    public string Driver => _record.Driver;

    /// <summary>The scope: <c>local</c>, <c>global</c> or <c>swarm</c>.</summary>
    public string Scope => _record.Scope;

    /// <summary>When it was created.</summary>
    public DateTimeOffset Created => _record.Created;

    /// <summary>True for a network the controller created itself as one of its default networks
    /// (<see cref="CnmOptions.DefaultNetworks"/>); such a network cannot be deleted.</summary>
    public bool PreDefined => _record.PreDefined;

    /// <summary>True when IPv6 is enabled.</summary>
    public bool EnableIPv6 => _record.EnableIPv6;

    /// <summary>True for an internal network.</summary>
    public bool Internal => _record.Internal;

    /// <summary>No embedded DNS from this network (<see cref="NetworkCreateOptions.DisableDns"/>).</summary>
    public bool DisableDns => _record.DisableDns;

    /// <summary>True when attachable.</summary>
    public bool Attachable => _record.Attachable;

    /// <summary>The IPAM driver's name; null for networks without IPAM.</summary>
    public string? IpamDriver => _record.IpamDriver;

    /// <summary>IPAM options.</summary>
    public IReadOnlyDictionary<string, string> IpamOptions => _record.IpamOptions;

    /// <summary>Driver options.</summary>
    public IReadOnlyDictionary<string, string> DriverOptions => _record.DriverOptions;

    /// <summary>Labels.</summary>
    public IReadOnlyDictionary<string, string> Labels => _record.Labels;

    /// <summary>The IPv4 configuration as requested.</summary>
    public IReadOnlyList<IpamConfig> IPv4Config => _record.IPv4Config.Select(ToConfig).ToArray();

    /// <summary>The IPv6 configuration as requested.</summary>
    public IReadOnlyList<IpamConfig> IPv6Config => _record.IPv6Config.Select(ToConfig).ToArray();

    /// <summary>True for a configuration-only network (<see cref="NetworkCreateOptions.ConfigOnly"/>): it only holds a
    /// configuration for other networks; it has no pools (<see cref="IPv4Info"/> is empty) and no endpoints.</summary>
    public bool ConfigOnly => _record.ConfigOnly;

    /// <summary>The name of the configuration-only network this network took its configuration from
    /// (<see cref="NetworkCreateOptions.ConfigFrom"/>), or null.</summary>
    public string? ConfigFrom => _record.ConfigFrom;

    /// <summary>The IPv4 pools held.</summary>
    public IReadOnlyList<IpamInfo> IPv4Info { get; }

    /// <summary>The IPv6 pools held.</summary>
    public IReadOnlyList<IpamInfo> IPv6Info { get; }

    /// <summary>The endpoints other hosts of the cluster made on this global-scope network, as this controller last
    /// saw them in the global store (ordered by node, then name); empty for a local-scope network or without a global
    /// store. <see cref="Endpoints"/> are this host's own.</summary>
    public IReadOnlyList<ClusterEndpoint> RemoteEndpoints => Controller.RemoteEndpointsOf(Id);

    /// <summary>The endpoints, ordered by name.</summary>
    public IReadOnlyList<Endpoint> Endpoints
    {
        get
        {
            lock (_endpointsLock)
            {
                return [.. _endpoints.Values.OrderBy(e => e.Name, StringComparer.Ordinal)];
            }
        }
    }

    /// <summary>Finds an endpoint by name.</summary>
    /// <param name="name">The name.</param>
    /// <returns>The endpoint, or null.</returns>
    /// <exception cref="CnmInvalidArgumentException">The name is empty.</exception>
    public Endpoint? FindEndpointByName(string name)
    {
        if (string.IsNullOrWhiteSpace(name))
        {
            throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidName, "endpoint name", "the name is empty");
        }

        lock (_endpointsLock)
        {
            return _endpoints.Values.FirstOrDefault(e => string.Equals(e.Name, name, StringComparison.Ordinal));
        }
    }

    /// <summary>Finds an endpoint by id.</summary>
    /// <param name="id">The id.</param>
    /// <returns>The endpoint, or null.</returns>
    /// <exception cref="CnmInvalidArgumentException">The id is empty.</exception>
    public Endpoint? FindEndpointById(string id)
    {
        if (string.IsNullOrWhiteSpace(id))
        {
            throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidId, "endpoint id", "the id is empty");
        }

        lock (_endpointsLock)
        {
            return _endpoints.GetValueOrDefault(id);
        }
    }

    /// <summary>Calls <paramref name="walker"/> on each endpoint until it returns true.</summary>
    /// <param name="walker">Returns true to stop.</param>
    /// <returns>The endpoint the walk stopped at, or null.</returns>
    public Endpoint? WalkEndpoints(Func<Endpoint, bool> walker)
    {
        ArgumentNullException.ThrowIfNull(walker);
        return Endpoints.FirstOrDefault(walker);
    }

    /// <summary>Creates an endpoint: allocates its addresses and asks the driver to create it. On failure nothing is left.</summary>
    /// <param name="name">The endpoint's name, unique in the network.</param>
    /// <param name="options">Options.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The endpoint.</returns>
    public ValueTask<Endpoint> CreateEndpointAsync(string name, EndpointCreateOptions? options = null, CancellationToken cancellationToken = default) =>
        Controller.CreateEndpointAsync(this, name, options ?? new EndpointCreateOptions(), cancellationToken);

    /// <summary>Deletes the network. Refused for a <see cref="PreDefined"/> network and while it has endpoints.</summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when it is gone.</returns>
    public ValueTask DeleteAsync(CancellationToken cancellationToken = default) => Controller.DeleteNetworkAsync(this, cancellationToken);

    /// <inheritdoc />
    public override string ToString() => $"network \"{Name}\" ({Ids.Short(Id)})";

    internal bool TryAddEndpoint(Endpoint endpoint)
    {
        lock (_endpointsLock)
        {
            if (_endpoints.Values.Any(e => string.Equals(e.Name, endpoint.Name, StringComparison.Ordinal)))
            {
                return false;
            }

            _endpoints.Add(endpoint.Id, endpoint);
            return true;
        }
    }

    internal void RemoveEndpoint(Endpoint endpoint)
    {
        lock (_endpointsLock)
        {
            _endpoints.Remove(endpoint.Id);
        }
    }

    internal int EndpointCount
    {
        get
        {
            lock (_endpointsLock)
            {
                return _endpoints.Count;
            }
        }
    }

    internal IEnumerable<IpamInfo> AllPools => IPv4Info.Concat(IPv6Info);

    internal IReadOnlyList<IpamData> ToIpamData(bool ipv6) =>
        (ipv6 ? IPv6Info : IPv4Info).Select(i => new IpamData(i.AddressSpace, i.Pool, i.Gateway, i.AuxAddresses)).ToArray();

    private static IpamInfo ToInfo(IpamInfoRecord r) => new(
        r.PoolId,
        r.AddressSpace,
        IPNetwork.Parse(r.Pool),
        r.Gateway is null ? null : CidrAddress.Parse(r.Gateway),
        r.AuxAddresses.ToDictionary(kv => kv.Key, kv => CidrAddress.Parse(kv.Value), StringComparer.Ordinal),
        r.Meta);

    private static IpamConfig ToConfig(IpamConfigRecord r) => new()
    {
        Subnet = r.Subnet,
        IPRange = r.IPRange,
        Gateway = r.Gateway,
        AuxAddresses = r.AuxAddresses,
    };
}
