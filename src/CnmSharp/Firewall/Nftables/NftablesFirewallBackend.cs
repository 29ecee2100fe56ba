using System.Diagnostics;
using CnmSharp.Firewall.Internal;
using CnmSharp.Netlink;
using CnmSharp.Netlink.Nftables;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace CnmSharp.Firewall.Nftables;

/// <summary>Settings of an <see cref="NftablesFirewallBackend"/>.</summary>
public sealed record NftablesFirewallBackendOptions
{
    /// <summary>The host network namespace to program (for example <c>/run/netns/h1</c>), or null for the process's own.</summary>
    public string? HostNamespacePath { get; init; }

    /// <summary>The name of CnmSharp's IPv4 table (<c>ip cnmsharp</c>). Nothing outside it is ever touched.</summary>
    public string TableName { get; init; } = "cnmsharp";

    /// <summary>The name of CnmSharp's IPv6 table (<c>ip6 cnmsharp</c>).</summary>
    public string IPv6TableName { get; init; } = "cnmsharp";

    /// <summary>
    /// Watch CnmSharp's tables for changes made by other processes (nf_tables notifications) and repair the owners they
    /// touched at once, as their reconcile would; each repair raises <see cref="NftablesFirewallBackend.DriftRepaired"/>
    /// and logs a warning. Off by default: a short-lived process (the <c>cnm</c> CLI) has nothing to watch with, and
    /// two long-lived processes programming the same tables would undo each other's changes. Turn it on in one
    /// long-lived process that owns the host namespace's firewall.
    /// </summary>
    public bool WatchForDrift { get; init; }
}

/// <summary>What a drift repair of <see cref="NftablesFirewallBackend"/> did.</summary>
public sealed class NftablesDriftEventArgs : EventArgs
{
    /// <summary>Creates the arguments.</summary>
    /// <param name="owner">The owner whose part was repaired.</param>
    /// <param name="family">The table's family.</param>
    /// <param name="messages">How many messages the repair batch had.</param>
    /// <param name="cause">What the watch saw, for logs (e.g. <c>DeleteRule fwd-in-br0 bridge:n1/established</c>).</param>
    public NftablesDriftEventArgs(string owner, NftFamily family, int messages, string cause)
    {
        Owner = owner;
        Family = family;
        Messages = messages;
        Cause = cause;
    }

    /// <summary>The owner whose part was repaired.</summary>
    public string Owner { get; }

    /// <summary>The table's family.</summary>
    public NftFamily Family { get; }

    /// <summary>How many messages the repair batch had.</summary>
    public int Messages { get; }

    /// <summary>What the watch saw.</summary>
    public string Cause { get; }
}

/// <summary>
/// A firewall backend on nf_tables over netlink: no process is started. Each family has a table of CnmSharp's own
/// (<c>ip cnmsharp</c>, <c>ip6 cnmsharp</c>) with shared base chains dispatching through interface-name verdict maps to
/// per-bridge chains, and published ports as elements of maps and sets, so a port forward is an element change and
/// costs one netlink round trip. Every rule, per-network chain and element carries its owner in its comment, which is
/// how a reconcile finds what was deleted behind its back and touches one owner's part only. A change is one atomic
/// batch; a batch the kernel refuses (the ruleset drifted) is re-planned from a dump once.
/// </summary>
public sealed partial class NftablesFirewallBackend : IFirewallBackend, IDisposable
{
    /// <summary>The name of this backend.</summary>
    public const string BackendName = "nftables";

    private static readonly NftFamily[] Families = [NftFamily.IPv4, NftFamily.IPv6];

    private readonly NftablesFirewallBackendOptions _options;
    private readonly ILogger _logger;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly bool[] _synced = new bool[2];
    private FirewallRecords _records = FirewallRecords.Empty;
    private NftablesClient? _client;
    private CancellationTokenSource? _watch;
    private Task? _watchTask;

    /// <summary>Creates a backend.</summary>
    /// <param name="options">The settings.</param>
    /// <param name="logger">Logs each batch (debug) and each re-plan (warning); null for none.</param>
    public NftablesFirewallBackend(NftablesFirewallBackendOptions options, ILogger<NftablesFirewallBackend>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
    }

    /// <inheritdoc />
    public string Name => BackendName;

    /// <summary>The host namespace path, or null for the process's own.</summary>
    public string? HostNamespacePath => _options.HostNamespacePath;

    /// <summary>How many batches this backend sent (for tests and benchmarks).</summary>
    public int BatchCount { get; private set; }

    private string Table(NftFamily family) => family == NftFamily.IPv4 ? _options.TableName : _options.IPv6TableName;

    private static int Slot(NftFamily family) => family == NftFamily.IPv4 ? 0 : 1;

    /// <summary>True when the kernel of the namespace has nf_tables (a generation can be read).</summary>
    /// <param name="hostNamespacePath">The namespace, or null for the process's own.</param>
    /// <param name="cancellationToken">Cancels the probe.</param>
    /// <returns>Whether nf_tables is usable there.</returns>
    public static async ValueTask<bool> IsSupportedAsync(string? hostNamespacePath, CancellationToken cancellationToken = default)
    {
        try
        {
            using var client = Open(hostNamespacePath);
            await client.GetGenerationAsync(cancellationToken).ConfigureAwait(false);
            return true;
        }
        catch (NetlinkException)
        {
            return false;
        }
    }

    private static NftablesClient Open(string? path)
    {
        if (path is null)
        {
            return NftablesClient.Open();
        }

        using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        return NftablesClient.Open(handle);
    }

    private NftablesClient Client()
    {
        if (_client is null)
        {
            try
            {
                _client = Open(_options.HostNamespacePath);
                if (_options.WatchForDrift)
                {
                    StartWatch(_client);
                }
            }
            catch (Exception ex) when (ex is NetlinkException or IOException or UnauthorizedAccessException)
            {
                throw new CnmUnavailableException(CnmErrorCodes.KernelError, $"nftables in {Where}", ex.Message, ex);
            }
        }

        return _client;
    }

    private string Where => _options.HostNamespacePath ?? "the process's namespace";

    /// <inheritdoc />
    public ValueTask SetupNetworkAsync(FirewallNetwork network, CancellationToken cancellationToken = default)
    {
        FirewallValidation.Validate(network);
        return ChangeAsync(records => records.WithNetwork(network), null, _ => network.Owner, cancellationToken);
    }

    /// <inheritdoc />
    public ValueTask TeardownNetworkAsync(FirewallNetwork network, CancellationToken cancellationToken = default)
    {
        FirewallValidation.Validate(network);
        return ChangeAsync(records => records.WithoutNetwork(network.NetworkId), new FirewallRecords([network], []), _ => network.Owner, cancellationToken);
    }

    /// <inheritdoc />
    public ValueTask SetupPortForwardsAsync(FirewallPortForward forward, CancellationToken cancellationToken = default)
    {
        FirewallValidation.Validate(forward);
        return ChangeAsync(records => records.WithForward(forward), null, records => records.OwnerOf(forward), cancellationToken, forward);
    }

    /// <inheritdoc />
    public ValueTask TeardownPortForwardsAsync(FirewallPortForward forward, CancellationToken cancellationToken = default)
    {
        FirewallValidation.Validate(forward);
        return ChangeAsync(records => records.WithoutForward(forward.NetworkId, forward.EndpointId), new FirewallRecords([], [forward]),
            records => records.OwnerOf(forward), cancellationToken, forward);
    }

    /// <inheritdoc />
    public async ValueTask ReconcileAsync(IReadOnlyList<FirewallNetwork> networks, IReadOnlyList<FirewallPortForward> forwards, CancellationToken cancellationToken = default)
    {
        var after = FirewallRecords.From(networks, forwards);
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await SyncAsync(after, owner: null, cancellationToken).ConfigureAwait(false);
            _records = after;
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <inheritdoc />
    public async ValueTask ReconcileOwnerAsync(string owner, IReadOnlyList<FirewallNetwork> networks, IReadOnlyList<FirewallPortForward> forwards, CancellationToken cancellationToken = default)
    {
        FirewallValidation.RequireOwner(owner, networks);
        var mine = FirewallRecords.From(networks, forwards);
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var after = _records.WithOwner(owner, mine);
            await SyncAsync(after, owner, cancellationToken).ConfigureAwait(false);
            _records = after;
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <inheritdoc />
    public async ValueTask AdoptAsync(IReadOnlyList<FirewallNetwork> networks, IReadOnlyList<FirewallPortForward> forwards, CancellationToken cancellationToken = default)
    {
        var adopted = FirewallRecords.From(networks, forwards);
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        _records = adopted;
        Array.Clear(_synced);
        _gate.Release();
    }

    /// <inheritdoc />
    public async ValueTask AdoptOwnerAsync(string owner, IReadOnlyList<FirewallNetwork> networks, IReadOnlyList<FirewallPortForward> forwards, CancellationToken cancellationToken = default)
    {
        FirewallValidation.RequireOwner(owner, networks);
        var mine = FirewallRecords.From(networks, forwards);
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        _records = _records.WithOwner(owner, mine);
        Array.Clear(_synced);
        _gate.Release();
    }

    /// <summary>
    /// Removes CnmSharp's tables (both families) whatever they hold: for switching to another backend. The records are
    /// kept.
    /// </summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when the tables are gone.</returns>
    public async ValueTask RemoveAllAsync(CancellationToken cancellationToken = default)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var client = Client();
            var tables = await client.ListTablesAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
            using var batch = new NftablesBatch();
            foreach (var family in Families)
            {
                if (tables.Any(t => t.Family == family && t.Name == Table(family)))
                {
                    batch.DeleteTable(family, Table(family));
                }
            }

            await ExecuteAsync(batch, null, cancellationToken).ConfigureAwait(false);
            Array.Clear(_synced);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>One change: the difference between the models of the records before and after, as one batch; if the
    /// kernel refuses it (the ruleset drifted), the affected families are synchronised from a dump instead, touching
    /// only the change's owner's part (and the shared one).</summary>
    /// <remarks>A port forward change (<paramref name="forward"/> given) on a synced family plans only that endpoint's
    /// elements instead of diffing the whole models: a forward adds elements only, so the rest cannot change.</remarks>
    private async ValueTask ChangeAsync(Func<FirewallRecords, FirewallRecords> next, FirewallRecords? extraBefore, Func<FirewallRecords, string?> ownerOf,
        CancellationToken cancellationToken, FirewallPortForward? forward = null)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            // An owner that cannot be told (a forward of an unknown network): only the shared part may be repaired.
            var owner = ownerOf(_records) ?? "\0";
            var after = next(_records);
            after.Check();
            var before = extraBefore is null ? _records : _records.Plus(extraBefore);
            using var batch = new NftablesBatch();
            var needsSync = new List<NftFamily>();
            foreach (var family in Families)
            {
                var oldActive = NftablesRuleBuilder.IsActive(family, before.Networks);
                var newActive = NftablesRuleBuilder.IsActive(family, after.Networks);
                if (!oldActive && !newActive)
                {
                    continue;
                }

                if (!_synced[Slot(family)] || !newActive)
                {
                    // The first change since start, or the last network of the family: read the kernel first (the
                    // table goes only when no other owner's chain is left in it).
                    needsSync.Add(family);
                    continue;
                }

                if (forward is not null && oldActive)
                {
                    NftablesPlanner.PlanElements(batch, family, Table(family),
                        ForwardModel(family, before, forward), ForwardModel(family, after, forward));
                }
                else
                {
                    NftablesPlanner.PlanChange(batch, family, Table(family), before.Build(family), after.Build(family));
                }
            }

            try
            {
                await ExecuteAsync(batch, null, cancellationToken).ConfigureAwait(false);
            }
            catch (NftablesBatchException ex)
            {
                LogReplan(_logger, Where, ex.Message);
                needsSync = [.. Families];
            }

            foreach (var family in needsSync)
            {
                await SyncFamilyAsync(family, after, owner, cancellationToken).ConfigureAwait(false);
            }

            _records = after;
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>The elements the records' forward of the endpoint (of <paramref name="key"/>) adds to the family's model.</summary>
    private static NftModel ForwardModel(NftFamily family, FirewallRecords records, FirewallPortForward key)
    {
        return NftablesRuleBuilder.BuildForwards(family, records.Forwards
            .Where(f => f.NetworkId == key.NetworkId && f.EndpointId == key.EndpointId)
            .Select(f => (f, records.NetworkOf(f))));
    }

    private async ValueTask SyncAsync(FirewallRecords after, string? owner, CancellationToken cancellationToken)
    {
        after.Check();
        foreach (var family in Families)
        {
            await SyncFamilyAsync(family, after, owner, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Reads the family's table and makes it hold the desired model (one owner's part of it, or all), in one
    /// batch guarded by the generation the dump saw; a concurrent change makes it read again.</summary>
    private async ValueTask<int> SyncFamilyAsync(NftFamily family, FirewallRecords records, string? owner, CancellationToken cancellationToken)
    {
        var client = Client();
        var desired = records.Build(family);
        for (var attempt = 1; ; attempt++)
        {
            var generation = await client.GetGenerationAsync(cancellationToken).ConfigureAwait(false);
            var state = await NftablesState.ReadAsync(client, family, Table(family), cancellationToken).ConfigureAwait(false);
            using var batch = new NftablesBatch();
            NftablesPlanner.PlanSync(batch, family, Table(family), state, desired, owner);
            try
            {
                await ExecuteAsync(batch, generation, cancellationToken).ConfigureAwait(false);
                _synced[Slot(family)] = true;
                return batch.Count;
            }
            catch (NftablesBatchException ex) when (attempt < 3 && ex.Errors.Any(e => e.Errno == Errnos.ERESTART))
            {
                // Someone else committed between our dump and our batch: read again.
            }
            catch (NftablesBatchException ex)
            {
                _synced[Slot(family)] = false;
                throw new CnmInternalException(CnmErrorCodes.KernelError, $"nftables table {family} {Table(family)} in {Where}", ex.Message, ex);
            }
        }
    }

    private async ValueTask ExecuteAsync(NftablesBatch batch, uint? generation, CancellationToken cancellationToken)
    {
        if (batch.Count == 0)
        {
            return;
        }

        var started = Stopwatch.GetTimestamp();
        try
        {
            BatchCount++;
            await Client().ExecuteAsync(batch, generation, cancellationToken).ConfigureAwait(false);
        }
        catch (NetlinkException ex) when (ex is not NftablesBatchException)
        {
            throw new CnmInternalException(CnmErrorCodes.KernelError, $"nftables in {Where}", ex.Message, ex);
        }
        finally
        {
            var elapsed = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
            LogBatch(_logger, Where, batch.Count, elapsed);
        }
    }

    /// <summary>Raised (on a thread-pool thread) after the drift watch (<see cref="NftablesFirewallBackendOptions.WatchForDrift"/>)
    /// repaired an owner's part that another process changed.</summary>
    public event EventHandler<NftablesDriftEventArgs>? DriftRepaired;

    /// <summary>True while the drift watch runs (it starts with the first kernel access).</summary>
    public bool IsWatchingDrift => _watchTask is { IsCompleted: false };

    private void StartWatch(NftablesClient client)
    {
        _watch = new CancellationTokenSource();
        // Subscribed before this returns: a change committed after the first batch is seen.
        var events = client.MonitorAsync(_watch.Token);
        var token = _watch.Token;
        _watchTask = Task.Run(() => WatchAsync(events, token), CancellationToken.None);
    }

    /// <summary>
    /// Collects the changes of each transaction in CnmSharp's tables; when a transaction of another process committed
    /// (its generation event names a PID that is not one of this process's threads), re-syncs the owners it touched
    /// from a dump under the change lock. A transaction of our own, or a foreign one that changed nothing of ours,
    /// plans an empty batch and costs one dump.
    /// </summary>
    private async Task WatchAsync(IAsyncEnumerable<NftEvent> events, CancellationToken cancellationToken)
    {
        var touched = new Dictionary<NftFamily, HashSet<string>>();
        var causes = new List<string>();
        try
        {
            await foreach (var e in events.ConfigureAwait(false))
            {
                switch (e.Kind)
                {
                    case NftEventKind.Generation:
                        if (touched.Count > 0 && !IsOwnThread(e.ProcessId))
                        {
                            await RepairAsync(touched, string.Join("; ", causes), cancellationToken).ConfigureAwait(false);
                        }

                        touched.Clear();
                        causes.Clear();
                        break;
                    case NftEventKind.Resync:
                        touched[NftFamily.IPv4] = [AllOwners];
                        touched[NftFamily.IPv6] = [AllOwners];
                        await RepairAsync(touched, "lost notifications", cancellationToken).ConfigureAwait(false);
                        touched.Clear();
                        causes.Clear();
                        break;
                    default:
                        if (e.Table is { } table && (e.Family is NftFamily.IPv4 or NftFamily.IPv6) && table == Table(e.Family))
                        {
                            var owner = OwnerTag(e);
                            if (!touched.TryGetValue(e.Family, out var owners))
                            {
                                touched[e.Family] = owners = [];
                            }

                            owners.Add(owner);
                            if (causes.Count < 8)
                            {
                                causes.Add($"{e.Kind} {e.Chain ?? e.Set} {e.Comment ?? string.Join(",", e.Elements.Select(x => x.Comment))}".TrimEnd());
                            }
                        }

                        break;
                }
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException && (cancellationToken.IsCancellationRequested || _disposed))
        {
        }
        catch (Exception ex)
        {
            LogWatchFailed(_logger, Where, ex);
        }
    }

    private const string AllOwners = "\0all";

    /// <summary>The owner a change names: a rule's comment <c>owner:id</c>, a chain's or element's comment; a shared rule
    /// or one without a comment (a foreign rule in our chain, a table) concerns every owner.</summary>
    private static string OwnerTag(NftEvent e)
    {
        var tag = e.Kind switch
        {
            NftEventKind.NewRule or NftEventKind.DeleteRule => e.Comment is { } c && c.IndexOf(':', StringComparison.Ordinal) is > 0 and var colon ? c[..colon] : null,
            NftEventKind.NewChain or NftEventKind.DeleteChain => e.Comment,
            NftEventKind.NewElement or NftEventKind.DeleteElement => e.Elements.Select(x => x.Comment).Distinct().SingleOrDefault(),
            _ => null,
        };
        return tag is null || tag == NftablesRuleBuilder.SharedOwner ? AllOwners : tag;
    }

    private static bool IsOwnThread(int pid) =>
        pid == Environment.ProcessId || (pid > 0 && Directory.Exists($"/proc/self/task/{pid}"));

    private async ValueTask RepairAsync(Dictionary<NftFamily, HashSet<string>> touched, string cause, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        var repaired = new List<NftablesDriftEventArgs>();
        try
        {
            var known = _records.Networks.Select(n => n.Owner).Distinct(StringComparer.Ordinal).ToList();
            foreach (var (family, owners) in touched)
            {
                // Only owners the backend has records of: repairing an unknown one would remove its part.
                var scope = owners.Contains(AllOwners) ? known : [.. owners.Where(known.Contains)];
                foreach (var owner in scope)
                {
                    if (_records.Build(family).IsEmpty)
                    {
                        continue;
                    }

                    var messages = await SyncFamilyAsync(family, _records, owner, cancellationToken).ConfigureAwait(false);
                    if (messages > 0)
                    {
                        repaired.Add(new NftablesDriftEventArgs(owner, family, messages, cause));
                    }
                }
            }
        }
        catch (Exception ex) when (ex is CnmException)
        {
            LogWatchFailed(_logger, Where, ex);
        }
        finally
        {
            _gate.Release();
        }

        foreach (var args in repaired)
        {
            LogDriftRepaired(_logger, Where, args.Owner, args.Family.ToString(), args.Messages, args.Cause);
            DriftRepaired?.Invoke(this, args);
        }
    }

    private bool _disposed;

    /// <inheritdoc />
    public void Dispose()
    {
        _disposed = true;
        _watch?.Cancel();
        _client?.Dispose();
        try
        {
            _watchTask?.Wait(TimeSpan.FromSeconds(5));
        }
        catch (AggregateException)
        {
        }

        _watch?.Dispose();
        _gate.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "nftables drift in {Namespace}: another process changed owner {Owner}'s part of the {Family} table ({Cause}); repaired with {Messages} messages")]
    private static partial void LogDriftRepaired(ILogger logger, string @namespace, string owner, string family, int messages, string cause);

    [LoggerMessage(Level = LogLevel.Error, Message = "nftables drift watch in {Namespace} failed")]
    private static partial void LogWatchFailed(ILogger logger, string @namespace, Exception exception);

    [LoggerMessage(Level = LogLevel.Debug, Message = "nftables batch of {Messages} messages in {Namespace}: {Milliseconds:F3} ms")]
    private static partial void LogBatch(ILogger logger, string @namespace, int messages, double milliseconds);

    [LoggerMessage(Level = LogLevel.Warning, Message = "nftables change refused in {Namespace} (the ruleset drifted), re-planning from a dump: {Error}")]
    private static partial void LogReplan(ILogger logger, string @namespace, string error);
}
