using System.Collections.Concurrent;
using CnmSharp.Core;
using CnmSharp.Core.Persistence;
using CnmSharp.Diagnostics;

namespace CnmSharp;

/// <summary>
/// Endpoint teardown after a sandbox delete. Deleting a namespace hands its interfaces to the kernel, which reaps them
/// in batches after an RCU grace period (tens of milliseconds, far more than the rest of a detach). Waiting for that
/// inside every sandbox delete would serialize the grace periods; instead the sandbox delete marks its endpoints
/// <see cref="EndpointRecord.TearingDown"/> in the same commit that clears their join, hides them at once, and the
/// driver's delete (which returns when the kernel has let go), the record delete and the address release run here,
/// in the background. An address therefore goes back to IPAM only when no device holds it. Requests that need such an
/// address (a specific address, or a full pool) and network deletion wait for the network's pending teardowns;
/// a crash leaves marked records that the next start finishes.
/// </summary>
public sealed partial class NetworkController
{
    /// <summary>How many background teardowns run at once (each mostly waits for the kernel).</summary>
    private const int TeardownConcurrency = 16;

    private readonly ConcurrentDictionary<Endpoint, Task> _teardowns = new();
    private readonly SemaphoreSlim _teardownSlots = new(TeardownConcurrency, TeardownConcurrency);

    /// <summary>Endpoints found marked at start, finished by recovery.</summary>
    private readonly List<Endpoint> _recoveredTeardowns = [];

    /// <summary>
    /// Waits until the endpoints of deleted sandboxes are fully torn down: their drivers have deleted them (for the
    /// bridge driver, the kernel has reaped their interfaces), their records are gone and their addresses are back in
    /// IPAM. A sandbox delete returns before that; a runtime that must see every address free again calls this.
    /// </summary>
    /// <param name="cancellationToken">Stops the waiting, not the teardowns.</param>
    /// <returns>A task that completes when no teardown is pending.</returns>
    public async ValueTask WaitForTeardownsAsync(CancellationToken cancellationToken = default)
    {
        while (!_teardowns.IsEmpty)
        {
            await Task.WhenAll(_teardowns.Values).WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>The number of endpoint teardowns still pending.</summary>
    public int PendingTeardowns => _teardowns.Count;

    /// <summary>Waits for the pending teardowns of one network; false when there were none.</summary>
    private async ValueTask<bool> WaitForTeardownsAsync(Network network, CancellationToken cancellationToken)
    {
        var pending = _teardowns.Where(t => ReferenceEquals(t.Key.Network, network)).Select(t => t.Value).ToArray();
        if (pending.Length == 0)
        {
            return false;
        }

        await Task.WhenAll(pending).WaitAsync(cancellationToken).ConfigureAwait(false);
        return true;
    }

    /// <summary>Hides an endpoint whose record is marked <see cref="EndpointRecord.TearingDown"/> and starts its
    /// teardown in the background.</summary>
    private void ScheduleTeardown(Endpoint endpoint)
    {
        endpoint.Deleted = true;
        endpoint.Network.RemoveEndpoint(endpoint);
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _teardowns[endpoint] = done.Task;

        // The teardown changes state (driver, record, IPAM) after the operation that scheduled it returns: it keeps
        // a hold on the state lease until it ends.
        _lease.AddHold();
        _ = Task.Run(async () =>
        {
            try
            {
                await TeardownAsync(endpoint, CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                Log.TeardownFailed(_logger, ex, endpoint.Id);
            }
            finally
            {
                _teardowns.TryRemove(endpoint, out _);
                done.TrySetResult();
                await _lease.ExitAsync().ConfigureAwait(false);
            }
        });
    }

    /// <summary>Finishes one marked endpoint: the driver deletes it, then its record goes, then its addresses.</summary>
    private async ValueTask TeardownAsync(Endpoint endpoint, CancellationToken cancellationToken)
    {
        var network = endpoint.Network;
        await _teardownSlots.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            try
            {
                await network.RegisteredDriver.Driver.DeleteEndpointAsync(network.Id, endpoint.Id, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                Log.DriverDeleteEndpointFailed(_logger, ex, network.Driver, endpoint.Id);
            }

            await _store.Store.DeleteAsync(CoreStore.EndpointKey(network.Id, endpoint.Id), endpoint.Version, cancellationToken).ConfigureAwait(false);
            await ReleaseEndpointAddressesAsync(endpoint).ConfigureAwait(false);
            Log.EndpointDeleted(_logger, endpoint.Name, endpoint.Id);
        }
        finally
        {
            _teardownSlots.Release();
        }
    }
}
