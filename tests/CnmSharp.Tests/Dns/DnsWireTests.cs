using System.Net;
using CnmSharp.Dns;
using CsCheck;
using CnmSharp.Testing;
using static CnmSharp.Testing.DnsTestMessages;

namespace CnmSharp.Tests.Dns;

public class DnsWireTests
{
    private static readonly DnsRecordTable s_table = DnsRecordTable.Build(
    [
        new DnsHost("n1", "front", ["web", "Web-Alias"], [IPAddress.Parse("10.1.0.2"), IPAddress.Parse("fd00::2")]),
        new DnsHost("n1", "front", ["db"], [IPAddress.Parse("10.1.0.3")]),
        new DnsHost("n2", "back", ["secret"], [IPAddress.Parse("10.2.0.2")]),
    ]);

    [Test]
    public void A_query_parses_with_its_question_and_edns_size()
    {
        var message = Query("Web.Front", 1, ednsSize: 1232);
        Assert.That(DnsWire.ParseQuery(message, out var query), Is.EqualTo(DnsParseStatus.Ok));
        Assert.That(query.Id, Is.EqualTo(0x1234));
        Assert.That(query.Name, Is.EqualTo("web.front"));
        Assert.That(query.Type, Is.EqualTo(1));
        Assert.That(query.Class, Is.EqualTo(1));
        Assert.That(query.QuestionEnd, Is.EqualTo(12 + 11 + 4));
        Assert.That(query.HasEdns, Is.True);
        Assert.That(query.MaxUdpSize, Is.EqualTo(1232));
        Assert.That(query.RecursionDesired, Is.True);
    }

    [Test]
    public void Without_edns_the_udp_limit_is_512() =>
        Assert.That(DnsWire.ParseQuery(Query("x", 1), out var q) == DnsParseStatus.Ok && q.MaxUdpSize == 512 && !q.HasEdns);

    [Test]
    public void Responses_and_short_messages_are_dropped()
    {
        Assert.That(DnsWire.ParseQuery(new byte[11], out _), Is.EqualTo(DnsParseStatus.Drop));
        Assert.That(DnsWire.ParseQuery(Query("x", 1, flags: 0x8100), out _), Is.EqualTo(DnsParseStatus.Drop));
    }

    [Test]
    public void Malformed_questions_are_formerr()
    {
        var noQuestion = Query("x", 1);
        noQuestion[5] = 0;
        Assert.That(DnsWire.ParseQuery(noQuestion, out _), Is.EqualTo(DnsParseStatus.FormErr));
        var cut = Query("example", 1)[..^3];
        Assert.That(DnsWire.ParseQuery(cut, out _), Is.EqualTo(DnsParseStatus.FormErr));
        var pointer = Query("x", 1);
        pointer[12] = 0xC0;
        pointer[13] = 12;
        Assert.That(DnsWire.ParseQuery(pointer, out _), Is.EqualTo(DnsParseStatus.FormErr));
        var longName = Query(string.Join('.', Enumerable.Repeat(new string('a', 63), 4)), 1);
        Assert.That(DnsWire.ParseQuery(longName, out _), Is.EqualTo(DnsParseStatus.FormErr), "256 bytes is over the limit");
        var twoOpts = Query("x", 1, ednsSize: 1400).Concat(new byte[] { 0, 0, 41, 5, 0, 0, 0, 0, 0, 0, 0 }).ToArray();
        twoOpts[11] = 2;
        Assert.That(DnsWire.ParseQuery(twoOpts, out _), Is.EqualTo(DnsParseStatus.FormErr));
    }

    [Test]
    public void Other_opcodes_are_notimp()
    {
        var notify = Query("x", 1, flags: 0x2000);
        Assert.That(DnsWire.ParseQuery(notify, out _), Is.EqualTo(DnsParseStatus.NotImp));
    }

    [Test]
    public void Odd_bytes_in_a_label_are_escaped_so_they_never_match()
    {
        var message = Query("web", 1);
        message[14] = (byte)'.';
        Assert.That(DnsWire.ParseQuery(message, out var query), Is.EqualTo(DnsParseStatus.Ok));
        Assert.That(query.Name, Is.EqualTo("w\\046b"));
    }

    [Test]
    public void Local_a_and_aaaa_answers()
    {
        var reply = new byte[512];
        Assert.That(DnsAnswerer.Answer(Query("WEB", 1), reply, out var length, out _, s_table, ["n1"]), Is.EqualTo(DnsDecision.Reply));
        var bytes = reply[..length];
        Assert.That(Rcode(bytes), Is.Zero);
        Assert.That(bytes[0..2], Is.EqualTo(new byte[] { 0x12, 0x34 }));
        Assert.That(bytes[2] & 0x80, Is.Not.Zero, "QR");
        Assert.That(QuestionName(bytes), Is.EqualTo("WEB"), "question echoed with its case");
        Assert.That(Addresses(bytes), Is.EqualTo(new[] { IPAddress.Parse("10.1.0.2") }));
        DnsAnswerer.Answer(Query("web-alias.front", 28), reply, out length, out _, s_table, ["n1"]);
        Assert.That(Addresses(reply[..length]), Is.EqualTo(new[] { IPAddress.Parse("fd00::2") }));
    }

    [Test]
    public void A_local_name_without_the_family_is_an_empty_noerror()
    {
        var reply = new byte[512];
        DnsAnswerer.Answer(Query("db", 28), reply, out var length, out _, s_table, ["n1"]);
        Assert.That(Rcode(reply[..length]), Is.Zero);
        Assert.That(Count(reply[..length], 1), Is.Zero);
    }

    [Test]
    public void Names_of_other_networks_are_nxdomain_and_unknown_names_go_upstream()
    {
        var reply = new byte[512];
        Assert.That(DnsAnswerer.Answer(Query("secret", 1), reply, out var length, out _, s_table, ["n1"]), Is.EqualTo(DnsDecision.Reply));
        Assert.That(Rcode(reply[..length]), Is.EqualTo(3));
        Assert.That(DnsAnswerer.Answer(Query("secret.back", 1), reply, out length, out _, s_table, ["n1"]), Is.EqualTo(DnsDecision.Reply));
        Assert.That(Rcode(reply[..length]), Is.EqualTo(3));
        Assert.That(DnsAnswerer.Answer(Query("web.back", 1), reply, out _, out _, s_table, ["n1"]), Is.EqualTo(DnsDecision.Forward));
        Assert.That(DnsAnswerer.Answer(Query("example.com", 1), reply, out _, out var query, s_table, ["n1"]), Is.EqualTo(DnsDecision.Forward));
        Assert.That(query.Name, Is.EqualTo("example.com"));
    }

    [Test]
    public void Ptr_for_visible_addresses_only()
    {
        var reply = new byte[512];
        DnsAnswerer.Answer(Query("2.0.1.10.in-addr.arpa", 12), reply, out var length, out _, s_table, ["n1"]);
        Assert.That(Rcode(reply[..length]), Is.Zero);
        Assert.That(Count(reply[..length], 1), Is.EqualTo(1));
        var target = System.Text.Encoding.ASCII.GetString(reply, length - 11, 11);
        Assert.That(target, Does.EndWith("\u0005front\0"));
        DnsAnswerer.Answer(Query("2.0.2.10.in-addr.arpa", 12), reply, out length, out _, s_table, ["n1"]);
        Assert.That(Rcode(reply[..length]), Is.EqualTo(3));
        Assert.That(DnsAnswerer.Answer(Query("9.9.9.10.in-addr.arpa", 12), reply, out _, out _, s_table, ["n1"]), Is.EqualTo(DnsDecision.Forward));
        DnsAnswerer.Answer(Query(DnsWire.ReverseName(IPAddress.Parse("fd00::2")), 12), reply, out length, out _, s_table, ["n1"]);
        Assert.That(Count(reply[..length], 1), Is.EqualTo(1));
    }

    [Test]
    public void Reverse_names_round_trip()
    {
        Gen.Byte.Array[4].Sample(b => DnsWire.TryParseReverseName(DnsWire.ReverseName(new IPAddress(b)), out var a) && a.Equals(new IPAddress(b)), iter: 500);
        Gen.Byte.Array[16].Sample(b => DnsWire.TryParseReverseName(DnsWire.ReverseName(new IPAddress(b)), out var a) && a.Equals(new IPAddress(b)), iter: 500);
        Assert.That(DnsWire.TryParseReverseName("01.0.0.10.in-addr.arpa", out _), Is.False);
        Assert.That(DnsWire.TryParseReverseName("0.0.10.in-addr.arpa", out _), Is.False);
    }

    [Test]
    public void Formerr_reply_has_the_id_and_no_question()
    {
        var bad = Query("x", 1);
        bad[5] = 2;
        var reply = new byte[512];
        Assert.That(DnsAnswerer.Answer(bad, reply, out var length, out _, s_table, ["n1"]), Is.EqualTo(DnsDecision.Reply));
        Assert.That(length, Is.EqualTo(12));
        Assert.That(Rcode(reply[..12]), Is.EqualTo(1));
        Assert.That(Count(reply[..12], 0), Is.Zero);
    }

    [Test]
    public void Long_replies_are_cut_to_the_question_with_tc()
    {
        var query = Query("big.example", 1);
        var reply = ReplyWithAnswers(query, 40);
        Assert.That(reply, Has.Length.GreaterThan(512));
        var length = DnsWire.Truncate(reply, 512);
        var cut = reply[..length];
        Assert.That(Truncated(cut), Is.True);
        Assert.That(length, Is.EqualTo(query.Length));
        Assert.That(Count(cut, 0), Is.EqualTo(1));
        Assert.That(Count(cut, 1), Is.Zero);
        Assert.That(DnsWire.SameQuestion(cut, query, query.Length), Is.True);
        var small = ReplyWithAnswers(query, 2);
        Assert.That(DnsWire.Truncate(small, 512), Is.EqualTo(small.Length));
    }

    [Test]
    public void Names_encode_and_refuse_bad_labels()
    {
        var buffer = new byte[300];
        Assert.That(DnsWire.TryWriteName(buffer, "web.front", out var n) && n == 11);
        Assert.That(DnsWire.TryWriteName(buffer, "", out n) && n == 1);
        Assert.That(DnsWire.TryWriteName(buffer, "a..b", out _), Is.False);
        Assert.That(DnsWire.TryWriteName(buffer, new string('a', 64), out _), Is.False);
    }

    internal static void Feed(byte[] bytes)
    {
        var reply = new byte[DnsWire.MaxUdpSize];
        _ = DnsAnswerer.Answer(bytes, reply, out var length, out _, s_table, ["n1"]);
        Assert.That(length, Is.InRange(0, reply.Length));
        var copy = (byte[])bytes.Clone();
        _ = DnsWire.Truncate(copy, 512);
        _ = DnsWire.TryReadReplyId(bytes, out _);

        // The upstream reply checks the resolver makes before relaying (SandboxResolver: id, question, TC).
        var query = Query("web", 1);
        if (DnsWire.TryReadReplyId(bytes, out _) && DnsWire.SameQuestion(bytes, query, query.Length))
        {
            _ = DnsWire.IsTruncated(bytes);
        }
    }

    /// <summary>Compression loops, lying counts, lengths past the end (Corpus/dns): answered, dropped or FORMERR,
    /// never a throw or a hang.</summary>
    [TestCaseSource(nameof(CorpusCases))]
    public void Corpus_messages_never_throw(string file) => Feed(Fuzz.CorpusBytes("dns", file));

    private static IEnumerable<TestCaseData> CorpusCases() => Fuzz.Corpus("dns");

    [Test]
    public void Fuzz_mutated_corpus_never_throws() => Fuzz.Run(Fuzz.Mutations(Fuzz.CorpusAll("dns")), Feed, iterations: 5_000, seed: 701);

    private static readonly byte[][] s_corpus =
    [
        Query("web", 1), Query("web.front", 28, ednsSize: 4096), Query("2.0.1.10.in-addr.arpa", 12), Query("example.com", 15),
        ReplyWithAnswers(Query("big", 1), 3),
    ];

    [Test]
    public void Fuzz_random_bytes_never_throw() => Gen.Byte.Array[0, 600].Sample(Feed, iter: 20_000);

    [Test]
    public void Fuzz_mutated_queries_never_throw() =>
        Gen.Select(Gen.Int[0, s_corpus.Length - 1], Gen.Select(Gen.Int[0, 200], Gen.Byte).Array[1, 6], Gen.Int[0, 100])
            .Select(t =>
            {
                var copy = (byte[])s_corpus[t.Item1].Clone();
                foreach (var (at, value) in t.Item2)
                {
                    copy[at % copy.Length] = value;
                }

                return copy[..Math.Max(0, copy.Length - (t.Item3 % 5))];
            })
            .Sample(Feed, iter: 20_000);
}
