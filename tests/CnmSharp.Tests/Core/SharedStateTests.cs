using System.Collections.Concurrent;
using System.Text;
using CnmSharp.Core.Persistence;
using CnmSharp.Drivers;
using CnmSharp.Store;
using CnmSharp.Testing;
using Microsoft.Extensions.Logging;
using Moq;

namespace CnmSharp.Tests.Core;

/// <summary>
/// Several controllers on one state (issue 9): the state lease orders their operations, each sees what the others did
/// before it acts, recovery touches only what no running operation owns, and records recovery cannot process are set
/// aside instead of stopping a start. The cross-process half (real <c>cnm</c> processes) is in the CLI tests.
/// </summary>
public sealed class SharedStateTests : ControllerTestBase
{
    private readonly List<IKeyValueStore> _extraStores = [];

    [TearDown]
    public async Task DisposeExtraStores()
    {
        foreach (var store in _extraStores)
        {
            await store.DisposeAsync();
        }
    }

    /// <summary>Two stores on one state: the same in-memory instance, or two SQLite instances on one file (which
    /// share the state only through the file and its lock files, as two processes do).</summary>
    private async Task<(IKeyValueStore A, IKeyValueStore B)> SharedStoresAsync(string kind)
    {
        if (kind == "memory")
        {
            return (F.Store, F.Store);
        }

        var path = Path.Combine(F.Directory, "state", "cnm.db");
        var a = await SqliteKeyValueStore.OpenAsync(new SqliteStoreOptions { Path = path, Durability = SqliteDurability.ProcessCrash });
        var b = await SqliteKeyValueStore.OpenAsync(new SqliteStoreOptions { Path = path, Durability = SqliteDurability.ProcessCrash });
        _extraStores.Add(a);
        _extraStores.Add(b);
        return (a, b);
    }

    [TestCase("memory")]
    [TestCase("sqlite")]
    public async Task Two_controllers_on_one_state_see_each_others_networks_take_no_name_twice_and_hand_out_no_address_twice(string kind)
    {
        var (storeA, storeB) = await SharedStoresAsync(kind);
        var a = await F.StartAsync(storeA);
        var b = await F.StartAsync(storeB);

        var created = await a.CreateNetworkAsync("shared", ControllerFixture.DriverName, Subnet("10.150.0.0/24"));

        // B learned nothing in between, yet its create sees A's network first.
        await ThrowsAsync<CnmConflictException>(async () => await b.CreateNetworkAsync("shared", ControllerFixture.DriverName, Subnet("10.151.0.0/24")), CnmErrorCodes.NetworkExists);
        await b.RefreshAsync();
        var seen = b.FindNetworkByName("shared");
        Assert.That(seen?.Id, Is.EqualTo(created.Id));

        // 16 endpoints created at once, half through each controller's own Network object.
        var tasks = Enumerable.Range(0, 16)
            .Select(i => (i % 2 == 0 ? created : seen!).CreateEndpointAsync($"ep{i}").AsTask())
            .ToArray();
        var endpoints = await Task.WhenAll(tasks);

        var addresses = endpoints.Select(e => e.Address!.Value.Address.ToString()).ToArray();
        Assert.That(addresses, Is.Unique, string.Join(", ", addresses));
        await a.RefreshAsync();
        await b.RefreshAsync();
        Assert.That(a.FindNetworkByName("shared")!.Endpoints.Select(e => e.Name), Is.EquivalentTo(endpoints.Select(e => e.Name)));
        Assert.That(b.FindNetworkByName("shared")!.Endpoints.Select(e => e.Name), Is.EquivalentTo(endpoints.Select(e => e.Name)));
        Assert.That(await F.KeysAsync(CoreStore.IntentPrefix, storeA), Is.Empty);
    }

    [Test]
    public async Task An_object_deleted_by_another_controller_is_gone_for_this_one_after_its_next_operation()
    {
        var a = await F.StartAsync();
        var b = await F.StartAsync();
        var network = await a.CreateNetworkAsync("going", ControllerFixture.DriverName, Subnet("10.152.0.0/24"));
        var sandbox = await a.CreateSandboxAsync("c1");
        await b.RefreshAsync();
        await b.GetNetwork("going").DeleteAsync();
        await b.FindSandboxByContainerId("c1")!.DeleteAsync();

        await a.RefreshAsync();
        Assert.Multiple(() =>
        {
            Assert.That(a.FindNetworkById(network.Id), Is.Null);
            Assert.That(a.FindSandboxById(sandbox.Id), Is.Null);
            Assert.That(a.FindSandboxByContainerId("c1"), Is.Null);
        });

        // The caller's stale object answers "not found", and the name is free again.
        await ThrowsAsync<CnmNotFoundException>(async () => await network.CreateEndpointAsync("late"), CnmErrorCodes.NoSuchNetwork);
        var again = await a.CreateNetworkAsync("going", ControllerFixture.DriverName, Subnet("10.152.0.0/24"));
        Assert.That(again.Id, Is.Not.EqualTo(network.Id));
    }

    [Test]
    public async Task A_controller_starting_while_another_runs_an_operation_waits_and_does_not_roll_that_operation_back()
    {
        var a = await F.StartAsync();
        var network = await a.CreateNetworkAsync("busy", ControllerFixture.DriverName, Subnet("10.153.0.0/24"));
        var endpoint = await network.CreateEndpointAsync("ep");
        var sandbox = await a.CreateSandboxAsync("c1");

        var entered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var proceed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        F.Driver.Setup(d => d.JoinAsync(It.IsAny<JoinRequest>(), It.IsAny<IJoinInfo>(), It.IsAny<CancellationToken>()))
            .Returns(async () =>
            {
                entered.TrySetResult();
                await proceed.Task;
            });

        var join = endpoint.JoinAsync(sandbox).AsTask();
        await entered.Task;
        Assert.That(await F.KeysAsync(CoreStore.IntentPrefix), Has.Count.EqualTo(1), "the join's intent is in the store");

        // A second controller's start needs the state lock: it waits for the join instead of rolling it back. It is
        // seen queued on the lock (the holder sees a waiter), or it has ended, which it must not have.
        using var probe = ((IStateLockProvider)F.Store).CreateStateLock();
        var start = F.StartAsync();
        await Until.TrueAsync(() => probe.HasWaiters() || start.IsCompleted, "the start waits for the state lock or ends");
        Assert.That(start.IsCompleted, Is.False, "the start waited for the running join");
        Assert.That(await F.KeysAsync(CoreStore.IntentPrefix), Has.Count.EqualTo(1), "the running join's intent is not rolled back");

        proceed.SetResult();
        await join;
        var b = await start;
        Assert.Multiple(() =>
        {
            Assert.That(b.GetNetwork("busy").FindEndpointByName("ep")?.Sandbox?.ContainerId, Is.EqualTo("c1"));
            Assert.That(F.Logs.GetSnapshot().Any(r => r.Message.Contains("Rolling back", StringComparison.Ordinal)), Is.False);
        });
        Assert.That(await F.KeysAsync(CoreStore.IntentPrefix), Is.Empty);
    }

    [Test]
    public async Task An_intent_whose_rollback_fails_is_quarantined_reported_and_the_store_still_starts()
    {
        // The store of issue 9: a join's intent for a sandbox whose hostname cannot be written to a hosts file. Its
        // rollback throws, and before this change every later start failed.
        var setup = await F.StartAsync();
        var network = await setup.CreateNetworkAsync("poison", ControllerFixture.DriverName, Subnet("10.154.0.0/24"));
        var endpoint = await network.CreateEndpointAsync("ep");
        var sandbox = await setup.CreateSandboxAsync("c1");
        await setup.DisposeAsync();

        var sandboxKey = CoreStore.SandboxKey(sandbox.Id);
        var entry = (await F.Store.GetAsync(sandboxKey))!;
        var poisoned = CoreStore.Deserialize(entry, CoreJsonContext.Default.SandboxRecord) with { Hostname = "bad#host" };
        await F.Store.PutAsync(sandboxKey, CoreStore.Serialize(poisoned, CoreJsonContext.Default.SandboxRecord));
        var intent = new IntentRecord { Id = CnmSharp.Core.Ids.NewId(), Kind = IntentKind.Join, NetworkId = network.Id, EndpointId = endpoint.Id, SandboxId = sandbox.Id, Driver = ControllerFixture.DriverName };
        await F.Store.PutAsync(CoreStore.IntentKey(intent.Id), CoreStore.Serialize(intent, CoreJsonContext.Default.IntentRecord));
        await F.Store.PutAsync(CoreStore.IntentKey("garbage"), Encoding.UTF8.GetBytes("{ not json"));

        var controller = await F.StartAsync();

        var quarantined = await controller.GetQuarantinedRecordsAsync();
        Assert.That(quarantined.Select(q => q.Key), Is.EquivalentTo(new[] { CoreStore.IntentKey(intent.Id), CoreStore.IntentKey("garbage") }));
        Assert.Multiple(() =>
        {
            Assert.That(quarantined.Single(q => q.Key == CoreStore.IntentKey(intent.Id)).Reason, Does.Contain("rollback failed"));
            Assert.That(Encoding.UTF8.GetString(quarantined.Single(q => q.Key == CoreStore.IntentKey("garbage")).Value.Span), Is.EqualTo("{ not json"));
            Assert.That(F.Logs.GetSnapshot().Count(r => r.Level == LogLevel.Warning && r.Message.StartsWith("Quarantined store record", StringComparison.Ordinal)), Is.EqualTo(2));
        });
        Assert.That(await F.KeysAsync(CoreStore.IntentPrefix), Is.Empty, "nothing left for the next start to trip on");

        // A second start is clean, and an explicit repair removes the records for good.
        await F.StartAsync();
        Assert.That(await controller.DiscardQuarantinedRecordAsync(CoreStore.IntentKey("garbage")), Is.True);
        Assert.That((await controller.GetQuarantinedRecordsAsync()).Select(q => q.Key), Is.EqualTo(new[] { CoreStore.IntentKey(intent.Id) }));
    }

    [Test]
    public async Task A_sandbox_record_whose_namespace_path_is_not_this_controllers_is_quarantined_and_never_touched()
    {
        var setup = await F.StartAsync();
        var sandbox = await setup.CreateSandboxAsync("c1");
        await setup.DisposeAsync();

        // A hostile edit: the namespace path now names a file outside the run directory.
        var outside = Path.Combine(F.Directory, "precious");
        await File.WriteAllTextAsync(outside, "keep me");
        var key = CoreStore.SandboxKey(sandbox.Id);
        var record = CoreStore.Deserialize((await F.Store.GetAsync(key))!, CoreJsonContext.Default.SandboxRecord) with { Key = outside };
        await F.Store.PutAsync(key, CoreStore.Serialize(record, CoreJsonContext.Default.SandboxRecord));
        F.Netns.Invocations.Clear();

        var controller = await F.StartAsync();

        Assert.Multiple(async () =>
        {
            Assert.That(controller.Sandboxes, Is.Empty);
            Assert.That((await controller.GetQuarantinedRecordsAsync()).Single().Key, Is.EqualTo(key));
            Assert.That(File.ReadAllText(outside), Is.EqualTo("keep me"));
            Assert.That(F.Netns.Invocations.Where(i => i.Arguments.OfType<string>().Contains(outside)), Is.Empty, "nothing was asked of that path");
        });
    }

    [Test]
    public async Task Registering_one_driver_name_concurrently_creates_one_driver_and_refuses_the_others()
    {
        var controller = await F.StartAsync();
        var created = 0;
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var factory = new Mock<INetworkDriverFactory>();
        factory.Setup(f => f.Name).Returns("late");
        factory.Setup(f => f.CreateAsync(It.IsAny<DriverContext>(), It.IsAny<CancellationToken>()))
            .Returns(async () =>
            {
                Interlocked.Increment(ref created);
                await gate.Task;
                var driver = new Mock<INetworkDriver>();
                driver.Setup(d => d.Capability).Returns(DriverCapability.LocalScope);
                return driver.Object;
            });

        // The others arrive while the first is still creating its driver (held at the gate), and are refused then.
        var registrations = Enumerable.Range(0, 4).Select(_ => controller.RegisterDriverAsync(factory.Object).AsTask()).ToArray();
        await Until.TrueAsync(() => Volatile.Read(ref created) > 1 || (Volatile.Read(ref created) == 1 && registrations.Count(t => t.IsCompleted) == 3), "one registration creating its driver, the others ended");
        Assert.Multiple(() =>
        {
            Assert.That(created, Is.EqualTo(1), "no second driver is created while the first is being created");
            Assert.That(registrations.Count(t => t.IsFaulted), Is.EqualTo(3), "the others are refused while the first is still creating");
        });
        gate.SetResult();
        var outcomes = await Task.WhenAll(registrations.Select(async t => await CatchAsync(() => t)));

        Assert.Multiple(() =>
        {
            Assert.That(created, Is.EqualTo(1), "only the winner created a driver");
            Assert.That(outcomes.Count(e => e is null), Is.EqualTo(1));
            Assert.That(outcomes.Where(e => e is not null), Has.All.InstanceOf<CnmConflictException>());
            Assert.That(controller.Drivers.Count(d => d == "late"), Is.EqualTo(1));
        });
    }

    [Test]
    public async Task Dispose_while_operations_run_lets_them_finish_or_refuses_them_and_leaves_no_intent()
    {
        var controller = await F.StartAsync();
        var network = await controller.CreateNetworkAsync("work", ControllerFixture.DriverName, Subnet("10.155.0.0/24"));
        F.Driver.Setup(d => d.JoinAsync(It.IsAny<JoinRequest>(), It.IsAny<IJoinInfo>(), It.IsAny<CancellationToken>()))
            .Returns(async () => await Task.Delay(20));

        var unexpected = new ConcurrentQueue<Exception>();
        var completed = 0;
        var refused = 0;
        var workers = Enumerable.Range(0, 8).Select(w => Task.Run(async () =>
        {
            for (var i = 0; ; i++)
            {
                try
                {
                    var sandbox = await controller.CreateSandboxAsync($"c{w}-{i}");
                    var endpoint = await network.CreateEndpointAsync($"e{w}-{i}");
                    await endpoint.JoinAsync(sandbox);
                    await sandbox.DeleteAsync();
                    Interlocked.Increment(ref completed);
                }
                catch (ObjectDisposedException)
                {
                    Interlocked.Increment(ref refused);
                    return;
                }
                catch (Exception ex)
                {
                    unexpected.Enqueue(ex);
                    return;
                }
            }
        })).ToArray();

        // Dispose while the workers are busy: once some rounds have completed (they keep going until refused).
        await Until.TrueAsync(() => Volatile.Read(ref completed) >= 8 || !unexpected.IsEmpty, "the workers complete rounds");
        await controller.DisposeAsync();
        await Task.WhenAll(workers);

        Assert.Multiple(async () =>
        {
            Assert.That(unexpected, Is.Empty, string.Join("\n", unexpected));
            Assert.That(refused, Is.EqualTo(8), "every worker was refused once the controller was disposed");
            Assert.That(completed, Is.GreaterThan(0));
            Assert.That(await F.KeysAsync(CoreStore.IntentPrefix), Is.Empty, "every operation that started also ended");
        });
    }

    [Test]
    public async Task A_controller_that_keeps_working_lets_another_one_in()
    {
        var a = await F.StartAsync();
        var b = await F.StartAsync();
        var network = await a.CreateNetworkAsync("churn", ControllerFixture.DriverName, Subnet("10.156.0.0/22"));
        using var stop = new CancellationTokenSource();
        var rounds = 0;

        // Four workers keep A's operations overlapping, so A never lets the lock go on its own.
        var workers = Enumerable.Range(0, 4).Select(w => Task.Run(async () =>
        {
            for (var i = 0; !stop.IsCancellationRequested; i++)
            {
                var endpoint = await network.CreateEndpointAsync($"e{w}-{i}");
                await endpoint.DeleteAsync();
                Interlocked.Increment(ref rounds);
            }
        })).ToArray();

        // B asks once A's workers are under way (they have completed rounds, or one has failed).
        await Until.TrueAsync(() => Volatile.Read(ref rounds) >= 8 || workers.Any(w => w.IsCompleted), "A's workers are running");
        var other = await b.CreateNetworkAsync("other", ControllerFixture.DriverName, Subnet("10.157.0.0/24")).AsTask().WaitAsync(TimeSpan.FromSeconds(30));
        var stillRunning = workers.All(w => !w.IsCompleted);
        await stop.CancelAsync();
        await Task.WhenAll(workers);

        Assert.That(stillRunning, Is.True, "B got its turn while A's workers were still running");
        await a.RefreshAsync();
        Assert.That(a.FindNetworkByName("other")?.Id, Is.EqualTo(other.Id));
    }
}
