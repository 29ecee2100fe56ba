using CnmSharp.Diagnostics;
using CnmSharp.Netlink;
using CnmSharp.Netlink.Nftables;

namespace CnmSharp.Firewall.Nftables;

public sealed partial class NftablesFirewallBackend : IFirewallDiagnostics
{
    /// <summary>
    /// Compares each family's table (<see cref="NftablesFirewallBackendOptions.TableName"/>, which only this backend
    /// creates) with the model of the records the backend holds. Proven its own: a rule carrying an owner comment
    /// (<c>owner:id</c>) and a set element carrying an owner comment; one that no record produces is a leak. A rule
    /// without a comment (someone else's, in our table) is neither reported nor removed.
    /// </summary>
    /// <param name="repair">Delete the leaked rules and elements (by handle and key, in one batch per family).</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The findings.</returns>
    public async ValueTask<IReadOnlyList<InvariantFinding>> CheckAsync(bool repair, CancellationToken cancellationToken = default)
    {
        var findings = new List<InvariantFinding>();
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var client = Client();
            foreach (var family in Families)
            {
                var table = Table(family);
                var state = await NftablesState.ReadAsync(client, family, table, cancellationToken).ConfigureAwait(false);
                if (!state.TableExists)
                {
                    continue;
                }

                var desired = _records.Build(family);
                var leaks = new List<(InvariantFinding Finding, Action<NftablesBatch> Delete)>();
                foreach (var (chain, rules) in state.Rules)
                {
                    var wanted = desired.Chain(chain)?.RuleComments.ToHashSet(StringComparer.Ordinal) ?? [];
                    foreach (var rule in rules.Where(r => r.Comment is { } c && c.Contains(':', StringComparison.Ordinal) && !wanted.Contains(c)))
                    {
                        leaks.Add((new InvariantFinding
                        {
                            Kind = InvariantKinds.LeakedFirewallRule,
                            Subject = $"nftables rule {FamilyName(family)} {table} {chain} handle {rule.Handle}",
                            Detail = $"tagged \"{rule.Comment}\" by this backend; no network or port forward of the records produces it",
                        }, b => b.DeleteRule(family, table, chain, rule.Handle)));
                    }
                }

                foreach (var (set, elements) in state.Elements)
                {
                    var wanted = desired.Elements.GetValueOrDefault(set);
                    foreach (var (key, element) in elements.Where(e => e.Value.Comment is { Length: > 0 } && !(wanted?.ContainsKey(e.Key) ?? false)))
                    {
                        leaks.Add((new InvariantFinding
                        {
                            Kind = InvariantKinds.LeakedFirewallRule,
                            Subject = $"nftables element {FamilyName(family)} {table} {set} {key}",
                            Detail = $"tagged \"{element.Comment}\" by this backend; no network or port forward of the records produces it",
                        }, b => b.DeleteElements(family, table, set, [element])));
                    }
                }

                if (leaks.Count == 0)
                {
                    continue;
                }

                string? failure = null;
                if (repair)
                {
                    using var batch = new NftablesBatch();
                    foreach (var (_, delete) in leaks)
                    {
                        delete(batch);
                    }

                    try
                    {
                        await ExecuteAsync(batch, null, cancellationToken).ConfigureAwait(false);
                    }
                    catch (Exception ex) when (ex is NetlinkException or CnmException)
                    {
                        failure = ex.Message;
                    }
                }

                findings.AddRange(leaks.Select(l => l.Finding with
                {
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

    private static string FamilyName(NftFamily family) => family == NftFamily.IPv4 ? "ip" : "ip6";
}
