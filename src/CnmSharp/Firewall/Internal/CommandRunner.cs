using System.Diagnostics;
using System.Text;

namespace CnmSharp.Firewall.Internal;

/// <summary>The outcome of one external command.</summary>
/// <param name="ExitCode">The exit code.</param>
/// <param name="StandardOutput">What it wrote to stdout.</param>
/// <param name="StandardError">What it wrote to stderr.</param>
internal readonly record struct CommandResult(int ExitCode, string StandardOutput, string StandardError);

/// <summary>Runs external commands (iptables-restore, iptables-save); replaceable in unit tests.</summary>
internal interface ICommandRunner
{
    /// <summary>Runs a command to completion.</summary>
    /// <param name="fileName">The program.</param>
    /// <param name="arguments">Its arguments.</param>
    /// <param name="standardInput">Text written to its stdin, or null for none.</param>
    /// <param name="cancellationToken">Cancels the call (kills the process).</param>
    /// <returns>Exit code and output.</returns>
    ValueTask<CommandResult> RunAsync(string fileName, IReadOnlyList<string> arguments, string? standardInput, CancellationToken cancellationToken);
}

/// <summary>Runs commands with <see cref="Process"/>, optionally inside a network namespace through <c>nsenter</c>.</summary>
internal sealed class ProcessCommandRunner : ICommandRunner
{
    public static ProcessCommandRunner Instance { get; } = new();

    public async ValueTask<CommandResult> RunAsync(string fileName, IReadOnlyList<string> arguments, string? standardInput, CancellationToken cancellationToken)
    {
        var startInfo = new ProcessStartInfo(fileName)
        {
            UseShellExecute = false,
            RedirectStandardInput = standardInput is not null,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
        };
        foreach (var argument in arguments)
        {
            startInfo.ArgumentList.Add(argument);
        }

        using var process = new Process { StartInfo = startInfo };
        try
        {
            process.Start();
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            return new CommandResult(127, string.Empty, $"cannot start {fileName}: {ex.Message}");
        }

        try
        {
            var stdout = process.StandardOutput.ReadToEndAsync(cancellationToken);
            var stderr = process.StandardError.ReadToEndAsync(cancellationToken);
            if (standardInput is not null)
            {
                try
                {
                    await process.StandardInput.WriteAsync(standardInput.AsMemory(), cancellationToken).ConfigureAwait(false);
                    process.StandardInput.Close();
                }
                catch (IOException)
                {
                    // The program exited without reading all its input (for example it could not be started by
                    // nsenter): its exit code and stderr tell why.
                }
            }

            await process.WaitForExitAsync(cancellationToken).ConfigureAwait(false);
            return new CommandResult(process.ExitCode, await stdout.ConfigureAwait(false), await stderr.ConfigureAwait(false));
        }
        catch (OperationCanceledException)
        {
            KillQuietly(process);
            throw;
        }
    }

    /// <summary>Wraps a command so it runs in the network namespace at <paramref name="namespacePath"/>.</summary>
    /// <param name="namespacePath">The namespace path, or null for the process's own (then the command runs directly).</param>
    /// <param name="fileName">The program.</param>
    /// <param name="arguments">Its arguments.</param>
    /// <returns>The program and arguments to run.</returns>
    public static (string FileName, IReadOnlyList<string> Arguments) InNamespace(string? namespacePath, string fileName, params string[] arguments)
    {
        if (namespacePath is null)
        {
            return (fileName, arguments);
        }

        var wrapped = new string[arguments.Length + 2];
        wrapped[0] = "--net=" + namespacePath;
        wrapped[1] = fileName;
        arguments.CopyTo(wrapped, 2);
        return ("nsenter", wrapped);
    }

    private static void KillQuietly(Process process)
    {
        try
        {
            process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
            // Already exited.
        }
    }
}
