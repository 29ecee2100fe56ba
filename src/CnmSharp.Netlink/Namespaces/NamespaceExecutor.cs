using System.Collections.Concurrent;
using System.Globalization;
using System.Runtime.InteropServices;
using CnmSharp.Netlink.Interop;
using Microsoft.Win32.SafeHandles;

namespace CnmSharp.Netlink;

/// <summary>
/// Runs work on dedicated threads (never thread-pool threads) that may switch network namespace with
/// <c>setns</c>/<c>unshare</c>. After every work item the thread is put back into the process's network namespace
/// (the one of <c>/proc/self/ns/net</c>, i.e. of the main thread); a thread that cannot get back terminates the process
/// with <see cref="Environment.FailFast(string)"/>, because running later work in the wrong namespace would be worse.
/// Threads are started on demand up to a small bound and then reused. Work submitted from a worker thread (nesting) runs
/// inline on that thread and returns it to the namespace it was in before, so nesting cannot deadlock the pool.
/// </summary>
internal static class NamespaceExecutor
{
    private const string CurrentThreadNamespacePath = "/proc/thread-self/ns/net";
    private static readonly BlockingCollection<WorkItem> s_queue = new(new ConcurrentQueue<WorkItem>());
    private static readonly Lazy<SafeFileHandle> s_home = new(OpenHome, LazyThreadSafetyMode.ExecutionAndPublication);
    private static readonly int s_maxThreads = Math.Max(4, Environment.ProcessorCount * 2);
    private static int s_threads;
    private static int s_idle;

    [ThreadStatic]
    private static bool t_isWorker;

    /// <summary>The process's own network namespace (that of the main thread), opened once.</summary>
    internal static SafeFileHandle Home => s_home.Value;

    /// <summary>True on a namespace worker thread.</summary>
    internal static bool IsWorkerThread => t_isWorker;

    /// <summary>
    /// Runs <paramref name="work"/> on a namespace worker thread. <paramref name="work"/> may change the thread's network
    /// namespace; the executor restores it afterwards.
    /// </summary>
    internal static Task<T> RunAsync<T>(Func<T> work, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(work);
        if (cancellationToken.IsCancellationRequested)
        {
            return Task.FromCanceled<T>(cancellationToken);
        }

        if (t_isWorker)
        {
            return RunNested(work);
        }

        _ = Home;
        var item = new WorkItem<T>(work, cancellationToken);
        s_queue.Add(item, CancellationToken.None);
        EnsureWorker();
        return item.Task;
    }

    /// <summary>Runs <paramref name="work"/> on a worker thread after switching it into <paramref name="ns"/>.</summary>
    internal static Task<T> RunInAsync<T>(SafeHandle ns, Func<T> work, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(ns);
        ArgumentNullException.ThrowIfNull(work);
        return RunAsync(
            () =>
            {
                EnterNamespace(ns);
                return work();
            },
            cancellationToken);
    }

    /// <summary>Switches the calling thread into <paramref name="ns"/>; throws a <see cref="NamespaceException"/> on failure.</summary>
    /// <summary>
    /// Runs <paramref name="work"/> inside a namespace on a worker and waits for it: for synchronous APIs such as
    /// <see cref="RtnetlinkClient.Open(SafeHandle?)"/>, whose sockets must be created inside their namespace. The
    /// caller's thread never changes namespace; the function's exception is rethrown as is.
    /// </summary>
    internal static T RunIn<T>(SafeHandle ns, Func<T> work) => RunInAsync(ns, work, CancellationToken.None).GetAwaiter().GetResult();

    /// <summary>Opens the calling thread's network namespace (<c>/proc/thread-self/ns/net</c>).</summary>
    internal static SafeFileHandle OpenCurrentThreadNamespace() =>
        NamespaceInterop.TryOpen(CurrentThreadNamespacePath, NamespaceInterop.O_RDONLY, out var errno)
        ?? throw new NetlinkException(errno, null, "open " + CurrentThreadNamespacePath);

    internal static void EnterNamespace(SafeHandle ns)
    {
        if (NamespaceInterop.SetNs(ns, NamespaceInterop.CLONE_NEWNET) != 0)
        {
            throw NamespaceException.FromLastError("setns", null);
        }
    }

    private static Task<T> RunNested<T>(Func<T> work)
    {
        // Already on a worker: remember where this thread is, run inline, come back.
        using var previous = NamespaceInterop.TryOpen(CurrentThreadNamespacePath, NamespaceInterop.O_RDONLY, out var errno);
        if (previous is null)
        {
            return Task.FromException<T>(NamespaceException.FromErrno("open", errno, CurrentThreadNamespacePath));
        }

        T result;
        Exception? error = null;
        result = default!;
        try
        {
            result = work();
        }
#pragma warning disable CA1031 // The exception is handed to the caller through the task.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            error = ex;
        }

        Restore(previous);
        return error is null ? Task.FromResult(result) : Task.FromException<T>(error);
    }

    private static void EnsureWorker()
    {
        while (true)
        {
            var threads = Volatile.Read(ref s_threads);
            if (Volatile.Read(ref s_idle) > 0 || threads >= s_maxThreads)
            {
                return;
            }

            if (Interlocked.CompareExchange(ref s_threads, threads + 1, threads) == threads)
            {
                var thread = new Thread(WorkerLoop)
                {
                    IsBackground = true,
                    Name = string.Create(CultureInfo.InvariantCulture, $"cnm-netns-{threads}"),
                };
                thread.UnsafeStart();
                return;
            }
        }
    }

    private static void WorkerLoop()
    {
        t_isWorker = true;

        // A thread inherits the namespace of the thread that created it, which need not be the process's.
        Restore(Home);
        while (true)
        {
            Interlocked.Increment(ref s_idle);
            var item = s_queue.Take();
            Interlocked.Decrement(ref s_idle);
            item.Execute();
            Restore(Home);
            item.Complete();
        }
    }

    private static void Restore(SafeHandle ns)
    {
        if (NamespaceInterop.SetNs(ns, NamespaceInterop.CLONE_NEWNET) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            Environment.FailFast(string.Create(
                CultureInfo.InvariantCulture,
                $"CnmSharp: a namespace worker thread could not return to its network namespace (setns errno {errno}); refusing to continue in the wrong namespace."));
        }
    }

    private static SafeFileHandle OpenHome() =>
        NamespaceInterop.TryOpen("/proc/self/ns/net", NamespaceInterop.O_RDONLY, out var errno)
        ?? throw NamespaceException.FromErrno("open", errno, "/proc/self/ns/net");

    private abstract class WorkItem
    {
        public abstract void Execute();

        public abstract void Complete();
    }

    private sealed class WorkItem<T> : WorkItem
    {
        private readonly TaskCompletionSource<T> _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly Func<T> _work;
        private readonly CancellationToken _cancellationToken;
        private readonly CancellationTokenRegistration _registration;
        private T _result = default!;
        private Exception? _error;
        private bool _ran;

        public WorkItem(Func<T> work, CancellationToken cancellationToken)
        {
            _work = work;
            _cancellationToken = cancellationToken;
            if (cancellationToken.CanBeCanceled)
            {
                _registration = cancellationToken.UnsafeRegister(
                    static state => ((WorkItem<T>)state!).CancelIfNotStarted(),
                    this);
            }
        }

        public Task<T> Task => _completion.Task;

        public override void Execute()
        {
            lock (_completion)
            {
                if (_completion.Task.IsCompleted)
                {
                    return;
                }

                _ran = true;
            }

            _registration.Dispose();
            try
            {
                _result = _work();
            }
#pragma warning disable CA1031 // The exception is handed to the caller through the task.
            catch (Exception ex)
#pragma warning restore CA1031
            {
                _error = ex;
            }
        }

        public override void Complete()
        {
            if (!_ran)
            {
                return;
            }

            if (_error is null)
            {
                _completion.TrySetResult(_result);
            }
            else
            {
                _completion.TrySetException(_error);
            }
        }

        private void CancelIfNotStarted()
        {
            lock (_completion)
            {
                if (!_ran)
                {
                    _completion.TrySetCanceled(_cancellationToken);
                }
            }
        }
    }
}
