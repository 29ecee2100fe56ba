using NUnit.Framework;

namespace CnmSharp.Testing;

/// <summary>
/// Waits for a state the test can observe (a waiter counted, a record written, an event received) instead of "long
/// enough". The time limit is a guard against a hang only, never a timing assertion: it is generous, and reaching it
/// fails the test with what was awaited.
/// </summary>
public static class Until
{
    /// <summary>The default guard: far beyond any expected wait, so a slow machine never trips it.</summary>
    public static readonly TimeSpan Guard = TimeSpan.FromMinutes(1);

    /// <summary>Returns once <paramref name="condition"/> holds; fails the test if it does not within the guard.</summary>
    /// <param name="condition">The observed state; polled, so it must be cheap and safe to call from any thread.</param>
    /// <param name="what">What is awaited, for the failure message.</param>
    /// <param name="guard">The guard against a hang (default <see cref="Guard"/>).</param>
    public static async Task TrueAsync(Func<bool> condition, string what, TimeSpan? guard = null)
    {
        ArgumentNullException.ThrowIfNull(condition);
        var hang = DateTime.UtcNow + (guard ?? Guard);
        while (!condition())
        {
            if (DateTime.UtcNow > hang)
            {
                Assert.Fail($"never observed: {what}");
            }

            await Task.Delay(1).ConfigureAwait(false);
        }
    }

    /// <summary>Returns once <paramref name="condition"/> holds; fails the test if it does not within the guard.</summary>
    /// <param name="condition">The observed state, read asynchronously (a store, the kernel).</param>
    /// <param name="what">What is awaited, for the failure message.</param>
    /// <param name="guard">The guard against a hang (default <see cref="Guard"/>).</param>
    public static async Task TrueAsync(Func<Task<bool>> condition, string what, TimeSpan? guard = null)
    {
        ArgumentNullException.ThrowIfNull(condition);
        var hang = DateTime.UtcNow + (guard ?? Guard);
        while (!await condition().ConfigureAwait(false))
        {
            if (DateTime.UtcNow > hang)
            {
                Assert.Fail($"never observed: {what}");
            }

            await Task.Delay(1).ConfigureAwait(false);
        }
    }
}
