namespace CnmSharp.Store;

/// <summary>
/// A store whose state several clients (processes, or controllers in one process) may share, and that offers the lock
/// that orders their work on it. A controller holds this lock around each operation that changes state, so that what
/// it reads, decides and writes cannot interleave with another client's operation. A store that does not implement
/// this interface is assumed to have one client: the controller then uses a lock of its own.
/// </summary>
public interface IStateLockProvider
{
    /// <summary>Creates a new handle on the state's lock. Each handle is an independent party: two handles (in one
    /// process or in two) exclude each other.</summary>
    /// <returns>The handle; the caller disposes it.</returns>
    IStateLock CreateStateLock();
}

/// <summary>
/// One party's handle on an exclusive, fair lock over a shared state. Acquire and release are not reentrant and not
/// thread-affine: the holder may release from another thread. A party that dies (even by <c>SIGKILL</c>) releases the
/// lock with it.
/// </summary>
public interface IStateLock : IDisposable
{
    /// <summary>Waits until this party holds the lock. Parties that were already waiting go first.</summary>
    /// <param name="cancellationToken">Cancels the wait (the lock is then not held).</param>
    /// <returns>A task that completes when the lock is held.</returns>
    ValueTask AcquireAsync(CancellationToken cancellationToken = default);

    /// <summary>Releases the lock this party holds.</summary>
    void Release();

    /// <summary>True when another party is waiting for the lock: a holder that keeps admitting work should let it go
    /// soon, so that no party waits forever.</summary>
    /// <returns>Whether someone waits.</returns>
    bool HasWaiters();
}

/// <summary>
/// A component (a driver or an IPAM) that keeps in memory state it persisted in a store that other controllers may
/// share. The controller calls <see cref="ReloadAsync"/>, with none of its own operations in flight and holding the
/// state lock, when the store changed since the component last saw it: the component replaces its in-memory view with
/// what the store holds, without touching the kernel (the controller that made a change also made its kernel objects).
/// </summary>
public interface IStateReloadable
{
    /// <summary>Re-reads the component's persisted state.</summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when the in-memory view matches the store.</returns>
    ValueTask ReloadAsync(CancellationToken cancellationToken = default);
}
