using CnmSharp.Core.Persistence;
using CnmSharp.Drivers;
using CnmSharp.Testing;
using Moq;

namespace CnmSharp.Tests.Core;

public sealed class NetworkTests : ControllerTestBase
{
    private const string Hex64 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    [Test]
    public async Task Create_then_find_by_name_id_and_unique_prefix()
    {
        var c = await F.StartAsync();
        var n = await c.CreateNetworkAsync("web", ControllerFixture.DriverName);

        Assert.Multiple(() =>
        {
            Assert.That(n.Id, Does.Match("^[0-9a-f]{64}$"));
            Assert.That(n.Driver, Is.EqualTo(ControllerFixture.DriverName));
            Assert.That(n.Scope, Is.EqualTo("local"));
            Assert.That(c.FindNetworkByName("web"), Is.SameAs(n));
            Assert.That(c.FindNetworkById(n.Id), Is.SameAs(n));
            Assert.That(c.GetNetwork("web"), Is.SameAs(n));
            Assert.That(c.GetNetwork(n.Id), Is.SameAs(n));
            Assert.That(c.GetNetwork(n.Id[..12]), Is.SameAs(n));
            Assert.That(c.FindNetworkByName("nope"), Is.Null);
            Assert.That(c.FindNetworkById(Hex64), Is.Null);
        });
    }

    [Test]
    public async Task Empty_name_or_id_lookups_are_invalid_arguments_and_unknown_is_not_found()
    {
        var c = await F.StartAsync();

        Assert.Multiple(() =>
        {
            Assert.That(Assert.Throws<CnmInvalidArgumentException>(() => c.FindNetworkByName(""))!.Code, Is.EqualTo(CnmErrorCodes.InvalidName));
            Assert.That(Assert.Throws<CnmInvalidArgumentException>(() => c.FindNetworkById(""))!.Code, Is.EqualTo(CnmErrorCodes.InvalidId));
            Assert.That(Assert.Throws<CnmInvalidArgumentException>(() => c.GetNetwork(" "))!.Code, Is.EqualTo(CnmErrorCodes.InvalidName));
            Assert.That(Assert.Throws<CnmNotFoundException>(() => c.GetNetwork("missing"))!.Code, Is.EqualTo(CnmErrorCodes.NoSuchNetwork));
        });
    }

    [Test]
    public async Task Networks_are_listed_by_name_and_walkers_stop_on_true()
    {
        F.Configure = o => o.CreateDefaultNetworks = false;
        var c = await F.StartAsync();
        foreach (var name in new[] { "c", "a", "b" })
        {
            await c.CreateNetworkAsync(name, ControllerFixture.DriverName);
        }

        var visited = new List<string>();
        var found = c.WalkNetworks(n =>
        {
            visited.Add(n.Name);
            return n.Name == "b";
        });

        Assert.Multiple(() =>
        {
            Assert.That(c.Networks.Select(n => n.Name), Is.EqualTo(new[] { "a", "b", "c" }));
            Assert.That(visited, Is.EqualTo(new[] { "a", "b" }));
            Assert.That(found!.Name, Is.EqualTo("b"));
            Assert.That(c.WalkNetworks(_ => false), Is.Null);
        });
    }

    [Test]
    public async Task An_explicit_duplicate_id_is_a_conflict()
    {
        var c = await F.StartAsync();
        await c.CreateNetworkAsync("one", ControllerFixture.DriverName, new NetworkCreateOptions { Id = Hex64 });

        await ThrowsAsync<CnmConflictException>(
            () => c.CreateNetworkAsync("two", ControllerFixture.DriverName, new NetworkCreateOptions { Id = Hex64 }).AsTask(),
            CnmErrorCodes.NetworkExists);
        Assert.That(c.FindNetworkByName("two"), Is.Null);
    }

    [Test]
    public async Task A_duplicate_name_is_refused_by_default()
    {
        var c = await F.StartAsync();
        await c.CreateNetworkAsync("dup", ControllerFixture.DriverName);

        await ThrowsAsync<CnmConflictException>(() => c.CreateNetworkAsync("dup", ControllerFixture.DriverName).AsTask(), CnmErrorCodes.NetworkExists);
        Assert.That(c.Networks.Count(n => n.Name == "dup"), Is.EqualTo(1));
    }

    [Test]
    public async Task A_duplicate_name_is_allowed_when_the_check_is_off()
    {
        F.Configure = o => o.RejectDuplicateNetworkNames = false;
        var c = await F.StartAsync();
        var first = await c.CreateNetworkAsync("dup", ControllerFixture.DriverName);
        var second = await c.CreateNetworkAsync("dup", ControllerFixture.DriverName);

        Assert.That(c.Networks.Where(n => n.Name == "dup").Select(n => n.Id), Is.EquivalentTo(new[] { first.Id, second.Id }));
    }

    [TestCase("")]
    [TestCase("   ")]
    [TestCase("-leading-dash")]
    [TestCase("has/slash")]
    [TestCase("has space")]
    public async Task Invalid_names_are_refused(string name)
    {
        var c = await F.StartAsync();
        await ThrowsAsync<CnmInvalidArgumentException>(() => c.CreateNetworkAsync(name, ControllerFixture.DriverName).AsTask(), CnmErrorCodes.InvalidName);
        F.Driver.Verify(d => d.CreateNetworkAsync(It.IsAny<NetworkCreateRequest>(), It.IsAny<CancellationToken>()), Times.Never);
    }

    [Test]
    public async Task A_name_of_256_characters_is_refused()
    {
        var c = await F.StartAsync();
        await ThrowsAsync<CnmInvalidArgumentException>(() => c.CreateNetworkAsync(new string('a', 256), ControllerFixture.DriverName).AsTask(), CnmErrorCodes.InvalidName);
    }

    [Test]
    public async Task An_unknown_driver_is_not_found()
    {
        var c = await F.StartAsync();
        await ThrowsAsync<CnmNotFoundException>(() => c.CreateNetworkAsync("x", "nosuchdriver").AsTask(), CnmErrorCodes.UnknownDriver);
    }

    [Test]
    public async Task Downgrading_a_global_driver_to_local_scope_is_a_conflict()
    {
        F.GlobalStore = new CnmSharp.Store.InMemoryKeyValueStore(); // a global-scope network needs the cluster's store
        F.AddDriver("globaldrv", new DriverCapability(DriverScope.Global, DriverScope.Global));
        var c = await F.StartAsync();

        await ThrowsAsync<CnmConflictException>(
            () => c.CreateNetworkAsync("g", "globaldrv", new NetworkCreateOptions { Scope = DriverScope.Local }).AsTask(),
            CnmErrorCodes.InvalidScope);
        var global = await c.CreateNetworkAsync("g", "globaldrv");
        Assert.Multiple(() =>
        {
            Assert.That(global.Scope, Is.EqualTo("global"));
            Assert.That(global.IPv4Info[0].AddressSpace, Is.EqualTo("GlobalDefault"));
        });
    }

    [Test]
    public async Task IPv4_is_always_allocated_from_a_predefined_pool_and_IPv6_only_when_enabled()
    {
        var c = await F.StartAsync();
        var v4only = await c.CreateNetworkAsync("v4", ControllerFixture.DriverName);
        var dual = await c.CreateNetworkAsync("dual", ControllerFixture.DriverName, new NetworkCreateOptions { EnableIPv6 = true });

        Assert.Multiple(() =>
        {
            Assert.That(v4only.IPv4Info, Has.Count.EqualTo(1));
            Assert.That(v4only.IPv4Info[0].Pool.ToString(), Is.EqualTo("172.17.0.0/16"));
            Assert.That(v4only.IPv4Info[0].Gateway.ToString(), Is.EqualTo("172.17.0.1/16"));
            Assert.That(v4only.IPv6Info, Is.Empty);
            Assert.That(dual.IPv4Info, Has.Count.EqualTo(1));
            Assert.That(dual.IPv6Info, Has.Count.EqualTo(1));
            Assert.That(dual.IPv6Info[0].Pool.IsIPv6(), Is.True);
            Assert.That(dual.IPv4Info[0].Pool, Is.Not.EqualTo(v4only.IPv4Info[0].Pool));
        });
    }

    [Test]
    public async Task IPv6_config_without_IPv6_enabled_is_refused()
    {
        var c = await F.StartAsync();
        await ThrowsAsync<CnmInvalidArgumentException>(
            () => c.CreateNetworkAsync("x", ControllerFixture.DriverName, new NetworkCreateOptions { IPv6Config = [new IpamConfig { Subnet = "fd00:1::/64" }] }).AsTask(),
            CnmErrorCodes.InvalidOption);
    }

    [Test]
    public async Task Host_and_null_networks_take_no_IPAM_and_only_one_of_each_is_allowed()
    {
        var c = await F.StartAsync();
        var none = c.FindNetworkByName("none")!;
        var host = c.FindNetworkByName("host")!;

        Assert.Multiple(() =>
        {
            Assert.That(none.IpamDriver, Is.Null);
            Assert.That(none.IPv4Info, Is.Empty);
            Assert.That(host.IpamDriver, Is.Null);
            Assert.That(host.IPv4Info, Is.Empty);
        });
        await ThrowsAsync<CnmConflictException>(() => c.CreateNetworkAsync("none2", "null").AsTask(), CnmErrorCodes.DriverForbidden);
        await ThrowsAsync<CnmConflictException>(() => c.CreateNetworkAsync("host2", "host").AsTask(), CnmErrorCodes.DriverForbidden);
    }

    [Test]
    public async Task Deleting_a_network_with_endpoints_is_a_conflict()
    {
        var c = await F.StartAsync();
        var n = await c.CreateNetworkAsync("busy", ControllerFixture.DriverName);
        await n.CreateEndpointAsync("ep");

        await ThrowsAsync<CnmConflictException>(() => n.DeleteAsync().AsTask(), CnmErrorCodes.ActiveEndpoints);
        Assert.That(c.FindNetworkByName("busy"), Is.SameAs(n));
    }

    [TestCase("none")]
    [TestCase("host")]
    public async Task Deleting_the_default_host_or_none_is_a_conflict_and_the_network_stays_listed(string name)
    {
        var c = await F.StartAsync();
        var n = c.FindNetworkByName(name)!;

        await ThrowsAsync<CnmConflictException>(() => n.DeleteAsync().AsTask(), CnmErrorCodes.PreDefinedNetwork);
        var keys = await F.KeysAsync(CoreStore.NetworkKey(n.Id));
        Assert.Multiple(() =>
        {
            Assert.That(c.Networks, Does.Contain(n));
            Assert.That(c.FindNetworkByName(name), Is.SameAs(n));
            Assert.That(c.GetNetwork(n.Id), Is.SameAs(n));
            Assert.That(keys, Has.Count.EqualTo(1));
        });
    }

    [Test]
    public async Task The_default_networks_are_pre_defined_and_cannot_be_deleted_even_after_a_restart_while_others_of_their_driver_can()
    {
        F.Configure = o => o.DefaultNetworks = [new DefaultNetwork { Name = "dflt", Driver = ControllerFixture.DriverName }, new DefaultNetwork { Name = "none", Driver = "null" }];
        var c = await F.StartAsync();
        var dflt = c.GetNetwork("dflt");
        var mine = await c.CreateNetworkAsync("mine", ControllerFixture.DriverName);

        var error = await ThrowsAsync<CnmConflictException>(() => dflt.DeleteAsync().AsTask(), CnmErrorCodes.PreDefinedNetwork);
        var keys = await F.KeysAsync(CoreStore.NetworkKey(dflt.Id));
        Assert.Multiple(() =>
        {
            Assert.That(error.Message, Does.Contain("dflt is a pre-defined network and cannot be removed"));
            Assert.That((dflt.PreDefined, mine.PreDefined), Is.EqualTo((true, false)));
            Assert.That(c.GetNetwork("dflt"), Is.SameAs(dflt));
            Assert.That(keys, Has.Count.EqualTo(1));
        });
        F.Driver.Verify(d => d.DeleteNetworkAsync(dflt.Id, It.IsAny<CancellationToken>()), Times.Never);
        await mine.DeleteAsync();
        await c.DisposeAsync();

        // The mark is in the record: a restarted controller (which creates no defaults again) still refuses.
        var again = await F.StartAsync();
        await ThrowsAsync<CnmConflictException>(() => again.GetNetwork("dflt").DeleteAsync().AsTask(), CnmErrorCodes.PreDefinedNetwork);
        await ThrowsAsync<CnmConflictException>(() => again.GetNetwork("none").DeleteAsync().AsTask(), CnmErrorCodes.PreDefinedNetwork);
        Assert.That(again.Networks.Select(n => n.Name), Is.EquivalentTo(new[] { "dflt", "none" }));
    }

    [Test]
    public async Task A_driver_delete_error_that_is_not_a_conflict_is_logged_and_the_network_is_hidden_but_kept()
    {
        var c = await F.StartAsync();
        var n = await c.CreateNetworkAsync("gone", ControllerFixture.DriverName);
        F.Driver.Setup(d => d.DeleteNetworkAsync(n.Id, It.IsAny<CancellationToken>()))
            .Returns(() => ValueTask.FromException(new CnmInternalException(CnmErrorCodes.KernelError, "bridge", "boom")));

        await n.DeleteAsync();

        var keys = await F.KeysAsync(CoreStore.NetworkKey(n.Id));
        Assert.Multiple(() =>
        {
            Assert.That(c.FindNetworkByName("gone"), Is.Null);
            Assert.That(keys, Has.Count.EqualTo(1), "the record stays until the driver has deleted the network (see DeleteRetryTests)");
        });
        F.Driver.Verify(d => d.DeleteNetworkAsync(n.Id, It.IsAny<CancellationToken>()), Times.AtLeastOnce);
        Assert.That(F.Logs.GetSnapshot().Where(r => r.Level >= Microsoft.Extensions.Logging.LogLevel.Warning && r.Exception is CnmInternalException), Is.Not.Empty);
    }

    [Test]
    public async Task A_driver_conflict_on_delete_keeps_the_network()
    {
        var c = await F.StartAsync();
        var n = await c.CreateNetworkAsync("kept", ControllerFixture.DriverName);
        F.Driver.Setup(d => d.DeleteNetworkAsync(n.Id, It.IsAny<CancellationToken>()))
            .Returns(() => ValueTask.FromException(new CnmConflictException(CnmErrorCodes.DriverForbidden, "bridge", "in use")));

        await ThrowsAsync<CnmConflictException>(() => n.DeleteAsync().AsTask(), CnmErrorCodes.DriverForbidden);
        Assert.That(c.FindNetworkByName("kept"), Is.SameAs(n));
    }

    [Test]
    public async Task A_deleted_network_frees_its_pool_for_reuse_and_its_name()
    {
        var c = await F.StartAsync();
        var n = await c.CreateNetworkAsync("temp", ControllerFixture.DriverName, Subnet("10.20.0.0/24"));
        await n.DeleteAsync();

        var again = await c.CreateNetworkAsync("temp", ControllerFixture.DriverName, Subnet("10.20.0.0/24"));
        Assert.That(again.IPv4Info[0].Gateway.ToString(), Is.EqualTo("10.20.0.1/24"));
        await ThrowsAsync<CnmNotFoundException>(() => n.DeleteAsync().AsTask(), CnmErrorCodes.NoSuchNetwork);
    }

    [Test]
    public async Task A_slow_driver_does_not_hold_up_other_networks_but_its_name_stays_taken()
    {
        var slow = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var inDriver = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        F.Driver.Setup(d => d.CreateNetworkAsync(It.Is<NetworkCreateRequest>(r => r.NetworkName == "slow"), It.IsAny<CancellationToken>()))
            .Returns(() =>
            {
                inDriver.TrySetResult();
                return new ValueTask(slow.Task);
            });
        var c = await F.StartAsync();

        var creating = c.CreateNetworkAsync("slow", ControllerFixture.DriverName).AsTask();
        try
        {
            // While the driver works on "slow" (it is inside the driver's create, held there), other networks come
            // and go, and the name "slow" is taken.
            await Task.WhenAny(inDriver.Task, creating).WaitAsync(Until.Guard);
            Assert.That(inDriver.Task.IsCompleted, Is.True, creating.Exception?.ToString() ?? "the driver is creating \"slow\"");
            var other = await c.CreateNetworkAsync("other", ControllerFixture.DriverName).AsTask().WaitAsync(TimeSpan.FromSeconds(10));
            await other.DeleteAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10));
            await ThrowsAsync<CnmConflictException>(() => c.CreateNetworkAsync("slow", ControllerFixture.DriverName).AsTask(), CnmErrorCodes.NetworkExists);
            Assert.That(creating.IsCompleted, Is.False);
            Assert.That(c.FindNetworkByName("slow"), Is.Null, "not visible before it exists");
        }
        finally
        {
            slow.SetResult();
        }

        var created = await creating;
        Assert.That(c.FindNetworkByName("slow"), Is.SameAs(created));
    }

    [Test]
    public async Task A_failed_create_gives_its_name_back()
    {
        F.Driver.Setup(d => d.CreateNetworkAsync(It.Is<NetworkCreateRequest>(r => r.NetworkName == "flaky"), It.IsAny<CancellationToken>()))
            .Returns(() => ValueTask.FromException(new CnmInternalException(CnmErrorCodes.KernelError, "driver", "boom")));
        var c = await F.StartAsync();

        await ThrowsAsync<CnmInternalException>(() => c.CreateNetworkAsync("flaky", ControllerFixture.DriverName).AsTask(), CnmErrorCodes.KernelError);
        F.Driver.Setup(d => d.CreateNetworkAsync(It.Is<NetworkCreateRequest>(r => r.NetworkName == "flaky"), It.IsAny<CancellationToken>()))
            .Returns(ValueTask.CompletedTask);

        Assert.That((await c.CreateNetworkAsync("flaky", ControllerFixture.DriverName)).Name, Is.EqualTo("flaky"));
    }

    [Test]
    public async Task A_slow_network_delete_does_not_hold_up_other_networks()
    {
        var c = await F.StartAsync();
        var n = await c.CreateNetworkAsync("going", ControllerFixture.DriverName);
        var slow = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var inDriver = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        F.Driver.Setup(d => d.DeleteNetworkAsync(n.Id, It.IsAny<CancellationToken>())).Returns(() =>
        {
            inDriver.TrySetResult();
            return new ValueTask(slow.Task);
        });

        var deleting = n.DeleteAsync().AsTask();
        try
        {
            // The driver is deleting "going" (held there) while another network is created.
            await Task.WhenAny(inDriver.Task, deleting).WaitAsync(Until.Guard);
            Assert.That(inDriver.Task.IsCompleted, Is.True, deleting.Exception?.ToString() ?? "the driver is deleting \"going\"");
            var other = await c.CreateNetworkAsync("other", ControllerFixture.DriverName).AsTask().WaitAsync(TimeSpan.FromSeconds(10));
            Assert.That(other.Name, Is.EqualTo("other"));
            Assert.That(deleting.IsCompleted, Is.False);
        }
        finally
        {
            slow.SetResult();
        }

        await deleting;
        Assert.That(c.FindNetworkByName("going"), Is.Null);
    }
}
