using CnmSharp.Diagnostics;
using CnmSharp.Firewall.Iptables;
using CnmSharp.Firewall.Nftables;
using Microsoft.Extensions.Logging;

namespace CnmSharp.Firewall;

/// <summary>Which firewall backend a controller uses (<see cref="CnmSharp.CnmOptions.Firewall"/>).</summary>
public enum FirewallBackendChoice
{
    /// <summary>iptables (Docker's layout, through <c>iptables-restore</c>): the default.</summary>
    Iptables = 0,

    /// <summary>nftables over netlink, in CnmSharp's own tables.</summary>
    Nftables = 1,

    /// <summary>nftables where the host namespace's kernel has nf_tables, else iptables.</summary>
    Auto = 2,

    /// <summary>No firewall: the controller programs no rule (and removes none).</summary>
    None = 3,
}

/// <summary>
/// Creates the backend a <see cref="FirewallBackendChoice"/> names, in the host namespace. The backend it returns also
/// removes the other backend's rules the first time each owner reconciles (so switching backend on an existing state
/// moves the rules): nftables removes iptables rules of the owner's networks when there are any; iptables removes
/// CnmSharp's nftables tables when they exist.
/// </summary>
public sealed class SelectingFirewallBackendFactory : IFirewallBackendFactory
{
    private readonly FirewallBackendChoice _choice;
    private readonly IptablesFirewallBackendFactory _iptables;
    private readonly NftablesFirewallBackendFactory _nftables;
    private readonly NftablesFirewallBackendOptions _nftablesOptions;
    private readonly ILoggerFactory? _loggerFactory;
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, FirewallBackendChoice> _resolved = new(StringComparer.Ordinal);

    /// <summary>Creates the factory.</summary>
    /// <param name="choice">The backend to use; not <see cref="FirewallBackendChoice.None"/> (use no factory then).</param>
    /// <param name="iptablesOptions">Settings of the iptables backend, or null for the defaults.</param>
    /// <param name="nftablesOptions">Settings of the nftables backend (table names), or null for the defaults.</param>
    /// <param name="loggerFactory">Logging; null for none.</param>
    public SelectingFirewallBackendFactory(FirewallBackendChoice choice, IptablesFirewallBackendOptions? iptablesOptions = null,
        NftablesFirewallBackendOptions? nftablesOptions = null, ILoggerFactory? loggerFactory = null)
    {
        if (!Enum.IsDefined(choice) || choice == FirewallBackendChoice.None)
        {
            throw new ArgumentOutOfRangeException(nameof(choice), choice, "a firewall backend to create");
        }

        _choice = choice;
        _loggerFactory = loggerFactory;
        _iptables = new IptablesFirewallBackendFactory(iptablesOptions, loggerFactory);
        _nftablesOptions = nftablesOptions ?? new NftablesFirewallBackendOptions();
        _nftables = new NftablesFirewallBackendFactory(_nftablesOptions, loggerFactory);
    }

    /// <summary>The choice (<c>auto</c> until a backend is created).</summary>
    public string Name => _choice.ToString().ToLowerInvariant();

    /// <summary>Resolves <see cref="FirewallBackendChoice.Auto"/> for a namespace.</summary>
    /// <param name="choice">The choice.</param>
    /// <param name="hostNamespacePath">The host namespace, or null for the process's own.</param>
    /// <returns><see cref="FirewallBackendChoice.Nftables"/> or <see cref="FirewallBackendChoice.Iptables"/> (or the choice itself).</returns>
    public static FirewallBackendChoice Resolve(FirewallBackendChoice choice, string? hostNamespacePath) =>
        choice != FirewallBackendChoice.Auto ? choice
            : NftablesFirewallBackend.IsSupportedAsync(hostNamespacePath).AsTask().GetAwaiter().GetResult() ? FirewallBackendChoice.Nftables
            : FirewallBackendChoice.Iptables;

    /// <inheritdoc />
    public IFirewallBackend Create(string? hostNamespacePath)
    {
        HostNamespaceGuard.Check(hostNamespacePath, "firewall backend");
        // Auto probes the kernel once per namespace path and factory (one netlink round trip; a controller is built per
        // host namespace, the DI factory is a singleton), not at every Create.
        var resolved = _choice != FirewallBackendChoice.Auto ? _choice : _resolved.GetOrAdd(hostNamespacePath ?? "", _ => Resolve(_choice, hostNamespacePath));
        var useNftables = resolved == FirewallBackendChoice.Nftables;
        var primary = useNftables ? _nftables.Create(hostNamespacePath) : _iptables.Create(hostNamespacePath);
        return new SwitchingFirewallBackend(primary, useNftables
            ? new IptablesFirewallBackend(new IptablesFirewallBackendOptions { HostNamespacePath = hostNamespacePath }, _loggerFactory?.CreateLogger<IptablesFirewallBackend>())
            : new NftablesFirewallBackend(_nftablesOptions with { HostNamespacePath = hostNamespacePath }, _loggerFactory?.CreateLogger<NftablesFirewallBackend>()));
    }
}

/// <summary>A backend that, on each owner's first reconcile, removes what the other backend left of that owner.</summary>
internal sealed class SwitchingFirewallBackend(IFirewallBackend primary, IFirewallBackend previous) : IFirewallBackend, IFirewallDiagnostics, IDisposable
{
    /// <summary>The primary backend's check (what the previous one left is removed by each owner's first reconcile).</summary>
    public ValueTask<IReadOnlyList<CnmSharp.Diagnostics.InvariantFinding>> CheckAsync(bool repair, CancellationToken cancellationToken = default) =>
        primary is IFirewallDiagnostics diagnostics ? diagnostics.CheckAsync(repair, cancellationToken) : ValueTask.FromResult<IReadOnlyList<CnmSharp.Diagnostics.InvariantFinding>>([]);

    private readonly HashSet<string> _cleaned = new(StringComparer.Ordinal);

    public IFirewallBackend Primary => primary;

    public string Name => primary.Name;

    public ValueTask SetupNetworkAsync(FirewallNetwork network, CancellationToken cancellationToken = default) => primary.SetupNetworkAsync(network, cancellationToken);

    public ValueTask TeardownNetworkAsync(FirewallNetwork network, CancellationToken cancellationToken = default) => primary.TeardownNetworkAsync(network, cancellationToken);

    public ValueTask SetupPortForwardsAsync(FirewallPortForward forward, CancellationToken cancellationToken = default) => primary.SetupPortForwardsAsync(forward, cancellationToken);

    public ValueTask TeardownPortForwardsAsync(FirewallPortForward forward, CancellationToken cancellationToken = default) => primary.TeardownPortForwardsAsync(forward, cancellationToken);

    public async ValueTask ReconcileAsync(IReadOnlyList<FirewallNetwork> networks, IReadOnlyList<FirewallPortForward> forwards, CancellationToken cancellationToken = default)
    {
        foreach (var owner in networks.Select(n => n.Owner).Distinct())
        {
            var mine = networks.Where(n => n.Owner == owner).ToList();
            await CleanAsync(owner, mine, [.. forwards.Where(f => mine.Any(n => n.NetworkId == f.NetworkId))], cancellationToken).ConfigureAwait(false);
        }

        await primary.ReconcileAsync(networks, forwards, cancellationToken).ConfigureAwait(false);
    }

    public async ValueTask ReconcileOwnerAsync(string owner, IReadOnlyList<FirewallNetwork> networks, IReadOnlyList<FirewallPortForward> forwards, CancellationToken cancellationToken = default)
    {
        await CleanAsync(owner, networks, forwards, cancellationToken).ConfigureAwait(false);
        await primary.ReconcileOwnerAsync(owner, networks, forwards, cancellationToken).ConfigureAwait(false);
    }

    public ValueTask AdoptAsync(IReadOnlyList<FirewallNetwork> networks, IReadOnlyList<FirewallPortForward> forwards, CancellationToken cancellationToken = default) =>
        primary.AdoptAsync(networks, forwards, cancellationToken);

    public ValueTask AdoptOwnerAsync(string owner, IReadOnlyList<FirewallNetwork> networks, IReadOnlyList<FirewallPortForward> forwards, CancellationToken cancellationToken = default) =>
        primary.AdoptOwnerAsync(owner, networks, forwards, cancellationToken);

    private async ValueTask CleanAsync(string owner, IReadOnlyList<FirewallNetwork> networks, IReadOnlyList<FirewallPortForward> forwards, CancellationToken cancellationToken)
    {
        if (!_cleaned.Add(owner))
        {
            return;
        }

        switch (previous)
        {
            case NftablesFirewallBackend nftables:
                if (await NftablesFirewallBackend.IsSupportedAsync(nftables.HostNamespacePath, cancellationToken).ConfigureAwait(false))
                {
                    await nftables.RemoveAllAsync(cancellationToken).ConfigureAwait(false);
                }

                break;
            case IptablesFirewallBackend iptables when networks.Count > 0:
                if (await iptables.HasRulesOfAsync(networks, cancellationToken).ConfigureAwait(false))
                {
                    // Teach it the owner's networks, then reconcile them away: one batch per family.
                    await iptables.AdoptOwnerAsync(owner, networks, forwards, cancellationToken).ConfigureAwait(false);
                    await iptables.ReconcileOwnerAsync(owner, [], [], cancellationToken).ConfigureAwait(false);
                }

                break;
        }
    }

    public void Dispose()
    {
        (primary as IDisposable)?.Dispose();
        (previous as IDisposable)?.Dispose();
    }
}
