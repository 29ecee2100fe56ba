using CnmSharp.Core;
using CnmSharp.Core.Persistence;

namespace CnmSharp;

/// <summary>
/// A sandbox: a container's network stack (one network namespace), holding the endpoints joined to it. The endpoint
/// that comes first in <see cref="Endpoints"/> and has a gateway provides the default route.
/// </summary>
public sealed class Sandbox
{
    private readonly List<Endpoint> _endpoints = [];
    private readonly Lock _endpointsLock = new();
    private volatile SandboxRecord _record;

    internal Sandbox(NetworkController controller, SandboxRecord record, long version)
    {
        Controller = controller;
        _record = record;
        Version = version;
        Deleting = record.TearingDown;
    }

    internal NetworkController Controller { get; }

    internal SandboxRecord Record
    {
        get => _record;
        set => _record = value;
    }

    internal long Version { get; set; }

    /// <summary>Serialises joins and leaves of this sandbox.</summary>
    internal SemaphoreSlim Gate { get; } = new(1, 1);

    internal bool Deleting { get; set; }

    /// <summary>A delete of this sandbox has decided whether it is the last user of its network namespace: it no longer
    /// counts as a user (guarded by the controller's namespace lock; see <c>NetworkController.SharedNamespaces</c>).</summary>
    internal bool LeftNamespace { get; set; }

    /// <summary>The id.</summary>
    public string Id => _record.Id;

    /// <summary>The container the sandbox belongs to.</summary>
    public string ContainerId => _record.ContainerId;

    /// <summary>The key: the path of the sandbox's network namespace.</summary>
    public string Key => _record.Key;

    /// <summary>True when the sandbox is the host's own namespace.</summary>
    public bool UsesHostNamespace => _record.UsesHostNamespace;

    /// <summary>The container's hostname.</summary>
    public string? Hostname => _record.Hostname;

    /// <summary>The container's domain name.</summary>
    public string? DomainName => _record.DomainName;

    /// <summary>
    /// Container mode: the id of the sandbox named at creation whose network namespace this one shares (Docker's
    /// <c>--network container:&lt;id&gt;</c>), or null when the sandbox has its own (or the host's, in host mode). It may
    /// have been deleted since: the namespace lives on while any of its users does.
    /// </summary>
    public string? SharedFrom => _record.SharedFrom;

    /// <summary>Container mode: the container of <see cref="SharedFrom"/> (kept once that sandbox is gone), or null.</summary>
    public string? SharedFromContainerId => _record.SharedFromContainer;

    /// <summary>True when the sandbox shares another sandbox's network namespace (container mode): it has no endpoints
    /// of its own and none can join it.</summary>
    public bool SharesNetwork => _record.SharedFrom is not null;

    /// <summary>
    /// The sandbox that made the network namespace this sandbox uses, and its files: its own <see cref="Id"/>, or, in
    /// container mode, the sandbox at the root of the sharing (which may be gone while sharers remain). Sandboxes with
    /// the same value share one namespace.
    /// </summary>
    public string NetworkSandboxId => _record.NetworkSandboxId ?? _record.Id;

    /// <summary>The directory of the sandbox's generated files (in container mode, those of the shared namespace).</summary>
    public string FilesDirectory => Controller.SandboxFilesDirectory(NetworkSandboxId);

    /// <summary>The sandbox's generated <c>/etc/hosts</c> (bind it into the container).</summary>
    public string HostsPath => Sandboxes.Files.SandboxFiles.HostsPath(FilesDirectory);

    /// <summary>The sandbox's generated <c>/etc/resolv.conf</c> (bind it into the container).</summary>
    public string ResolvConfPath => Sandboxes.Files.SandboxFiles.ResolvConfPath(FilesDirectory);

    /// <summary>The joined endpoints in gateway order: the first with a gateway provides the default route.</summary>
    public IReadOnlyList<Endpoint> Endpoints
    {
        get
        {
            lock (_endpointsLock)
            {
                return [.. _endpoints];
            }
        }
    }

    /// <summary>The endpoint that provides the default gateway and external connectivity: the one whose IPv4 gateway
    /// is the IPv4 default route, else the IPv6 one; null when none has a gateway.</summary>
    public Endpoint? GatewayEndpoint => GatewayElection.Elect(Endpoints);

    /// <summary>The endpoint whose IPv6 gateway is the sandbox's IPv6 default route (elected apart from IPv4), or null.</summary>
    public Endpoint? GatewayEndpointIPv6 => GatewayElection.ElectIPv6(Endpoints);

    /// <summary>Deletes the sandbox: every endpoint leaves and is deleted, then the namespace goes, unless another
    /// sandbox shares it (container mode): then the endpoints' interfaces are removed from it and it stays.</summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when it is gone.</returns>
    public ValueTask DeleteAsync(CancellationToken cancellationToken = default) => Controller.DeleteSandboxAsync(this, cancellationToken);

    /// <inheritdoc />
    public override string ToString() => $"sandbox {Ids.Short(Id)} of container \"{ContainerId}\"";

    internal void AddEndpoint(Endpoint endpoint)
    {
        lock (_endpointsLock)
        {
            _endpoints.Add(endpoint);
            GatewayElection.Sort(_endpoints);
        }
    }

    /// <summary>Replaces the joined endpoints (a reload from the store).</summary>
    internal void SetEndpoints(IEnumerable<Endpoint> endpoints)
    {
        lock (_endpointsLock)
        {
            _endpoints.Clear();
            _endpoints.AddRange(endpoints);
            GatewayElection.Sort(_endpoints);
        }
    }

    internal void RemoveEndpoint(Endpoint endpoint)
    {
        lock (_endpointsLock)
        {
            _endpoints.Remove(endpoint);
        }
    }
}
