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

    /// <summary>The directory of the sandbox's generated files.</summary>
    public string FilesDirectory => Controller.SandboxFilesDirectory(Id);

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

    /// <summary>The endpoint that provides the default gateway, or null.</summary>
    public Endpoint? GatewayEndpoint => GatewayElection.Elect(Endpoints);

    /// <summary>Deletes the sandbox: every endpoint leaves and is deleted, then the namespace goes.</summary>
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
