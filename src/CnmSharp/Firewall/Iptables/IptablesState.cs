namespace CnmSharp.Firewall.Iptables;

/// <summary>
/// The rules of the tables the backend touches, as <c>iptables-save</c> printed them: per table, every chain (built-in
/// or not) with its rules in order. Mutable, so a planner can simulate the batch it writes.
/// </summary>
internal sealed class IptablesState
{
    private readonly Dictionary<string, Dictionary<string, List<string>>> _tables = new(StringComparer.Ordinal);

    /// <summary>Parses <c>iptables-save</c> output.</summary>
    /// <param name="text">The output.</param>
    /// <returns>The state.</returns>
    /// <exception cref="FormatException">A line is not in the save format.</exception>
    public static IptablesState Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var state = new IptablesState();
        Dictionary<string, List<string>>? table = null;
        foreach (var raw in text.Split('\n'))
        {
            var line = raw.TrimEnd('\r');
            if (line.Length == 0 || line[0] == '#')
            {
                continue;
            }

            switch (line[0])
            {
                case '*':
                    table = state.Table(line[1..]);
                    break;
                case ':':
                    {
                        var space = line.IndexOf(' ', StringComparison.Ordinal);
                        var name = space < 0 ? line[1..] : line[1..space];
                        Require(table, line).TryAdd(name, []);
                        break;
                    }

                case '-' when line.StartsWith("-A ", StringComparison.Ordinal):
                    {
                        var rest = line[3..];
                        var space = rest.IndexOf(' ', StringComparison.Ordinal);
                        var chain = space < 0 ? rest : rest[..space];
                        var spec = space < 0 ? string.Empty : rest[(space + 1)..];
                        var chains = Require(table, line);
                        if (!chains.TryGetValue(chain, out var rules))
                        {
                            chains[chain] = rules = [];
                        }

                        rules.Add(spec);
                        break;
                    }

                default:
                    if (line == "COMMIT")
                    {
                        table = null;
                        break;
                    }

                    throw new FormatException($"unexpected iptables-save line: {line}");
            }
        }

        return state;
    }

    /// <summary>Formats the state as <c>iptables-save</c> does (without comments and counters).</summary>
    /// <returns>The text.</returns>
    public string ToSaveText()
    {
        var text = new System.Text.StringBuilder();
        foreach (var (name, chains) in _tables)
        {
            text.Append('*').Append(name).Append('\n');
            foreach (var chain in chains.Keys)
            {
                text.Append(':').Append(chain).Append(" - [0:0]\n");
            }

            foreach (var (chain, rules) in chains)
            {
                foreach (var spec in rules)
                {
                    text.Append("-A ").Append(chain).Append(' ').Append(spec).Append('\n');
                }
            }

            text.Append("COMMIT\n");
        }

        return text.ToString();
    }

    /// <summary>A deep copy.</summary>
    /// <returns>The copy.</returns>
    public IptablesState Clone()
    {
        var copy = new IptablesState();
        foreach (var (name, chains) in _tables)
        {
            var table = copy.Table(name);
            foreach (var (chain, rules) in chains)
            {
                table[chain] = [.. rules];
            }
        }

        return copy;
    }

    /// <summary>True when the chain exists.</summary>
    /// <param name="chain">The chain.</param>
    /// <returns>True when present.</returns>
    public bool HasChain(ChainRef chain) =>
        _tables.TryGetValue(chain.Table, out var t) && t.ContainsKey(chain.Name);

    /// <summary>The rules of a chain, when it exists.</summary>
    /// <param name="table">The table.</param>
    /// <param name="chain">The chain.</param>
    /// <returns>The live list, or null.</returns>
    public List<string>? FindRules(string table, string chain) =>
        _tables.TryGetValue(table, out var t) && t.TryGetValue(chain, out var rules) ? rules : null;

    /// <summary>The rules of a chain, creating it in the model when it does not exist.</summary>
    /// <param name="table">The table.</param>
    /// <param name="chain">The chain.</param>
    /// <returns>The specs, in order; the live list (mutating it changes the state).</returns>
    public List<string> Rules(string table, string chain)
    {
        var t = Table(table);
        if (!t.TryGetValue(chain, out var rules))
        {
            t[chain] = rules = [];
        }

        return rules;
    }

    /// <summary>True when the rule exists at least once.</summary>
    /// <param name="rule">The rule.</param>
    /// <returns>True when present.</returns>
    public bool Contains(IptablesRule rule) =>
        _tables.TryGetValue(rule.Table, out var t) && t.TryGetValue(rule.Chain, out var rules) && rules.Contains(rule.Spec);

    /// <summary>Records a new chain.</summary>
    /// <param name="chain">The chain.</param>
    public void CreateChain(ChainRef chain) => Table(chain.Table).TryAdd(chain.Name, []);

    /// <summary>Forgets a chain.</summary>
    /// <param name="chain">The chain.</param>
    public void DeleteChain(ChainRef chain) => Table(chain.Table).Remove(chain.Name);

    /// <summary>True when any rule of the table jumps (or goes) to the chain.</summary>
    /// <param name="chain">The chain.</param>
    /// <returns>True when referenced.</returns>
    public bool IsReferenced(ChainRef chain)
    {
        if (!_tables.TryGetValue(chain.Table, out var t))
        {
            return false;
        }

        var jump = "-j " + chain.Name;
        var go = "-g " + chain.Name;
        foreach (var (name, rules) in t)
        {
            if (name == chain.Name)
            {
                continue;
            }

            foreach (var spec in rules)
            {
                if (EndsWithTarget(spec, jump) || EndsWithTarget(spec, go))
                {
                    return true;
                }
            }
        }

        return false;
    }

    /// <summary>Counts the rules of every table (what <c>iptables-save | grep -c '^-A'</c> counts).</summary>
    /// <returns>The count.</returns>
    public int CountRules() => _tables.Values.Sum(t => t.Values.Sum(r => r.Count));

    private static bool EndsWithTarget(string spec, string target)
    {
        var index = spec.IndexOf(target, StringComparison.Ordinal);
        while (index >= 0)
        {
            var end = index + target.Length;
            if ((index == 0 || spec[index - 1] == ' ') && (end == spec.Length || spec[end] == ' '))
            {
                return true;
            }

            index = spec.IndexOf(target, end, StringComparison.Ordinal);
        }

        return false;
    }

    private Dictionary<string, List<string>> Table(string name)
    {
        if (!_tables.TryGetValue(name, out var table))
        {
            _tables[name] = table = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        }

        return table;
    }

    private static Dictionary<string, List<string>> Require(Dictionary<string, List<string>>? table, string line) =>
        table ?? throw new FormatException($"iptables-save line outside a table: {line}");
}
