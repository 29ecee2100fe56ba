using System.Diagnostics;
using System.Runtime.InteropServices;
using CnmSharp.Store;
using CnmSharp.Testing;
using Microsoft.Win32.SafeHandles;

namespace CnmSharp.Tests.Store;

/// <summary>The state locks that order controllers sharing a store: exclusion, waiters, fairness, and release when the
/// holder dies. "Still waiting" is observed, never timed: the holder sees the waiter (<see cref="IStateLock.HasWaiters"/>),
/// and a waiter that sees itself counted cannot have taken the lock without the holder letting go.</summary>
public sealed partial class StateLockTests
{
    private TempDirectory _directory = null!;
    private SqliteKeyValueStore _store = null!;

    [SetUp]
    public async Task Open()
    {
        _directory = new TempDirectory();
        _store = await SqliteKeyValueStore.OpenAsync(new SqliteStoreOptions { Path = _directory.File("cnm.db") });
    }

    [TearDown]
    public async Task Close()
    {
        await _store.DisposeAsync();
        _directory.Dispose();
    }

    [Test]
    public async Task Two_handles_exclude_each_other_and_the_holder_sees_the_waiter([Values("sqlite", "memory")] string kind)
    {
        var provider = kind == "sqlite" ? (IStateLockProvider)_store : new InMemoryKeyValueStore();
        using var a = provider.CreateStateLock();
        using var b = provider.CreateStateLock();

        await a.AcquireAsync();
        Assert.That(a.HasWaiters(), Is.False);
        var waiting = b.AcquireAsync().AsTask();
        await WaitingOrDoneAsync(a, waiting);
        Assert.Multiple(() =>
        {
            Assert.That(waiting.IsCompleted, Is.False, "b waits while a holds the lock");
            Assert.That(a.HasWaiters(), Is.True);
        });

        a.Release();
        await waiting.WaitAsync(Until.Guard);
        Assert.That(b.HasWaiters(), Is.False);

        // A cancelled wait leaves the lock to its holder and no waiter behind: a waits (b sees it), then gives up.
        using var cancel = new CancellationTokenSource();
        var giveUp = a.AcquireAsync(cancel.Token).AsTask();
        await WaitingOrDoneAsync(b, giveUp);
        Assert.That(giveUp.IsCompleted, Is.False, "a waits while b holds the lock");
        await cancel.CancelAsync();
        Assert.That(async () => await giveUp, Throws.InstanceOf<OperationCanceledException>());
        Assert.That(b.HasWaiters(), Is.False);

        // b still holds it: a fresh waiter waits until b lets go.
        var after = a.AcquireAsync().AsTask();
        await WaitingOrDoneAsync(b, after);
        Assert.That(after.IsCompleted, Is.False, "the cancelled wait left the lock to b");
        b.Release();
        await after.WaitAsync(Until.Guard);
        a.Release();
    }

    [Test]
    public async Task A_second_store_instance_on_the_same_file_shares_the_lock()
    {
        await using var other = await SqliteKeyValueStore.OpenAsync(new SqliteStoreOptions { Path = _store.Path });
        using var a = _store.CreateStateLock();
        using var b = other.CreateStateLock();
        await a.AcquireAsync();
        var waiting = b.AcquireAsync().AsTask();
        await WaitingOrDoneAsync(a, waiting);
        Assert.That(waiting.IsCompleted, Is.False, "b, on the other store instance, waits while a holds the lock");
        a.Release();
        await waiting.WaitAsync(Until.Guard);
        b.Release();
    }

    [Test]
    public async Task A_process_killed_while_it_holds_the_lock_releases_it()
    {
        // util-linux flock(1) takes the same flock(2) lock on the lock file, then sleeps until killed.
        using var holder = Process.Start(new ProcessStartInfo("flock", ["--exclusive", _store.Path + ".lock", "sleep", "60"]) { UseShellExecute = false })!;
        using var mine = _store.CreateStateLock();
        try
        {
            // The child holds the lock once a non-blocking flock(2) of our own on the lock file is refused.
            await Until.TrueAsync(() => IsLockedElsewhere(_store.Path + ".lock") || holder.HasExited, "the child holds the lock");
            Assert.That(holder.HasExited, Is.False, "flock(1) is running");

            using var probe = _store.CreateStateLock();
            var waiting = mine.AcquireAsync().AsTask();
            await WaitingOrDoneAsync(probe, waiting);
            Assert.Multiple(() =>
            {
                Assert.That(waiting.IsCompleted, Is.False, "the child holds the lock");
                Assert.That(IsLockedElsewhere(_store.Path + ".lock"), Is.True);
            });
            holder.Kill(entireProcessTree: true); // SIGKILL to flock and to the sleep that inherited the locked fd
            await waiting.WaitAsync(Until.Guard);
            mine.Release();
        }
        finally
        {
            if (!holder.HasExited)
            {
                holder.Kill(entireProcessTree: true);
            }

            await holder.WaitForExitAsync();
        }
    }

    /// <summary>Returns once <paramref name="acquire"/> is queued behind the holder (<paramref name="other"/>, any
    /// handle on the lock, sees a waiter) or has ended (then it did not wait). No time is assumed: the guard only stops
    /// a hang.</summary>
    private static Task WaitingOrDoneAsync(IStateLock other, Task acquire) =>
        Until.TrueAsync(() => other.HasWaiters() || acquire.IsCompleted, "the acquisition waits or ends");

    /// <summary>True when another open file description holds a flock(2) on <paramref name="path"/>: a non-blocking
    /// exclusive try of our own is refused (opened with open(2): .NET's own FileStream would take a flock of its own).</summary>
    private static bool IsLockedElsewhere(string path)
    {
        const int ReadWrite = 0x2, CloseOnExec = 0x80000, LockExclusive = 2, LockNonBlocking = 4, LockUnlock = 8, EWouldBlock = 11, EIntr = 4;
        var fd = OpenNative(path, ReadWrite | CloseOnExec);
        Assert.That(fd, Is.GreaterThanOrEqualTo(0), $"open {path}: errno {Marshal.GetLastPInvokeError()}");
        using var handle = new SafeFileHandle(fd, ownsHandle: true);
        while (true)
        {
            if (FlockNative(handle, LockExclusive | LockNonBlocking) == 0)
            {
                FlockNative(handle, LockUnlock);
                return false;
            }

            var errno = Marshal.GetLastPInvokeError();
            if (errno != EIntr)
            {
                Assert.That(errno, Is.EqualTo(EWouldBlock), "flock fails only because the lock is held");
                return true;
            }
        }
    }

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int OpenNative(string path, int flags);

    [LibraryImport("libc", EntryPoint = "flock", SetLastError = true)]
    private static partial int FlockNative(SafeFileHandle fd, int operation);

    [Test]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public void Lock_files_are_private_to_the_owner()
    {
        using var handle = _store.CreateStateLock();
        Assert.Multiple(() =>
        {
            Assert.That(File.GetUnixFileMode(_store.Path + ".lock"), Is.EqualTo(UnixFileMode.UserRead | UnixFileMode.UserWrite));
            Assert.That(File.GetUnixFileMode(_store.Path + ".queue"), Is.EqualTo(UnixFileMode.UserRead | UnixFileMode.UserWrite));
        });
    }
}
