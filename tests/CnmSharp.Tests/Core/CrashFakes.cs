using System.Net;
using System.Net.NetworkInformation;
using CnmSharp.Drivers;
using CnmSharp.Sandboxes;
using CnmSharp.Store;

namespace CnmSharp.Tests.Core;

/// <summary>Thrown by the fakes to simulate the process dying at a step.</summary>
internal sealed class SimulatedCrashException : Exception
{
    public SimulatedCrashException()
        : base("simulated crash")
    {
    }
}

/// <summary>Counts the steps that change something (kernel, driver, store writes); at step <see cref="CrashAt"/>, and
/// at every call after it, throws <see cref="SimulatedCrashException"/>: a dead controller changes nothing more.</summary>
internal sealed class CrashSwitch
{
    private int _steps;
    private volatile bool _crashed;

    public int CrashAt { get; set; } = int.MaxValue;

    public bool Crashed => _crashed;

    /// <summary>Starts counting from zero, crashing at step <paramref name="step"/>.</summary>
    public void Arm(int step)
    {
        _steps = 0;
        CrashAt = step;
    }

    public void Step()
    {
        Check();
        if (Interlocked.Increment(ref _steps) >= CrashAt)
        {
            _crashed = true;
            throw new SimulatedCrashException();
        }
    }

    public void Check()
    {
        if (_crashed)
        {
            throw new SimulatedCrashException();
        }
    }
}

/// <summary>An in-memory kernel: namespaces holding links; a veth pair's ends go together.</summary>
internal sealed class FakeKernel
{
    public const string Host = "(host)";

    public sealed class Link
    {
        public required string Name { get; set; }

        public required string Namespace { get; set; }

        public PhysicalAddress? Mac { get; set; }

        public List<CidrAddress> Addresses { get; } = [];

        public Link? Peer { get; set; }
    }

    public object Lock { get; } = new();

    public Dictionary<string, List<Link>> Namespaces { get; } = new(StringComparer.Ordinal) { [Host] = [] };

    /// <summary>The networks' gateways, as the driver recorded them (its own records, surviving a crash).</summary>
    public Dictionary<string, IPAddress?> Gateways { get; } = new(StringComparer.Ordinal);

    public Link? Find(string ns, string name)
    {
        lock (Lock)
        {
            return Namespaces.TryGetValue(ns, out var links) ? links.FirstOrDefault(l => l.Name == name) : null;
        }
    }

    public void Delete(Link link)
    {
        lock (Lock)
        {
            foreach (var l in new[] { link, link.Peer })
            {
                if (l is not null && Namespaces.TryGetValue(l.Namespace, out var links))
                {
                    links.Remove(l);
                }
            }
        }
    }

    public string[] Names(string ns)
    {
        lock (Lock)
        {
            return Namespaces.TryGetValue(ns, out var links) ? links.Select(l => l.Name).ToArray() : [];
        }
    }
}

/// <summary>A bridge-like driver over <see cref="FakeKernel"/>: the join creates a veth pair, the container end directly
/// in the sandbox (named after the endpoint, with the endpoint's MAC); leave does nothing (the core removes the container
/// end, or the namespace takes it); delete removes the host end if it is still there.</summary>
internal sealed class FakeVethDriver(FakeKernel kernel, CrashSwitch crash) : INetworkDriver
{
    public DriverCapability Capability => DriverCapability.LocalScope;

    public static string HostName(string endpointId) => "vh" + endpointId[..8];

    public static string ContainerName(string endpointId) => "vc" + endpointId[..8];

    public static PhysicalAddress MacOf(string endpointId) => PhysicalAddress.Parse("02-00-" + string.Join("-", Enumerable.Range(0, 4).Select(i => endpointId.Substring(i * 2, 2))));

    public ValueTask CreateNetworkAsync(NetworkCreateRequest request, CancellationToken cancellationToken = default)
    {
        crash.Step();
        lock (kernel.Lock)
        {
            kernel.Gateways[request.NetworkId] = request.IPv4Data.Count > 0 ? request.IPv4Data[0].Gateway?.Address : null;
        }

        return ValueTask.CompletedTask;
    }

    public ValueTask DeleteNetworkAsync(string networkId, CancellationToken cancellationToken = default)
    {
        crash.Step();
        return ValueTask.CompletedTask;
    }

    public ValueTask CreateEndpointAsync(EndpointCreateRequest request, IInterfaceInfo interfaceInfo, CancellationToken cancellationToken = default)
    {
        crash.Step();
        if (interfaceInfo.MacAddress is null)
        {
            interfaceInfo.SetMacAddress(MacOf(request.EndpointId));
        }

        return ValueTask.CompletedTask;
    }

    public ValueTask DeleteEndpointAsync(string networkId, string endpointId, CancellationToken cancellationToken = default)
    {
        crash.Step();
        if (kernel.Find(FakeKernel.Host, HostName(endpointId)) is { } host)
        {
            kernel.Delete(host);
        }

        return ValueTask.CompletedTask;
    }

    public ValueTask<IReadOnlyDictionary<string, string>> GetEndpointOperationalInfoAsync(string networkId, string endpointId, CancellationToken cancellationToken = default) =>
        ValueTask.FromResult<IReadOnlyDictionary<string, string>>(new Dictionary<string, string>());

    public ValueTask JoinAsync(JoinRequest request, IJoinInfo joinInfo, CancellationToken cancellationToken = default)
    {
        crash.Step();
        lock (kernel.Lock)
        {
            if (kernel.Find(FakeKernel.Host, HostName(request.EndpointId)) is { } stale)
            {
                kernel.Delete(stale);
            }

            if (!kernel.Namespaces.TryGetValue(request.SandboxKey, out var sandbox))
            {
                throw new CnmNotFoundException(CnmErrorCodes.NoSuchSandbox, request.SandboxKey, "no namespace");
            }

            var host = new FakeKernel.Link { Name = HostName(request.EndpointId), Namespace = FakeKernel.Host };
            var container = new FakeKernel.Link { Name = ContainerName(request.EndpointId), Namespace = request.SandboxKey, Mac = joinInfo.InterfaceInfo.MacAddress, Peer = host };
            host.Peer = container;
            kernel.Namespaces[FakeKernel.Host].Add(host);
            sandbox.Add(container);
            joinInfo.SetInterfaceName(container.Name, "eth", InterfacePlacement.Sandbox);
            if (kernel.Gateways.GetValueOrDefault(request.NetworkId) is { } gateway)
            {
                joinInfo.SetGateway(gateway);
            }
        }

        return ValueTask.CompletedTask;
    }

    public ValueTask LeaveAsync(string networkId, string endpointId, CancellationToken cancellationToken = default)
    {
        crash.Step();
        return ValueTask.CompletedTask;
    }
}

/// <summary>Sandbox networking over <see cref="FakeKernel"/>; configuring an interface is two steps (rename, then
/// addresses), as in the kernel.</summary>
internal sealed class FakeSandboxNetworking(FakeKernel kernel, CrashSwitch crash) : ISandboxNetworking
{
    public ValueTask CreateNamespaceAsync(string key, CancellationToken cancellationToken = default)
    {
        crash.Step();
        lock (kernel.Lock)
        {
            kernel.Namespaces.TryAdd(key, []);
        }

        return ValueTask.CompletedTask;
    }

    public ValueTask<bool> NamespaceExistsAsync(string key, CancellationToken cancellationToken = default)
    {
        crash.Check();
        lock (kernel.Lock)
        {
            return ValueTask.FromResult(kernel.Namespaces.ContainsKey(key));
        }
    }

    public ValueTask DeleteNamespaceAsync(string key, CancellationToken cancellationToken = default)
    {
        crash.Step();
        lock (kernel.Lock)
        {
            if (kernel.Namespaces.Remove(key, out var links))
            {
                foreach (var link in links)
                {
                    kernel.Delete(link);
                }
            }
        }

        return ValueTask.CompletedTask;
    }

    public ValueTask AddInterfaceAsync(string key, SandboxInterface sandboxInterface, CancellationToken cancellationToken = default)
    {
        crash.Step();
        var link = kernel.Find(key, sandboxInterface.SourceName) ?? throw new CnmInternalException(CnmErrorCodes.KernelError, sandboxInterface.SourceName, "no such link");
        lock (kernel.Lock)
        {
            link.Name = sandboxInterface.DestinationName;
        }

        crash.Step();
        lock (kernel.Lock)
        {
            link.Mac = sandboxInterface.MacAddress ?? link.Mac;
            link.Addresses.AddRange(sandboxInterface.Addresses);
        }

        return ValueTask.CompletedTask;
    }

    public ValueTask RemoveInterfaceAsync(string key, SandboxInterface sandboxInterface, CancellationToken cancellationToken = default)
    {
        crash.Step();
        if (kernel.Find(key, sandboxInterface.DestinationName) is { } link)
        {
            kernel.Delete(link);
        }

        return ValueTask.CompletedTask;
    }

    public ValueTask<IReadOnlyList<SandboxLink>> GetInterfacesAsync(string key, CancellationToken cancellationToken = default)
    {
        crash.Check();
        lock (kernel.Lock)
        {
            IReadOnlyList<SandboxLink> links = kernel.Namespaces.TryGetValue(key, out var l) ? l.Select(x => new SandboxLink(x.Name, x.Mac)).ToArray() : [];
            return ValueTask.FromResult(links);
        }
    }

    public ValueTask ChangeGatewayRoutesAsync(string key, IReadOnlyList<SandboxGatewayRoute> remove, IReadOnlyList<SandboxGatewayRoute> add, CancellationToken cancellationToken = default)
    {
        crash.Step();
        return ValueTask.CompletedTask;
    }
}

/// <summary>A store whose writes are steps and that refuses everything once crashed.</summary>
internal sealed class CrashableStore(IKeyValueStore inner, CrashSwitch crash) : IKeyValueStore
{
    public ValueTask<long> GetRevisionAsync(CancellationToken cancellationToken = default)
    {
        crash.Check();
        return inner.GetRevisionAsync(cancellationToken);
    }

    public ValueTask<StoreEntry?> GetAsync(string key, CancellationToken cancellationToken = default)
    {
        crash.Check();
        return inner.GetAsync(key, cancellationToken);
    }

    public ValueTask<IReadOnlyList<StoreEntry>> ListAsync(string prefix, CancellationToken cancellationToken = default)
    {
        crash.Check();
        return inner.ListAsync(prefix, cancellationToken);
    }

    public ValueTask<long> PutAsync(string key, ReadOnlyMemory<byte> value, long expectedVersion, StoreDurability durability, CancellationToken cancellationToken = default)
    {
        crash.Step();
        return inner.PutAsync(key, value, expectedVersion, durability, cancellationToken);
    }

    public ValueTask<bool> DeleteAsync(string key, long expectedVersion, StoreDurability durability, CancellationToken cancellationToken = default)
    {
        crash.Step();
        return inner.DeleteAsync(key, expectedVersion, durability, cancellationToken);
    }

    public ValueTask<IReadOnlyList<long>> CommitAsync(IReadOnlyList<StoreOperation> operations, StoreDurability durability, CancellationToken cancellationToken = default)
    {
        crash.Step();
        return inner.CommitAsync(operations, durability, cancellationToken);
    }

    public IAsyncEnumerable<StoreEvent> WatchAsync(string prefix, CancellationToken cancellationToken = default) => inner.WatchAsync(prefix, cancellationToken);

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
