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

    /// <summary>Repair what can be proven to be the driver's own.</summary>
    public bool Repair { get; init; }
}
