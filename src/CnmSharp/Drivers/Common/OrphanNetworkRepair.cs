using CnmSharp.Diagnostics;

namespace CnmSharp.Drivers.Common;

/// <summary>
/// The repair of an <see cref="InvariantKinds.OrphanDriverRecord"/> network finding, shared by the drivers that keep
/// network records: the record goes through the driver's own network delete (so exactly what that delete undoes is
/// undone), unless the driver refuses because a live network may own the same kernel object; the repair counts only when
/// the record is gone afterwards.
/// </summary>
internal static class OrphanNetworkRepair
{
    /// <summary>Runs the repair.</summary>
    /// <param name="refusal">Why the record must be left to a person (a live network shares its kernel object), or
    /// <see langword="null"/> to go ahead.</param>
    /// <param name="delete">The driver's network delete for the record.</param>
    /// <param name="recordGone">Whether the record is gone after the delete.</param>
    /// <param name="done">What the delete undid, for the finding.</param>
    /// <returns>Whether the record was removed, and what was done or why not.</returns>
    public static async ValueTask<(bool Repaired, string Action)> DeleteAsync(string? refusal, Func<ValueTask> delete, Func<ValueTask<bool>> recordGone, Func<string> done)
    {
        if (refusal is not null)
        {
            return (false, refusal);
        }

        try
        {
            await delete().ConfigureAwait(false);
        }
        catch (CnmException ex)
        {
            return (false, ex.Message);
        }

        return await recordGone().ConfigureAwait(false) ? (true, "deleted as the network's delete does: " + done()) : (false, "the delete left the record");
    }
}
