using System.Net;
using System.Security.Cryptography;
using CnmSharp.Drivers.Overlay;
using CnmSharp.IntegrationTests.Bridge;
using CnmSharp.Netlink;
using CnmSharp.Store.Etcd;
using CnmSharp.Testing;

namespace CnmSharp.IntegrationTests.Overlay;

/// <summary>
/// Simulated hosts at the controller level: each host is a private namespace with one leg (<c>ul0</c>,
/// 192.168.78.N/24) on an underlay bridge in a namespace of its own, and runs a whole <see cref="NetworkController"/>
/// (its own state and run directories, SQLite local store, node name <c>hostN</c>, advertise address its leg's address)
/// whose global store is its own connection to the etcd cluster the lab starts (1 or 3 members; every member's URL
/// given to each connection; a fresh key prefix per lab). Disposing stops the controllers (abandoned ones too, which
/// never got a clean stop), unmounts every namespace under the lab's temporary directory, and deletes the host and
/// underlay namespaces, the etcd members (by PID) and the directory, also after a failure.
/// </summary>
internal sealed class ClusterLab : IAsyncDisposable
{
    private readonly TestHostNamespace _underlay;
    private readonly string _temp;
    private readonly string _keyPrefix = "cnmc-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4)) + "/";
    private readonly TimeSpan _leaseTtl;
    private readonly System.Collections.Concurrent.ConcurrentQueue<string> _log = new();
    private bool _disposed;

    private ClusterLab(EtcdCluster etcd, TestHostNamespace underlay, string temp, TimeSpan leaseTtl)
    {
        Etcd = etcd;
        _underlay = underlay;
        _temp = temp;
        _leaseTtl = leaseTtl;
    }

    public EtcdCluster Etcd { get; }

    public List<ClusterHost> Hosts { get; } = [];

    /// <summary>Starts etcd (<paramref name="etcdMembers"/> members), the underlay and <paramref name="hosts"/> hosts
    /// with their controllers. <paramref name="leaseTtl"/> is both the controller's node lease and the overlay
    /// driver's lease.</summary>
    public static async Task<ClusterLab> CreateAsync(int hosts = 3, int etcdMembers = 1, TimeSpan? leaseTtl = null)
    {
        var etcd = await EtcdCluster.StartAsync(etcdMembers);
        TestHostNamespace? underlay = null;
        var temp = Directory.CreateTempSubdirectory("cnmcl-").FullName;
        ClusterLab? lab = null;
        try
        {
            underlay = await TestHostNamespace.CreateAsync();
            using (var client = underlay.OpenClient())
            {
                await client.CreateLinkAsync(new BridgeLinkSpec("ulbr") { Up = true });
            }

            lab = new ClusterLab(etcd, underlay, temp, leaseTtl ?? TimeSpan.FromSeconds(10));
            for (var i = 1; i <= hosts; i++)
            {
                await lab.AddHostAsync(i);
            }

            return lab;
        }
        catch
        {
            if (lab is not null)
            {
                await lab.DisposeAsync();
            }
            else
            {
                if (underlay is not null)
                {
                    await underlay.DisposeAsync();
                }

                await etcd.DisposeAsync();
                Directory.Delete(temp, recursive: true);
            }

            throw;
        }
    }

    private async Task AddHostAsync(int number)
    {
        var ns = await TestHostNamespace.CreateAsync();
        var host = new ClusterHost("host" + number, ns, IPAddress.Parse($"192.168.78.{number}"), Path.Combine(_temp, "host" + number));
        Hosts.Add(host);
        using (var underlay = _underlay.OpenClient())
        {
            var bridge = await underlay.GetLinkAsync("ulbr") ?? throw new InvalidOperationException("no ulbr");
            await underlay.CreateLinkAsync(new VethLinkSpec("ulp" + number, "ul0") { PeerNamespace = ns.Handle, MasterIndex = bridge.Index, Up = true });
        }

        using (var client = ns.OpenClient())
        {
            var leg = await client.GetLinkAsync("ul0") ?? throw new InvalidOperationException("no ul0");
            await client.AddAddressAsync(new AddressSpec(leg.Index, host.Vtep, 24));
            await client.SetLinkUpAsync(leg.Index);
        }

        await StartControllerAsync(host);
    }

    /// <summary>Connects to every etcd member (the client picks a live one).</summary>
    public async Task<EtcdKeyValueStore> ConnectAsync()
    {
        var options = new EtcdStoreOptions { KeyPrefix = _keyPrefix, RequestTimeout = TimeSpan.FromSeconds(3) };
        foreach (var member in Etcd.Members)
        {
            options.Endpoints.Add(member.ClientUrl);
        }

        return await EtcdKeyValueStore.ConnectAsync(options);
    }

    /// <summary>Starts a host's controller on its own state and a new etcd connection.</summary>
    public async Task StartControllerAsync(ClusterHost host)
    {
        host.Global = await ConnectAsync();
        host.Controller = await new NetworkControllerBuilder(new CnmOptions
        {
            HostNamespacePath = host.Namespace.Path,
            StateDirectory = Path.Combine(host.Directory, "state"),
            RunDirectory = Path.Combine(host.Directory, "run"),
            CreateDefaultNetworks = false,
            AdvertiseAddress = host.Vtep.ToString(),
            Cluster = new ClusterOptions { NodeName = host.Name, NodeLeaseTtl = _leaseTtl },
        })
        .AddDriver(new OverlayDriverFactory(new OverlayDriverOptions { LeaseTtl = _leaseTtl, RetryDelay = TimeSpan.FromMilliseconds(300) }))
        .UseGlobalStore(host.Global)
        .UseLoggerFactory(new LabLoggerFactory(host.Name, _log))
        .BuildAsync();
    }

    /// <summary>The host "dies": its etcd connection is dropped, so neither the controller's node lease nor the
    /// overlay driver's lease is renewed or revoked, and nothing is withdrawn (no leave, no delete, no clean stop);
    /// its kernel state stays. The controller object is kept for the teardown.</summary>
    public static async Task AbandonAsync(ClusterHost host)
    {
        if (host.Global is { } global)
        {
            await global.DisposeAsync();
        }

        host.Abandoned = true;
    }

    /// <summary>A sandbox on <paramref name="host"/> with a new endpoint of <paramref name="network"/> joined.</summary>
    public static async Task<ClusterSandbox> SandboxAsync(ClusterHost host, Network network, string name)
    {
        var sandbox = await host.Controller!.CreateSandboxAsync(name);
        var endpoint = await network.CreateEndpointAsync(name);
        await endpoint.JoinAsync(sandbox);
        return new ClusterSandbox(host, sandbox, endpoint, endpoint.Address!.Value.Address.ToString(), OverlayLab.MacText(endpoint.MacAddress!));
    }

    /// <summary>The host's copy of a global network (adopted from the store: waits for it).</summary>
    public static async Task<Network> NetworkOnAsync(ClusterHost host, string networkId)
    {
        await Until.TrueAsync(() => host.Controller!.Networks.Any(n => n.Id == networkId), $"network {networkId[..12]} on {host}");
        return host.Controller!.Networks.Single(n => n.Id == networkId);
    }

    /// <summary>The network's namespace on a host (made by the overlay driver).</summary>
    public static string NetworkNamespace(ClusterHost host, string networkId) => OverlayDriverFactory.NetworkNamespacePath(Path.Combine(host.Directory, "run"), networkId);

    /// <summary><c>bridge -json fdb show dev vxlan0</c> in the network's namespace: permanent entries with a remote
    /// VTEP, as MAC and destination.</summary>
    public static HashSet<(string Mac, string Dst)> RemoteFdb(ClusterHost host, string networkId)
    {
        var json = BridgeHarness.Exec(NetworkNamespace(host, networkId), "bridge", "-json", "fdb", "show", "dev", "vxlan0");
        return [.. System.Text.Json.JsonDocument.Parse(string.IsNullOrWhiteSpace(json) ? "[]" : json).RootElement.EnumerateArray()
            .Where(e => e.TryGetProperty("dst", out _) && e.TryGetProperty("state", out var s) && s.GetString() == "permanent")
            .Select(e => (e.GetProperty("mac").GetString()!, e.GetProperty("dst").GetString()!))];
    }

    /// <summary><c>ip -details -json link show dev NAME</c> in the network's namespace.</summary>
    public static System.Text.Json.JsonElement Link(ClusterHost host, string networkId, string name) =>
        System.Text.Json.JsonDocument.Parse(BridgeHarness.Exec(NetworkNamespace(host, networkId), "ip", "-details", "-json", "link", "show", "dev", name)).RootElement[0].Clone();

    /// <summary>Every pair that does not ping, as text.</summary>
    public static List<string> FailedPings(IReadOnlyList<ClusterSandbox> sandboxes)
    {
        var failures = new List<string>();
        foreach (var from in sandboxes)
        {
            foreach (var to in sandboxes.Where(s => s != from))
            {
                if (!BridgeHarness.Ping(from.Path, to.Ip))
                {
                    failures.Add($"{from} -> {to}");
                }
            }
        }

        return failures;
    }

    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        foreach (var line in _log)
        {
            await TestContext.Out.WriteLineAsync(line);
        }

        foreach (var host in Hosts)
        {
            try
            {
                if (host.Controller is { } controller)
                {
                    await controller.DisposeAsync();
                }

                if (host.Global is { } global)
                {
                    await global.DisposeAsync();
                }
            }
            catch (Exception ex)
            {
                await TestContext.Out.WriteLineAsync($"teardown of {host.Name}'s controller: {ex.Message}");
            }
        }

        // Sandboxes' and overlay networks' namespaces are bind mounts under the lab's directory: unmount them.
        foreach (var line in MountTable.LinesUnder(_temp).Reverse())
        {
            BridgeHarness.Run("umount", "-l", line.Split(' ')[4]);
        }

        foreach (var host in Hosts)
        {
            await host.Namespace.DisposeAsync();
        }

        await _underlay.DisposeAsync();
        await Etcd.DisposeAsync();
        Directory.Delete(_temp, recursive: true);
    }
}

/// <summary>One simulated host running a controller.</summary>
internal sealed class ClusterHost(string name, TestHostNamespace ns, IPAddress vtep, string directory)
{
    public string Name { get; } = name;

    public TestHostNamespace Namespace { get; } = ns;

    public IPAddress Vtep { get; } = vtep;

    public string Directory { get; } = directory;

    public EtcdKeyValueStore? Global { get; set; }

    public NetworkController? Controller { get; set; }

    public bool Abandoned { get; set; }

    public override string ToString() => Name;
}

/// <summary>A sandbox on a host with one endpoint joined.</summary>
internal sealed record ClusterSandbox(ClusterHost Host, Sandbox Sandbox, Endpoint Endpoint, string Ip, string Mac)
{
    public string Path => Sandbox.Key;

    public override string ToString() => $"{Ip}@{Host.Name}";
}

/// <summary>Keeps the controllers' warnings and errors (and the global store's and overlay driver's information
/// messages) with their host's name; the lab prints them at teardown.</summary>
internal sealed class LabLoggerFactory(string host, System.Collections.Concurrent.ConcurrentQueue<string> sink) : Microsoft.Extensions.Logging.ILoggerFactory
{
    public void AddProvider(Microsoft.Extensions.Logging.ILoggerProvider provider)
    {
    }

    public Microsoft.Extensions.Logging.ILogger CreateLogger(string categoryName) => new Logger(host, categoryName, sink);

    public void Dispose()
    {
    }

    private sealed class Logger(string host, string category, System.Collections.Concurrent.ConcurrentQueue<string> sink) : Microsoft.Extensions.Logging.ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(Microsoft.Extensions.Logging.LogLevel logLevel) =>
            logLevel >= Microsoft.Extensions.Logging.LogLevel.Warning;

        public void Log<TState>(Microsoft.Extensions.Logging.LogLevel logLevel, Microsoft.Extensions.Logging.EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (IsEnabled(logLevel) && sink.Count < 2000)
            {
                sink.Enqueue($"{DateTime.UtcNow:HH:mm:ss.fff} {host} {logLevel} {category}: {formatter(state, exception)}{(exception is null ? "" : " | " + exception.GetType().Name + ": " + exception.Message)}");
            }
        }
    }
}
