namespace CnmSharp.Testing;

/// <summary>
/// A machine-wide lock for the tests that need the machine's CPU to themselves: the kill harness (hundreds of child
/// controllers) and the stress test (a throughput count). CI runs the test projects in parallel on 2 cores; when these
/// two overlapped, the stress test's count fell from about 2,000 to 500 operations. The lock is an exclusive lock on a
/// file in the temporary directory (<see cref="FileShare.None"/>, which .NET takes with <c>flock</c> on Linux), so it is
/// released when the holder disposes it or its process dies.
/// </summary>
public static class HeavyTestLock
{
    private static readonly string s_path = Path.Combine(Path.GetTempPath(), "cnmsharp-heavy-tests.lock");

    /// <summary>Waits for the lock; fails (<see cref="TimeoutException"/>) when another holder keeps it longer than
    /// <paramref name="timeout"/>.</summary>
    /// <param name="timeout">How long to wait.</param>
    /// <returns>The lock; dispose it to release.</returns>
    public static async Task<IDisposable> AcquireAsync(TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            try
            {
                return new FileStream(s_path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(250));
            }
            catch (IOException ex)
            {
                throw new TimeoutException($"the heavy-test lock {s_path} was held for more than {timeout}", ex);
            }
        }
    }
}
