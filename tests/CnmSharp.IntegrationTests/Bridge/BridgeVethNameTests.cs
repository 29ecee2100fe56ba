using System.Net;
using System.Security.Cryptography;
using System.Text.Json;
using CnmSharp.Core;
using CnmSharp.Drivers;
using CnmSharp.Drivers.Bridge;
using CnmSharp.Store;
using CnmSharp.Testing;
using Microsoft.Extensions.Logging.Abstractions;

namespace CnmSharp.IntegrationTests.Bridge;

/// <summary>
/// Host-side interface names, as root, with the bridge driver alone (endpoint ids chosen by the test) on a private
/// host namespace; sandboxes are namespaces the test makes in that namespace's private directory. Everything lives
/// inside the private namespace, and disposing it removes every link and sandbox even after a failure.
/// </summary>
[RequiresRoot]
[NonParallelizable]
public class BridgeVethNameTests
{
    private const string Subnet = "10.78.1";

    /// <summary>The test's world: host namespace, store, driver, one network; endpoints and sandboxes on demand.</summary>
    private sealed class World : IAsyncDisposable
    {
        private World(TestHostNamespace host, InMemoryKeyValueStore store, BridgeDriver driver, string networkId)
        {
            Host = host;
            Store = store;
            Driver = driver;
            NetworkId = networkId;
        }

        public TestHostNamespace Host { get; }

        public InMemoryKeyValueStore Store { get; }

        public BridgeDriver Driver { get; }

        public string NetworkId { get; }

        public string BridgeName => "br-" + NetworkId[..12];

        public static async Task<World> CreateAsync()
        {
            var host = await TestHostNamespace.CreateAsync();
            var store = new InMemoryKeyValueStore();
            BridgeDriver? driver = null;
            try
            {
                driver = await BridgeDriver.CreateAsync(
                    new DriverContext
                    {
                        ControllerId = "vethnames",
                        HostNamespacePath = host.Path,
                        RunDirectory = host.RunDirectory,
                        Store = store,
                        StoreKeyPrefix = "cnm/v1/driver/bridge/",
                        LoggerFactory = NullLoggerFactory.Instance,
                    },
                    new BridgeDriverOptions { EnableFirewall = false, EnableIPForwarding = false, ReapTimeout = TimeSpan.FromSeconds(3) },
                    CancellationToken.None);
                var networkId = RandomId();
                await driver.CreateNetworkAsync(new NetworkCreateRequest
                {
                    NetworkId = networkId,
                    NetworkName = "names",
                    IPv4Data = [new IpamData("LocalDefault", IPNetwork.Parse(Subnet + ".0/24"), CidrAddress.Parse(Subnet + ".1/24"), new Dictionary<string, CidrAddress>())],
                });
                return new World(host, store, driver, networkId);
            }
            catch
            {
                if (driver is not null)
                {
                    await driver.DisposeAsync();
                }

                await store.DisposeAsync();
                await host.DisposeAsync();
                throw;
            }
        }

        public async Task<string> SandboxAsync()
        {
            var name = TestHostNamespace.UniqueName("cnmvn");
            using var ns = await Host.Manager.CreateAsync(name);
            var path = Host.Manager.GetPath(name);
            await IpTool.RunAsync(path, "link", "set", "lo", "up");
            return path;
        }

        public async Task CreateEndpointAsync(string endpointId, int host)
        {
            var info = new InterfaceInfo();
            info.SetIPAddress(CidrAddress.Parse($"{Subnet}.{host}/24"));
            await Driver.CreateEndpointAsync(new EndpointCreateRequest { NetworkId = NetworkId, EndpointId = endpointId, EndpointName = endpointId[..8] }, info);
        }

        /// <summary>Joins, then does what the core would: address and up on the container end (not renamed here).</summary>
        public async Task<string> JoinAsync(string endpointId, string sandboxKey, int host)
        {
            var joinInfo = new JoinInfo(new InterfaceInfo());
            await Driver.JoinAsync(new JoinRequest { NetworkId = NetworkId, EndpointId = endpointId, SandboxId = endpointId[..12], SandboxKey = sandboxKey }, joinInfo);
            var ifname = joinInfo.SourceName!;
            await IpTool.RunAsync(sandboxKey, "addr", "replace", $"{Subnet}.{host}/24", "dev", ifname);
            await IpTool.RunAsync(sandboxKey, "link", "set", ifname, "up");
            return ifname;
        }

        public string HostVethOf(string endpointId) =>
            Driver.NetworksForTest.Single().Endpoints[endpointId].Record.HostVeth;

        public async Task<string> StoredHostVethOf(string endpointId)
        {
            var entry = await Store.GetAsync($"cnm/v1/driver/bridge/endpoint/{NetworkId}/{endpointId}");
            return JsonDocument.Parse(entry!.Value).RootElement.GetProperty("hostVeth").GetString()!;
        }

        /// <summary>The names of the links enslaved to the network's bridge.</summary>
        public async Task<List<string>> BridgePortsAsync() =>
            [.. (await IpTool.JsonAsync(Host.Path, "link", "show", "master", BridgeName)).EnumerateArray().Select(l => l.GetProperty("ifname").GetString()!)];

        public async ValueTask DisposeAsync()
        {
            await Driver.DisposeAsync();
            await Store.DisposeAsync();
            await Host.DisposeAsync();
        }
    }

    private static string RandomId() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32));

    /// <summary>Two random ids that share their first 7 hex digits (and differ in the 8th).</summary>
    private static (string A, string B) SharingPrefix()
    {
        var a = RandomId();
        var b = a[..7] + (a[7] == '0' ? '1' : '0') + RandomId()[8..];
        return (a, b);
    }

    private static async Task<bool> IsUpAsync(string netns, string ifname)
    {
        var link = await IpTool.LinkAsync(netns, ifname);
        return link is { } l && IpTool.HasFlag(l, "UP") && IpTool.HasFlag(l, "LOWER_UP");
    }

    [Test]
    public async Task TwoEndpointsSharingSevenHexDigitsBothKeepTheirVeths()
    {
        await using var w = await World.CreateAsync();
        var (a, b) = SharingPrefix();
        var sa = await w.SandboxAsync();
        var sb = await w.SandboxAsync();
        await w.CreateEndpointAsync(a, 2);
        var ifa = await w.JoinAsync(a, sa, 2);
        await w.CreateEndpointAsync(b, 3);
        var ifb = await w.JoinAsync(b, sb, 3);

        var ports = await w.BridgePortsAsync();
        Assert.Multiple(() =>
        {
            Assert.That(w.HostVethOf(a), Is.EqualTo("veth" + a[..7]));
            Assert.That(w.HostVethOf(b), Is.EqualTo("veth" + b[..8]), "the second endpoint takes one more digit");
            Assert.That(ports, Is.EquivalentTo(new[] { w.HostVethOf(a), w.HostVethOf(b) }), "both host veths exist, on the bridge");
        });
        var upA = await IsUpAsync(sa, ifa);
        var upB = await IsUpAsync(sb, ifb);
        Assert.Multiple(() =>
        {
            Assert.That(upA, Is.True, "the first sandbox's interface is up");
            Assert.That(upB, Is.True, "the second sandbox's interface is up");
            Assert.That(BridgeHarness.Ping(sa, Subnet + ".3"), Is.True, "a reaches b");
            Assert.That(BridgeHarness.Ping(sb, Subnet + ".2"), Is.True, "b reaches a");
        });

        // Deleting one leaves the other's veth.
        await w.Driver.DeleteEndpointAsync(w.NetworkId, a);
        Assert.That(await w.BridgePortsAsync(), Is.EqualTo(new[] { w.HostVethOf(b) }));
        Assert.That(BridgeHarness.Ping(sb, Subnet + ".1"), Is.True, "b still reaches its gateway");
        await w.Driver.DeleteEndpointAsync(w.NetworkId, b);
        await w.Driver.DeleteNetworkAsync(w.NetworkId);
        Assert.That(BridgeHarness.LinksOf(w.Host.Path), Is.EquivalentTo(new[] { "lo" }));
        Assert.That(await w.Store.ListAsync("cnm/v1/driver/bridge/"), Is.Empty);
    }

    [Test]
    public async Task AForeignLinkOfTheChosenNameIsNotDeletedByAJoin()
    {
        await using var w = await World.CreateAsync();
        var id = RandomId();
        var foreign = "veth" + id[..7];

        // Not the driver's: a veth pair the test makes (not on the bridge), under the name the driver would choose.
        BridgeHarness.Exec(w.Host.Path, "ip", "link", "add", foreign, "type", "veth", "peer", "name", "cnmvnpeer0");
        var foreignIndex = (await IpTool.LinkAsync(w.Host.Path, foreign))!.Value.GetProperty("ifindex").GetInt32();
        var sandbox = await w.SandboxAsync();
        await w.CreateEndpointAsync(id, 2);
        Assert.That(w.HostVethOf(id), Is.EqualTo(foreign), "the driver's records do not hold the name, so it is chosen first");

        await w.JoinAsync(id, sandbox, 2);
        var stillThere = await IpTool.LinkAsync(w.Host.Path, foreign);
        var stored = await w.StoredHostVethOf(id);
        var ports = await w.BridgePortsAsync();
        Assert.Multiple(() =>
        {
            Assert.That(stillThere?.GetProperty("ifindex").GetInt32(), Is.EqualTo(foreignIndex), "the foreign link is untouched");
            Assert.That(w.HostVethOf(id), Is.EqualTo("veth" + id[..8]), "the join took another name");
            Assert.That(stored, Is.EqualTo("veth" + id[..8]), "the new name is in the record");
            Assert.That(ports, Is.EqualTo(new[] { "veth" + id[..8] }));
            Assert.That(BridgeHarness.Ping(sandbox, Subnet + ".1"), Is.True, "the endpoint reaches its gateway");
        });

        await w.Driver.DeleteEndpointAsync(w.NetworkId, id);
        await w.Driver.DeleteNetworkAsync(w.NetworkId);
        Assert.That(BridgeHarness.LinksOf(w.Host.Path), Is.EquivalentTo(new[] { "lo", foreign, "cnmvnpeer0" }), "only the test's own pair is left");
    }

    [Test]
    public async Task ANameTakenInsideTheSandboxGivesOtherNamesAndTheLinkThereStays()
    {
        await using var w = await World.CreateAsync();
        var id = RandomId();
        var sandbox = await w.SandboxAsync();
        BridgeHarness.Exec(sandbox, "ip", "link", "add", "vc" + id[..7], "type", "veth", "peer", "name", "cnmvnpeer1");
        await w.CreateEndpointAsync(id, 2);

        var ifname = await w.JoinAsync(id, sandbox, 2);
        var ports = await w.BridgePortsAsync();
        Assert.Multiple(() =>
        {
            Assert.That(ifname, Is.EqualTo("vc" + id[..8]));
            Assert.That(BridgeHarness.LinksOf(sandbox), Is.EquivalentTo(new[] { "lo", "vc" + id[..7], "cnmvnpeer1", "vc" + id[..8] }));
            Assert.That(ports, Is.EqualTo(new[] { "veth" + id[..8] }));
        });
    }

    [Test]
    public async Task ARepeatedJoinReplacesItsOwnVethUnderTheSameName()
    {
        await using var w = await World.CreateAsync();
        var id = RandomId();
        var sandbox = await w.SandboxAsync();
        await w.CreateEndpointAsync(id, 2);
        await w.JoinAsync(id, sandbox, 2);
        var first = (await IpTool.LinkAsync(w.Host.Path, "veth" + id[..7]))!.Value.GetProperty("ifindex").GetInt32();

        // As after a crash between the kernel call and the commit: the same join again finds its own veth on the bridge.
        await w.JoinAsync(id, sandbox, 2);
        var second = (await IpTool.LinkAsync(w.Host.Path, "veth" + id[..7]))!.Value.GetProperty("ifindex").GetInt32();
        var ports = await w.BridgePortsAsync();
        Assert.Multiple(() =>
        {
            Assert.That(w.HostVethOf(id), Is.EqualTo("veth" + id[..7]), "the name is kept");
            Assert.That(second, Is.Not.EqualTo(first), "the leftover was replaced");
            Assert.That(ports, Is.EqualTo(new[] { "veth" + id[..7] }));
            Assert.That(BridgeHarness.LinksOf(sandbox), Is.EquivalentTo(new[] { "lo", "vc" + id[..7] }));
        });
    }
}
