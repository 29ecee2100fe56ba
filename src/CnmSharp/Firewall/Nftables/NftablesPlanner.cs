using CnmSharp.Netlink.Nftables;

namespace CnmSharp.Firewall.Nftables;

/// <summary>What a family's table holds now: read with dumps.</summary>
internal sealed class NftablesState
{
    public bool TableExists { get; init; }

    public Dictionary<string, NftChain> Chains { get; } = new(StringComparer.Ordinal);

    /// <summary>Per chain, the rules in order.</summary>
    public Dictionary<string, List<NftRule>> Rules { get; } = new(StringComparer.Ordinal);

    public HashSet<string> Sets { get; } = new(StringComparer.Ordinal);

    /// <summary>Per set, the elements by key (hex).</summary>
    public Dictionary<string, Dictionary<string, NftSetElement>> Elements { get; } = new(StringComparer.Ordinal);

    public static async ValueTask<NftablesState> ReadAsync(NftablesClient client, NftFamily family, string table, CancellationToken cancellationToken)
    {
        var tables = await client.ListTablesAsync(family, cancellationToken).ConfigureAwait(false);
        if (!tables.Any(t => t.Name == table))
        {
            return new NftablesState { TableExists = false };
        }

        var state = new NftablesState { TableExists = true };
        foreach (var chain in await client.ListChainsAsync(family, table, cancellationToken).ConfigureAwait(false))
        {
            state.Chains[chain.Name] = chain;
            state.Rules[chain.Name] = [];
        }

        foreach (var rule in await client.ListRulesAsync(family, table, null, cancellationToken).ConfigureAwait(false))
        {
            if (state.Rules.TryGetValue(rule.Chain, out var list))
            {
                list.Add(rule);
            }
        }

        foreach (var set in await client.ListSetsAsync(family, table, cancellationToken).ConfigureAwait(false))
        {
            state.Sets.Add(set.Name);
            var elements = new Dictionary<string, NftSetElement>(StringComparer.Ordinal);
            foreach (var element in await client.ListElementsAsync(family, table, set.Name, cancellationToken).ConfigureAwait(false))
            {
                elements[element.KeyHex] = element;
            }

            state.Elements[set.Name] = elements;
        }

        return state;
    }
}

/// <summary>Turns models (and a dumped state) into batches. Pure: no kernel access.</summary>
internal static class NftablesPlanner
{
    private static bool SameRules(IEnumerable<string?> a, IEnumerable<string?> b) => a.SequenceEqual(b, StringComparer.Ordinal);

    /// <summary>The dumped rules are the chain's: same comments in order, and each holds the model's expressions (a rule
    /// replaced in place with its comment kept differs here).</summary>
    internal static bool SameContent(IReadOnlyList<NftRule> dumped, NftChainModel chain)
    {
        if (dumped.Count != chain.Rules.Count)
        {
            return false;
        }

        for (var i = 0; i < dumped.Count; i++)
        {
            var want = chain.Rules[i];
            if (!string.Equals(dumped[i].Comment, want.Comment, StringComparison.Ordinal) || !dumped[i].Matches(want.Expressions))
            {
                return false;
            }
        }

        return true;
    }

    private static bool SameElement(NftSetElement a, NftSetElement b) => a.SameAs(b) && a.Comment == b.Comment;

    private static void AddRules(NftablesBatch batch, NftFamily family, string table, NftChainModel chain)
    {
        foreach (var rule in chain.Rules)
        {
            batch.AddRule(family, table, chain.Name, rule.Expressions, rule.Comment);
        }
    }

    private static void AddSkeleton(NftablesBatch batch, NftFamily family, string table)
    {
        batch.AddTable(family, table);
        foreach (var set in NftablesRuleBuilder.Sets(family))
        {
            batch.AddSet(family, table, set);
        }
    }

    /// <summary>The element changes between two models of one endpoint's forwards (no chain, no rule): deletes, then adds.</summary>
    public static void PlanElements(NftablesBatch batch, NftFamily family, string table, NftModel old, NftModel @new)
    {
        var adds = new List<(string Set, NftSetElement Element)>();
        foreach (var set in old.Elements.Keys.Union(@new.Elements.Keys).Order(StringComparer.Ordinal))
        {
            var before = old.Elements.GetValueOrDefault(set) ?? [];
            var after = @new.Elements.GetValueOrDefault(set) ?? [];
            var delete = before.Where(e => !after.TryGetValue(e.Key, out var n) || !SameElement(n, e.Value)).Select(e => e.Value).ToList();
            if (delete.Count > 0)
            {
                batch.DeleteElements(family, table, set, delete);
            }

            adds.AddRange(after.Where(e => !before.TryGetValue(e.Key, out var o) || !SameElement(o, e.Value)).Select(e => (set, e.Value)));
        }

        foreach (var group in adds.GroupBy(a => a.Set))
        {
            batch.AddElements(family, table, group.Key, [.. group.Select(a => a.Element)]);
        }
    }

    /// <summary>
    /// The change from one model to the next, assuming the kernel holds <paramref name="old"/>: element deletes first
    /// (a verdict element holds its chain), then new and changed chains, element adds, chain deletes; the table goes
    /// with the last network.
    /// </summary>
    public static void PlanChange(NftablesBatch batch, NftFamily family, string table, NftModel old, NftModel @new)
    {
        if (@new.IsEmpty)
        {
            batch.DeleteTable(family, table);
            return;
        }

        if (old.IsEmpty)
        {
            AddSkeleton(batch, family, table);
        }

        var adds = new List<(string Set, NftSetElement Element)>();
        foreach (var set in old.Elements.Keys.Union(@new.Elements.Keys).Order(StringComparer.Ordinal))
        {
            var before = old.Elements.GetValueOrDefault(set) ?? [];
            var after = @new.Elements.GetValueOrDefault(set) ?? [];
            var delete = before.Where(e => !after.TryGetValue(e.Key, out var n) || !SameElement(n, e.Value)).Select(e => e.Value).ToList();
            if (delete.Count > 0)
            {
                batch.DeleteElements(family, table, set, delete);
            }

            adds.AddRange(after.Where(e => !before.TryGetValue(e.Key, out var o) || !SameElement(o, e.Value)).Select(e => (set, e.Value)));
        }

        // Chains before rules: a rule may jump to a chain that comes later.
        foreach (var chain in @new.Chains.Where(c => old.Chain(c.Name) is null))
        {
            batch.AddChain(family, table, chain.Name, chain.Base, chain.Owner);
        }

        foreach (var chain in @new.Chains)
        {
            var previous = old.Chain(chain.Name);
            if (previous is null)
            {
                AddRules(batch, family, table, chain);
            }
            else if (!SameRules(previous.RuleComments, chain.RuleComments))
            {
                batch.FlushChain(family, table, chain.Name);
                AddRules(batch, family, table, chain);
            }
        }

        foreach (var group in adds.GroupBy(a => a.Set))
        {
            batch.AddElements(family, table, group.Key, [.. group.Select(a => a.Element)]);
        }

        foreach (var chain in old.Chains.Where(c => @new.Chain(c.Name) is null))
        {
            batch.DeleteChain(family, table, chain.Name);
        }
    }

    /// <summary>
    /// Makes a dumped table hold the desired model. With an <paramref name="owner"/>, only that owner's chains and
    /// elements (by their comments) and the shared ones are created, repaired or removed; everything else is left as it
    /// is. A chain is repaired by flushing and refilling it when its rules differ from the model's, by comment or by
    /// content (a rule deleted, added, reordered or edited in place behind our back).
    /// </summary>
    public static void PlanSync(NftablesBatch batch, NftFamily family, string table, NftablesState state, NftModel desired, string? owner)
    {
        bool InScope(string? tag) => owner is null || tag == owner || tag == NftablesRuleBuilder.SharedOwner;

        if (desired.IsEmpty)
        {
            // Nothing wanted in this family. Without an owner (all of them), or when nothing of any owner is left, the
            // table goes; else only the owner's part.
            if (!state.TableExists)
            {
                return;
            }

            var othersLeft = state.Chains.Values.Any(c => c.Comment is { } tag && tag != NftablesRuleBuilder.SharedOwner && !InScope(tag));
            if (owner is null || !othersLeft)
            {
                batch.DeleteTable(family, table);
                return;
            }
        }

        if (!state.TableExists)
        {
            AddSkeleton(batch, family, table);
        }
        else
        {
            foreach (var set in NftablesRuleBuilder.Sets(family).Where(s => !state.Sets.Contains(s.Name)))
            {
                batch.AddSet(family, table, set);
            }
        }

        // Elements: remove the owner's that are not wanted (or differ), add the wanted ones that are missing.
        var adds = new List<(string Set, NftSetElement Element)>();
        foreach (var set in NftablesRuleBuilder.Sets(family).Select(s => s.Name))
        {
            var present = state.Elements.GetValueOrDefault(set) ?? [];
            var wanted = (desired.Elements.GetValueOrDefault(set) ?? []).Where(e => InScope(e.Value.Comment))
                .ToDictionary(e => e.Key, e => e.Value, StringComparer.Ordinal);
            var delete = present.Where(e => wanted.TryGetValue(e.Key, out var w) ? !SameElement(w, e.Value) : InScope(e.Value.Comment))
                .Select(e => e.Value).ToList();
            if (delete.Count > 0)
            {
                batch.DeleteElements(family, table, set, delete);
            }

            adds.AddRange(wanted.Where(w => !present.TryGetValue(w.Key, out var p) || !SameElement(w.Value, p)).Select(w => (set, w.Value)));
        }

        foreach (var chain in desired.Chains.Where(c => InScope(c.Owner) && !state.Chains.ContainsKey(c.Name)))
        {
            batch.AddChain(family, table, chain.Name, chain.Base, chain.Owner);
        }

        foreach (var chain in desired.Chains.Where(c => InScope(c.Owner)))
        {
            if (!state.Chains.ContainsKey(chain.Name))
            {
                AddRules(batch, family, table, chain);
            }
            else if (!SameContent(state.Rules[chain.Name], chain))
            {
                batch.FlushChain(family, table, chain.Name);
                AddRules(batch, family, table, chain);
            }
        }

        foreach (var group in adds.GroupBy(a => a.Set))
        {
            batch.AddElements(family, table, group.Key, [.. group.Select(a => a.Element)]);
        }

        foreach (var chain in state.Chains.Values.Where(c => desired.Chain(c.Name) is null && c.Comment is { } tag && InScope(tag)))
        {
            batch.DeleteChain(family, table, chain.Name);
        }
    }
}
