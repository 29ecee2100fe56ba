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
                return have.Payload.SequenceEqual(want.Payload);
            }
        }

        return false;
    }
}
