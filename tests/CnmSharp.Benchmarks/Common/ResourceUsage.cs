using System.Globalization;
using System.Runtime.InteropServices;

namespace CnmSharp.Benchmarks.Common;

/// <summary>A snapshot of CPU time and memory of this process and its waited-for children.</summary>
internal readonly record struct UsageSnapshot(TimeSpan SelfCpu, TimeSpan ChildrenCpu, long ChildrenMaxRssKib)
{
    public static UsageSnapshot Take()
    {
        var self = ResourceUsage.Get(ResourceUsage.RUSAGE_SELF);
        var children = ResourceUsage.Get(ResourceUsage.RUSAGE_CHILDREN);
        return new UsageSnapshot(self.Cpu, children.Cpu, children.ru_maxrss);
    }
}

/// <summary><c>getrusage</c>, and the peak-RSS counter of this process (reset through <c>/proc/self/clear_refs</c>).</summary>
internal static partial class ResourceUsage
{
    internal const int RUSAGE_SELF = 0;
    internal const int RUSAGE_CHILDREN = -1;

    [StructLayout(LayoutKind.Sequential)]
    internal struct TimeVal
    {
        public long tv_sec;
        public long tv_usec;
    }

    /// <summary><c>struct rusage</c> of 64-bit Linux.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct RUsage
    {
        public TimeVal ru_utime;
        public TimeVal ru_stime;
        public long ru_maxrss;
        public long ru_ixrss;
        public long ru_idrss;
        public long ru_isrss;
        public long ru_minflt;
        public long ru_majflt;
        public long ru_nswap;
        public long ru_inblock;
        public long ru_oublock;
        public long ru_msgsnd;
        public long ru_msgrcv;
        public long ru_nsignals;
        public long ru_nvcsw;
        public long ru_nivcsw;

        public readonly TimeSpan Cpu =>
            TimeSpan.FromMicroseconds(((ru_utime.tv_sec + ru_stime.tv_sec) * 1_000_000.0) + ru_utime.tv_usec + ru_stime.tv_usec);
    }

    [LibraryImport("libc", EntryPoint = "getrusage", SetLastError = true)]
    private static partial int GetRUsage(int who, out RUsage usage);

    internal static RUsage Get(int who) =>
        GetRUsage(who, out var usage) == 0 ? usage : throw new InvalidOperationException($"getrusage errno {Marshal.GetLastPInvokeError()}");

    /// <summary>Resets this process's peak RSS (VmHWM) to its current RSS (<c>echo 5 &gt; /proc/self/clear_refs</c>).</summary>
    internal static void ResetPeakRss()
    {
        try
        {
            File.WriteAllText("/proc/self/clear_refs", "5");
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    /// <summary>VmHWM of this process in KiB.</summary>
    internal static long PeakRssKib()
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
        {
            if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
            {
                return long.Parse(line.AsSpan(6).Trim().TrimEnd("kB").Trim(), CultureInfo.InvariantCulture);
            }
        }

        return 0;
    }
}
