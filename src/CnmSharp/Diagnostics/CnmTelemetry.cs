using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace CnmSharp.Diagnostics;

/// <summary>
/// The names under which CnmSharp publishes traces and metrics, for OpenTelemetry's
/// <c>AddSource(CnmTelemetry.ActivitySourceName)</c> and <c>AddMeter(CnmTelemetry.MeterName)</c>.
/// </summary>
public static class CnmTelemetry
{
    /// <summary>The <see cref="ActivitySource"/> name: one span per controller operation.</summary>
    public const string ActivitySourceName = "CnmSharp";

    /// <summary>The <see cref="Meter"/> name.</summary>
    public const string MeterName = "CnmSharp";
}

/// <summary>One controller's instruments. Created per controller from an <see cref="IMeterFactory"/> (or a private
/// meter without DI), so two controllers never share mutable state.</summary>
internal sealed class ControllerInstruments : IDisposable
{
    private readonly Meter _meter;
    private readonly bool _ownsMeter;
    private readonly Counter<long> _operations;
    private readonly Counter<long> _failures;
    private readonly Histogram<double> _duration;

    public ControllerInstruments(IMeterFactory? meterFactory, string controllerId, Func<IEnumerable<Measurement<long>>> allocatedAddresses)
    {
        var tags = new KeyValuePair<string, object?>[] { new("cnmsharp.controller.id", Core.Ids.Short(controllerId)) };
        if (meterFactory is null)
        {
            _meter = new Meter(CnmTelemetry.MeterName, null, tags);
            _ownsMeter = true;
        }
        else
        {
            _meter = meterFactory.Create(new MeterOptions(CnmTelemetry.MeterName) { Tags = tags });
        }

        ActivitySource = new ActivitySource(CnmTelemetry.ActivitySourceName);
        _operations = _meter.CreateCounter<long>("cnmsharp.operations", "{operation}", "Controller operations started.");
        _failures = _meter.CreateCounter<long>("cnmsharp.operation.failures", "{operation}", "Controller operations that failed.");
        _duration = _meter.CreateHistogram<double>("cnmsharp.operation.duration", "s", "Duration of controller operations.");
        _meter.CreateObservableGauge("cnmsharp.ipam.addresses.allocated", allocatedAddresses, "{address}", "Addresses allocated per IPAM pool.");
    }

    public ActivitySource ActivitySource { get; }

    public Operation Start(string name) => new(this, name, ActivitySource.StartActivity("cnmsharp." + name, ActivityKind.Internal), Stopwatch.GetTimestamp());

    public void Dispose()
    {
        ActivitySource.Dispose();
        if (_ownsMeter)
        {
            _meter.Dispose();
        }
    }

    /// <summary>Times one operation; call <see cref="Fail"/> on failure, then dispose.</summary>
    internal struct Operation(ControllerInstruments owner, string name, Activity? activity, long started) : IDisposable
    {
        private bool _failed;

        public readonly Activity? Activity => activity;

        public void Fail(Exception exception)
        {
            _failed = true;
            var kind = exception is CnmException cnm ? cnm.Kind.ToString() : exception.GetType().Name;
            owner._failures.Add(1, new KeyValuePair<string, object?>("cnmsharp.operation", name), new KeyValuePair<string, object?>("error.type", kind));
            activity?.SetStatus(ActivityStatusCode.Error, exception.Message);
            activity?.AddTag("error.type", kind);
        }

        public readonly void Dispose()
        {
            var op = new KeyValuePair<string, object?>("cnmsharp.operation", name);
            owner._operations.Add(1, op);
            owner._duration.Record(Stopwatch.GetElapsedTime(started).TotalSeconds, op, new KeyValuePair<string, object?>("cnmsharp.outcome", _failed ? "failure" : "success"));
            activity?.Dispose();
        }
    }
}
