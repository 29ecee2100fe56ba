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
        return ChangeAsync(records => records.WithForward(forward), null, records => records.OwnerOf(forward), cancellationToken);
    }

    /// <inheritdoc />
    public ValueTask TeardownPortForwardsAsync(FirewallPortForward forward, CancellationToken cancellationToken = default)
    {
        FirewallValidation.Validate(forward);
        return ChangeAsync(records => records.WithoutForward(forward.NetworkId, forward.EndpointId), new FirewallRecords([], [forward]),
            records => records.OwnerOf(forward), cancellationToken);
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
    private async ValueTask ChangeAsync(Func<FirewallRecords, FirewallRecords> next, FirewallRecords? extraBefore, Func<FirewallRecords, string?> ownerOf,
        CancellationToken cancellationToken)
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
                var old = before.Build(family);
                var @new = after.Build(family);
                if (old.IsEmpty && @new.IsEmpty)
                {
                    continue;
                }

                if (!_synced[Slot(family)] || @new.IsEmpty)
                {
                    // The first change since start, or the last network of the family: read the kernel first (the
                    // table goes only when no other owner's chain is left in it).
                    needsSync.Add(family);
                    continue;
                }

                NftablesPlanner.PlanChange(batch, family, Table(family), old, @new);
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
    private async ValueTask SyncFamilyAsync(NftFamily family, FirewallRecords records, string? owner, CancellationToken cancellationToken)
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
                return;
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

    /// <inheritdoc />
    public void Dispose()
    {
        _client?.Dispose();
        _gate.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "nftables batch of {Messages} messages in {Namespace}: {Milliseconds:F3} ms")]
    private static partial void LogBatch(ILogger logger, string @namespace, int messages, double milliseconds);

    [LoggerMessage(Level = LogLevel.Warning, Message = "nftables change refused in {Namespace} (the ruleset drifted), re-planning from a dump: {Error}")]
    private static partial void LogReplan(ILogger logger, string @namespace, string error);
}
