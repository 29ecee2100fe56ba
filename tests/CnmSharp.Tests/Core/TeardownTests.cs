using System.Net;
using CnmSharp.Core.Persistence;
using Moq;

namespace CnmSharp.Tests.Core;

/// <summary>
/// Endpoints of a deleted sandbox are torn down in the background: hidden at once, their addresses back in IPAM only
/// after the driver has deleted them (for the bridge, after the kernel reaped the interface).
/// </summary>
public sealed class TeardownTests : ControllerTestBase
{
    private TaskCompletionSource _reaped = null!;

    [SetUp]
    public void HoldDriverDeletes()
    {
        // The driver's delete returns only when the test says the kernel has let go of the interface.
        _reaped = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        F.Driver.Setup(d => d.DeleteEndpointAsync(It.IsAny<string>(), It.IsAny<string>(), It.IsAny<CancellationToken>()))
            .Returns(() => new ValueTask(_reaped.Task));
    }

    [TearDown]
    public void ReleaseDriverDeletes() => _reaped.TrySetResult();

    private static async Task<(Sandbox Sandbox, Endpoint Endpoint)> JoinedAsync(NetworkController c, Network n, string name)
    {
        var sb = await c.CreateSandboxAsync("c-" + name);
        var e = await n.CreateEndpointAsync(name);
        await e.JoinAsync(sb);
        return (sb, e);
    }

    /// <summary>A controller with one network whose only endpoint belonged to a sandbox just deleted: its teardown
    /// is pending until the test releases the driver.</summary>
    private async Task<(NetworkController Controller, Network Network, Endpoint Endpoint)> PendingTeardownAsync(string subnet)
    {
        var c = await F.StartAsync();
        var n = await c.CreateNetworkAsync("n", ControllerFixture.DriverName, Subnet(subnet));
        var (sb, e) = await JoinedAsync(c, n, "web");
        await sb.DeleteAsync();
        return (c, n, e);
    }

    /// <summary>Returns once <paramref name="operation"/> is parked on the network's teardown wait, or has ended (then it
    /// did not wait). Deterministic: the controller counts the operations in that wait; no time is assumed.</summary>
    private static async Task ParkedOrDoneAsync(NetworkController c, Task operation)
    {
        // A guard against a hang only, never a timing assertion.
        var hang = DateTime.UtcNow + TimeSpan.FromMinutes(1);
        while (c.TeardownWaiters == 0 && !operation.IsCompleted)
        {
            Assert.That(DateTime.UtcNow, Is.LessThan(hang), "the operation neither waits for the teardown nor ends");
            await Task.Delay(1);
        }
    }

    /// <summary>Starts an operation, checks it is parked on the pending teardown, releases the driver and finishes it.</summary>
    private async Task WaitsForTheTeardownAsync(NetworkController c, Func<Task> operation)
    {
        var task = operation();
        await ParkedOrDoneAsync(c, task);
        Assert.That(task.IsCompleted, Is.False, "the operation waits for the pending teardown");
        _reaped.SetResult();
        await task;
    }

    private async Task<EndpointRecord?> StoredAsync(Endpoint e) =>
        await F.Store.GetAsync(CoreStore.EndpointKey(e.Network.Id, e.Id)) is { } entry ? CoreStore.Deserialize(entry, CoreJsonContext.Default.EndpointRecord) : null;

    [Test]
    public async Task A_sandbox_delete_hides_its_endpoints_at_once_and_their_address_comes_back_only_after_the_driver_deleted_them()
    {
        var (c, n, e) = await PendingTeardownAsync("10.80.0.0/24");
        var address = e.Address!.Value.Address;
        var other = await c.CreateSandboxAsync("other");

        var stored = await StoredAsync(e);
        Assert.Multiple(() =>
        {
            Assert.That(n.Endpoints, Is.Empty);
            Assert.That(n.FindEndpointById(e.Id), Is.Null);
            Assert.That(c.PendingTeardowns, Is.EqualTo(1));
            Assert.That(stored, Is.Not.Null, "the record stays until the driver has deleted the endpoint");
            Assert.That(stored!.TearingDown, Is.True);
            Assert.That(stored.Join, Is.Null);
        });
        await ThrowsAsync<CnmNotFoundException>(async () => await e.JoinAsync(other), CnmErrorCodes.NoSuchEndpoint);
        await ThrowsAsync<CnmNotFoundException>(async () => await e.DeleteAsync(), CnmErrorCodes.NoSuchEndpoint);

        // The name is free at once; the held address is not handed out.
        var again = await n.CreateEndpointAsync("web");
        Assert.That(again.Address!.Value.Address, Is.Not.EqualTo(address));

        // Asking for the held address waits for the teardown, then gets it.
        var same = n.CreateEndpointAsync("static", new EndpointCreateOptions { IPv4Address = address }).AsTask();
        await ParkedOrDoneAsync(c, same);
        Assert.That(same.IsCompleted, Is.False, "a specific address held by an endpoint being torn down waits for the teardown");
        Assert.That(n.FindEndpointByName("static"), Is.Null);

        _reaped.SetResult();
        Assert.That((await same).Address!.Value.Address, Is.EqualTo(address));
        await c.WaitForTeardownsAsync();
        Assert.Multiple(async () =>
        {
            Assert.That(c.PendingTeardowns, Is.Zero);
            Assert.That(await StoredAsync(e), Is.Null);
            Assert.That(n.Endpoints.Select(x => x.Name), Is.EquivalentTo(new[] { "web", "static" }));
        });
    }

    [Test]
    public async Task A_full_pool_waits_for_pending_teardowns_before_it_reports_no_address()
    {
        var (c, n, e) = await PendingTeardownAsync("10.81.0.0/30");
        var address = e.Address!.Value.Address;

        var next = n.CreateEndpointAsync("next").AsTask();
        await ParkedOrDoneAsync(c, next);
        Assert.That(next.IsCompleted, Is.False, "the full pool waits for the teardown instead of failing");
        _reaped.SetResult();
        Assert.That((await next).Address!.Value.Address, Is.EqualTo(address));

        // With nothing pending, a full pool is an error at once.
        await ThrowsAsync<CnmUnavailableException>(async () => await n.CreateEndpointAsync("none"), CnmErrorCodes.NoAvailableIPs);
    }

    [Test]
    public async Task Deleting_the_network_waits_for_its_pending_teardowns()
    {
        var (c, n, e) = await PendingTeardownAsync("10.82.0.0/24");

        await WaitsForTheTeardownAsync(c, async () => await n.DeleteAsync());

        Assert.Multiple(async () =>
        {
            Assert.That(c.Networks.Select(x => x.Name), Does.Not.Contain("n"));
            Assert.That(await F.KeysAsync(CoreStore.EndpointPrefix), Is.Empty);
            F.Driver.Verify(d => d.DeleteEndpointAsync(n.Id, e.Id, It.IsAny<CancellationToken>()), Times.Once);
        });
    }

    [Test]
    public async Task A_teardown_interrupted_by_a_crash_is_finished_at_the_next_start()
    {
        _reaped.SetResult();
        var a = await F.StartAsync();
        var n = await a.CreateNetworkAsync("n", ControllerFixture.DriverName, Subnet("10.83.0.0/30"));
        var e = await n.CreateEndpointAsync("web");
        var address = e.Address!.Value.Address;
        var (networkId, endpointId) = (n.Id, e.Id);
        await a.DisposeAsync();

        // What a crash right after a sandbox delete leaves: the endpoint's record marked, its address still held.
        var record = (await StoredAsync(e))!;
        await F.Store.PutAsync(CoreStore.EndpointKey(networkId, endpointId), CoreStore.Serialize(record with { TearingDown = true }, CoreJsonContext.Default.EndpointRecord));

        var b = await F.StartAsync();
        var nb = b.FindNetworkById(networkId)!;
        Assert.Multiple(async () =>
        {
            Assert.That(nb.Endpoints, Is.Empty);
            Assert.That(b.PendingTeardowns, Is.Zero);
            Assert.That(await F.KeysAsync(CoreStore.EndpointPrefix), Is.Empty);
            F.Driver.Verify(d => d.DeleteEndpointAsync(networkId, endpointId, It.IsAny<CancellationToken>()), Times.Once);
        });

        // The /30 has one address for endpoints: it is free again.
        Assert.That((await nb.CreateEndpointAsync("web")).Address!.Value.Address, Is.EqualTo(address));
    }

    [Test]
    public async Task Stopping_the_controller_finishes_pending_teardowns()
    {
        var (c, _, e) = await PendingTeardownAsync("10.84.0.0/24");

        await WaitsForTheTeardownAsync(c, async () => await c.DisposeAsync());

        Assert.That(await StoredAsync(e), Is.Null);
    }
}
