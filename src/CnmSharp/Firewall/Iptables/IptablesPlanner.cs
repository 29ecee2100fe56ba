using System.Globalization;
using System.Text;

namespace CnmSharp.Firewall.Iptables;

/// <summary>
/// Writes the one <c>iptables-restore --noflush</c> batch that takes the kernel from its current state to a desired
/// ruleset: deletes the unwanted rules that exist, flushes and deletes unwanted chains, declares missing chains and adds
/// missing rules at the place their <see cref="RulePosition"/> and order give them. Never declares an existing chain
/// (with <c>--noflush</c> that would flush it) and never deletes a rule that does not exist (that would abort the batch).
/// </summary>
internal static class IptablesPlanner
{
    private static readonly string[] Tables = [IptablesRuleBuilder.Nat, IptablesRuleBuilder.Filter];

    /// <summary>Plans a batch.</summary>
    /// <param name="state">The current kernel state; updated to the state after the batch.</param>
    /// <param name="desired">What must exist.</param>
    /// <param name="undesiredRules">Rules to remove when present (never one of <paramref name="desired"/>).</param>
    /// <param name="undesiredChains">Owned chains to remove when present and unreferenced.</param>
    /// <returns>The restore input, or an empty string when nothing changes.</returns>
    public static string Plan(IptablesState state, IptablesRuleSet desired, IEnumerable<IptablesRule> undesiredRules, IEnumerable<ChainRef> undesiredChains)
    {
        ArgumentNullException.ThrowIfNull(state);
        ArgumentNullException.ThrowIfNull(desired);
        var removeRules = undesiredRules.Where(r => !desired.Contains(r)).ToList();
        var removeChains = undesiredChains.Where(c => !desired.Contains(c)).Distinct().ToList();
        KeepUserChains(state, removeRules, removeChains);
        var output = new StringBuilder();
        foreach (var table in Tables)
        {
            var declarations = new List<string>();
            var commands = new List<string>();

            foreach (var rule in removeRules.Where(r => r.Table == table))
            {
                var rules = state.FindRules(table, rule.Chain);
                while (rules is not null && rules.Remove(rule.Spec))
                {
                    commands.Add($"-D {rule.Chain} {rule.Spec}");
                }
            }

            var deletable = removeChains.Where(c => c.Table == table && state.HasChain(c)).ToList();
            foreach (var chain in deletable)
            {
                var rules = state.Rules(table, chain.Name);
                if (rules.Count > 0)
                {
                    commands.Add($"-F {chain.Name}");
                    rules.Clear();
                }
            }

            foreach (var chain in deletable)
            {
                if (!state.IsReferenced(chain))
                {
                    commands.Add($"-X {chain.Name}");
                    state.DeleteChain(chain);
                }
            }

            foreach (var chain in desired.Chains.Where(c => c.Table == table))
            {
                if (!state.HasChain(chain))
                {
                    declarations.Add($":{chain.Name} - [0:0]");
                    state.CreateChain(chain);
                }
            }

            AddMissing(state, desired, table, commands);

            if (declarations.Count + commands.Count == 0)
            {
                continue;
            }

            output.Append('*').Append(table).Append('\n');
            foreach (var line in declarations.Concat(commands))
            {
                output.Append(line).Append('\n');
            }

            output.Append("COMMIT\n");
        }

        return output.ToString();
    }

    /// <summary>A user chain (<see cref="IptablesRuleBuilder.UserChains"/>) holding a rule this change would not
    /// remove stays: not flushed, not deleted, and neither its jumps nor its own rules are removed.</summary>
    private static void KeepUserChains(IptablesState state, List<IptablesRule> removeRules, List<ChainRef> removeChains)
    {
        foreach (var chain in IptablesRuleBuilder.UserChains)
        {
            if (!removeChains.Contains(chain) || state.FindRules(chain.Table, chain.Name) is not { } rules)
            {
                continue;
            }

            var ours = removeRules.Where(r => r.Table == chain.Table && r.Chain == chain.Name).Select(r => r.Spec).ToHashSet(StringComparer.Ordinal);
            if (rules.All(ours.Contains))
            {
                continue;
            }

            removeChains.Remove(chain);
            removeRules.RemoveAll(r => r.Table == chain.Table && (r.Chain == chain.Name || r.Spec == "-j " + chain.Name));
        }
    }

    private static void AddMissing(IptablesState state, IptablesRuleSet desired, string table, List<string> commands)
    {
        // The owned rules of each chain in their wanted order: head, body, tail; records' order within each.
        var ordered = desired.Rules
            .Select((rule, index) => (rule, index))
            .Where(x => x.rule.Table == table)
            .OrderBy(x => x.rule.Position)
            .ThenBy(x => x.index)
            .GroupBy(x => x.rule.Chain, StringComparer.Ordinal);

        foreach (var chainRules in ordered)
        {
            var wanted = chainRules.Select(x => x.rule.Spec).ToList();
            var rank = new Dictionary<string, int>(StringComparer.Ordinal);
            for (var i = 0; i < wanted.Count; i++)
            {
                rank.TryAdd(wanted[i], i);
            }

            var current = state.Rules(table, chainRules.Key);
            for (var i = 0; i < wanted.Count; i++)
            {
                if (current.Contains(wanted[i]))
                {
                    continue;
                }

                // After the last owned rule that comes earlier; before the first rule after that which is foreign
                // or owned and later.
                var low = 0;
                for (var j = current.Count - 1; j >= 0; j--)
                {
                    if (rank.TryGetValue(current[j], out var r) && r < i)
                    {
                        low = j + 1;
                        break;
                    }
                }

                var at = -1;
                for (var j = low; j < current.Count; j++)
                {
                    if (!rank.TryGetValue(current[j], out var r) || r > i)
                    {
                        at = j;
                        break;
                    }
                }

                if (at < 0)
                {
                    commands.Add($"-A {chainRules.Key} {wanted[i]}");
                    current.Add(wanted[i]);
                }
                else
                {
                    commands.Add(string.Create(CultureInfo.InvariantCulture, $"-I {chainRules.Key} {at + 1} {wanted[i]}"));
                    current.Insert(at, wanted[i]);
                }
            }
        }
    }
}
