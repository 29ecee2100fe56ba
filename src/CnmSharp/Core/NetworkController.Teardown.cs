using System.Collections.Concurrent;
using CnmSharp.Core;
using CnmSharp.Core.Persistence;
using CnmSharp.Diagnostics;
using CnmSharp.Store;

namespace CnmSharp;

/// <summary>
/// Deletes that wait for a driver. An endpoint or network being deleted is first marked in its record
/// (<see cref="EndpointRecord.TearingDown"/>, <see cref="NetworkRecord.TearingDown"/>); the record and its addresses
/// go only once its driver has deleted it. Deleting a namespace hands its interfaces to the kernel, which reaps them in
/// batches after an RCU grace period (tens of milliseconds, far more than the rest of a detach). Waiting for that
/// inside every sandbox delete would serialize the grace periods; instead the sandbox delete marks its endpoints in the
/// same commit that clears their join, hides them at once, and the driver's delete (which returns when the kernel has
/// let go), the record delete and the address release run here, in the background. An address therefore goes back to
/// IPAM only when no device holds it. A driver delete that fails is retried with back-off, a bounded number of times;
/// the record stays marked, so the next start tries again. Requests that need such an address (a specific address, or
/// a full pool) and network deletion wait for the network's pending teardowns.
/// </summary>
public sealed partial class NetworkController
{
    /// <summary>How many background teardowns run at once (each mostly waits for the kernel).</summary>
    private const int TeardownConcurrency = 16;

    /// <summary>How many times a background teardown tries before it leaves the object to the next start.</summary>
    private const int TeardownAttempts = 6;

    /// <summary>The wait after the first failed attempt; it doubles after each, up to <see cref="TeardownMaxRetryDelay"/>.</summary>
    private static readonly TimeSpan TeardownFirstRetryDelay = TimeSpan.FromSeconds(1);

    private static readonly TimeSpan TeardownMaxRetryDelay = TimeSpan.FromSeconds(16);

    /// <summary>Pending teardowns, keyed by the endpoint or network being deleted.</summary>
    private readonly ConcurrentDictionary<object, PendingTeardown> _teardowns = new();
    private readonly SemaphoreSlim _teardownSlots = new(TeardownConcurrency, TeardownConcurrency);

    /// <summary>Ends the back-off waits of background teardowns when the controller stops (an attempt in progress runs
    /// to its end).</summary>
    private readonly CancellationTokenSource _teardownStop = new();

    /// <summary>Endpoints marked for teardown whose driver has not deleted them yet (pending, or given up until the
    /// next start): hidden, but their addresses are theirs.</summary>
    private readonly ConcurrentDictionary<Endpoint, byte> _markedEndpoints = new();

    /// <summary>Endpoints found marked at start, finished by recovery.</summary>
    private readonly List<Endpoint> _recoveredTeardowns = [];

    private int _teardownWaiters;

    /// <summary>
    /// Waits until the endpoints of deleted sandboxes are fully torn down: their drivers have deleted them (for the
    /// bridge driver, the kernel has reaped their interfaces), their records are gone and their addresses are back in
    /// IPAM. A sandbox delete returns before that; a runtime that must see every address free again calls this. A
    /// teardown whose driver keeps failing ends after its last retry, its record still marked.
    /// </summary>
    /// <param name="cancellationToken">Stops the waiting, not the teardowns.</param>
    /// <returns>A task that completes when no teardown is pending.</returns>
    public async ValueTask WaitForTeardownsAsync(CancellationToken cancellationToken = default)
    {
        Interlocked.Increment(ref _teardownWaiters);
        try
        {
            while (!_teardowns.IsEmpty)
            {
                await Task.WhenAll(_teardowns.Values.Select(t => t.Done.Task)).WaitAsync(cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            Interlocked.Decrement(ref _teardownWaiters);
        }
    }

    /// <summary>The number of endpoint teardowns still pending.</summary>
    public int PendingTeardowns => _teardowns.Count;

    /// <summary>The operations waiting right now for pending teardowns (a network's, all of them, or a stop's wait for
    /// running operations and teardowns); tests observe the wait with it.</summary>
    internal int TeardownWaiters => Volatile.Read(ref _teardownWaiters);

    /// <summary>Waits for the pending teardowns of one network; false when there were none.</summary>
    private async ValueTask<bool> WaitForTeardownsAsync(Network network, CancellationToken cancellationToken)
    {
        var pending = _teardowns.Values.Where(t => ReferenceEquals(t.Network, network) && t.Key is Endpoint).Select(t => t.Done.Task).ToArray();
        if (pending.Length == 0)
        {
            return false;
        }

        Interlocked.Increment(ref _teardownWaiters);
        try
        {
            await Task.WhenAll(pending).WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            Interlocked.Decrement(ref _teardownWaiters);
        }

        return true;
    }

    /// <summary>Waits until every pending teardown has made its first attempt (recovery: the ones that failed go on
    /// retrying in the background, their objects kept).</summary>
    private async ValueTask WaitForFirstTeardownAttemptsAsync(CancellationToken cancellationToken) =>
        await Task.WhenAll(_teardowns.Values.Select(t => t.FirstAttempt.Task)).WaitAsync(cancellationToken).ConfigureAwait(false);

    /// <summary>Hides an endpoint whose record is marked <see cref="EndpointRecord.TearingDown"/> and starts its
    /// teardown in the background.</summary>
    private void ScheduleTeardown(Endpoint endpoint)
    {
        endpoint.Deleted = true;
        endpoint.Network.RemoveEndpoint(endpoint);
        _markedEndpoints[endpoint] = 0;
        ScheduleTeardown(endpoint, endpoint.Network, $"endpoint {endpoint.Id}", CoreStore.EndpointKey(endpoint.Network.Id, endpoint.Id), () => endpoint.Version, ct => TeardownEndpointOnceAsync(endpoint, ct));
    }

    /// <summary>Hides a network whose record is marked <see cref="NetworkRecord.TearingDown"/> and retries its delete
    /// in the background.</summary>
    private void ScheduleTeardown(Network network)
    {
        network.Deleting = true;
        ScheduleTeardown(network, network, $"network {network.Id}", CoreStore.NetworkKey(network.Id), () => network.Version, ct => TeardownNetworkOnceAsync(network, ct));
    }

    /// <summary>The one place that starts a teardown task: attempts with back-off until one succeeds or
    /// <see cref="TeardownAttempts"/> failed (then the marked record waits for the next start). Each attempt holds the
    /// state lease (the first one the scheduling operation's), never a back-off wait: other processes work meanwhile,
    /// and a retry that finds the marked record gone or changed (another controller finished it) stops.</summary>
    private void ScheduleTeardown(object key, Network network, string what, string storeKey, Func<long> version, Func<CancellationToken, ValueTask<bool>> attempt)
    {
        var pending = new PendingTeardown(key, network);
        if (!_teardowns.TryAdd(key, pending))
        {
            return;
        }

        // The teardown changes state (driver, record, IPAM) after the operation that scheduled it returns: it keeps
        // a hold on the state lease until it ends.
        _lease.AddHold();
        var holding = true;
        _ = Task.Run(async () =>
        {
            try
            {
                var delay = TeardownFirstRetryDelay;
                for (var attempts = 1; ; attempts++)
                {
                    if (!holding)
                    {
                        await _lease.EnterAsync(exclusive: false, _teardownStop.Token).ConfigureAwait(false);
                        holding = true;
                        if ((await _store.Store.GetAsync(storeKey, _teardownStop.Token).ConfigureAwait(false))?.Version != version())
                        {
                            break; // finished (or changed) by another controller while this one waited
                        }
                    }

                    bool done;
                    // An attempt is not cancelled by a stop (a stop waits for it: the bridge's delete is bounded by
                    // its reap timeout); only the waits between attempts are.
                    await _teardownSlots.WaitAsync(CancellationToken.None).ConfigureAwait(false);
                    try
                    {
                        done = await attempt(CancellationToken.None).ConfigureAwait(false);
                    }
                    finally
                    {
                        _teardownSlots.Release();
                    }

                    pending.FirstAttempt.TrySetResult();
                    if (done)
                    {
                        break;
                    }

                    if (attempts == TeardownAttempts)
                    {
                        Log.TeardownGivenUp(_logger, what, attempts);
                        break;
                    }

                    holding = false;
                    await _lease.ExitAsync().ConfigureAwait(false);
                    await Task.Delay(delay, _time, _teardownStop.Token).ConfigureAwait(false);
                    delay = delay * 2 < TeardownMaxRetryDelay ? delay * 2 : TeardownMaxRetryDelay;
                }
            }
            catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException)
            {
                // The controller stops: the record stays marked and the next start tries again.
            }
            catch (Exception ex)
            {
                Log.TeardownFailed(_logger, ex, what);
            }
            finally
            {
                _teardowns.TryRemove(key, out _);
                pending.FirstAttempt.TrySetResult();
                pending.Done.TrySetResult();
                if (holding)
                {
                    await _lease.ExitAsync().ConfigureAwait(false);
                }
            }
        });
    }

    /// <summary>One attempt at finishing a marked endpoint: the driver deletes it, then its record goes, then its
    /// addresses. False (logged) when the driver or the store failed: the record and the addresses stay.</summary>
    private async ValueTask<bool> TeardownEndpointOnceAsync(Endpoint endpoint, CancellationToken cancellationToken)
    {
        var network = endpoint.Network;
        try
        {
            await network.RegisteredDriver.Driver.DeleteEndpointAsync(network.Id, endpoint.Id, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            Log.DriverDeleteEndpointFailed(_logger, ex, network.Driver, endpoint.Id);
            return false;
        }

        try
        {
            await FinishEndpointDeleteAsync(endpoint, cancellationToken).ConfigureAwait(false);
            return true;
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            Log.TeardownFailed(_logger, ex, $"endpoint {endpoint.Id}");
            return false;
        }
    }

    /// <summary>After the driver deleted an endpoint: its record goes, then its addresses go back to IPAM (an IPAM that
    /// releases by owner: before the record goes, so a crash in between leaves the marked record for the next start).</summary>
    private async ValueTask FinishEndpointDeleteAsync(Endpoint endpoint, CancellationToken cancellationToken)
    {
        var network = endpoint.Network;
        var ipam = await IpamForReleaseAsync(network, cancellationToken).ConfigureAwait(false);
        var byOwner = ipam?.ReleaseByOwner;
        if (byOwner is not null)
        {
            await byOwner.ReleaseOwnerAsync(endpoint.Id, cancellationToken).ConfigureAwait(false);
        }

        await _store.Store.DeleteAsync(CoreStore.EndpointKey(network.Id, endpoint.Id), endpoint.Version, StoreDurability.Relaxed, cancellationToken).ConfigureAwait(false);
        _faults.Hit(FaultPoint.EndpointDeleteRecordRemoved);
        endpoint.Deleted = true;
        network.RemoveEndpoint(endpoint);
        _markedEndpoints.TryRemove(endpoint, out _);
        await UnpublishEndpointAsync(endpoint).ConfigureAwait(false);
        if (ipam is not null && byOwner is null)
        {
            await ReleaseEndpointAddressesAsync(endpoint, ipam.Ipam).ConfigureAwait(false);
        }

        Log.EndpointDeleted(_logger, endpoint.Name, endpoint.Id);
    }

    /// <summary>One attempt at finishing a marked network: the driver deletes it, then its record and its IPAM
    /// reservations go. False (logged) when the driver or the store failed.</summary>
    private async ValueTask<bool> TeardownNetworkOnceAsync(Network network, CancellationToken cancellationToken)
    {
        try
        {
            await network.RegisteredDriver.Driver.DeleteNetworkAsync(network.Id, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            Log.DriverDeleteNetworkFailed(_logger, ex, network.Driver, network.Id);
            return false;
        }

        try
        {
            await FinishNetworkDeleteAsync(network, cancellationToken).ConfigureAwait(false);
            return true;
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            Log.TeardownFailed(_logger, ex, $"network {network.Id}");
            return false;
        }
    }

    /// <summary>After the driver deleted a network: its record goes, then its pools and addresses (an IPAM that releases
    /// by owner: before the record goes, so a crash in between leaves the marked record for the next start).</summary>
    private async ValueTask FinishNetworkDeleteAsync(Network network, CancellationToken cancellationToken)
    {
        var ipam = await IpamForReleaseAsync(network, cancellationToken).ConfigureAwait(false);
        var byOwner = ipam?.ReleaseByOwner;
        if (byOwner is not null)
        {
            await byOwner.ReleaseOwnerAsync(NetworkOwner(network.Id), cancellationToken).ConfigureAwait(false);
        }

        await _store.Store.DeleteAsync(CoreStore.NetworkKey(network.Id), network.Version, cancellationToken).ConfigureAwait(false);
        _faults.Hit(FaultPoint.NetworkDeleteRecordRemoved);
        network.Deleting = true;
        _deletingGlobalNetworks.TryAdd(network.Id, 0);
        try
        {
            _networks.TryRemove(network.Id, out _);
            await FreeNetworkAsync(network).ConfigureAwait(false);
            await UnpublishNetworkAsync(network.Record).ConfigureAwait(false);
        }
        finally
        {
            _deletingGlobalNetworks.TryRemove(network.Id, out _);
        }

        if (ipam is not null && byOwner is null)
        {
            await ReleaseNetworkIpamAsync(network, ipam.Ipam).ConfigureAwait(false);
        }

        Log.NetworkDeleted(_logger, network.Name, network.Id);
    }

    /// <summary>Writes a network's record with its teardown mark set or cleared.</summary>
    private async ValueTask MarkNetworkAsync(Network network, bool tearingDown, CancellationToken cancellationToken)
    {
        var record = network.Record with { TearingDown = tearingDown };
        network.Version = await _store.Store.PutAsync(CoreStore.NetworkKey(network.Id), CoreStore.Serialize(record, CoreJsonContext.Default.NetworkRecord), network.Version, cancellationToken).ConfigureAwait(false);
        network.Record = record;
    }

    /// <summary>Writes an endpoint's record with its teardown mark set or cleared.</summary>
    private async ValueTask MarkEndpointAsync(Endpoint endpoint, bool tearingDown, CancellationToken cancellationToken)
    {
        var record = endpoint.Record with { TearingDown = tearingDown };
        endpoint.Version = await _store.Store.PutAsync(CoreStore.EndpointKey(endpoint.Network.Id, endpoint.Id), CoreStore.Serialize(record, CoreJsonContext.Default.EndpointRecord), endpoint.Version, StoreDurability.Relaxed, cancellationToken).ConfigureAwait(false);
        endpoint.Record = record;
    }

    /// <summary>
    /// Recovery of marked deletes, after the intents: sandboxes whose delete was interrupted are deleted (their
    /// endpoints leave and are marked), then every marked endpoint and network gets its first attempt; the ones whose
    /// driver still fails go on retrying in the background, their records, pools and addresses kept.
    /// </summary>
    private async ValueTask RecoverMarkedDeletesAsync(CancellationToken cancellationToken)
    {
        foreach (var sandbox in _sandboxes.Values.Where(s => s.Record.TearingDown).ToArray())
        {
            Log.RecoveringDelete(_logger, "sandbox", sandbox.Id);
            try
            {
                await DeleteSandboxCoreAsync(sandbox, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                // Visible, for the user to delete again; the mark stays for the next start.
                sandbox.Deleting = false;
                Log.RollbackStepFailed(_logger, ex, $"finish the delete of sandbox {sandbox.Id}", "recovery");
            }
        }

        foreach (var endpoint in _recoveredTeardowns)
        {
            Log.RecoveringDelete(_logger, "endpoint", endpoint.Id);
            ScheduleTeardown(endpoint);
        }

        _recoveredTeardowns.Clear();
        await WaitForFirstTeardownAttemptsAsync(cancellationToken).ConfigureAwait(false);
        foreach (var network in _networks.Values.Where(n => n.Record.TearingDown).ToArray())
        {
            Log.RecoveringDelete(_logger, "network", network.Id);
            ScheduleTeardown(network);
        }

        await WaitForFirstTeardownAttemptsAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>A teardown in progress.</summary>
    private sealed class PendingTeardown(object key, Network network)
    {
        public object Key { get; } = key;

        public Network Network { get; } = network;

        public TaskCompletionSource FirstAttempt { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public TaskCompletionSource Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    /// <summary>
    /// The IPAM that releases a network's reservations, resolved: a plugin IPAM is activated here when this teardown is
    /// its first use since the start (a teardown recovery resumed), so its reservations are not skipped. Null when the
    /// network has no IPAM or its IPAM is unknown (a plugin that is gone: nothing can be released). A plugin that
    /// exists but does not answer fails the teardown, which keeps the record and is retried.
    /// </summary>
    private async ValueTask<RegisteredIpam?> IpamForReleaseAsync(Network network, CancellationToken cancellationToken)
    {
        if (network.IpamDriver is not { } name)
        {
            return null;
        }

        try
        {
            return await ResolveIpamAsync(name, cancellationToken).ConfigureAwait(false);
        }
        catch (CnmNotFoundException ex) when (ex.Code == CnmErrorCodes.UnknownIpamDriver)
        {
            Log.ReleaseFailed(_logger, ex, $"the reservations of network {network.Id}");
            return null;
        }
    }
}
