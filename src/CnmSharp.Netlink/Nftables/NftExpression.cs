using CnmSharp.Netlink.Internal;

namespace CnmSharp.Netlink.Nftables;

/// <summary>Register numbers: the verdict register, the four 16-byte registers and the sixteen 4-byte ones.</summary>
public static class NftRegisters
{
    /// <summary>The verdict register.</summary>
    public const uint Verdict = 0;

    /// <summary>16-byte register 1 (overlaps 4-byte registers 8 to 11).</summary>
    public const uint Reg1 = 1;

    /// <summary>16-byte register 2 (overlaps 4-byte registers 12 to 15).</summary>
    public const uint Reg2 = 2;

    /// <summary>The 4-byte register <paramref name="n"/> (0 to 15), numbered 8 to 23.</summary>
    /// <param name="n">The index.</param>
    /// <returns>The register number.</returns>
    public static uint Reg32(int n) => (uint)(8 + n);
}

/// <summary>meta keys.</summary>
public enum NftMetaKey : uint
{
    /// <summary>The packet mark.</summary>
    Mark = 3,

    /// <summary>The input interface name.</summary>
    InputInterfaceName = 6,

    /// <summary>The output interface name.</summary>
    OutputInterfaceName = 7,

    /// <summary>The layer 4 protocol.</summary>
    L4Proto = 16,
}

/// <summary>Payload bases.</summary>
public enum NftPayloadBase : uint
{
    /// <summary>The link layer header.</summary>
    LinkLayer = 0,

    /// <summary>The network header.</summary>
    Network = 1,

    /// <summary>The transport header.</summary>
    Transport = 2,
}

/// <summary>Comparison operators.</summary>
public enum NftCmpOp : uint
{
    /// <summary>==.</summary>
    Eq = 0,

    /// <summary>!=.</summary>
    Neq = 1,

    /// <summary>&lt;.</summary>
    Lt = 2,

    /// <summary>&lt;=.</summary>
    Lte = 3,

    /// <summary>&gt;.</summary>
    Gt = 4,

    /// <summary>&gt;=.</summary>
    Gte = 5,
}

/// <summary>ct keys.</summary>
public enum NftCtKey : uint
{
    /// <summary>The conntrack state bits (invalid 1, established 2, related 4, new 8).</summary>
    State = 0,

    /// <summary>The conntrack status bits (dnat 0x20...).</summary>
    Status = 2,
}

/// <summary>NAT types.</summary>
public enum NftNatType : uint
{
    /// <summary>Source NAT.</summary>
    Snat = 0,

    /// <summary>Destination NAT.</summary>
    Dnat = 1,
}

/// <summary>fib flags.</summary>
[Flags]
public enum NftFibLookup : uint
{
    /// <summary>None.</summary>
    None = 0,

    /// <summary>Look up the source address.</summary>
    SourceAddress = 1,

    /// <summary>Look up the destination address.</summary>
    DestinationAddress = 2,

    /// <summary>Include the mark.</summary>
    Mark = 4,

    /// <summary>Include the input interface.</summary>
    InputInterface = 8,

    /// <summary>Include the output interface.</summary>
    OutputInterface = 16,
}

/// <summary>fib results.</summary>
public enum NftFibResult : uint
{
    /// <summary>The output interface index.</summary>
    OutputInterface = 1,

    /// <summary>The output interface name.</summary>
    OutputInterfaceName = 2,

    /// <summary>The address type (<c>local</c> is 2).</summary>
    AddressType = 3,
}

/// <summary>
/// One expression of a rule. Encoded as nft encodes it (attribute order included), so the bytes of a rule match
/// what <c>nft</c> sends for the same rule.
/// </summary>
public abstract record NftExpression
{
    private protected NftExpression()
    {
    }

    /// <summary>The expression's kernel name (<c>meta</c>, <c>cmp</c>...).</summary>
    public abstract string Name { get; }

    /// <summary>Writes the attributes of <c>NFTA_EXPR_DATA</c>.</summary>
    internal abstract void EncodeData(ref NetlinkWriter writer, NftablesBatch? batch);

    /// <summary>Writes one <c>NFTA_LIST_ELEM{NAME, DATA}</c>.</summary>
    internal void Encode(ref NetlinkWriter writer, NftablesBatch? batch)
    {
        var element = writer.BeginNested(Nft.NFTA_LIST_ELEM, setNestedFlag: true);
        writer.WriteString(Nft.NFTA_EXPR_NAME, Name);
        var data = writer.BeginNested(Nft.NFTA_EXPR_DATA, setNestedFlag: true);
        EncodeData(ref writer, batch);
        writer.EndNested(data);
        writer.EndNested(element);
    }

    internal static void WriteValue(ref NetlinkWriter writer, ushort type, ReadOnlySpan<byte> value)
    {
        var nest = writer.BeginNested(type, setNestedFlag: true);
        writer.WriteBytes(Nft.NFTA_DATA_VALUE, value);
        writer.EndNested(nest);
    }

    internal static void WriteVerdict(ref NetlinkWriter writer, ushort type, NftVerdict verdict)
    {
        var nest = writer.BeginNested(type, setNestedFlag: true);
        var inner = writer.BeginNested(Nft.NFTA_DATA_VERDICT, setNestedFlag: true);
        writer.WriteBe32(Nft.NFTA_VERDICT_CODE, unchecked((uint)(int)verdict.Code));
        if (verdict.Chain is not null)
        {
            writer.WriteString(Nft.NFTA_VERDICT_CHAIN, verdict.Chain);
        }

        writer.EndNested(inner);
        writer.EndNested(nest);
    }
}

/// <summary><c>meta load KEY => reg DREG</c>.</summary>
/// <param name="Key">The key.</param>
/// <param name="Register">The destination register.</param>
public sealed record NftMeta(NftMetaKey Key, uint Register = NftRegisters.Reg1) : NftExpression
{
    /// <inheritdoc />
    public override string Name => "meta";

    internal override void EncodeData(ref NetlinkWriter writer, NftablesBatch? batch)
    {
        writer.WriteBe32(2, (uint)Key);
        writer.WriteBe32(1, Register);
    }
}

/// <summary><c>payload load LEN @ BASE + OFFSET => reg DREG</c>.</summary>
/// <param name="Base">The header.</param>
/// <param name="Offset">The offset in bytes.</param>
/// <param name="Length">The length in bytes.</param>
/// <param name="Register">The destination register.</param>
public sealed record NftPayload(NftPayloadBase Base, uint Offset, uint Length, uint Register = NftRegisters.Reg1) : NftExpression
{
    /// <inheritdoc />
    public override string Name => "payload";

    internal override void EncodeData(ref NetlinkWriter writer, NftablesBatch? batch)
    {
        writer.WriteBe32(1, Register);
        writer.WriteBe32(2, (uint)Base);
        writer.WriteBe32(3, Offset);
        writer.WriteBe32(4, Length);
    }
}

/// <summary><c>cmp OP reg SREG DATA</c>; the data length is the compared length.</summary>
/// <param name="Op">The operator.</param>
/// <param name="Data">The value (see <see cref="NftValues"/>).</param>
/// <param name="Register">The source register.</param>
public sealed record NftCmp(NftCmpOp Op, byte[] Data, uint Register = NftRegisters.Reg1) : NftExpression
{
    /// <inheritdoc />
    public override string Name => "cmp";

    internal override void EncodeData(ref NetlinkWriter writer, NftablesBatch? batch)
    {
        writer.WriteBe32(1, Register);
        writer.WriteBe32(2, (uint)Op);
        WriteValue(ref writer, 3, Data);
    }
}

/// <summary><c>immediate reg 0 VERDICT</c>: a rule's verdict.</summary>
/// <param name="Verdict">The verdict.</param>
public sealed record NftImmediateVerdict(NftVerdict Verdict) : NftExpression
{
    /// <inheritdoc />
    public override string Name => "immediate";

    internal override void EncodeData(ref NetlinkWriter writer, NftablesBatch? batch)
    {
        writer.WriteBe32(1, NftRegisters.Verdict);
        WriteVerdict(ref writer, 2, Verdict);
    }
}

/// <summary><c>immediate reg DREG DATA</c>: loads a constant.</summary>
/// <param name="Data">The value.</param>
/// <param name="Register">The destination register.</param>
public sealed record NftImmediateData(byte[] Data, uint Register = NftRegisters.Reg1) : NftExpression
{
    /// <inheritdoc />
    public override string Name => "immediate";

    internal override void EncodeData(ref NetlinkWriter writer, NftablesBatch? batch)
    {
        writer.WriteBe32(1, Register);
        WriteValue(ref writer, 2, Data);
    }
}

/// <summary><c>bitwise reg DREG = (reg SREG &amp; MASK) ^ XOR</c>.</summary>
/// <param name="Mask">The mask; its length is the operand length.</param>
/// <param name="Xor">The xor value, as long as the mask.</param>
/// <param name="Source">The source register.</param>
/// <param name="Destination">The destination register.</param>
public sealed record NftBitwise(byte[] Mask, byte[] Xor, uint Source = NftRegisters.Reg1, uint Destination = NftRegisters.Reg1) : NftExpression
{
    /// <inheritdoc />
    public override string Name => "bitwise";

    internal override void EncodeData(ref NetlinkWriter writer, NftablesBatch? batch)
    {
        writer.WriteBe32(1, Source);
        writer.WriteBe32(2, Destination);
        writer.WriteBe32(3, (uint)Mask.Length);
        WriteValue(ref writer, 4, Mask);
        WriteValue(ref writer, 5, Xor);
    }
}

/// <summary><c>ct load KEY => reg DREG</c>.</summary>
/// <param name="Key">The key.</param>
/// <param name="Register">The destination register.</param>
public sealed record NftCt(NftCtKey Key, uint Register = NftRegisters.Reg1) : NftExpression
{
    /// <inheritdoc />
    public override string Name => "ct";

    internal override void EncodeData(ref NetlinkWriter writer, NftablesBatch? batch)
    {
        writer.WriteBe32(2, (uint)Key);
        writer.WriteBe32(1, Register);
    }
}

/// <summary><c>lookup reg SREG set SET [dreg DREG]</c>: set membership, or a map lookup into DREG (0 = verdict map).</summary>
/// <param name="Set">The set's name.</param>
/// <param name="Source">The key register.</param>
/// <param name="Destination">For a map, the register to load the data into (<see cref="NftRegisters.Verdict"/> for a
/// verdict map); null for a set.</param>
/// <param name="Invert">Matches when the key is absent (<c>!=</c>).</param>
public sealed record NftLookup(string Set, uint Source = NftRegisters.Reg1, uint? Destination = null, bool Invert = false) : NftExpression
{
    /// <inheritdoc />
    public override string Name => "lookup";

    internal override void EncodeData(ref NetlinkWriter writer, NftablesBatch? batch)
    {
        writer.WriteBe32(2, Source);
        if (Destination is { } destination)
        {
            writer.WriteBe32(3, destination);
        }

        writer.WriteString(1, Set);
        if (batch?.SetIdOf(Set) is { } id)
        {
            writer.WriteBe32(4, id);
        }

        if (Invert)
        {
            writer.WriteBe32(5, 1);
        }
    }
}

/// <summary><c>nat snat|dnat FAMILY addr_min reg A proto_min reg P</c>.</summary>
/// <param name="Type">snat or dnat.</param>
/// <param name="Family">The address family of the address register.</param>
/// <param name="AddressRegister">The register with the address, or null.</param>
/// <param name="ProtoRegister">The register with the port, or null.</param>
/// <param name="Flags">NF_NAT_RANGE_* flags (0: none sent).</param>
public sealed record NftNat(NftNatType Type, NftFamily Family, uint? AddressRegister, uint? ProtoRegister = null, uint Flags = 0) : NftExpression
{
    /// <inheritdoc />
    public override string Name => "nat";

    internal override void EncodeData(ref NetlinkWriter writer, NftablesBatch? batch)
    {
        writer.WriteBe32(1, (uint)Type);
        writer.WriteBe32(2, (uint)Family);
        if (AddressRegister is { } address)
        {
            writer.WriteBe32(3, address);
        }

        if (ProtoRegister is { } proto)
        {
            writer.WriteBe32(5, proto);
        }

        if (Flags != 0)
        {
            writer.WriteBe32(7, Flags);
        }
    }
}

/// <summary><c>masq</c>.</summary>
/// <param name="Flags">NF_NAT_RANGE_* flags (0: a bare masquerade).</param>
public sealed record NftMasquerade(uint Flags = 0) : NftExpression
{
    /// <inheritdoc />
    public override string Name => "masq";

    internal override void EncodeData(ref NetlinkWriter writer, NftablesBatch? batch)
    {
        if (Flags != 0)
        {
            writer.WriteBe32(1, Flags);
        }
    }
}

/// <summary><c>fib FLAGS RESULT => reg DREG</c>, e.g. <c>fib daddr type</c>.</summary>
/// <param name="Flags">What to look up.</param>
/// <param name="Result">What to load.</param>
/// <param name="Register">The destination register.</param>
public sealed record NftFib(NftFibLookup Flags, NftFibResult Result, uint Register = NftRegisters.Reg1) : NftExpression
{
    /// <inheritdoc />
    public override string Name => "fib";

    internal override void EncodeData(ref NetlinkWriter writer, NftablesBatch? batch)
    {
        writer.WriteBe32(3, (uint)Flags);
        writer.WriteBe32(2, (uint)Result);
        writer.WriteBe32(1, Register);
    }
}

/// <summary><c>counter</c>.</summary>
public sealed record NftCounter : NftExpression
{
    /// <inheritdoc />
    public override string Name => "counter";

    internal override void EncodeData(ref NetlinkWriter writer, NftablesBatch? batch)
    {
    }
}
