using System.Buffers.Binary;
using System.Net;
using System.Net.NetworkInformation;
using System.Text;

namespace CnmSharp.Netlink.Internal;

/// <summary>One netlink message: the header fields and the payload after the 16-byte header.</summary>
internal readonly ref struct NetlinkMessage
{
    public NetlinkMessage(ushort type, ushort flags, uint sequence, uint portId, ReadOnlySpan<byte> payload)
    {
        Type = type;
        Flags = flags;
        Sequence = sequence;
        PortId = portId;
        Payload = payload;
    }

    public ushort Type { get; }

    public ushort Flags { get; }

    public uint Sequence { get; }

    public uint PortId { get; }

    public ReadOnlySpan<byte> Payload { get; }
}

/// <summary>Walks the netlink messages in one datagram, validating every length.</summary>
internal ref struct NetlinkMessageEnumerator
{
    private ReadOnlySpan<byte> _remaining;
    private NetlinkMessage _current;

    public NetlinkMessageEnumerator(ReadOnlySpan<byte> buffer)
    {
        _remaining = buffer;
        _current = default;
    }

    public readonly NetlinkMessage Current => _current;

    public readonly NetlinkMessageEnumerator GetEnumerator() => this;

    public bool MoveNext()
    {
        if (_remaining.IsEmpty)
        {
            return false;
        }

        if (_remaining.Length < Nl.HeaderSize)
        {
            ThrowHelper.ThrowProtocol($"{_remaining.Length} trailing bytes are too few for a message header");
        }

        var length = BinaryPrimitives.ReadUInt32LittleEndian(_remaining);
        if (length < Nl.HeaderSize || length > (uint)_remaining.Length)
        {
            ThrowHelper.ThrowProtocol($"message length {length} outside 16..{_remaining.Length}");
        }

        var len = (int)length;
        _current = new NetlinkMessage(
            BinaryPrimitives.ReadUInt16LittleEndian(_remaining[4..]),
            BinaryPrimitives.ReadUInt16LittleEndian(_remaining[6..]),
            BinaryPrimitives.ReadUInt32LittleEndian(_remaining[8..]),
            BinaryPrimitives.ReadUInt32LittleEndian(_remaining[12..]),
            _remaining[Nl.HeaderSize..len]);
        var advance = Math.Min(Nl.Align(len), _remaining.Length);
        _remaining = _remaining[advance..];
        return true;
    }
}

/// <summary>One attribute: type (flags masked off), whether NLA_F_NESTED was set, and the payload.</summary>
internal readonly ref struct NetlinkAttribute
{
    public NetlinkAttribute(ushort rawType, ReadOnlySpan<byte> payload)
    {
        RawType = rawType;
        Payload = payload;
    }

    public ushort RawType { get; }

    public ushort Type => (ushort)(RawType & Nl.NLA_TYPE_MASK);

    public bool IsNested => (RawType & Nl.NLA_F_NESTED) != 0;

    public ReadOnlySpan<byte> Payload { get; }

    public byte GetU8() => Payload.Length >= 1 ? Payload[0] : TooShort<byte>(1);

    public ushort GetU16() => Payload.Length >= 2 ? BinaryPrimitives.ReadUInt16LittleEndian(Payload) : TooShort<ushort>(2);

    public uint GetU32() => Payload.Length >= 4 ? BinaryPrimitives.ReadUInt32LittleEndian(Payload) : TooShort<uint>(4);

    public int GetI32() => Payload.Length >= 4 ? BinaryPrimitives.ReadInt32LittleEndian(Payload) : TooShort<int>(4);

    public ulong GetU64() => Payload.Length >= 8 ? BinaryPrimitives.ReadUInt64LittleEndian(Payload) : TooShort<ulong>(8);

    public ushort GetBe16() => Payload.Length >= 2 ? BinaryPrimitives.ReadUInt16BigEndian(Payload) : TooShort<ushort>(2);

    public uint GetBe32() => Payload.Length >= 4 ? BinaryPrimitives.ReadUInt32BigEndian(Payload) : TooShort<uint>(4);

    /// <summary>The string bytes without the terminating NUL (and anything after it).</summary>
    public ReadOnlySpan<byte> GetStringBytes()
    {
        var nul = Payload.IndexOf((byte)0);
        return nul < 0 ? Payload : Payload[..nul];
    }

    public string GetString() => Encoding.UTF8.GetString(GetStringBytes());

    public IPAddress GetAddress() => Payload.Length switch
    {
        4 or 16 => new IPAddress(Payload),
        _ => ThrowHelper.ThrowProtocol<IPAddress>($"attribute {Type}: address of {Payload.Length} bytes"),
    };

    public PhysicalAddress GetMac() => new(Payload.ToArray());

    public NetlinkAttributeEnumerator GetNested() => new(Payload);

    private T TooShort<T>(int needed) =>
        ThrowHelper.ThrowProtocol<T>($"attribute {Type} has {Payload.Length} bytes, needs {needed}");
}

/// <summary>Walks attributes in a payload, validating every length.</summary>
internal ref struct NetlinkAttributeEnumerator
{
    private ReadOnlySpan<byte> _remaining;
    private NetlinkAttribute _current;

    public NetlinkAttributeEnumerator(ReadOnlySpan<byte> attributes)
    {
        _remaining = attributes;
        _current = default;
    }

    public readonly NetlinkAttribute Current => _current;

    public readonly NetlinkAttributeEnumerator GetEnumerator() => this;

    public bool MoveNext()
    {
        if (_remaining.IsEmpty)
        {
            return false;
        }

        if (_remaining.Length < Nl.AttributeHeaderSize)
        {
            ThrowHelper.ThrowProtocol($"{_remaining.Length} trailing bytes are too few for an attribute header");
        }

        var length = BinaryPrimitives.ReadUInt16LittleEndian(_remaining);
        if (length < Nl.AttributeHeaderSize || length > _remaining.Length)
        {
            ThrowHelper.ThrowProtocol($"attribute length {length} outside 4..{_remaining.Length}");
        }

        _current = new NetlinkAttribute(BinaryPrimitives.ReadUInt16LittleEndian(_remaining[2..]), _remaining[Nl.AttributeHeaderSize..length]);
        _remaining = _remaining[Math.Min(Nl.Align(length), _remaining.Length)..];
        return true;
    }
}

/// <summary>Fixed family headers read from a message payload.</summary>
internal static class FamilyHeaders
{
    public static ReadOnlySpan<byte> Attributes(ReadOnlySpan<byte> payload, int headerSize)
    {
        if (payload.Length < headerSize)
        {
            ThrowHelper.ThrowProtocol($"payload of {payload.Length} bytes is shorter than its {headerSize}-byte family header");
        }

        return payload[Math.Min(Nl.Align(headerSize), payload.Length)..];
    }
}

/// <summary>struct ifinfomsg.</summary>
internal readonly struct IfInfoMsg
{
    public IfInfoMsg(ReadOnlySpan<byte> payload)
    {
        _ = FamilyHeaders.Attributes(payload, Rt.IfInfoMsgSize);
        Family = payload[0];
        Type = BinaryPrimitives.ReadUInt16LittleEndian(payload[2..]);
        Index = BinaryPrimitives.ReadInt32LittleEndian(payload[4..]);
        Flags = BinaryPrimitives.ReadUInt32LittleEndian(payload[8..]);
        Change = BinaryPrimitives.ReadUInt32LittleEndian(payload[12..]);
    }

    public byte Family { get; }

    public ushort Type { get; }

    public int Index { get; }

    public uint Flags { get; }

    public uint Change { get; }
}

/// <summary>struct ifaddrmsg.</summary>
internal readonly struct IfAddrMsg
{
    public IfAddrMsg(ReadOnlySpan<byte> payload)
    {
        _ = FamilyHeaders.Attributes(payload, Rt.IfAddrMsgSize);
        Family = payload[0];
        PrefixLength = payload[1];
        Flags = payload[2];
        Scope = payload[3];
        Index = BinaryPrimitives.ReadInt32LittleEndian(payload[4..]);
    }

    public byte Family { get; }

    public byte PrefixLength { get; }

    public byte Flags { get; }

    public byte Scope { get; }

    public int Index { get; }
}

/// <summary>struct rtmsg.</summary>
internal readonly struct RtMsg
{
    public RtMsg(ReadOnlySpan<byte> payload)
    {
        _ = FamilyHeaders.Attributes(payload, Rt.RtMsgSize);
        Family = payload[0];
        DstLength = payload[1];
        SrcLength = payload[2];
        Tos = payload[3];
        Table = payload[4];
        Protocol = payload[5];
        Scope = payload[6];
        Type = payload[7];
        Flags = BinaryPrimitives.ReadUInt32LittleEndian(payload[8..]);
    }

    public byte Family { get; }

    public byte DstLength { get; }

    public byte SrcLength { get; }

    public byte Tos { get; }

    public byte Table { get; }

    public byte Protocol { get; }

    public byte Scope { get; }

    public byte Type { get; }

    public uint Flags { get; }
}

/// <summary>struct ndmsg.</summary>
internal readonly struct NdMsg
{
    public NdMsg(ReadOnlySpan<byte> payload)
    {
        _ = FamilyHeaders.Attributes(payload, Rt.NdMsgSize);
        Family = payload[0];
        Index = BinaryPrimitives.ReadInt32LittleEndian(payload[4..]);
        State = BinaryPrimitives.ReadUInt16LittleEndian(payload[8..]);
        Flags = payload[10];
        Type = payload[11];
    }

    public byte Family { get; }

    public int Index { get; }

    public ushort State { get; }

    public byte Flags { get; }

    public byte Type { get; }
}
