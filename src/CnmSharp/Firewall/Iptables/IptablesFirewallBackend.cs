using System.Diagnostics;
using CnmSharp.Firewall.Internal;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace CnmSharp.Firewall.Iptables;

/// <summary>Settings of an <see cref="IptablesFirewallBackend"/>.</summary>
public sealed record IptablesFirewallBackendOptions
{
    /// <summary>The host network namespace to program (for example <c>/run/netns/h1</c>), or null for the process's own.</summary>
    public string? HostNamespacePath { get; init; }

    /// <summary>
    /// When true (the default) every change first reads the tables with one <c>iptables-save</c> (per family), so rules
    /// changed by others since the last call are seen. When false the backend trusts the state it computed after its
    /// own last change and reads the kernel only the first time and after a failed batch: one process per change
    /// instead of two, at the price of not noticing an external flush until <see cref="IFirewallBackend.ReconcileAsync"/>.
    /// </summary>
    public bool ReadStateBeforeEachChange { get; init; } = true;

    /// <summary>The <c>iptables-restore</c> program.</summary>
    public string IptablesRestore { get; init; } = "iptables-restore";

    /// <summary>The <c>iptables-save</c> program.</summary>
    public string IptablesSave { get; init; } = "iptables-save";

    /// <summary>The <c>ip6tables-restore</c> program.</summary>
    public string Ip6tablesRestore { get; init; } = "ip6tables-restore";

    /// <summary>The <c>ip6tables-save</c> program.</summary>
    public string Ip6tablesSave { get; init; } = "ip6tables-save";
}

/// <summary>
/// A firewall backend that programs Docker's iptables layout (nat <c>DOCKER</c>; filter <c>DOCKER</c>,
/// <c>DOCKER-ISOLATION-STAGE-1/2</c>, <c>DOCKER-USER</c>) in one host namespace. Each change reads the current tables
/// once, computes the difference between the rules of the records before and after the change, and applies it with one
/// <c>iptables-restore --noflush --wait</c> process per address family. A failed batch is rolled back to the rules
/// that existed before it and reported as <see cref="CnmInternalException"/> with code
/// <see cref="CnmErrorCodes.KernelError"/>. It does not set <c>ip_forward</c> or any other sysctl.
/// </summary>
public sealed partial class IptablesFirewallBackend : IFirewallBackend, IDisposable
{
    private static readonly IptablesFamily[] Families = [IptablesFamily.IPv4, IptablesFamily.IPv6];

    private readonly IptablesFirewallBackendOptions _options;
    private readonly ICommandRunner _runner;
    private readonly ILogger _logger;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly IptablesState?[] _cached = new IptablesState?[2];
    private FirewallRecords _records = FirewallRecords.Empty;

    /// <summary>Creates a backend for a host namespace.</summary>
    /// <param name="hostNamespacePath">The namespace path, or null for the process's own.</param>
    public IptablesFirewallBackend(string? hostNamespacePath)
        : this(new IptablesFirewallBackendOptions { HostNamespacePath = hostNamespacePath })
    {
    }

    /// <summary>Creates a backend.</summary>
    /// <param name="options">The settings.</param>
    /// <param name="logger">Logs each batch (debug) and each rollback (warning); null for none.</param>
    public IptablesFirewallBackend(IptablesFirewallBackendOptions options, ILogger<IptablesFirewallBackend>? logger = null)
        : this(options, ProcessCommandRunner.Instance, logger)
    {
    }

    internal IptablesFirewallBackend(IptablesFirewallBackendOptions options, ICommandRunner runner, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options;
        _runner = runner;
        _logger = logger ?? NullLogger.Instance;
    }

    /// <summary>The name of this backend.</summary>
    public const string BackendName = "iptables";

    /// <inheritdoc />
    public string Name => BackendName;

    /// <summary>The host namespace path, or null for the process's own.</summary>
    public string? HostNamespacePath => _options.HostNamespacePath;

    /// <summary>How many <c>iptables-save</c>/<c>iptables-restore</c> processes this backend ran (for benchmarks).</summary>
    public int ProcessCount { get; private set; }

    /// <inheritdoc />
    public ValueTask SetupNetworkAsync(FirewallNetwork network, CancellationToken cancellationToken = default)
    {
        FirewallValidation.Validate(network);
        return ChangeAsync(
            records =>
            {
                RequireFreeBridge(records, network);
                return records.WithNetwork(network);
            },
            extraBefore: null,
            readKernel: false,
            cancellationToken);
    }

    /// <inheritdoc />
    public ValueTask TeardownNetworkAsync(FirewallNetwork network, CancellationToken cancellationToken = default)
    {
        FirewallValidation.Validate(network);
        return ChangeAsync(records => records.WithoutNetwork(network.NetworkId), new FirewallRecords([network], []), readKernel: false, cancellationToken);
    }

    /// <inheritdoc />
    public ValueTask SetupPortForwardsAsync(FirewallPortForward forward, CancellationToken cancellationToken = default)
    {
        FirewallValidation.Validate(forward);
        return ChangeAsync(
            records =>
            {
                RequireNetwork(records, forward);
                return records.WithForward(forward);
            },
            extraBefore: null,
            readKernel: false,
            cancellationToken);
    }

    /// <inheritdoc />
    public ValueTask TeardownPortForwardsAsync(FirewallPortForward forward, CancellationToken cancellationToken = default)
    {
        FirewallValidation.Validate(forward);
        return ChangeAsync(records => records.WithoutForward(forward.NetworkId, forward.EndpointId), new FirewallRecords([], [forward]), readKernel: false, cancellationToken);
    }

    /// <inheritdoc />
    public ValueTask ReconcileAsync(IReadOnlyList<FirewallNetwork> networks, IReadOnlyList<FirewallPortForward> forwards, CancellationToken cancellationToken = default)
    {
        var after = ToRecords(networks, forwards);

        // An external flush invalidates what we remember: always read the kernel here.
        return ChangeAsync(_ => after, extraBefore: null, readKernel: true, cancellationToken);
    }

    /// <inheritdoc />
    public ValueTask ReconcileOwnerAsync(string owner, IReadOnlyList<FirewallNetwork> networks, IReadOnlyList<FirewallPortForward> forwards, CancellationToken cancellationToken = default)
    {
        FirewallValidation.RequireOwner(owner, networks);
        var mine = ToRecords(networks, forwards);
        return ChangeAsync(records => records.WithOwner(owner, mine), extraBefore: null, readKernel: true, cancellationToken, owner);
    }

    /// <inheritdoc />
    public async ValueTask AdoptOwnerAsync(string owner, IReadOnlyList<FirewallNetwork> networks, IReadOnlyList<FirewallPortForward> forwards, CancellationToken cancellationToken = default)
    {
        FirewallValidation.RequireOwner(owner, networks);
        var mine = ToRecords(networks, forwards);
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            _records = _records.WithOwner(owner, mine);
            Array.Clear(_cached);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <inheritdoc />
    public async ValueTask AdoptAsync(IReadOnlyList<FirewallNetwork> networks, IReadOnlyList<FirewallPortForward> forwards, CancellationToken cancellationToken = default)
    {
        var adopted = ToRecords(networks, forwards);
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            _records = adopted;
            Array.Clear(_cached); // the kernel's rules changed too
        }
        finally
        {
            _gate.Release();
        }
    }

    private static FirewallRecords ToRecords(IReadOnlyList<FirewallNetwork> networks, IReadOnlyList<FirewallPortForward> forwards)
    {
        ArgumentNullException.ThrowIfNull(networks);
        ArgumentNullException.ThrowIfNull(forwards);
        var records = FirewallRecords.Empty;
        foreach (var network in networks)
        {
            FirewallValidation.Validate(network);
            RequireFreeBridge(records, network);
            records = records.WithNetwork(network);
        }

        foreach (var forward in forwards)
        {
            FirewallValidation.Validate(forward);
            RequireNetwork(records, forward);
            records = records.WithForward(forward);
        }

        return records;
    }

    /// <summary>One change: under the gate, compute the records after it, apply the difference as one batch, and keep
    /// the new records only when the batch went through.</summary>
    private async ValueTask ChangeAsync(Func<FirewallRecords, FirewallRecords> next, FirewallRecords? extraBefore, bool readKernel, CancellationToken cancellationToken, string? owner = null)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var after = next(_records);
            if (readKernel)
            {
                Array.Clear(_cached);
            }

            await ApplyAsync(_records, after, extraBefore, cancellationToken, owner).ConfigureAwait(false);
            _records = after;
        }
        finally
        {
            _gate.Release();
        }
    }

    private static void RequireFreeBridge(FirewallRecords records, FirewallNetwork network)
    {
        var clash = records.Networks.FirstOrDefault(n => n.NetworkId != network.NetworkId && n.BridgeName == network.BridgeName);
        if (clash is not null)
        {
            throw new CnmConflictException(CnmErrorCodes.NetworkExists, $"network \"{network.NetworkId}\"",
                $"bridge {network.BridgeName} already has the rules of network \"{clash.NetworkId}\"");
        }
    }

    /// <summary>The restore input a change would produce against a given kernel state (for tests and diagnostics).</summary>
    internal static string PlanFor(IptablesFamily family, IptablesState state, FirewallRecords before, FirewallRecords after)
    {
        var desired = after.Build(family);
        var old = before.Build(family);
        return IptablesPlanner.Plan(state, desired, old.Rules, old.Chains);
    }

    /// <summary>True when the kernel holds any rule of these networks that names one of their bridges (shared
    /// rules alone do not count): one <c>iptables-save</c> per family. For a backend switch.</summary>
    internal async ValueTask<bool> HasRulesOfAsync(IReadOnlyList<FirewallNetwork> networks, CancellationToken cancellationToken)
    {
        var records = new FirewallRecords(networks, []);
        foreach (var family in Families)
        {
            var ruleset = records.Build(family);
            if (ruleset.IsEmpty)
            {
                continue;
            }

            var state = await SaveAsync(family, cancellationToken).ConfigureAwait(false);
            if (ruleset.Rules.Any(r => state.Contains(r) && networks.Any(n => r.Spec.Contains(n.BridgeName, StringComparison.Ordinal))))
            {
                return true;
            }
        }

        return false;
    }

    /// <inheritdoc />
    public void Dispose() => _gate.Dispose();

    private static void RequireNetwork(FirewallRecords records, FirewallPortForward forward)
    {
        var network = records.Networks.FirstOrDefault(n => n.NetworkId == forward.NetworkId)
            ?? throw new CnmNotFoundException(CnmErrorCodes.NoSuchNetwork, $"network \"{forward.NetworkId}\"",
                "the network has no firewall rules; set it up before its port forwards");
        if (network.BridgeName != forward.BridgeName)
        {
            throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidOption, $"endpoint \"{forward.EndpointId}\"",
                $"bridge {forward.BridgeName} is not the bridge of network \"{forward.NetworkId}\" ({network.BridgeName})");
        }
    }

    /// <summary>Applies the change from <paramref name="before"/> to <paramref name="after"/>. With an
    /// <paramref name="owner"/>, only that owner's rules (and the shared ones) are added when missing, and only rules
    /// of the owner's previous records that no record wants any more are removed: other owners' rules are left as
    /// they are, present or not.</summary>
    private async ValueTask ApplyAsync(FirewallRecords before, FirewallRecords after, FirewallRecords? extraBefore, CancellationToken cancellationToken, string? owner = null)
    {
        var applied = new List<(IptablesFamily Family, IptablesState Original, IptablesRuleSet Old, IptablesRuleSet New)>();
        foreach (var family in Families)
        {
            var old = (owner is null ? before : before.OfOwner(owner)).Build(family, extraBefore);
            var desired = (owner is null ? after : after.OfOwner(owner)).Build(family);
            if (owner is not null)
            {
                // Keep what another owner's records still want (shared chains, identical rules).
                var everyone = after.Build(family);
                var unwanted = new IptablesRuleSet();
                foreach (var chain in old.Chains.Where(c => !everyone.Contains(c)))
                {
                    unwanted.AddChain(chain);
                }

                foreach (var rule in old.Rules.Where(r => !everyone.Contains(r)))
                {
                    unwanted.Add(rule);
                }

                old = unwanted;
            }

            if (old.IsEmpty && desired.IsEmpty)
            {
                continue;
            }

            var fresh = !_options.ReadStateBeforeEachChange && _cached[(int)family] is { } cached ? null : await SaveAsync(family, cancellationToken).ConfigureAwait(false);
            var state = fresh ?? _cached[(int)family]!;
            _cached[(int)family] = null;
            var original = state.Clone();
            var batch = IptablesPlanner.Plan(state, desired, old.Rules, old.Chains);
            var error = batch.Length == 0 ? null : await RestoreAsync(family, batch, cancellationToken).ConfigureAwait(false);
            if (error is not null && fresh is null)
            {
                // The remembered state was stale: read the kernel and try once more. A rollback still aims at the
                // state this change started from (the first attempt may have committed a table).
                state = await SaveAsync(family, cancellationToken).ConfigureAwait(false);
                batch = IptablesPlanner.Plan(state, desired, old.Rules, old.Chains);
                error = batch.Length == 0 ? null : await RestoreAsync(family, batch, cancellationToken).ConfigureAwait(false);
            }

            applied.Add((family, original, old, desired));
            if (error is not null)
            {
                LogBatchFailed(_logger, family, Where, error);
                await RollBackAsync(applied).ConfigureAwait(false);
                throw new CnmInternalException(CnmErrorCodes.KernelError, $"{Tool(family, restore: true)} in {HostNamespacePath ?? "the process's namespace"}",
                    error + "\nbatch:\n" + batch);
            }

            _cached[(int)family] = state;
        }
    }

    /// <summary>
    /// Puts every rule and chain the failed change touched back to what existed before it (iptables-restore commits per
    /// table, so a batch whose filter part failed may have applied its nat part). Best effort: the original error is
    /// what the caller sees.
    /// </summary>
    private async ValueTask RollBackAsync(List<(IptablesFamily Family, IptablesState Original, IptablesRuleSet Old, IptablesRuleSet New)> applied)
    {
        foreach (var (family, original, old, @new) in applied)
        {
            _cached[(int)family] = null;
            try
            {
                var target = new IptablesRuleSet();
                var unwanted = new List<IptablesRule>();
                var unwantedChains = new List<ChainRef>();
                foreach (var chain in old.Chains.Concat(@new.Chains))
                {
                    if (original.HasChain(chain))
                    {
                        target.AddChain(chain);
                    }
                    else
                    {
                        unwantedChains.Add(chain);
                    }
                }

                foreach (var rule in @new.Rules.Concat(old.Rules))
                {
                    if (original.Contains(rule))
                    {
                        target.Add(rule);
                    }
                    else
                    {
                        unwanted.Add(rule);
                    }
                }

                var state = await SaveAsync(family, CancellationToken.None).ConfigureAwait(false);
                var batch = IptablesPlanner.Plan(state, target, unwanted, unwantedChains);
                if (batch.Length > 0)
                {
                    await RestoreAsync(family, batch, CancellationToken.None).ConfigureAwait(false);
                }
            }
            catch (CnmException ex)
            {
                // Best effort; the next reconcile repairs what is left.
                LogRollbackFailed(_logger, family, Where, ex.Message);
            }
        }
    }

    private async ValueTask<IptablesState> SaveAsync(IptablesFamily family, CancellationToken cancellationToken)
    {
        var (file, args) = ProcessCommandRunner.InNamespace(HostNamespacePath, Tool(family, restore: false));
        ProcessCount++;
        var result = await _runner.RunAsync(file, args, null, cancellationToken).ConfigureAwait(false);
        if (result.ExitCode != 0)
        {
            throw new CnmInternalException(CnmErrorCodes.KernelError, $"{Tool(family, restore: false)} in {HostNamespacePath ?? "the process's namespace"}",
                $"exit code {result.ExitCode}: {result.StandardError.Trim()}");
        }

        try
        {
            return IptablesState.Parse(result.StandardOutput);
        }
        catch (FormatException ex)
        {
            throw new CnmInternalException(CnmErrorCodes.KernelError, Tool(family, restore: false), ex.Message, ex);
        }
    }

    /// <summary>Runs one batch; returns null on success, else the error text.</summary>
    private async ValueTask<string?> RestoreAsync(IptablesFamily family, string batch, CancellationToken cancellationToken)
    {
        var (file, args) = ProcessCommandRunner.InNamespace(HostNamespacePath, Tool(family, restore: true), "--noflush", "--wait");
        ProcessCount++;
        // Cancellation is honoured up to here: a started batch runs to its end, so a table is never left
        // half-changed by a killed process.
        cancellationToken.ThrowIfCancellationRequested();
        var started = Stopwatch.GetTimestamp();
        var result = await _runner.RunAsync(file, args, batch, CancellationToken.None).ConfigureAwait(false);
        var elapsed = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
        var lines = batch.AsSpan().Count('\n');
        LogBatch(_logger, family, Where, lines, result.ExitCode, elapsed);
        return result.ExitCode == 0 ? null : $"exit code {result.ExitCode}: {result.StandardError.Trim()}";
    }

    private string Where => HostNamespacePath ?? "the process's namespace";

    [LoggerMessage(Level = LogLevel.Debug, Message = "{Family} batch of {Lines} lines in {Namespace}: exit {ExitCode} after {Milliseconds:F1} ms")]
    private static partial void LogBatch(ILogger logger, IptablesFamily family, string @namespace, int lines, int exitCode, double milliseconds);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Family} batch failed in {Namespace}, rolling back: {Error}")]
    private static partial void LogBatchFailed(ILogger logger, IptablesFamily family, string @namespace, string error);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Family} rollback failed in {Namespace}: {Error}")]
    private static partial void LogRollbackFailed(ILogger logger, IptablesFamily family, string @namespace, string error);

    private string Tool(IptablesFamily family, bool restore) => (family, restore) switch
    {
        (IptablesFamily.IPv4, true) => _options.IptablesRestore,
        (IptablesFamily.IPv4, false) => _options.IptablesSave,
        (_, true) => _options.Ip6tablesRestore,
        _ => _options.Ip6tablesSave,
    };
}

/// <summary>The iptables ruleset of shared firewall records.</summary>
internal static class IptablesRecordsExtensions
{
    /// <summary>The ruleset of a family; <paramref name="extra"/> records (being torn down, maybe unknown) are added.</summary>
    public static IptablesRuleSet Build(this FirewallRecords records, IptablesFamily family, FirewallRecords? extra = null)
    {
        var networks = records.Networks.ToList();
        var forwards = records.Forwards.ToList();
        if (extra is not null)
        {
            networks.AddRange(extra.Networks.Where(n => !networks.Contains(n)));
            forwards.AddRange(extra.Forwards.Where(f => !forwards.Contains(f)));
        }

        return IptablesRuleBuilder.Build(family, networks,
            forwards.Select(f => (f, networks.FirstOrDefault(n => n.NetworkId == f.NetworkId))));
    }
}
