namespace CnmSharp.Netlink.Nftables;

/// <summary>A table, as dumped.</summary>
/// <param name="Family">The family.</param>
/// <param name="Name">The name.</param>
/// <param name="Flags">NFT_TABLE_F_* (dormant 1, owner 2, persist 4).</param>
/// <param name="Handle">The handle.</param>
public sealed record NftTable(NftFamily Family, string Name, uint Flags, ulong Handle);

/// <summary>A chain, as dumped.</summary>
/// <param name="Family">The family.</param>
/// <param name="Table">The table.</param>
/// <param name="Name">The name.</param>
/// <param name="Handle">The handle.</param>
/// <param name="Base">Type, hook, priority and policy of a base chain; null for a regular chain.</param>
/// <param name="Comment">The comment in its user data, or null.</param>
public sealed record NftChain(NftFamily Family, string Table, string Name, ulong Handle, NftBaseChain? Base, string? Comment = null);

/// <summary>A rule, as dumped.</summary>
/// <param name="Family">The family.</param>
/// <param name="Table">The table.</param>
/// <param name="Chain">The chain.</param>
/// <param name="Handle">The handle (to delete it by).</param>
/// <param name="Comment">The comment in its user data, or null.</param>
/// <param name="ExpressionNames">The names of its expressions, in order.</param>
public sealed record NftRule(NftFamily Family, string Table, string Chain, ulong Handle, string? Comment, IReadOnlyList<string> ExpressionNames)
{
    /// <summary>The rule's <c>NFTA_RULE_EXPRESSIONS</c> as the kernel dumped it (empty when not known).</summary>
    public byte[] ExpressionBytes { get; init; } = [];

    /// <summary>
    /// True when the rule holds exactly these expressions, in order: same names, and every attribute CnmSharp sends
    /// for each (registers, keys, operators, values, verdicts, set names) present in the dump with the same bytes.
    /// Attributes the kernel adds in its dump (defaults such as a lookup's flags, a nat's max registers) and a
    /// lookup's set id (not dumped) are not compared. This is what finds a rule edited in place
    /// (<c>nft replace rule … handle N</c>) that kept its comment.
    /// </summary>
    /// <param name="expressions">The expected expressions.</param>
    /// <returns>Whether the dumped rule has them.</returns>
    public bool Matches(IReadOnlyList<NftExpression> expressions) => NftRuleMatcher.Matches(ExpressionBytes, expressions);
}

/// <summary>A set or map, as dumped.</summary>
/// <param name="Family">The family.</param>
/// <param name="Table">The table.</param>
/// <param name="Name">The name.</param>
/// <param name="Flags">The flags.</param>
/// <param name="KeyType">nft's key type id.</param>
/// <param name="KeyLength">The key length.</param>
/// <param name="DataType">nft's data type id of a map, else null.</param>
/// <param name="DataLength">The data length of a map.</param>
public sealed record NftSet(NftFamily Family, string Table, string Name, NftSetOptions Flags, uint KeyType, uint KeyLength, uint? DataType, uint DataLength);

/// <summary>Why one message of a batch failed.</summary>
/// <param name="Index">The message's index in the batch (<see cref="NftablesBatch.Descriptions"/>), or -1 for the
/// batch itself (its generation guard, or the commit).</param>
/// <param name="Description">What the message did.</param>
/// <param name="Errno">The kernel's errno.</param>
/// <param name="ExtendedMessage">The kernel's extended-ack message, if any.</param>
public sealed record NftablesMessageError(int Index, string Description, int Errno, string? ExtendedMessage)
{
    /// <summary>The symbolic errno, e.g. <c>ENOENT</c>.</summary>
    public string ErrorName => Errnos.Name(Errno);

    /// <inheritdoc />
    public override string ToString() =>
        $"{(Index < 0 ? "batch" : $"message {Index}")} ({Description}): {ErrorName}{(ExtendedMessage is null ? "" : ": " + ExtendedMessage)}";
}

/// <summary>
/// An nf_tables batch was refused: nothing of it was applied. <see cref="Errors"/> names every failing message;
/// <see cref="NetlinkException.Errno"/> is the first one's.
/// </summary>
public sealed class NftablesBatchException : NetlinkException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="errors">The failures, at least one.</param>
    public NftablesBatchException(IReadOnlyList<NftablesMessageError> errors)
        : base(errors is { Count: > 0 } ? errors[0].Errno : Errnos.EIO, "nftables batch failed: " + string.Join("; ", errors ?? []), (Exception?)null)
    {
        Errors = errors ?? [];
    }

    /// <summary>The failures, one per failing message, in batch order.</summary>
    public IReadOnlyList<NftablesMessageError> Errors { get; }
}

/// <summary>What an <see cref="NftEvent"/> reports.</summary>
public enum NftEventKind
{
    /// <summary>A table was added (or updated).</summary>
    NewTable,

    /// <summary>A table was deleted.</summary>
    DeleteTable,

    /// <summary>A chain was added (or updated).</summary>
    NewChain,

    /// <summary>A chain was deleted.</summary>
    DeleteChain,

    /// <summary>A rule was added or replaced.</summary>
    NewRule,

    /// <summary>A rule was deleted (a flushed chain reports each of its rules).</summary>
    DeleteRule,

    /// <summary>A set or map was added.</summary>
    NewSet,

    /// <summary>A set or map was deleted.</summary>
    DeleteSet,

    /// <summary>Elements were added to a set or map.</summary>
    NewElement,

    /// <summary>Elements were deleted from a set or map.</summary>
    DeleteElement,

    /// <summary>A transaction committed: the events before it (since the last one) were its changes.
    /// <see cref="NftEvent.Generation"/>, <see cref="NftEvent.ProcessId"/> and <see cref="NftEvent.ProcessName"/> name it.</summary>
    Generation,

    /// <summary>Notifications were lost (the socket's queue overflowed): re-read what you watch.</summary>
    Resync,
}

/// <summary>One nf_tables change notification (group NFNLGRP_NFTABLES).</summary>
/// <param name="Kind">What changed.</param>
/// <param name="Family">The family of the table.</param>
/// <param name="Table">The table, or null for <see cref="NftEventKind.Generation"/> and <see cref="NftEventKind.Resync"/>.</param>
public sealed record NftEvent(NftEventKind Kind, NftFamily Family, string? Table)
{
    /// <summary>The chain of a chain or rule event.</summary>
    public string? Chain { get; init; }

    /// <summary>The set of a set or element event.</summary>
    public string? Set { get; init; }

    /// <summary>The handle of the table, chain or rule.</summary>
    public ulong Handle { get; init; }

    /// <summary>The comment of the chain or rule.</summary>
    public string? Comment { get; init; }

    /// <summary>The rule of a rule event (with its expressions).</summary>
    public NftRule? Rule { get; init; }

    /// <summary>The elements of an element event (with their comments).</summary>
    public IReadOnlyList<NftSetElement> Elements { get; init; } = [];

    /// <summary>The new generation id of a <see cref="NftEventKind.Generation"/> event.</summary>
    public uint Generation { get; init; }

    /// <summary>The process that committed the transaction (<see cref="NftEventKind.Generation"/>), 0 when not told.</summary>
    public int ProcessId { get; init; }

    /// <summary>That process's name, when told.</summary>
    public string? ProcessName { get; init; }
}
