using System.Security.Cryptography;
using CnmSharp.IntegrationTests.Bridge;
using CnmSharp.Netlink;
using CnmSharp.Store;
using CnmSharp.Store.Etcd;
using CnmSharp.Testing;

namespace CnmSharp.IntegrationTests.Overlay;

/// <summary>
/// The gateway network (docker_gwbridge) on one simulated host, through a real controller: a private host namespace
/// with an underlay address on a veth (the VTEP) and a veth to an "outside" namespace (10.231.199.2/24) that has
/// no route to any container subnet, so only the gateway bridge's masquerade lets a sandbox reach it; one etcd the test
/// starts on loopback as the global store. Everything the test makes is removed afterwards, also after a failure.
/// </summary>
[RequiresRoot]
[NonParallelizable]
public class GatewayNetworkIntegrationTests
{
    private const string Outside = "10.231.199.2";

    [Test]
    public async Task An_overlay_sandbox_reaches_the_outside_through_the_gateway_bridge_and_not_the_gateway_networks_other_sandboxes()
    {
        await using var etcd = await EtcdCluster.StartAsync(1);
        await using var host = await TestHostNamespace.CreateAsync();
        var temp = Directory.CreateTempSubdirectory("cnmgw-").FullName;
        NetworkController? controller = null;
        try
        {
            await BuildHostAsync(host);
            var etcdOptions = new EtcdStoreOptions { KeyPrefix = "cnmgw-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4)) + "/" };
            etcdOptions.Endpoints.Add(etcd.ClientUrls[0]);
            controller = await new NetworkControllerBuilder(new CnmOptions
            {
                HostNamespacePath = host.Path,
                RunDirectory = Path.Combine(temp, "run"),
                StateDirectory = Path.Combine(temp, "state"),
                CreateDefaultNetworks = false,
                AdvertiseAddress = "192.168.77.1",
                Cluster = { NodeName = "host1" },
            })
                .UseStore(new InMemoryKeyValueStore())
                .UseEtcdGlobalStore(etcdOptions)
                .BuildAsync();

            var ovA = await controller.CreateNetworkAsync("ov-a", "overlay", new NetworkCreateOptions { IPv4Config = [new IpamConfig { Subnet = "10.231.200.0/24" }] });
            var ovB = await controller.CreateNetworkAsync("ov-b", "overlay", new NetworkCreateOptions { IPv4Config = [new IpamConfig { Subnet = "10.231.201.0/24" }] });
            var (a, _) = await ContainerAsync(controller, ovA, "cnmgw-a");
            var (a2, a2Ep) = await ContainerAsync(controller, ovA, "cnmgw-a2");
            var (b, _) = await ContainerAsync(controller, ovB, "cnmgw-b");

            var gw = controller.FindNetworkByName("docker_gwbridge");
            Assert.That(gw, Is.Not.Null, "the first overlay join creates the gateway network");
            var gwA = a.Endpoints.Single(e => e.Network == gw);
            var gwB = b.Endpoints.Single(e => e.Network == gw);
            var gateway = gw!.IPv4Info[0].Gateway!.Value.Address.ToString();
            var hostLinks = BridgeHarness.LinksOf(host.Path);
            var masquerade = BridgeHarness.Rules(host.Path).Where(r => r.Contains("MASQUERADE", StringComparison.Ordinal) && r.Contains(gw.IPv4Info[0].Pool.ToString(), StringComparison.Ordinal)).ToList();
            Assert.Multiple(() =>
            {
                Assert.That(gwA.Name, Is.EqualTo("gateway_" + a.Id[..12]));
                Assert.That(hostLinks, Does.Contain("docker_gwbridge"), "the gateway network's bridge is named as the network");
                Assert.That(masquerade, Is.Not.Empty, "the gateway network masquerades its subnet");
                Assert.That(BridgeHarness.DefaultRoutes(a.Key), Is.EqualTo(new[] { ((string?)gateway, gwA.InterfaceName) }), "the default route goes through the gateway network endpoint");
                Assert.That(BridgeHarness.Ping(a.Key, Outside), Is.True, "a reaches the outside (which has no route back: only the masquerade makes the reply come)");
                Assert.That(BridgeHarness.Ping(b.Key, Outside), Is.True, "b reaches the outside");
                Assert.That(BridgeHarness.Ping(a.Key, a2Ep.Address!.Value.Address.ToString()), Is.True, "the overlay still joins a and a2");
                Assert.That(BridgeHarness.Ping(a.Key, gwB.Address!.Value.Address.ToString()), Is.False, "ICC is off on the gateway network: a cannot reach b there");
                Assert.That(BridgeHarness.Ping(b.Key, gwA.Address!.Value.Address.ToString()), Is.False, "nor b a");
            });

            // Teardown through the API: the sandboxes take their gateway endpoints with them, then every network goes;
            // nothing of the gateway network stays in the kernel.
            foreach (var sandbox in new[] { a, a2, b })
            {
                await sandbox.DeleteAsync();
            }

            await controller.WaitForTeardownsAsync();
            Assert.That(gw.Endpoints, Is.Empty);
            foreach (var network in new[] { gw, ovA, ovB })
            {
                await network.DeleteAsync();
            }

            var gwRules = BridgeHarness.Rules(host.Path).Where(r => r.Contains("docker_gwbridge", StringComparison.Ordinal)).ToList();
            Assert.Multiple(() =>
            {
                Assert.That(BridgeHarness.LinksOf(host.Path), Does.Not.Contain("docker_gwbridge"));
                Assert.That(gwRules, Is.Empty);
            });
        }
        finally
        {
            if (controller is not null)
            {
                await controller.DisposeAsync();
            }

            // The overlay driver's network namespaces are bind mounts under the run directory.
            foreach (var line in MountTable.LinesUnder(temp).Reverse())
            {
                BridgeHarness.Run("umount", "-l", line.Split(' ')[4]);
            }

            Directory.Delete(temp, recursive: true);
        }
    }

    private static async Task<(Sandbox Sandbox, Endpoint Endpoint)> ContainerAsync(NetworkController controller, Network network, string name)
    {
        var sandbox = await controller.CreateSandboxAsync(name);
        var endpoint = await network.CreateEndpointAsync(name);
        await endpoint.JoinAsync(sandbox);
        return (sandbox, endpoint);
    }

    /// <summary>The VTEP address on a veth, and a veth to an outside namespace (made through the host
    /// namespace's manager, so it goes with it) that knows only its own link's subnet.</summary>
    private static async Task BuildHostAsync(TestHostNamespace host)
    {
        BridgeHarness.Exec(host.Path, "ip", "link", "add", "ul0", "type", "veth", "peer", "name", "ulp0");
        BridgeHarness.Exec(host.Path, "ip", "addr", "add", "192.168.77.1/24", "dev", "ul0");
        BridgeHarness.Exec(host.Path, "ip", "link", "set", "ulp0", "up");
        BridgeHarness.Exec(host.Path, "ip", "link", "set", "ul0", "up");
        var outsideName = TestHostNamespace.UniqueName("cnmgw-x");
        using (var outside = await host.Manager.CreateAsync(outsideName))
        using (var client = host.OpenClient())
        {
            await client.CreateLinkAsync(new VethLinkSpec("xo0", "eth0") { PeerNamespace = outside.Handle, Up = true });
        }

        var outsidePath = host.Manager.GetPath(outsideName);
        BridgeHarness.Exec(host.Path, "ip", "addr", "add", "10.231.199.1/24", "dev", "xo0");
        BridgeHarness.Exec(outsidePath, "ip", "addr", "add", Outside + "/24", "dev", "eth0");
        BridgeHarness.Exec(outsidePath, "ip", "link", "set", "eth0", "up");
        BridgeHarness.Exec(outsidePath, "ip", "link", "set", "lo", "up");
    }
}
