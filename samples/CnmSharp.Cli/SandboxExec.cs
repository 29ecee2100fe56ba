using System.Diagnostics;

namespace CnmSharp.Cli;

/// <summary>
/// Runs a command the way <c>ip netns exec</c> does: a private mount namespace (<c>unshare --mount --propagation
/// private</c>) where the sandbox's <c>hosts</c> and <c>resolv.conf</c> are bind-mounted over <c>/etc</c> when they
/// exist, then <c>nsenter --net=KEY</c> into the sandbox's network namespace. The exit code passes through.
/// </summary>
internal static class SandboxExec
{
    // $1 = namespace file ("" = stay), $2 = hosts file ("" = none), $3 = resolv.conf ("" = none), then the command.
    private const string Script = """
        set -e
        ns=$1; hosts=$2; resolv=$3; shift 3
        if [ -n "$hosts" ] && [ -e /etc/hosts ]; then mount --bind "$hosts" /etc/hosts; fi
        if [ -n "$resolv" ] && [ -e /etc/resolv.conf ]; then mount --bind "$resolv" /etc/resolv.conf; fi
        if [ -n "$ns" ]; then exec nsenter --net="$ns" -- "$@"; fi
        exec "$@"
        """;

    public static async Task<int> RunAsync(Target target, IReadOnlyList<string> command, Action<string>? output, CancellationToken cancellationToken)
    {
        if (command.Count == 0)
        {
            throw new UsageException("sandbox exec: no command given");
        }

        var start = new ProcessStartInfo("unshare")
        {
            UseShellExecute = false,
            RedirectStandardOutput = output is not null,
            RedirectStandardError = output is not null,
        };
        foreach (var a in new[] { "--mount", "--propagation", "private", "--", "sh", "-c", Script, "cnm-exec", target.NamespacePath ?? "", target.HostsFile ?? "", target.ResolvConfFile ?? "" })
        {
            start.ArgumentList.Add(a);
        }

        foreach (var a in command)
        {
            start.ArgumentList.Add(a);
        }

        using var process = Process.Start(start) ?? throw new CliException("cannot start unshare");
        if (output is not null)
        {
            process.OutputDataReceived += (_, e) => { if (e.Data is not null) { output(e.Data); } };
            process.ErrorDataReceived += (_, e) => { if (e.Data is not null) { output(e.Data); } };
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
        }

        try
        {
            await process.WaitForExitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }

        return process.ExitCode;
    }

    /// <summary>Where to run: the namespace file and the per-sandbox files.</summary>
    internal sealed record Target(string? NamespacePath, string? HostsFile, string? ResolvConfFile)
    {
        public static Target Of(Sandbox sandbox, CliContext context)
        {
            var hosts = sandbox.HostsPath;
            var resolv = sandbox.ResolvConfPath;
            var key = sandbox.Key;
            string? ns = sandbox.UsesHostNamespace
                ? context.HostNamespacePath
                : key;
            if (ns is not null && ns.StartsWith("/proc/self/", StringComparison.Ordinal))
            {
                ns = null;
            }

            return new Target(ns, File.Exists(hosts) ? hosts : null, File.Exists(resolv) ? resolv : null);
        }
    }
}
