using System.Buffers.Binary;
using System.Net;
using System.Net.NetworkInformation;
using System.Text;

namespace CnmSharp.Netlink.Internal;

/// <summary>
/// Writes netlink messages: headers, family headers and 4-byte-aligned attributes, patching lengths when a message
/// or a nested attribute closes. Writes into a fixed span, or into a <see cref="GrowableBuffer"/> that grows.
/// Host byte order except where a method says network order.
/// </summary>
internal ref struct NetlinkWriter
{
    private readonly GrowableBuffer? _owner;
    private Span<byte> _span;
    private int _pos;

    public NetlinkWriter(Span<byte> span)
    {
        _owner = null;
        _span = span;
        _pos = 0;
    }

    public NetlinkWriter(GrowableBuffer owner, int start = 0)
    {
        _owner = owner;
        _span = owner.Array;
        _pos = start;
    }

    /// <summary>Bytes written so far.</summary>
    public readonly int Length => _pos;

    /// <summary>The bytes written so far.</summary>
    public readonly ReadOnlySpan<byte> Written => _span[.._pos];

    /// <summary>Starts a message; returns its offset, to pass to <see cref="EndMessage"/>.</summary>
    public int BeginMessage(ushort type, ushort flags, uint sequence, uint portId = 0)
    {
        var start = _pos;
        var header = Reserve(Nl.HeaderSize);
        BinaryPrimitives.WriteUInt32LittleEndian(header, 0);
        BinaryPrimitives.WriteUInt16LittleEndian(header[4..], type);
        BinaryPrimitives.WriteUInt16LittleEndian(header[6..], flags);
        BinaryPrimitives.WriteUInt32LittleEndian(header[8..], sequence);
        BinaryPrimitives.WriteUInt32LittleEndian(header[12..], portId);
        return start;
    }

    /// <summary>Patches the length of the message started at <paramref name="start"/>.</summary>
    public readonly void EndMessage(int start) =>
        BinaryPrimitives.WriteUInt32LittleEndian(_span[start..], (uint)(_pos - start));

    /// <summary>struct ifinfomsg (16 bytes).</summary>
    public void WriteIfInfoMsg(byte family, int index, uint flags = 0, uint change = 0, ushort type = 0)
    {
        var s = Reserve(Rt.IfInfoMsgSize);
        s[0] = family;
        s[1] = 0;
        BinaryPrimitives.WriteUInt16LittleEndian(s[2..], type);
        BinaryPrimitives.WriteInt32LittleEndian(s[4..], index);
        BinaryPrimitives.WriteUInt32LittleEndian(s[8..], flags);
        BinaryPrimitives.WriteUInt32LittleEndian(s[12..], change);
    }

    /// <summary>struct ifaddrmsg (8 bytes).</summary>
    public void WriteIfAddrMsg(byte family, byte prefixLength, byte flags, byte scope, int index)
    {
        var s = Reserve(Rt.IfAddrMsgSize);
        s[0] = family;
        s[1] = prefixLength;
        s[2] = flags;
        s[3] = scope;
        BinaryPrimitives.WriteInt32LittleEndian(s[4..], index);
    }

    /// <summary>struct rtmsg (12 bytes).</summary>
    public void WriteRtMsg(byte family, byte dstLength, byte srcLength, byte tos, byte table, byte protocol, byte scope, byte type, uint flags)
    {
        var s = Reserve(Rt.RtMsgSize);
        s[0] = family;
        s[1] = dstLength;
        s[2] = srcLength;
        s[3] = tos;
        s[4] = table;
        s[5] = protocol;
        s[6] = scope;
        s[7] = type;
        BinaryPrimitives.WriteUInt32LittleEndian(s[8..], flags);
    }

    /// <summary>struct ndmsg (12 bytes).</summary>
    public void WriteNdMsg(byte family, int index, ushort state, byte flags, byte type)
    {
        var s = Reserve(Rt.NdMsgSize);
        s[0] = family;
        s[1] = 0;
        s[2] = 0;
        s[3] = 0;
        BinaryPrimitives.WriteInt32LittleEndian(s[4..], index);
        BinaryPrimitives.WriteUInt16LittleEndian(s[8..], state);
        s[10] = flags;
        s[11] = type;
    }

    public void WriteFlag(ushort type) => AttributePayload(type, 0);

    public void WriteU8(ushort type, byte value) => AttributePayload(type, 1)[0] = value;

    public void WriteU16(ushort type, ushort value) =>
        BinaryPrimitives.WriteUInt16LittleEndian(AttributePayload(type, 2), value);

    public void WriteU32(ushort type, uint value) =>
        BinaryPrimitives.WriteUInt32LittleEndian(AttributePayload(type, 4), value);

    public void WriteI32(ushort type, int value) =>
        BinaryPrimitives.WriteInt32LittleEndian(AttributePayload(type, 4), value);

    public void WriteU64(ushort type, ulong value) =>
        BinaryPrimitives.WriteUInt64LittleEndian(AttributePayload(type, 8), value);

    /// <summary>A 16-bit value in network byte order (e.g. a UDP port).</summary>
    public void WriteBe16(ushort type, ushort value) =>
        BinaryPrimitives.WriteUInt16BigEndian(AttributePayload(type, 2), value);

    /// <summary>A 32-bit value in network byte order.</summary>
    public void WriteBe32(ushort type, uint value) =>
        BinaryPrimitives.WriteUInt32BigEndian(AttributePayload(type, 4), value);

    /// <summary>A 64-bit value in network byte order (an nf_tables handle).</summary>
    public void WriteU64Be(ushort type, ulong value) =>
        BinaryPrimitives.WriteUInt64BigEndian(AttributePayload(type, 8), value);

    /// <summary>A NUL-terminated UTF-8 string.</summary>
    public void WriteString(ushort type, string value)
    {
        var byteCount = Encoding.UTF8.GetByteCount(value);
        var payload = AttributePayload(type, byteCount + 1);
        Encoding.UTF8.GetBytes(value, payload);
        payload[byteCount] = 0;
    }

    public void WriteBytes(ushort type, scoped ReadOnlySpan<byte> value) => value.CopyTo(AttributePayload(type, value.Length));

    /// <summary>The address bytes (4 or 16), network order as IPAddress keeps them.</summary>
    public void WriteAddress(ushort type, IPAddress address)
    {
        var length = address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? 4 : 16;
        address.TryWriteBytes(AttributePayload(type, length), out _);
    }

    /// <summary>A hardware address (e.g. 6-byte MAC).</summary>
    public void WriteMac(ushort type, PhysicalAddress mac)
    {
        // PhysicalAddress has no span API; this copies its few bytes once.
        WriteBytes(type, mac.GetAddressBytes());
    }

    /// <summary>Opens a nested attribute; returns its offset for <see cref="EndNested"/>.</summary>
    public int BeginNested(ushort type, bool setNestedFlag = false)
    {
        var start = _pos;
        var header = Reserve(Nl.AttributeHeaderSize);
        BinaryPrimitives.WriteUInt16LittleEndian(header, 0);
        BinaryPrimitives.WriteUInt16LittleEndian(header[2..], setNestedFlag ? (ushort)(type | Nl.NLA_F_NESTED) : type);
        return start;
    }

    /// <summary>Closes a nested attribute, patching its length.</summary>
    public readonly void EndNested(int start)
    {
        var length = _pos - start;
        if (length > ushort.MaxValue)
        {
            ThrowHelper.ThrowMessageTooLarge();
        }

        BinaryPrimitives.WriteUInt16LittleEndian(_span[start..], (ushort)length);
    }

    /// <summary>Reserves raw, aligned space in a family header or nested payload (zero-filled).</summary>
    public Span<byte> Reserve(int length)
    {
        var aligned = Nl.Align(length);
        if (_pos + aligned > _span.Length)
        {
            Grow(aligned);
        }

        var result = _span.Slice(_pos, aligned);
        result.Clear();
        _pos += aligned;
        return result[..length];
    }

    private Span<byte> AttributePayload(ushort type, int payloadLength)
    {
        var total = Nl.AttributeHeaderSize + payloadLength;
        if (total > ushort.MaxValue)
        {
            ThrowHelper.ThrowMessageTooLarge();
        }

        var s = Reserve(total);
        BinaryPrimitives.WriteUInt16LittleEndian(s, (ushort)total);
        BinaryPrimitives.WriteUInt16LittleEndian(s[2..], type);
        return s[Nl.AttributeHeaderSize..];
    }

    private void Grow(int additional)
    {
        if (_owner is null)
        {
            ThrowHelper.ThrowBufferTooSmall();
        }

        _span = _owner.Grow(_pos + additional, _pos);
    }
}
