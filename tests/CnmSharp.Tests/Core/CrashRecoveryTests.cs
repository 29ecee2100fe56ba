using CnmSharp.Core.Persistence;
using CnmSharp.Drivers;
using CnmSharp.Ipam;
using CnmSharp.Ipam.Default;
using CnmSharp.Store;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace CnmSharp.Tests.Core;

/// <summary>
/// A controller dies at every step of an operation (the fakes throw at step k and refuse everything after it; the
/// controller is abandoned without dispose), then a new controller starts on the same store and kernel. Whatever the
/// step, the new controller's state is consistent: every joined endpoint's interface is in its sandbox with its address,
/// no interface is there that no endpoint names, no host veth without its joined endpoint, IPAM holds exactly the
/// addresses and pools of the objects that exist, and no intent or mark is left.
/// </summary>
public sealed class CrashRecoveryTests
{
    private const string Driver = "veth";

    private sealed class World : IAsyncDisposable
    {
        public FakeKernel Kernel { get; } = new();

        public InMemoryKeyValueStore Store { get; } = new();

        public string Directory { get; } = Path.Combine(Path.GetTempPath(), "cnmsharp-crash-" + Guid.NewGuid().ToString("N"));

        public async Task<NetworkController> StartAsync(CrashSwitch crash, TimeProvider? time = null)
        {
            var builder = new NetworkControllerBuilder()
                .WithoutBuiltIns()
                .AddIpamDriver(new DefaultIpamFactory())
                .AddDriver(new FakeDriverFactory(Driver, new FakeVethDriver(Kernel, crash)))
                .UseFirewall(null)
                .Configure(o =>
                {
                    o.StateDirectory = Directory;
                    o.RunDirectory = Path.Combine(Directory, "run");
                    o.CreateDefaultNetworks = false;
                })
                .UseStore(new CrashableStore(Store, crash))
                .UseSandboxNetworking(new FakeSandboxNetworking(Kernel, crash))
                .UseLoggerFactory(NullLoggerFactory.Instance);
            if (time is not null)
            {
                builder.UseTimeProvider(time);
            }

            return await builder.BuildAsync();
        }

        public async ValueTask DisposeAsync()
        {
            await Store.DisposeAsync();
            if (System.IO.Directory.Exists(Directory))
            {
                System.IO.Directory.Delete(Directory, recursive: true);
            }
        }
    }

    public static readonly string[] Operations = ["join", "leave", "leave-gateway", "delete-endpoint", "force-delete-endpoint", "delete-sandbox", "delete-network"];

    [TestCaseSource(nameof(Operations))]
    public async Task A_crash_at_any_step_leaves_a_state_the_next_start_makes_consistent(string operation)
    {
        var crashedAt = new List<int>();
        for (var step = 1; step < 60; step++)
        {
            await using var world = new World();
            var crash = new CrashSwitch();
            var a = await world.StartAsync(crash, new FakeTimeProvider());
            var n = await a.CreateNetworkAsync("n", Driver, new NetworkCreateOptions { IPv4Config = [new IpamConfig { Subnet = "10.95.0.0/24" }] });
            var empty = await a.CreateNetworkAsync("empty", Driver, new NetworkCreateOptions { IPv4Config = [new IpamConfig { Subnet = "10.96.0.0/24" }] });
            var sb = await a.CreateSandboxAsync("c1");
            var e1 = await n.CreateEndpointAsync("e1");
            var e2 = await n.CreateEndpointAsync("e2");
            var e3 = await n.CreateEndpointAsync("e3");
            await e1.JoinAsync(sb, new JoinOptions { Priority = 10 });
            await e2.JoinAsync(sb);

            crash.Arm(step);
            try
            {
                switch (operation)
                {
                    case "join": await e3.JoinAsync(sb); break;
                    case "leave": await e2.LeaveAsync(sb); break;
                    case "leave-gateway": await e1.LeaveAsync(sb); break;
                    case "delete-endpoint": await e3.DeleteAsync(); break;
                    case "force-delete-endpoint": await e1.DeleteAsync(force: true); break;
                    case "delete-sandbox":
                        await sb.DeleteAsync();
                        var deadline = DateTime.UtcNow.AddSeconds(10);
                        while (!crash.Crashed && a.PendingTeardowns > 0 && DateTime.UtcNow < deadline)
                        {
                            await Task.Delay(5);
                        }

                        break;
                    case "delete-network": await empty.DeleteAsync(); break;
                }
            }
            catch (SimulatedCrashException)
            {
            }

            // A caught crash may surface as another error (a rollback step, a store refusal): all that matters is
            // that it happened.
            var crashed = crash.Crashed;
            if (crashed)
            {
                crashedAt.Add(step);
            }

            var b = await world.StartAsync(new CrashSwitch());
            try
            {
                await AssertConsistentAsync(world, b, $"{operation}, crash at step {step}");
            }
            finally
            {
                await b.DisposeAsync();
            }

            if (!crashed)
            {
                break;
            }
        }

        Assert.That(crashedAt, Is.Not.Empty, "the operation has steps to crash at");
        TestContext.Out.WriteLine($"{operation}: crashed at steps {string.Join(",", crashedAt)}");
    }

    private static async Task AssertConsistentAsync(World world, NetworkController c, string when)
    {
        await c.WaitForTeardownsAsync();
        var store = world.Store;
        var kernel = world.Kernel;
        var intents = await store.ListAsync(CoreStore.IntentPrefix);
        var endpointRecords = (await store.ListAsync(CoreStore.EndpointPrefix)).Select(e => CoreStore.Deserialize(e, CoreJsonContext.Default.EndpointRecord)).ToArray();
        var networkRecords = (await store.ListAsync(CoreStore.NetworkPrefix)).Select(e => CoreStore.Deserialize(e, CoreJsonContext.Default.NetworkRecord)).ToArray();
        var sandboxRecords = (await store.ListAsync(CoreStore.SandboxPrefix)).Select(e => CoreStore.Deserialize(e, CoreJsonContext.Default.SandboxRecord)).ToArray();
        var endpoints = c.Networks.SelectMany(x => x.Endpoints).ToArray();
        var joined = endpoints.Where(e => e.Sandbox is not null).ToArray();

        var ipam = await new DefaultIpamFactory().CreateAsync(new DriverContext
        {
            ControllerId = "check",
            RunDirectory = world.Directory,
            Store = store,
            StoreKeyPrefix = CoreStore.IpamPrefix + IpamNames.Default + "/",
            LoggerFactory = NullLoggerFactory.Instance,
        });
        var owned = (IIpamOwnedAllocations)ipam;
        var pools = await owned.GetPoolIdsAsync();
        var allocated = new List<string>();
        foreach (var pool in pools)
        {
            allocated.AddRange((await owned.GetAllocationsAsync(pool)).Where(x => x.Owner is null || !x.Owner.StartsWith("network:", StringComparison.Ordinal)).Select(x => x.Address.ToString()));
        }

        Assert.Multiple(() =>
        {
            Assert.That(intents, Is.Empty, $"{when}: no intent left");
            Assert.That(endpointRecords.Where(r => r.TearingDown), Is.Empty, $"{when}: no endpoint left marked");
            Assert.That(networkRecords.Where(r => r.TearingDown), Is.Empty, $"{when}: no network left marked");
            Assert.That(sandboxRecords.Where(r => r.TearingDown), Is.Empty, $"{when}: no sandbox left marked");
            Assert.That(endpointRecords.Select(r => r.Id), Is.EquivalentTo(endpoints.Select(e => e.Id)), $"{when}: stored endpoints are the listed ones");
            Assert.That(networkRecords.Select(r => r.Id), Is.EquivalentTo(c.Networks.Select(x => x.Id)), $"{when}: stored networks are the listed ones");
            Assert.That(sandboxRecords.Select(r => r.Id), Is.EquivalentTo(c.Sandboxes.Select(x => x.Id)), $"{when}: stored sandboxes are the listed ones");

            lock (kernel.Lock)
            {
                Assert.That(kernel.Namespaces.Keys.Where(k => k != FakeKernel.Host), Is.EquivalentTo(c.Sandboxes.Select(s => s.Key)), $"{when}: a namespace per sandbox");
            }

            foreach (var sandbox in c.Sandboxes)
            {
                Assert.That(kernel.Names(sandbox.Key), Is.EquivalentTo(sandbox.Endpoints.Select(e => e.InterfaceName)), $"{when}: the interfaces of sandbox {sandbox.ContainerId} are exactly its endpoints'");
                foreach (var e in sandbox.Endpoints)
                {
                    var link = kernel.Find(sandbox.Key, e.InterfaceName!);
                    Assert.That(link?.Addresses, Does.Contain(e.Address!.Value), $"{when}: {e.Name}'s interface has its address");
                }
            }

            Assert.That(kernel.Names(FakeKernel.Host), Is.EquivalentTo(joined.Select(e => FakeVethDriver.HostName(e.Id))), $"{when}: a host veth per joined endpoint, none other");
            Assert.That(pools, Is.EquivalentTo(c.Networks.SelectMany(x => x.IPv4Info.Select(i => i.PoolId))), $"{when}: IPAM pools are the networks'");
            Assert.That(allocated, Is.EquivalentTo(endpoints.Select(e => e.Address!.Value.Address.ToString())), $"{when}: IPAM addresses are the endpoints'");
        });
    }
}
