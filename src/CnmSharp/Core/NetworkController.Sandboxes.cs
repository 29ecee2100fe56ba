using CnmSharp.Core;
using CnmSharp.Core.Persistence;
using CnmSharp.Diagnostics;
using CnmSharp.Drivers;
using CnmSharp.Sandboxes;
using CnmSharp.Sandboxes.Files;
using CnmSharp.Store;

namespace CnmSharp;

public sealed partial class NetworkController
{
    /// <summary>The key of sandboxes that use the host namespace when the controller runs in its own.</summary>
    private const string OwnNamespaceKey = "/proc/self/ns/net";

    /// <summary>Creates a sandbox for a container: a new network namespace, or the host's in host mode.</summary>
    /// <param name="containerId">The container's id; one sandbox per container.</param>
    /// <param name="options">Options.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The sandbox.</returns>
    public ValueTask<Sandbox> CreateSandboxAsync(string containerId, SandboxCreateOptions? options = null, CancellationToken cancellationToken = default) =>
        RunAsync("sandbox.create", async () =>
        {
            options ??= new SandboxCreateOptions();
            Validation.SandboxCreate(containerId, options);

            // The container is reserved without the controller gate: creating a namespace and writing files is the
            // slow part of an attach, and sandboxes of different containers share nothing.
            if (!_containerSandboxes.TryAdd(containerId, string.Empty))
            {
                throw new CnmConflictException(CnmErrorCodes.SandboxExists, $"container \"{containerId}\"", "the container already has a sandbox");
            }

            var created = false;
            try
            {
                var id = Ids.NewId();
                if (options.ShareNetworkWith is { } shared)
                {
                    var sharer = await CreateSharingSandboxAsync(id, containerId, shared, cancellationToken).ConfigureAwait(false);
                    created = true;
                    return sharer;
                }

                var key = options.UseHostNamespace
                    ? _options.HostNamespacePath ?? OwnNamespaceKey
                    : SandboxKeyOf(id);
                var record = new SandboxRecord
                {
                    Id = id,
                    ContainerId = containerId,
                    Key = key,
                    UsesHostNamespace = options.UseHostNamespace,
                    Hostname = options.Hostname,
                    DomainName = options.DomainName,
                    ExtraHosts = options.ExtraHosts.Select(h => new[] { h.Name, h.Address.ToString() }).ToList(),
                    DnsServers = [.. options.DnsServers],
                    DnsSearch = [.. options.DnsSearch],
                    DnsOptions = [.. options.DnsOptions],
                };

                // The record goes first: a crash before the namespace exists leaves a sandbox whose namespace is
                // missing, which the next start removes.
                var version = await _store.Store.PutAsync(CoreStore.SandboxKey(id), CoreStore.Serialize(record, CoreJsonContext.Default.SandboxRecord), StoreVersion.Absent, StoreDurability.Relaxed, cancellationToken).ConfigureAwait(false);
                try
                {
                    _faults.Hit(FaultPoint.SandboxCreateRecorded);
                    if (!options.UseHostNamespace)
                    {
                        await _sandboxNetworking.CreateNamespaceAsync(key, cancellationToken).ConfigureAwait(false);
                        _faults.Hit(FaultPoint.SandboxCreateNamespaceCreated);
                    }

                    await _sandboxFiles.CreateAsync(SandboxFilesDirectory(id), FileOptions(record, enableIPv6: false), cancellationToken).ConfigureAwait(false);
                    _faults.Hit(FaultPoint.SandboxCreateFilesWritten);
                }
                catch
                {
                    await UndoAsync("sandbox.create", [
                        ("delete files", async () => await _sandboxFiles.DeleteAsync(SandboxFilesDirectory(id), CancellationToken.None).ConfigureAwait(false)),
                        ("delete namespace", () => options.UseHostNamespace ? ValueTask.CompletedTask : _sandboxNetworking.DeleteNamespaceAsync(key, CancellationToken.None)),
                        ("delete record", async () => await _store.Store.DeleteAsync(CoreStore.SandboxKey(id), version, StoreDurability.Relaxed, CancellationToken.None).ConfigureAwait(false)),
                    ]).ConfigureAwait(false);
                    throw;
                }

                var sandbox = new Sandbox(this, record, version);
                _sandboxes[id] = sandbox;
                _containerSandboxes[containerId] = id;
                created = true;
                Log.SandboxCreated(_logger, id, containerId, key);
                return sandbox;
            }
            finally
            {
                if (!created)
                {
                    _containerSandboxes.TryRemove(new KeyValuePair<string, string>(containerId, string.Empty));
                }
            }
        }, cancellationToken);

    /// <summary>Deletes a sandbox: every endpoint leaves (without paying for per-interface deletion: the namespace
    /// takes its interfaces with it) and is marked for teardown, the namespace goes, then the endpoints are torn down
    /// in the background (see <see cref="WaitForTeardownsAsync(CancellationToken)"/>).</summary>
    internal ValueTask DeleteSandboxAsync(Sandbox sandbox, CancellationToken cancellationToken) =>
        RunAsync("sandbox.delete", async () =>
        {
            ArgumentNullException.ThrowIfNull(sandbox);
            await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                if (!_sandboxes.ContainsKey(sandbox.Id))
                {
                    throw new CnmNotFoundException(CnmErrorCodes.NoSuchSandbox, sandbox.ToString(), "no such sandbox");
                }

                if (sandbox.Deleting)
                {
                    throw new CnmConflictException(CnmErrorCodes.BeingDeleted, sandbox.ToString(), "the sandbox is being deleted");
                }

                sandbox.Deleting = true;
            }
            finally
            {
                _gate.Release();
            }

            try
            {
                await DeleteSandboxCoreAsync(sandbox, cancellationToken).ConfigureAwait(false);
            }
            catch
            {
                // Visible again, for the caller to retry; if its record is marked, the next start finishes it too.
                sandbox.Deleting = false;
                throw;
            }
        }, cancellationToken);

    /// <summary>
    /// The body of a sandbox delete, for a sandbox already set <see cref="Sandbox.Deleting"/>: the record is marked
    /// first (a crash from here on is finished at the next start), every endpoint leaves and is marked for teardown,
    /// the namespace goes, then the files, then the record; the endpoints' teardowns start.
    /// </summary>
    private async ValueTask DeleteSandboxCoreAsync(Sandbox sandbox, CancellationToken cancellationToken)
    {
        // Snapshot under the gate: a join that passed its checks before Deleting was set may still be
        // running and adds its endpoint when it finishes.
        await sandbox.Gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        var left = new List<Endpoint>();

        // Container mode: while another sandbox uses the namespace, it stays, so the endpoints' interfaces must
        // really be removed from it (the namespace deletion does not reap them), and so must their hosts lines.
        var keepNamespace = LeaveNamespace(sandbox);
        try
        {
            if (!sandbox.Record.TearingDown)
            {
                var marked = sandbox.Record with { TearingDown = true };
                sandbox.Version = await _store.Store.PutAsync(CoreStore.SandboxKey(sandbox.Id), CoreStore.Serialize(marked, CoreJsonContext.Default.SandboxRecord), sandbox.Version, StoreDurability.Relaxed, cancellationToken).ConfigureAwait(false);
                sandbox.Record = marked;
                _faults.Hit(FaultPoint.SandboxDeleteMarked);
            }

            foreach (var endpoint in sandbox.Endpoints)
            {
                var movedIn = endpoint.Record.Join is { CreatedInSandbox: false, SourceName: not null };
                await LeaveLockedAsync(endpoint, sandbox, removeInterface: movedIn || keepNamespace, sandboxGoing: true, recovered: null, cancellationToken).ConfigureAwait(false);
                left.Add(endpoint);
                _faults.Hit(FaultPoint.SandboxDeleteEndpointLeft);
            }

            if (keepNamespace)
            {
                var addresses = left.SelectMany(e => new[] { e.Record.Address, e.Record.AddressIPv6 }).OfType<string>().Select(a => CidrAddress.Parse(a).Address).ToArray();
                if (addresses.Length > 0)
                {
                    await _sandboxFiles.RemoveHostEntriesAsync(sandbox.FilesDirectory, addresses, cancellationToken).ConfigureAwait(false);
                }
            }
            else
            {
                if (!sandbox.UsesHostNamespace)
                {
                    await _sandboxNetworking.DeleteNamespaceAsync(sandbox.Key, cancellationToken).ConfigureAwait(false);
                    _faults.Hit(FaultPoint.SandboxDeleteNamespaceDeleted);
                }

                await _sandboxFiles.DeleteAsync(sandbox.FilesDirectory, cancellationToken).ConfigureAwait(false);
                _faults.Hit(FaultPoint.SandboxDeleteFilesDeleted);
            }

            await _store.Store.DeleteAsync(CoreStore.SandboxKey(sandbox.Id), sandbox.Version, StoreDurability.Relaxed, cancellationToken).ConfigureAwait(false);
            _sandboxes.TryRemove(sandbox.Id, out _);
            _containerSandboxes.TryRemove(new KeyValuePair<string, string>(sandbox.ContainerId, sandbox.Id));
        }
        catch
        {
            RejoinNamespace(sandbox);
            throw;
        }
        finally
        {
            sandbox.Gate.Release();

            // Each leave committed its endpoint as tearing down; the rest happens once the kernel has reaped
            // the interfaces with the namespace (or, if the namespace could not be deleted, the driver deletes
            // them itself).
            foreach (var endpoint in left)
            {
                ScheduleTeardown(endpoint);
            }
        }

        Log.SandboxDeleted(_logger, sandbox.Id);
        await UpdateDnsAsync(CancellationToken.None).ConfigureAwait(false);
    }

    internal ValueTask JoinAsync(Endpoint endpoint, Sandbox sandbox, JoinOptions options, CancellationToken cancellationToken) =>
        RunAsync("endpoint.join", () => JoinCoreAsync(endpoint, sandbox, options, convergeGatewayNetwork: true, cancellationToken), cancellationToken);

    /// <summary>A join; then, unless <paramref name="convergeGatewayNetwork"/> is false (the gateway network's own join),
    /// the sandbox gets or loses its gateway network endpoint (see NetworkController.GatewayNetwork). When the sandbox
    /// needs one and it cannot be given, the join is undone and fails, as libnetwork's does.</summary>
    private async ValueTask JoinCoreAsync(Endpoint endpoint, Sandbox sandbox, JoinOptions options, bool convergeGatewayNetwork, CancellationToken cancellationToken)
    {
        if (sandbox is null || !ReferenceEquals(sandbox.Controller, this))
        {
            throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidId, endpoint.ToString(), "invalid sandbox: null or from another controller");
        }

        var network = endpoint.Network;
        await sandbox.Gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await endpoint.Gate.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                if (sandbox.Deleting || !_sandboxes.ContainsKey(sandbox.Id))
                {
                    throw new CnmNotFoundException(CnmErrorCodes.NoSuchSandbox, sandbox.ToString(), "no such sandbox");
                }

                if (sandbox.SharesNetwork)
                {
                    throw SharedNamespaceRefusal(sandbox);
                }

                if (endpoint.Deleted)
                {
                    throw new CnmNotFoundException(CnmErrorCodes.NoSuchEndpoint, endpoint.ToString(), "no such endpoint");
                }

                if (endpoint.Record.Join is not null)
                {
                    throw new CnmConflictException(CnmErrorCodes.AlreadyJoined, endpoint.ToString(), "another container is attached to the same network endpoint");
                }

                if (network.RegisteredDriver.Capability.UsesHostNamespace != sandbox.UsesHostNamespace)
                {
                    throw new CnmConflictException(
                        CnmErrorCodes.DriverForbidden,
                        endpoint.ToString(),
                        sandbox.UsesHostNamespace
                            ? "a sandbox that uses the host namespace can only join host networks"
                            : "an endpoint of a host network can only join a sandbox that uses the host namespace");
                }

                await JoinLockedAsync(endpoint, sandbox, options, cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                endpoint.Gate.Release();
            }
        }
        finally
        {
            sandbox.Gate.Release();
        }

        if (convergeGatewayNetwork)
        {
            try
            {
                await ConvergeGatewayNetworkAsync(sandbox, cancellationToken).ConfigureAwait(false);
            }
            catch
            {
                await UndoAsync("endpoint.join", [
                    ("leave", () => LeaveCoreAsync(endpoint, sandbox, removeInterface: true, convergeGatewayNetwork: false, CancellationToken.None)),
                ]).ConfigureAwait(false);
                throw;
            }
        }
    }

    private async ValueTask JoinLockedAsync(Endpoint endpoint, Sandbox sandbox, JoinOptions options, CancellationToken cancellationToken)
    {
        var network = endpoint.Network;
        var before = endpoint.Record;
        var sandboxBefore = sandbox.Record;
        var intent = new IntentTracker(_store, new IntentRecord { Id = Ids.NewId(), Kind = IntentKind.Join, NetworkId = network.Id, EndpointId = endpoint.Id, SandboxId = sandbox.Id, Driver = network.Driver }, StoreDurability.Relaxed);
        await intent.BeginAsync(cancellationToken).ConfigureAwait(false);
        var inSandbox = false;
        var touched = new Dictionary<Endpoint, EndpointRecord>();
        try
        {
            _faults.Hit(FaultPoint.JoinIntentRecorded);
            var interfaceInfo = new InterfaceInfo { LinkLocalAddresses = endpoint.LinkLocalAddresses };
            if (endpoint.MacAddress is { } mac)
            {
                interfaceInfo.SetMacAddress(mac);
            }

            if (endpoint.Address is { } v4)
            {
                interfaceInfo.SetIPAddress(v4);
            }

            if (endpoint.AddressIPv6 is { } v6)
            {
                interfaceInfo.SetIPAddress(v6);
            }

            var joinInfo = new JoinInfo(interfaceInfo);
            await network.RegisteredDriver.Driver.JoinAsync(
                new JoinRequest
                {
                    NetworkId = network.Id,
                    EndpointId = endpoint.Id,
                    SandboxId = sandbox.Id,
                    SandboxKey = sandbox.Key,
                    SandboxUsesHostNamespace = sandbox.UsesHostNamespace,
                    Options = options.DriverOptions,
                },
                joinInfo,
                cancellationToken).ConfigureAwait(false);
            _faults.Hit(FaultPoint.JoinDriverJoined);

            var nextIndex = new Dictionary<string, int>(sandboxBefore.NextInterfaceIndex, StringComparer.Ordinal);
            string? destinationName = null;
            if (joinInfo.SourceName is { } source && !sandbox.UsesHostNamespace)
            {
                var prefix = joinInfo.DestinationPrefix!;
                var index = nextIndex.GetValueOrDefault(prefix);
                nextIndex[prefix] = index + 1;
                destinationName = prefix + index.ToString(System.Globalization.CultureInfo.InvariantCulture);
                var added = new SandboxInterface
                {
                    SourceName = source,
                    Placement = joinInfo.Placement,
                    DestinationName = destinationName,
                    MacAddress = interfaceInfo.MacAddress,
                    Addresses = [.. new[] { interfaceInfo.Address, interfaceInfo.AddressIPv6 }.OfType<CidrAddress>(), .. interfaceInfo.LinkLocalAddresses],
                    Routes = joinInfo.StaticRoutes,
                };

                // Recorded first: after a crash from here on, recovery removes the interface by these names.
                intent.Intent.Interface = new JoinInterfaceRecord { SourceName = source, DestinationName = destinationName, CreatedInSandbox = joinInfo.Placement == InterfacePlacement.Sandbox };
                await intent.SaveAsync(cancellationToken).ConfigureAwait(false);
                _faults.Hit(FaultPoint.JoinInterfaceRecorded);
                await _sandboxNetworking.AddInterfaceAsync(sandbox.Key, added, cancellationToken).ConfigureAwait(false);
                _faults.Hit(FaultPoint.JoinInterfaceConfigured);
            }

            endpoint.Record = before with
            {
                Join = new JoinRecord
                {
                    SandboxId = sandbox.Id,
                    Priority = options.Priority,
                    SourceName = joinInfo.SourceName,
                    DestinationPrefix = joinInfo.DestinationPrefix,
                    DestinationName = destinationName,
                    CreatedInSandbox = joinInfo.Placement == InterfacePlacement.Sandbox,
                    Gateway = joinInfo.Gateway?.ToString(),
                    GatewayIPv6 = joinInfo.GatewayIPv6?.ToString(),
                    DisableGatewayService = joinInfo.GatewayServiceDisabled,
                    StaticRoutes = joinInfo.StaticRoutes.Select(r => new StaticRouteRecord { Destination = r.Destination.ToString(), Type = (int)r.Type, NextHop = r.NextHop?.ToString() }).ToList(),
                    Options = new(options.DriverOptions, StringComparer.Ordinal),
                },
            };
            sandbox.AddEndpoint(endpoint);
            inSandbox = true;
            var sandboxRecord = await ConvergeGatewayAsync(sandbox, sandboxBefore with { NextInterfaceIndex = nextIndex }, endpoint, sandboxGoing: false, touched, cancellationToken).ConfigureAwait(false);
            _faults.Hit(FaultPoint.JoinGatewayConverged);
            IReadOnlyList<HostEntry> hostEntries = IsGatewayNetwork(network) ? [] : HostEntriesOf(sandbox, endpoint);
            if (hostEntries.Count > 0)
            {
                await _sandboxFiles.AddHostEntriesAsync(sandbox.FilesDirectory, hostEntries, cancellationToken).ConfigureAwait(false);
            }

            // The first endpoint that resolves names gives the sandbox the embedded DNS: its resolv.conf is rewritten to
            // point at 127.0.0.11 (a file the user edited is left alone) and it keeps a resolver until it is deleted.
            var dnsOn = TurnsDnsOn(endpoint, sandbox, sandboxRecord);
            if (dnsOn)
            {
                sandboxRecord = sandboxRecord with { EmbeddedDns = true };
            }

            if (network.EnableIPv6 || dnsOn)
            {
                await _sandboxFiles.UpdateResolvConfAsync(sandbox.FilesDirectory, FileOptions(sandboxRecord, enableIPv6: sandbox.Endpoints.Any(e => e.Network.EnableIPv6)), cancellationToken).ConfigureAwait(false);
            }

            var versions = await _store.Store.CommitAsync(
                [
                    StoreOperation.Put(CoreStore.EndpointKey(network.Id, endpoint.Id), CoreStore.Serialize(endpoint.Record, CoreJsonContext.Default.EndpointRecord), endpoint.Version),
                    StoreOperation.Put(CoreStore.SandboxKey(sandbox.Id), CoreStore.Serialize(sandboxRecord, CoreJsonContext.Default.SandboxRecord), sandbox.Version),
                    .. TouchedPuts(touched),
                    intent.Complete(),
                ],
                StoreDurability.Relaxed,
                cancellationToken).ConfigureAwait(false);
            endpoint.Version = versions[0];
            sandbox.Record = sandboxRecord;
            sandbox.Version = versions[1];
            SetTouchedVersions(touched, versions, 2);
            _faults.Hit(FaultPoint.JoinCommitted);
            Log.Joined(_logger, endpoint.Id, sandbox.Id, destinationName);
            await UpdateDnsAsync(CancellationToken.None).ConfigureAwait(false);
        }
        catch
        {
            // Memory first, then the same rollback a crash gets at the next start.
            if (inSandbox)
            {
                sandbox.RemoveEndpoint(endpoint);
            }

            endpoint.Record = before;
            RestoreTouched(touched);
            // A controller stopped under the operation touches nothing more: its components are disposed, and the
            // intent it leaves is rolled back by the next start, as after a crash.
            if (Volatile.Read(ref _disposed) != 0)
            {
                throw;
            }

            await RollbackAsync(intent.Intent, CancellationToken.None).ConfigureAwait(false);
            await intent.AbandonAsync().ConfigureAwait(false);
            throw;
        }
    }

    internal ValueTask LeaveAsync(Endpoint endpoint, Sandbox sandbox, CancellationToken cancellationToken) =>
        RunAsync("endpoint.leave", () => LeaveCoreAsync(endpoint, sandbox, removeInterface: true, convergeGatewayNetwork: true, cancellationToken), cancellationToken);

    /// <summary>A leave; then, unless <paramref name="convergeGatewayNetwork"/> is false or the endpoint is the sandbox's
    /// gateway network endpoint, the sandbox loses (or gets) its gateway network endpoint as its remaining endpoints
    /// say.</summary>
    private async ValueTask LeaveCoreAsync(Endpoint endpoint, Sandbox sandbox, bool removeInterface, bool convergeGatewayNetwork, CancellationToken cancellationToken)
    {
        if (sandbox is null || !ReferenceEquals(sandbox.Controller, this))
        {
            throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidId, endpoint.ToString(), "invalid sandbox: null or from another controller");
        }

        await sandbox.Gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await LeaveLockedAsync(endpoint, sandbox, removeInterface, sandboxGoing: false, recovered: null, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            sandbox.Gate.Release();
        }

        if (convergeGatewayNetwork && !IsGatewayNetworkEndpoint(endpoint, sandbox.Id))
        {
            await ConvergeGatewayNetworkAsync(sandbox, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Takes an endpoint out of a sandbox whose gate the caller holds: external connectivity moves to the next gateway
    /// endpoint, the driver leaves, the interface goes, and the records are committed together. A Leave intent is
    /// recorded before the first kernel change (unless the sandbox is going: its own mark covers the leave), and
    /// recovery finishes it with this same code (<paramref name="recovered"/>). A leave that fails keeps its intent:
    /// a retry, or the next start, finishes it.
    /// </summary>
    private async ValueTask LeaveLockedAsync(Endpoint endpoint, Sandbox sandbox, bool removeInterface, bool sandboxGoing, IntentRecord? recovered, CancellationToken cancellationToken)
    {
        await endpoint.Gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var before = endpoint.Record;
            if (before.Join is not { } join)
            {
                throw new CnmConflictException(CnmErrorCodes.NotJoined, endpoint.ToString(), "cannot leave endpoint with no attached sandbox");
            }

            if (!string.Equals(join.SandboxId, sandbox.Id, StringComparison.Ordinal))
            {
                throw new CnmConflictException(CnmErrorCodes.NotJoined, endpoint.ToString(), $"endpoint is joined to another sandbox ({Ids.Short(join.SandboxId)}), not {Ids.Short(sandbox.Id)}");
            }

            var network = endpoint.Network;
            var removed = removeInterface && !sandbox.UsesHostNamespace && join is { SourceName: { } source, DestinationName: { } destination }
                ? new JoinInterfaceRecord { SourceName = source, DestinationName = destination, CreatedInSandbox = join.CreatedInSandbox }
                : null;
            if (recovered is null && !sandboxGoing)
            {
                await RecordLeaveAsync(endpoint, sandbox, removed, cancellationToken).ConfigureAwait(false);
                _faults.Hit(FaultPoint.LeaveIntentRecorded);
            }

            // A record written before the core kept its routes names them through this endpoint's join: read them
            // while the endpoint is still joined.
            var sandboxBefore = WithInstalledGatewayRoutes(sandbox.Record, endpoint);
            sandbox.RemoveEndpoint(endpoint);
            endpoint.Record = before with { Join = null, TearingDown = sandboxGoing };
            var touched = new Dictionary<Endpoint, EndpointRecord>();
            try
            {
                var sandboxRecord = await ConvergeGatewayAsync(sandbox, sandboxBefore, endpoint, sandboxGoing, touched, cancellationToken).ConfigureAwait(false);
                _faults.Hit(FaultPoint.LeaveGatewayConverged);
                await network.RegisteredDriver.Driver.LeaveAsync(network.Id, endpoint.Id, cancellationToken).ConfigureAwait(false);
                _faults.Hit(FaultPoint.LeaveDriverLeft);
                if (removed is not null)
                {
                    await RemoveJoinInterfaceAsync(sandbox, removed, cancellationToken).ConfigureAwait(false);
                    _faults.Hit(FaultPoint.LeaveInterfaceRemoved);
                }

                var addresses = new[] { before.Address, before.AddressIPv6 }.OfType<string>().Select(a => CidrAddress.Parse(a).Address).ToArray();
                if (!sandboxGoing && addresses.Length > 0)
                {
                    await _sandboxFiles.RemoveHostEntriesAsync(sandbox.FilesDirectory, addresses, cancellationToken).ConfigureAwait(false);
                }

                List<StoreOperation> operations =
                [
                    StoreOperation.Put(CoreStore.EndpointKey(network.Id, endpoint.Id), CoreStore.Serialize(endpoint.Record, CoreJsonContext.Default.EndpointRecord), endpoint.Version),
                    StoreOperation.Put(CoreStore.SandboxKey(sandbox.Id), CoreStore.Serialize(sandboxRecord, CoreJsonContext.Default.SandboxRecord), sandbox.Version),
                    .. TouchedPuts(touched),
                ];

                // In recovery the caller removes the intent it found.
                if (recovered is null && endpoint.PendingLeave is { } pending)
                {
                    operations.Add(pending.Complete());
                }

                var versions = await _store.Store.CommitAsync(operations, StoreDurability.Relaxed, cancellationToken).ConfigureAwait(false);
                endpoint.Version = versions[0];
                endpoint.PendingLeave = null;
                sandbox.Record = sandboxRecord;
                sandbox.Version = versions[1];
                SetTouchedVersions(touched, versions, 2);
                _faults.Hit(FaultPoint.LeaveCommitted);
                Log.Left(_logger, endpoint.Id, sandbox.Id);
                if (!sandboxGoing)
                {
                    await UpdateDnsAsync(CancellationToken.None).ConfigureAwait(false);
                }
            }
            catch
            {
                // The store still says joined: put memory back so a retry of the (idempotent) leave can finish;
                // its intent stays, so the next start finishes it if nobody retries.
                endpoint.Record = before;
                RestoreTouched(touched);
                sandbox.AddEndpoint(endpoint);
                throw;
            }
        }
        finally
        {
            endpoint.Gate.Release();
        }
    }

    /// <summary>Records (or, after a leave that failed, updates) the Leave intent of an endpoint.</summary>
    private async ValueTask RecordLeaveAsync(Endpoint endpoint, Sandbox sandbox, JoinInterfaceRecord? removed, CancellationToken cancellationToken)
    {
        if (endpoint.PendingLeave is { } pending)
        {
            pending.Intent.Interface = removed;
            pending.Intent.RemoveInterface = removed is not null;
            await pending.SaveAsync(cancellationToken).ConfigureAwait(false);
            return;
        }

        var intent = new IntentTracker(_store, new IntentRecord
        {
            Id = Ids.NewId(),
            Kind = IntentKind.Leave,
            NetworkId = endpoint.Network.Id,
            EndpointId = endpoint.Id,
            SandboxId = sandbox.Id,
            Driver = endpoint.Network.Driver,
            Interface = removed,
            RemoveInterface = removed is not null,
        }, StoreDurability.Relaxed);
        await intent.BeginAsync(cancellationToken).ConfigureAwait(false);
        endpoint.PendingLeave = intent;
    }

    /// <summary>Removes a joined endpoint's interface from its sandbox (a missing one is not an error).</summary>
    private ValueTask RemoveJoinInterfaceAsync(Sandbox sandbox, JoinInterfaceRecord removed, CancellationToken cancellationToken) =>
        _sandboxNetworking.RemoveInterfaceAsync(
            sandbox.Key,
            new SandboxInterface { SourceName = removed.SourceName, DestinationName = removed.DestinationName, Placement = removed.CreatedInSandbox ? InterfacePlacement.Sandbox : InterfacePlacement.HostNamespace },
            cancellationToken);

    /// <summary>
    /// Makes the kernel match the gateway election: the elected endpoint's gateways become the default routes and
    /// only it has external connectivity. Idempotent; returns the sandbox record with the programmed endpoint and the
    /// default routes the core installed noted. The core removes only default routes it installed (kept in the record):
    /// a driver's static default route (an endpoint that disabled the gateway service) or one added by hand stays.
    /// </summary>
    /// <param name="sandbox">The sandbox, with its endpoint list already updated.</param>
    /// <param name="record">The sandbox record to update.</param>
    /// <param name="changed">The endpoint that just joined or left (to find it when it is no longer listed).</param>
    /// <param name="sandboxGoing">The sandbox is being deleted: skip route programming.</param>
    /// <param name="touched">Other endpoints than <paramref name="changed"/> whose records this changed in memory (their
    /// published ports), with their records before: the caller commits them, or puts them back on failure.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    private async ValueTask<SandboxRecord> ConvergeGatewayAsync(Sandbox sandbox, SandboxRecord record, Endpoint changed, bool sandboxGoing, Dictionary<Endpoint, EndpointRecord> touched, CancellationToken cancellationToken)
    {
        var endpoints = sandbox.Endpoints;
        var gateway4 = sandboxGoing ? null : GatewayElection.ElectIPv4(endpoints);
        var gateway6 = sandboxGoing ? null : GatewayElection.ElectIPv6(endpoints);
        var elected = gateway4 ?? gateway6;
        var programmed = record.ExternalConnectivityEndpointId;
        var installed = InstalledGatewayRoutes(record, changed);
        var programRoutes = !sandboxGoing && !sandbox.UsesHostNamespace;
        var wanted = programRoutes ? GatewayRoutesOf(gateway4, gateway6) : installed;
        var moved = !string.Equals(elected?.Id, programmed, StringComparison.Ordinal);
        if (!sandboxGoing && elected is null && !sandbox.UsesHostNamespace && GatewayElection.NeedsDefaultGateway(endpoints) && !WantsGatewayNetwork(sandbox))
        {
            Log.NoDefaultGateway(_logger, sandbox.Id);
        }

        if (!moved && installed.SequenceEqual(wanted))
        {
            return record;
        }

        if (moved && programmed is not null)
        {
            var previous = string.Equals(changed.Id, programmed, StringComparison.Ordinal) ? changed : FindEndpoint(programmed);
            if (previous is not null && !previous.Network.Internal && previous.Network.RegisteredDriver.Driver is IExternalConnectivityDriver ext)
            {
                await ext.RevokeExternalConnectivityAsync(previous.Network.Id, previous.Id, cancellationToken).ConfigureAwait(false);
                _faults.Hit(FaultPoint.GatewayConnectivityRevoked);
            }

            if (previous is not null)
            {
                SetPublishedPorts(previous, null, changed, touched);
            }
        }

        if (programRoutes && !installed.SequenceEqual(wanted))
        {
            await _sandboxNetworking.ChangeGatewayRoutesAsync(sandbox.Key, installed.Except(wanted).ToArray(), wanted.Except(installed).ToArray(), cancellationToken).ConfigureAwait(false);
            _faults.Hit(FaultPoint.GatewayRoutesChanged);
        }

        if (moved && elected is not null && !elected.Network.Internal && elected.Network.RegisteredDriver.Driver is IExternalConnectivityDriver newExt)
        {
            await newExt.ProgramExternalConnectivityAsync(elected.Network.Id, elected.Id, cancellationToken).ConfigureAwait(false);
            _faults.Hit(FaultPoint.GatewayConnectivityProgrammed);
            SetPublishedPorts(elected, await ReadPublishedPortsAsync(elected, cancellationToken).ConfigureAwait(false), changed, touched);
        }

        return record with
        {
            ExternalConnectivityEndpointId = elected?.Id,
            GatewayRoutes = wanted.Select(r => new GatewayRouteRecord { Interface = r.InterfaceName, Gateway = r.Gateway.ToString(), Unmarked = r.Unmarked }).ToList(),
        };
    }

    /// <summary>The default routes the core wants: the IPv4 gateway endpoint's IPv4 gateway and the IPv6 gateway
    /// endpoint's IPv6 gateway, each on its endpoint's interface.</summary>
    private static SandboxGatewayRoute[] GatewayRoutesOf(Endpoint? gateway4, Endpoint? gateway6)
    {
        var routes = new List<SandboxGatewayRoute>(2);
        if (gateway4 is { InterfaceName: { } name4, Gateway: { } g4 })
        {
            routes.Add(new SandboxGatewayRoute(name4, g4));
        }

        if (gateway6 is { InterfaceName: { } name6, GatewayIPv6: { } g6 })
        {
            routes.Add(new SandboxGatewayRoute(name6, g6));
        }

        return [.. routes];
    }

    /// <summary>The record with the routes it names spelt out (for a record written before they were kept).</summary>
    private SandboxRecord WithInstalledGatewayRoutes(SandboxRecord record, Endpoint changed) =>
        record.GatewayRoutes is not null
            ? record
            : record with { GatewayRoutes = InstalledGatewayRoutes(record, changed).Select(r => new GatewayRouteRecord { Interface = r.InterfaceName, Gateway = r.Gateway.ToString(), Unmarked = r.Unmarked }).ToList() };

    /// <summary>The default routes the core installed in a sandbox, as its record says. A record written before they
    /// were kept names only the programmed endpoint: that version installed its gateways, unmarked.</summary>
    private SandboxGatewayRoute[] InstalledGatewayRoutes(SandboxRecord record, Endpoint changed)
    {
        if (record.GatewayRoutes is { } routes)
        {
            return routes.Select(r => new SandboxGatewayRoute(r.Interface, System.Net.IPAddress.Parse(r.Gateway)) { Unmarked = r.Unmarked }).ToArray();
        }

        if (record.ExternalConnectivityEndpointId is not { } id)
        {
            return [];
        }

        var endpoint = string.Equals(changed.Id, id, StringComparison.Ordinal) ? changed : FindEndpoint(id);
        return endpoint?.Record.Join is { DestinationName: { } name } join
            ? new[] { join.Gateway, join.GatewayIPv6 }.OfType<string>().Select(g => new SandboxGatewayRoute(name, System.Net.IPAddress.Parse(g)) { Unmarked = true }).ToArray()
            : [];
    }

    /// <summary>
    /// The bindings the driver published for an endpoint, from the <see cref="NetLabels.PortMap"/> entry of its
    /// operational data (libnetwork's <c>EndpointOperInfo</c>): the host ports it actually gave. Null when the
    /// endpoint asked for none, or the driver reports no valid port map (then the requested bindings are shown).
    /// </summary>
    private async ValueTask<List<PortBindingRecord>?> ReadPublishedPortsAsync(Endpoint endpoint, CancellationToken cancellationToken)
    {
        if (endpoint.Record.PortBindings.Count == 0)
        {
            return null;
        }

        try
        {
            var info = await endpoint.Network.RegisteredDriver.Driver.GetEndpointOperationalInfoAsync(endpoint.Network.Id, endpoint.Id, cancellationToken).ConfigureAwait(false);
            return info is not null && info.TryGetValue(NetLabels.PortMap, out var text) && PortMap.TryParse(text, out var ports)
                ? ports.Select(p => new PortBindingRecord { Protocol = (int)p.Protocol, ContainerPort = p.ContainerPort, HostIP = p.HostIP.ToString(), HostPort = p.HostPort, HostPortEnd = p.HostPortEnd }).ToList()
                : null;
        }
        catch (CnmException ex)
        {
            Log.PortMapUnavailable(_logger, ex, endpoint.Id);
            return null;
        }
    }

    /// <summary>Sets an endpoint's published ports in memory; an endpoint other than <paramref name="changed"/> is
    /// noted in <paramref name="touched"/> with its record before, for the caller to commit or put back.</summary>
    private static void SetPublishedPorts(Endpoint endpoint, List<PortBindingRecord>? ports, Endpoint changed, Dictionary<Endpoint, EndpointRecord> touched)
    {
        var current = endpoint.Record.PublishedPorts;
        if (current is null ? ports is null : ports is not null && current.SequenceEqual(ports))
        {
            return;
        }

        if (!ReferenceEquals(endpoint, changed))
        {
            touched.TryAdd(endpoint, endpoint.Record);
        }

        endpoint.Record = endpoint.Record with { PublishedPorts = ports };
    }

    private static List<StoreOperation> TouchedPuts(Dictionary<Endpoint, EndpointRecord> touched) =>
        touched.Keys.Select(e => StoreOperation.Put(CoreStore.EndpointKey(e.Network.Id, e.Id), CoreStore.Serialize(e.Record, CoreJsonContext.Default.EndpointRecord), e.Version)).ToList();

    private static void SetTouchedVersions(Dictionary<Endpoint, EndpointRecord> touched, IReadOnlyList<long> versions, int first)
    {
        var i = first;
        foreach (var endpoint in touched.Keys)
        {
            endpoint.Version = versions[i++];
        }
    }

    private static void RestoreTouched(Dictionary<Endpoint, EndpointRecord> touched)
    {
        foreach (var (endpoint, record) in touched)
        {
            endpoint.Record = record;
        }
    }

    /// <summary>Commits the records of other endpoints a rollback's gateway convergence changed (best effort: the
    /// kernel is right either way, only the reported published ports would be stale).</summary>
    private async ValueTask SaveTouchedAsync(Dictionary<Endpoint, EndpointRecord> touched, CancellationToken cancellationToken)
    {
        foreach (var endpoint in touched.Keys)
        {
            try
            {
                endpoint.Version = await _store.Store.PutAsync(CoreStore.EndpointKey(endpoint.Network.Id, endpoint.Id), CoreStore.Serialize(endpoint.Record, CoreJsonContext.Default.EndpointRecord), endpoint.Version, StoreDurability.Relaxed, cancellationToken).ConfigureAwait(false);
            }
            catch (CnmException ex)
            {
                Log.PortMapUnavailable(_logger, ex, endpoint.Id);
            }
        }
    }

    /// <summary>Where a sandbox's generated files live: beside its namespace, under the run directory.</summary>
    internal string SandboxFilesDirectory(string sandboxId) => Path.Combine(_options.RunDirectory, "sandboxes", Validation.StoredSandboxId(sandboxId));

    private SandboxFileOptions FileOptions(SandboxRecord record, bool enableIPv6) => new()
    {
        HostResolvConfPath = _options.HostResolvConfPath,
        HostHostsPath = _options.HostHostsPath,
        Hostname = record.Hostname ?? record.ContainerId,
        DomainName = record.DomainName,
        ExtraHosts = record.ExtraHosts.Select(h => new HostEntry(h[0], System.Net.IPAddress.Parse(h[1]))).ToArray(),
        UseHostNetwork = record.UsesHostNamespace,
        DnsServers = record.DnsServers,
        DnsSearch = record.DnsSearch,
        DnsOptions = record.DnsOptions,
        EnableIPv6 = enableIPv6,
        UseEmbeddedDns = record.EmbeddedDns && _options.Dns.Mode != EmbeddedDnsMode.Disabled,
    };

    /// <summary>The /etc/hosts lines of an endpoint in its sandbox: hostname (and FQDN) for its first IPv4 and IPv6
    /// address. None for host-namespace sandboxes, which use the host's file.</summary>
    private static IReadOnlyList<HostEntry> HostEntriesOf(Sandbox sandbox, Endpoint endpoint) =>
        sandbox.UsesHostNamespace
            ? []
            : HostsFile.ContainerEntries(sandbox.Hostname ?? sandbox.ContainerId, sandbox.DomainName, new[] { endpoint.Address, endpoint.AddressIPv6 }.OfType<CidrAddress>().Select(a => a.Address));

    private Endpoint? FindEndpoint(string endpointId)
    {
        foreach (var network in _networks.Values)
        {
            if (network.FindEndpointById(endpointId) is { } endpoint)
            {
                return endpoint;
            }
        }

        return null;
    }
}
