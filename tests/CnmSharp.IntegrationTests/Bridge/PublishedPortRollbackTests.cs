using System.Net;
using CnmSharp.Drivers;
using CnmSharp.Drivers.Bridge;
using CnmSharp.Store;
using CnmSharp.Testing;

namespace CnmSharp.IntegrationTests.Bridge;

/// <summary>
/// Issue 10 section 3, as root in a private host namespace: a join that fails after its ports were published leaves no
/// rule behind (and a later join publishes them once), an ephemeral host port is reported as the port given, and a
/// scoped host address is refused at the call.
/// </summary>
[RequiresRoot]
[NonParallelizable]
public class PublishedPortRollbackTests
{
    private TestHostNamespace _host = null!;
    private string _temp = null!;
    private FailingStore _store = null!;
    private NetworkController _controller = null!;

    [SetUp]
    public async Task CreateWorld()
    {
        Assert.That(BridgeHarness.RootRuleCount(), Is.Zero, "the root namespace must have no rules before the test");
        _host = await TestHostNamespace.CreateAsync();
        _temp = Directory.CreateTempSubdirectory("cnmpp-").FullName;
        _store = new FailingStore(new InMemoryKeyValueStore());
        _controller = await new NetworkControllerBuilder(new CnmOptions
        {
            HostNamespacePath = _host.Path,
            RunDirectory = Path.Combine(_temp, "run"),
            StateDirectory = Path.Combine(_temp, "state"),
            CreateDefaultNetworks = false,
        })
            .AddDriver(new BridgeDriverFactory(new BridgeDriverOptions { ReapTimeout = TimeSpan.FromSeconds(3) }))
            .UseStore(_store)
            .BuildAsync();
    }

    [TearDown]
    public async Task RemoveWorld()
    {
        try
        {
            _store.FailJoinCommit = false;
            foreach (var sandbox in _controller.Sandboxes)
            {
                await sandbox.DeleteAsync();
            }

            foreach (var network in _controller.Networks.Where(n => n.Driver == "bridge"))
            {
                foreach (var endpoint in network.Endpoints)
                {
                    await endpoint.DeleteAsync(force: true);
                }

                await network.DeleteAsync();
            }

            await _controller.WaitForTeardownsAsync();
            Assert.That(BridgeHarness.Rules(_host.Path), Is.Empty, "rules left in the host namespace");
        }
        finally
        {
            await _controller.DisposeAsync();
            await _store.DisposeAsync();
            await _host.DisposeAsync();
            foreach (var line in MountTable.LinesUnder(_temp).Reverse())
            {
                BridgeHarness.Run("umount", "-l", line.Split(' ')[4]);
            }

            Directory.Delete(_temp, recursive: true);
        }

        Assert.That(BridgeHarness.RootRuleCount(), Is.Zero, "rules in the root namespace");
    }

    private ValueTask<Network> DualStackAsync() =>
        _controller.CreateNetworkAsync("pp", "bridge", new NetworkCreateOptions
        {
            EnableIPv6 = true,
            IPv4Config = [new IpamConfig { Subnet = "10.77.40.0/24" }],
            IPv6Config = [new IpamConfig { Subnet = "fd00:77:40::/64" }],
        });

    [Test]
    public async Task AJoinThatFailsAfterItsPortsWerePublishedLeavesNoRuleAndTheNextJoinPublishesThemOnce()
    {
        var network = await DualStackAsync();
        var endpoint = await network.CreateEndpointAsync("web", new EndpointCreateOptions
        {
            PortBindings =
            [
                new PortBinding(TransportProtocol.Tcp, 80, IPAddress.Any, 0),
                new PortBinding(TransportProtocol.Tcp, 81, IPAddress.IPv6Any, 18141),
            ],
        });
        var sandbox = await _controller.CreateSandboxAsync("c1");
        var rulesBefore = BridgeHarness.Rules(_host.Path);
        Assert.That(rulesBefore, Has.None.Contains("18141"), "no forward before the join");

        _store.FailJoinCommit = true;
        var failed = await Assert.ThrowsAsync<CnmUnavailableException>(async () => await endpoint.JoinAsync(sandbox));
        _store.FailJoinCommit = false;

        Assert.Multiple(() =>
        {
            Assert.That(failed!.Code, Is.EqualTo(CnmErrorCodes.StoreUnavailable));
            Assert.That(_store.FailedCommits, Is.EqualTo(1), "the join reached its commit: its ports had been published");
            Assert.That(BridgeHarness.Rules(_host.Path), Is.EquivalentTo(rulesBefore), "iptables and ip6tables rules as before the join");
            Assert.That(endpoint.Sandbox, Is.Null);
            Assert.That(endpoint.PortBindings.Select(b => b.HostPort), Is.EqualTo(new[] { 0, 18141 }), "not published: the request");
        });

        await endpoint.JoinAsync(sandbox);

        var published = endpoint.PortBindings;
        var ephemeral = published.First(b => b.ContainerPort == 80).HostPort;
        var rules = BridgeHarness.Rules(_host.Path);
        Assert.Multiple(() =>
        {
            Assert.That(ephemeral, Is.Not.Zero, "the ephemeral host port is reported as the port given");
            Assert.That(published.Where(b => b.ContainerPort == 80).Select(b => b.HostIP), Is.EquivalentTo(new[] { IPAddress.Any, IPAddress.IPv6Any }), "the IPv4 binding and its IPv6 copy");
            Assert.That(published.Where(b => b.ContainerPort == 80).Select(b => (int)b.HostPort).Distinct(), Is.EqualTo(new[] { (int)ephemeral }));
            Assert.That(rules.Count(r => r.StartsWith("iptables nat", StringComparison.Ordinal) && r.Contains("DNAT", StringComparison.Ordinal) && r.Contains($"--dport {ephemeral} ", StringComparison.Ordinal)), Is.EqualTo(1), "one IPv4 DNAT on the reported port");
            Assert.That(rules.Count(r => r.StartsWith("ip6tables nat", StringComparison.Ordinal) && r.Contains("DNAT", StringComparison.Ordinal) && r.Contains($"--dport {ephemeral} ", StringComparison.Ordinal)), Is.EqualTo(1), "one IPv6 DNAT on the reported port");
            Assert.That(rules.Count(r => r.StartsWith("ip6tables nat", StringComparison.Ordinal) && r.Contains("DNAT", StringComparison.Ordinal) && r.Contains("--dport 18141 ", StringComparison.Ordinal)), Is.EqualTo(1), "the IPv6 binding once, not duplicated by the second join");
        });

        await sandbox.DeleteAsync();
        await _controller.WaitForTeardownsAsync();
        Assert.That(BridgeHarness.Rules(_host.Path).Where(r => r.Contains("DNAT", StringComparison.Ordinal)), Is.Empty, "no forward after the sandbox is gone");
    }

    [Test]
    public async Task AScopedHostAddressIsRefusedAtTheCallAndLeavesNothing()
    {
        var network = await DualStackAsync();
        var rulesBefore = BridgeHarness.Rules(_host.Path);

        var refused = await Assert.ThrowsAsync<CnmInvalidArgumentException>(async () => await network.CreateEndpointAsync("scoped", new EndpointCreateOptions
        {
            PortBindings = [new PortBinding(TransportProtocol.Tcp, 80, IPAddress.Parse("fe80::1%1"), 18142)],
        }));

        Assert.Multiple(() =>
        {
            Assert.That(refused!.Code, Is.EqualTo(CnmErrorCodes.InvalidAddress));
            Assert.That(network.Endpoints, Is.Empty);
            Assert.That(BridgeHarness.Rules(_host.Path), Is.EquivalentTo(rulesBefore));
        });
    }

    /// <summary>The in-memory store, with the commit of a join (the one that writes a sandbox record and removes the
    /// join's intent) failing while <see cref="FailJoinCommit"/> is set.</summary>
    private sealed class FailingStore(InMemoryKeyValueStore inner) : IKeyValueStore
    {
        public bool FailJoinCommit { get; set; }

        public int FailedCommits { get; private set; }

        public ValueTask<long> GetRevisionAsync(CancellationToken cancellationToken = default) => inner.GetRevisionAsync(cancellationToken);

        public ValueTask<StoreEntry?> GetAsync(string key, CancellationToken cancellationToken = default) => inner.GetAsync(key, cancellationToken);

        public ValueTask<IReadOnlyList<StoreEntry>> ListAsync(string prefix, CancellationToken cancellationToken = default) => inner.ListAsync(prefix, cancellationToken);

        public ValueTask<long> PutAsync(string key, ReadOnlyMemory<byte> value, long expectedVersion, StoreDurability durability, CancellationToken cancellationToken = default) =>
            inner.PutAsync(key, value, expectedVersion, durability, cancellationToken);

        public ValueTask<bool> DeleteAsync(string key, long expectedVersion, StoreDurability durability, CancellationToken cancellationToken = default) =>
            inner.DeleteAsync(key, expectedVersion, durability, cancellationToken);

        public ValueTask<IReadOnlyList<long>> CommitAsync(IReadOnlyList<StoreOperation> operations, StoreDurability durability, CancellationToken cancellationToken = default)
        {
            if (FailJoinCommit && operations.Any(o => o.Key.StartsWith("cnm/v1/sandbox/", StringComparison.Ordinal)) && operations.Any(o => o.Key.StartsWith("cnm/v1/intent/", StringComparison.Ordinal)))
            {
                FailedCommits++;
                throw new CnmUnavailableException(CnmErrorCodes.StoreUnavailable, "test store", "the join's commit fails (injected)");
            }

            return inner.CommitAsync(operations, durability, cancellationToken);
        }

        public IAsyncEnumerable<StoreEvent> WatchAsync(string prefix, CancellationToken cancellationToken = default) => inner.WatchAsync(prefix, cancellationToken);

        public ValueTask DisposeAsync() => inner.DisposeAsync();
    }
}
