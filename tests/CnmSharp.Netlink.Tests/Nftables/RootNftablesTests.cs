using System.Diagnostics;
using System.Net;
using CnmSharp.Netlink.Nftables;
using CnmSharp.Netlink.Tests.Support;
using CnmSharp.Testing;

namespace CnmSharp.Netlink.Tests.Nftables;

/// <summary>The nf_tables client against the kernel, each test in its own namespace; <c>nft</c> is the oracle.</summary>
[RequiresRoot]
[Parallelizable(ParallelScope.All)]
public class RootNftablesTests
{
    private static string Nft(TestNamespace ns, string args, string? stdin = null)
    {
        var info = new ProcessStartInfo("ip", $"netns exec {ns.Name} nft {args}")
        {
            RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = stdin is not null, UseShellExecute = false,
        };
        using var process = Process.Start(info)!;
        if (stdin is not null)
        {
            process.StandardInput.Write(stdin);
            process.StandardInput.Close();
        }

        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"nft {args}: {stderr}");
        }

        return stdout.Result;
    }

    [Test]
    public async Task Golden_ruleset_lists_exactly_as_when_nft_loads_it()
    {
        using var ours = TestNamespace.Create();
        using var theirs = TestNamespace.Create();
        await using (var client = NftablesClient.Open(ours.Handle))
        {
            using var batch = GoldenRuleset.Build(new NftablesBatch());
            await client.ExecuteAsync(batch);
        }

        Nft(theirs, "-f -", File.ReadAllText(Path.Combine(TestContext.CurrentContext.TestDirectory, "Nftables", "golden.nft")));
        var listed = Nft(ours, "list ruleset");
        Assert.That(listed, Does.Contain("dnat ip to tcp dport map @dnat-tcp"));
        Assert.That(listed, Is.EqualTo(Nft(theirs, "list ruleset")));
    }

    [Test]
    public async Task Dumps_return_what_the_batch_created()
    {
        using var ns = TestNamespace.Create();
        await using var client = NftablesClient.Open(ns.Handle);
        using (var batch = GoldenRuleset.Build(new NftablesBatch()))
        {
            await client.ExecuteAsync(batch);
        }

        var tables = await client.ListTablesAsync();
        var chains = await client.ListChainsAsync(NftFamily.IPv4, GoldenRuleset.Table);
        var rules = await client.ListRulesAsync(NftFamily.IPv4, GoldenRuleset.Table);
        var chainRules = await client.ListRulesAsync(NftFamily.IPv4, GoldenRuleset.Table, "fwd-in-br-cnm0");
        var sets = await client.ListSetsAsync(NftFamily.IPv4, GoldenRuleset.Table);
        var dnat = await client.ListElementsAsync(NftFamily.IPv4, GoldenRuleset.Table, "dnat-tcp");
        var fwdIn = await client.ListElementsAsync(NftFamily.IPv4, GoldenRuleset.Table, "fwd-in");
        Assert.Multiple(() =>
        {
            Assert.That(tables.Select(t => (t.Family, t.Name)), Is.EqualTo(new[] { (NftFamily.IPv4, "cnmsharp") }));
            Assert.That(chains.Select(c => c.Name), Is.EquivalentTo(new[] { "forward", "fwd-in-br-cnm0", "prerouting", "output", "publish", "postrouting" }));
            Assert.That(chains.Single(c => c.Name == "output").Base, Is.EqualTo(new NftBaseChain("nat", NftHook.Output, -100)));
            Assert.That(chains.Single(c => c.Name == "publish").Base, Is.Null);
            Assert.That(rules, Has.Count.EqualTo(9));
            Assert.That(chainRules.Select(r => r.ExpressionNames.Count), Is.EqualTo(new[] { 4, 3, 5, 1 }));
            Assert.That(chainRules.All(r => r.Handle > 0), Is.True);
            Assert.That(rules.Single(r => r.Chain == "postrouting").ExpressionNames, Is.EqualTo(new[] { "meta", "cmp", "payload", "cmp", "masq" }));
            // The kernel reports a verdict map's data length as sizeof(struct nft_verdict), 16, though 0 was sent.
            Assert.That(sets.Select(s => (s.Name, s.Flags, s.KeyLength, s.DataLength)),
                Is.EquivalentTo(new[] { ("fwd-in", NftSetOptions.Map, 16u, 16u), ("published", NftSetOptions.None, 12u, 0u), ("dnat-tcp", NftSetOptions.Map, 2u, 8u) }));
            Assert.That(dnat.Single().Key, Is.EqualTo(NftValues.Be16(8080)));
            Assert.That(dnat.Single().Data, Is.EqualTo(NftValues.Concat(NftValues.Address(IPAddress.Parse("172.18.0.2")), NftValues.Be16(80))));
            Assert.That(fwdIn.Single().Verdict, Is.EqualTo(NftVerdict.JumpTo("fwd-in-br-cnm0")));
        });
    }

    [Test]
    public async Task A_refused_batch_names_each_failing_message_and_applies_nothing()
    {
        using var ns = TestNamespace.Create();
        await using var client = NftablesClient.Open(ns.Handle);
        using var batch = new NftablesBatch()
            .AddTable(NftFamily.IPv4, "t1")
            .AddChain(NftFamily.IPv4, "t1", "c1")
            .AddRule(NftFamily.IPv4, "t1", "missing", [new NftCounter()])
            .AddRule(NftFamily.IPv4, "t1", "c1", [new NftLookup("no-such-set")])
            .AddRule(NftFamily.IPv4, "t1", "c1", [new NftCounter()], "fine");
        var e = (await Assert.ThrowsAsync<NftablesBatchException>(async () => await client.ExecuteAsync(batch)))!;
        Assert.Multiple(() =>
        {
            Assert.That(e.Errors.Select(x => (x.Index, x.ErrorName)), Is.EqualTo(new[] { (2, "ENOENT"), (3, "ENOENT") }));
            Assert.That(e.Errors[0].Description, Is.EqualTo("add rule ip t1 missing"));
            Assert.That(e.Message, Does.Contain("message 2 (add rule ip t1 missing): ENOENT"));
            Assert.That(e.ErrorName, Is.EqualTo("ENOENT"));
            Assert.That(Nft(ns, "list ruleset").Trim(), Is.Empty, "nothing of an aborted batch is committed");
        });

        // The client is in step afterwards.
        using var good = new NftablesBatch().AddTable(NftFamily.IPv4, "t1");
        await client.ExecuteAsync(good);
        Assert.That((await client.ListTablesAsync()).Select(t => t.Name), Is.EqualTo(new[] { "t1" }));
    }

    [Test]
    public async Task A_stale_generation_refuses_the_whole_batch()
    {
        using var ns = TestNamespace.Create();
        await using var client = NftablesClient.Open(ns.Handle);
        var generation = await client.GetGenerationAsync();
        Nft(ns, "add table ip someone-else");
        Assert.That(await client.GetGenerationAsync(), Is.Not.EqualTo(generation));
        using var batch = new NftablesBatch().AddTable(NftFamily.IPv4, "mine");
        var e = (await Assert.ThrowsAsync<NftablesBatchException>(async () => await client.ExecuteAsync(batch, generation)))!;
        Assert.That(e.Errors.Single().Index, Is.EqualTo(-1));
        Assert.That(e.Errors.Single().ErrorName, Is.EqualTo("ERESTART"));
        Assert.That((await client.ListTablesAsync()).Select(t => t.Name), Is.EqualTo(new[] { "someone-else" }));
        await client.ExecuteAsync(batch, await client.GetGenerationAsync());
        Assert.That((await client.ListTablesAsync()).Select(t => t.Name), Is.EquivalentTo(new[] { "someone-else", "mine" }));
    }

    [Test]
    public async Task Rules_are_deleted_by_handle_and_elements_replaced_in_one_batch()
    {
        using var ns = TestNamespace.Create();
        await using var client = NftablesClient.Open(ns.Handle);
        using (var batch = GoldenRuleset.Build(new NftablesBatch()))
        {
            await client.ExecuteAsync(batch);
        }

        var drop = (await client.ListRulesAsync(NftFamily.IPv4, "cnmsharp", "fwd-in-br-cnm0"))[^1];
        var old = new NftSetElement(NftValues.Be16(8080), NftValues.Concat(NftValues.Address(IPAddress.Parse("172.18.0.2")), NftValues.Be16(80)));
        var @new = old with { Data = NftValues.Concat(NftValues.Address(IPAddress.Parse("172.18.0.3")), NftValues.Be16(80)) };
        using (var change = new NftablesBatch()
            .DeleteRule(NftFamily.IPv4, "cnmsharp", "fwd-in-br-cnm0", drop.Handle)
            .DeleteElements(NftFamily.IPv4, "cnmsharp", "dnat-tcp", [old])
            .AddElements(NftFamily.IPv4, "cnmsharp", "dnat-tcp", [@new]))
        {
            await client.ExecuteAsync(change);
        }

        Assert.That((await client.ListRulesAsync(NftFamily.IPv4, "cnmsharp", "fwd-in-br-cnm0")).Select(r => r.Handle), Does.Not.Contain(drop.Handle));
        Assert.That((await client.ListElementsAsync(NftFamily.IPv4, "cnmsharp", "dnat-tcp")).Single().SameAs(@new), Is.True);
        Assert.That(Nft(ns, "list map ip cnmsharp dnat-tcp"), Does.Contain("8080 : 172.18.0.3 . 80"));

        using var destroy = new NftablesBatch().DestroyTable(NftFamily.IPv4, "cnmsharp").DestroyTable(NftFamily.IPv6, "cnmsharp");
        await client.ExecuteAsync(destroy);
        Assert.That(await client.ListTablesAsync(), Is.Empty);
    }

    [Test]
    public async Task Monitor_sees_our_batch_and_a_rule_deleted_by_nft_with_each_committing_process()
    {
        using var ns = TestNamespace.Create();
        await using var client = NftablesClient.Open(ns.Handle);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var events = client.MonitorAsync(cts.Token).GetAsyncEnumerator(cts.Token);
        using (var batch = GoldenRuleset.Build(new NftablesBatch()))
        {
            await client.ExecuteAsync(batch);
        }

        var drop = (await client.ListRulesAsync(NftFamily.IPv4, "cnmsharp", "fwd-in-br-cnm0"))[^1];
        Nft(ns, $"delete rule ip cnmsharp fwd-in-br-cnm0 handle {drop.Handle}");

        var seen = new List<NftEvent>();
        while (seen.Count(e => e.Kind == NftEventKind.Generation) < 2 && await events.MoveNextAsync())
        {
            seen.Add(events.Current);
        }

        await events.DisposeAsync();
        var generations = seen.Where(e => e.Kind == NftEventKind.Generation).ToList();
        var ours = seen.TakeWhile(e => e.Kind != NftEventKind.Generation).ToList();
        var theirs = seen.SkipWhile(e => e.Kind != NftEventKind.Generation).Skip(1).TakeWhile(e => e.Kind != NftEventKind.Generation).ToList();
        Assert.Multiple(() =>
        {
            Assert.That(ours.Select(e => e.Kind), Does.Contain(NftEventKind.NewTable).And.Contain(NftEventKind.NewChain).And.Contain(NftEventKind.NewRule)
                .And.Contain(NftEventKind.NewSet).And.Contain(NftEventKind.NewElement));
            Assert.That(ours.Where(e => e.Kind == NftEventKind.NewChain).Select(e => e.Chain), Does.Contain("fwd-in-br-cnm0"));
            Assert.That(ours.Where(e => e.Kind == NftEventKind.NewElement).Select(e => e.Set), Does.Contain("dnat-tcp"));
            Assert.That(theirs, Has.Count.EqualTo(1));
            Assert.That(theirs[0].Kind, Is.EqualTo(NftEventKind.DeleteRule));
            Assert.That((theirs[0].Family, theirs[0].Table, theirs[0].Chain, theirs[0].Handle), Is.EqualTo((NftFamily.IPv4, "cnmsharp", "fwd-in-br-cnm0", drop.Handle)));
            Assert.That(theirs[0].Rule!.ExpressionNames, Is.EqualTo(new[] { "immediate" }));
            Assert.That(generations[1].Generation, Is.GreaterThan(generations[0].Generation));
            Assert.That(generations[1].ProcessName, Is.EqualTo("nft"));
            Assert.That(Directory.Exists($"/proc/self/task/{generations[0].ProcessId}"), Is.True, "our batch was committed by one of our threads");
        });
    }

    [Test]
    public async Task A_dumped_rule_matches_its_expressions_and_not_an_edited_version()
    {
        using var ns = TestNamespace.Create();
        await using var client = NftablesClient.Open(ns.Handle);
        using (var batch = GoldenRuleset.Build(new NftablesBatch()))
        {
            await client.ExecuteAsync(batch);
        }

        var rules = await client.ListRulesAsync(NftFamily.IPv4, "cnmsharp", "fwd-in-br-cnm0");
        NftExpression[] established =
        [
            new NftCt(NftCtKey.State), new NftBitwise(NftValues.HostU32(6), NftValues.HostU32(0)),
            new NftCmp(NftCmpOp.Neq, NftValues.HostU32(0)), new NftImmediateVerdict(NftVerdict.Accept),
        ];
        NftExpression[] published =
        [
            new NftPayload(NftPayloadBase.Network, 16, 4), new NftMeta(NftMetaKey.L4Proto, NftRegisters.Reg32(1)),
            new NftPayload(NftPayloadBase.Transport, 2, 2, NftRegisters.Reg32(2)), new NftLookup("published"),
            new NftImmediateVerdict(NftVerdict.Accept),
        ];
        var forward = (await client.ListRulesAsync(NftFamily.IPv4, "cnmsharp", "forward")).Single();
        var publish = (await client.ListRulesAsync(NftFamily.IPv4, "cnmsharp", "publish")).Single();
        var bridge = NftValues.InterfaceName("br-cnm0");
        Assert.Multiple(() =>
        {
            Assert.That(rules[0].Matches(established), Is.True);
            Assert.That(rules[2].Matches(published), Is.True);
            Assert.That(rules[3].Matches([new NftImmediateVerdict(NftVerdict.Drop)]), Is.True);
            Assert.That(forward.Matches([new NftMeta(NftMetaKey.OutputInterfaceName), new NftLookup("fwd-in", Destination: NftRegisters.Verdict)]), Is.True);
            Assert.That(publish.Matches(
            [
                new NftMeta(NftMetaKey.InputInterfaceName), new NftCmp(NftCmpOp.Neq, bridge),
                new NftMeta(NftMetaKey.L4Proto), new NftCmp(NftCmpOp.Eq, [6]),
                new NftPayload(NftPayloadBase.Transport, 2, 2), new NftLookup("dnat-tcp", Destination: NftRegisters.Reg1),
                new NftNat(NftNatType.Dnat, NftFamily.IPv4, NftRegisters.Reg1, NftRegisters.Reg32(1)),
            ]), Is.True);

            Assert.That(rules[3].Matches([new NftImmediateVerdict(NftVerdict.Accept)]), Is.False, "another verdict");
            Assert.That(rules[0].Matches(established[..3]), Is.False, "fewer expressions");
            Assert.That(rules[0].Matches([.. established, new NftCounter()]), Is.False, "more expressions");
            Assert.That(rules[2].Matches([.. published[..3], new NftLookup("fwd-in"), published[4]]), Is.False, "another set");
            Assert.That(rules[1].Matches([new NftMeta(NftMetaKey.InputInterfaceName), new NftCmp(NftCmpOp.Eq, NftValues.InterfaceName("br-cnm1")), new NftImmediateVerdict(NftVerdict.Accept)]),
                Is.False, "another value");
        });
    }
}
