using CnmSharp.Diagnostics;

namespace CnmSharp.Firewall;

/// <summary>
/// A firewall backend with fault points after each change it applies (tests only: a controller built with a fault
/// injector wraps its backend in one). Each call of the contract is one atomic batch per family in both backends, so
/// "after the call" is the one place a crash leaves the kernel changed and the caller unaware.
/// </summary>
internal sealed class FaultingFirewallBackend(IFirewallBackend inner, FaultPoints faults) : IFirewallBackend, IDisposable
{
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
    public void Dispose() => (inner as IDisposable)?.Dispose();
}
