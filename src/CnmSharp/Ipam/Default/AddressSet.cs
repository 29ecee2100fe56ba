namespace CnmSharp.Ipam.Default;

/// <summary>
/// A sparse set of address offsets kept as a sorted array of disjoint, non-adjacent runs
/// <c>[Start, End]</c>. Memory is proportional to the number of runs (at most the number of allocated addresses,
/// usually far fewer because first-free allocation keeps them contiguous), never to the size of the pool, so an
/// IPv6 /48 costs the same as an IPv4 /30.
/// </summary>
/// <remarks>
/// Complexity with <c>r</c> runs: <see cref="Contains"/> and the free searches are a binary search, O(log r).
/// Because runs are always merged with their neighbours, the address after a run is free, so the first free
/// address is found with one lookup. <see cref="Add"/> and <see cref="Remove"/> find their run in O(log r) and
/// then either adjust it in place (the common case: growing or shrinking the run at its edge) or insert or remove
/// one array slot, an O(r) memory move of 32-byte elements in the worst case. Not thread-safe.
/// </remarks>
internal sealed class AddressSet
{
    private Run[] _runs = new Run[4];
    private int _runCount;

    /// <summary>The number of offsets in the set.</summary>
    public UInt128 Count { get; private set; }

    /// <summary>The number of runs (for tests and diagnostics).</summary>
    public int RunCount => _runCount;

    /// <summary>True when <paramref name="offset"/> is in the set.</summary>
    public bool Contains(UInt128 offset)
    {
        var i = Floor(offset);
        return i >= 0 && _runs[i].End >= offset;
    }

    /// <summary>Adds an offset.</summary>
    /// <returns>False when it was already there.</returns>
    public bool Add(UInt128 offset)
    {
        var left = Floor(offset);
        if (left >= 0 && _runs[left].End >= offset)
        {
            return false;
        }

        var right = left + 1;
        var joinsLeft = left >= 0 && _runs[left].End + 1 == offset;
        var joinsRight = right < _runCount && offset != UInt128.MaxValue && _runs[right].Start == offset + 1;
        if (joinsLeft && joinsRight)
        {
            _runs[left].End = _runs[right].End;
            RemoveAt(right);
        }
        else if (joinsLeft)
        {
            _runs[left].End = offset;
        }
        else if (joinsRight)
        {
            _runs[right].Start = offset;
        }
        else
        {
            InsertAt(right, new Run(offset, offset));
        }

        Count++;
        return true;
    }

    /// <summary>Removes an offset.</summary>
    /// <returns>False when it was not there.</returns>
    public bool Remove(UInt128 offset)
    {
        var i = Floor(offset);
        if (i < 0 || _runs[i].End < offset)
        {
            return false;
        }

        ref var run = ref _runs[i];
        if (run.Start == run.End)
        {
            RemoveAt(i);
        }
        else if (run.Start == offset)
        {
            run.Start = offset + 1;
        }
        else if (run.End == offset)
        {
            run.End = offset - 1;
        }
        else
        {
            var tail = new Run(offset + 1, run.End);
            run.End = offset - 1;
            InsertAt(i + 1, tail);
        }

        Count--;
        return true;
    }

    /// <summary>Empties the set.</summary>
    public void Clear()
    {
        _runCount = 0;
        Count = 0;
    }

    /// <summary>The lowest offset in <c>[lo, hi]</c> that is not in the set. O(log r).</summary>
    /// <param name="lo">The first candidate.</param>
    /// <param name="hi">The last candidate (inclusive).</param>
    /// <param name="result">The free offset.</param>
    /// <returns>False when every offset of the range is taken (or the range is empty).</returns>
    public bool TryFindFree(UInt128 lo, UInt128 hi, out UInt128 result)
    {
        result = default;
        if (lo > hi)
        {
            return false;
        }

        var i = Floor(lo);
        if (i < 0 || _runs[i].End < lo)
        {
            result = lo;
            return true;
        }

        // Runs are never adjacent, so the offset right after a run is free.
        var end = _runs[i].End;
        if (end >= hi)
        {
            return false;
        }

        result = end + 1;
        return true;
    }

    /// <summary>The first free offset at or after <paramref name="start"/> in <c>[lo, hi]</c>, wrapping to
    /// <paramref name="lo"/> (serial allocation). O(log r).</summary>
    /// <param name="start">Where to start.</param>
    /// <param name="lo">The first offset of the range.</param>
    /// <param name="hi">The last offset of the range (inclusive).</param>
    /// <param name="result">The free offset.</param>
    /// <returns>False when the range is full.</returns>
    public bool TryFindFreeFrom(UInt128 start, UInt128 lo, UInt128 hi, out UInt128 result)
    {
        if (start > lo && start <= hi && TryFindFree(start, hi, out result))
        {
            return true;
        }

        return TryFindFree(lo, hi, out result);
    }

    /// <summary>The offsets in ascending order (for tests; proportional to the number of members).</summary>
    public IEnumerable<UInt128> Enumerate()
    {
        for (var i = 0; i < _runCount; i++)
        {
            var run = _runs[i];
            for (var x = run.Start; ; x++)
            {
                yield return x;
                if (x == run.End)
                {
                    break;
                }
            }
        }
    }

    /// <summary>The index of the last run whose start is at most <paramref name="offset"/>, or -1.</summary>
    private int Floor(UInt128 offset)
    {
        int lo = 0, hi = _runCount - 1, found = -1;
        while (lo <= hi)
        {
            var mid = lo + ((hi - lo) >> 1);
            if (_runs[mid].Start <= offset)
            {
                found = mid;
                lo = mid + 1;
            }
            else
            {
                hi = mid - 1;
            }
        }

        return found;
    }

    private void InsertAt(int index, Run run)
    {
        if (_runCount == _runs.Length)
        {
            Array.Resize(ref _runs, _runs.Length * 2);
        }

        if (index < _runCount)
        {
            Array.Copy(_runs, index, _runs, index + 1, _runCount - index);
        }

        _runs[index] = run;
        _runCount++;
    }

    private void RemoveAt(int index)
    {
        _runCount--;
        if (index < _runCount)
        {
            Array.Copy(_runs, index + 1, _runs, index, _runCount - index);
        }
    }

    private struct Run(UInt128 start, UInt128 end)
    {
        public UInt128 Start = start;
        public UInt128 End = end;
    }
}
