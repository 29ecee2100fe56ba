using System.CommandLine;
using CnmSharp.Cli;

var root = CliApp.BuildRootCommand();
var parse = root.Parse(args);
if (parse.Errors.Count > 0 && !CliApp.WantsHelp(parse))
{
    foreach (var error in parse.Errors)
    {
        await Console.Error.WriteLineAsync("cnm: " + error.Message);
    }

    await Console.Error.WriteLineAsync($"Run 'cnm {CliApp.CommandPath(parse)} --help' for usage.".Replace("  ", " ", StringComparison.Ordinal));
    return CliApp.UsageExitCode;
}

return await parse.InvokeAsync();
