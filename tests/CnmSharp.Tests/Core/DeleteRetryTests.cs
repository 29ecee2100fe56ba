using System.Diagnostics;
using CnmSharp.Core.Persistence;
using CnmSharp.Drivers;
using CnmSharp.Store;
using CnmSharp.Testing;
using Microsoft.Extensions.Time.Testing;
using Moq;

namespace CnmSharp.Tests.Core;

/// <summary>
/// A driver delete that fails is retried, not forgotten: the record stays (marked, hidden), the address or pool stays
/// reserved, the background teardown retries with back-off, and the next start tries again.
/// </summary>
public sealed class DeleteRetryTests : ControllerTestBase
{
    private FakeTimeProvider _time = null!;
    private volatile bool _driverFails;

    [SetUp]
    public void FailingDriver()
    {
        _time = new FakeTimeProvider();
        F.Time = _time;
        _driverFails = true;
        var boom = new CnmInternalException(CnmErrorCodes.KernelError, "veth", "delete failed");
        F.Driver.Setup(d => d.DeleteEndpointAsync(It.IsAny<string>(), It.IsAny<string>(), It.IsAny<CancellationToken>()))
            .Returns(() => _driverFails ? ValueTask.FromException(boom) : ValueTask.CompletedTask);
        F.Driver.Setup(d => d.DeleteNetworkAsync(It.IsAny<string>(), It.IsAny<CancellationToken>()))
            .Returns(() => _driverFails ? ValueTask.FromException(boom) : ValueTask.CompletedTask);
    }

    private async Task<T?> StoredAsync<T>(string key, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> info)
        where T : class =>
        await F.Store.GetAsync(key) is { } entry ? CoreStore.Deserialize(entry, info) : null;

    /// <summary>The addresses the default IPAM holds in the network's pool, read from the store.</summary>
    private async Task<System.Net.IPAddress[]> AllocatedAsync(Network n)
    {
        var ipam = (CnmSharp.Ipam.Default.DefaultIpam)await new CnmSharp.Ipam.Default.DefaultIpamFactory().CreateAsync(new CnmSharp.Drivers.DriverContext
        {
            ControllerId = "side",
            RunDirectory = F.Directory,
            Store = F.Store,
            StoreKeyPrefix = CoreStore.IpamPrefix + CnmSharp.Ipam.IpamNames.Default + "/",
            LoggerFactory = Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance,
        });
        return (await ipam.GetAllocationsAsync(n.IPv4Info[0].PoolId)).Select(a => a.Address).ToArray();
    }

    /// <summary>Returns once the controllers on the store are idle: it takes and gives back the state lock, which a
    /// controller holds while an operation or a teardown attempt runs and lets go during a teardown's back-off. So
    /// after a failed delete this returns once the background teardown's first attempt has failed too.</summary>
    private async Task IdleAsync()
    {
        using var probe = ((IStateLockProvider)F.Store).CreateStateLock();
        using var guard = new CancellationTokenSource(Until.Guard);
        await probe.AcquireAsync(guard.Token);
        probe.Release();
    }

    private int DriverCalls(string method) => F.Driver.Invocations.Count(i => i.Method.Name == method);

    /// <summary>Advances the fake clock a second at a time until nothing is pending (bounded in real time).</summary>
    private async Task AdvanceUntilDoneAsync(NetworkController c)
    {
        var started = Stopwatch.StartNew();
        while (c.PendingTeardowns > 0 && started.Elapsed < TimeSpan.FromSeconds(20))
        {
            _time.Advance(TimeSpan.FromSeconds(1));
            await Task.Delay(10);
        }

        Assert.That(c.PendingTeardowns, Is.Zero);
    }

    [TestCase(false)]
    [TestCase(true)]
    public async Task A_failed_endpoint_delete_keeps_record_and_address_and_the_retry_finishes_it_once_the_driver_succeeds(bool viaSandbox)
    {
        var c = await F.StartAsync();
        var n = await c.CreateNetworkAsync("n", ControllerFixture.DriverName, Subnet("10.86.0.0/30"));
        var e = await n.CreateEndpointAsync("web");
        var address = e.Address!.Value.Address;
        if (viaSandbox)
        {
            var sb = await c.CreateSandboxAsync("c1");
            await e.JoinAsync(sb);
            await sb.DeleteAsync();
        }
        else
        {
            await e.DeleteAsync();
        }

        // The background teardown's first attempt has failed: it waits for its retry, having changed nothing.
        await IdleAsync();
        var stored = await StoredAsync(CoreStore.EndpointKey(n.Id, e.Id), CoreJsonContext.Default.EndpointRecord);
        Assert.Multiple(() =>
        {
            Assert.That(n.Endpoints, Is.Empty, "hidden");
            Assert.That(stored?.TearingDown, Is.True, "the record stays, marked");
            Assert.That(c.PendingTeardowns, Is.EqualTo(1));
            Assert.That(DriverCalls(nameof(INetworkDriver.DeleteEndpointAsync)), Is.GreaterThanOrEqualTo(1), "the driver was asked");
        });

        Assert.That(await AllocatedAsync(n), Does.Contain(address), "the address stays reserved");

        _driverFails = false;
        await AdvanceUntilDoneAsync(c);

        Assert.That(await F.KeysAsync(CoreStore.EndpointKey(n.Id, e.Id)), Is.Empty);
        var again = n.FindEndpointByName("web") ?? await n.CreateEndpointAsync("web");
        Assert.That(again.Address!.Value.Address, Is.EqualTo(address), "the address came back once the driver deleted the endpoint");
    }

    [Test]
    public async Task A_failed_endpoint_delete_is_finished_by_the_next_start()
    {
        var a = await F.StartAsync();
        var n = await a.CreateNetworkAsync("n", ControllerFixture.DriverName, Subnet("10.87.0.0/30"));
        var e = await n.CreateEndpointAsync("web");
        var address = e.Address!.Value.Address;
        await e.DeleteAsync();
        await IdleAsync(); // the background teardown's first attempt has failed too
        Assert.That(DriverCalls(nameof(INetworkDriver.DeleteEndpointAsync)), Is.GreaterThanOrEqualTo(2), "the delete's own attempt and the teardown's first");
        await a.DisposeAsync();

        var stored = await StoredAsync(CoreStore.EndpointKey(n.Id, e.Id), CoreJsonContext.Default.EndpointRecord);
        Assert.That(stored?.TearingDown, Is.True, "a stop leaves the record marked");

        _driverFails = false;
        var b = await F.StartAsync();

        Assert.Multiple(async () =>
        {
            Assert.That(await F.KeysAsync(CoreStore.EndpointKey(n.Id, e.Id)), Is.Empty);
            Assert.That(b.PendingTeardowns, Is.Zero);
        });
        Assert.That((await b.GetNetwork("n").CreateEndpointAsync("web")).Address!.Value.Address, Is.EqualTo(address));
    }

    [Test]
    public async Task A_start_whose_driver_still_fails_keeps_the_address_and_retries_in_the_background()
    {
        var a = await F.StartAsync();
        var n = await a.CreateNetworkAsync("n", ControllerFixture.DriverName, Subnet("10.88.0.0/30"));
        var e = await n.CreateEndpointAsync("web");
        await e.DeleteAsync();
        await a.DisposeAsync();

        var b = await F.StartAsync();

        // The IPAM sweep at start did not take the address of the marked endpoint.
        Assert.That(await AllocatedAsync(n), Does.Contain(e.Address!.Value.Address));
        Assert.That((await StoredAsync(CoreStore.EndpointKey(n.Id, e.Id), CoreJsonContext.Default.EndpointRecord))?.TearingDown, Is.True);

        _driverFails = false;
        await AdvanceUntilDoneAsync(b);
        Assert.That(await F.KeysAsync(CoreStore.EndpointKey(n.Id, e.Id)), Is.Empty);
    }

    [Test]
    public async Task A_failed_network_delete_keeps_record_and_pool_hidden_and_is_retried_then_finished_by_the_next_start()
    {
        var a = await F.StartAsync();
        var n = await a.CreateNetworkAsync("gone", ControllerFixture.DriverName, Subnet("10.89.0.0/24"));

        await n.DeleteAsync();

        var stored = await StoredAsync(CoreStore.NetworkKey(n.Id), CoreJsonContext.Default.NetworkRecord);
        Assert.Multiple(() =>
        {
            Assert.That(a.FindNetworkByName("gone"), Is.Null, "hidden");
            Assert.That(stored?.TearingDown, Is.True, "the record stays, marked");
        });
        var taken = await CatchAsync(async () => await a.CreateNetworkAsync("thief", ControllerFixture.DriverName, Subnet("10.89.0.0/24")));
        Assert.That(taken, Is.InstanceOf<CnmException>(), "the pool is still reserved");

        // Retries fail (the clock moves until the back-off has let one more attempt run), then the controller stops:
        // the next start finishes it.
        await IdleAsync();
        var attempts = DriverCalls(nameof(INetworkDriver.DeleteNetworkAsync));
        Assert.That(attempts, Is.GreaterThanOrEqualTo(2), "the delete's own attempt and the teardown's first");
        await Until.TrueAsync(
            async () =>
            {
                _time.Advance(TimeSpan.FromSeconds(1));
                await Task.Delay(10);
                return DriverCalls(nameof(INetworkDriver.DeleteNetworkAsync)) > attempts;
            },
            "a retry after the back-off");
        Assert.That(await StoredAsync(CoreStore.NetworkKey(n.Id), CoreJsonContext.Default.NetworkRecord), Is.Not.Null, "the failed retry kept the record");
        await a.DisposeAsync();
        _driverFails = false;

        var b = await F.StartAsync();

        Assert.Multiple(async () =>
        {
            Assert.That(await F.KeysAsync(CoreStore.NetworkKey(n.Id)), Is.Empty);
            Assert.That(b.FindNetworkByName("gone"), Is.Null);
        });
        Assert.That((await b.CreateNetworkAsync("again", ControllerFixture.DriverName, Subnet("10.89.0.0/24"))).IPv4Info[0].Pool.ToString(), Is.EqualTo("10.89.0.0/24"));
    }
}
