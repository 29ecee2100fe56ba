namespace CnmSharp.Diagnostics;

/// <summary>
/// One violation of the state invariants found by <c>NetworkController.CheckAsync</c>: an object CnmSharp owns in the
/// kernel without a record in the store, a record without its kernel object, an address or MAC allocated twice, an
/// allocation map that disagrees with the endpoints, an intent whose owner is gone. Drivers
/// (<see cref="Drivers.IDriverDiagnostics"/>) and firewall backends (<see cref="Firewall.IFirewallDiagnostics"/>) report
/// their own findings with it.
/// </summary>
public sealed record InvariantFinding
{
    /// <summary>What is wrong, one of <see cref="InvariantKinds"/> (a driver may add its own kebab-case kind).</summary>
    public required string Kind { get; init; }

    /// <summary>The object concerned, for example <c>link veth1a2b3c</c>, <c>network 4f2a...</c>.</summary>
    public required string Subject { get; init; }

    /// <summary>Why it is a violation, and how ownership was proven.</summary>
    public required string Detail { get; init; }

    /// <summary>True when a repair removed the violation.</summary>
    public bool Repaired { get; init; }

    /// <summary>What the repair did (null when none was attempted); when it failed, why.</summary>
    public string? Repair { get; init; }

    /// <inheritdoc />
    public override string ToString() =>
        $"{Kind} {Subject}: {Detail}" + (Repair is null ? string.Empty : Repaired ? $" [repaired: {Repair}]" : $" [not repaired: {Repair}]");
}

/// <summary>The kinds of <see cref="InvariantFinding"/> the core and the built-in drivers and backends report.</summary>
public static class InvariantKinds
{
    /// <summary>A link the controller or a driver created (proven by its records) that no object of the store names.</summary>
    public const string LeakedLink = "leaked-link";

    /// <summary>A link a record names that is not in the kernel.</summary>
    public const string MissingLink = "missing-link";

    /// <summary>A network namespace (and its bind mount) in the controller's run directory that no sandbox or network
    /// record names.</summary>
    public const string LeakedNamespace = "leaked-namespace";

    /// <summary>A sandbox record whose namespace is gone.</summary>
    public const string MissingNamespace = "missing-namespace";

    /// <summary>A firewall rule, chain or set element carrying a CnmSharp owner tag (or in a chain only CnmSharp
    /// owns) that no network or port forward of the records produces.</summary>
    public const string LeakedFirewallRule = "leaked-firewall-rule";

    /// <summary>One address held by two endpoint records of a network.</summary>
    public const string DuplicateAddress = "duplicate-address";

    /// <summary>One MAC address held by two endpoint records of a network.</summary>
    public const string DuplicateMac = "duplicate-mac";

    /// <summary>An IPAM allocation whose owner is no endpoint and no network: a leaked address.</summary>
    public const string OrphanAllocation = "orphan-allocation";

    /// <summary>An IPAM pool that no network references.</summary>
    public const string OrphanPool = "orphan-pool";

    /// <summary>An endpoint address the pool's allocation map does not hold for that endpoint.</summary>
    public const string AllocationMismatch = "allocation-mismatch";

    /// <summary>An intent (an operation in progress) whose owner is not running: a crash left it.</summary>
    public const string StaleIntent = "stale-intent";

    /// <summary>A driver record for a network or endpoint the core's store does not have.</summary>
    public const string OrphanDriverRecord = "orphan-driver-record";

    /// <summary>A network or endpoint of the core's store whose driver has no record of it.</summary>
    public const string MissingDriverRecord = "missing-driver-record";

    /// <summary>A store record that cannot be read.</summary>
    public const string UnreadableRecord = "unreadable-record";

    /// <summary>A store record that loading or recovery set aside (quarantined) because it could not be processed: kept
    /// with its bytes and the reason for inspection. No repair acts on it; it is discarded only on explicit request.</summary>
    public const string QuarantinedRecord = "quarantined-record";
}
