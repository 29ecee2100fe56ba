using System.Buffers.Binary;
using CnmSharp.Netlink.Internal;
using CnmSharp.Netlink.Nftables;

namespace CnmSharp.Netlink.Tests.Nftables;

/// <summary>
/// The library's batch for golden.nft against the bytes nft 1.0.6 sent for the same file (strace of
/// <c>nft -f golden.nft</c>, in golden-batch.hex): every message byte for byte, except that CnmSharp also asks for an
/// ACK on each message (nft never does) and numbers messages from its own first sequence.
/// </summary>
public class NftablesGoldenBytesTests
{
    private static List<byte[]> Split(ReadOnlySpan<byte> datagram)
    {
        var messages = new List<byte[]>();
        while (datagram.Length > 0)
        {
            var length = (int)BinaryPrimitives.ReadUInt32LittleEndian(datagram);
            messages.Add(datagram[..length].ToArray());
            datagram = datagram[((length + 3) & ~3)..];
        }

        return messages;
    }

    private static byte[] Normalize(byte[] message)
    {
        var copy = (byte[])message.Clone();
        var flags = BinaryPrimitives.ReadUInt16LittleEndian(copy.AsSpan(6));
        BinaryPrimitives.WriteUInt16LittleEndian(copy.AsSpan(6), (ushort)(flags & ~Nl.NLM_F_ACK));
        BinaryPrimitives.WriteUInt32LittleEndian(copy.AsSpan(8), 0);
        BinaryPrimitives.WriteUInt32LittleEndian(copy.AsSpan(12), 0);
        return copy;
    }

    [Test]
    public void Batch_matches_what_nft_sends_for_the_same_ruleset()
    {
        var golden = Split(Convert.FromHexString(string.Concat(File.ReadAllLines(Path.Combine(TestContext.CurrentContext.TestDirectory, "Nftables", "golden-batch.hex")))));
        using var batch = GoldenRuleset.Build(new NftablesBatch());
        using var buffer = new GrowableBuffer();
        var length = batch.WriteDatagram(buffer, 0, 0, null);
        var ours = Split(buffer.Array.AsSpan(0, length));

        Assert.That(ours, Has.Count.EqualTo(golden.Count));
        Assert.Multiple(() =>
        {
            for (var i = 0; i < golden.Count; i++)
            {
                var what = i == 0 ? "BEGIN" : i == golden.Count - 1 ? "END" : batch.Descriptions[i - 1];
                Assert.That(Convert.ToHexStringLower(Normalize(ours[i])), Is.EqualTo(Convert.ToHexStringLower(Normalize(golden[i]))), $"message {i}: {what}");
            }
        });
    }

    [Test]
    public void Every_message_asks_for_an_ack_and_gets_its_own_sequence()
    {
        using var batch = GoldenRuleset.Build(new NftablesBatch());
        using var buffer = new GrowableBuffer();
        var ours = Split(buffer.Array.AsSpan(0, batch.WriteDatagram(buffer, 100, 42, 7)));
        Assert.Multiple(() =>
        {
            for (var i = 0; i < ours.Count; i++)
            {
                Assert.That(BinaryPrimitives.ReadUInt32LittleEndian(ours[i].AsSpan(8)), Is.EqualTo(100u + (uint)i));
                Assert.That(BinaryPrimitives.ReadUInt32LittleEndian(ours[i].AsSpan(12)), Is.EqualTo(42u));
                var isMessage = i > 0 && i < ours.Count - 1;
                Assert.That((BinaryPrimitives.ReadUInt16LittleEndian(ours[i].AsSpan(6)) & Nl.NLM_F_ACK) != 0, Is.EqualTo(isMessage));
            }

            // BEGIN carries the generation guard (NFNL_BATCH_GENID, be32).
            Assert.That(Convert.ToHexStringLower(ours[0]), Is.EqualTo("1c000000100001006400000" + "02a000000" + "0000000a" + "0800010000000007"));
        });
    }

    [Test]
    public void Descriptions_name_each_message()
    {
        using var batch = GoldenRuleset.Build(new NftablesBatch());
        Assert.That(batch.Descriptions[0], Is.EqualTo("add table ip cnmsharp"));
        Assert.That(batch.Descriptions, Does.Contain("add rule ip cnmsharp publish"));
        Assert.That(batch.Count, Is.EqualTo(batch.Descriptions.Count));
    }

    [Test]
    public void Rule_comment_is_nft_user_data_and_parses_back()
    {
        using var batch = new NftablesBatch().AddRule(NftFamily.IPv4, "t", "c", [new NftCounter()], "cnm:bridge:abc");
        var bytes = batch.Bytes.ToArray();
        var hex = Convert.ToHexStringLower(bytes);
        Assert.That(hex, Does.Contain("150007" + "00" + "000f" + Convert.ToHexStringLower("cnm:bridge:abc"u8) + "00"));
        Assert.That(NftParser.Comment(Convert.FromHexString("000f" + Convert.ToHexStringLower("cnm:bridge:abc"u8) + "00")), Is.EqualTo("cnm:bridge:abc"));
    }
}
