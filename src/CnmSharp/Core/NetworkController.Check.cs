using System.Diagnostics;
using System.Net;
using System.Text.Json.Serialization.Metadata;
using CnmSharp.Core;
using CnmSharp.Core.Persistence;
using CnmSharp.Diagnostics;
using CnmSharp.Drivers;
using CnmSharp.Firewall;
using CnmSharp.Ipam;
using CnmSharp.Store;

namespace CnmSharp;

public sealed partial class NetworkController
{
    /// <summary>
    /// Checks the state invariants, alone (no other operation of this controller runs meanwhile, and other processes
    /// sharing the state wait): every device, namespace, bind mount, firewall rule and address CnmSharp owns in the
    /// kernel corresponds to an object in the store and the other way round; no address or MAC is held by two endpoints
    /// of a network; every pool's allocation map matches its endpoints; no intent outlives its owner. Ownership is
    /// proven, never guessed: from the store's records, the controller's run directory (namespaces and their bind
    /// mounts), the drivers' records and marks (<see cref="IDriverDiagnostics"/>) and the firewall backend's owner tags
    /// (<see cref="IFirewallDiagnostics"/>); what cannot be proven to be CnmSharp's is neither reported nor touched.
    /// </summary>
    /// <param name="options">What to do; <see cref="CheckOptions.Repair"/> repairs what can be repaired and says what it
    /// did in each finding.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The findings; <see cref="CheckReport.IsClean"/> when there is none.</returns>
    /// <exception cref="CnmConflictException">The controller is read-only (<c>ReadOnlyController</c>).</exception>
    public async ValueTask<CheckReport> CheckAsync(CheckOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= new CheckOptions();
        ThrowIfDisposed();
        var started = Stopwatch.GetTimestamp();

        // Background teardowns are operations in flight: what they hold is not a leak. Let them end first.
        await WaitForTeardownsAsync(cancellationToken).ConfigureAwait(false);
        var findings = new List<InvariantFinding>();
        await RunAsync("state.check", exclusive: true, () => CheckCoreAsync(options.Repair, findings, cancellationToken), cancellationToken).ConfigureAwait(false);
        return new CheckReport { Findings = findings, RepairRequested = options.Repair, Duration = Stopwatch.GetElapsedTime(started) };
    }

    private async ValueTask CheckCoreAsync(bool repair, List<InvariantFinding> findings, CancellationToken cancellationToken)
    {
        await CheckIntentsAsync(repair, findings, cancellationToken).ConfigureAwait(false);
        await CheckQuarantineAsync(repair, findings, cancellationToken).ConfigureAwait(false);
        var duplicates = new HashSet<string>(StringComparer.Ordinal);
        await CheckRecordsAsync(repair, findings, duplicates, cancellationToken).ConfigureAwait(false);
        await CheckNamespacesAsync(repair, findings, cancellationToken).ConfigureAwait(false);
        await CheckDriversAsync(repair, findings, duplicates, cancellationToken).ConfigureAwait(false);
        if (_firewall is IFirewallDiagnostics firewall)
        {
            findings.AddRange(await firewall.CheckAsync(repair, cancellationToken).ConfigureAwait(false));
        }
    }

    /// <summary>Every intent in the store: the check holds the state lock alone, so an intent that no running operation
    /// of this controller owns has a dead owner (or one that failed and left it).</summary>
    private async ValueTask CheckIntentsAsync(bool repair, List<InvariantFinding> findings, CancellationToken cancellationToken)
    {
        var stale = (await ReadRecordsAsync(CoreStore.IntentPrefix, CoreJsonContext.Default.IntentRecord, findings, cancellationToken).ConfigureAwait(false))
            .Where(i => !_store.LiveIntents.ContainsKey(i.Record.Id))
            .Select(i => i.Record)
            .ToList();
        if (stale.Count == 0)
        {
            return;
        }

        HashSet<string>? remaining = null;
        if (repair)
        {
            await RecoverIntentsAsync(cancellationToken).ConfigureAwait(false);
            await RecoverMarkedDeletesAsync(cancellationToken).ConfigureAwait(false);
            await WaitForFirstTeardownAttemptsAsync(cancellationToken).ConfigureAwait(false);
            remaining = (await _store.Store.ListAsync(CoreStore.IntentPrefix, cancellationToken).ConfigureAwait(false))
                .Select(e => e.Key[CoreStore.IntentPrefix.Length..])
                .ToHashSet(StringComparer.Ordinal);
        }

        foreach (var intent in stale)
        {
            var owner = intent.Owner is { } o
                ? $"{o}{(string.Equals(o.Host, Environment.MachineName, StringComparison.Ordinal) && !Directory.Exists($"/proc/{o.Pid}") ? ", not running" : string.Empty)}"
                : "an unknown owner";
            var repaired = remaining is not null && !remaining.Contains(intent.Id);
            findings.Add(new InvariantFinding
            {
                Kind = InvariantKinds.StaleIntent,
                Subject = $"intent {Ids.Short(intent.Id)}",
                Detail = $"{intent.Kind} of network {Ids.Short(intent.NetworkId)}{(intent.EndpointId is { } e ? $", endpoint {Ids.Short(e)}" : string.Empty)} by {owner}: no running operation owns it",
                Repaired = repaired,
                Repair = !repair ? null : repaired ? $"{(intent.Kind == IntentKind.Leave ? "finished" : "rolled back")} by recovery" : "recovery could not finish it (set aside in quarantine)",
            });
        }
    }

    /// <summary>
    /// The records loading or recovery set aside (<see cref="GetQuarantinedRecordsAsync"/>): each is a finding, with its
    /// original key, why and when it was set aside, and where it is kept. No repair touches one: its bytes are the only
    /// copy of what it said, so it stays until it is discarded on request (<see cref="DiscardQuarantinedRecordAsync"/>,
    /// <c>cnm check --discard-quarantined KEY</c>) after whatever it described was repaired by hand.
    /// </summary>
    private async ValueTask CheckQuarantineAsync(bool repair, List<InvariantFinding> findings, CancellationToken cancellationToken)
    {
        foreach (var entry in await _store.Store.ListAsync(CoreStore.QuarantinePrefix, cancellationToken).ConfigureAwait(false))
        {
            QuarantineRecord record;
            try
            {
                record = CoreStore.Deserialize(entry, CoreJsonContext.Default.QuarantineRecord);
            }
            catch (CnmInternalException ex)
            {
                findings.Add(new InvariantFinding
                {
                    Kind = InvariantKinds.UnreadableRecord,
                    Subject = $"store key {entry.Key}",
                    Detail = $"a quarantined record that cannot be read: {ex.Reason}",
                    Repair = repair ? "left in place: inspect it in the store and delete it by hand" : null,
                });
                continue;
            }

            findings.Add(new InvariantFinding
            {
                Kind = InvariantKinds.QuarantinedRecord,
                Subject = $"store key {record.Key}",
                Detail = string.Create(System.Globalization.CultureInfo.InvariantCulture,
                    $"set aside at {record.Time:yyyy-MM-ddTHH:mm:ssZ} ({record.Reason}); kept under {entry.Key} with its {record.Value.Length} bytes"),
                Repair = repair ? "never automatic: repair what it described by hand, then discard it (cnm check --discard-quarantined KEY)" : null,
            });
        }
    }

    /// <summary>Addresses and MACs held twice, and each pool's allocation map against the endpoints' records.</summary>
    /// <param name="repair">Repair.</param>
    /// <param name="findings">Where findings go.</param>
    /// <param name="reported">Gets the ids of the endpoint records reported as holding another's address or MAC.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    private async ValueTask CheckRecordsAsync(bool repair, List<InvariantFinding> findings, HashSet<string> reported, CancellationToken cancellationToken)
    {
        var networks = await ReadRecordsAsync(CoreStore.NetworkPrefix, CoreJsonContext.Default.NetworkRecord, findings, cancellationToken).ConfigureAwait(false);
        var endpoints = await ReadRecordsAsync(CoreStore.EndpointPrefix, CoreJsonContext.Default.EndpointRecord, findings, cancellationToken).ConfigureAwait(false);
        var byNetwork = endpoints.ToLookup(e => e.Record.NetworkId, StringComparer.Ordinal);
        foreach (var (network, _) in networks)
        {
            // A global network's addresses are the cluster's (other hosts' endpoints hold them): not this host's to judge.
            if (network.ConfigOnly || IsGlobal(network))
            {
                continue;
            }

            var members = byNetwork[network.Id].ToList();
            var ipam = network.IpamDriver is { } name && _registry.ContainsIpam(name) ? _registry.GetIpam(name).Ipam : null;
            var owned = ipam as IIpamOwnedAllocations;
            var allocations = new Dictionary<IPAddress, (string PoolId, string? Owner)>();
            if (owned is not null)
            {
                foreach (var pool in network.IPv4Info.Concat(network.IPv6Info))
                {
                    foreach (var allocation in await owned.GetAllocationsAsync(pool.PoolId, cancellationToken).ConfigureAwait(false))
                    {
                        allocations[allocation.Address] = (pool.PoolId, allocation.Owner);
                    }
                }
            }

            var duplicates = new HashSet<string>(StringComparer.Ordinal);
            var removed = new HashSet<string>(StringComparer.Ordinal);
            foreach (var (kind, value) in new (string, Func<EndpointRecord, string?>)[]
            {
                (InvariantKinds.DuplicateAddress, r => AddressOf(r.Address)),
                (InvariantKinds.DuplicateAddress, r => AddressOf(r.AddressIPv6)),
                (InvariantKinds.DuplicateMac, r => r.MacAddress),
            })
            {
                foreach (var group in members.Where(m => !duplicates.Contains(m.Record.Id) && value(m.Record) is { Length: > 0 }).GroupBy(m => value(m.Record)!, StringComparer.OrdinalIgnoreCase).Where(g => g.Count() > 1))
                {
                    await ReportDuplicateAsync(network, kind, group.Key, [.. group], allocations, repair, duplicates, removed, reported, findings, cancellationToken).ConfigureAwait(false);
                }
            }

            if (owned is null)
            {
                continue;
            }

            var live = members.Where(m => !duplicates.Contains(m.Record.Id)).ToDictionary(m => m.Record.Id, m => m.Record, StringComparer.Ordinal);
            foreach (var (address, (poolId, owner)) in allocations)
            {
                if (owner is not { Length: > 0 } || string.Equals(owner, NetworkOwner(network.Id), StringComparison.Ordinal))
                {
                    continue;
                }

                if (!live.TryGetValue(owner, out var holder))
                {
                    var repaired = false;
                    string? action = null;
                    if (repair)
                    {
                        await ipam!.ReleaseAddressAsync(poolId, address, cancellationToken).ConfigureAwait(false);
                        (repaired, action) = (true, "released");
                    }

                    findings.Add(new InvariantFinding
                    {
                        Kind = InvariantKinds.OrphanAllocation,
                        Subject = $"address {address} in pool {poolId}",
                        Detail = $"allocated to {Ids.Short(owner)} on network {network.Name}, which is no endpoint of the store",
                        Repaired = repaired,
                        Repair = action,
                    });
                }
                else if (AddressOf(holder.Address) != address.ToString() && AddressOf(holder.AddressIPv6) != address.ToString())
                {
                    findings.Add(new InvariantFinding
                    {
                        Kind = InvariantKinds.AllocationMismatch,
                        Subject = $"address {address} in pool {poolId}",
                        Detail = $"allocated to endpoint {holder.Name} on network {network.Name}, whose record holds {holder.Address ?? "-"} {holder.AddressIPv6 ?? string.Empty}".TrimEnd(),
                    });
                }
            }

            foreach (var record in live.Values)
            {
                foreach (var text in new[] { AddressOf(record.Address), AddressOf(record.AddressIPv6) }.OfType<string>())
                {
                    var address = IPAddress.Parse(text);
                    if (!network.IPv4Info.Concat(network.IPv6Info).Any(p => IPNetwork.Parse(p.Pool).Contains(address)))
                    {
                        continue;
                    }

                    if (!allocations.TryGetValue(address, out var allocation) || !string.Equals(allocation.Owner, record.Id, StringComparison.Ordinal))
                    {
                        findings.Add(new InvariantFinding
                        {
                            Kind = InvariantKinds.AllocationMismatch,
                            Subject = $"endpoint {record.Name} ({Ids.Short(record.Id)}) on network {network.Name}",
                            Detail = allocation.PoolId is null
                                ? $"its address {text} is not allocated in the network's pools"
                                : $"its address {text} is allocated to {(allocation.Owner is { Length: > 0 } other ? Ids.Short(other) : "no recorded owner")}",
                        });
                    }
                }
            }
        }

        await CheckPoolsAsync(repair, networks.Select(n => n.Record).ToList(), findings, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>One value held by several endpoints: the pool's allocation map (for an address) names the rightful one;
    /// the others are reported, and with a repair their records are removed when they are not joined.</summary>
    private async ValueTask ReportDuplicateAsync(NetworkRecord network, string kind, string value, List<(EndpointRecord Record, long Version)> group,
        Dictionary<IPAddress, (string PoolId, string? Owner)> allocations, bool repair, HashSet<string> duplicates, HashSet<string> removed, HashSet<string> reported, List<InvariantFinding> findings, CancellationToken cancellationToken)
    {
        var rightful = kind == InvariantKinds.DuplicateAddress && IPAddress.TryParse(value, out var address) && allocations.TryGetValue(address, out var allocation)
            ? group.FirstOrDefault(g => string.Equals(g.Record.Id, allocation.Owner, StringComparison.Ordinal)).Record
            : null;
        foreach (var (record, version) in group.Where(g => !ReferenceEquals(g.Record, rightful)))
        {
            reported.Add(record.Id);
            var others = string.Join(", ", group.Where(g => !ReferenceEquals(g.Record, record)).Select(g => $"{g.Record.Name} ({Ids.Short(g.Record.Id)})"));
            var repaired = false;
            string? action = null;
            if (repair && removed.Contains(record.Id))
            {
                (repaired, action) = (true, "its endpoint record was deleted (see above)");
            }
            else if (repair)
            {
                if (rightful is null)
                {
                    action = kind == InvariantKinds.DuplicateAddress ? "the allocation map names none of them: delete the wrong one by hand" : "no allocation map decides between them: delete the wrong one by hand";
                }
                else if (record.Join is { } join)
                {
                    action = $"it is joined to sandbox {Ids.Short(join.SandboxId)}: disconnect and delete it by hand";
                }
                else
                {
                    await _store.Store.DeleteAsync(CoreStore.EndpointKey(record.NetworkId, record.Id), version, cancellationToken).ConfigureAwait(false);
                    if (_networks.TryGetValue(record.NetworkId, out var loaded) && loaded.FindEndpointById(record.Id) is { } endpoint)
                    {
                        endpoint.Deleted = true;
                        loaded.RemoveEndpoint(endpoint);
                    }

                    removed.Add(record.Id);
                    (repaired, action) = (true, "its endpoint record was deleted (the address stays with " + Ids.Short(rightful.Id) + ")");
                }
            }

            if (rightful is not null || removed.Contains(record.Id))
            {
                duplicates.Add(record.Id);
            }

            findings.Add(new InvariantFinding
            {
                Kind = kind,
                Subject = $"endpoint {record.Name} ({Ids.Short(record.Id)}) on network {network.Name}",
                Detail = $"{(kind == InvariantKinds.DuplicateMac ? "MAC" : "address")} {value} is also held by {others}" +
                    (rightful is null ? string.Empty : $"; the pool's allocation map gives it to {Ids.Short(rightful.Id)}"),
                Repaired = repaired,
                Repair = action,
            });
        }
    }

    /// <summary>Pools an IPAM holds that no network references (as the start's sweep judges them).</summary>
    private async ValueTask CheckPoolsAsync(bool repair, List<NetworkRecord> networks, List<InvariantFinding> findings, CancellationToken cancellationToken)
    {
        var referenced = networks.SelectMany(n => n.IPv4Info.Concat(n.IPv6Info).Select(p => p.PoolId)).ToHashSet(StringComparer.Ordinal);
        referenced.UnionWith(await GlobalPoolIdsAsync(cancellationToken).ConfigureAwait(false));
        foreach (var registered in _registry.Ipams)
        {
            if (registered.Ipam is not IIpamOwnedAllocations owned)
            {
                continue;
            }

            foreach (var poolId in await owned.GetPoolIdsAsync(cancellationToken).ConfigureAwait(false))
            {
                if (referenced.Contains(poolId))
                {
                    continue;
                }

                var repaired = false;
                if (repair)
                {
                    await registered.Ipam.ReleasePoolAsync(poolId, cancellationToken).ConfigureAwait(false);
                    repaired = true;
                }

                findings.Add(new InvariantFinding
                {
                    Kind = InvariantKinds.OrphanPool,
                    Subject = $"pool {poolId} of IPAM {registered.Name}",
                    Detail = "no network of the store references it",
                    Repaired = repaired,
                    Repair = repair ? "released" : null,
                });
            }
        }
    }

    /// <summary>
    /// The namespaces of the run directory (files and bind mounts in <c>&lt;RunDirectory&gt;/netns</c>, which only this
    /// controller creates) against the sandbox records.
    /// </summary>
    private async ValueTask CheckNamespacesAsync(bool repair, List<InvariantFinding> findings, CancellationToken cancellationToken)
    {
        var directory = Path.Combine(_options.RunDirectory, "netns");
        var sandboxes = await ReadRecordsAsync(CoreStore.SandboxPrefix, CoreJsonContext.Default.SandboxRecord, findings, cancellationToken).ConfigureAwait(false);
        var named = sandboxes.Where(s => !s.Record.UsesHostNamespace).Select(s => s.Record.Key).ToHashSet(StringComparer.Ordinal);
        var mounts = MountPointsUnder(directory);
        var present = (Directory.Exists(directory) ? Directory.EnumerateFileSystemEntries(directory) : []).Concat(mounts).ToHashSet(StringComparer.Ordinal);
        foreach (var path in present.Where(p => !named.Contains(p)).Order(StringComparer.Ordinal))
        {
            var mounted = mounts.Contains(path);
            var repaired = false;
            string? action = null;
            if (repair)
            {
                try
                {
                    await _sandboxNetworking.DeleteNamespaceAsync(path, cancellationToken).ConfigureAwait(false);
                    repaired = !File.Exists(path) && !MountPointsUnder(directory).Contains(path);
                    action = repaired ? (mounted ? "unmounted and deleted" : "deleted") : "still there after the delete";
                }
                catch (Exception ex) when (ex is CnmException or IOException or UnauthorizedAccessException or Netlink.NamespaceException)
                {
                    action = ex.Message;
                }
            }

            findings.Add(new InvariantFinding
            {
                Kind = InvariantKinds.LeakedNamespace,
                Subject = $"namespace {path}",
                Detail = $"in the controller's namespace directory{(mounted ? ", bind-mounted" : ", not mounted")}; no sandbox record names it",
                Repaired = repaired,
                Repair = action,
            });
        }

        foreach (var (record, _) in sandboxes.Where(s => !s.Record.UsesHostNamespace && !s.Record.TearingDown))
        {
            if (await _sandboxNetworking.NamespaceExistsAsync(record.Key, cancellationToken).ConfigureAwait(false))
            {
                continue;
            }

            var repaired = false;
            string? action = null;
            if (repair && _sandboxes.TryGetValue(record.Id, out var sandbox))
            {
                await DeleteSandboxAsync(sandbox, cancellationToken).ConfigureAwait(false);
                (repaired, action) = (true, "the sandbox was deleted, as recovery deletes a sandbox whose namespace is gone");
            }

            findings.Add(new InvariantFinding
            {
                Kind = InvariantKinds.MissingNamespace,
                Subject = $"sandbox {Ids.Short(record.Id)} (container {record.ContainerId})",
                Detail = $"its namespace {record.Key} does not exist",
                Repaired = repaired,
                Repair = action ?? (repair ? "the sandbox is not loaded" : null),
            });
        }
    }

    /// <summary>Each driver that implements <see cref="IDriverDiagnostics"/> checks its part against the store's
    /// networks and endpoints (read again: the repairs above may have changed them). An endpoint record already reported
    /// as holding another's address or MAC (a copy, most likely) is not expected to have a driver record too.</summary>
    private async ValueTask CheckDriversAsync(bool repair, List<InvariantFinding> findings, HashSet<string> duplicates, CancellationToken cancellationToken)
    {
        var ignored = new List<InvariantFinding>();
        var networks = await ReadRecordsAsync(CoreStore.NetworkPrefix, CoreJsonContext.Default.NetworkRecord, ignored, cancellationToken).ConfigureAwait(false);
        var endpoints = await ReadRecordsAsync(CoreStore.EndpointPrefix, CoreJsonContext.Default.EndpointRecord, ignored, cancellationToken).ConfigureAwait(false);
        var intents = await ReadRecordsAsync(CoreStore.IntentPrefix, CoreJsonContext.Default.IntentRecord, ignored, cancellationToken).ConfigureAwait(false);
        foreach (var registered in _registry.Drivers)
        {
            if (registered.Driver is not IDriverDiagnostics diagnostics)
            {
                continue;
            }

            var networkIds = networks.Where(n => string.Equals(n.Record.Driver, registered.Name, StringComparison.Ordinal)).Select(n => n.Record.Id)
                .Concat(intents.Where(i => string.Equals(i.Record.Driver, registered.Name, StringComparison.Ordinal)).Select(i => i.Record.NetworkId))
                .ToHashSet(StringComparer.Ordinal);
            var endpointIds = endpoints.Where(e => networkIds.Contains(e.Record.NetworkId)).Select(e => e.Record.Id)
                .Concat(intents.Where(i => networkIds.Contains(i.Record.NetworkId) && i.Record.EndpointId is not null).Select(i => i.Record.EndpointId!))
                .ToHashSet(StringComparer.Ordinal);
            // What the driver must have a record of: local networks (a global network's endpoints are other hosts' too),
            // not being deleted, and no unfinished operation names them (its driver record may be half made or gone).
            var expectedNetworks = networks
                .Where(n => string.Equals(n.Record.Driver, registered.Name, StringComparison.Ordinal) && !n.Record.ConfigOnly && !IsGlobal(n.Record) && !n.Record.TearingDown)
                .Select(n => n.Record.Id)
                .Except(intents.Where(i => i.Record.Kind is IntentKind.CreateNetwork or IntentKind.DeleteNetwork).Select(i => i.Record.NetworkId), StringComparer.Ordinal)
                .ToHashSet(StringComparer.Ordinal);
            var expectedEndpoints = endpoints
                .Where(e => expectedNetworks.Contains(e.Record.NetworkId) && !e.Record.TearingDown && !duplicates.Contains(e.Record.Id))
                .Select(e => e.Record.Id)
                .Except(intents.Where(i => i.Record.EndpointId is not null).Select(i => i.Record.EndpointId!), StringComparer.Ordinal)
                .ToHashSet(StringComparer.Ordinal);
            findings.AddRange(await diagnostics.CheckAsync(
                new DriverCheckRequest
                {
                    NetworkIds = networkIds,
                    EndpointIds = endpointIds,
                    ExpectedNetworkIds = expectedNetworks,
                    ExpectedEndpointIds = expectedEndpoints,
                    Repair = repair,
                },
                cancellationToken).ConfigureAwait(false));
        }
    }

    /// <summary>Reads every record under a prefix; one that cannot be read is a finding (recovery sets such records
    /// aside at start), never an exception.</summary>
    private async ValueTask<List<(T Record, long Version)>> ReadRecordsAsync<T>(string prefix, JsonTypeInfo<T> info, List<InvariantFinding> findings, CancellationToken cancellationToken)
    {
        var result = new List<(T, long)>();
        foreach (var entry in await _store.Store.ListAsync(prefix, cancellationToken).ConfigureAwait(false))
        {
            try
            {
                result.Add((CoreStore.Deserialize(entry, info), entry.Version));
            }
            catch (CnmInternalException ex)
            {
                findings.Add(new InvariantFinding { Kind = InvariantKinds.UnreadableRecord, Subject = $"store key {entry.Key}", Detail = ex.Reason });
            }
        }

        return result;
    }

    /// <summary>The address part of a CIDR text, canonical; null for none.</summary>
    private static string? AddressOf(string? cidr) =>
        cidr is null ? null : IPAddress.TryParse(cidr.Split('/')[0], out var a) ? a.ToString() : cidr;

    /// <summary>The mount points directly inside <paramref name="directory"/> (this process's mount namespace).</summary>
    private static HashSet<string> MountPointsUnder(string directory)
    {
        var result = new HashSet<string>(StringComparer.Ordinal);
        try
        {
            foreach (var line in File.ReadLines("/proc/self/mountinfo"))
            {
                var fields = line.Split(' ');
                if (fields.Length > 4)
                {
                    var mountPoint = fields[4].Replace("\\040", " ", StringComparison.Ordinal);
                    if (string.Equals(Path.GetDirectoryName(mountPoint), directory.TrimEnd('/'), StringComparison.Ordinal))
                    {
                        result.Add(mountPoint);
                    }
                }
            }
        }
        catch (IOException)
        {
            // No mount table: the files alone are checked.
        }

        return result;
    }
}
