using System.Collections.Concurrent;
using System.Net;
using System.Runtime.CompilerServices;
using CnmSharp.Drivers;
using CnmSharp.Sandboxes;
using CnmSharp.Store;
using Moq;

namespace CnmSharp.Tests.Core;

/// <summary>
/// Several controllers ("hosts", each with its own local store and node name) sharing one global store: global-scope
/// networks, their endpoints with their node, <c>GlobalDefault</c> addresses, dead hosts. Run on the in-memory store
/// here and on a real etcd in <c>CnmSharp.Store.Etcd.Tests</c> (the file is linked there).
/// </summary>
public abstract class GlobalStoreScenarios
{
    private readonly List<Host> _hosts = [];
    private string _directory = "";

    /// <summary>A new client of the one shared store of the test (each host gets its own client).</summary>
    protected abstract ValueTask<ISharedKeyValueStore> OpenGlobalClientAsync();

    /// <summary>Called once per test, before any client is opened.</summary>
    protected virtual ValueTask SetUpGlobalStoreAsync() => ValueTask.CompletedTask;

    /// <summary>Called once per test, after every host stopped.</summary>
    protected virtual ValueTask TearDownGlobalStoreAsync() => ValueTask.CompletedTask;

    [SetUp]
    public async Task SetUpHosts()
    {
        _directory = Path.Combine(Path.GetTempPath(), "cnmsharp-global-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_directory);
        await SetUpGlobalStoreAsync();
    }

    [TearDown]
    public async Task TearDownHosts()
    {
        foreach (var host in _hosts)
        {
            await host.DisposeAsync();
        }

        _hosts.Clear();
        await TearDownGlobalStoreAsync();
        Directory.Delete(_directory, recursive: true);
    }

    [Test]
    public async Task A_global_network_made_on_one_host_is_on_every_host_with_every_hosts_endpoints_and_their_node()
    {
        var h1 = await StartHostAsync("h1");
        var h2 = await StartHostAsync("h2");
        var network = await h1.Controller.CreateNetworkAsync("ov", GlobalTestDriver.Name, new NetworkCreateOptions { IPv4Config = [new IpamConfig { Subnet = "10.90.0.0/24" }] });
        Assert.That(network.Scope, Is.EqualTo("global"));
        var h3 = await StartHostAsync("h3"); // started after the network was made: it reads it at start

        await Until(() => h2.Controller.FindNetworkById(network.Id) is not null, "the network appears on h2");
        Assert.That(h3.Controller.FindNetworkById(network.Id), Is.Not.Null, "h3 read it at start");
        Assert.That(h2.Driver.Networks, Does.ContainKey(network.Id), "h2's driver created the network on its host");
        Assert.That(h3.Driver.Networks[network.Id], Is.EqualTo("10.90.0.0/24"), "with the pool h1's IPAM gave it");

        var endpoints = new Dictionary<string, Endpoint>();
        foreach (var host in new[] { h1, h2, h3 })
        {
            var mine = await host.Controller.GetNetwork("ov").CreateEndpointAsync("ep-" + host.Name);
            Assert.That(mine.Node, Is.EqualTo(host.Name));
            endpoints[host.Name] = mine;
        }

        foreach (var host in new[] { h1, h2, h3 })
        {
            var seen = host.Controller.GetNetwork("ov");
            await Until(() => seen.RemoteEndpoints.Count == 2, $"{host.Name} sees the two other hosts' endpoints");
            Assert.That(seen.Endpoints.Select(e => (e.Name, e.Node)), Is.EqualTo(new[] { ("ep-" + host.Name, (string?)host.Name) }));
            foreach (var remote in seen.RemoteEndpoints)
            {
                Assert.That(remote.Name, Is.EqualTo("ep-" + remote.Node));
                Assert.That(remote.Address, Is.EqualTo(endpoints[remote.Node].Address), "with the address its host gave it");
            }
        }

        // An endpoint deleted on h2 goes from the others' view.
        await endpoints["h2"].DeleteAsync();
        await Until(() => h1.Controller.GetNetwork("ov").RemoteEndpoints.All(e => e.Node != "h2"), "h2's endpoint is gone from h1's view");
        await Until(() => h3.Controller.GetNetwork("ov").RemoteEndpoints.All(e => e.Node != "h2"), "h2's endpoint is gone from h3's view");
    }

    [Test]
    public async Task Records_another_host_wrote_with_a_bad_id_name_or_address_are_skipped_and_the_good_ones_still_arrive()
    {
        var h1 = await StartHostAsync("h1");
        var good = await h1.Controller.CreateNetworkAsync("ov", GlobalTestDriver.Name, new NetworkCreateOptions { IPv4Config = [new IpamConfig { Subnet = "10.91.0.0/24" }] });
        var sample = await h1.Global!.GetAsync("cnm/v1/network/" + good.Id);
        var json = System.Text.Encoding.UTF8.GetString(sample!.Value.Span);
        Assert.That(json, Does.Contain("\"ov\""));

        async Task Forge(string id, string name) => await h1.Global.PutAsync(
            "cnm/v1/network/" + id,
            System.Text.Encoding.UTF8.GetBytes(json.Replace(good.Id, id, StringComparison.Ordinal).Replace("\"ov\"", System.Text.Json.JsonSerializer.Serialize(name), StringComparison.Ordinal)),
            StoreVersion.Absent,
            StoreDurability.Durable);

        // Present before h2 starts (read in its first listing) and arriving while it follows.
        await Forge("..%2Fescape", "bad-id");
        await Forge("badname0", "bad name/../x");
        var h2 = await StartHostAsync("h2");
        await Forge("-dash-first", "bad-id-2");
        var endpoint = await good.CreateEndpointAsync("ep-h1");
        var endpointKey = $"cnm/v1/endpoint/{good.Id}/{endpoint.Id}";
        var endpointJson = System.Text.Encoding.UTF8.GetString((await h1.Global.GetAsync(endpointKey))!.Value.Span);
        var badAddress = endpointJson.Replace(endpoint.Id, "forgedep0", StringComparison.Ordinal)
            .Replace($"{endpoint.Address}", "10.91.0.300/24", StringComparison.Ordinal);
        Assert.That(badAddress, Does.Contain("10.91.0.300/24"));
        await h1.Global.PutAsync($"cnm/v1/endpoint/{good.Id}/forgedep0", System.Text.Encoding.UTF8.GetBytes(badAddress), StoreVersion.Absent, StoreDurability.Durable);
        var later = await h1.Controller.CreateNetworkAsync("ov2", GlobalTestDriver.Name, new NetworkCreateOptions { IPv4Config = [new IpamConfig { Subnet = "10.92.0.0/24" }] });

        await Until(() => h2.Controller.FindNetworkById(later.Id) is not null, "a good network made after the forged ones reaches h2");
        await Until(() => h2.Controller.GetNetwork("ov").RemoteEndpoints.Count == 1, "h1's real endpoint reaches h2");
        Assert.That(h2.Driver.Networks.Keys, Is.EquivalentTo(new[] { good.Id, later.Id }), "the driver saw only the good networks");
        Assert.That(h2.Controller.Networks.Select(n => n.Name), Is.EquivalentTo(new[] { "ov", "ov2" }));
        Assert.That(h2.Controller.GetNetwork("ov").RemoteEndpoints.Select(e => e.Id), Is.EqualTo(new[] { endpoint.Id }), "the forged endpoint with a bad address is not shown");
    }

    [Test]
    public async Task Hosts_allocating_at_once_from_one_global_pool_never_hand_out_an_address_twice()
    {
        var hosts = new[] { await StartHostAsync("h1"), await StartHostAsync("h2"), await StartHostAsync("h3") };
        var network = await hosts[0].Controller.CreateNetworkAsync("ov", GlobalTestDriver.Name, new NetworkCreateOptions { IPv4Config = [new IpamConfig { Subnet = "10.91.0.0/26" }] });
        foreach (var host in hosts.Skip(1))
        {
            await Until(() => host.Controller.FindNetworkById(network.Id) is not null, $"the network appears on {host.Name}");
        }

        const int PerHost = 12;
        var created = await Task.WhenAll(hosts.SelectMany(host => Enumerable.Range(0, PerHost).Select(i => Task.Run(async () =>
            await host.Controller.GetNetwork("ov").CreateEndpointAsync($"{host.Name}-{i}")))));
        var addresses = created.Select(e => e.Address!.Value.Address).ToList();
        Assert.That(addresses, Has.Count.EqualTo(3 * PerHost));
        Assert.That(addresses, Is.Unique, "no address handed out twice across hosts");
        Assert.That(addresses.Select(a => a.ToString()), Has.None.EqualTo("10.91.0.1"), "the gateway is not handed out again");
    }

    [Test]
    public async Task A_global_network_without_a_global_store_is_refused_with_GlobalStoreRequired()
    {
        var alone = await StartHostAsync("alone", withGlobalStore: false);
        var ex = await Catch<CnmUnavailableException>(async () => await alone.Controller.CreateNetworkAsync("ov", GlobalTestDriver.Name));
        Assert.That(ex.Code, Is.EqualTo(CnmErrorCodes.GlobalStoreRequired));
        Assert.That(alone.Controller.Networks.Select(n => n.Name), Has.None.EqualTo("ov"));
        Assert.That(alone.Driver.Networks, Is.Empty, "nothing reached the driver");
    }

    [Test]
    public async Task Deleting_a_global_network_with_endpoints_on_another_host_is_refused_and_a_delete_reaches_every_host()
    {
        var h1 = await StartHostAsync("h1");
        var h2 = await StartHostAsync("h2");
        var network = await h1.Controller.CreateNetworkAsync("ov", GlobalTestDriver.Name, new NetworkCreateOptions { IPv4Config = [new IpamConfig { Subnet = "10.92.0.0/24" }] });
        await Until(() => h2.Controller.FindNetworkById(network.Id) is not null, "the network appears on h2");
        var remote = await h2.Controller.GetNetwork("ov").CreateEndpointAsync("on-h2");

        var ex = await Catch<CnmConflictException>(async () => await h1.Controller.GetNetwork("ov").DeleteAsync());
        Assert.That(ex.Code, Is.EqualTo(CnmErrorCodes.ActiveEndpoints));
        Assert.That(ex.Message, Does.Contain("on-h2 on h2"));
        Assert.That(h1.Controller.FindNetworkById(network.Id), Is.Not.Null, "the network stays");

        await remote.DeleteAsync();
        await h1.Controller.GetNetwork("ov").DeleteAsync();
        await Until(() => h2.Controller.FindNetworkById(network.Id) is null, "the delete reaches h2");
        Assert.That(h2.Driver.Networks, Does.Not.ContainKey(network.Id), "h2's driver deleted its part");

        // The pool went back to the cluster's GlobalDefault space: another host can take the same subnet.
        var again = await h2.Controller.CreateNetworkAsync("ov2", GlobalTestDriver.Name, new NetworkCreateOptions { IPv4Config = [new IpamConfig { Subnet = "10.92.0.0/24" }] });
        Assert.That(again.IPv4Info[0].Pool.ToString(), Is.EqualTo("10.92.0.0/24"));
    }

    [Test]
    public async Task A_killed_hosts_endpoints_leave_the_others_view_when_its_lease_expires_but_a_clean_stop_keeps_them()
    {
        var h1 = await StartHostAsync("h1");
        var h2 = await StartHostAsync("h2");
        var h3 = await StartHostAsync("h3");
        var network = await h1.Controller.CreateNetworkAsync("ov", GlobalTestDriver.Name, new NetworkCreateOptions { IPv4Config = [new IpamConfig { Subnet = "10.93.0.0/24" }] });
        await Until(() => h2.Controller.FindNetworkById(network.Id) is not null && h3.Controller.FindNetworkById(network.Id) is not null, "the network appears on h2 and h3");
        await h2.Controller.GetNetwork("ov").CreateEndpointAsync("on-h2");
        await h3.Controller.GetNetwork("ov").CreateEndpointAsync("on-h3");
        await Until(() => h1.Controller.GetNetwork("ov").RemoteEndpoints.Count == 2, "h1 sees both");

        // h2 stops cleanly: its containers' endpoints stay in the kernel, so they stay in the cluster's view.
        await h2.DisposeAsync();
        _hosts.Remove(h2);

        // h3 dies: no more calls reach the store from it, its lease runs out, the others remove its endpoints.
        h3.Kill();
        await Until(() => h1.Controller.GetNetwork("ov").RemoteEndpoints.All(e => e.Node != "h3"), "h3's endpoint leaves h1's view", TimeSpan.FromSeconds(20));
        Assert.That(h1.Controller.GetNetwork("ov").RemoteEndpoints.Select(e => e.Name), Is.EqualTo(new[] { "on-h2" }), "the cleanly stopped host's endpoint stays");

        // A host started later does not see the dead host's endpoint either.
        var h4 = await StartHostAsync("h4");
        Assert.That(h4.Controller.GetNetwork("ov").RemoteEndpoints.Select(e => e.Node), Is.EqualTo(new[] { "h2" }));
    }

    [Test]
    public async Task Local_networks_stay_in_the_local_store_and_drivers_get_the_cluster_context()
    {
        var h1 = await StartHostAsync("h1");
        Assert.That(h1.Driver.Context!.NodeName, Is.EqualTo("h1"));
        Assert.That(h1.Driver.Context.GlobalStore, Is.Not.Null);
        Assert.That(h1.Driver.Context.GlobalStoreKeyPrefix, Is.EqualTo("cnm/v1/driver/" + GlobalTestDriver.Name + "/"));
        Assert.That(h1.Driver.Context.AdvertiseAddress, Is.EqualTo(IPAddress.Parse("192.0.2.1")));

        await h1.Controller.CreateNetworkAsync("local", "local-test", new NetworkCreateOptions { IPv4Config = [new IpamConfig { Subnet = "10.94.0.0/24" }] });
        var global = await OpenGlobalClientAsync();
        try
        {
            var keys = (await global.ListAsync("cnm/v1/network/")).Select(e => e.Key).ToList();
            Assert.That(keys, Is.Empty, "a local-scope network is not published");
            var ipamKeys = (await global.ListAsync("cnm/v1/ipam/")).Select(e => e.Key).ToList();
            Assert.That(ipamKeys, Has.None.Contains("10.94.0.0"), "LocalDefault stays in the local store");
            await h1.Controller.CreateNetworkAsync("ov", GlobalTestDriver.Name, new NetworkCreateOptions { IPv4Config = [new IpamConfig { Subnet = "10.95.0.0/24" }] });
            ipamKeys = (await global.ListAsync("cnm/v1/ipam/")).Select(e => e.Key).ToList();
            Assert.That(ipamKeys, Has.Some.Contains("GlobalDefault/10.95.0.0/24"), "GlobalDefault lives in the global store");
        }
        finally
        {
            await global.DisposeAsync();
        }
    }

    [Test]
    public async Task An_endpoint_a_crash_left_published_without_its_local_record_is_removed_from_the_cluster_at_restart_and_its_address_released()
    {
        var local = new InMemoryKeyValueStore();
        var h1 = await StartHostAsync("h1", local: local);
        var network = await h1.Controller.CreateNetworkAsync("ov", GlobalTestDriver.Name, new NetworkCreateOptions { IPv4Config = [new IpamConfig { Subnet = "10.96.0.0/24" }] });
        var endpoint = await network.CreateEndpointAsync("ep");
        var address = endpoint.Address!.Value.Address.ToString();
        var published = $"cnm/v1/endpoint/{network.Id}/{endpoint.Id}";
        var kept = await network.CreateEndpointAsync("kept");

        // What a crash right after the delete's local commit (endpoint.delete.record-removed) leaves: the local record
        // is gone, the published record and the global allocation are still there.
        await h1.DisposeAsync();
        await local.DeleteAsync(published, StoreVersion.Any);
        var global = await OpenGlobalClientAsync();
        try
        {
            Assert.That(await global.GetAsync(published), Is.Not.Null);
            Assert.That((await global.ListAsync("cnm/v1/ipam/")).Select(e => e.Key), Has.Some.EndsWith("/" + address));

            var restarted = await StartHostAsync("h1", local: local);
            Assert.That(await global.GetAsync(published), Is.Null, "the stale published record is gone");
            Assert.That((await global.ListAsync("cnm/v1/ipam/")).Select(e => e.Key), Has.None.EndsWith("/" + address), "its address is released");
            Assert.That(await global.GetAsync($"cnm/v1/endpoint/{network.Id}/{kept.Id}"), Is.Not.Null, "a live endpoint stays published");
            Assert.That((await global.ListAsync("cnm/v1/ipam/")).Select(e => e.Key), Has.Some.EndsWith("/" + kept.Address!.Value.Address), "with its address");
            Assert.That(restarted.Controller.GetNetwork("ov").Endpoints.Select(e => e.Name), Is.EqualTo(new[] { "kept" }));
        }
        finally
        {
            await global.DisposeAsync();
        }
    }

    private async Task<Host> StartHostAsync(string name, bool withGlobalStore = true, IKeyValueStore? local = null)
    {
        var host = new Host(name);
        var netns = new Mock<ISandboxNetworking>();
        netns.Setup(n => n.NamespaceExistsAsync(It.IsAny<string>(), It.IsAny<CancellationToken>())).ReturnsAsync(true);
        var builder = new NetworkControllerBuilder()
            .WithoutBuiltIns()
            .AddDriver(new GlobalTestDriverFactory(host.Driver))
            .AddDriver(new GlobalTestDriverFactory(new GlobalTestDriver(DriverScope.Local), "local-test"))
            .AddIpamDriver(new CnmSharp.Ipam.Default.DefaultIpamFactory())
            .UseFirewall(null)
            .UseStore(local ?? new InMemoryKeyValueStore())
            .UseSandboxNetworking(netns.Object)
            .Configure(o =>
            {
                o.StateDirectory = Path.Combine(_directory, name, "state");
                o.RunDirectory = Path.Combine(_directory, name, "run");
                o.CreateDefaultNetworks = false;
                o.AdvertiseAddress = "192.0.2.1";
                o.Cluster.NodeName = name;
                o.Cluster.NodeLeaseTtl = TimeSpan.FromSeconds(2);
            });
        if (withGlobalStore)
        {
            host.Global = new KillableStore(await OpenGlobalClientAsync());
            builder.UseGlobalStore(host.Global);
        }

        host.Controller = await builder.BuildAsync();
        _hosts.Add(host);
        return host;
    }

    private static async Task<T> Catch<T>(Func<Task> action)
        where T : Exception
    {
        try
        {
            await action();
        }
        catch (T ex)
        {
            return ex;
        }

        Assert.Fail($"expected {typeof(T).Name}");
        throw new InvalidOperationException();
    }

    private static async Task Until(Func<bool> condition, string what, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(10));
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                Assert.Fail("timed out waiting until " + what);
            }

            await Task.Delay(20);
        }
    }

    private sealed class Host(string name) : IAsyncDisposable
    {
        private bool _disposed;

        public string Name { get; } = name;

        public GlobalTestDriver Driver { get; } = new(DriverScope.Global);

        public NetworkController Controller { get; set; } = null!;

        public KillableStore? Global { get; set; }

        public void Kill() => Global?.Kill();

        public async ValueTask DisposeAsync()
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            await Controller.DisposeAsync();
            if (Global is not null)
            {
                await Global.Inner.DisposeAsync();
            }
        }
    }
}

/// <summary>A null-like driver whose data scope is given (global for the scenarios): it keeps its networks' pools
/// and does nothing in any kernel.</summary>
public sealed class GlobalTestDriver(DriverScope scope) : INetworkDriver
{
    public const string Name = "global-test";

    public DriverCapability Capability { get; } = new(scope, scope);

    public DriverContext? Context { get; set; }

    /// <summary>Network id to its first IPv4 pool.</summary>
    public ConcurrentDictionary<string, string> Networks { get; } = new(StringComparer.Ordinal);

    public ValueTask CreateNetworkAsync(NetworkCreateRequest request, CancellationToken cancellationToken = default)
    {
        Networks[request.NetworkId] = request.IPv4Data.Count > 0 ? request.IPv4Data[0].Pool.ToString() : "";
        return ValueTask.CompletedTask;
    }

    public ValueTask DeleteNetworkAsync(string networkId, CancellationToken cancellationToken = default)
    {
        Networks.TryRemove(networkId, out _);
        return ValueTask.CompletedTask;
    }

    public ValueTask CreateEndpointAsync(EndpointCreateRequest request, IInterfaceInfo interfaceInfo, CancellationToken cancellationToken = default) => ValueTask.CompletedTask;

    public ValueTask DeleteEndpointAsync(string networkId, string endpointId, CancellationToken cancellationToken = default) => ValueTask.CompletedTask;

    public ValueTask<IReadOnlyDictionary<string, string>> GetEndpointOperationalInfoAsync(string networkId, string endpointId, CancellationToken cancellationToken = default) =>
        ValueTask.FromResult<IReadOnlyDictionary<string, string>>(new Dictionary<string, string>());

    public ValueTask JoinAsync(JoinRequest request, IJoinInfo joinInfo, CancellationToken cancellationToken = default) => ValueTask.CompletedTask;

    public ValueTask LeaveAsync(string networkId, string endpointId, CancellationToken cancellationToken = default) => ValueTask.CompletedTask;
}

public sealed class GlobalTestDriverFactory(GlobalTestDriver driver, string name = GlobalTestDriver.Name) : INetworkDriverFactory
{
    public string Name => name;

    public ValueTask<INetworkDriver> CreateAsync(DriverContext context, CancellationToken cancellationToken = default)
    {
        driver.Context = context;
        return ValueTask.FromResult<INetworkDriver>(driver);
    }
}

/// <summary>A client of a shared store that can be cut off: after <see cref="Kill"/> every call fails as if the host
/// were gone (its lease then expires in the store).</summary>
public sealed class KillableStore(ISharedKeyValueStore inner) : ISharedKeyValueStore
{
    private volatile bool _killed;

    public ISharedKeyValueStore Inner { get; } = inner;

    public void Kill() => _killed = true;

    private void Check()
    {
        if (_killed)
        {
            throw new CnmUnavailableException(CnmErrorCodes.StoreUnavailable, "killed host", "this host is dead");
        }
    }

    public ValueTask<StoreEntry?> GetAsync(string key, CancellationToken cancellationToken = default)
    {
        Check();
        return Inner.GetAsync(key, cancellationToken);
    }

    public ValueTask<long> GetRevisionAsync(CancellationToken cancellationToken = default)
    {
        Check();
        return Inner.GetRevisionAsync(cancellationToken);
    }

    public ValueTask<IReadOnlyList<StoreEntry>> ListAsync(string prefix, CancellationToken cancellationToken = default)
    {
        Check();
        return Inner.ListAsync(prefix, cancellationToken);
    }

    public ValueTask<long> PutAsync(string key, ReadOnlyMemory<byte> value, long expectedVersion, StoreDurability durability, CancellationToken cancellationToken = default)
    {
        Check();
        return Inner.PutAsync(key, value, expectedVersion, durability, cancellationToken);
    }

    public ValueTask<bool> DeleteAsync(string key, long expectedVersion, StoreDurability durability, CancellationToken cancellationToken = default)
    {
        Check();
        return Inner.DeleteAsync(key, expectedVersion, durability, cancellationToken);
    }

    public ValueTask<IReadOnlyList<long>> CommitAsync(IReadOnlyList<StoreOperation> operations, StoreDurability durability, CancellationToken cancellationToken = default)
    {
        Check();
        return Inner.CommitAsync(operations, durability, cancellationToken);
    }

    public ValueTask<StoreListing> ListAtAsync(string prefix, long revision = StoreRevision.Latest, CancellationToken cancellationToken = default)
    {
        Check();
        return Inner.ListAtAsync(prefix, revision, cancellationToken);
    }

    public async IAsyncEnumerable<StoreEvent> WatchFromAsync(string prefix, long fromRevision, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        Check();
        await foreach (var change in Inner.WatchFromAsync(prefix, fromRevision, cancellationToken).ConfigureAwait(false))
        {
            Check();
            yield return change;
        }
    }

    public IAsyncEnumerable<StoreEvent> WatchAsync(string prefix, CancellationToken cancellationToken = default) => WatchFromAsync(prefix, StoreRevision.Latest, cancellationToken);

    public ValueTask<StoreLease> GrantLeaseAsync(TimeSpan ttl, CancellationToken cancellationToken = default)
    {
        Check();
        return Inner.GrantLeaseAsync(ttl, cancellationToken);
    }

    public ValueTask<TimeSpan> KeepLeaseAliveAsync(long leaseId, CancellationToken cancellationToken = default)
    {
        Check();
        return Inner.KeepLeaseAliveAsync(leaseId, cancellationToken);
    }

    public ValueTask<bool> RevokeLeaseAsync(long leaseId, CancellationToken cancellationToken = default)
    {
        Check();
        return Inner.RevokeLeaseAsync(leaseId, cancellationToken);
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}

/// <summary>The scenarios on one in-memory store shared by every host (each host's client is the same instance).</summary>
[TestFixture]
public sealed class InMemoryGlobalStoreTests : GlobalStoreScenarios
{
#pragma warning disable NUnit1032 // disposed by TearDownGlobalStoreAsync, which the base teardown calls after the hosts stopped
    private InMemoryKeyValueStore _store = null!;
#pragma warning restore NUnit1032

    protected override ValueTask SetUpGlobalStoreAsync()
    {
        _store = new InMemoryKeyValueStore();
        return ValueTask.CompletedTask;
    }

    protected override ValueTask<ISharedKeyValueStore> OpenGlobalClientAsync() => ValueTask.FromResult<ISharedKeyValueStore>(new KillableStore(_store));

    protected override ValueTask TearDownGlobalStoreAsync() => _store.DisposeAsync();
}
