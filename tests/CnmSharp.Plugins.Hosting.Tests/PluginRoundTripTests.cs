using System.Diagnostics;
using System.Text.Json;
using CnmSharp.Drivers.Bridge;
using CnmSharp.Firewall;
using CnmSharp.Ipam.Default;
using CnmSharp.Plugins;
using CnmSharp.Store;
using CnmSharp.Testing;
using Microsoft.Extensions.Logging.Abstractions;

namespace CnmSharp.Plugins.Hosting.Tests;

/// <summary>
/// The round trip, as root in a private host namespace: a CnmSharp controller uses its remote driver and remote IPAM
/// to drive the CnmSharp plugin host wrapping the bridge driver and the default IPAM (over a unix socket, and over TCP
/// found through a <c>.spec</c> file); two sandboxes ping each other; the controller shows the plugin's addresses; a
/// restarted plugin host keeps its networks and endpoints; nothing is left afterwards.
/// </summary>
[RequiresRoot]
[NonParallelizable]
public sealed class PluginRoundTripTests
{
    private TestHostNamespace _host = null!;
    private string _temp = null!;
    private string _name = null!;
    private string _socketDir = null!;
    private string _specDir = null!;
    private PluginServer? _server;
    private NetworkController? _controller;

    [SetUp]
    public async Task SetUp()
    {
        _host = await TestHostNamespace.CreateAsync();
        _temp = Directory.CreateTempSubdirectory("cnmplug-").FullName;
        _name = TestHostNamespace.UniqueName("cnmplug");
        _socketDir = Path.Combine(_temp, "sock");
        _specDir = Path.Combine(_temp, "spec");
        Directory.CreateDirectory(_socketDir);
        Directory.CreateDirectory(_specDir);
    }

    [TearDown]
    public async Task TearDown()
    {
        if (_controller is not null)
        {
            await _controller.DisposeAsync();
        }

        if (_server is not null)
        {
            await _server.DisposeAsync();
        }

        await _host.DisposeAsync();
        Directory.Delete(_temp, recursive: true);
    }

    private PluginServerOptions ServerOptions(bool tcp) => new()
    {
        Host = tcp
            ? new PluginHostOptions { Name = _name, ListenUrl = new Uri("http://127.0.0.1:0"), SpecDirectory = _specDir }
            : new PluginHostOptions { Name = _name, SocketPath = Path.Combine(_socketDir, _name + ".sock") },
        Driver = new BridgeDriverFactory(new BridgeDriverOptions { ReapTimeout = TimeSpan.FromSeconds(3) }),
        Ipam = new DefaultIpamFactory(),
        StateDirectory = Path.Combine(_temp, "plugin-state"),
        RunDirectory = Path.Combine(_temp, "plugin-run"),
        HostNamespacePath = _host.Path,
        Firewall = FirewallBackendChoice.Iptables,
    };

    private async Task StartServerAsync(bool tcp) => _server = await PluginServer.StartAsync(ServerOptions(tcp), NullLoggerFactory.Instance);

    private async Task<NetworkController> StartControllerAsync() =>
        _controller = await new NetworkControllerBuilder(new CnmOptions
        {
            HostNamespacePath = _host.Path,
            RunDirectory = Path.Combine(_temp, "run"),
            StateDirectory = Path.Combine(_temp, "state"),
            CreateDefaultNetworks = false,

            // The controller programs nothing itself here: the plugin's bridge driver owns the rules.
            Firewall = FirewallBackendChoice.None,
            Plugins = new PluginOptions
            {
                SocketDirectories = [_socketDir],
                SpecDirectories = [_specDir],
                RetryDelays = [TimeSpan.FromMilliseconds(100), TimeSpan.FromMilliseconds(200)],
                CallTimeout = TimeSpan.FromSeconds(10),
            },
        }).BuildAsync();

    private static (int Code, string Out) Exec(params string[] args)
    {
        var info = new ProcessStartInfo(args[0]) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in args.Skip(1))
        {
            info.ArgumentList.Add(arg);
        }

        using var process = Process.Start(info)!;
        var output = process.StandardOutput.ReadToEnd() + process.StandardError.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, output);
    }

    private static bool Ping(string fromNamespace, string address) =>
        Enumerable.Range(0, 3).Any(_ => Exec("nsenter", "--net=" + fromNamespace, "ping", "-c1", "-W1", address).Code == 0);

    private static List<string> Addresses(string netns, string device) =>
        [.. JsonDocument.Parse(Exec("nsenter", "--net=" + netns, "ip", "-j", "-4", "addr", "show", "dev", device).Out).RootElement.EnumerateArray()
            .SelectMany(l => l.GetProperty("addr_info").EnumerateArray())
            .Select(a => $"{a.GetProperty("local").GetString()}/{a.GetProperty("prefixlen").GetInt32()}")];

    private List<string> HostLinks() =>
        [.. JsonDocument.Parse(Exec("nsenter", "--net=" + _host.Path, "ip", "-j", "link", "show").Out).RootElement.EnumerateArray().Select(l => l.GetProperty("ifname").GetString()!)];

    private async Task<(Sandbox Sandbox, Endpoint Endpoint)> ContainerAsync(Network network, string name)
    {
        var sandbox = await _controller!.CreateSandboxAsync(name);
        var endpoint = await network.CreateEndpointAsync(name);
        await endpoint.JoinAsync(sandbox);
        return (sandbox, endpoint);
    }

    private async Task<HostEndpointRecord?> PluginEndpointAsync(Endpoint endpoint) =>
        await new HostState(_server!.Store).GetEndpointAsync(endpoint.Network.Id, endpoint.Id, CancellationToken.None);

    [TestCase(false, TestName = "Round trip over a unix socket: two sandboxes ping, the controller shows the plugin's addresses, nothing is left")]
    [TestCase(true, TestName = "Round trip over TCP found through a .spec file: two sandboxes ping, the controller shows the plugin's addresses, nothing is left")]
    public async Task Round_trip(bool tcp)
    {
        await StartServerAsync(tcp);
        if (tcp)
        {
            Assert.That(File.ReadAllText(Path.Combine(_specDir, _name + ".spec")).Trim(), Is.EqualTo(_server!.Host.Address!.GetLeftPart(UriPartial.Authority)));
        }
        else
        {
            Assert.That(OperatingSystem.IsWindows() ? default : File.GetUnixFileMode(_server!.Host.SocketPath!), Is.EqualTo(UnixFileMode.UserRead | UnixFileMode.UserWrite), "socket mode 0600");
        }

        var controller = await StartControllerAsync();
        var network = await controller.CreateNetworkAsync("plugnet", _name, new NetworkCreateOptions
        {
            IpamDriver = _name,
            IPv4Config = [new IpamConfig { Subnet = "10.231.5.0/24" }],
        });
        var (a, ea) = await ContainerAsync(network, "plug-a");
        var (b, eb) = await ContainerAsync(network, "plug-b");

        var pluginA = await PluginEndpointAsync(ea);
        var pluginB = await PluginEndpointAsync(eb);
        Assert.Multiple(() =>
        {
            Assert.That(network.IPv4Info.Single().PoolId, Is.EqualTo("LocalDefault/10.231.5.0/24"), "the pool is the plugin's IPAM's");
            Assert.That(network.IPv4Info.Single().Gateway.ToString(), Is.EqualTo("10.231.5.1/24"));
            Assert.That(ea.Address.ToString(), Is.EqualTo("10.231.5.2/24"));
            Assert.That(eb.Address.ToString(), Is.EqualTo("10.231.5.3/24"));
            Assert.That(pluginA?.Address, Is.EqualTo(ea.Address.ToString()), "the plugin host's record of the endpoint");
            Assert.That(pluginB?.Address, Is.EqualTo(eb.Address.ToString()));
            Assert.That(Addresses(a.Key, "eth0"), Is.EqualTo(new[] { ea.Address.ToString() }), "the interface the plugin made, moved into the sandbox by the controller");
            Assert.That(Ping(a.Key, eb.Address!.Value.Address.ToString()), Is.True, "a pings b");
            Assert.That(Ping(b.Key, ea.Address!.Value.Address.ToString()), Is.True, "b pings a");
        });

        await a.DeleteAsync();
        await b.DeleteAsync();
        await controller.WaitForTeardownsAsync();
        await network.DeleteAsync();
        await AssertNothingLeftAsync();
    }

    [Test]
    public async Task A_restarted_plugin_host_keeps_its_networks_and_endpoints_and_a_new_join_works()
    {
        await StartServerAsync(tcp: false);
        var controller = await StartControllerAsync();
        var network = await controller.CreateNetworkAsync("plugnet", _name, new NetworkCreateOptions
        {
            IpamDriver = _name,
            IPv4Config = [new IpamConfig { Subnet = "10.231.6.0/24" }],
        });
        var (a, ea) = await ContainerAsync(network, "plug-a");

        // An endpoint made before the restart, joined after it: the host must find it in its store.
        var late = await network.CreateEndpointAsync("plug-late");
        await _server!.DisposeAsync();
        _server = null;
        Assert.That(File.Exists(Path.Combine(_socketDir, _name + ".sock")), Is.False, "the socket goes with the host");
        await StartServerAsync(tcp: false);

        var lateBox = await controller.CreateSandboxAsync("plug-late");
        await late.JoinAsync(lateBox);
        var (b, eb) = await ContainerAsync(network, "plug-b");
        Assert.Multiple(() =>
        {
            Assert.That(late.Address.ToString(), Is.EqualTo("10.231.6.3/24"));
            Assert.That(eb.Address.ToString(), Is.EqualTo("10.231.6.4/24"), "the restarted IPAM kept the addresses it gave");
            Assert.That(Ping(b.Key, ea.Address!.Value.Address.ToString()), Is.True, "a new container reaches one joined before the restart");
            Assert.That(Ping(lateBox.Key, eb.Address!.Value.Address.ToString()), Is.True, "the endpoint created before the restart works");
        });

        // A restarted controller too: it finds the plugin again and tears everything down through it.
        await controller.DisposeAsync();
        _controller = null;
        controller = await StartControllerAsync();
        foreach (var sandbox in controller.Sandboxes.ToList())
        {
            await sandbox.DeleteAsync();
        }

        await controller.WaitForTeardownsAsync();
        await controller.Networks.Single(n => n.Name == "plugnet").DeleteAsync();
        await AssertNothingLeftAsync();
    }

    [Test]
    public async Task A_bad_request_through_the_controller_is_a_typed_error_and_leaves_nothing()
    {
        await StartServerAsync(tcp: false);
        var controller = await StartControllerAsync();

        // The plugin's bridge driver refuses a bad option: the controller gets a typed error and rolls back.
        var ex = await Assert.ThrowsAsync<CnmInternalException>(async () => await controller.CreateNetworkAsync("badnet", _name, new NetworkCreateOptions
        {
            IpamDriver = _name,
            IPv4Config = [new IpamConfig { Subnet = "10.231.7.0/24" }],
            DriverOptions = new Dictionary<string, string> { ["com.docker.network.driver.mtu"] = "nonsense" },
        }));
        Assert.That(ex!.Code, Is.EqualTo(CnmErrorCodes.PluginError));
        Assert.That(ex.Reason, Does.Contain("nonsense"), "the plugin's Err text");
        Assert.That(controller.Networks, Is.Empty);
        await AssertNothingLeftAsync();
    }

    private async Task AssertNothingLeftAsync()
    {
        var store = _server!.Store;
        var hostKeys = (await store.ListAsync(HostState.Prefix)).Select(e => e.Key).ToList();
        var bridgeKeys = (await store.ListAsync("plugin-driver/bridge/")).Select(e => e.Key).Where(k => !k.EndsWith("/restored-in", StringComparison.Ordinal)).ToList();
        var ipamKeys = (await store.ListAsync("plugin-ipam/default/")).Select(e => e.Key).Where(k => k.Contains("/pool/", StringComparison.Ordinal) || k.Contains("/addr/", StringComparison.Ordinal)).ToList();
        var rules = Exec("nsenter", "--net=" + _host.Path, "iptables-save").Out.Split('\n').Where(l => l.Contains("10.231.", StringComparison.Ordinal)).ToList();
        Assert.Multiple(() =>
        {
            Assert.That(hostKeys, Is.Empty, "plugin host records left");
            Assert.That(bridgeKeys, Is.Empty, "bridge driver records left");
            Assert.That(ipamKeys, Is.Empty, "IPAM pools or addresses left");
            Assert.That(HostLinks(), Is.EquivalentTo(new[] { "lo" }), "links left in the host namespace");
            Assert.That(rules, Is.Empty, "firewall rules of the network left");
        });
    }
}
