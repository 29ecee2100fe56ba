using CnmSharp.Diagnostics;

namespace CnmSharp.Drivers;

/// <summary>
/// A driver that can check its kernel objects and records against the core's objects, for
/// <c>NetworkController.CheckAsync</c>. The core calls it alone (no other operation of the controller, or of another
/// process sharing the state, runs meanwhile). A driver reports only objects it can prove are its own (from its records,
/// or a mark it sets on what it creates) and repairs only those.
/// </summary>
public interface IDriverDiagnostics
{
    /// <summary>Checks the driver's kernel objects and records; repairs what it can when
    /// <see cref="DriverCheckRequest.Repair"/> is set.</summary>
    /// <param name="request">The core's networks and endpoints of this driver, and whether to repair.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The findings (empty when consistent).</returns>
    ValueTask<IReadOnlyList<InvariantFinding>> CheckAsync(DriverCheckRequest request, CancellationToken cancellationToken = default);
}

/// <summary>What the core knows, for <see cref="IDriverDiagnostics.CheckAsync"/>.</summary>
public sealed record DriverCheckRequest
{
    /// <summary>The ids of the driver's networks in the core's store (and of networks an unfinished operation names).</summary>
    public required IReadOnlySet<string> NetworkIds { get; init; }

    /// <summary>The ids of the endpoints of those networks in the core's store (and of endpoints an unfinished operation
    /// names).</summary>
    public required IReadOnlySet<string> EndpointIds { get; init; }

    /// <summary>The networks of <see cref="NetworkIds"/> the driver must hold a record of: local scope, not being
    /// deleted, and named by no unfinished operation. A driver that keeps records reports each one it has none of as
    /// <see cref="Diagnostics.InvariantKinds.MissingDriverRecord"/>. Empty by default (nothing is expected).</summary>
    public IReadOnlySet<string> ExpectedNetworkIds { get; init; } = new HashSet<string>(StringComparer.Ordinal);

    /// <summary>The endpoints of <see cref="EndpointIds"/> the driver must hold a record of: those of
    /// <see cref="ExpectedNetworkIds"/>, not being deleted, and named by no unfinished operation. Empty by default.</summary>
    public IReadOnlySet<string> ExpectedEndpointIds { get; init; } = new HashSet<string>(StringComparer.Ordinal);

    /// <summary>Repair what can be proven to be the driver's own.</summary>
    public bool Repair { get; init; }
}
