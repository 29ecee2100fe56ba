using CnmSharp.Diagnostics;

namespace CnmSharp;

/// <summary>What <see cref="NetworkController.CheckAsync"/> does.</summary>
public sealed record CheckOptions
{
    /// <summary>Repair what can be repaired: remove leaked links, firewall rules and namespaces (with their bind
    /// mounts), duplicated endpoint records, orphan allocations and orphan driver records (with what they prove the
    /// driver made), create a missing bridge again from its record, and finish or roll back the intents of dead owners
    /// with the start's recovery. Only objects proven to be CnmSharp's are touched; quarantined records are never
    /// touched (they are reported, and discarded only by <see cref="NetworkController.DiscardQuarantinedRecordAsync"/>).
    /// Default false: report only.</summary>
    public bool Repair { get; init; }
}

/// <summary>The result of <see cref="NetworkController.CheckAsync"/>.</summary>
public sealed record CheckReport
{
    /// <summary>Every violation found, in the order checked (intents, quarantined records, records and
    /// allocations, namespaces, drivers, firewall); empty when the state is consistent.</summary>
    public required IReadOnlyList<InvariantFinding> Findings { get; init; }

    /// <summary>Whether a repair was asked for.</summary>
    public bool RepairRequested { get; init; }

    /// <summary>How long the check took.</summary>
    public TimeSpan Duration { get; init; }

    /// <summary>True when nothing was found.</summary>
    public bool IsClean => Findings.Count == 0;

    /// <summary>True when every finding was repaired (also true when clean).</summary>
    public bool AllRepaired => Findings.All(f => f.Repaired);
}
