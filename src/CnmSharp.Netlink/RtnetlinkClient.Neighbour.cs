using System.Net.Sockets;
using CnmSharp.Netlink.Internal;
using CnmSharp.Netlink.Interop;

namespace CnmSharp.Netlink;

public sealed partial class RtnetlinkClient
{
    private static readonly MessageParser<NeighbourInfo> s_parseNeighbour = static (type, payload, results) =>
    {
        if (type == Rt.RTM_NEWNEIGH)
        {
            results.Add(RtnetlinkParser.ParseNeighbour(payload));
        }
    };

    /// <inheritdoc />
    public ValueTask AddNeighbourAsync(NeighbourSpec spec, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(spec);
        return ExecuteAsync(new NeighbourRequest(spec, Rt.RTM_NEWNEIGH, CreateExclusive), "add neighbour", cancellationToken);
    }

    /// <inheritdoc />
    public ValueTask ReplaceNeighbourAsync(NeighbourSpec spec, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(spec);
        return ExecuteAsync(new NeighbourRequest(spec, Rt.RTM_NEWNEIGH, CreateReplace), "replace neighbour", cancellationToken);
    }

    /// <inheritdoc />
    public ValueTask DeleteNeighbourAsync(NeighbourSpec spec, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(spec);
        return ExecuteAsync(new NeighbourRequest(spec, Rt.RTM_DELNEIGH, Acked), "delete neighbour", cancellationToken);
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<NeighbourInfo>> GetNeighboursAsync(AddressFamily family = AddressFamily.Unspecified, int? linkIndex = null, CancellationToken cancellationToken = default)
    {
        var results = new List<NeighbourInfo>();
        await QueryAsync(new DumpNeighboursRequest(RtnetlinkEncoder.Family(family)), s_parseNeighbour, results, "dump neighbours", cancellationToken).ConfigureAwait(false);
        results.RemoveAll(n => n.IsFdb || (linkIndex is { } index && n.LinkIndex != index));
        return results;
    }

    /// <inheritdoc />
    public ValueTask AddFdbEntryAsync(FdbEntrySpec spec, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(spec.Mac, nameof(spec) + "." + nameof(spec.Mac));
        if (spec.Append && spec.Replace)
        {
            throw new ArgumentException("an FDB entry is either appended or replaced, not both", nameof(spec));
        }

        return ExecuteAsync(new FdbRequest(spec, add: true), spec.Replace ? "replace fdb entry" : "add fdb entry", cancellationToken);
    }

    /// <inheritdoc />
    public ValueTask DeleteFdbEntryAsync(FdbEntrySpec spec, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(spec.Mac, nameof(spec) + "." + nameof(spec.Mac));
        return ExecuteAsync(new FdbRequest(spec, add: false), "delete fdb entry", cancellationToken);
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<NeighbourInfo>> GetFdbEntriesAsync(int? linkIndex = null, CancellationToken cancellationToken = default)
    {
        var results = new List<NeighbourInfo>();
        await QueryAsync(new DumpNeighboursRequest(Libc.AF_BRIDGE), s_parseNeighbour, results, "dump fdb", cancellationToken).ConfigureAwait(false);
        if (linkIndex is { } index)
        {
            results.RemoveAll(n => n.LinkIndex != index);
        }

        return results;
    }
}
