using System.CommandLine;
using System.Globalization;
using CnmSharp.Cli.Formatting;

namespace CnmSharp.Cli;

/// <summary>
/// <c>cnm check [--repair]</c>: runs <see cref="NetworkController.CheckAsync"/> on the state. Exit codes: 0 when clean
/// (one line, <c>clean</c>), or with <c>--repair</c> when every finding was repaired; <see cref="FindingsExitCode"/> (3)
/// when a finding remains; 1 and 2 as every command (an error, a usage error).
/// </summary>
internal static class CheckCommand
{
    /// <summary>Findings remain (not repaired, or not asked to be).</summary>
    public const int FindingsExitCode = 3;

    public static Command Build()
    {
        var repair = new Option<bool>("--repair") { Description = "Repair what can be repaired (leaked links, rules, namespaces, duplicated records, orphan allocations, intents of dead owners) and say what was done" };
        var discard = NetworkCommands.Multi("--discard-quarantined", "Discard a quarantined record for good (by its original store key, as a quarantined-record finding names it) before checking; never done by --repair", "KEY");
        var format = FormatOptions.List();
        var cmd = new Command("check", "Check that the kernel objects and the store agree (no leak, no address allocated twice); exit 3 when something is found") { repair, discard, format };
        cmd.SetAction((parse, ct) => CliApp.RunAsync(parse, async context =>
        {
            var listFormat = ListFormat.Parse(parse.GetValue(format));
            var repairing = parse.GetValue(repair);
            await using var controller = await context.OpenControllerAsync(ct).ConfigureAwait(false);
            foreach (var key in parse.GetValue(discard) ?? [])
            {
                // An explicit request, key by key: the record's bytes are the only copy of what it said.
                if (!await controller.DiscardQuarantinedRecordAsync(key, ct).ConfigureAwait(false))
                {
                    throw new CliException($"no quarantined record under {key}");
                }

                if (listFormat is null)
                {
                    Console.WriteLine(CliText.Escape($"discarded quarantined record {key}"));
                }
            }

            var report = await controller.CheckAsync(new CheckOptions { Repair = repairing }, ct).ConfigureAwait(false);
            if (listFormat is not null)
            {
                Console.Write(listFormat.Render(Rows(report)));
            }
            else if (report.IsClean)
            {
                Console.WriteLine("clean");
            }
            else
            {
                foreach (var finding in report.Findings)
                {
                    Console.WriteLine(CliText.Escape(finding.ToString()));
                }

                var repaired = report.Findings.Count(f => f.Repaired);
                Console.WriteLine(repairing
                    ? string.Create(CultureInfo.InvariantCulture, $"{report.Findings.Count} finding(s), {repaired} repaired")
                    : string.Create(CultureInfo.InvariantCulture, $"{report.Findings.Count} finding(s); 'cnm check --repair' repairs what can be repaired"));
            }

            return report.IsClean || (repairing && report.AllRepaired) ? 0 : FindingsExitCode;
        }));
        return cmd;
    }

    private static ListRows Rows(CheckReport report) => ListRows.Of(
        new Dictionary<string, string>(StringComparer.Ordinal) { ["Kind"] = "KIND", ["Subject"] = "SUBJECT", ["Detail"] = "DETAIL", ["Repaired"] = "REPAIRED", ["Repair"] = "REPAIR" },
        report.Findings.Select(f => (IReadOnlyDictionary<string, string>)new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["Kind"] = f.Kind,
            ["Subject"] = f.Subject,
            ["Detail"] = f.Detail,
            ["Repaired"] = f.Repaired ? "true" : "false",
            ["Repair"] = f.Repair ?? string.Empty,
        }));
}
