using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace CnmSharp.Store;

/// <summary>
/// The state lock of a store file, shared by every process and every handle on it: <c>flock(2)</c> on two files beside
/// the store. <c>&lt;store&gt;.lock</c> is the lock itself; <c>&lt;store&gt;.queue</c> is a turnstile that a waiter takes
/// before it tries the lock and keeps until it has it, so only one waiter at a time competes with the holder's next
/// turn, and a holder sees that someone waits (<see cref="HasWaiters"/>) and lets go. The kernel drops both locks when
/// their holder dies, whatever killed it.
/// </summary>
internal sealed partial class FileStateLock : IStateLock
{
    private const int LockShared = 1;
    private const int LockExclusive = 2;
    private const int LockNonBlocking = 4;
    private const int LockUnlock = 8;
    private const int EWouldBlock = 11;
    private const int EIntr = 4;
    private static readonly TimeSpan MaxPoll = TimeSpan.FromMilliseconds(4);

    private readonly SafeFileHandle _lock;
    private readonly SafeFileHandle _queue;
    private readonly string _path;

    /// <summary>Opens the lock files of the store at <paramref name="storePath"/> (created 0600 if missing).</summary>
    public FileStateLock(string storePath)
    {
        _path = storePath + ".lock";
        _lock = OpenLockFile(_path);
        try
        {
            _queue = OpenLockFile(storePath + ".queue");
        }
        catch
        {
            _lock.Dispose();
            throw;
        }
    }

    /// <inheritdoc />
    public async ValueTask AcquireAsync(CancellationToken cancellationToken = default)
    {
        // The turnstile first: only the waiter that holds it tries the lock, and the holder sees it waiting.
        await TakeAsync(_queue, cancellationToken).ConfigureAwait(false);
        try
        {
            await TakeAsync(_lock, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            Flock(_queue, LockUnlock);
        }
    }

    /// <inheritdoc />
    public void Release() => Flock(_lock, LockUnlock);

    /// <inheritdoc />
    public bool HasWaiters()
    {
        // A shared, non-blocking try: it fails only while a waiter holds the turnstile exclusively.
        if (!TryFlock(_queue, LockShared | LockNonBlocking))
        {
            return true;
        }

        Flock(_queue, LockUnlock);
        return false;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _queue.Dispose();
        _lock.Dispose();
    }

    private static SafeFileHandle OpenLockFile(string path)
    {
        if (OperatingSystem.IsWindows())
        {
            throw new PlatformNotSupportedException("The state lock uses flock(2).");
        }

        if (new FileInfo(path).LinkTarget is not null)
        {
            throw new CnmUnavailableException(StoreRules.StoreUnavailable, $"lock file \"{path}\"", "the lock file is a symbolic link");
        }

        try
        {
            // Read-write access with sharing: .NET takes no lock of its own on such a handle.
            var stream = new FileStream(path, new FileStreamOptions
            {
                Mode = FileMode.OpenOrCreate,
                Access = FileAccess.ReadWrite,
                Share = FileShare.ReadWrite,
                UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
            });
            return stream.SafeFileHandle;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new CnmUnavailableException(StoreRules.StoreUnavailable, $"lock file \"{path}\"", "cannot open the lock file: " + ex.Message, ex);
        }
    }

    /// <summary>Takes an exclusive lock, polling (a blocked <c>flock</c> cannot be cancelled) with a short back-off.</summary>
    private async ValueTask TakeAsync(SafeFileHandle file, CancellationToken cancellationToken)
    {
        var delay = TimeSpan.FromMilliseconds(0.25);
        while (!TryFlock(file, LockExclusive | LockNonBlocking))
        {
            await Task.Delay(delay, cancellationToken).ConfigureAwait(false);
            delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, MaxPoll.Ticks));
        }
    }

    private bool TryFlock(SafeFileHandle file, int operation)
    {
        while (true)
        {
            if (FlockNative(file, operation) == 0)
            {
                return true;
            }

            var errno = Marshal.GetLastPInvokeError();
            if (errno == EWouldBlock)
            {
                return false;
            }

            if (errno != EIntr)
            {
                throw new CnmUnavailableException(StoreRules.StoreUnavailable, $"lock file \"{_path}\"", $"flock failed: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})");
            }
        }
    }

    private void Flock(SafeFileHandle file, int operation) => TryFlock(file, operation);

    [LibraryImport("libc", EntryPoint = "flock", SetLastError = true)]
    private static partial int FlockNative(SafeFileHandle fd, int operation);
}

/// <summary>
/// The state lock of a store that lives in one process (<see cref="InMemoryKeyValueStore"/>), or of a controller whose
/// store offers none: a FIFO semaphore and a count of waiters.
/// </summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001:Types that own disposable fields should be disposable", Justification = "The SemaphoreSlim never allocates a wait handle (AvailableWaitHandle is not used), so it holds nothing to release.")]
internal sealed class InProcessStateLock
{
    private readonly SemaphoreSlim _semaphore = new(1, 1);
    private int _waiting;

    /// <summary>A new party on this lock.</summary>
    public IStateLock CreateHandle() => new Handle(this);

    private sealed class Handle(InProcessStateLock owner) : IStateLock
    {
        public async ValueTask AcquireAsync(CancellationToken cancellationToken = default)
        {
            Interlocked.Increment(ref owner._waiting);
            try
            {
                await owner._semaphore.WaitAsync(cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                Interlocked.Decrement(ref owner._waiting);
            }
        }

        public void Release() => owner._semaphore.Release();

        public bool HasWaiters() => Volatile.Read(ref owner._waiting) > 0;

        public void Dispose()
        {
        }
    }
}
