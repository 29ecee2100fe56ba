namespace CnmSharp.Firewall.Iptables;

/// <summary>Which tool a rule belongs to.</summary>
internal enum IptablesFamily
{
    /// <summary>iptables.</summary>
    IPv4,

    /// <summary>ip6tables.</summary>
    IPv6,
}

/// <summary>Where a rule belongs in its chain, relative to the other rules the backend owns there.</summary>
internal enum RulePosition
{
    /// <summary>Before everything else (FORWARD's jumps to DOCKER-USER and the isolation chain).</summary>
    Head,

    /// <summary>After the head rules, in the order the records were given.</summary>
    Body,

    /// <summary>Last (the RETURN that ends DOCKER-USER and the isolation chains).</summary>
    Tail,
}

/// <summary>A chain of a table.</summary>
/// <param name="Table">The table (<c>nat</c>, <c>filter</c>).</param>
/// <param name="Name">The chain.</param>
internal readonly record struct ChainRef(string Table, string Name);

/// <summary>
/// One rule, in the exact text <c>iptables-save</c> prints after <c>-A CHAIN </c>, so rules read from the kernel compare
/// by string equality.
/// </summary>
/// <param name="Table">The table.</param>
/// <param name="Chain">The chain.</param>
/// <param name="Spec">The rule specification.</param>
/// <param name="Position">Its place among the owned rules of the chain (not part of its identity).</param>
internal readonly record struct IptablesRule(string Table, string Chain, string Spec, RulePosition Position = RulePosition.Body)
{
    /// <summary>The identity: table, chain and spec.</summary>
    public (string Table, string Chain, string Spec) Key => (Table, Chain, Spec);
}

/// <summary>A desired ruleset of one family: the chains the backend owns and its rules, in order.</summary>
internal sealed class IptablesRuleSet
{
    private readonly List<ChainRef> _chains = [];
    private readonly List<IptablesRule> _rules = [];
    private readonly HashSet<ChainRef> _chainSet = [];
    private readonly HashSet<(string, string, string)> _ruleKeys = [];

    /// <summary>The owned chains, in creation order.</summary>
    public IReadOnlyList<ChainRef> Chains => _chains;

    /// <summary>The rules, in order, without duplicates.</summary>
    public IReadOnlyList<IptablesRule> Rules => _rules;

    /// <summary>True when there is nothing.</summary>
    public bool IsEmpty => _chains.Count == 0 && _rules.Count == 0;

    /// <summary>Adds a chain unless present.</summary>
    /// <param name="chain">The chain.</param>
    public void AddChain(ChainRef chain)
    {
        if (_chainSet.Add(chain))
        {
            _chains.Add(chain);
        }
    }

    /// <summary>Adds a rule unless present.</summary>
    /// <param name="rule">The rule.</param>
    public void Add(IptablesRule rule)
    {
        if (_ruleKeys.Add(rule.Key))
        {
            _rules.Add(rule);
        }
    }

    /// <summary>Adds a rule to a table and chain.</summary>
    /// <param name="table">The table.</param>
    /// <param name="chain">The chain.</param>
    /// <param name="spec">The spec.</param>
    /// <param name="position">The position.</param>
    public void Add(string table, string chain, string spec, RulePosition position = RulePosition.Body) =>
        Add(new IptablesRule(table, chain, spec, position));

    /// <summary>True when the set holds the rule (by identity).</summary>
    /// <param name="rule">The rule.</param>
    /// <returns>True when present.</returns>
    public bool Contains(IptablesRule rule) => _ruleKeys.Contains(rule.Key);

    /// <summary>True when the set owns the chain.</summary>
    /// <param name="chain">The chain.</param>
    /// <returns>True when present.</returns>
    public bool Contains(ChainRef chain) => _chainSet.Contains(chain);
}
