using System.Buffers.Binary;
using System.Net;
using System.Text;

namespace CnmSharp.Netlink.Nftables;

/// <summary>An nf_tables address family (the <c>nfgenmsg</c> family byte).</summary>
public enum NftFamily : byte
{
    /// <summary>Every family (dumps only).</summary>
    Unspecified = 0,

    /// <summary><c>inet</c>: IPv4 and IPv6.</summary>
    Inet = 1,

    /// <summary><c>ip</c>.</summary>
    IPv4 = 2,

    /// <summary><c>ip6</c>.</summary>
    IPv6 = 10,
}

/// <summary>A netfilter hook of the ip, ip6 and inet families.</summary>
public enum NftHook
{
    /// <summary>prerouting.</summary>
    Prerouting = 0,

    /// <summary>input.</summary>
    Input = 1,

    /// <summary>forward.</summary>
    Forward = 2,

    /// <summary>output.</summary>
    Output = 3,

    /// <summary>postrouting.</summary>
    Postrouting = 4,
}

/// <summary>A verdict code (<c>NF_DROP</c>, <c>NF_ACCEPT</c>, <c>NFT_JUMP</c>...).</summary>
public enum NftVerdictCode
{
    /// <summary>Continue with the next expression.</summary>
    Continue = -1,

    /// <summary>Stop evaluating this rule.</summary>
    Break = -2,

    /// <summary>Jump to a chain and come back.</summary>
    Jump = -3,

    /// <summary>Go to a chain without coming back.</summary>
    Goto = -4,

    /// <summary>Return to the calling chain.</summary>
    Return = -5,

    /// <summary>Drop the packet.</summary>
    Drop = 0,

    /// <summary>Accept the packet.</summary>
    Accept = 1,
}

/// <summary>A verdict: a code and, for jump and goto, the target chain.</summary>
/// <param name="Code">The code.</param>
/// <param name="Chain">The target chain of <see cref="NftVerdictCode.Jump"/> and <see cref="NftVerdictCode.Goto"/>.</param>
public readonly record struct NftVerdict(NftVerdictCode Code, string? Chain = null)
{
    /// <summary>accept.</summary>
    public static NftVerdict Accept => new(NftVerdictCode.Accept);

    /// <summary>drop.</summary>
    public static NftVerdict Drop => new(NftVerdictCode.Drop);

    /// <summary>return.</summary>
    public static NftVerdict Return => new(NftVerdictCode.Return);

    /// <summary>jump to a chain.</summary>
    /// <param name="chain">The chain.</param>
    /// <returns>The verdict.</returns>
    public static NftVerdict JumpTo(string chain) => new(NftVerdictCode.Jump, chain);

    /// <summary>goto a chain.</summary>
    /// <param name="chain">The chain.</param>
    /// <returns>The verdict.</returns>
    public static NftVerdict GotoChain(string chain) => new(NftVerdictCode.Goto, chain);

    /// <inheritdoc />
    public override string ToString() => Code switch
    {
        NftVerdictCode.Jump => "jump " + Chain,
        NftVerdictCode.Goto => "goto " + Chain,
        _ => Code.ToString().ToLowerInvariant(),
    };
}

/// <summary>What makes a chain a base chain: its type, hook, priority and policy.</summary>
/// <param name="Type"><c>filter</c>, <c>nat</c> or <c>route</c>.</param>
/// <param name="Hook">The hook.</param>
/// <param name="Priority">The priority (raw -300, dstnat -100, filter 0, srcnat 100).</param>
/// <param name="Policy">The policy: <see cref="NftVerdictCode.Accept"/> or <see cref="NftVerdictCode.Drop"/>.</param>
public sealed record NftBaseChain(string Type, NftHook Hook, int Priority, NftVerdictCode Policy = NftVerdictCode.Accept);

/// <summary>Set flags (<c>NFT_SET_*</c>).</summary>
[Flags]
public enum NftSetOptions : uint
{
    /// <summary>None.</summary>
    None = 0,

    /// <summary>An anonymous set.</summary>
    Anonymous = 1,

    /// <summary>A constant set.</summary>
    Constant = 2,

    /// <summary>Interval keys.</summary>
    Interval = 4,

    /// <summary>A map (elements carry data or a verdict).</summary>
    Map = 8,

    /// <summary>Elements may time out.</summary>
    Timeout = 0x10,

    /// <summary>Concatenated keys with intervals.</summary>
    Concat = 0x80,
}

/// <summary>nft's data type ids (kept by the kernel for printing only); a concatenation is <c>(t1 &lt;&lt; 6) | t2 ...</c>.</summary>
public static class NftDataTypes
{
    /// <summary>ipv4_addr.</summary>
    public const uint IPv4Address = 7;

    /// <summary>ipv6_addr.</summary>
    public const uint IPv6Address = 8;

    /// <summary>inet_proto.</summary>
    public const uint InetProto = 12;

    /// <summary>inet_service.</summary>
    public const uint InetService = 13;

    /// <summary>ifname.</summary>
    public const uint InterfaceName = 41;

    /// <summary>verdict (the data type of a verdict map).</summary>
    public const uint Verdict = 0xffffff00;

    /// <summary>The type id of a concatenation.</summary>
    /// <param name="types">The field types, in order.</param>
    /// <returns>The concatenated id.</returns>
    public static uint Concat(params ReadOnlySpan<uint> types)
    {
        uint id = 0;
        foreach (var type in types)
        {
            id = (id << 6) | type;
        }

        return id;
    }
}

/// <summary>A set or map to create.</summary>
public sealed record NftSetSpec
{
    /// <summary>The name.</summary>
    public required string Name { get; init; }

    /// <summary>The flags; <see cref="NftSetOptions.Map"/> for a map.</summary>
    public NftSetOptions Flags { get; init; }

    /// <summary>nft's key type id (<see cref="NftDataTypes"/>), for printing.</summary>
    public uint KeyType { get; init; }

    /// <summary>The key length in bytes (a concatenation: 4 per field, rounded up).</summary>
    public required uint KeyLength { get; init; }

    /// <summary>nft's data type id of a map (<see cref="NftDataTypes.Verdict"/> for a verdict map), else null.</summary>
    public uint? DataType { get; init; }

    /// <summary>The data length of a map in bytes (0 for a verdict map).</summary>
    public uint DataLength { get; init; }

    /// <summary>nft's set user data (byte order hints for printing), or null. The kernel keeps it without reading it.</summary>
    public byte[]? UserData { get; init; }
}

/// <summary>A set element: a key and, in a map, its data or verdict.</summary>
/// <param name="Key">The key bytes (see <see cref="NftValues"/>).</param>
/// <param name="Data">A data map's value, or null.</param>
/// <param name="Verdict">A verdict map's verdict, or null.</param>
public sealed record NftSetElement(byte[] Key, byte[]? Data = null, NftVerdict? Verdict = null)
{
    /// <summary>A comment kept with the element (its user data; nft shows it), at most 127 bytes, or null.</summary>
    public string? Comment { get; init; }

    /// <summary>True when both have the same key, data and verdict bytes.</summary>
    /// <param name="other">The other element.</param>
    /// <returns>Whether they are the same element.</returns>
    public bool SameAs(NftSetElement other)
    {
        ArgumentNullException.ThrowIfNull(other);
        return Key.AsSpan().SequenceEqual(other.Key) && Verdict == other.Verdict
            && (Data is null ? other.Data is null : other.Data is not null && Data.AsSpan().SequenceEqual(other.Data));
    }

    /// <summary>The key as lower-case hex (for maps keyed by it).</summary>
    public string KeyHex => Convert.ToHexStringLower(Key);
}

/// <summary>Builds the byte values nf_tables compares: packet fields in network order, meta values in host order.</summary>
public static class NftValues
{
    /// <summary>The length of an interface name value (IFNAMSIZ).</summary>
    public const int InterfaceNameLength = 16;

    /// <summary>An exact interface name: 16 bytes, NUL-padded.</summary>
    /// <param name="name">The name (at most 15 bytes).</param>
    /// <returns>The value.</returns>
    public static byte[] InterfaceName(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        var value = new byte[InterfaceNameLength];
        if (Encoding.UTF8.GetByteCount(name) >= InterfaceNameLength)
        {
            throw new ArgumentException($"interface name \"{name}\" is longer than 15 bytes", nameof(name));
        }

        Encoding.UTF8.GetBytes(name, value);
        return value;
    }

    /// <summary>An interface name prefix (nft's <c>"br-*"</c>): only the prefix bytes, no NUL.</summary>
    /// <param name="prefix">The prefix.</param>
    /// <returns>The value.</returns>
    public static byte[] InterfaceNamePrefix(string prefix) => Encoding.UTF8.GetBytes(prefix);

    /// <summary>A 16-bit value in network order (a port).</summary>
    /// <param name="value">The value.</param>
    /// <returns>The value.</returns>
    public static byte[] Be16(ushort value)
    {
        var bytes = new byte[2];
        BinaryPrimitives.WriteUInt16BigEndian(bytes, value);
        return bytes;
    }

    /// <summary>A 32-bit value in host order (meta, ct and fib values).</summary>
    /// <param name="value">The value.</param>
    /// <returns>The value.</returns>
    public static byte[] HostU32(uint value)
    {
        var bytes = new byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(bytes, value);
        return bytes;
    }

    /// <summary>An address in network order (4 or 16 bytes).</summary>
    /// <param name="address">The address.</param>
    /// <returns>The value.</returns>
    public static byte[] Address(IPAddress address)
    {
        ArgumentNullException.ThrowIfNull(address);
        return address.GetAddressBytes();
    }

    /// <summary>A concatenation: each field zero-padded to a multiple of 4 bytes.</summary>
    /// <param name="fields">The fields.</param>
    /// <returns>The value.</returns>
    public static byte[] Concat(params byte[][] fields)
    {
        ArgumentNullException.ThrowIfNull(fields);
        var length = 0;
        foreach (var field in fields)
        {
            length += (field.Length + 3) & ~3;
        }

        var value = new byte[length];
        var offset = 0;
        foreach (var field in fields)
        {
            field.CopyTo(value, offset);
            offset += (field.Length + 3) & ~3;
        }

        return value;
    }
}
