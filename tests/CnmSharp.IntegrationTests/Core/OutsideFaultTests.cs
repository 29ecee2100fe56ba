using CnmSharp.Diagnostics;
using CnmSharp.Firewall;
using CnmSharp.Store;
using CnmSharp.TestHost;
using CnmSharp.Testing;

namespace CnmSharp.IntegrationTests.Core;

/// <summary>
/// Faults from outside (issue 16, part 5; docs/reliability.md, "Recovery rules"), on the real kernel in a private host
/// namespace: a store that refuses a write (disk full, read-only file system: the SQLite store's typed
/// <see cref="CnmUnavailableException"/>), once or from then on, at each write of a bridge network creation and of a
/// join with a published port; and a kernel error at each fault point of a join (a fault point that throws). Each time
/// the operation fails with the error, the kernel is exactly as before it (links, addresses, firewall rules, namespaces),
/// and the operation then succeeds. Rules deleted behind CnmSharp's back are covered elsewhere:
/// <c>BridgeDriverIntegrationTests.ARestartAdoptsBridgesAndRulesAndReconcileRestoresAFlush</c> (iptables flush, then
/// <c>ReconcileFirewallAsync</c>) and <c>NftablesDriftTests</c> (rules and set elements deleted with <c>nft</c>, restored).
/// </summary>
[RequiresRoot]
[NonParallelizable]
public sealed class OutsideFaultTests
{
    private TestHostNamespace _host = null!;
    private string _temp = null!;
    private string _state = null!;
    private string _run = null!;
    private FailingWritesStore _store = null!;
    private readonly FaultScenarioContext _context = new("unused");

    [SetUp]
    public async Task CreateWorld()
    {
        _host = await TestHostNamespace.CreateAsync();
        _temp = Directory.CreateTempSubdirectory("cnmoutside-").FullName;
        _state = Path.Combine(_temp, "state");
        _run = Path.Combine(_temp, "run");
        Directory.CreateDirectory(_state);
        _store = new FailingWritesStore(await SqliteKeyValueStore.OpenAsync(new SqliteStoreOptions { Path = Path.Combine(_state, "cnm.db") }));
    }

    [TearDown]
    public async Task RemoveWorld()
    {
        await _store.DisposeAsync();
        await _store.Inner.DisposeAsync();
        await StopInvariants.UnmountSandboxesAsync(_run);
        Directory.Delete(_temp, recursive: true);
        await _host.DisposeAsync();
    }

    [TestCase(false)]
    [TestCase(true)]
    public async Task A_network_creation_whose_store_write_fails_leaves_the_kernel_as_it_was(bool failFromThenOn)
    {
        var writes = await FailEachWriteAsync(
            FaultScenarios.Find("bridge network create"),
            failFromThenOn,
            operation: c => c.CreateNetworkAsync(FaultScenarios.NetworkName, "bridge", new NetworkCreateOptions { IPv4Config = [new IpamConfig { Subnet = FaultScenarios.Subnet }] }).AsTask(),
            done: c => c.FindNetworkByName(FaultScenarios.NetworkName) is not null,
            undo: c => c.FindNetworkByName(FaultScenarios.NetworkName)!.DeleteAsync().AsTask());
        Assert.That(writes, Is.GreaterThanOrEqualTo(3), "the creation writes its intent, the IPAM's and the driver's records and its commit");
    }

    [TestCase(false)]
    [TestCase(true)]
    public async Task A_join_whose_store_write_fails_leaves_the_kernel_as_it_was(bool failFromThenOn)
    {
        var writes = await FailEachWriteAsync(
            FaultScenarios.Find("bridge join (iptables)"),
            failFromThenOn,
            operation: c => c.FindNetworkByName(FaultScenarios.NetworkName)!.FindEndpointByName(FaultScenarios.EndpointName)!.JoinAsync(c.FindSandboxByContainerId(FaultScenarios.ContainerId)!, null).AsTask(),
            done: c => c.FindNetworkByName(FaultScenarios.NetworkName)!.FindEndpointByName(FaultScenarios.EndpointName)!.Sandbox is not null,
            undo: c =>
            {
                var endpoint = c.FindNetworkByName(FaultScenarios.NetworkName)!.FindEndpointByName(FaultScenarios.EndpointName)!;
                return endpoint.LeaveAsync(endpoint.Sandbox!).AsTask();
            });
        Assert.That(writes, Is.GreaterThanOrEqualTo(3), "the join writes its intent, the interface, the published ports and its commit");
    }

    [Test]
    public async Task A_kernel_error_at_any_step_of_a_join_rolls_the_join_back()
    {
        var scenario = FaultScenarios.Find("bridge join (iptables)");
        string? target = null;
        var reached = new List<string>();
        var faults = new FaultPoints(name =>
        {
            if (target is null)
            {
                reached.Add(name);
            }
            else if (name == target)
            {
                throw new CnmInternalException(CnmErrorCodes.KernelError, "test", $"the kernel refuses (injected at {name})");
            }
        });

        await using var controller = await FaultScenarios.BuildAsync(_host.Path, _state, _run, scenario.Firewall, faults);
        await scenario.Setup(controller, _context);
        var endpoint = controller.FindNetworkByName(FaultScenarios.NetworkName)!.FindEndpointByName(FaultScenarios.EndpointName)!;
        var sandbox = controller.FindSandboxByContainerId(FaultScenarios.ContainerId)!;
        reached.Clear();
        await endpoint.JoinAsync(sandbox, null);
        var points = reached.Distinct().ToList();
        await endpoint.LeaveAsync(sandbox);
        var before = await FaultPointKillTests.KernelSnapshot.TakeAsync(_host.Path, _run, _state);
        Assert.That(points, Has.Count.GreaterThanOrEqualTo(8), "the join's fault points: " + string.Join(", ", points));

        var failures = new List<string>();
        foreach (var point in points)
        {
            target = point;
            try
            {
                await endpoint.JoinAsync(sandbox, null);
                failures.Add($"error at {point}: the join succeeded");
                await endpoint.LeaveAsync(sandbox);
            }
            catch (CnmInternalException ex) when (ex.Reason.Contains(point, StringComparison.Ordinal))
            {
            }
            finally
            {
                target = null;
            }

            var after = await FaultPointKillTests.KernelSnapshot.TakeAsync(_host.Path, _run, _state);
            failures.AddRange(after.KernelDifferencesFrom(before).Select(d => $"error at {point}: {d}"));
            failures.AddRange((await _store.Inner.ListAsync("cnm/v1/intent/")).Select(e => $"error at {point}: intent {e.Key} left"));
            if (endpoint.Sandbox is not null)
            {
                failures.Add($"error at {point}: the endpoint is joined");
            }

            await endpoint.JoinAsync(sandbox, null);
            await endpoint.LeaveAsync(sandbox);
        }

        Assert.That(failures, Is.Empty);
    }

    /// <summary>For n = 1, 2, ...: the n-th store write of the operation (and, with <paramref name="failFromThenOn"/>,
    /// every later one until a restart) fails as a full disk does; the operation must fail with that error, leave the
    /// kernel as it was (after a restart on the healthy store, when writes kept failing) and then succeed. Stops at the
    /// first n the operation does not reach. Returns how many writes the operation makes.</summary>
    private async Task<int> FailEachWriteAsync(FaultScenario scenario, bool failFromThenOn, Func<NetworkController, Task> operation, Func<NetworkController, bool> done, Func<NetworkController, Task> undo)
    {
        var controller = await BuildAsync(scenario);
        var failures = new List<string>();
        try
        {
            await scenario.Setup(controller, _context);

            // Once without failure first: what a backend sets up at its first use (base chains) stays.
            await operation(controller);
            await undo(controller);
            var before = await FaultPointKillTests.KernelSnapshot.TakeAsync(_host.Path, _run, _state);
            for (var n = 1; ; n++)
            {
                _store.Arm(n, failFromThenOn);
                try
                {
                    await operation(controller);
                }
                catch (CnmUnavailableException ex) when (ex.Code == CnmErrorCodes.StoreUnavailable && _store.Failed)
                {
                }
                finally
                {
                    _store.Disarm();
                }

                if (!_store.Failed)
                {
                    Assert.That(done(controller), "the operation succeeded once the store no longer failed");
                    await undo(controller);
                    Assert.That(failures, Is.Empty);
                    return n - 1;
                }

                if (done(controller))
                {
                    failures.Add($"write {n}: the operation succeeded although the store failed");
                    await undo(controller);
                }

                if (failFromThenOn)
                {
                    // The store came back (space freed): the next start finishes what the failed one could not write.
                    await controller.DisposeAsync();
                    controller = await BuildAsync(scenario);
                }

                var after = await FaultPointKillTests.KernelSnapshot.TakeAsync(_host.Path, _run, _state);
                failures.AddRange(after.KernelDifferencesFrom(before).Select(d => $"write {n} failed{(failFromThenOn ? " and the next ones" : string.Empty)}: {d}"));
                failures.AddRange((await _store.Inner.ListAsync("cnm/v1/intent/")).Select(e => $"write {n}: intent {e.Key} left"));
                await operation(controller);
                await undo(controller);
            }
        }
        finally
        {
            await controller.DisposeAsync();
        }
    }

    private ValueTask<NetworkController> BuildAsync(FaultScenario scenario)
    {
        var options = new CnmOptions
        {
            HostNamespacePath = _host.Path,
            RunDirectory = _run,
            StateDirectory = _state,
            CreateDefaultNetworks = false,
            Firewall = scenario.Firewall,
        };
        options.Dns.Mode = EmbeddedDnsMode.Disabled;
        return new NetworkControllerBuilder(options).UseStore(_store).BuildAsync();
    }

    /// <summary>The SQLite store, with the n-th write after <see cref="Arm"/> (a put, a delete or a commit) failing as
    /// the SQLite store fails on a full disk or a read-only file system; with <c>fromThenOn</c> every later write fails
    /// too, until <see cref="Disarm"/>.</summary>
    private sealed class FailingWritesStore(SqliteKeyValueStore inner) : IKeyValueStore
    {
        private int _writes;
        private int _failAt;
        private bool _fromThenOn;

        public SqliteKeyValueStore Inner => inner;

        public bool Failed { get; private set; }

        public void Arm(int n, bool fromThenOn)
        {
            _writes = 0;
            _failAt = n;
            _fromThenOn = fromThenOn;
            Failed = false;
        }

        public void Disarm() => _failAt = 0;

        public ValueTask<long> GetRevisionAsync(CancellationToken cancellationToken = default) => inner.GetRevisionAsync(cancellationToken);

        public ValueTask<StoreEntry?> GetAsync(string key, CancellationToken cancellationToken = default) => inner.GetAsync(key, cancellationToken);

        public ValueTask<IReadOnlyList<StoreEntry>> ListAsync(string prefix, CancellationToken cancellationToken = default) => inner.ListAsync(prefix, cancellationToken);

        public ValueTask<long> PutAsync(string key, ReadOnlyMemory<byte> value, long expectedVersion, StoreDurability durability, CancellationToken cancellationToken = default)
        {
            Write(key);
            return inner.PutAsync(key, value, expectedVersion, durability, cancellationToken);
        }

        public ValueTask<bool> DeleteAsync(string key, long expectedVersion, StoreDurability durability, CancellationToken cancellationToken = default)
        {
            Write(key);
            return inner.DeleteAsync(key, expectedVersion, durability, cancellationToken);
        }

        public ValueTask<IReadOnlyList<long>> CommitAsync(IReadOnlyList<StoreOperation> operations, StoreDurability durability, CancellationToken cancellationToken = default)
        {
            Write(operations.Count > 0 ? operations[0].Key : "(empty commit)");
            return inner.CommitAsync(operations, durability, cancellationToken);
        }

        public IAsyncEnumerable<StoreEvent> WatchAsync(string prefix, CancellationToken cancellationToken = default) => inner.WatchAsync(prefix, cancellationToken);

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;

        private void Write(string key)
        {
            if (_failAt == 0)
            {
                return;
            }

            var n = Interlocked.Increment(ref _writes);
            if (n == _failAt || (_fromThenOn && n > _failAt))
            {
                Failed = true;
                throw new CnmUnavailableException(CnmErrorCodes.StoreUnavailable, "store file", $"the store file cannot be used: database or disk is full (injected at write {n}, {key})");
            }
        }
    }
}
