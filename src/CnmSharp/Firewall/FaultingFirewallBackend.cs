using CnmSharp.Diagnostics;

namespace CnmSharp.Firewall;

/// <summary>
/// A firewall backend with fault points after each change it applies (tests only: a controller built with a fault
/// injector wraps its backend in one). Each call of the contract is one atomic batch per family in both backends, so
/// "after the call" is the one place a crash leaves the kernel changed and the caller unaware. Made with
/// <see cref="Wrap"/>, which keeps the inner backend's optional <see cref="IFirewallDiagnostics"/> (so the controller's
/// check still checks the rules).
/// </summary>
internal class FaultingFirewallBackend(IFirewallBackend inner, FaultPoints faults) : IFirewallBackend, IDisposable
{
    /// <summary>Wraps <paramref name="inner"/>; the wrapper is an <see cref="IFirewallDiagnostics"/> exactly when
    /// <paramref name="inner"/> is one.</summary>
    public static FaultingFirewallBackend Wrap(IFirewallBackend inner, FaultPoints faults) =>
        inner is IFirewallDiagnostics diagnostics ? new WithDiagnostics(inner, diagnostics, faults) : new FaultingFirewallBackend(inner, faults);

    /// <summary>The wrapped backend.</summary>
    public IFirewallBackend Inner => inner;

    /// <inheritdoc/>
    public string Name => inner.Name;

    /// <inheritdoc/>
    public async ValueTask SetupNetworkAsync(FirewallNetwork network, CancellationToken cancellationToken = default)
    {
        await inner.SetupNetworkAsync(network, cancellationToken).ConfigureAwait(false);
        faults.Hit(FaultPoint.FirewallNetworkSetUp);
    }

    /// <inheritdoc/>
    public async ValueTask TeardownNetworkAsync(FirewallNetwork network, CancellationToken cancellationToken = default)
    {
        await inner.TeardownNetworkAsync(network, cancellationToken).ConfigureAwait(false);
        faults.Hit(FaultPoint.FirewallNetworkTornDown);
    }

    /// <inheritdoc/>
    public async ValueTask SetupPortForwardsAsync(FirewallPortForward forward, CancellationToken cancellationToken = default)
    {
        await inner.SetupPortForwardsAsync(forward, cancellationToken).ConfigureAwait(false);
        faults.Hit(FaultPoint.FirewallPortsSetUp);
    }

    /// <inheritdoc/>
    public async ValueTask TeardownPortForwardsAsync(FirewallPortForward forward, CancellationToken cancellationToken = default)
    {
        await inner.TeardownPortForwardsAsync(forward, cancellationToken).ConfigureAwait(false);
        faults.Hit(FaultPoint.FirewallPortsTornDown);
    }

    /// <inheritdoc/>
    public ValueTask ReconcileAsync(IReadOnlyList<FirewallNetwork> networks, IReadOnlyList<FirewallPortForward> forwards, CancellationToken cancellationToken = default) =>
        inner.ReconcileAsync(networks, forwards, cancellationToken);

    /// <inheritdoc/>
    public ValueTask ReconcileOwnerAsync(string owner, IReadOnlyList<FirewallNetwork> networks, IReadOnlyList<FirewallPortForward> forwards, CancellationToken cancellationToken = default) =>
        inner.ReconcileOwnerAsync(owner, networks, forwards, cancellationToken);

    /// <inheritdoc/>
    public ValueTask AdoptOwnerAsync(string owner, IReadOnlyList<FirewallNetwork> networks, IReadOnlyList<FirewallPortForward> forwards, CancellationToken cancellationToken = default) =>
        inner.AdoptOwnerAsync(owner, networks, forwards, cancellationToken);

    /// <inheritdoc/>
    public ValueTask AdoptAsync(IReadOnlyList<FirewallNetwork> networks, IReadOnlyList<FirewallPortForward> forwards, CancellationToken cancellationToken = default) =>
        inner.AdoptAsync(networks, forwards, cancellationToken);

    /// <inheritdoc/>
    public void Dispose()
    {
        (inner as IDisposable)?.Dispose();
        GC.SuppressFinalize(this);
    }

    /// <summary>The wrapper of a backend that checks its rules: the check is forwarded (it changes no rule a fault point
    /// follows; a repair is not an operation of the harness).</summary>
    private sealed class WithDiagnostics(IFirewallBackend inner, IFirewallDiagnostics diagnostics, FaultPoints faults) : FaultingFirewallBackend(inner, faults), IFirewallDiagnostics
    {
        /// <inheritdoc/>
        public ValueTask<IReadOnlyList<InvariantFinding>> CheckAsync(bool repair, CancellationToken cancellationToken = default) =>
            diagnostics.CheckAsync(repair, cancellationToken);
    }
}
