using System.Diagnostics;
using CnmSharp.Store;

namespace CnmSharp.Tests.Store;

/// <summary>The state locks that order controllers sharing a store: exclusion, waiters, fairness, and release when the
/// holder dies.</summary>
public sealed class StateLockTests
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
        await Task.Delay(100);
        Assert.Multiple(() =>
        {
            Assert.That(waiting.IsCompleted, Is.False, "b waits while a holds the lock");
            Assert.That(a.HasWaiters(), Is.True);
        });

        a.Release();
        await waiting.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.That(b.HasWaiters(), Is.False);

        // A cancelled wait leaves the lock to its holder and no waiter behind.
        using var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(100));
        Assert.That(async () => await a.AcquireAsync(cancel.Token), Throws.InstanceOf<OperationCanceledException>());
        Assert.That(b.HasWaiters(), Is.False);
        b.Release();
    }

    [Test]
    public async Task A_second_store_instance_on_the_same_file_shares_the_lock()
    {
        await using var other = await SqliteKeyValueStore.OpenAsync(new SqliteStoreOptions { Path = _store.Path });
        using var a = _store.CreateStateLock();
        using var b = other.CreateStateLock();
        await a.AcquireAsync();
        var waiting = b.AcquireAsync().AsTask();
        await Task.Delay(100);
        Assert.That(waiting.IsCompleted, Is.False);
        a.Release();
        await waiting.WaitAsync(TimeSpan.FromSeconds(10));
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
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
            using var probe = _store.CreateStateLock();
            while (true)
            {
                using var quick = new CancellationTokenSource(TimeSpan.FromMilliseconds(50));
                try
                {
                    await probe.AcquireAsync(quick.Token);
                    probe.Release();
                    Assert.That(DateTime.UtcNow, Is.LessThan(deadline), "the child never took the lock");
                    await Task.Delay(20);
                }
                catch (OperationCanceledException)
                {
                    break; // the child holds it
                }
            }

            var waiting = mine.AcquireAsync().AsTask();
            await Task.Delay(100);
            Assert.That(waiting.IsCompleted, Is.False, "the child holds the lock");
            holder.Kill(entireProcessTree: true); // SIGKILL to flock and to the sleep that inherited the locked fd
            await waiting.WaitAsync(TimeSpan.FromSeconds(10));
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
