using System.Diagnostics;

namespace CnmSharp.Benchmarks.Common;

/// <summary>Measurements of one timed phase (setup/attach or teardown/detach) of one tool in one run.</summary>
internal sealed record PhaseResult(double WallSeconds, IReadOnlyList<double> PerContainerMs, double CpuSelfSeconds, double CpuChildrenSeconds, long PeakRssKib, long? ChildPeakRssKib)
{
    public double CpuSeconds => CpuSelfSeconds + CpuChildrenSeconds;

    public double MedianMs => Stats.Median(PerContainerMs);

    public double P99Ms => Stats.Percentile(PerContainerMs, 99);

    /// <summary>Median of the first tenth of the operations (in start order), in ms: with the last tenth's, shows
    /// whether the cost grows with the number of containers already there.</summary>
    public double FirstTenthMedianMs => Stats.Median([.. PerContainerMs.Take(Math.Max(1, PerContainerMs.Count / 10))]);

    /// <summary>Median of the last tenth of the operations, in ms.</summary>
    public double LastTenthMedianMs => Stats.Median([.. PerContainerMs.Skip(PerContainerMs.Count - Math.Max(1, PerContainerMs.Count / 10))]);

    /// <summary>Wall time per container (wall / N), in ms.</summary>
    public double WallPerContainerMs => PerContainerMs.Count == 0 ? double.NaN : WallSeconds * 1000 / PerContainerMs.Count;

    /// <summary>
    /// Runs <paramref name="phase"/> (which returns per-container milliseconds) and measures its wall time, the CPU of
    /// this process and of its waited-for children (getrusage deltas) and this process's peak RSS (VmHWM, reset first).
    /// </summary>
    public static async Task<PhaseResult> MeasureAsync(Func<Task<IReadOnlyList<double>>> phase)
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        ResourceUsage.ResetPeakRss();
        var before = UsageSnapshot.Take();
        var start = Stopwatch.GetTimestamp();
        var perContainer = await phase().ConfigureAwait(false);
        var wall = Stopwatch.GetElapsedTime(start).TotalSeconds;
        var after = UsageSnapshot.Take();
        return new PhaseResult(
            wall,
            perContainer,
            (after.SelfCpu - before.SelfCpu).TotalSeconds,
            (after.ChildrenCpu - before.ChildrenCpu).TotalSeconds,
            ResourceUsage.PeakRssKib(),
            null);
    }

    /// <summary>
    /// Runs <paramref name="count"/> operations with at most <paramref name="parallelism"/> in flight and returns the
    /// milliseconds each took.
    /// </summary>
    public static async Task<IReadOnlyList<double>> TimeEachAsync(int count, int parallelism, Func<int, Task> operation)
    {
        var times = new double[count];
        var next = -1;
        var workers = Enumerable.Range(0, Math.Clamp(parallelism, 1, Math.Max(count, 1))).Select(async _ =>
        {
            await Task.Yield();
            int i;
            while ((i = Interlocked.Increment(ref next)) < count)
            {
                var start = Stopwatch.GetTimestamp();
                await operation(i).ConfigureAwait(false);
                times[i] = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
            }
        }).ToArray();
        await Task.WhenAll(workers).ConfigureAwait(false);
        return times;
    }
}
