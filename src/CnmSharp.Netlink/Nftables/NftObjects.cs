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
public sealed record NftRule(NftFamily Family, string Table, string Chain, ulong Handle, string? Comment, IReadOnlyList<string> ExpressionNames);

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
