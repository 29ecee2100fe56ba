namespace CnmSharp.Drivers.Common;

/// <summary>The one way a driver factory hands out a new driver: restore what it persisted, or dispose it when that
/// fails, so a failed start leaves no open socket or running task behind.</summary>
internal static class DriverStart
{
    /// <summary>Runs <paramref name="restore"/> on <paramref name="driver"/> and returns the driver; disposes it and
    /// rethrows when the restore fails.</summary>
    /// <typeparam name="TDriver">The driver's type.</typeparam>
    /// <param name="driver">The driver just constructed.</param>
    /// <param name="restore">Its restore step.</param>
    /// <param name="cancellationToken">Cancels the restore.</param>
    /// <returns>The restored driver.</returns>
    public static async ValueTask<TDriver> RestoreAsync<TDriver>(
        TDriver driver, Func<TDriver, CancellationToken, ValueTask> restore, CancellationToken cancellationToken)
        where TDriver : IAsyncDisposable
    {
        try
        {
            await restore(driver, cancellationToken).ConfigureAwait(false);
            return driver;
        }
        catch
        {
            await driver.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }
}
