using CnmSharp.Netlink.Internal;

namespace CnmSharp.Netlink.Nftables;

/// <summary>Compares a dumped rule's expressions with expected ones (see <see cref="NftRule.Matches"/>).</summary>
internal static class NftRuleMatcher
{
    /// <summary>NFTA_LOOKUP_SET_ID: sent for a set made in the same batch, never dumped.</summary>
    private const ushort LookupSetId = 4;

    public static bool Matches(ReadOnlySpan<byte> dumped, IReadOnlyList<NftExpression> expected)
    {
        ArgumentNullException.ThrowIfNull(expected);
        using var buffer = new GrowableBuffer(1024);
        var index = 0;
        foreach (var element in new NetlinkAttributeEnumerator(dumped))
        {
            if (index >= expected.Count)
            {
                return false;
            }

            var expression = expected[index++];
            string? name = null;
            ReadOnlySpan<byte> data = default;
            foreach (var a in element.GetNested())
            {
                if (a.Type == Nft.NFTA_EXPR_NAME)
                {
                    name = a.GetString();
                }
                else if (a.Type == Nft.NFTA_EXPR_DATA)
                {
                    data = a.Payload;
                }
            }

            if (name != expression.Name)
            {
                return false;
            }

            var writer = new NetlinkWriter(buffer);
            expression.EncodeData(ref writer, null);
            foreach (var want in new NetlinkAttributeEnumerator(writer.Written))
            {
                if (expression is NftLookup && want.Type == LookupSetId)
                {
                    continue;
                }

                if (IsRegister(expression.Name, want.Type))
                {
                    if (!ContainsRegister(data, want.Type, want.GetBe32()))
                    {
                        return false;
                    }

                    continue;
                }

                if (!Contains(data, want))
                {
                    return false;
                }
            }
        }

        return index == expected.Count;
    }

    /// <summary>The register attributes of each expression kind (NFTA_*_SREG/DREG, nat's REG_ADDR_MIN/REG_PROTO_MIN).</summary>
    private static bool IsRegister(string expression, ushort type) => expression switch
    {
        "meta" => type is 1 or 3,
        "payload" => type is 1 or 5,
        "cmp" or "immediate" or "ct" or "fib" => type == 1,
        "bitwise" => type is 1 or 2,
        "lookup" => type is 2 or 3,
        "nat" => type is 3 or 5,
        _ => false,
    };

    /// <summary>
    /// The kernel keeps registers in 4-byte units and dumps one that starts a 16-byte register under the 16-byte name:
    /// NFT_REG32_00, _04, _08, _12 (8, 12, 16, 20) come back as NFT_REG_1 to NFT_REG_4.
    /// </summary>
    private static uint CanonicalRegister(uint register) => register >= 8 && (register - 8) % 4 == 0 ? ((register - 8) / 4) + 1 : register;

    private static bool ContainsRegister(ReadOnlySpan<byte> attributes, ushort type, uint register)
    {
        foreach (var have in new NetlinkAttributeEnumerator(attributes))
        {
            if (have.Type == type)
            {
                return have.Payload.Length == 4 && CanonicalRegister(have.GetBe32()) == CanonicalRegister(register);
            }
        }

        return false;
    }

    private static bool Contains(ReadOnlySpan<byte> attributes, NetlinkAttribute want)
    {
        foreach (var have in new NetlinkAttributeEnumerator(attributes))
        {
            if (have.Type == want.Type)
            {
                return SamePayload(have.Payload, want.Payload, depth: 0);
            }
        }

        return false;
    }

    /// <summary>Equal bytes, or (for nests) the same attributes with the nested flag ignored: the kernel dumps a verdict
    /// with <c>nla_nest_start_noflag</c> where nft sets NLA_F_NESTED.</summary>
    private static bool SamePayload(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b, int depth)
    {
        if (a.SequenceEqual(b))
        {
            return true;
        }

        if (depth > 4 || !IsAttributeList(a) || !IsAttributeList(b))
        {
            return false;
        }

        var left = new NetlinkAttributeEnumerator(a);
        var right = new NetlinkAttributeEnumerator(b);
        while (true)
        {
            var more = left.MoveNext();
            if (more != right.MoveNext())
            {
                return false;
            }

            if (!more)
            {
                return true;
            }

            if (left.Current.Type != right.Current.Type || !SamePayload(left.Current.Payload, right.Current.Payload, depth + 1))
            {
                return false;
            }
        }
    }

    /// <summary>True when the bytes are a well-formed list of at least one attribute.</summary>
    private static bool IsAttributeList(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length < 4)
        {
            return false;
        }

        while (bytes.Length >= 4)
        {
            int length = System.Buffers.Binary.BinaryPrimitives.ReadUInt16LittleEndian(bytes);
            if (length < 4 || length > bytes.Length)
            {
                return false;
            }

            var aligned = (length + 3) & ~3;
            bytes = aligned >= bytes.Length ? [] : bytes[aligned..];
        }

        return bytes.Length == 0;
    }
}
