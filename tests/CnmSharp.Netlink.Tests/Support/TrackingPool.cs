using System.Buffers;

namespace CnmSharp.Netlink.Tests.Support;

/// <summary>
/// An <see cref="ArrayPool{T}"/> that never reuses an array: every rent is a fresh array, every returned array is
/// filled with <see cref="Poison"/> and kept aside. A write into an array after its return (a receive completing into
/// a pooled buffer) shows as a poison byte overwritten; a second or foreign return is recorded.
/// </summary>
internal sealed class TrackingPool : ArrayPool<byte>
{
    public const byte Poison = 0xA5;

    private readonly object _gate = new();
    private readonly HashSet<byte[]> _out = new(ReferenceEqualityComparer.Instance);
    private readonly List<byte[]> _returned = [];
    private readonly List<string> _errors = [];

    /// <summary>Called before each accepted return, with the array (e.g. to check the socket's state at that moment).</summary>
    public Action<byte[]>? OnReturn { get; set; }

    public int Outstanding
    {
        get
        {
            lock (_gate)
            {
                return _out.Count;
            }
        }
    }

    public int Rented { get; private set; }

    public int ReturnedCount
    {
        get
        {
            lock (_gate)
            {
                return _returned.Count;
            }
        }
    }

    public bool IsOutstanding(byte[] array)
    {
        lock (_gate)
        {
            return _out.Contains(array);
        }
    }

    public IReadOnlyList<string> Errors
    {
        get
        {
            lock (_gate)
            {
                return [.. _errors];
            }
        }
    }

    public override byte[] Rent(int minimumLength)
    {
        var array = new byte[Math.Max(minimumLength, 16)];
        lock (_gate)
        {
            _out.Add(array);
            Rented++;
        }

        return array;
    }

    public override void Return(byte[] array, bool clearArray = false)
    {
        OnReturn?.Invoke(array);
        lock (_gate)
        {
            if (!_out.Remove(array))
            {
                _errors.Add($"an array of {array.Length} bytes was returned that is not rented (twice, or foreign)");
                return;
            }

            array.AsSpan().Fill(Poison);
            _returned.Add(array);
        }
    }

    /// <summary>Returned arrays whose poison was overwritten after their return.</summary>
    public int WrittenAfterReturn()
    {
        lock (_gate)
        {
            return _returned.Count(a => a.AsSpan().IndexOfAnyExcept(Poison) >= 0);
        }
    }
}
