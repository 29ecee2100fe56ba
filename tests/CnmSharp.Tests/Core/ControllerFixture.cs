using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Net;
using CnmSharp.Core.Persistence;
using CnmSharp.Drivers;
using CnmSharp.Ipam;
using CnmSharp.Sandboxes;
using CnmSharp.Store;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using Moq;

namespace CnmSharp.Tests.Core;

/// <summary>A driver factory that hands out a given (mocked) driver.</summary>
internal sealed class FakeDriverFactory(string name, INetworkDriver driver) : INetworkDriverFactory
{
    public string Name => name;

    public ValueTask<INetworkDriver> CreateAsync(DriverContext context, CancellationToken cancellationToken = default) => ValueTask.FromResult(driver);
}

/// <summary>An IPAM factory that hands out a given (mocked) IPAM driver.</summary>
internal sealed class FakeIpamFactory(string name, IIpamDriver ipam) : IIpamDriverFactory
{
    public string Name => name;

    public ValueTask<IIpamDriver> CreateAsync(DriverContext context, CancellationToken cancellationToken = default) => ValueTask.FromResult(ipam);
}

/// <summary>A meter factory whose meters carry it as their scope, so a MetricCollector sees only this controller.</summary>
internal sealed class TestMeterFactory : IMeterFactory
{
    private readonly List<Meter> _meters = [];

    public Meter Create(MeterOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Scope = this;
        var meter = new Meter(options);
        _meters.Add(meter);
        return meter;
    }

    public void Dispose()
    {
        foreach (var meter in _meters)
        {
            meter.Dispose();
        }
    }
}

/// <summary>
/// Builds controllers over a mocked driver (<see cref="DriverName"/>) and mocked sandbox networking, with the real
/// default IPAM unless a test registers its own. Nothing touches the kernel.
/// </summary>
internal sealed class ControllerFixture : IAsyncDisposable
{
    public const string DriverName = "test";
    public const string MockIpamName = "mock";

    /// <summary>Join option: the test driver reports no gateway.</summary>
    public const string NoGateway = "test.nogw";

    /// <summary>Join option: the test driver creates the interface inside the sandbox.</summary>
    public const string InSandbox = "test.insandbox";

    private readonly List<INetworkDriverFactory> _drivers = [];
    private readonly List<IIpamDriverFactory> _ipams = [];
    private readonly List<NetworkController> _controllers = [];

    public ControllerFixture()
    {
        Directory = Path.Combine(Path.GetTempPath(), "cnmsharp-core-" + Guid.NewGuid().ToString("N"));
        System.IO.Directory.CreateDirectory(Directory);
        Driver = NewDriverMock(DriverCapability.LocalScope);
        External = Driver.As<IExternalConnectivityDriver>();
        _drivers.Add(new FakeDriverFactory(DriverName, Driver.Object));

        Netns = new Mock<ISandboxNetworking>();
        Netns.Setup(n => n.NamespaceExistsAsync(It.IsAny<string>(), It.IsAny<CancellationToken>())).ReturnsAsync(true);
        Netns.Setup(n => n.ChangeGatewayRoutesAsync(It.IsAny<string>(), It.IsAny<IReadOnlyList<SandboxGatewayRoute>>(), It.IsAny<IReadOnlyList<SandboxGatewayRoute>>(), It.IsAny<CancellationToken>()))
            .Callback<string, IReadOnlyList<SandboxGatewayRoute>, IReadOnlyList<SandboxGatewayRoute>, CancellationToken>(ApplyGatewayRoutes)
            .Returns(ValueTask.CompletedTask);

        // As in the kernel, an interface's routes go with it, and a namespace's with the namespace.
        Netns.Setup(n => n.RemoveInterfaceAsync(It.IsAny<string>(), It.IsAny<SandboxInterface>(), It.IsAny<CancellationToken>()))
            .Callback<string, SandboxInterface, CancellationToken>((key, i, _) =>
            {
                if (CoreRoutes.TryGetValue(key, out var routes))
                {
                    lock (routes)
                    {
                        routes.RemoveAll(r => r.InterfaceName == i.DestinationName);
                    }
                }
            })
            .Returns(ValueTask.CompletedTask);
        Netns.Setup(n => n.DeleteNamespaceAsync(It.IsAny<string>(), It.IsAny<CancellationToken>()))
            .Callback<string, CancellationToken>((key, _) => CoreRoutes.TryRemove(key, out List<SandboxGatewayRoute>? _))
            .Returns(ValueTask.CompletedTask);
    }

    /// <summary>The default routes the core has installed, per sandbox key, as the mocked sandbox networking applied
    /// its changes (a route it removes that it never added fails the test).</summary>
    public ConcurrentDictionary<string, List<SandboxGatewayRoute>> CoreRoutes { get; } = new(StringComparer.Ordinal);

    /// <summary>Every default route the core asked to remove, in order.</summary>
    public ConcurrentQueue<SandboxGatewayRoute> RemovedRoutes { get; } = new();

    private bool _recordCalls;

    private void ApplyGatewayRoutes(string key, IReadOnlyList<SandboxGatewayRoute> remove, IReadOnlyList<SandboxGatewayRoute> add, CancellationToken cancellationToken)
    {
        if (_recordCalls)
        {
            Calls.Enqueue("netns.gateway " + string.Join(",", add.Select(r => r.InterfaceName).Distinct()));
        }

        var routes = CoreRoutes.GetOrAdd(key, _ => []);
        lock (routes)
        {
            foreach (var route in add.Where(r => !routes.Contains(r)))
            {
                routes.Add(route);
            }

            foreach (var route in remove)
            {
                RemovedRoutes.Enqueue(route);
                Assert.That(route.Unmarked || routes.Contains(route), Is.True, $"the core removes {route}, which it never installed");
                routes.Remove(route);
            }
        }
    }

    public string Directory { get; }

    public Mock<INetworkDriver> Driver { get; }

    public Mock<IExternalConnectivityDriver> External { get; }

    public Mock<ISandboxNetworking> Netns { get; }

    public IKeyValueStore Store { get; set; } = new InMemoryKeyValueStore();

    /// <summary>The cluster's shared store for global-scope networks, or null (the default) for a controller without
    /// one.</summary>
    public ISharedKeyValueStore? GlobalStore { get; set; }

    public Action<CnmOptions>? Configure { get; set; }

    /// <summary>The time the controllers use (a FakeTimeProvider for back-off tests); the system's when null.</summary>
    public TimeProvider? Time { get; set; }

    /// <summary>Everything the controllers log.</summary>
    public FakeLogCollector Logs { get; } = new();

    private ILoggerFactory? _loggerFactory;

    /// <summary>The gateways the test driver saw at network creation, reported back at join.</summary>
    public ConcurrentDictionary<string, (IPAddress? V4, IPAddress? V6)> Gateways { get; } = new(StringComparer.Ordinal);

    /// <summary>Calls made to the driver and sandbox networking, in order (for call-order rules).</summary>
    public ConcurrentQueue<string> Calls { get; } = new();

    /// <summary>Registers another mocked driver (with external connectivity) under <paramref name="name"/>.</summary>
    /// <param name="name">The driver's name.</param>
    /// <param name="capability">Its capability.</param>
    /// <param name="extend">Adds interfaces to the mock (Moq allows it only before the mock's object is made).</param>
    public Mock<INetworkDriver> AddDriver(string name, DriverCapability capability, Action<Mock<INetworkDriver>>? extend = null)
    {
        var mock = NewDriverMock(capability);
        mock.As<IExternalConnectivityDriver>();
        extend?.Invoke(mock);
        _drivers.Add(new FakeDriverFactory(name, mock.Object));
        return mock;
    }

    public void AddDriver(INetworkDriverFactory factory) => _drivers.Add(factory);

    /// <summary>Registers an IPAM driver under <see cref="MockIpamName"/>.</summary>
    public void AddIpam(IIpamDriver ipam) => _ipams.Add(new FakeIpamFactory(MockIpamName, ipam));

    /// <summary>A strict IPAM mock that answers only the registration call; tests add the calls they expect.</summary>
    public static Mock<IIpamDriver> StrictIpam(bool requiresMac = false)
    {
        var ipam = new Mock<IIpamDriver>(MockBehavior.Strict);
        ipam.Setup(i => i.GetDefaultAddressSpacesAsync(It.IsAny<CancellationToken>()))
            .ReturnsAsync(new AddressSpaces(IpamNames.LocalDefaultAddressSpace, IpamNames.GlobalDefaultAddressSpace));
        ipam.Setup(i => i.Capability).Returns(new IpamCapability(RequiresMacAddress: requiresMac));
        return ipam;
    }

    public NetworkControllerBuilder NewBuilder(IKeyValueStore? store = null)
    {
        // Unit tests never reach the kernel: only the kernel-free built-ins (no bridge driver), no firewall, and a
        // mocked sandbox networking. A controller without a host namespace path works in the process's own (root)
        // namespace, which tests must never touch.
        var builder = new NetworkControllerBuilder()
            .WithoutBuiltIns()
            .AddDriver(new CnmSharp.Drivers.Null.NullDriverFactory())
            .AddDriver(new CnmSharp.Drivers.Host.HostDriverFactory())
            .AddIpamDriver(new CnmSharp.Ipam.Default.DefaultIpamFactory())
            .AddIpamDriver(new CnmSharp.Ipam.Null.NullIpamFactory())
            .UseFirewall(null)
            .Configure(o =>
            {
                o.StateDirectory = Directory;
                o.RunDirectory = Path.Combine(Directory, "run");
                Configure?.Invoke(o);
            })
            .UseStore(store ?? Store)
            .UseSandboxNetworking(Netns.Object)
            .UseLoggerFactory(_loggerFactory ??= new LoggerFactory([new FakeLoggerProvider(Logs)]));
        if (Time is not null)
        {
            builder.UseTimeProvider(Time);
        }

        if (GlobalStore is not null)
        {
            builder.UseGlobalStore(GlobalStore);
        }

        foreach (var driver in _drivers)
        {
            builder.AddDriver(driver);
        }

        foreach (var ipam in _ipams)
        {
            builder.AddIpamDriver(ipam);
        }

        return builder;
    }

    public async Task<NetworkController> StartAsync(IKeyValueStore? store = null, IMeterFactory? meters = null)
    {
        var builder = NewBuilder(store);
        if (meters is not null)
        {
            builder.UseMeterFactory(meters);
        }

        var controller = await builder.BuildAsync();
        _controllers.Add(controller);
        return controller;
    }

    /// <summary>The keys under a store prefix (for example <see cref="CoreStore.IntentPrefix"/>).</summary>
    public async Task<IReadOnlyList<string>> KeysAsync(string prefix, IKeyValueStore? store = null) =>
        (await (store ?? Store).ListAsync(prefix)).Select(e => e.Key).ToArray();

    public async ValueTask DisposeAsync()
    {
        foreach (var controller in _controllers)
        {
            await controller.DisposeAsync();
        }

        await Store.DisposeAsync();
        if (GlobalStore is not null)
        {
            await GlobalStore.DisposeAsync();
        }

        _loggerFactory?.Dispose();
        if (System.IO.Directory.Exists(Directory))
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
    }

    private Mock<INetworkDriver> NewDriverMock(DriverCapability capability)
    {
        var mock = new Mock<INetworkDriver>();
        mock.Setup(d => d.Capability).Returns(capability);
        mock.Setup(d => d.CreateNetworkAsync(It.IsAny<NetworkCreateRequest>(), It.IsAny<CancellationToken>()))
            .Callback<NetworkCreateRequest, CancellationToken>((r, _) =>
                Gateways[r.NetworkId] = (r.IPv4Data.Count > 0 ? r.IPv4Data[0].Gateway?.Address : null, r.IPv6Data.Count > 0 ? r.IPv6Data[0].Gateway?.Address : null))
            .Returns(ValueTask.CompletedTask);
        mock.Setup(d => d.JoinAsync(It.IsAny<JoinRequest>(), It.IsAny<IJoinInfo>(), It.IsAny<CancellationToken>()))
            .Callback<JoinRequest, IJoinInfo, CancellationToken>((r, j, _) =>
            {
                Calls.Enqueue("driver.join");
                if (!r.SandboxUsesHostNamespace)
                {
                    j.SetInterfaceName("veth" + r.EndpointId[..7], "eth", r.Options.ContainsKey(InSandbox) ? InterfacePlacement.Sandbox : InterfacePlacement.HostNamespace);
                }

                if (!r.Options.ContainsKey(NoGateway) && Gateways.TryGetValue(r.NetworkId, out var gw))
                {
                    if (gw.V4 is { } v4)
                    {
                        j.SetGateway(v4);
                    }

                    if (gw.V6 is { } v6)
                    {
                        j.SetGatewayIPv6(v6);
                    }
                }
            })
            .Returns(ValueTask.CompletedTask);
        return mock;
    }

    /// <summary>Makes the sandbox-networking and external-connectivity mocks record their calls in <see cref="Calls"/>.</summary>
    public void RecordCalls()
    {
        Netns.Setup(n => n.AddInterfaceAsync(It.IsAny<string>(), It.IsAny<SandboxInterface>(), It.IsAny<CancellationToken>()))
            .Callback<string, SandboxInterface, CancellationToken>((_, i, _) => Calls.Enqueue("netns.add " + i.DestinationName))
            .Returns(ValueTask.CompletedTask);
        _recordCalls = true;
        External.Setup(e => e.ProgramExternalConnectivityAsync(It.IsAny<string>(), It.IsAny<string>(), It.IsAny<CancellationToken>()))
            .Callback(() => Calls.Enqueue("driver.program"))
            .Returns(ValueTask.CompletedTask);
    }
}

/// <summary>Base of the core test fixtures: a fresh <see cref="ControllerFixture"/> per test.</summary>
public abstract class ControllerTestBase
{
    internal ControllerFixture F { get; private set; } = null!;

    [SetUp]
    public void CreateFixture() => F = new ControllerFixture();

    [TearDown]
    public async Task DisposeFixture() => await F.DisposeAsync();

    /// <summary>A fixed subnet config.</summary>
    protected static NetworkCreateOptions Subnet(string subnet, string? gateway = null, string? range = null) =>
        new() { IPv4Config = [new IpamConfig { Subnet = subnet, Gateway = gateway, IPRange = range }] };

    internal static async Task<T> ThrowsAsync<T>(Func<Task> action, string code)
        where T : CnmException
    {
        var ex = await CatchAsync(action);
        Assert.That(ex, Is.InstanceOf<T>(), ex?.ToString());
        Assert.That(((CnmException)ex!).Code, Is.EqualTo(code), ex.Message);
        return (T)ex;
    }

    internal static async Task<Exception?> CatchAsync(Func<Task> action)
    {
        try
        {
            await action();
            return null;
        }
        catch (Exception ex)
        {
            return ex;
        }
    }
}
