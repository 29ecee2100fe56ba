using CnmSharp.Diagnostics;

namespace CnmSharp.Firewall;

/// <summary>
/// A firewall backend that can find the rules it owns in the kernel that none of its records produces (left by a
/// crash or by a controller that lost its state), for <c>NetworkController.CheckAsync</c>. Ownership is proven by the
/// backend's own marks (an owner comment, a table or chain only it creates); a rule it cannot prove is its own is never
/// reported or removed.
/// </summary>
public interface IFirewallDiagnostics
{
    /// <summary>Compares the kernel with the records the backend holds; removes the leaked rules when
    /// <paramref name="repair"/> is set.</summary>
    /// <param name="repair">Remove what is found.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The findings (empty when consistent).</returns>
    ValueTask<IReadOnlyList<InvariantFinding>> CheckAsync(bool repair, CancellationToken cancellationToken = default);
}
