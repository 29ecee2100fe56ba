using System.Net;
using System.Net.NetworkInformation;
using System.Security.Cryptography;
using System.Text.Json;
using CnmSharp.Drivers;
using CnmSharp.Drivers.Overlay;
using CnmSharp.IntegrationTests.Bridge;
using CnmSharp.Netlink;
using CnmSharp.Store;
using CnmSharp.Store.Etcd;
using CnmSharp.Testing;
using Microsoft.Extensions.Logging.Abstractions;

namespace CnmSharp.IntegrationTests.Overlay;

/// <summary>
/// Simulated hosts for the overlay driver, driven through its contract as the core would drive it. Each host is a
/// private namespace with one leg (<c>ul0</c>, 192.168.77.N/24) on an underlay bridge that lives in a namespace of its
/// own; each host has its own driver with its own in-memory local store and its own connection to the one etcd the
/// lab starts (a fresh key prefix per lab). Sandboxes are namespaces the lab makes inside a host's private run
/// directory; after a join the lab does the core's part (address and link up on the interface the driver put there).
/// Disposing stops the drivers, unmounts every namespace the drivers made under the lab's temporary directory, and
/// deletes the host and underlay namespaces, the etcd member and the directory, also after a failure.
/// </summary>
internal sealed class OverlayLab : IAsyncDisposable
{
    public const string GlobalPrefix = "cnm/v1/driver/overlay/";

    private readonly EtcdCluster _etcd;
    private readonly TestHostNamespace _underlay;
    private readonly string _temp;
    private readonly string _keyPrefix = "cnmt-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4)) + "/";
    private readonly OverlayDriverOptions _options;
    private bool _disposed;

    private OverlayLab(EtcdCluster etcd, TestHostNamespace underlay, string temp, OverlayDriverOptions options)
    {
        _etcd = etcd;
        _underlay = underlay;
        _temp = temp;
        _options = options;
    }

    public List<OverlayHost> Hosts { get; } = [];

    /// <summary>Starts etcd, the underlay and <paramref name="hosts"/> hosts (host1..hostN) with their drivers.</summary>
    public static async Task<OverlayLab> CreateAsync(int hosts = 3, OverlayDriverOptions? options = null)
    {
        var etcd = await EtcdCluster.StartAsync(1);
        TestHostNamespace? underlay = null;
        var temp = Directory.CreateTempSubdirectory("cnmov-").FullName;
        OverlayLab? lab = null;
        try
        {
            underlay = await TestHostNamespace.CreateAsync();
            using (var client = underlay.OpenClient())
            {
                await client.CreateLinkAsync(new BridgeLinkSpec("ulbr") { Up = true });
            }

            lab = new OverlayLab(etcd, underlay, temp, options ?? new OverlayDriverOptions());
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
        var vtep = IPAddress.Parse($"192.168.77.{number}");
        var host = new OverlayHost("host" + number, ns, vtep, Path.Combine(_temp, "host" + number));
        Hosts.Add(host);
        Directory.CreateDirectory(host.RunDirectory);

        // The host's leg on the underlay: the veth's far end is made directly inside the host's namespace.
        using (var underlay = _underlay.OpenClient())
        {
            var bridge = await underlay.GetLinkAsync("ulbr") ?? throw new InvalidOperationException("no ulbr");
            await underlay.CreateLinkAsync(new VethLinkSpec("ulp" + number, "ul0") { PeerNamespace = ns.Handle, MasterIndex = bridge.Index, Up = true });
        }

        using (var client = ns.OpenClient())
        {
            var leg = await client.GetLinkAsync("ul0") ?? throw new InvalidOperationException("no ul0");
            await client.AddAddressAsync(new AddressSpec(leg.Index, vtep, 24));
            await client.SetLinkUpAsync(leg.Index);
        }

        await StartDriverAsync(host);
    }

    /// <summary>Starts (or restarts) a host's driver on its local store and a new etcd connection.</summary>
    public async Task StartDriverAsync(OverlayHost host)
    {
        var options = new EtcdStoreOptions { KeyPrefix = _keyPrefix };
        options.Endpoints.Add(_etcd.ClientUrls[0]);
        host.Global = await EtcdKeyValueStore.ConnectAsync(options);
        host.Driver = await new OverlayDriverFactory(_options).CreateAsync(new DriverContext
        {
            ControllerId = host.Name,
            HostNamespacePath = host.Namespace.Path,
            RunDirectory = host.RunDirectory,
            Store = host.Local,
            StoreKeyPrefix = GlobalPrefix,
            GlobalStore = host.Global,
            GlobalStoreKeyPrefix = GlobalPrefix,
            NodeName = host.Name,
            AdvertiseAddress = host.Vtep,
            LoggerFactory = NullLoggerFactory.Instance,
        });
    }

    /// <summary>Stops a host's driver without any cleanup (as a killed process would leave things): its etcd
    /// connection goes first, so no leave, no delete, no lease revoke and no clean stop reaches the store; the kernel
    /// state stays.</summary>
    public static async Task StopDriverAsync(OverlayHost host)
    {
        if (host.Global is not null)
        {
            await host.Global.DisposeAsync();
            host.Global = null;
        }

        if (host.Driver is IAsyncDisposable disposable)
        {
            await disposable.DisposeAsync();
        }

        host.Driver = null;
    }

    /// <summary>Stops a host's driver cleanly (as a controller's or a <c>cnm</c> command's end does), then closes its
    /// etcd connection.</summary>
    public static async Task StopDriverCleanlyAsync(OverlayHost host)
    {
        if (host.Driver is IAsyncDisposable disposable)
        {
            await disposable.DisposeAsync();
        }

        host.Driver = null;
        if (host.Global is not null)
        {
            await host.Global.DisposeAsync();
            host.Global = null;
        }
    }

    /// <summary>Kills the etcd member (SIGKILL, by PID): the global store becomes unreachable.</summary>
    public void KillEtcd() => _etcd.Members[0].Kill();

    /// <summary>A global store connection for the test's own checks.</summary>
    public async Task<EtcdKeyValueStore> ConnectAsync()
    {
        var options = new EtcdStoreOptions { KeyPrefix = _keyPrefix };
        options.Endpoints.Add(_etcd.ClientUrls[0]);
        return await EtcdKeyValueStore.ConnectAsync(options);
    }

    public static string NewId() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32));

    /// <summary>Creates the network (same id, name and pool) on each given host, as the core does on every host.</summary>
    public static async Task CreateNetworkAsync(IEnumerable<OverlayHost> hosts, string networkId, string subnet, Dictionary<string, string>? options = null)
    {
        var pool = IPNetwork.Parse(subnet);
        var gateway = CidrAddress.Parse(IncrementAddress(pool.BaseAddress, 1) + "/" + pool.PrefixLength);
        foreach (var host in hosts)
        {
            await host.Driver!.CreateNetworkAsync(new NetworkCreateRequest
            {
                NetworkId = networkId,
                NetworkName = "ov-" + networkId[..6],
                DriverOptions = options ?? [],
                IPv4Data = [new IpamData("GlobalDefault", pool, gateway, new Dictionary<string, CidrAddress>())],
            });
        }
    }

    /// <summary>A sandbox on <paramref name="host"/> joined to the network with <paramref name="address"/>: endpoint
    /// create, a namespace, join, then the core's part inside the sandbox.</summary>
    public static async Task<OverlaySandbox> SandboxAsync(OverlayHost host, string networkId, string address)
    {
        var endpointId = NewId();
        var info = new LabInterface(CidrAddress.Parse(address));
        await host.Driver!.CreateEndpointAsync(new EndpointCreateRequest { NetworkId = networkId, EndpointId = endpointId, EndpointName = "ep-" + endpointId[..6] }, info);
        var name = TestHostNamespace.UniqueName("cnmov-sb");
        using (await host.Namespace.Manager.CreateAsync(name))
        {
        }

        var path = host.Namespace.Manager.GetPath(name);
        var join = new LabJoin(info);
        await host.Driver.JoinAsync(new JoinRequest { NetworkId = networkId, EndpointId = endpointId, SandboxId = name, SandboxKey = path }, join);
        Assert.That(join.Placement, Is.EqualTo(InterfacePlacement.Sandbox), "the driver creates the interface inside the sandbox");
        BridgeHarness.Exec(path, "ip", "addr", "add", address, "dev", join.SourceName!);
        BridgeHarness.Exec(path, "ip", "link", "set", join.SourceName!, "up");
        return new OverlaySandbox(host, networkId, endpointId, name, path, CidrAddress.Parse(address).Address.ToString(), MacText(info.MacAddress!));
    }

    /// <summary>Leave, endpoint delete and namespace delete, as the core does when a container goes.</summary>
    public static async Task RemoveSandboxAsync(OverlaySandbox sandbox)
    {
        await sandbox.Host.Driver!.LeaveAsync(sandbox.NetworkId, sandbox.EndpointId);
        await sandbox.Host.Driver.DeleteEndpointAsync(sandbox.NetworkId, sandbox.EndpointId);
        await sandbox.Host.Namespace.Manager.DeleteAsync(sandbox.Name);
    }

    /// <summary>The network's namespace on a host (made by the driver).</summary>
    public static string NetworkNamespace(OverlayHost host, string networkId) => OverlayDriverFactory.NetworkNamespacePath(host.RunDirectory, networkId);

    /// <summary><c>bridge -json fdb show dev vxlan0</c> in the network's namespace: the entries with a remote VTEP, as
    /// MAC and destination.</summary>
    public static HashSet<(string Mac, string Dst)> RemoteFdb(OverlayHost host, string networkId, string device = "vxlan0")
    {
        var path = NetworkNamespace(host, networkId);
        var json = BridgeHarness.Exec(path, "bridge", "-json", "fdb", "show", "dev", device);
        return [.. JsonDocument.Parse(string.IsNullOrWhiteSpace(json) ? "[]" : json).RootElement.EnumerateArray()
            .Where(e => e.TryGetProperty("dst", out _))
            .Select(e => (e.GetProperty("mac").GetString()!, e.GetProperty("dst").GetString()!))];
    }

    /// <summary><c>ip -json neigh show dev vxlan0</c> in the network's namespace: permanent entries as IP and MAC.</summary>
    public static HashSet<(string Ip, string Mac)> Neighbours(OverlayHost host, string networkId, string device = "vxlan0")
    {
        var json = BridgeHarness.Exec(NetworkNamespace(host, networkId), "ip", "-json", "neigh", "show", "dev", device);
        return [.. JsonDocument.Parse(string.IsNullOrWhiteSpace(json) ? "[]" : json).RootElement.EnumerateArray()
            .Where(e => e.TryGetProperty("state", out var s) && s.EnumerateArray().Any(x => x.GetString() == "PERMANENT"))
            .Select(e => (e.GetProperty("dst").GetString()!, e.GetProperty("lladdr").GetString()!))];
    }

    /// <summary><c>ip -details -json link show dev NAME</c> in the network's namespace.</summary>
    public static JsonElement Link(OverlayHost host, string networkId, string name) =>
        JsonDocument.Parse(BridgeHarness.Exec(NetworkNamespace(host, networkId), "ip", "-details", "-json", "link", "show", "dev", name)).RootElement[0].Clone();

    public static string MacText(PhysicalAddress mac) => string.Join(':', mac.GetAddressBytes().Select(b => b.ToString("x2", System.Globalization.CultureInfo.InvariantCulture)));

    private static IPAddress IncrementAddress(IPAddress address, int by)
    {
        var bytes = address.GetAddressBytes();
        var value = (uint)(bytes[0] << 24 | bytes[1] << 16 | bytes[2] << 8 | bytes[3]) + (uint)by;
        return new IPAddress([(byte)(value >> 24), (byte)(value >> 16), (byte)(value >> 8), (byte)value]);
    }

    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        foreach (var host in Hosts)
        {
            try
            {
                await StopDriverAsync(host);
            }
            catch (Exception ex)
            {
                await TestContext.Out.WriteLineAsync($"teardown of {host.Name}'s driver: {ex.Message}");
            }
        }

        // The drivers' network namespaces are bind mounts under the lab's directory: unmount them (deepest first).
        foreach (var line in MountTable.LinesUnder(_temp).Reverse())
        {
            BridgeHarness.Run("umount", "-l", line.Split(' ')[4]);
        }

        foreach (var host in Hosts)
        {
            await host.Namespace.DisposeAsync();
        }

        await _underlay.DisposeAsync();
        await _etcd.DisposeAsync();
        Directory.Delete(_temp, recursive: true);
    }
}

/// <summary>One simulated host.</summary>
internal sealed class OverlayHost(string name, TestHostNamespace ns, IPAddress vtep, string runDirectory)
{
    public string Name { get; } = name;

    public TestHostNamespace Namespace { get; } = ns;

    public IPAddress Vtep { get; } = vtep;

    public string RunDirectory { get; } = runDirectory;

    public InMemoryKeyValueStore Local { get; } = new();

    public EtcdKeyValueStore? Global { get; set; }

    public INetworkDriver? Driver { get; set; }

    public override string ToString() => Name;
}

/// <summary>A sandbox joined to an overlay network.</summary>
internal sealed record OverlaySandbox(OverlayHost Host, string NetworkId, string EndpointId, string Name, string Path, string Ip, string Mac)
{
    public override string ToString() => $"{Ip}@{Host.Name}";
}

/// <summary>The interface the core offers at endpoint create (an IPAM address, no MAC).</summary>
internal sealed class LabInterface(CidrAddress address) : IInterfaceInfo
{
    public PhysicalAddress? MacAddress { get; private set; }

    public CidrAddress? Address { get; private set; } = address;

    public CidrAddress? AddressIPv6 { get; private set; }

    public IReadOnlyList<CidrAddress> LinkLocalAddresses { get; } = [];

    public void SetMacAddress(PhysicalAddress macAddress) => MacAddress = MacAddress is null ? macAddress : throw new InvalidOperationException("MAC already set");

    public void SetIPAddress(CidrAddress address)
    {
        if (address.Address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork)
        {
            Address = address;
        }
        else
        {
            AddressIPv6 = address;
        }
    }
}

/// <summary>What the driver reports at join.</summary>
internal sealed class LabJoin(IInterfaceInfo info) : IJoinInfo
{
    public IInterfaceInfo InterfaceInfo { get; } = info;

    public string? SourceName { get; private set; }

    public InterfacePlacement Placement { get; private set; }

    public IPAddress? Gateway { get; private set; }

    public void SetInterfaceName(string sourceName, string destinationPrefix, InterfacePlacement placement = InterfacePlacement.HostNamespace)
    {
        SourceName = sourceName;
        Placement = placement;
    }

    public void SetGateway(IPAddress gateway) => Gateway = gateway;

    public void SetGatewayIPv6(IPAddress gateway)
    {
    }

    public void AddStaticRoute(StaticRoute route)
    {
    }

    public void DisableGatewayService()
    {
    }
}
