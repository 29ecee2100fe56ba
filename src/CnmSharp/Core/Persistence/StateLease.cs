using CnmSharp.Store;

namespace CnmSharp.Core.Persistence;

/// <summary>
/// Orders one controller's operations against every other client of its state (other processes, other controllers on
/// the same store). The controller's operations share one hold on the state lock: the first to start takes it, the last
/// to end lets it go, so operations of one controller still run side by side. A controller that holds the lock admits
/// no new operation once another party waits for it; it lets go when its running operations end and queues behind.
/// <para>Each time the lock is taken, <c>onAcquired</c> runs before any operation: the controller compares the store's
/// revision with the one it saw when it last let go, and if anyone wrote in between it reloads its view. So while an
/// operation runs, every intent in the store that this controller did not write belongs to a party that is not
/// working: dead, or idle after a failure.</para>
/// </summary>
internal sealed class StateLease : IDisposable
{
    private readonly IStateLock _lock;
    private readonly Func<CancellationToken, ValueTask> _onAcquired;
    private readonly Func<ValueTask> _onReleasing;
    private readonly SemaphoreSlim _transition = new(1, 1);
    private readonly AsyncLocal<bool> _inScope = new();
    private TaskCompletionSource _idle = NewIdle(completed: true);
    private int _count;
    private bool _held;
    private bool _draining;
    private bool _exclusive;
    private bool _closed;

    public StateLease(IStateLock stateLock, Func<CancellationToken, ValueTask> onAcquired, Func<ValueTask> onReleasing)
    {
        _lock = stateLock;
        _onAcquired = onAcquired;
        _onReleasing = onReleasing;
    }

    /// <summary>True inside an operation that holds the lease (nested calls share the outer hold).</summary>
    public bool InScope => _inScope.Value;

    /// <summary>The number of holds (operations and background teardowns) now running.</summary>
    public int Count => Volatile.Read(ref _count);

    /// <summary>Marks the calling async flow (and what it starts) as holding the lease. Call it in the method that
    /// acquired, after <see cref="EnterAsync"/> returned: an async local set inside a callee does not flow back.</summary>
    public void MarkScope() => _inScope.Value = true;

    /// <summary>Takes a hold for one operation: waits for the state lock if this controller does not hold it.</summary>
    /// <param name="exclusive">Wait until no other operation of this controller runs, and admit none until done.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    public async ValueTask EnterAsync(bool exclusive, CancellationToken cancellationToken)
    {
        await _transition.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            while (true)
            {
                ObjectDisposedException.ThrowIf(_closed, this);
                if (_held && !_draining && !_exclusive && !exclusive)
                {
                    if (_count > 0 && _lock.HasWaiters())
                    {
                        // Someone else waits: admit nothing more, let go when the running operations end.
                        _draining = true;
                    }
                    else
                    {
                        Interlocked.Increment(ref _count);
                        return;
                    }
                }

                if (_held)
                {
                    if (exclusive)
                    {
                        _draining = true;
                    }

                    // Wait (without the transition gate) for the running operations to end and the lock to go.
                    var idle = _idle.Task;
                    _transition.Release();
                    try
                    {
                        await idle.WaitAsync(cancellationToken).ConfigureAwait(false);
                    }
                    finally
                    {
                        await _transition.WaitAsync(CancellationToken.None).ConfigureAwait(false);
                    }

                    continue;
                }

                await _lock.AcquireAsync(cancellationToken).ConfigureAwait(false);
                _held = true;
                _draining = false;
                _exclusive = exclusive;
                _idle = NewIdle(completed: false);
                Volatile.Write(ref _count, 1);
                try
                {
                    await _onAcquired(cancellationToken).ConfigureAwait(false);
                }
                catch
                {
                    if (Interlocked.Decrement(ref _count) == 0)
                    {
                        LetGo();
                    }

                    throw;
                }

                return;
            }
        }
        finally
        {
            _transition.Release();
        }
    }

    /// <summary>Adds a hold for work that an operation starts and that outlives it (a background teardown). Only
    /// valid in scope, where the lock is held.</summary>
    public void AddHold()
    {
        if (!InScope || Interlocked.Increment(ref _count) <= 1)
        {
            throw new InvalidOperationException("a hold can only be added while the lease is held");
        }
    }

    /// <summary>Ends a hold; the last one out records the revision and lets the lock go.</summary>
    public async ValueTask ExitAsync()
    {
        await _transition.WaitAsync(CancellationToken.None).ConfigureAwait(false);
        try
        {
            if (Interlocked.Decrement(ref _count) > 0)
            {
                return;
            }

            try
            {
                await _onReleasing().ConfigureAwait(false);
            }
            finally
            {
                LetGo();
            }
        }
        finally
        {
            _transition.Release();
        }
    }

    /// <summary>Refuses new holds and waits until the running ones have ended and the lock is released.</summary>
    public async ValueTask CloseAsync()
    {
        Task idle;
        await _transition.WaitAsync(CancellationToken.None).ConfigureAwait(false);
        try
        {
            _closed = true;
            idle = _idle.Task;
        }
        finally
        {
            _transition.Release();
        }

        await idle.ConfigureAwait(false);
    }

    public void Dispose()
    {
        _lock.Dispose();
        _transition.Dispose();
    }

    private void LetGo()
    {
        _held = false;
        _draining = false;
        _exclusive = false;
        _lock.Release();
        _idle.TrySetResult();
    }

    private static TaskCompletionSource NewIdle(bool completed)
    {
        var source = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        if (completed)
        {
            source.SetResult();
        }

        return source;
    }
}
