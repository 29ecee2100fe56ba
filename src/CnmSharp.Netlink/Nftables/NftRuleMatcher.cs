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

                if (!Contains(data, want))
                {
                    return false;
                }
            }
        }

        return index == expected.Count;
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
