using CnmSharp.Diagnostics;

namespace CnmSharp.Firewall.Iptables;

public sealed partial class IptablesFirewallBackend : IFirewallDiagnostics
{
    /// <summary>
    /// Compares, per family, the chains this backend owns (nat <c>DOCKER</c>, filter <c>DOCKER</c> and
    /// <c>DOCKER-ISOLATION-STAGE-1/2</c>: it creates, flushes and deletes them; iptables rules carry no owner comment
    /// in Docker's layout, so the chain is the proof) with the ruleset of the records the backend holds. A rule there
    /// that no record produces is a leak. <c>DOCKER-USER</c> belongs to the administrator and is never judged.
    /// </summary>
    /// <param name="repair">Delete the leaked rules (one <c>iptables-restore --noflush</c> per family).</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The findings.</returns>
    public async ValueTask<IReadOnlyList<InvariantFinding>> CheckAsync(bool repair, CancellationToken cancellationToken = default)
    {
        var findings = new List<InvariantFinding>();
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            foreach (var family in Families)
            {
                var state = await SaveAsync(family, cancellationToken).ConfigureAwait(false);
                var desired = _records.Build(family);
                var wanted = desired.Rules.Select(r => r.Key).ToHashSet();
                var leaks = new List<IptablesRule>();
                foreach (var chain in IptablesRuleBuilder.OwnedChains.Except(IptablesRuleBuilder.UserChains))
                {
                    foreach (var spec in state.FindRules(chain.Table, chain.Name) ?? [])
                    {
                        // The isolation chains' closing RETURN is a base rule: it stays when the last network goes.
                        if (!wanted.Contains((chain.Table, chain.Name, spec)) && !IptablesRuleBuilder.IsBaseRule(chain.Table, chain.Name, spec))
                        {
                            leaks.Add(new IptablesRule(chain.Table, chain.Name, spec));
                        }
                    }
                }

                if (leaks.Count == 0)
                {
                    continue;
                }

                string? failure = null;
                if (repair)
                {
                    var batch = new System.Text.StringBuilder();
                    foreach (var table in leaks.GroupBy(l => l.Table))
                    {
                        batch.Append('*').Append(table.Key).Append('\n');
                        foreach (var rule in table)
                        {
                            batch.Append("-D ").Append(rule.Chain).Append(' ').Append(rule.Spec).Append('\n');
                        }

                        batch.Append("COMMIT\n");
                    }

                    failure = await RestoreAsync(family, batch.ToString(), cancellationToken).ConfigureAwait(false);
                    _cached[(int)family] = null;
                }

                findings.AddRange(leaks.Select(l => new InvariantFinding
                {
                    Kind = InvariantKinds.LeakedFirewallRule,
                    Subject = $"{(family == IptablesFamily.IPv4 ? "iptables" : "ip6tables")} -t {l.Table} -A {l.Chain} {l.Spec}",
                    Detail = "in a chain only this backend owns; no network or port forward of the records produces it",
                    Repaired = repair && failure is null,
                    Repair = repair ? failure ?? "deleted" : null,
                }));
            }
        }
        finally
        {
            _gate.Release();
        }

        return findings;
    }
}
