using CnmSharp.Core.Persistence;
using CnmSharp.Drivers;
using CnmSharp.Firewall;
using CnmSharp.Ipam;
using CnmSharp.Sandboxes;
using CnmSharp.Store;
using Moq;

namespace CnmSharp.Tests.Core;

/// <summary>
/// <see cref="CnmOptions.ReadOnly"/>: a read-only open shows the committed state and does nothing else (no driver,
/// IPAM or firewall is created, no recovery, no default networks, no write), refuses every change with a typed error,
/// and says when a read-write start would have recovery work.
/// </summary>
public sealed class ReadOnlyControllerTests : ControllerTestBase
{
    /// <summary>A read-write controller made a network, a sandbox and a joined endpoint, then stopped.</summary>
    private async Task<(string NetworkId, string SandboxId, string EndpointId)> PopulateAsync()
    {
        var rw = await F.StartAsync();
        var network = await rw.CreateNetworkAsync("web", ControllerFixture.DriverName, Subnet("10.160.0.0/24"));
        var sandbox = await rw.CreateSandboxAsync("c1");
        var endpoint = await network.CreateEndpointAsync("c1");
        await endpoint.JoinAsync(sandbox);
        return (network.Id, sandbox.Id, endpoint.Id);
    }

    /// <summary>A builder whose every driver, IPAM, firewall and sandbox-networking call fails the test, except the
    /// namespace-file check that <see cref="NetworkController.RecoveryPending"/> makes.</summary>
    private static (NetworkControllerBuilder Builder, Mock<INetworkDriverFactory> Drivers, Mock<IIpamDriverFactory> Ipams, Mock<IFirewallBackendFactory> Firewall, Mock<ISandboxNetworking> Netns)
        StrictReadOnlyBuilder(ControllerFixture f, IKeyValueStore store, bool namespacesExist = true)
    {
        var drivers = new Mock<INetworkDriverFactory>(MockBehavior.Strict);
        drivers.Setup(d => d.Name).Returns(ControllerFixture.DriverName);
        var ipams = new Mock<IIpamDriverFactory>(MockBehavior.Strict);
        ipams.Setup(i => i.Name).Returns("default");
        var firewall = new Mock<IFirewallBackendFactory>(MockBehavior.Strict);
        var netns = new Mock<ISandboxNetworking>(MockBehavior.Strict);
        netns.Setup(n => n.NamespaceExistsAsync(It.IsAny<string>(), It.IsAny<CancellationToken>())).ReturnsAsync(namespacesExist);
        var builder = new NetworkControllerBuilder()
            .WithoutBuiltIns()
            .AddDriver(drivers.Object)
            .AddIpamDriver(ipams.Object)
            .UseFirewall(firewall.Object)
            .UseStore(store)
            .UseSandboxNetworking(netns.Object)
            .Configure(o =>
            {
                o.StateDirectory = f.Directory;
                o.RunDirectory = Path.Combine(f.Directory, "run");
                o.ReadOnly = true;
            });
        return (builder, drivers, ipams, firewall, netns);
    }

    [Test]
    public async Task A_read_only_open_shows_the_state_and_creates_no_driver_ipam_or_firewall_and_writes_nothing()
    {
        var (networkId, sandboxId, endpointId) = await PopulateAsync();
        var revision = await F.Store.GetRevisionAsync();
        F.Driver.Invocations.Clear();
        F.Netns.Invocations.Clear();

        var (builder, drivers, ipams, firewall, netns) = StrictReadOnlyBuilder(F, F.Store);
        await using var ro = await builder.BuildAsync();

        Assert.Multiple(() =>
        {
            Assert.That(ro.IsReadOnly, Is.True);
            Assert.That(ro.RecoveryPending, Is.False);
            Assert.That(ro.Networks.Select(n => n.Name), Is.EqualTo(new[] { "web" }), "none and host stay unloaded: their drivers are not named in this builder");
            Assert.That(ro.GetNetwork("web").Id, Is.EqualTo(networkId));
            Assert.That(ro.GetNetwork("web").Endpoints.Select(e => e.Id), Is.EqualTo(new[] { endpointId }));
            Assert.That(ro.FindSandboxByContainerId("c1")!.Id, Is.EqualTo(sandboxId));
            Assert.That(ro.FindSandboxByContainerId("c1")!.Endpoints.Select(e => e.Id), Is.EqualTo(new[] { endpointId }), "the join is shown");
        });

        // Nothing was created or called but the namespace check; the store is as it was.
        drivers.Verify(d => d.CreateAsync(It.IsAny<DriverContext>(), It.IsAny<CancellationToken>()), Times.Never);
        ipams.Verify(i => i.CreateAsync(It.IsAny<DriverContext>(), It.IsAny<CancellationToken>()), Times.Never);
        firewall.Verify(x => x.Create(It.IsAny<string?>()), Times.Never);
        netns.Verify(n => n.NamespaceExistsAsync(It.IsAny<string>(), It.IsAny<CancellationToken>()), Times.AtMostOnce());
        netns.VerifyNoOtherCalls();
        Assert.That(F.Driver.Invocations, Is.Empty, "the running driver of the fixture is not reached either");
        Assert.That(await F.Store.GetRevisionAsync(), Is.EqualTo(revision), "a read-only open writes nothing");
    }

    [Test]
    public async Task A_read_only_controller_refuses_every_change_with_a_typed_error_and_changes_nothing()
    {
        await PopulateAsync();
        var revision = await F.Store.GetRevisionAsync();
        var (builder, _, _, _, _) = StrictReadOnlyBuilder(F, F.Store);
        await using var ro = await builder.BuildAsync();
        var network = ro.GetNetwork("web");
        var sandbox = ro.FindSandboxByContainerId("c1")!;
        var endpoint = network.Endpoints.Single();

        var changes = new (string What, Func<Task> Act)[]
        {
            ("create network", async () => await ro.CreateNetworkAsync("other", ControllerFixture.DriverName, Subnet("10.161.0.0/24"))),
            ("delete network", async () => await network.DeleteAsync()),
            ("create endpoint", async () => await network.CreateEndpointAsync("e2")),
            ("leave", async () => await endpoint.LeaveAsync(sandbox)),
            ("join", async () => await endpoint.JoinAsync(sandbox)),
            ("delete endpoint", async () => await endpoint.DeleteAsync(force: true)),
            ("create sandbox", async () => await ro.CreateSandboxAsync("c2")),
            ("delete sandbox", async () => await sandbox.DeleteAsync()),
            ("destroy sandbox", async () => await ro.DestroySandboxAsync("c1")),
            ("recover", async () => await ro.RecoverAsync()),
            ("reconcile firewall", async () => await ro.ReconcileFirewallAsync()),
            ("register driver", async () => await ro.RegisterDriverAsync(new FakeDriverFactory("late", new Mock<INetworkDriver>().Object))),
            ("discard quarantined", async () => await ro.DiscardQuarantinedRecordAsync("network/x")),
            ("driver info", async () => await endpoint.GetDriverInfoAsync()),
            ("driver capability", () => Task.FromResult(ro.GetDriverCapability(ControllerFixture.DriverName))),
        };
        foreach (var (what, act) in changes)
        {
            var ex = await CatchAsync(act);
            Assert.That(ex, Is.InstanceOf<CnmConflictException>(), $"{what}: {ex}");
            Assert.That(((CnmException)ex!).Code, Is.EqualTo(CnmErrorCodes.ReadOnlyController), what);
        }

        Assert.That(await F.Store.GetRevisionAsync(), Is.EqualTo(revision));
        Assert.That(ro.Networks.Select(n => n.Name), Does.Contain("web"), "the view is unchanged");
        Assert.That(ro.FindSandboxByContainerId("c1")!.Endpoints, Has.Count.EqualTo(1));
    }

    [Test]
    public async Task A_read_only_open_runs_no_recovery_and_reports_the_work_a_read_write_start_then_does()
    {
        var (networkId, _, _) = await PopulateAsync();

        // An operation left half done by a process that died: its intent stays until a read-write start.
        var intent = new IntentRecord { Id = CnmSharp.Core.Ids.NewId(), Kind = IntentKind.CreateNetwork, NetworkId = CnmSharp.Core.Ids.NewId(), Driver = ControllerFixture.DriverName };
        await F.Store.PutAsync(CoreStore.IntentKey(intent.Id), CoreStore.Serialize(intent, CoreJsonContext.Default.IntentRecord), StoreVersion.Absent);
        F.Driver.Invocations.Clear();

        var (builder, drivers, _, _, _) = StrictReadOnlyBuilder(F, F.Store);
        await using (var ro = await builder.BuildAsync())
        {
            Assert.That(ro.RecoveryPending, Is.True);
            Assert.That(ro.FindNetworkById(networkId), Is.Not.Null);
        }

        Assert.That(await F.KeysAsync(CoreStore.IntentPrefix), Is.EqualTo(new[] { CoreStore.IntentKey(intent.Id) }), "the read-only open left the intent");
        drivers.Verify(d => d.CreateAsync(It.IsAny<DriverContext>(), It.IsAny<CancellationToken>()), Times.Never);
        Assert.That(F.Driver.Invocations, Is.Empty);

        // A read-write start rolls it back; the next read-only open finds nothing to do.
        await using (await F.StartAsync())
        {
        }

        F.Driver.Verify(d => d.DeleteNetworkAsync(intent.NetworkId, It.IsAny<CancellationToken>()), Times.Once);
        Assert.That(await F.KeysAsync(CoreStore.IntentPrefix), Is.Empty);
        var (again, _, _, _, _) = StrictReadOnlyBuilder(F, F.Store);
        await using var clean = await again.BuildAsync();
        Assert.That(clean.RecoveryPending, Is.False);
    }

    [Test]
    public async Task A_sandbox_whose_namespace_is_gone_is_shown_and_reported_as_pending_recovery()
    {
        await PopulateAsync();
        var (builder, _, _, _, netns) = StrictReadOnlyBuilder(F, F.Store, namespacesExist: false);
        await using var ro = await builder.BuildAsync();
        Assert.That(ro.RecoveryPending, Is.True);
        Assert.That(ro.FindSandboxByContainerId("c1"), Is.Not.Null, "not removed: that is recovery's work");
        netns.Verify(n => n.NamespaceExistsAsync(It.IsAny<string>(), It.IsAny<CancellationToken>()), Times.Once);
        netns.VerifyNoOtherCalls();
    }

    [Test]
    public async Task A_read_only_open_of_a_store_never_started_is_refused_and_creates_nothing()
    {
        var (builder, _, _, _, _) = StrictReadOnlyBuilder(F, F.Store);
        var ex = await ThrowsAsync<CnmUnavailableException>(async () => await builder.BuildAsync(), CnmErrorCodes.StateNotInitialized);
        Assert.That(ex.Kind, Is.EqualTo(CnmErrorKind.Unavailable));
        Assert.That(await F.KeysAsync(CoreStore.ControllerKey), Is.Empty, "no controller record was written");
        Assert.That(Directory.Exists(Path.Combine(F.Directory, "run")), Is.False, "no run directory was created");
    }

    [TestCase("memory")]
    [TestCase("sqlite")]
    public async Task Refresh_shows_what_another_controller_did_and_hides_what_it_deleted(string kind)
    {
        IKeyValueStore storeA, storeB;
        if (kind == "memory")
        {
            storeA = storeB = F.Store;
        }
        else
        {
            var path = Path.Combine(F.Directory, "state", "cnm.db");
            storeA = await SqliteKeyValueStore.OpenAsync(new SqliteStoreOptions { Path = path, Durability = SqliteDurability.ProcessCrash });
            storeB = await SqliteKeyValueStore.OpenAsync(new SqliteStoreOptions { Path = path, Durability = SqliteDurability.ProcessCrash });
        }

        try
        {
            var rw = await F.StartAsync(storeA);
            var first = await rw.CreateNetworkAsync("first", ControllerFixture.DriverName, Subnet("10.162.0.0/24"));
            var (builder, _, _, _, _) = StrictReadOnlyBuilder(F, storeB);
            await using var ro = await builder.BuildAsync();
            Assert.That(ro.FindNetworkByName("first"), Is.Not.Null);

            await rw.CreateNetworkAsync("second", ControllerFixture.DriverName, Subnet("10.163.0.0/24"));
            await first.DeleteAsync();
            Assert.That(ro.FindNetworkByName("second"), Is.Null, "a read-only view changes only when refreshed");

            await ro.RefreshAsync();
            Assert.That(ro.FindNetworkByName("second"), Is.Not.Null);
            Assert.That(ro.FindNetworkByName("first"), Is.Null);
            Assert.That(ro.RecoveryPending, Is.False);
        }
        finally
        {
            if (kind != "memory")
            {
                await storeA.DisposeAsync();
                await storeB.DisposeAsync();
            }
        }
    }
}
