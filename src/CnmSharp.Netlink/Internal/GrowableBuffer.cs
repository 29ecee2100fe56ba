using System.Buffers;

namespace CnmSharp.Netlink.Internal;

/// <summary>A pooled byte array that a <see cref="NetlinkWriter"/> can grow into. Not thread-safe.</summary>
internal sealed class GrowableBuffer : IDisposable
{
    private byte[] _array;

    public GrowableBuffer(int initialCapacity = 4096) => _array = ArrayPool<byte>.Shared.Rent(initialCapacity);

    public byte[] Array => _array;

    /// <summary>Makes room for <paramref name="required"/> bytes, keeping the first <paramref name="used"/>.</summary>
    public byte[] Grow(int required, int used)
    {
        if (required <= _array.Length)
        {
            return _array;
        }

        var larger = ArrayPool<byte>.Shared.Rent(Math.Max(required, _array.Length * 2));
        _array.AsSpan(0, used).CopyTo(larger);
        ArrayPool<byte>.Shared.Return(_array);
        _array = larger;
        return larger;
    }

    public void Dispose()
    {
        var array = _array;
        _array = [];
        if (array.Length > 0)
        {
            ArrayPool<byte>.Shared.Return(array);
        }
    }
}
