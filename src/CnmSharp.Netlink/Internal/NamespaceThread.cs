using System.Runtime.ExceptionServices;
using System.Runtime.InteropServices;
using CnmSharp.Netlink.Interop;
using Microsoft.Win32.SafeHandles;

namespace CnmSharp.Netlink.Internal;

/// <summary>
/// Runs a function on a dedicated thread that has entered another network namespace, then returns the thread to
/// its original namespace. Sockets created inside stay bound to that namespace. Never uses a pool thread.
/// </summary>
internal static class NamespaceThread
{
    /// <summary>The path of the calling thread's network namespace.</summary>
    public const string CurrentThreadNamespacePath = "/proc/thread-self/ns/net";

    /// <summary>Runs <paramref name="func"/> inside <paramref name="networkNamespace"/> on a new thread and waits for it.</summary>
    public static T RunIn<T>(SafeHandle networkNamespace, Func<T> func)
    {
        ArgumentNullException.ThrowIfNull(networkNamespace);
        ArgumentNullException.ThrowIfNull(func);
        T result = default!;
        ExceptionDispatchInfo? failure = null;
        var thread = new Thread(
            () =>
            {
                try
                {
                    result = RunOnCurrentThread(networkNamespace, func);
                }
#pragma warning disable CA1031 // Rethrown on the calling thread.
                catch (Exception e)
#pragma warning restore CA1031
                {
                    failure = ExceptionDispatchInfo.Capture(e);
                }
            },
            maxStackSize: 256 * 1024)
        {
            IsBackground = true,
            Name = "cnm-netns",
        };
        thread.Start();
        thread.Join();
        failure?.Throw();
        return result;
    }

    /// <summary>Opens the calling thread's network namespace.</summary>
    public static SafeFileHandle OpenCurrent()
    {
        var fd = Libc.Open(CurrentThreadNamespacePath, Libc.O_RDONLY | Libc.O_CLOEXEC);
        if (fd < 0)
        {
            ThrowHelper.ThrowErrno(Marshal.GetLastPInvokeError(), "open " + CurrentThreadNamespacePath);
        }

        return new SafeFileHandle(fd, ownsHandle: true);
    }

    private static T RunOnCurrentThread<T>(SafeHandle target, Func<T> func)
    {
        using var original = OpenCurrent();
        if (Libc.SetNs(target, Libc.CLONE_NEWNET) != 0)
        {
            ThrowHelper.ThrowErrno(Marshal.GetLastPInvokeError(), "setns into the target network namespace");
        }

        try
        {
            return func();
        }
        finally
        {
            if (Libc.SetNs(original, Libc.CLONE_NEWNET) != 0)
            {
                Environment.FailFast(
                    $"setns back to the original network namespace failed (errno {Marshal.GetLastPInvokeError()}); the thread must not go on in the wrong namespace.");
            }
        }
    }
}
