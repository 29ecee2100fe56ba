using System.Collections.Concurrent;
using System.Diagnostics;
using CnmSharp.Diagnostics;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;

namespace CnmSharp.Tests.Core;

public sealed class ObservabilityTests : ControllerTestBase
{
    [Test]
    public async Task Operations_and_failures_are_counted()
    {
        using var meters = new TestMeterFactory();
        using var operations = new MetricCollector<long>(meters, CnmTelemetry.MeterName, "cnmsharp.operations");
        using var failures = new MetricCollector<long>(meters, CnmTelemetry.MeterName, "cnmsharp.operation.failures");
        F.Configure = o => o.CreateDefaultNetworks = false;
        var c = await F.StartAsync(meters: meters);

        await c.CreateNetworkAsync("ok", ControllerFixture.DriverName);
        var ex = await CatchAsync(() => c.CreateNetworkAsync("bad", "nosuchdriver").AsTask());

        Assert.That(ex, Is.InstanceOf<CnmNotFoundException>());
        var ops = operations.GetMeasurementSnapshot();
        var fails = failures.GetMeasurementSnapshot();
        Assert.Multiple(() =>
        {
            Assert.That(ops.Where(m => Equals(m.Tags["cnmsharp.operation"], "network.create")).Sum(m => m.Value), Is.EqualTo(2));
            Assert.That(fails, Has.Count.EqualTo(1));
            Assert.That(fails[0].Value, Is.EqualTo(1));
            Assert.That(fails[0].Tags["cnmsharp.operation"], Is.EqualTo("network.create"));
            Assert.That(fails[0].Tags["error.type"], Is.EqualTo(nameof(CnmErrorKind.NotFound)));
        });
    }

    [Test]
    public async Task A_network_create_is_traced()
    {
        var stopped = new ConcurrentQueue<Activity>();
        using var listener = new ActivityListener
        {
            ShouldListenTo = s => s.Name == CnmTelemetry.ActivitySourceName,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = stopped.Enqueue,
        };
        ActivitySource.AddActivityListener(listener);
        using var parent = new Activity("test-parent").Start();
        var c = await F.StartAsync();

        await c.CreateNetworkAsync("traced", ControllerFixture.DriverName);
        await CatchAsync(() => c.CreateNetworkAsync("traced", ControllerFixture.DriverName).AsTask());

        var mine = stopped.Where(a => a.TraceId == parent.TraceId && a.OperationName == "cnmsharp.network.create").ToArray();
        Assert.That(mine, Has.Length.GreaterThanOrEqualTo(2));
        Assert.Multiple(() =>
        {
            Assert.That(mine[^2].Status, Is.Not.EqualTo(ActivityStatusCode.Error));
            Assert.That(mine[^1].Status, Is.EqualTo(ActivityStatusCode.Error));
            Assert.That(mine[^1].GetTagItem("error.type"), Is.EqualTo(nameof(CnmErrorKind.Conflict)));
        });
    }
}
