using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using CnmSharp.Testing;

namespace CnmSharp.Cli.Tests;

/// <summary>
/// docs/cli.md cannot rot: every command it shows as typed (a line <c>$ ...</c> in a code block, with its <c>\</c>
/// continuations) runs, in the order of the page, in a private host namespace with the lab's state and run
/// directories (the page's <c>/tmp/lab-host</c> and <c>/tmp/lab/</c> are the test's). A command the page follows with
/// an error line (<c>cnm: ...</c>) must fail with that message (ids may differ); every other one must succeed.
/// </summary>
[TestFixture]
[RequiresRoot]
[NonParallelizable]
public sealed partial class DocExamplesTests
{
    /// <summary>What is not run: <c>demo</c> makes its own world and has its own tests (DemoTests).</summary>
    private static readonly string[] NotRun = ["cnm demo"];

    [Test]
    [CancelAfter(900_000)]
    public async Task Every_example_of_docs_cli_md_works_in_order()
    {
        var examples = Extract(await File.ReadAllTextAsync(Path.Combine(CnmRunner.RepoRoot, "docs", "cli.md")));
        Assert.That(examples, Has.Count.GreaterThan(40), "the page's examples were found");

        await using var lab = await CliLab.CreateAsync();
        var prelude = new StringBuilder();
        prelude.Append("cnm() { dotnet ").Append(Quote(CnmRunner.CnmDll));
        foreach (var arg in lab.GlobalArgs)
        {
            prelude.Append(' ').Append(Quote(arg));
        }

        prelude.Append(" \"$@\"; }\n");
        var background = new List<int>();
        try
        {
            foreach (var example in examples)
            {
                var command = example.Command.Replace("/tmp/lab-host", lab.Host.Path, StringComparison.Ordinal)
                    .Replace("/tmp/lab/", lab.Root + "/", StringComparison.Ordinal);
                if (command.EndsWith('&'))
                {
                    // A server the next examples talk to: its own process group, killed at the end.
                    var started = await RunAsync(prelude + "set -m\n" + command.TrimEnd('&') + " >/dev/null 2>&1 &\necho $!\n");
                    Assert.That(started.ExitCode, Is.Zero, $"line {example.Line}: {example.Command}\n{started}");
                    background.Add(int.Parse(started.StdOut.Trim(), CultureInfo.InvariantCulture));
                    continue;
                }

                var result = await RunAsync(prelude + command + "\n");
                if (example.Error is { } error)
                {
                    Assert.That(result.ExitCode, Is.Not.Zero, $"line {example.Line}: {example.Command} should fail with {error}\n{result}");
                    Assert.That(result.StdErr, Does.Match(ErrorPattern(error)), $"line {example.Line}: {example.Command}\n{result}");
                }
                else
                {
                    Assert.That(result.ExitCode, Is.Zero, $"line {example.Line}: {example.Command}\n{result}");
                }
            }
        }
        finally
        {
            // The server and everything it started (`timeout` makes a process group of its own), by PID.
            foreach (var pid in background.SelectMany(p => Descendants(p).Prepend(p)).ToList())
            {
                await CnmRunner.RunAsync("kill", ["-KILL", pid.ToString(CultureInfo.InvariantCulture)], TimeSpan.FromSeconds(10));
            }

            // What the page leaves (networks, sandboxes) goes with the lab's host namespace and directories.
            await CnmRunner.RunAsync("dotnet", [CnmRunner.CnmDll, .. lab.GlobalArgs, "sandbox", "rm", "c1", "c2", "c1-sidecar", "monitor", "d1", "p1", "p2"], TimeSpan.FromMinutes(2));
        }
    }

    /// <summary>The processes below <paramref name="pid"/> (children first found, then theirs), from /proc.</summary>
    private static List<int> Descendants(int pid)
    {
        var parents = new Dictionary<int, int>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out var child))
            {
                continue;
            }

            try
            {
                // /proc/PID/stat: "pid (comm) state ppid ...": the comm may hold spaces, so read after its last ')'.
                var stat = File.ReadAllText(Path.Combine(dir, "stat"));
                var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                parents[child] = int.Parse(fields[1], CultureInfo.InvariantCulture);
            }
            catch (IOException)
            {
                // Gone meanwhile.
            }
        }

        var found = new List<int>();
        var queue = new Queue<int>([pid]);
        while (queue.TryDequeue(out var current))
        {
            foreach (var (child, parent) in parents)
            {
                if (parent == current)
                {
                    found.Add(child);
                    queue.Enqueue(child);
                }
            }
        }

        return found;
    }

    /// <summary>One example: the command as typed, where it is, and the error line the page shows after it.</summary>
    internal sealed record Example(int Line, string Command, string? Error);

    /// <summary>The <c>$ </c> lines of the page's code blocks, continuations joined, in order.</summary>
    internal static List<Example> Extract(string markdown)
    {
        var lines = markdown.Split('\n');
        var examples = new List<Example>();
        var inBlock = false;
        for (var i = 0; i < lines.Length; i++)
        {
            var line = lines[i].TrimEnd('\r');
            if (line.TrimStart().StartsWith("```", StringComparison.Ordinal))
            {
                inBlock = !inBlock;
                continue;
            }

            if (!inBlock || !line.TrimStart().StartsWith("$ ", StringComparison.Ordinal))
            {
                continue;
            }

            var start = i;
            var command = line.TrimStart()[2..];
            while (command.EndsWith('\\') && i + 1 < lines.Length)
            {
                command = command[..^1] + " " + lines[++i].Trim();
            }

            var next = i + 1 < lines.Length ? lines[i + 1].Trim() : "";
            var error = next.StartsWith("cnm: ", StringComparison.Ordinal) && !next.StartsWith("cnm: warning", StringComparison.Ordinal) ? next : null;
            if (!NotRun.Any(n => command.StartsWith(n, StringComparison.Ordinal)))
            {
                examples.Add(new Example(start + 1, command.Trim(), error));
            }
        }

        return examples;
    }

    /// <summary>The page's error line as a pattern: ids (hex runs of 12 characters and more, with or without the
    /// page's ellipsis) may differ.</summary>
    private static string ErrorPattern(string error) =>
        string.Join("[0-9a-f]{12,64}…?", HexId().Split(error).Select(Regex.Escape));

    [GeneratedRegex("[0-9a-f]{12,64}…?")]
    private static partial Regex HexId();

    private static Task<ProcessResult> RunAsync(string script) =>
        CnmRunner.RunAsync("bash", ["-c", script], TimeSpan.FromMinutes(3));

    private static string Quote(string s) => "'" + s.Replace("'", "'\\''", StringComparison.Ordinal) + "'";
}
