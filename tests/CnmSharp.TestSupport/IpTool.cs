using System.Diagnostics;
using System.Text.Json;

namespace CnmSharp.Testing;

/// <summary>The result of an external command.</summary>
/// <param name="ExitCode">The process exit code.</param>
/// <param name="StandardOutput">Everything written to stdout.</param>
/// <param name="StandardError">Everything written to stderr.</param>
public sealed record ProcessResult(int ExitCode, string StandardOutput, string StandardError);

/// <summary>
/// Runs iproute2 as an oracle inside a namespace given by path: <c>nsenter --net=PATH ip ...</c> (the namespaces of tests
/// live in private run directories, which <c>ip -n NAME</c> cannot reach). Never runs <c>ip</c> in the caller's namespace.
/// </summary>
public static class IpTool
{
    /// <summary>Runs <c>nsenter --net=<paramref name="netnsPath"/> ip ARGS</c>; throws when it exits non-zero.</summary>
    /// <param name="netnsPath">The namespace file.</param>
    /// <param name="args">Arguments of <c>ip</c>.</param>
    /// <returns>Standard output.</returns>
    public static async Task<string> RunAsync(string netnsPath, params string[] args)
    {
        var result = await TryRunAsync(netnsPath, args).ConfigureAwait(false);
        if (result.ExitCode != 0)
        {
            throw new InvalidOperationException(
                $"'ip {string.Join(' ', args)}' in {netnsPath} exited {result.ExitCode}: {result.StandardError.Trim()}");
        }

        return result.StandardOutput;
    }

    /// <summary>Runs <c>nsenter --net=<paramref name="netnsPath"/> ip ARGS</c> and returns whatever happened.</summary>
    /// <param name="netnsPath">The namespace file.</param>
    /// <param name="args">Arguments of <c>ip</c>.</param>
    /// <returns>Exit code and output.</returns>
    public static Task<ProcessResult> TryRunAsync(string netnsPath, params string[] args)
    {
        ArgumentException.ThrowIfNullOrEmpty(netnsPath);
        ArgumentNullException.ThrowIfNull(args);
        return ExecAsync("nsenter", [$"--net={netnsPath}", "ip", .. args]);
    }

    /// <summary>Runs <c>ip -details -json ARGS</c> in the namespace and parses the output.</summary>
    /// <param name="netnsPath">The namespace file.</param>
    /// <param name="args">Arguments of <c>ip</c> after the options, e.g. <c>link show</c>.</param>
    /// <returns>The parsed JSON (an array for <c>show</c>/<c>list</c> commands; empty output gives an empty array).</returns>
    public static async Task<JsonElement> JsonAsync(string netnsPath, params string[] args)
    {
        var output = await RunAsync(netnsPath, ["-details", "-json", .. args]).ConfigureAwait(false);
        if (string.IsNullOrWhiteSpace(output))
        {
            output = "[]";
        }

        using var document = JsonDocument.Parse(output);
        return document.RootElement.Clone();
    }

    /// <summary>The interface names in the namespace, from <c>ip -json link show</c>.</summary>
    /// <param name="netnsPath">The namespace file.</param>
    /// <returns>The names, in kernel order.</returns>
    public static async Task<IReadOnlyList<string>> LinkNamesAsync(string netnsPath)
    {
        var links = await JsonAsync(netnsPath, "link", "show").ConfigureAwait(false);
        return [.. links.EnumerateArray().Select(l => l.GetProperty("ifname").GetString()!)];
    }

    /// <summary>One link from <c>ip -details -json link show dev NAME</c>, or null when it does not exist.</summary>
    /// <param name="netnsPath">The namespace file.</param>
    /// <param name="name">The interface name.</param>
    /// <returns>The link object or null.</returns>
    public static async Task<JsonElement?> LinkAsync(string netnsPath, string name)
    {
        var result = await TryRunAsync(netnsPath, "-details", "-json", "link", "show", "dev", name).ConfigureAwait(false);
        if (result.ExitCode != 0)
        {
            return null;
        }

        using var document = JsonDocument.Parse(result.StandardOutput);
        return document.RootElement.GetArrayLength() == 0 ? null : document.RootElement[0].Clone();
    }

    /// <summary>Whether a link object from <c>ip -json</c> has <paramref name="flag"/> (e.g. <c>UP</c>) in its flags.</summary>
    /// <param name="link">A link object.</param>
    /// <param name="flag">The flag.</param>
    /// <returns>True when present.</returns>
    public static bool HasFlag(JsonElement link, string flag) =>
        link.TryGetProperty("flags", out var flags)
        && flags.EnumerateArray().Any(f => string.Equals(f.GetString(), flag, StringComparison.Ordinal));

    /// <summary>Runs a program with arguments (no shell) and collects its output.</summary>
    /// <param name="fileName">The program.</param>
    /// <param name="args">Its arguments.</param>
    /// <returns>Exit code and output.</returns>
    public static async Task<ProcessResult> ExecAsync(string fileName, params string[] args)
    {
        ArgumentException.ThrowIfNullOrEmpty(fileName);
        ArgumentNullException.ThrowIfNull(args);
        var start = new ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException($"cannot start {fileName}");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().ConfigureAwait(false);
        return new ProcessResult(process.ExitCode, await stdout.ConfigureAwait(false), await stderr.ConfigureAwait(false));
    }
}
