using System.Net;
using System.Net.NetworkInformation;
using CnmSharp.Core;
using CnmSharp.Core.Persistence;
using CnmSharp.Drivers;

namespace CnmSharp;

/// <summary>
/// An endpoint: one network interface of a network, joined to at most one sandbox at a time.
/// </summary>
public sealed class Endpoint
{
    private volatile EndpointRecord _record;

    internal Endpoint(Network network, EndpointRecord record, long version)
    {
        Network = network;
        _record = record;
        Version = version;
    }

    internal EndpointRecord Record
    {
        get => _record;
        set => _record = value;
    }

    internal long Version { get; set; }

    /// <summary>The Leave intent of a leave that failed (kept in the store): a retry reuses and completes it.</summary>
    internal IntentTracker? PendingLeave { get; set; }

    /// <summary>Serialises join, leave and delete of this endpoint.</summary>
    internal SemaphoreSlim Gate { get; } = new(1, 1);

    private bool _deleted;

    /// <summary>Deleted, or left its deleted sandbox and waits for its teardown: gone for every caller.</summary>
    internal bool Deleted
    {
        get => _deleted || _record.TearingDown;
        set => _deleted = value;
    }

    /// <summary>The id.</summary>
    public string Id => _record.Id;

    /// <summary>The name, unique in its network.</summary>
    public string Name => _record.Name;

    /// <summary>The network.</summary>
    public Network Network { get; }

    /// <summary>The cluster node (host) that made the endpoint, for endpoints of global-scope networks on a controller
    /// with a global store (<see cref="ClusterOptions.NodeName"/>); else null.</summary>
    public string? Node => _record.Node;

    /// <summary>The MAC address, if any.</summary>
    public PhysicalAddress? MacAddress => _record.MacAddress is { } m ? Macs.Parse(m) : null;

    /// <summary>The IPv4 address, if any.</summary>
    public CidrAddress? Address => _record.Address is { } a ? CidrAddress.Parse(a) : null;

    /// <summary>The IPv6 address, if any.</summary>
    public CidrAddress? AddressIPv6 => _record.AddressIPv6 is { } a ? CidrAddress.Parse(a) : null;

    /// <summary>Link-local addresses.</summary>
    public IReadOnlyList<CidrAddress> LinkLocalAddresses => _record.LinkLocalAddresses.Select(CidrAddress.Parse).ToArray();

    /// <summary>DNS aliases.</summary>
    public IReadOnlyList<string> Aliases => _record.Aliases;

    /// <summary>True for an anonymous endpoint.</summary>
    public bool Anonymous => _record.Anonymous;

    /// <summary>The endpoint gives its sandbox no embedded DNS (<see cref="EndpointCreateOptions.DisableResolution"/>).</summary>
    public bool DisableResolution => _record.DisableResolution;

    /// <summary>Published ports. While the endpoint provides its sandbox's external connectivity, the bindings as the
    /// driver published them (a requested host port 0 shows the ephemeral port it was given, and the driver may list
    /// more, such as the IPv6 copy of a binding on every address); otherwise the bindings as requested.</summary>
    public IReadOnlyList<PortBinding> PortBindings =>
        (_record.PublishedPorts ?? _record.PortBindings).Select(p => new PortBinding((TransportProtocol)p.Protocol, (ushort)p.ContainerPort, IPAddress.Parse(p.HostIP), (ushort)p.HostPort, (ushort)p.HostPortEnd)).ToArray();

    /// <summary>The sandbox the endpoint is joined to, or null.</summary>
    public Sandbox? Sandbox => _record.Join is { } j ? Network.Controller.FindSandboxById(j.SandboxId) : null;

    /// <summary>The interface's name inside the sandbox (<c>eth0</c>), when joined and the driver gave one.</summary>
    public string? InterfaceName => _record.Join?.DestinationName;

    /// <summary>The interface's source name as the driver named it, when joined.</summary>
    public string? SourceInterfaceName => _record.Join?.SourceName;

    /// <summary>The IPv4 gateway, set only while joined.</summary>
    public IPAddress? Gateway => _record.Join?.Gateway is { } g ? IPAddress.Parse(g) : null;

    /// <summary>The IPv6 gateway, set only while joined.</summary>
    public IPAddress? GatewayIPv6 => _record.Join?.GatewayIPv6 is { } g ? IPAddress.Parse(g) : null;

    /// <summary>Static routes the driver asked for, set only while joined.</summary>
    public IReadOnlyList<StaticRoute> StaticRoutes =>
        _record.Join?.StaticRoutes.Select(r => new StaticRoute(IPNetwork.Parse(r.Destination), (RouteType)r.Type, r.NextHop is null ? null : IPAddress.Parse(r.NextHop))).ToArray() ?? [];

    /// <summary>The gateway priority given at join.</summary>
    public int Priority => _record.Join?.Priority ?? 0;

    /// <summary>Joins the endpoint to a sandbox.</summary>
    /// <param name="sandbox">The sandbox.</param>
    /// <param name="options">Join options.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when the interface is configured in the sandbox.</returns>
    public ValueTask JoinAsync(Sandbox sandbox, JoinOptions? options = null, CancellationToken cancellationToken = default) =>
        Network.Controller.JoinAsync(this, sandbox, options ?? new JoinOptions(), cancellationToken);

    /// <summary>Takes the endpoint out of the sandbox it is joined to.</summary>
    /// <param name="sandbox">The sandbox.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when it has left.</returns>
    public ValueTask LeaveAsync(Sandbox sandbox, CancellationToken cancellationToken = default) =>
        Network.Controller.LeaveAsync(this, sandbox, cancellationToken);

    /// <summary>Deletes the endpoint and releases its addresses. Refused while joined unless <paramref name="force"/>.</summary>
    /// <param name="force">Leave the sandbox first instead of refusing.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when it is gone.</returns>
    public ValueTask DeleteAsync(bool force = false, CancellationToken cancellationToken = default) =>
        Network.Controller.DeleteEndpointAsync(this, force, cancellationToken);

    /// <summary>The driver's operational data about the endpoint (for example its port map).</summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>Key/value data.</returns>
    public ValueTask<IReadOnlyDictionary<string, string>> GetDriverInfoAsync(CancellationToken cancellationToken = default) =>
        Network.RegisteredDriver.Driver.GetEndpointOperationalInfoAsync(Network.Id, Id, cancellationToken);

    /// <inheritdoc />
    public override string ToString() => $"endpoint \"{Name}\" ({Ids.Short(Id)})";
}
