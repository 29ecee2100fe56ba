using System.Buffers;

namespace CnmSharp.Netlink.Internal;

/// <summary>A pooled byte array that a <see cref="NetlinkWriter"/> can grow into. Not thread-safe.</summary>
internal sealed class GrowableBuffer : IDisposable
{
    private readonly ArrayPool<byte> _pool;
    private byte[] _array;

    public GrowableBuffer(int initialCapacity = 4096, ArrayPool<byte>? pool = null)
    {
        _pool = pool ?? ArrayPool<byte>.Shared;
        _array = _pool.Rent(initialCapacity);
    }

    public byte[] Array => _array;

    /// <summary>Makes room for <paramref name="required"/> bytes, keeping the first <paramref name="used"/>.</summary>
    public byte[] Grow(int required, int used)
    {
        if (required <= _array.Length)
        {
            return _array;
        }

        var larger = _pool.Rent(Math.Max(required, _array.Length * 2));
        _array.AsSpan(0, used).CopyTo(larger);
        _pool.Return(_array);
        _array = larger;
        return larger;
    }

    public void Dispose()
    {
        var array = Interlocked.Exchange(ref _array, []);
        if (array.Length > 0)
        {
            _pool.Return(array);
        }
    }
}
