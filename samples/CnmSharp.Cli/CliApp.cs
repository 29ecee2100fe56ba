using System.CommandLine;
using System.CommandLine.Help;

namespace CnmSharp.Cli;

/// <summary>The command tree of <c>cnm</c>.</summary>
internal static class CliApp
{
    public const int ErrorExitCode = 1;
    public const int UsageExitCode = 2;

    public static RootCommand BuildRootCommand()
    {
        var root = new RootCommand("cnm: manage CnmSharp networks and sandboxes the way `docker network` manages Docker's.");
        GlobalOptions.AddTo(root);
        root.Subcommands.Add(NetworkCommands.Build());
        root.Subcommands.Add(SandboxCommands.Build());
        root.Subcommands.Add(DemoCommand.Build());
        root.Subcommands.Add(GraphCommand.Build());
        root.Subcommands.Add(DnsCommands.Build());
        root.Subcommands.Add(PluginCommands.Build());
        root.Subcommands.Add(CheckCommand.Build());
        return root;
    }

    public static bool WantsHelp(ParseResult parse) => parse.Action is HelpAction;

    public static string CommandPath(ParseResult parse)
    {
        var names = new List<string>();
        for (var r = parse.CommandResult; r is not null; r = r.Parent as System.CommandLine.Parsing.CommandResult)
        {
            if (r.Command is not RootCommand)
            {
                names.Insert(0, r.Command.Name);
            }
        }

        return string.Join(' ', names);
    }

    /// <summary>Removes each named object in turn, printing its name; a failure is reported on stderr and the others
    /// still go. Returns the exit code: 0 when all went, <see cref="ErrorExitCode"/> otherwise.</summary>
    public static async Task<int> RemoveEachAsync(IEnumerable<string> names, Func<string, Task> remove)
    {
        var status = 0;
        foreach (var name in names)
        {
            try
            {
                await remove(name).ConfigureAwait(false);
                Console.WriteLine(CliText.Escape(name));
            }
            catch (CnmException ex)
            {
                await Console.Error.WriteLineAsync("cnm: " + OneLine(Describe(ex))).ConfigureAwait(false);
                status = ErrorExitCode;
            }
        }

        return status;
    }

    /// <summary>Runs a command body. Exit codes: <see cref="UsageExitCode"/> (2) for what the command line alone shows
    /// to be wrong (<see cref="UsageException"/>); <see cref="ErrorExitCode"/> (1) for refusals by the library
    /// (<see cref="CnmException"/>), missing privileges and system errors. Either is one line on stderr, control
    /// characters escaped.</summary>
    public static async Task<int> RunAsync(ParseResult parse, Func<CliContext, Task<int>> body)
    {
        CliContext context;
        try
        {
            context = GlobalOptions.Read(parse);
        }
        catch (UsageException ex)
        {
            await Console.Error.WriteLineAsync("cnm: " + OneLine(ex.Message)).ConfigureAwait(false);
            return UsageExitCode;
        }
        catch (CliException ex)
        {
            await Console.Error.WriteLineAsync("cnm: " + OneLine(ex.Message)).ConfigureAwait(false);
            return ErrorExitCode;
        }

        try
        {
            return await body(context).ConfigureAwait(false);
        }
        catch (UsageException ex)
        {
            await Console.Error.WriteLineAsync("cnm: " + OneLine(ex.Message)).ConfigureAwait(false);
            return UsageExitCode;
        }
        catch (Exception ex) when (IsReportable(ex))
        {
            await Console.Error.WriteLineAsync("cnm: " + OneLine(Describe(ex))).ConfigureAwait(false);
            return ErrorExitCode;
        }
    }

    public static string Describe(Exception ex) => ex switch
    {
        CnmException c => string.IsNullOrEmpty(c.Subject) ? c.Reason : $"{c.Subject}: {c.Reason}",
        AggregateException { InnerExceptions.Count: 1 } a => Describe(a.InnerExceptions[0]),
        _ => ex.Message,
    };

    private static bool IsReportable(Exception ex) =>
        ex is CnmException or CliException or IOException or UnauthorizedAccessException or InvalidOperationException
            or CnmSharp.Netlink.NamespaceException or ArgumentException or FormatException or System.ComponentModel.Win32Exception
            or Microsoft.Extensions.Options.OptionsValidationException or AggregateException;

    /// <summary>A message as one line: surrounding white space trimmed, control characters inside escaped.</summary>
    public static string OneLine(string message) => CliText.Escape(message.Trim());
}

/// <summary>An error the CLI reports as one line, exit code 1.</summary>
internal class CliException(string message) : Exception(message);

/// <summary>A usage error: exit code 2.</summary>
internal sealed class UsageException(string message) : CliException(message);
