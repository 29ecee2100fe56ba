namespace CnmSharp.Drivers;

/// <summary>A driver that programs firewall rules and can re-create all of them in one call, for example after a
/// firewalld reload or an <c>iptables -F</c> removed them.</summary>
public interface IFirewallReconcilableDriver
{
    /// <summary>Makes the firewall hold exactly the rules of the driver's networks and published ports.</summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when the rules are back.</returns>
    ValueTask ReconcileFirewallAsync(CancellationToken cancellationToken = default);
}
