using System.Text.Json.Serialization.Metadata;
using CnmSharp.Core;
using CnmSharp.Core.Persistence;
using CnmSharp.Diagnostics;
using CnmSharp.Store;

namespace CnmSharp;

/// <summary>A store record that loading or recovery could not process, set aside under its own key.</summary>
/// <param name="Key">The record's original store key.</param>
/// <param name="Reason">Why it was set aside.</param>
/// <param name="Time">When.</param>
/// <param name="Value">The record's bytes as they were.</param>
public sealed record QuarantinedRecord(string Key, string Reason, DateTimeOffset Time, ReadOnlyMemory<byte> Value);

/// <summary>
/// The controller's view of a state that other processes and controllers may share: the state lease, the reload of
/// what others changed, recovery of what dead owners left, and quarantine.
/// </summary>
public sealed partial class NetworkController
{
    private readonly StateLease _lease;

    /// <summary>The store revision when this controller last let the state lock go (-1: never).</summary>
    private long _seenRevision = -1;

    /// <summary>
    /// Brings this controller's view up to date with what other processes or controllers sharing its store did, and
    /// finishes or rolls back what any of them left half done when it died. Mutating operations do this by themselves
    /// before they act; call it before reading (<see cref="Networks"/>, <see cref="Sandboxes"/>, the Find methods) in
    /// a long-lived controller that shares its state.
    /// </summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when the view is current.</returns>
    public ValueTask RefreshAsync(CancellationToken cancellationToken = default) =>
        RunAsync(RefreshOperation, () => ValueTask.CompletedTask, cancellationToken);

    /// <summary>
    /// Runs recovery now, alone (no other operation of this controller runs meanwhile, and other processes wait):
    /// interrupted operations whose owner is gone are finished or rolled back, sandboxes whose namespace is gone are
    /// removed, and IPAM allocations that no object owns are released. A record that recovery cannot process is set
    /// aside (see <see cref="GetQuarantinedRecordsAsync"/>). Each object it changes is logged as a warning.
    /// </summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when recovery has run.</returns>
    public ValueTask RecoverAsync(CancellationToken cancellationToken = default) =>
        RunAsync("state.recover", exclusive: true, () => RecoverCoreAsync(cancellationToken), cancellationToken);

    /// <summary>The records that loading or recovery set aside because they could not be processed. Nothing acts on
    /// them; inspect them, then discard each with <see cref="DiscardQuarantinedRecordAsync"/> once repaired by hand.</summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The quarantined records, ordered by key.</returns>
    public async ValueTask<IReadOnlyList<QuarantinedRecord>> GetQuarantinedRecordsAsync(CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        var result = new List<QuarantinedRecord>();
        foreach (var entry in await _store.Store.ListAsync(CoreStore.QuarantinePrefix, cancellationToken).ConfigureAwait(false))
        {
            var record = CoreStore.Deserialize(entry, CoreJsonContext.Default.QuarantineRecord);
            result.Add(new QuarantinedRecord(record.Key, record.Reason, record.Time, record.Value));
        }

        return result;
    }

    /// <summary>Discards a quarantined record (an explicit repair: the record is gone for good).</summary>
    /// <param name="key">The record's original key, as <see cref="QuarantinedRecord.Key"/> gives it.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>True when it was there.</returns>
    public ValueTask<bool> DiscardQuarantinedRecordAsync(string key, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        return RunAsync("state.discard-quarantined", () => _store.Store.DeleteAsync(CoreStore.QuarantineKey(key), StoreVersion.Any, cancellationToken), cancellationToken);
    }

    /// <summary>Read-only: records that could not be read when the state was last read.</summary>
    private int _unreadableSkipped;

    /// <summary>Read-only: see <see cref="RecoveryPending"/>.</summary>
    private bool _recoveryPending;

    /// <summary>
    /// For a read-only controller (<see cref="CnmOptions.ReadOnly"/>): true when, as last read, the state holds work
    /// that a read-write start would finish or roll back: an operation left half done by a process that is no longer
    /// running (an intent; the read holds the state lock, so no running process owns one), an object marked for
    /// deletion, a record that cannot be read, or a sandbox whose namespace is gone. What the controller shows is then
    /// the committed state before that recovery; open a read-write controller (or call <see cref="RecoverAsync"/> on
    /// one) to have it finished. Always false for a read-write controller, whose start and operations recover.
    /// </summary>
    public bool RecoveryPending => _recoveryPending;

    /// <summary>Read-only: finds whether a read-write start would have recovery work (<see cref="RecoveryPending"/>).
    /// Reads the intents and checks each sandbox's namespace file; changes nothing.</summary>
    private async ValueTask CheckRecoveryPendingAsync(CancellationToken cancellationToken)
    {
        var pending = _unreadableSkipped > 0
            || _recoveredTeardowns.Count > 0
            || _networks.Values.Any(n => n.Record.TearingDown)
            || _sandboxes.Values.Any(s => s.Record.TearingDown)
            || (await _store.Store.ListAsync(CoreStore.IntentPrefix, cancellationToken).ConfigureAwait(false)).Count > 0;
        foreach (var sandbox in _sandboxes.Values)
        {
            if (pending)
            {
                break;
            }

            pending = !sandbox.UsesHostNamespace && !await _sandboxNetworking.NamespaceExistsAsync(sandbox.Key, cancellationToken).ConfigureAwait(false);
        }

        // Endpoints marked for teardown stay hidden; a read-write controller finishes them.
        _recoveredTeardowns.Clear();
        _recoveryPending = pending;
    }

    /// <summary>Runs when this controller takes the state lock, before any operation: if anyone wrote since it let go,
    /// reload the view (drivers and IPAMs first, then the CNM objects) and recover what dead owners left.</summary>
    private async ValueTask OnStateAcquiredAsync(CancellationToken cancellationToken)
    {
        if (!_loaded)
        {
            return; // the start loads everything itself
        }

        var revision = await _store.Store.GetRevisionAsync(cancellationToken).ConfigureAwait(false);
        if (revision == _seenRevision)
        {
            return;
        }

        Log.Reloading(_logger, _seenRevision, revision);
        _lease.MarkScope();
        if (_readOnly)
        {
            // Read the records again, nothing more: no driver reload (none was created), no recovery.
            _unreadableSkipped = 0;
            var markedEndpoints = await SyncFromStoreAsync(cancellationToken).ConfigureAwait(false);
            await CheckRecoveryPendingAsync(cancellationToken).ConfigureAwait(false);
            _recoveryPending |= markedEndpoints;
            return;
        }

        foreach (var reloadable in _registry.Drivers.Select(d => d.Driver).OfType<IStateReloadable>().Concat(_registry.Ipams.Select(i => i.Ipam).OfType<IStateReloadable>()))
        {
            await reloadable.ReloadAsync(cancellationToken).ConfigureAwait(false);
        }

        var foundDead = await SyncFromStoreAsync(cancellationToken).ConfigureAwait(false);
        foundDead |= (await _store.Store.ListAsync(CoreStore.IntentPrefix, cancellationToken).ConfigureAwait(false)).Count > 0;
        if (foundDead)
        {
            await RecoverCoreAsync(cancellationToken).ConfigureAwait(false);
        }

        // Another process joined, left or deleted: the resolvers follow.
        await UpdateDnsAsync(cancellationToken).ConfigureAwait(false);
    }

    private async ValueTask OnStateReleasingAsync()
    {
        try
        {
            _seenRevision = await _store.Store.GetRevisionAsync(CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is CnmException or ObjectDisposedException)
        {
            _seenRevision = -1; // unknown: the next hold reloads
        }
    }

    /// <summary>
    /// Makes the in-memory objects match the store, in place: objects others created appear, objects others deleted
    /// disappear (a caller holding one gets "not found"), changed records replace the old ones, and sandbox membership
    /// follows the endpoints' joins. Runs with no operation of this controller in flight. Returns true when it found an
    /// endpoint left marked for teardown by a controller that died (it schedules that teardown).
    /// </summary>
    private async ValueTask<bool> SyncFromStoreAsync(CancellationToken cancellationToken)
    {
        var networkRecords = await ListNetworksAsync(cancellationToken).ConfigureAwait(false);
        var sandboxRecords = await ListSandboxesAsync(cancellationToken).ConfigureAwait(false);
        var endpointRecords = await ListEndpointsAsync(CoreStore.EndpointPrefix, cancellationToken).ConfigureAwait(false);

        // Objects marked for deletion by a controller that is not running (a marked sandbox or network whose delete
        // this one is not retrying) are finished by recovery, which the caller runs when this returns true.
        var pending = _teardowns.Keys.ToHashSet();
        var foundDead = sandboxRecords.Any(s => s.Record.TearingDown && !(_sandboxes.TryGetValue(s.Record.Id, out var mine) && mine.Deleting))
            || networkRecords.Any(n => n.Record.TearingDown && !(_networks.TryGetValue(n.Record.Id, out var mine) && pending.Contains(mine)));

        // Networks: created, deleted, or marked for deletion.
        var storedNetworks = networkRecords.Select(n => n.Record.Id).ToHashSet(StringComparer.Ordinal);
        _unloadedNetworks.Clear();
        foreach (var (record, version) in networkRecords)
        {
            if (_networks.TryGetValue(record.Id, out var known))
            {
                if (!pending.Contains(known))
                {
                    known.Record = record;
                    known.Version = version;
                }
            }
            else if (LoadedNetwork(record, version) is { } loaded)
            {
                _networks[record.Id] = loaded;
            }
            else
            {
                _unloadedNetworks.Add((record, version));
            }
        }

        foreach (var gone in _networks.Values.Where(n => !storedNetworks.Contains(n.Id)).ToArray())
        {
            gone.Deleting = true;
            foreach (var endpoint in gone.Endpoints)
            {
                endpoint.Deleted = true;
            }

            _networks.TryRemove(gone.Id, out _);
        }

        // Sandboxes.
        var storedSandboxes = sandboxRecords.Select(s => s.Record.Id).ToHashSet(StringComparer.Ordinal);
        foreach (var (record, version) in sandboxRecords)
        {
            if (_sandboxes.TryGetValue(record.Id, out var known))
            {
                known.Record = record;
                known.Version = version;
            }
            else
            {
                _sandboxes[record.Id] = new Sandbox(this, record, version);
            }

            _containerSandboxes[record.ContainerId] = record.Id;
        }

        foreach (var gone in _sandboxes.Values.Where(s => !storedSandboxes.Contains(s.Id)).ToArray())
        {
            gone.Deleting = true;
            _sandboxes.TryRemove(gone.Id, out _);
            _containerSandboxes.TryRemove(new KeyValuePair<string, string>(gone.ContainerId, gone.Id));
        }

        // Endpoints, and the sandboxes they are joined to.
        var pendingTeardowns = pending.OfType<Endpoint>().Select(e => e.Id).ToHashSet(StringComparer.Ordinal);
        var live = new Dictionary<string, List<Endpoint>>(StringComparer.Ordinal);
        var storedEndpoints = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (record, version) in endpointRecords)
        {
            if (!_networks.TryGetValue(record.NetworkId, out var network))
            {
                continue; // its driver is not registered: the network is not loaded
            }

            storedEndpoints.Add(record.Id);
            var known = network.FindEndpointById(record.Id);
            if (record.TearingDown)
            {
                if (known is not null)
                {
                    network.RemoveEndpoint(known);
                    known.Record = record;
                    known.Version = version;
                }

                if (_readOnly)
                {
                    foundDead = true; // hidden; a read-write controller finishes it
                }
                else if (!pendingTeardowns.Contains(record.Id))
                {
                    Log.AdoptedTeardown(_logger, record.Id, record.NetworkId);
                    ScheduleTeardown(known ?? new Endpoint(network, record, version));
                    foundDead = true;
                }

                continue;
            }

            if (known is null)
            {
                known = new Endpoint(network, record, version);
                network.TryAddEndpoint(known);
            }
            else
            {
                known.Record = record;
                known.Version = version;
            }

            if (record.Join is { } join)
            {
                if (!live.TryGetValue(join.SandboxId, out var list))
                {
                    live[join.SandboxId] = list = [];
                }

                list.Add(known);
            }
        }

        foreach (var network in _networks.Values)
        {
            foreach (var gone in network.Endpoints.Where(e => !storedEndpoints.Contains(e.Id)))
            {
                gone.Deleted = true;
                network.RemoveEndpoint(gone);
            }
        }

        foreach (var sandbox in _sandboxes.Values)
        {
            sandbox.SetEndpoints(live.GetValueOrDefault(sandbox.Id) ?? []);
        }

        return foundDead;
    }

    /// <summary>Rolls back every intent in the store that no running operation of this controller owns. Called with
    /// the state lock held, so their owners are not running: dead, or idle after a failure that left the intent. An
    /// intent whose rollback fails is set aside, so that it never stops a controller from starting.</summary>
    private async ValueTask RecoverIntentsAsync(CancellationToken cancellationToken)
    {
        foreach (var (intent, version) in await ListTolerantAsync(CoreStore.IntentPrefix, CoreJsonContext.Default.IntentRecord, (key, r) => KeyNames(key, CoreStore.IntentKey(r.Id)), cancellationToken).ConfigureAwait(false))
        {
            if (_store.LiveIntents.ContainsKey(intent.Id))
            {
                continue;
            }

            Log.RollingBackIntent(_logger, intent.Kind.ToString(), intent.Id, intent.Owner?.ToString() ?? "an unknown owner");
            try
            {
                await RollbackAsync(intent, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                await QuarantineAsync(CoreStore.IntentKey(intent.Id), version, "its rollback failed: " + ex.Message, cancellationToken).ConfigureAwait(false);
                continue;
            }

            await _store.Store.DeleteAsync(CoreStore.IntentKey(intent.Id), version, cancellationToken).ConfigureAwait(false);
        }
    }

    private ValueTask<List<(NetworkRecord Record, long Version)>> ListNetworksAsync(CancellationToken cancellationToken) =>
        ListTolerantAsync(CoreStore.NetworkPrefix, CoreJsonContext.Default.NetworkRecord, (key, r) => KeyNames(key, CoreStore.NetworkKey(r.Id)), cancellationToken);

    private ValueTask<List<(EndpointRecord Record, long Version)>> ListEndpointsAsync(string prefix, CancellationToken cancellationToken) =>
        ListTolerantAsync(prefix, CoreJsonContext.Default.EndpointRecord, (key, r) => KeyNames(key, CoreStore.EndpointKey(r.NetworkId, r.Id)), cancellationToken);

    private ValueTask<List<(SandboxRecord Record, long Version)>> ListSandboxesAsync(CancellationToken cancellationToken) =>
        ListTolerantAsync(CoreStore.SandboxPrefix, CoreJsonContext.Default.SandboxRecord, (key, r) => KeyNames(key, CoreStore.SandboxKey(r.Id)) ?? CheckSandboxKey(r), cancellationToken);

    private static string? KeyNames(string key, string expected) =>
        string.Equals(key, expected, StringComparison.Ordinal) ? null : $"the record names another key ({expected})";

    /// <summary>A sandbox's namespace path is never taken from the store on trust: it must be exactly the path this
    /// controller gives a sandbox of that id (inside its run directory), or its host namespace.</summary>
    private string? CheckSandboxKey(SandboxRecord record)
    {
        if (!Ids.IsFullId(record.Id))
        {
            return "the sandbox id is not 64 lowercase hexadecimal digits";
        }

        // Container mode: the namespace is the one its maker got (the ids are checked as the sandbox's own is).
        if ((record.NetworkSandboxId is { } maker && !Ids.IsFullId(maker)) || (record.SharedFrom is { } from && !Ids.IsFullId(from)))
        {
            return "the id of the sandbox whose namespace it shares is not 64 lowercase hexadecimal digits";
        }

        var expected = record.UsesHostNamespace ? _options.HostNamespacePath ?? OwnNamespaceKey : SandboxKeyOf(record.NetworkSandboxId ?? record.Id);
        return string.Equals(record.Key, expected, StringComparison.Ordinal)
            ? null
            : $"its namespace path \"{record.Key}\" is not the one this controller gives it (\"{expected}\")";
    }

    /// <summary>The namespace path of a sandbox that has its own namespace.</summary>
    private string SandboxKeyOf(string sandboxId) => Path.Combine(_options.RunDirectory, "netns", Ids.Short(sandboxId));

    /// <summary>Lists and reads records, setting aside those that cannot be read or fail <paramref name="check"/>
    /// (which returns the reason, or null when the record is sound).</summary>
    private async ValueTask<List<(T Record, long Version)>> ListTolerantAsync<T>(string prefix, JsonTypeInfo<T> info, Func<string, T, string?> check, CancellationToken cancellationToken)
    {
        var entries = await _store.Store.ListAsync(prefix, cancellationToken).ConfigureAwait(false);
        var result = new List<(T, long)>(entries.Count);
        foreach (var entry in entries)
        {
            string? reason;
            T? record = default;
            try
            {
                record = CoreStore.Deserialize(entry, info);
                reason = check(entry.Key, record);
            }
            catch (CnmInternalException ex)
            {
                reason = ex.Reason;
            }

            if (reason is null)
            {
                result.Add((record!, entry.Version));
            }
            else if (_readOnly)
            {
                // Not shown, and left where it is: a read-write controller sets it aside.
                _unreadableSkipped++;
                Log.SkippedUnreadableRecord(_logger, entry.Key, reason);
            }
            else
            {
                await QuarantineAsync(entry.Key, entry.Version, reason, cancellationToken).ConfigureAwait(false);
            }
        }

        return result;
    }

    /// <summary>Moves a record aside (atomically: the quarantine copy is written and the record deleted in one
    /// commit), with a warning. A record changed meanwhile is left where it is.</summary>
    private async ValueTask QuarantineAsync(string key, long version, string reason, CancellationToken cancellationToken)
    {
        var entry = await _store.Store.GetAsync(key, cancellationToken).ConfigureAwait(false);
        if (entry is null || entry.Version != version)
        {
            return;
        }

        var quarantineKey = CoreStore.QuarantineKey(key);
        var record = new QuarantineRecord { Key = key, Value = entry.Value.ToArray(), Reason = reason, Time = _time.GetUtcNow() };
        try
        {
            await _store.Store.CommitAsync(
                [
                    StoreOperation.Put(quarantineKey, CoreStore.Serialize(record, CoreJsonContext.Default.QuarantineRecord)),
                    StoreOperation.Delete(key, version),
                ],
                cancellationToken).ConfigureAwait(false);
            Log.Quarantined(_logger, key, reason, quarantineKey);
        }
        catch (CnmConflictException)
        {
            // Changed by someone in between: it is theirs now.
        }
    }
}
