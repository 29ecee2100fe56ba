using CnmSharp.Firewall.Iptables;
using CnmSharp.Firewall.Internal;

namespace CnmSharp.Tests.Firewall;

/// <summary>
/// A stand-in for iptables-save / iptables-restore --noflush: keeps tables in memory, commits per table like the real
/// tool (so a failing second table leaves the first applied), fails a -D of a missing rule and a -I past the end.
/// </summary>
internal sealed class FakeIptables : ICommandRunner
{
    private readonly Dictionary<string, IptablesState> _families = new()
    {
        ["iptables"] = IptablesState.Parse(EmptyTables),
        ["ip6tables"] = IptablesState.Parse(EmptyTables),
    };

    public const string EmptyTables = """
        *filter
        :INPUT ACCEPT [0:0]
        :FORWARD ACCEPT [0:0]
        :OUTPUT ACCEPT [0:0]
        COMMIT
        *nat
        :PREROUTING ACCEPT [0:0]
        :INPUT ACCEPT [0:0]
        :OUTPUT ACCEPT [0:0]
        :POSTROUTING ACCEPT [0:0]
        COMMIT
        """;

    public List<(string Tool, string? Input)> Calls { get; } = [];

    /// <summary>A restore whose input contains this text fails at that line.</summary>
    public string? FailOn { get; set; }

    public IptablesState State(string family = "iptables") => _families[family];

    public ValueTask<CommandResult> RunAsync(string fileName, IReadOnlyList<string> arguments, string? standardInput, CancellationToken cancellationToken)
    {
        var tool = fileName == "nsenter" ? arguments[1] : fileName;
        Calls.Add((tool, standardInput));
        var family = tool.StartsWith("ip6tables", StringComparison.Ordinal) ? "ip6tables" : "iptables";
        if (tool.EndsWith("-save", StringComparison.Ordinal))
        {
            return ValueTask.FromResult(new CommandResult(0, _families[family].ToSaveText(), string.Empty));
        }

        return ValueTask.FromResult(Restore(family, standardInput ?? string.Empty));
    }

    private CommandResult Restore(string family, string input)
    {
        var committed = _families[family];
        IptablesState? work = null;
        string? table = null;
        var lineNo = 0;
        foreach (var line in input.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            lineNo++;
            if (FailOn is not null && line.Contains(FailOn, StringComparison.Ordinal))
            {
                return new CommandResult(1, string.Empty, $"{family}-restore: line {lineNo} failed");
            }

            if (line[0] == '*')
            {
                table = line[1..];
                work = committed.Clone();
                continue;
            }

            if (line == "COMMIT")
            {
                committed = work!;
                _families[family] = committed;
                continue;
            }

            var error = Apply(work!, table!, line);
            if (error is not null)
            {
                return new CommandResult(1, string.Empty, $"{family}-restore: line {lineNo} failed: {error}");
            }
        }

        return new CommandResult(0, string.Empty, string.Empty);
    }

    private static string? Apply(IptablesState state, string table, string line)
    {
        if (line[0] == ':')
        {
            var name = line[1..line.IndexOf(' ', StringComparison.Ordinal)];
            var chain = new ChainRef(table, name);
            if (state.HasChain(chain))
            {
                state.Rules(table, name).Clear(); // --noflush still flushes a declared chain
            }

            state.CreateChain(chain);
            return null;
        }

        var parts = line.Split(' ', 3);
        var command = parts[0];
        var chainName = parts[1];
        var exists = state.HasChain(new ChainRef(table, chainName));
        switch (command)
        {
            case "-A":
                if (!exists)
                {
                    return "no chain";
                }

                state.Rules(table, chainName).Add(parts[2]);
                return null;
            case "-I":
                {
                    if (!exists)
                    {
                        return "no chain";
                    }

                    var rest = parts[2].Split(' ', 2);
                    var position = int.Parse(rest[0], System.Globalization.CultureInfo.InvariantCulture);
                    var rules = state.Rules(table, chainName);
                    if (position < 1 || position > rules.Count + 1)
                    {
                        return "index too big";
                    }

                    rules.Insert(position - 1, rest[1]);
                    return null;
                }

            case "-D":
                return exists && state.Rules(table, chainName).Remove(parts[2]) ? null : "Bad rule (does a matching rule exist in that chain?)";
            case "-F":
                if (!exists)
                {
                    return "no chain";
                }

                state.Rules(table, chainName).Clear();
                return null;
            case "-X":
                if (!exists || state.Rules(table, chainName).Count > 0 || state.IsReferenced(new ChainRef(table, chainName)))
                {
                    return "chain busy";
                }

                state.DeleteChain(new ChainRef(table, chainName));
                return null;
            default:
                return "unknown command " + command;
        }
    }
}
