using System.Net;
using System.Text;
using CnmSharp.Core;
using CnmSharp.Drivers;
using CnmSharp.Ipam;
using CnmSharp.Plugins;
using CnmSharp.Testing;
using CsCheck;
using Microsoft.Extensions.Logging.Abstractions;
using static CnmSharp.Testing.HostileJson;

namespace CnmSharp.Tests.Plugins;

/// <summary>
/// Hostile replies of a remote plugin (docs/reliability.md, "Hostile input"): every reply the remote driver and the
/// remote IPAM read (activation, capabilities, address spaces, pools, addresses, create endpoint, join, operational
/// info, allocate network, and the error replies of the others) comes back malformed, wrong-typed, null, huge, deeply
/// nested or with any HTTP status, over a real unix socket. Each call must end within its bound with success or a
/// <see cref="CnmException"/>; nothing else. The corpus (Corpus/plugin-replies/&lt;Method&gt;.&lt;name&gt;.json) holds
/// the replies that once broke it.
/// </summary>
[NonParallelizable]
public sealed class PluginReplyFuzzTests
{
    private const int Iterations = 150;
    private string _directory = null!;
    private FakePluginServer _server = null!;
    private volatile string _target = "";
    private volatile PluginReply _reply = PluginReply.Ok("{}");

    [OneTimeSetUp]
    public void Start()
    {
        _directory = Path.Combine(Path.GetTempPath(), "cnm-fz-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(_directory);
        _server = new FakePluginServer(Path.Combine(_directory, "p.sock"), Answer);
    }

    [OneTimeTearDown]
    public async Task Stop()
    {
        await _server.DisposeAsync();
        Directory.Delete(_directory, recursive: true);
    }

    private PluginReply Answer(PluginRequest request)
    {
        if (request.Path == _target)
        {
            return _reply;
        }

        return request.Path switch
        {
            "/Plugin.Activate" => PluginReply.Ok("{\"Implements\":[\"NetworkDriver\",\"IpamDriver\"]}"),
            "/NetworkDriver.GetCapabilities" => PluginReply.Ok("{\"Scope\":\"local\"}"),
            "/IpamDriver.GetDefaultAddressSpaces" => PluginReply.Ok("{\"LocalDefaultAddressSpace\":\"l\",\"GlobalDefaultAddressSpace\":\"g\"}"),
            _ => PluginReply.Ok("{}"),
        };
    }

    private PluginClient NewClient() => new(
        new PluginSpec("fz", new Uri("unix://" + _server.SocketPath), _server.SocketPath),
        new PluginOptions { RetryDelays = [], CallTimeout = TimeSpan.FromSeconds(3) },
        NullLogger.Instance);

    /// <summary>The reply shapes of plugin-protocol.md, one per method, with hostile values.</summary>
    private static readonly Dictionary<string, Gen<string>> s_shapes = new(StringComparer.Ordinal)
    {
        ["/Plugin.Activate"] = Shaped(("Implements", Gen.OneOf<string>("[\"NetworkDriver\",\"IpamDriver\"]", "[null]", "[\"NetworkDriver\",1]", "\"NetworkDriver\"")), ("Err", StringLiteral)),
        ["/NetworkDriver.GetCapabilities"] = Shaped(("Scope", StringLiteral), ("ConnectivityScope", StringLiteral), ("Err", Gen.Const("\"\""))),
        ["/NetworkDriver.CreateEndpoint"] = Shaped(("Interface", Shaped(("Address", StringLiteral), ("AddressIPv6", StringLiteral), ("MacAddress", StringLiteral))), ("Err", Gen.Const("\"\""))),
        ["/NetworkDriver.Join"] = Shaped(
            ("InterfaceName", Shaped(("SrcName", StringLiteral), ("DstPrefix", StringLiteral))),
            ("Gateway", StringLiteral),
            ("GatewayIPv6", StringLiteral),
            ("StaticRoutes", Gen.OneOf(Shaped(("Destination", StringLiteral), ("RouteType", Scalar), ("NextHop", StringLiteral)), Gen.Const("null")).Array[0, 3].Select(r => "[" + string.Join(",", r) + "]")),
            ("DisableGatewayService", Scalar),
            ("Err", Gen.Const("\"\""))),
        ["/NetworkDriver.EndpointOperInfo"] = Shaped(("Value", Value(2))),
        ["/NetworkDriver.AllocateNetwork"] = Shaped(("Options", Value(2))),
        ["/NetworkDriver.CreateNetwork"] = Shaped(("Err", StringLiteral)),
        ["/NetworkDriver.Leave"] = Shaped(("Err", StringLiteral)),
        ["/IpamDriver.GetCapabilities"] = Shaped(("RequiresMACAddress", Scalar), ("RequiresRequestReplay", Scalar), ("Error", StringLiteral)),
        ["/IpamDriver.GetDefaultAddressSpaces"] = Shaped(("LocalDefaultAddressSpace", StringLiteral), ("GlobalDefaultAddressSpace", StringLiteral), ("Error", Gen.Const("\"\""))),
        ["/IpamDriver.RequestPool"] = Shaped(("PoolID", StringLiteral), ("Pool", StringLiteral), ("Data", Shaped(("com.docker.network.gateway", StringLiteral))), ("Error", Gen.Const("\"\""))),
        ["/IpamDriver.RequestAddress"] = Shaped(("Address", StringLiteral), ("Data", Value(2)), ("Error", Gen.Const("\"\""))),
        ["/IpamDriver.ReleaseAddress"] = Shaped(("Error", StringLiteral)),
    };

    private static Gen<PluginReply> Replies(string method) =>
        Gen.Select(Gen.OneOf(Gen.Const(200), Gen.Const(200), Gen.Const(200), Gen.OneOf(400, 404, 500, 204, 302)), Body(s_shapes[method]))
            .Select(t => new PluginReply(t.Item1, Encoding.UTF8.GetString(t.Item2)));

    /// <summary>Makes the one call of <paramref name="method"/> that reads its reply.</summary>
    private async Task CallAsync(string method, PluginClient? shared)
    {
        using var fresh = shared is null ? NewClient() : null;
        var client = shared ?? fresh!;
        switch (method)
        {
            case "/Plugin.Activate":
                await client.EnsureImplementsAsync("NetworkDriver");
                break;
            case "/NetworkDriver.GetCapabilities":
                _ = await RemoteDriver.CreateAsync(client, NullLogger.Instance);
                break;
            case "/IpamDriver.GetCapabilities":
            case "/IpamDriver.GetDefaultAddressSpaces":
                var created = await RemoteIpam.CreateAsync(client, NullLogger.Instance);
                _ = await created.GetDefaultAddressSpacesAsync();
                break;
            default:
                await CallDriverOrIpamAsync(method, client);
                break;
        }
    }

    private static async Task CallDriverOrIpamAsync(string method, PluginClient client)
    {
        if (method.StartsWith("/IpamDriver.", StringComparison.Ordinal))
        {
            var ipam = await RemoteIpam.CreateAsync(client, NullLogger.Instance);
            switch (method)
            {
                case "/IpamDriver.RequestPool":
                    var pool = await ipam.RequestPoolAsync(new PoolRequest { AddressSpace = "l", Pool = "10.9.0.0/24" });
                    Assert.That(pool.PoolId, Is.Not.Empty);
                    break;
                case "/IpamDriver.RequestAddress":
                    _ = await ipam.RequestAddressAsync("p", null, new Dictionary<string, string>());
                    break;
                default:
                    await ipam.ReleaseAddressAsync("p", IPAddress.Parse("10.9.0.2"));
                    break;
            }

            return;
        }

        var driver = await RemoteDriver.CreateAsync(client, NullLogger.Instance);
        switch (method)
        {
            case "/NetworkDriver.CreateEndpoint":
                await driver.CreateEndpointAsync(new EndpointCreateRequest { NetworkId = "n", EndpointId = "e", EndpointName = "e" }, new InterfaceInfo());
                break;
            case "/NetworkDriver.Join":
                await driver.JoinAsync(new JoinRequest { NetworkId = "n", EndpointId = "e", SandboxId = "s", SandboxKey = "/run/s" }, new JoinInfo(new InterfaceInfo()));
                break;
            case "/NetworkDriver.EndpointOperInfo":
                _ = await driver.GetEndpointOperationalInfoAsync("n", "e");
                break;
            case "/NetworkDriver.AllocateNetwork":
                _ = await driver.AllocateNetworkAsync("n", new Dictionary<string, string>(), [], []);
                break;
            case "/NetworkDriver.CreateNetwork":
                await driver.CreateNetworkAsync(new NetworkCreateRequest { NetworkId = "n", NetworkName = "n" });
                break;
            default:
                await driver.LeaveAsync("n", "e");
                break;
        }
    }

    private async Task CheckAsync(string method, PluginReply reply, PluginClient? shared)
    {
        _target = method;
        _reply = reply;
        try
        {
            await CallAsync(method, shared);
        }
        catch (CnmException)
        {
            // A typed refusal: what a hostile reply must give.
        }
    }

    private static IEnumerable<string> Methods() => s_shapes.Keys;

    [TestCaseSource(nameof(Methods))]
    public async Task Hostile_replies_give_success_or_a_typed_error(string method)
    {
        // Activation and capabilities are read once per client: those need a fresh client per reply.
        var perReply = method is "/Plugin.Activate" or "/NetworkDriver.GetCapabilities" or "/IpamDriver.GetCapabilities";
        using var shared = perReply ? null : NewClient();
        await Fuzz.RunAsync(Replies(method), reply => CheckAsync(method, reply, shared), Iterations, seed: (ulong)(300 + method.Length), print: r => $"HTTP {r.Status} {r.Body}");
    }

    [TestCaseSource(nameof(CorpusCases))]
    public async Task Corpus_replies_give_success_or_a_typed_error(string file)
    {
        // <Method>.<name>.json, answered with 200, or with the status <name> starts with ("500-...").
        var dot = file.LastIndexOf('.', file.Length - 6);
        var method = "/" + file[..dot];
        var name = file[(dot + 1)..^5];
        var status = name.Length > 4 && name[3] == '-' && int.TryParse(name[..3], out var s) ? s : 200;
        var body = Encoding.UTF8.GetString(Fuzz.CorpusBytes("plugin-replies", file));
        await CheckAsync(method, new PluginReply(status, body), null);
    }

    private static IEnumerable<TestCaseData> CorpusCases() => Fuzz.Corpus("plugin-replies");
}
