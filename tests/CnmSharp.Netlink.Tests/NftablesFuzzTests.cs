using System.Buffers.Binary;
using CnmSharp.Netlink.Internal;
using CnmSharp.Netlink.Nftables;
using CnmSharp.Netlink.Tests.Nftables;
using CnmSharp.Testing;
using CsCheck;
using static CnmSharp.Netlink.Tests.Support.Hand;
using static CnmSharp.Netlink.Tests.Support.Kernel;

namespace CnmSharp.Netlink.Tests;

/// <summary>
/// Hostile nf_tables replies (dumps, notifications, errors) fed to every nf_tables reader: the dump parsers
/// (<see cref="NftParser"/>), the monitor's <see cref="NftablesClient.ParseEvents"/>, the error reader and the rule
/// matcher over dumped expression bytes. Only <see cref="NetlinkProtocolException"/> may escape (the layer's documented
/// parse error). The corpus (Corpus/nftables) is nft 1.0.6's own batch for golden.nft, a dump, an error with an
/// extended ack, an overrun and hand-made length lies; it is replayed whole and mutated.
/// </summary>
public class NftablesFuzzTests
{
    private const string Parser = "nftables";

    internal static void Feed(byte[] bytes)
    {
        try
        {
            var events = new List<NftEvent>();
            NftablesClient.ParseEvents(bytes, events);
        }
        catch (NetlinkProtocolException)
        {
        }

        try
        {
            var tables = new List<NftTable>();
            var chains = new List<NftChain>();
            var rules = new List<NftRule>();
            var sets = new List<NftSet>();
            var elements = new List<NftSetElement>();
            foreach (var message in new NetlinkMessageEnumerator(bytes))
            {
                if (message.Type == Nl.NLMSG_ERROR || message.Type == Nl.NLMSG_DONE)
                {
                    _ = RtnetlinkParser.ParseError(message.Payload, message.Flags, out _, isDone: message.Type == Nl.NLMSG_DONE);
                    continue;
                }

                // As the dump reader does: only nf_tables messages with their nfgenmsg reach the parsers.
                if (message.Payload.Length < Nft.GenMsgSize)
                {
                    continue;
                }

                // Each parser sees every message type (a dump reply of one kind answered with another).
                var payload = message.Payload.ToArray();
                for (ushort type = 0; type <= Nft.NEWGEN; type++)
                {
                    var t = type;
                    Catch(() => NftParser.Table(t, payload, tables));
                    Catch(() => NftParser.Chain(t, payload, chains));
                    Catch(() => NftParser.Rule(t, payload, rules));
                    Catch(() => NftParser.Set(t, payload, sets));
                    Catch(() => NftParser.Elements(t, payload, elements));
                    Catch(() => _ = NftParser.Event(t, payload));
                }

                void Catch(Action parse)
                {
                    try
                    {
                        parse();
                    }
                    catch (NetlinkProtocolException)
                    {
                    }
                }
            }

            foreach (var rule in rules)
            {
                try
                {
                    _ = rule.Matches(s_expressions);
                    _ = rule.Matches([]);
                }
                catch (NetlinkProtocolException)
                {
                }
            }
        }
        catch (NetlinkProtocolException)
        {
        }
    }

    private static readonly NftExpression[] s_expressions =
    [
        new NftMeta(NftMetaKey.InputInterfaceName),
        new NftCmp(NftCmpOp.Eq, NftValues.InterfaceName("br-cnm0")),
        new NftLookup("fwd-in", NftRegisters.Reg1, 0),
        new NftCounter(),
        new NftImmediateVerdict(NftVerdict.Accept),
    ];

    [TestCaseSource(nameof(CorpusCases))]
    public void Corpus_entries_only_raise_protocol_exceptions(string file) => Feed(Fuzz.CorpusBytes(Parser, file));

    private static IEnumerable<TestCaseData> CorpusCases() => Fuzz.Corpus(Parser);

    [Test]
    public void The_golden_batch_parses_back_into_its_objects()
    {
        // nft's batch messages have the shape of the kernel's notifications: the monitor reads them all.
        var events = new List<NftEvent>();
        NftablesClient.ParseEvents(Fuzz.CorpusBytes(Parser, "golden-batch.bin"), events);
        Assert.Multiple(() =>
        {
            Assert.That(events.Count(e => e.Kind == NftEventKind.NewTable && e.Table == GoldenRuleset.Table), Is.EqualTo(1));
            Assert.That(events.Count(e => e.Kind == NftEventKind.NewChain), Is.EqualTo(6));
            Assert.That(events.Any(e => e.Kind == NftEventKind.NewRule), Is.True);
        });
    }

    [Test]
    public void Mutated_corpus_only_raises_protocol_exceptions() =>
        Fuzz.Run(Fuzz.Mutations(Fuzz.CorpusAll(Parser)), Feed, iterations: 4_000, seed: 101);

    [Test]
    public void Random_nf_tables_messages_with_random_attributes_only_raise_protocol_exceptions() =>
        Fuzz.Run(
            Gen.Select(Gen.Byte[0, Nft.NEWGEN + 2], Gen.UShort, RandomAttributes(3)).Array[1, 5]
                .Select(parts => Concat([.. parts.Select(p => Msg((ushort)((Nft.SubsysNftables << 8) | p.Item1), p.Item2, 1, [2, 0, 0, 7], p.Item3))])),
            Feed,
            iterations: 4_000,
            seed: 102);

    /// <summary>Random attribute trees: types in the nf_tables range (so parsers recognise them), random or nested payloads.</summary>
    private static Gen<byte[][]> RandomAttributes(int depth) =>
        Gen.OneOf(
            Gen.Select(Gen.UShort[0, 12], Gen.Byte.Array[0, 24]).Select(a => Attr(a.Item1, a.Item2)),
            Gen.Select(Gen.UShort[0, 12], Gen.Const(0)).Select(a => Attr(a.Item1, Str("x"))),
            depth > 0
                ? Gen.Select(Gen.UShort[0, 12], Gen.Int[0, 1]).SelectMany(a => RandomAttributes(depth - 1).Select(children => Nest((ushort)(a.Item1 | (a.Item2 << 15)), children)))
                : Gen.Const(Attr(1, Str("leaf"))))
            .Array[0, 4];

    [Test]
    public void Length_fields_that_lie_only_raise_protocol_exceptions()
    {
        var seeds = Fuzz.CorpusAll(Parser);
        Fuzz.Run(
            Gen.Select(Gen.Int[0, seeds.Length - 1], Gen.Int, Gen.UInt, Gen.Bool),
            t =>
            {
                var corpus = seeds[t.Item1];
                var bytes = (byte[])corpus.Clone();
                if (bytes.Length < 4)
                {
                    return;
                }

                // A message length (u32) or an attribute length (u16) anywhere, set to a lie.
                var at = (int)((uint)t.Item2 % (uint)(bytes.Length - 3));
                if (t.Item4)
                {
                    BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(at), t.Item3);
                }
                else
                {
                    BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(at), (ushort)t.Item3);
                }

                Feed(bytes);
            },
            iterations: 3_000,
            seed: 103);
    }

    [Test]
    public void Tables_chains_and_rules_encoded_by_a_batch_parse_back_identically() =>
        Fuzz.Run(
            Gen.Select(Name(), Name(), Gen.Int[-400, 400], Gen.Bool, Name(), Gen.Byte.Array[1, 16]),
            t =>
            {
                var (table, chain, priority, isBase, comment, data) = t;
                NftExpression[] expressions = [new NftMeta(NftMetaKey.InputInterfaceName), new NftCmp(NftCmpOp.Eq, data), new NftCounter(), new NftImmediateVerdict(NftVerdict.Accept)];
                using var batch = new NftablesBatch()
                    .AddTable(NftFamily.IPv4, table)
                    .AddChain(NftFamily.IPv4, table, chain, isBase ? new NftBaseChain("filter", NftHook.Forward, priority) : null, comment)
                    .AddRule(NftFamily.IPv4, table, chain, expressions, comment);
                using var buffer = new GrowableBuffer();
                var length = batch.WriteDatagram(buffer, 1, 0, null);
                var events = new List<NftEvent>();
                NftablesClient.ParseEvents(buffer.Array.AsSpan(0, length), events);
                Assert.That(events.Select(e => e.Kind), Is.EqualTo(new[] { NftEventKind.NewTable, NftEventKind.NewChain, NftEventKind.NewRule }));
                Assert.That(events[0].Table, Is.EqualTo(table));
                Assert.That((events[1].Table, events[1].Chain, events[1].Comment), Is.EqualTo((table, chain, comment)));
                var rule = events[2].Rule!;
                Assert.That((rule.Table, rule.Chain, rule.Comment), Is.EqualTo((table, chain, comment)));
                Assert.That(rule.ExpressionNames, Is.EqualTo(expressions.Select(e => e.Name)));
                Assert.That(rule.Matches(expressions), Is.True, "the rule read back matches the expressions written");
            },
            iterations: 1_000,
            seed: 104);

    private static Gen<string> Name() => Gen.Char["abcdefghijklmnopqrstuvwxyz0123456789-_"].Array[1, 30].Select(c => new string(c));

    /// <summary>
    /// The committed seed corpus is what the seed generator makes, byte for byte (a format change must regenerate it:
    /// run this test with CNMSHARP_CORPUS_OUT=tests/CnmSharp.Netlink.Tests/Corpus, which writes the seeds there).
    /// </summary>
    [Test]
    public void The_committed_seed_corpus_is_what_the_generator_makes()
    {
        if (Environment.GetEnvironmentVariable("CNMSHARP_CORPUS_OUT") is { Length: > 0 } target)
        {
            WriteSeedCorpus(target);
        }

        var generated = Directory.CreateTempSubdirectory("cnmseeds-").FullName;
        try
        {
            WriteSeedCorpus(generated);
            var committed = Path.Combine(TestContext.CurrentContext.TestDirectory, "Corpus");
            var files = Directory.GetFiles(generated, "*", SearchOption.AllDirectories);
            Assert.That(files, Is.Not.Empty);
            Assert.Multiple(() =>
            {
                foreach (var file in files)
                {
                    var relative = Path.GetRelativePath(generated, file);
                    var kept = Path.Combine(committed, relative);
                    Assert.That(File.Exists(kept), Is.True, $"seed {relative} is not in the committed corpus");
                    if (File.Exists(kept))
                    {
                        Assert.That(File.ReadAllBytes(kept), Is.EqualTo(File.ReadAllBytes(file)), $"seed {relative} differs from the committed one");
                    }
                }
            });
        }
        finally
        {
            Directory.Delete(generated, recursive: true);
        }
    }

    private static void WriteSeedCorpus(string root)
    {
        var rt = Directory.CreateDirectory(Path.Combine(root, "rtnetlink")).FullName;
        File.WriteAllBytes(Path.Combine(rt, "dump-link-addr-route-neigh-error-done.bin"), FuzzTests.s_valid);
        var i = 0;
        foreach (var message in new NetlinkMessageEnumerator(FuzzTests.s_valid))
        {
            File.WriteAllBytes(Path.Combine(rt, $"message-{i++}-type-{message.Type}.bin"), Concat(Header((uint)(16 + message.Payload.Length), message.Type, message.Flags, message.Sequence, message.PortId), message.Payload.ToArray(), new byte[(4 - (message.Payload.Length % 4)) % 4]));
        }

        File.WriteAllBytes(Path.Combine(rt, "multipart-two-datagrams-worth.bin"), Concat(LinkMessage(1, "lo", "", 1, 0), LinkMessage(3, "br0", "bridge", 1, 0), LinkMessage(4, "veth0", "veth", 1, 0, master: 3), Done(1, 0)));
        File.WriteAllBytes(Path.Combine(rt, "error-extended-ack.bin"), Error(22, 1, 0, "Invalid argument"));
        File.WriteAllBytes(Path.Combine(rt, "done-with-errno.bin"), Done(1, 0, errno: -16));
        File.WriteAllBytes(Path.Combine(rt, "message-length-past-end.bin"), Concat(Header(0x7FFFFFFF, RTM_NEWLINK, 2, 1, 0), IfInfo(0, 1)));
        File.WriteAllBytes(Path.Combine(rt, "message-length-below-header.bin"), Header(8, RTM_NEWLINK, 2, 1, 0));
        File.WriteAllBytes(Path.Combine(rt, "attribute-length-zero.bin"), Concat(Header(36, RTM_NEWLINK, 2, 1, 0), IfInfo(0, 1), [0, 0, 3, 0]));
        var nft = Directory.CreateDirectory(Path.Combine(root, Parser)).FullName;
        var golden = Convert.FromHexString(string.Concat(File.ReadAllLines(Path.Combine(TestContext.CurrentContext.TestDirectory, "Nftables", "golden-batch.hex"))));
        File.WriteAllBytes(Path.Combine(nft, "golden-batch.bin"), golden);
        using (var batch = GoldenRuleset.Build(new NftablesBatch()))
        using (var buffer = new GrowableBuffer())
        {
            File.WriteAllBytes(Path.Combine(nft, "cnmsharp-batch.bin"), buffer.Array.AsSpan(0, batch.WriteDatagram(buffer, 1, 0, 7)).ToArray());
        }

        const ushort Multi = 0x02;
        var rule = Msg((ushort)((Nft.SubsysNftables << 8) | Nft.NEWRULE), Multi, 9, [2, 0, 0, 7],
            Attr(Nft.NFTA_RULE_TABLE, Str("cnmsharp")), Attr(Nft.NFTA_RULE_CHAIN, Str("forward")), Attr(Nft.NFTA_RULE_HANDLE, [0, 0, 0, 0, 0, 0, 0, 5]),
            Nest(Nft.NFTA_RULE_EXPRESSIONS | 0x8000, Nest(1 | 0x8000, Attr(Nft.NFTA_EXPR_NAME, Str("counter")), Nest(Nft.NFTA_EXPR_DATA | 0x8000, Attr(1, new byte[8])))),
            Attr(7, [0, 5, .. "cnm:x"u8]));
        File.WriteAllBytes(Path.Combine(nft, "dump-rule-done.bin"), Concat(rule, Done(9, 0)));
        File.WriteAllBytes(Path.Combine(nft, "dump-interrupted.bin"), Concat(Msg((ushort)((Nft.SubsysNftables << 8) | Nft.NEWTABLE), Multi | 0x10, 9, [2, 0, 0, 8], Attr(Nft.NFTA_TABLE_NAME, Str("t"))), Done(9, 0)));
        File.WriteAllBytes(Path.Combine(nft, "error-extended-ack.bin"), Error(17, 9, 0, "Could not process rule: File exists", (ushort)((Nft.SubsysNftables << 8) | Nft.NEWRULE)));
        File.WriteAllBytes(Path.Combine(nft, "overrun.bin"), Header(16, Nl.NLMSG_OVERRUN, 0, 0, 0));
        File.WriteAllBytes(Path.Combine(nft, "message-length-past-end.bin"), Concat(Header(0xFFFF, (ushort)((Nft.SubsysNftables << 8) | Nft.NEWTABLE), 0, 1, 0), [2, 0, 0, 7]));
        File.WriteAllBytes(Path.Combine(nft, "attribute-length-past-end.bin"), Concat(Header(28, (ushort)((Nft.SubsysNftables << 8) | Nft.NEWCHAIN), 0, 1, 0), [2, 0, 0, 7], [0xFF, 0x7F, 3, 0], Str("abc")));
        File.WriteAllBytes(Path.Combine(nft, "setelem-without-key.bin"), Msg((ushort)((Nft.SubsysNftables << 8) | Nft.NEWSETELEM), 0, 1, [2, 0, 0, 7],
            Attr(Nft.NFTA_SET_ELEM_LIST_TABLE, Str("t")), Attr(Nft.NFTA_SET_ELEM_LIST_SET, Str("s")),
            Nest(Nft.NFTA_SET_ELEM_LIST_ELEMENTS | 0x8000, Nest(1 | 0x8000, Nest(Nft.NFTA_SET_ELEM_DATA | 0x8000, Nest(Nft.NFTA_DATA_VERDICT | 0x8000, Attr(Nft.NFTA_VERDICT_CODE, [0xFF, 0xFF, 0xFF, 0xFD])))))));
        File.WriteAllBytes(Path.Combine(nft, "short-handle.bin"), Msg((ushort)((Nft.SubsysNftables << 8) | Nft.NEWTABLE), 0, 1, [2, 0, 0, 7], Attr(Nft.NFTA_TABLE_NAME, Str("t")), Attr(Nft.NFTA_TABLE_HANDLE, [1, 2])));
        File.WriteAllBytes(Path.Combine(nft, "gen.bin"), Msg((ushort)((Nft.SubsysNftables << 8) | Nft.NEWGEN), 0, 0, [0, 0, 0, 9], Attr(Nft.NFTA_GEN_ID, [0, 0, 0, 9]), Attr(Nft.NFTA_GEN_PROC_PID, [0, 0, 1, 0]), Attr(Nft.NFTA_GEN_PROC_NAME, Str("nft"))));
    }
}
