using System.Net;
using System.Text.Json;
using CnmSharp.Core;
using CnmSharp.Core.Persistence;
using CnmSharp.Drivers;
using CnmSharp.Ipam;
using CnmSharp.Plugins;
using CnmSharp.Sandboxes;
using CnmSharp.Store;
using CnmSharp.Tests.Core;
using Microsoft.Extensions.Logging.Abstractions;
using Moq;

namespace CnmSharp.Tests.Plugins;

/// <summary>
/// The remote driver and remote IPAM against an in-test plugin on a unix socket that answers with the request and
/// reply shapes of plugin-protocol.md sections 4 to 6, and misbehaves on demand. Every failure must be a typed
/// <see cref="CnmException"/> within its limit and leave no network, endpoint, intent or reservation behind.
/// </summary>
public sealed class RemotePluginTests : ControllerTestBase
{
    private const string Plugin = "fakeplug";
    private FakePlugin _plugin = null!;
    private FakePluginServer _server = null!;
    private string _socketDir = null!;
    private string _specDir = null!;

    [SetUp]
    public void StartPlugin()
    {
        _socketDir = Path.Combine(F.Directory, "sock");
        _specDir = Path.Combine(F.Directory, "spec");
        Directory.CreateDirectory(_socketDir);
        Directory.CreateDirectory(_specDir);
        _plugin = new FakePlugin();
        _server = new FakePluginServer(Path.Combine(_socketDir, Plugin + ".sock"), _plugin.Handle);
        F.Configure = o => o.Plugins = Options();
    }

    [TearDown]
    public async Task StopPlugin() => await _server.DisposeAsync();

    private PluginOptions Options() => new()
    {
        SocketDirectories = [_socketDir],
        SpecDirectories = [_specDir],
        RetryDelays = [TimeSpan.FromMilliseconds(50), TimeSpan.FromMilliseconds(100)],
        CallTimeout = TimeSpan.FromSeconds(2),
    };

    private static NetworkCreateOptions PluginNetwork(string subnet = "10.98.0.0/24") => new()
    {
        IpamDriver = Plugin,
        IPv4Config = [new IpamConfig { Subnet = subnet }],
        DriverOptions = new Dictionary<string, string> { ["foo"] = "bar" },
    };

    private async Task AssertNothingLeftAsync(NetworkController c, string name)
    {
        Assert.Multiple(async () =>
        {
            Assert.That(c.FindNetworkByName(name), Is.Null, "no network");
            Assert.That(await F.KeysAsync(CoreStore.IntentPrefix), Is.Empty, "no intent");
            Assert.That(_plugin.Pools, Is.Empty, "no pool left in the plugin's IPAM");
            Assert.That(_plugin.Addresses, Is.Empty, "no address left in the plugin's IPAM");
            Assert.That(_plugin.Networks, Is.Empty, "no network left in the plugin");
        });
    }

    [Test]
    public async Task A_network_endpoint_join_and_teardown_make_the_calls_a_real_daemon_makes_with_its_shapes()
    {
        var c = await F.StartAsync();
        var n = await c.CreateNetworkAsync("remote", Plugin, PluginNetwork());
        Assert.That(_server.Paths, Is.EqualTo(new[]
        {
            "/Plugin.Activate", "/NetworkDriver.GetCapabilities", "/IpamDriver.GetCapabilities", "/IpamDriver.GetDefaultAddressSpaces",
            "/IpamDriver.RequestPool", "/IpamDriver.RequestAddress", "/NetworkDriver.CreateNetwork",
        }));
        var requests = _server.Requests.ToArray();
        Assert.Multiple(() =>
        {
            Assert.That(requests.All(r => r.Method == "POST" && r.Headers["accept"] == "application/vnd.docker.plugins.v1.2+json"), Is.True);
            Assert.That(requests.Any(r => r.Headers.ContainsKey("content-type")), Is.False, "no Content-Type, as dockerd");
            Assert.That(requests[0].Body, Is.Empty, "Plugin.Activate has an empty body");
            Assert.That(requests[1].Body, Is.Empty);
            Assert.That(requests[3].Body, Is.Empty);
        });
        using (var pool = JsonDocument.Parse(requests[4].Body))
        {
            Assert.That(pool.RootElement.GetProperty("AddressSpace").GetString(), Is.EqualTo("plugspace"));
            Assert.That(pool.RootElement.GetProperty("Pool").GetString(), Is.EqualTo("10.98.0.0/24"));
            Assert.That(pool.RootElement.GetProperty("SubPool").GetString(), Is.Empty);
            Assert.That(pool.RootElement.GetProperty("V6").GetBoolean(), Is.False);
        }

        using (var gw = JsonDocument.Parse(requests[5].Body))
        {
            Assert.That(gw.RootElement.GetProperty("PoolID").GetString(), Is.EqualTo("plugspace/10.98.0.0/24"));
            Assert.That(gw.RootElement.GetProperty("Address").GetString(), Is.Empty);
            Assert.That(gw.RootElement.GetProperty("Options").GetProperty("RequestAddressType").GetString(), Is.EqualTo("com.docker.network.gateway"));
        }

        using (var create = JsonDocument.Parse(requests[6].Body))
        {
            var root = create.RootElement;
            Assert.That(root.GetProperty("NetworkID").GetString(), Is.EqualTo(n.Id));
            Assert.That(root.GetProperty("Options").GetProperty("com.docker.network.generic").GetProperty("foo").GetString(), Is.EqualTo("bar"));
            Assert.That(root.GetProperty("Options").GetProperty("com.docker.network.enable_ipv6").GetBoolean(), Is.False);
            var v4 = root.GetProperty("IPv4Data")[0];
            Assert.That(v4.GetProperty("Pool").GetString(), Is.EqualTo("10.98.0.0/24"));
            Assert.That(v4.GetProperty("Gateway").GetString(), Is.EqualTo("10.98.0.1/24"), "gateway in CIDR form");
        }

        var ep = await n.CreateEndpointAsync("ep", new EndpointCreateOptions { ExposedPorts = [new TransportPort(TransportProtocol.Tcp, 80)] });
        var createEndpoint = _server.Requests.Last(r => r.Path == "/NetworkDriver.CreateEndpoint");
        using (var doc = JsonDocument.Parse(createEndpoint.Body))
        {
            Assert.That(doc.RootElement.GetProperty("Interface").GetProperty("Address").GetString(), Is.EqualTo("10.98.0.2/24"));
            Assert.That(doc.RootElement.GetProperty("Interface").GetProperty("MacAddress").GetString(), Is.Empty);
            Assert.That(doc.RootElement.GetProperty("Options").GetProperty("com.docker.network.endpoint.exposedports")[0].GetProperty("Proto").GetInt32(), Is.EqualTo(6));
        }

        Assert.That(ep.MacAddress!.ToString(), Is.EqualTo("02420A620002"), "the MAC the plugin filled in");

        var sb = await c.CreateSandboxAsync("c1");
        await ep.JoinAsync(sb);
        Assert.Multiple(() =>
        {
            Assert.That(ep.Gateway, Is.EqualTo(IPAddress.Parse("10.98.0.1")));
            Assert.That(ep.StaticRoutes, Is.EqualTo(new[] { new StaticRoute(IPNetwork.Parse("192.168.50.0/24"), RouteType.NextHop, IPAddress.Parse("10.98.0.254")) }));
            Assert.That(sb.GatewayEndpoint, Is.SameAs(ep));
        });
        var source = "plugveth" + ep.Id[..5];
        F.Netns.Verify(x => x.AddInterfaceAsync(sb.Key, It.Is<SandboxInterface>(i => i.SourceName == source && i.Placement == InterfacePlacement.HostNamespace && i.DestinationName == "eth0"), It.IsAny<CancellationToken>()), Times.Once);
        Assert.That(_server.Paths.Skip(9), Is.EqualTo(new[] { "/NetworkDriver.Join", "/NetworkDriver.ProgramExternalConnectivity" }), "ProgramExternalConnectivity answers 404, which is fine");

        await sb.DeleteAsync();
        await c.WaitForTeardownsAsync();
        await n.DeleteAsync();
        Assert.That(_server.Paths.Skip(11), Is.EqualTo(new[]
        {
            "/NetworkDriver.RevokeExternalConnectivity", "/NetworkDriver.Leave", "/NetworkDriver.DeleteEndpoint", "/IpamDriver.ReleaseAddress",
            "/NetworkDriver.DeleteNetwork", "/IpamDriver.ReleaseAddress", "/IpamDriver.ReleasePool",
        }), "CnmSharp deletes the network in the driver before it releases its pools (mark, delete, release), where dockerd releases first");
        Assert.That(_plugin.Activations, Is.EqualTo(1), "activated once");
        await AssertNothingLeftAsync(c, "remote");
    }

    private static IEnumerable<TestCaseData> Misbehaviours()
    {
        yield return new TestCaseData("/NetworkDriver.CreateNetwork", PluginReply.Ok("{\"Err\": "), typeof(CnmInternalException), CnmErrorCodes.PluginProtocolError, null).SetArgDisplayNames("malformed JSON");
        yield return new TestCaseData("/NetworkDriver.GetCapabilities", PluginReply.Ok("{}"), typeof(CnmInternalException), CnmErrorCodes.PluginProtocolError, "Scope").SetArgDisplayNames("{} capabilities");
        yield return new TestCaseData("/NetworkDriver.GetCapabilities", PluginReply.Ok("{\"Scope\":\"galactic\"}"), typeof(CnmInternalException), CnmErrorCodes.PluginProtocolError, "galactic").SetArgDisplayNames("unknown scope");
        yield return new TestCaseData("/NetworkDriver.CreateNetwork", new PluginReply(500, "{\"Err\":\"vlan 7 taken\"}"), typeof(CnmInternalException), CnmErrorCodes.PluginError, "vlan 7 taken").SetArgDisplayNames("500 with Err");
        yield return new TestCaseData("/NetworkDriver.CreateNetwork", new PluginReply(500, "kaboom\n"), typeof(CnmInternalException), CnmErrorCodes.PluginError, "kaboom").SetArgDisplayNames("500 without Err");
        yield return new TestCaseData("/NetworkDriver.CreateNetwork", PluginReply.Ok("{\"Err\":\"no such vlan\"}"), typeof(CnmInternalException), CnmErrorCodes.PluginError, "no such vlan").SetArgDisplayNames("200 with Err");
        yield return new TestCaseData("/IpamDriver.RequestAddress", PluginReply.Ok("{\"Error\":\"pool exhausted\"}"), typeof(CnmInternalException), CnmErrorCodes.PluginError, "pool exhausted").SetArgDisplayNames("IPAM Error");
        yield return new TestCaseData("/IpamDriver.RequestAddress", PluginReply.Ok("{\"Address\":\"\"}"), typeof(CnmInternalException), CnmErrorCodes.PluginProtocolError, "no address returned").SetArgDisplayNames("IPAM no address");
        yield return new TestCaseData("/NetworkDriver.CreateNetwork", PluginReply.Hang, typeof(CnmUnavailableException), CnmErrorCodes.PluginUnavailable, "no reply within").SetArgDisplayNames("reply never comes (timeout)");
        yield return new TestCaseData("/NetworkDriver.CreateNetwork", PluginReply.Drop, typeof(CnmUnavailableException), CnmErrorCodes.PluginUnavailable, null).SetArgDisplayNames("connection dropped mid-call");
    }

    [TestCaseSource(nameof(Misbehaviours))]
    public async Task A_misbehaving_plugin_gives_a_typed_error_and_leaves_no_half_made_network(string path, PluginReply reply, Type kind, string code, string? text)
    {
        _plugin.Overrides[path] = _ => reply;
        var c = await F.StartAsync();
        var started = System.Diagnostics.Stopwatch.StartNew();

        var ex = await CatchAsync(() => c.CreateNetworkAsync("bad", Plugin, PluginNetwork()).AsTask());

        Assert.That(ex, Is.InstanceOf(kind), ex?.ToString());
        Assert.That(((CnmException)ex!).Code, Is.EqualTo(code), ex.Message);
        if (text is not null)
        {
            Assert.That(ex.Message, Does.Contain(text));
        }

        Assert.That(started.Elapsed, Is.LessThan(TimeSpan.FromSeconds(10)), "within the call timeout and the retries");
        _plugin.Overrides.Clear();
        await AssertNothingLeftAsync(c, "bad");
    }

    [Test]
    public async Task A_reply_that_never_comes_is_abandoned_when_the_caller_cancels()
    {
        _plugin.Overrides["/NetworkDriver.CreateNetwork"] = _ => PluginReply.Hang;
        var c = await F.StartAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(200));

        var ex = await CatchAsync(() => c.CreateNetworkAsync("slow", Plugin, PluginNetwork(), cts.Token).AsTask());

        Assert.That(ex, Is.InstanceOf<OperationCanceledException>(), ex?.ToString());
        _plugin.Overrides.Clear();
        await AssertNothingLeftAsync(c, "slow");
    }

    [Test]
    public async Task A_create_endpoint_reply_that_conflicts_is_rolled_back_with_delete_endpoint()
    {
        _plugin.Overrides["/NetworkDriver.CreateEndpoint"] = _ => PluginReply.Ok("{\"Interface\":{\"Address\":\"10.98.0.77/24\"}}");
        var c = await F.StartAsync();
        var n = await c.CreateNetworkAsync("remote", Plugin, PluginNetwork());

        await ThrowsAsync<CnmConflictException>(() => n.CreateEndpointAsync("ep").AsTask(), CnmErrorCodes.AlreadySet);

        Assert.That(_server.Paths.Count(p => p == "/NetworkDriver.DeleteEndpoint"), Is.GreaterThanOrEqualTo(1));
        Assert.That(n.Endpoints, Is.Empty);
        Assert.That(_plugin.Endpoints, Is.Empty, "the plugin's endpoint was deleted");
        Assert.That(_plugin.Addresses, Is.EqualTo(new[] { "10.98.0.1" }), "only the gateway is still reserved");
        Assert.That(await F.KeysAsync(CoreStore.IntentPrefix), Is.Empty);
    }

    [Test]
    public async Task A_plugin_that_does_not_exist_fails_at_once_as_an_unknown_driver()
    {
        var c = await F.StartAsync();
        var started = System.Diagnostics.Stopwatch.StartNew();

        await ThrowsAsync<CnmNotFoundException>(() => c.CreateNetworkAsync("x", "nosuchplugin").AsTask(), CnmErrorCodes.UnknownDriver);

        Assert.That(started.Elapsed, Is.LessThan(TimeSpan.FromSeconds(1)), "no retry for a plugin without a socket or discovery file");
    }

    [Test]
    public async Task A_plugin_restarted_between_two_calls_is_activated_again_and_replayed_when_it_asks()
    {
        _plugin.RequiresReplay = true;
        var c = await F.StartAsync();
        var n = await c.CreateNetworkAsync("remote", Plugin, PluginNetwork());
        var ep1 = await n.CreateEndpointAsync("ep1");

        // The plugin restarts and forgets everything (an IPAM that asks for replay keeps no state).
        await _server.DisposeAsync();
        var restarted = new FakePlugin { RequiresReplay = true };
        _server = new FakePluginServer(Path.Combine(_socketDir, Plugin + ".sock"), restarted.Handle);

        var ep2 = await n.CreateEndpointAsync("ep2");

        Assert.Multiple(() =>
        {
            Assert.That(restarted.Activations, Is.EqualTo(1), "activated again");
            Assert.That(_server.Paths.Take(5), Is.EqualTo(new[] { "/Plugin.Activate", "/IpamDriver.RequestPool", "/IpamDriver.RequestAddress", "/IpamDriver.RequestAddress", "/IpamDriver.RequestAddress" }), "replayed: pool, gateway, ep1's address, then the new request");
            Assert.That(restarted.Addresses, Is.EquivalentTo(new[] { "10.98.0.1", ep1.Address!.Value.Address.ToString(), ep2.Address!.Value.Address.ToString() }));
            Assert.That(ep2.Address, Is.Not.EqualTo(ep1.Address), "the replay kept ep1's address taken");
        });
    }

    [Test]
    public async Task A_socket_that_vanishes_gives_unavailable_after_the_retries_and_nothing_is_left()
    {
        var c = await F.StartAsync();
        var n = await c.CreateNetworkAsync("remote", Plugin, PluginNetwork());
        await _server.DisposeAsync();
        _server = new FakePluginServer(Path.Combine(F.Directory, "elsewhere.sock"), _plugin.Handle);
        var started = System.Diagnostics.Stopwatch.StartNew();

        var ex = await CatchAsync(() => n.CreateEndpointAsync("ep").AsTask());

        Assert.That(ex, Is.InstanceOf<CnmUnavailableException>(), ex?.ToString());
        Assert.That(((CnmException)ex!).Code, Is.EqualTo(CnmErrorCodes.PluginUnavailable));
        Assert.That(started.Elapsed, Is.LessThan(TimeSpan.FromSeconds(5)));
        Assert.That(n.Endpoints, Is.Empty);
        Assert.That(await F.KeysAsync(CoreStore.IntentPrefix), Is.Empty, "rolled back: nothing was reserved");
        Assert.That(await F.KeysAsync(CoreStore.EndpointPrefix), Is.Empty);
    }

    [Test]
    public async Task Stored_networks_of_a_plugin_are_restored_at_start_through_discovery()
    {
        var c = await F.StartAsync();
        var n = await c.CreateNetworkAsync("remote", Plugin, PluginNetwork());
        await n.CreateEndpointAsync("ep");
        await c.DisposeAsync();

        var c2 = await F.StartAsync();

        Assert.That(c2.FindNetworkByName("remote")?.FindEndpointByName("ep"), Is.Not.Null);
        Assert.That(c2.Drivers, Does.Contain(Plugin));
        Assert.That(c2.IpamDrivers, Does.Contain(Plugin));
    }

    [Test]
    public async Task A_read_only_open_shows_the_networks_of_a_plugin_that_discovery_finds_without_calling_it()
    {
        var c = await F.StartAsync();
        var n = await c.CreateNetworkAsync("remote", Plugin, PluginNetwork());
        var ep = await n.CreateEndpointAsync("ep");
        await c.DisposeAsync();
        var activations = _plugin.Activations;
        F.Configure = o =>
        {
            o.Plugins = Options();
            o.ReadOnly = true;
        };

        var ro = await F.StartAsync();
        Assert.Multiple(() =>
        {
            Assert.That(ro.FindNetworkByName("remote")?.FindEndpointByName("ep")?.Id, Is.EqualTo(ep.Id));
            Assert.That(_plugin.Activations, Is.EqualTo(activations), "a read-only open activates no plugin");
        });
        await ro.DisposeAsync();

        // With the plugin gone, its network is not loaded (as in a read-write start), and the open still works.
        await _server.DisposeAsync();
        File.Delete(Path.Combine(_socketDir, Plugin + ".sock"));
        _server = new FakePluginServer(Path.Combine(F.Directory, "elsewhere.sock"), _plugin.Handle);
        var ro2 = await F.StartAsync();
        Assert.That(ro2.FindNetworkByName("remote"), Is.Null);
    }

    [Test]
    public async Task A_network_create_interrupted_before_its_record_is_rolled_back_through_the_plugin_its_intent_names()
    {
        // A create that got as far as the plugin's pool and network, then died before the network record was written:
        // only its intent names the plugin. Made by creating it, then removing the record and putting the intent back.
        var c = await F.StartAsync();
        var n = await c.CreateNetworkAsync("remote", Plugin, PluginNetwork());
        var networkId = n.Id;
        await c.DisposeAsync();
        Assert.That((_plugin.Networks.Count, _plugin.Pools.Count), Is.EqualTo((1, 1)));
        var pool = _plugin.Pools.Single();
        await F.Store.DeleteAsync(CoreStore.NetworkKey(networkId), StoreVersion.Any);
        var intent = new IntentRecord
        {
            Id = Ids.NewId(),
            Kind = IntentKind.CreateNetwork,
            NetworkId = networkId,
            Driver = Plugin,
            IpamDriver = Plugin,
            Pools = [pool],
            Owner = new IntentOwnerRecord { Instance = Ids.NewId(), Pid = int.MaxValue, Host = Environment.MachineName },
        };
        await F.Store.PutAsync(CoreStore.IntentKey(intent.Id), CoreStore.Serialize(intent, CoreJsonContext.Default.IntentRecord), StoreVersion.Absent);

        var c2 = await F.StartAsync();

        Assert.Multiple(async () =>
        {
            Assert.That(c2.FindNetworkByName("remote"), Is.Null);
            Assert.That(await F.KeysAsync(CoreStore.IntentPrefix), Is.Empty, "the intent is done");
            Assert.That(_plugin.Networks, Is.Empty, "the plugin's network is deleted by the rollback");
            Assert.That(_plugin.Pools, Is.Empty, "the plugin's pool is released by the rollback");
        });
    }

    [Test]
    public async Task A_create_killed_between_the_plugins_replies_and_its_intent_is_released_by_owner_at_the_next_start()
    {
        // The process died right after the plugin's RequestPool and RequestAddress replies: the intent names the network
        // (its owner) but no pool or address. A plugin that releases by owner gets everything back.
        _plugin.ReleasesByOwner = true;
        var c = await F.StartAsync();
        var n = await c.CreateNetworkAsync("remote", Plugin, PluginNetwork());
        var ep = await n.CreateEndpointAsync("ep");
        var (networkId, endpointId) = (n.Id, ep.Id);
        await c.DisposeAsync();
        Assert.That((_plugin.Pools.Count, _plugin.Addresses.Count), Is.EqualTo((1, 2)), "the pool, its gateway and the endpoint's address");
        Assert.That(_plugin.Owners.Values, Is.EquivalentTo(new[] { "network:" + networkId, "network:" + networkId, endpointId }));
        foreach (var key in new[] { CoreStore.EndpointKey(networkId, endpointId), CoreStore.NetworkKey(networkId) })
        {
            await F.Store.DeleteAsync(key, StoreVersion.Any);
        }

        var dead = new IntentOwnerRecord { Instance = Ids.NewId(), Pid = int.MaxValue, Host = Environment.MachineName };
        foreach (var intent in new[]
        {
            new IntentRecord { Id = Ids.NewId(), Kind = IntentKind.CreateEndpoint, NetworkId = networkId, EndpointId = endpointId, Driver = Plugin, IpamDriver = Plugin, Owner = dead },
            new IntentRecord { Id = Ids.NewId(), Kind = IntentKind.CreateNetwork, NetworkId = networkId, Driver = Plugin, IpamDriver = Plugin, Owner = dead },
        })
        {
            await F.Store.PutAsync(CoreStore.IntentKey(intent.Id), CoreStore.Serialize(intent, CoreJsonContext.Default.IntentRecord), StoreVersion.Absent);
        }

        var c2 = await F.StartAsync();

        Assert.Multiple(async () =>
        {
            Assert.That(c2.FindNetworkByName("remote"), Is.Null);
            Assert.That(await F.KeysAsync(CoreStore.IntentPrefix), Is.Empty, "the intents are done");
            Assert.That(_plugin.Pools, Is.Empty, "the pool no intent recorded is released");
            Assert.That(_plugin.Addresses, Is.Empty, "the gateway and the endpoint's address are released");
            Assert.That(_plugin.Networks, Is.Empty);
            Assert.That(_server.Requests.Where(r => r.Path == "/IpamDriver.ReleaseOwner").Select(r => JsonDocument.Parse(r.Body).RootElement.GetProperty("Owner").GetString()),
                Is.EquivalentTo(new[] { endpointId, "network:" + networkId }));
        });
    }

    [Test]
    public async Task Deletes_release_by_owner_on_a_plugin_that_can_and_by_id_on_one_that_cannot()
    {
        foreach (var byOwner in new[] { true, false })
        {
            _plugin.ReleasesByOwner = byOwner;
            var c = await F.StartAsync();
            var n = await c.CreateNetworkAsync("remote", Plugin, PluginNetwork());
            var ep = await n.CreateEndpointAsync("ep");
            var before = _server.Requests.Count;
            await ep.DeleteAsync(false);
            await c.WaitForTeardownsAsync();
            await n.DeleteAsync();
            var paths = _server.Requests.Skip(before).Select(r => r.Path).Where(p => p.StartsWith("/IpamDriver.", StringComparison.Ordinal)).ToList();
            Assert.That(paths, byOwner
                ? Is.EqualTo(new[] { "/IpamDriver.ReleaseOwner", "/IpamDriver.ReleaseOwner" })
                : Is.EqualTo(new[] { "/IpamDriver.ReleaseAddress", "/IpamDriver.ReleaseAddress", "/IpamDriver.ReleasePool" }), byOwner ? "by owner" : "by id");
            await AssertNothingLeftAsync(c, "remote");
            await c.DisposeAsync();
        }
    }

    [Test]
    public async Task Concurrent_first_uses_activate_the_plugin_once()
    {
        var c = await F.StartAsync();

        await Task.WhenAll(Enumerable.Range(0, 4).Select(i => c.CreateNetworkAsync("n" + i, Plugin, PluginNetwork($"10.98.{i}.0/24")).AsTask()));

        Assert.That(_plugin.Activations, Is.EqualTo(1));
        Assert.That(c.Networks.Count(x => x.Driver == Plugin), Is.EqualTo(4));
    }

    [Test]
    public async Task A_failed_activation_is_forgotten_and_the_next_call_tries_again()
    {
        _plugin.Overrides["/Plugin.Activate"] = _ => new PluginReply(500, "starting up");
        var client = new PluginClient(new PluginSpec(Plugin, new Uri("unix://" + _server.SocketPath), _server.SocketPath), Options(), NullLogger.Instance);
        using (client)
        {
            var first = await CatchAsync(() => client.ActivateAsync().AsTask());
            Assert.That(first, Is.InstanceOf<CnmInternalException>());
            _plugin.Overrides.Clear();

            Assert.That(await client.ActivateAsync(), Does.Contain("NetworkDriver"));
            Assert.That(client.Generation, Is.EqualTo(1));
        }
    }

    [Test]
    public void Discovery_follows_dockers_order_and_rules()
    {
        var discovery = new PluginDiscovery(Options(), NullLogger.Instance);
        File.WriteAllText(Path.Combine(_socketDir, "notasocket.sock"), "");
        File.WriteAllText(Path.Combine(_specDir, "notasocket.spec"), "unix:///run/x.sock\n");
        Directory.CreateDirectory(Path.Combine(_specDir, "kuryr"));
        File.WriteAllText(Path.Combine(_specDir, "kuryr", "kuryr.spec"), "http://127.0.0.1:23750\n");
        File.WriteAllText(Path.Combine(_specDir, "tcpone.spec"), "tcp://localhost:9000");
        File.WriteAllText(Path.Combine(_specDir, "remote.spec"), "http://192.0.2.10:9000");
        File.WriteAllText(Path.Combine(_specDir, "noscheme.spec"), "192.0.2.10:9000");
        File.WriteAllText(Path.Combine(_specDir, "tls.json"), "{\"Name\":\"other\",\"Addr\":\"https://192.0.2.11:9443\",\"TLSConfig\":{\"CAFile\":\"\"}}");
        File.WriteAllText(Path.Combine(_specDir, Plugin + ".spec"), "http://127.0.0.1:1");

        Assert.Multiple(() =>
        {
            Assert.That(discovery.Find(Plugin)!.IsUnixSocket, Is.True, "the socket comes before a spec file");
            Assert.That(discovery.Find("notasocket")!.Source, Does.EndWith("notasocket.spec"), "a regular file is not a socket");
            Assert.That(discovery.Find("kuryr")!.Address.ToString(), Is.EqualTo("http://127.0.0.1:23750/"));
            Assert.That(discovery.Find("tcpone")!.Address.ToString(), Is.EqualTo("http://localhost:9000/"));
            var tls = discovery.Find("tls")!;
            Assert.That(tls.Name, Is.EqualTo("tls"), "the name is the file's");
            Assert.That(tls.Tls!.InsecureSkipVerify, Is.True, "no CA file: no verification, as Docker");
            Assert.That(discovery.Find("missing"), Is.Null);
            Assert.That(discovery.Find("../etc/passwd"), Is.Null);
        });
        Assert.Throws<CnmInvalidArgumentException>(() => discovery.Find("remote"), "plain HTTP off loopback needs the option");
        Assert.Throws<CnmInvalidArgumentException>(() => discovery.Find("noscheme"), "Unknown protocol");
        var allowingOptions = Options();
        allowingOptions.AllowInsecureRemotePlugins = true;
        var allowing = new PluginDiscovery(allowingOptions, NullLogger.Instance);
        Assert.That(allowing.Find("remote")!.Address.Host, Is.EqualTo("192.0.2.10"));
        Assert.Throws<CnmInvalidArgumentException>(() => new PluginDiscovery(new PluginOptions { SocketDirectories = ["relative"] }, NullLogger.Instance));
    }
}
