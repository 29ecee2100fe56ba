using System.Net;

namespace CnmSharp.Ipam.Default;

/// <summary>
/// The predefined pools of one list of <see cref="PoolSplit"/>s, numbered 0 to <see cref="Total"/> - 1 in list order,
/// without materializing them (10.0.0.0/8 into /24s is 65,536 pools, fdcd:6e73::/32 into /64s is 2^32).
/// </summary>
/// <remarks>
/// A search visits candidates in index order and, when one overlaps a blocker (an existing pool or an excluded
/// subnet), jumps past the blocker's last address. So a search costs O((b + 1) * b) for b blockers, independent of
/// the number of predefined pools.
/// </remarks>
internal sealed class PredefinedPools
{
    private readonly Entry[] _entries;

    public PredefinedPools(IReadOnlyList<PoolSplit> splits)
    {
        _entries = new Entry[splits.Count];
        UInt128 offset = 0;
        for (var i = 0; i < splits.Count; i++)
        {
            var split = splits[i];
            var bits = IpMath.Bits(split.Base.BaseAddress);
            var count = split.Count();
            _entries[i] = new Entry(offset, count, IpMath.ToUInt128(split.Base.BaseAddress), bits - split.Size, split.Size, split.Base.IsIPv6());
            offset += count;
        }

        Total = offset;
    }

    /// <summary>The number of predefined pools.</summary>
    public UInt128 Total { get; }

    /// <summary>Finds the first pool at or after <paramref name="start"/> (wrapping) that overlaps no blocker.</summary>
    /// <param name="start">The index to start at.</param>
    /// <param name="blockers">Address ranges (first, last) the pool must not overlap, of the same family.</param>
    /// <param name="pool">The pool.</param>
    /// <param name="index">Its index.</param>
    /// <returns>False when every pool is blocked.</returns>
    public bool TryFind(UInt128 start, IReadOnlyList<(UInt128 First, UInt128 Last)> blockers, out IPNetwork pool, out UInt128 index)
    {
        pool = default;
        index = default;
        if (Total == 0)
        {
            return false;
        }

        if (start >= Total)
        {
            start = 0;
        }

        return TryFindIn(start, Total, blockers, out pool, out index)
            || (start > 0 && TryFindIn(0, start, blockers, out pool, out index));
    }

    private bool TryFindIn(UInt128 from, UInt128 to, IReadOnlyList<(UInt128 First, UInt128 Last)> blockers, out IPNetwork pool, out UInt128 index)
    {
        foreach (var e in _entries)
        {
            if (e.Offset + e.Count <= from || e.Offset >= to)
            {
                continue;
            }

            var i = from > e.Offset ? from - e.Offset : 0;
            var end = UInt128.Min(to - e.Offset, e.Count);
            var mask = e.HostBits >= 128 ? UInt128.MaxValue : (UInt128.One << e.HostBits) - 1;
            while (i < end)
            {
                var first = i == 0 ? e.First : e.First + (i << e.HostBits);
                var last = first + mask;
                var blocked = false;
                var next = i + 1;
                foreach (var (bFirst, bLast) in blockers)
                {
                    if (bFirst <= last && first <= bLast)
                    {
                        blocked = true;
                        var past = e.HostBits >= 128 ? UInt128.One : ((bLast - e.First) >> e.HostBits) + 1;
                        next = UInt128.Max(next, past);
                    }
                }

                if (!blocked)
                {
                    pool = IpMath.Network(first, e.Size, e.IPv6);
                    index = e.Offset + i;
                    return true;
                }

                i = next;
            }
        }

        pool = default;
        index = default;
        return false;
    }

    private readonly record struct Entry(UInt128 Offset, UInt128 Count, UInt128 First, int HostBits, int Size, bool IPv6);
}
