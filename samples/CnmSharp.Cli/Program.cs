using System.CommandLine;
using CnmSharp.Cli;

var root = CliApp.BuildRootCommand();
var parse = root.Parse(args);
if (parse.Errors.Count > 0 && !CliApp.WantsHelp(parse))
{
    // A usage error: one line (every parse error, then where to look), exit code 2.
    var path = CliApp.CommandPath(parse);
    var help = path.Length == 0 ? "cnm --help" : $"cnm {path} --help";
    var errors = string.Join("; ", parse.Errors.Select(e => e.Message.Trim().TrimEnd('.')));
    await Console.Error.WriteLineAsync($"cnm: {CliApp.OneLine(errors)} (see '{help}')");
    return CliApp.UsageExitCode;
}

return await parse.InvokeAsync();
