using System.Text;
using System.Text.Json;
using CnmSharp.Drivers;
using CnmSharp.Ipam;
using CnmSharp.Ipam.Default;
using CnmSharp.Store;
using CnmSharp.Testing;
using CsCheck;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using static CnmSharp.Testing.HostileJson;

namespace CnmSharp.Plugins.Hosting.Tests;

/// <summary>
/// Hostile request bodies to every path of the plugin host (docs/reliability.md, "Hostile input"), as a daemon or
/// anything else on the socket could send them: malformed, wrong-typed, null, huge, deeply nested. The handler serves
/// a driver that accepts everything and the real default IPAM over an in-memory store. Every reply must be one of the
/// statuses the protocol promises (200, 400, 404, 500) with a JSON body, and no call may reach the handler's
/// last-resort catch (its <c>CallCrashed</c> log, event 3): every refusal is a malformed-request or typed error.
/// </summary>
public sealed class PluginRequestFuzzTests
{
    private const int Iterations = 250;

    private const string Id = "0123456789abcdef0123456789abcdef";

    private static readonly string[] s_paths =
    [
        "/Plugin.Activate", "/NetworkDriver.GetCapabilities", "/NetworkDriver.CreateNetwork", "/NetworkDriver.DeleteNetwork",
        "/NetworkDriver.AllocateNetwork", "/NetworkDriver.FreeNetwork", "/NetworkDriver.CreateEndpoint", "/NetworkDriver.DeleteEndpoint",
        "/NetworkDriver.EndpointOperInfo", "/NetworkDriver.Join", "/NetworkDriver.Leave", "/NetworkDriver.ProgramExternalConnectivity",
        "/NetworkDriver.RevokeExternalConnectivity", "/NetworkDriver.DiscoverNew", "/NetworkDriver.DiscoverDelete",
        "/IpamDriver.GetCapabilities", "/IpamDriver.GetDefaultAddressSpaces", "/IpamDriver.RequestPool", "/IpamDriver.ReleasePool",
        "/IpamDriver.RequestAddress", "/IpamDriver.ReleaseAddress", "/Unknown.Method", "/IpamDriver.ReleaseOwner",
    ];

    private static readonly Gen<string> s_id = Gen.OneOf(Gen.Const(Quote(Id)), Gen.Const(Quote(Id)), StringLiteral);

    private static readonly Gen<string> s_ipamData = Shaped(("AddressSpace", StringLiteral), ("Pool", StringLiteral), ("Gateway", StringLiteral), ("AuxAddresses", Value(2)))
        .Array[0, 2].Select(a => "[" + string.Join(",", a) + "]");

    private static readonly Gen<string> s_options = Gen.OneOf(
        Value(2),
        Shaped(
            ("com.docker.network.generic", Value(2)),
            ("com.docker.network.enable_ipv6", Scalar),
            ("com.docker.network.internal", Scalar),
            ("com.docker.network.endpoint.exposedports", Shaped(("Proto", Scalar), ("Port", Scalar)).Array[0, 2].Select(a => "[" + string.Join(",", a) + "]")),
            ("com.docker.network.portmap", Shaped(("Proto", Scalar), ("IP", StringLiteral), ("Port", Scalar), ("HostIP", StringLiteral), ("HostPort", Scalar), ("HostPortEnd", Scalar)).Array[0, 2].Select(a => "[" + string.Join(",", a) + "]")),
            ("com.docker.network.endpoint.macaddress", StringLiteral)));

    /// <summary>Each method's request shape with hostile values (plugin-protocol.md sections 4 and 5).</summary>
    private static Gen<string> Shape(string path) => path switch
    {
        "/NetworkDriver.CreateNetwork" or "/NetworkDriver.AllocateNetwork" =>
            Shaped(("NetworkID", s_id), ("Options", s_options), ("IPv4Data", s_ipamData), ("IPv6Data", s_ipamData)),
        "/NetworkDriver.CreateEndpoint" =>
            Shaped(("NetworkID", s_id), ("EndpointID", s_id), ("Options", s_options),
                ("Interface", Shaped(("Address", StringLiteral), ("AddressIPv6", StringLiteral), ("MacAddress", StringLiteral)))),
        "/NetworkDriver.Join" =>
            Shaped(("NetworkID", s_id), ("EndpointID", s_id), ("SandboxKey", StringLiteral), ("Options", s_options)),
        "/NetworkDriver.ProgramExternalConnectivity" =>
            Shaped(("NetworkID", s_id), ("EndpointID", s_id), ("Options", s_options)),
        "/NetworkDriver.DiscoverNew" or "/NetworkDriver.DiscoverDelete" =>
            Shaped(("DiscoveryType", Scalar), ("DiscoveryData", Gen.OneOf(Value(2), Shaped(("Address", StringLiteral), ("BindAddress", StringLiteral), ("Self", Scalar), ("Scope", StringLiteral), ("Provider", StringLiteral))))),
        "/IpamDriver.RequestPool" =>
            Shaped(("AddressSpace", Gen.OneOf(Gen.Const("\"LocalDefault\""), Gen.Const("\"GlobalDefault\""), StringLiteral)), ("Pool", StringLiteral), ("SubPool", StringLiteral), ("Options", Value(2)), ("V6", Scalar)),
        "/IpamDriver.ReleasePool" => Shaped(("PoolID", StringLiteral)),
        "/IpamDriver.ReleaseOwner" => Shaped(("Owner", Gen.OneOf(Gen.Const("\"network:" + Id + "\""), StringLiteral))),
        "/IpamDriver.RequestAddress" or "/IpamDriver.ReleaseAddress" =>
            Shaped(("PoolID", Gen.OneOf(Gen.Const("\"LocalDefault/10.77.0.0/24\""), StringLiteral)), ("Address", StringLiteral), ("Options", Value(2))),
        _ => Shaped(("NetworkID", s_id), ("EndpointID", s_id)),
    };

    private sealed class CrashCounter : ILogger
    {
        public List<string> Crashes { get; } = [];

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (eventId.Id == 3)
            {
                Crashes.Add($"{formatter(state, exception)}: {exception}");
            }
        }
    }

    /// <summary>A driver that accepts every call and returns empty results (what the host does around it is under test).</summary>
    private sealed class AcceptingDriver : INetworkDriver, IExternalConnectivityDriver, INetworkAllocatorDriver, IDiscoveryAwareDriver
    {
        private static readonly IReadOnlyDictionary<string, string> s_empty = new Dictionary<string, string>();

        public DriverCapability Capability => DriverCapability.LocalScope;

        public ValueTask CreateNetworkAsync(NetworkCreateRequest request, CancellationToken cancellationToken = default) => default;

        public ValueTask DeleteNetworkAsync(string networkId, CancellationToken cancellationToken = default) => default;

        public ValueTask CreateEndpointAsync(EndpointCreateRequest request, IInterfaceInfo interfaceInfo, CancellationToken cancellationToken = default) => default;

        public ValueTask DeleteEndpointAsync(string networkId, string endpointId, CancellationToken cancellationToken = default) => default;

        public ValueTask<IReadOnlyDictionary<string, string>> GetEndpointOperationalInfoAsync(string networkId, string endpointId, CancellationToken cancellationToken = default) => ValueTask.FromResult(s_empty);

        public ValueTask JoinAsync(JoinRequest request, IJoinInfo joinInfo, CancellationToken cancellationToken = default) => default;

        public ValueTask LeaveAsync(string networkId, string endpointId, CancellationToken cancellationToken = default) => default;

        public ValueTask ProgramExternalConnectivityAsync(string networkId, string endpointId, CancellationToken cancellationToken = default) => default;

        public ValueTask RevokeExternalConnectivityAsync(string networkId, string endpointId, CancellationToken cancellationToken = default) => default;

        public ValueTask<IReadOnlyDictionary<string, string>> AllocateNetworkAsync(string networkId, IReadOnlyDictionary<string, string> options, IReadOnlyList<IpamData> ipv4, IReadOnlyList<IpamData> ipv6, CancellationToken cancellationToken = default) => ValueTask.FromResult(s_empty);

        public ValueTask FreeNetworkAsync(string networkId, CancellationToken cancellationToken = default) => default;

        public ValueTask DiscoverNewAsync(DiscoveryEvent discovery, CancellationToken cancellationToken = default) => default;

        public ValueTask DiscoverDeleteAsync(DiscoveryEvent discovery, CancellationToken cancellationToken = default) => default;
    }

    private static async Task<(PluginRequestHandler Handler, CrashCounter Crashes, InMemoryKeyValueStore Store)> HandlerAsync()
    {
        var store = new InMemoryKeyValueStore();
        var ipam = await new DefaultIpamFactory().CreateAsync(new DriverContext
        {
            ControllerId = "fuzz",
            RunDirectory = Path.GetTempPath(),
            Store = store,
            StoreKeyPrefix = "ipam/default/",
            LoggerFactory = NullLoggerFactory.Instance,
        });
        var crashes = new CrashCounter();
        return (new PluginRequestHandler(new AcceptingDriver(), ipam, store, crashes), crashes, store);
    }

    private static async Task CheckAsync(PluginRequestHandler handler, CrashCounter crashes, string path, byte[] body)
    {
        var reply = await handler.HandleAsync(path, body);
        Assert.That(reply.StatusCode, Is.AnyOf(200, 400, 404, 500), "a status the protocol promises");
        Assert.DoesNotThrow(() => JsonDocument.Parse(reply.Body).Dispose(), "a JSON body");
        Assert.That(crashes.Crashes, Is.Empty, "no call reaches the last-resort catch");
    }

    private static IEnumerable<string> Paths() => s_paths;

    [TestCaseSource(nameof(Paths))]
    public async Task Hostile_request_bodies_get_a_protocol_reply_and_never_crash_the_handler(string path)
    {
        var (handler, crashes, store) = await HandlerAsync();
        await using var _ = store;

        // A network and an endpoint the requests can find (ids in the generated bodies are often these).
        await handler.HandleAsync("/NetworkDriver.CreateNetwork", Encoding.UTF8.GetBytes($"{{\"NetworkID\":\"{Id}\",\"Options\":{{}}}}"));
        await handler.HandleAsync("/NetworkDriver.CreateEndpoint", Encoding.UTF8.GetBytes($"{{\"NetworkID\":\"{Id}\",\"EndpointID\":\"{Id}\",\"Interface\":{{\"Address\":\"10.77.0.2/24\"}},\"Options\":{{}}}}"));
        await handler.HandleAsync("/IpamDriver.RequestPool", Encoding.UTF8.GetBytes("{\"AddressSpace\":\"LocalDefault\",\"Pool\":\"10.77.0.0/24\"}"));
        await Fuzz.RunAsync(Body(Shape(path)), body => CheckAsync(handler, crashes, path, body), Iterations, seed: (ulong)(400 + Array.IndexOf(s_paths, path)), print: Encoding.UTF8.GetString);
    }

    [TestCaseSource(nameof(CorpusCases))]
    public async Task Corpus_requests_get_a_protocol_reply_and_never_crash_the_handler(string file)
    {
        var (handler, crashes, store) = await HandlerAsync();
        await using var _ = store;
        var path = "/" + file[..file.LastIndexOf('.', file.Length - 6)];
        await CheckAsync(handler, crashes, path, Fuzz.CorpusBytes("plugin-requests", file));
    }

    private static IEnumerable<TestCaseData> CorpusCases() => Fuzz.Corpus("plugin-requests");
}
