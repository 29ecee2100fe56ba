using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using CnmSharp.Drivers;

namespace CnmSharp.Cli;

/// <summary>
/// <c>cnm graph [--svg FILE]</c>: the topology as Graphviz DOT on stdout (networks with their driver, subnets and
/// device, sandboxes, endpoints with their addresses and published ports between them, container-mode sharing), or
/// rendered to an SVG file through Graphviz's <c>dot</c>. Read-only: it changes nothing.
/// </summary>
internal static class GraphCommand
{
    public static Command Build()
    {
        var svg = new Option<string?>("--svg")
        {
            Description = "Render the graph to FILE as SVG through Graphviz's dot (package graphviz) instead of printing DOT; the file is replaced atomically",
            HelpName = "FILE",
        };
        var cmd = new Command("graph", "Print the topology as Graphviz DOT: networks (driver, subnets, device), sandboxes, endpoints with their addresses and published ports, container-mode sharing")
        {
            svg,
        };
        cmd.SetAction((parse, ct) => CliApp.RunAsync(parse, async context =>
        {
            var file = parse.GetValue(svg);
            string? dot = null;
            if (file is not null)
            {
                file = Graphviz.CheckTarget(file, "--svg");

                // Before the store is opened: without dot nothing is done.
                dot = Graphviz.RequireDot("graph --svg");
            }

            string text;
            await using (var controller = await context.OpenControllerAsync(ControllerAccess.ReadOnly, ct).ConfigureAwait(false))
            {
                text = TopologyDot.Render(controller);
            }

            if (file is null)
            {
                await Console.Out.WriteAsync(text).ConfigureAwait(false);
                await Console.Out.FlushAsync(ct).ConfigureAwait(false);
            }
            else
            {
                await Graphviz.RenderSvgAsync(dot!, text, file, ct).ConfigureAwait(false);
            }

            return 0;
        }));
        return cmd;
    }

    /// <summary>Writes the controller's topology to <paramref name="file"/> as SVG (what <c>cnm graph --svg</c> does);
    /// <paramref name="dot"/> is the path <see cref="Graphviz.RequireDot"/> found.</summary>
    public static Task WriteSvgAsync(NetworkController controller, string dot, string file, CancellationToken cancellationToken) =>
        Graphviz.RenderSvgAsync(dot, TopologyDot.Render(controller), file, cancellationToken);
}

/// <summary>The topology of a controller as a Graphviz DOT digraph. Every node id and label is a quoted DOT string:
/// user text has its control characters shown escaped (<see cref="CliText.Escape"/>), then quotes and backslashes
/// escaped for DOT, so any name is drawn as written and cannot break the graph.</summary>
internal static class TopologyDot
{
    /// <summary>Network options that name the host device a network's driver uses (a bridge's name, a parent
    /// interface), shown as <c>device</c>: options the user gave, whatever the driver.</summary>
    private static readonly string[] DeviceOptions = [NetLabels.BridgePrefix + ".name", "parent"];

    public static string Render(NetworkController controller)
    {
        var networks = controller.Networks.OrderBy(n => n.Name, StringComparer.Ordinal).ToList();
        var sandboxes = controller.Sandboxes.OrderBy(s => s.ContainerId, StringComparer.Ordinal).ToList();
        var text = new StringBuilder();
        text.Append("// cnm graph: networks, sandboxes, endpoints (addresses, published ports), container-mode sharing\n");
        text.Append("digraph \"cnm\" {\n");
        text.Append("  graph [rankdir=LR, fontname=\"Helvetica\", nodesep=0.25, ranksep=0.9];\n");
        text.Append("  node [fontname=\"Helvetica\", fontsize=10];\n");
        text.Append("  edge [fontname=\"Helvetica\", fontsize=9, arrowhead=none];\n");

        text.Append("\n  // networks\n");
        foreach (var n in networks)
        {
            var style = n.ConfigOnly ? "rounded,dashed,filled" : "rounded,filled";
            Node(text, NetworkId(n.Id), NetworkLines(n), $"shape=box, style=\"{style}\", fillcolor=\"#dbeafe\"");
        }

        text.Append("\n  // sandboxes\n");
        var known = sandboxes.Select(s => s.Id).ToHashSet(StringComparer.Ordinal);
        foreach (var s in sandboxes)
        {
            Node(text, SandboxId(s.Id), SandboxLines(s), "shape=box, style=\"filled\", fillcolor=\"#fef3c7\"");
        }

        // A sharer whose original sandbox was removed still uses that namespace: drawn as the namespace alone.
        foreach (var group in sandboxes.Where(s => s.SharedFrom is { } from && !known.Contains(from)).GroupBy(s => s.SharedFrom!, StringComparer.Ordinal))
        {
            Node(text, SandboxId(group.Key), [$"namespace of removed sandbox {NetworkCommands.Short(group.Key)}", "netns " + group.First().Key], "shape=box, style=\"dashed\"");
        }

        text.Append("\n  // endpoints: sandbox -> endpoint -> network\n");
        foreach (var n in networks)
        {
            foreach (var e in n.Endpoints.OrderBy(e => e.Name, StringComparer.Ordinal))
            {
                Node(text, EndpointId(e.Id), EndpointLines(e), "shape=ellipse");
                if (e.Sandbox is { } sandbox)
                {
                    Edge(text, SandboxId(sandbox.Id), EndpointId(e.Id), null, null);
                }

                Edge(text, EndpointId(e.Id), NetworkId(n.Id), null, null);
            }
        }

        text.Append("\n  // container mode: a sandbox that shares another's network namespace\n");
        foreach (var s in sandboxes.Where(s => s.SharedFrom is not null))
        {
            Edge(text, SandboxId(s.Id), SandboxId(s.SharedFrom!), "shares netns", "style=dashed, arrowhead=normal");
        }

        var byName = networks.ToDictionary(n => n.Name, StringComparer.Ordinal);
        foreach (var n in networks.Where(n => !string.IsNullOrEmpty(n.ConfigFrom)))
        {
            var from = byName.GetValueOrDefault(n.ConfigFrom!) ?? networks.FirstOrDefault(o => o.Id == n.ConfigFrom);
            if (from is not null)
            {
                Edge(text, NetworkId(n.Id), NetworkId(from.Id), "config from", "style=dotted, arrowhead=normal");
            }
        }

        text.Append("}\n");
        return text.ToString();
    }

    private static string NetworkId(string id) => "network:" + id;

    private static string SandboxId(string id) => "sandbox:" + id;

    private static string EndpointId(string id) => "endpoint:" + id;

    private static List<string> NetworkLines(Network n)
    {
        var flags = new List<string> { n.Driver };
        if (n.ConfigOnly)
        {
            flags.Add("config-only");
        }

        if (n.Internal)
        {
            flags.Add("internal");
        }

        if (n.EnableIPv6)
        {
            flags.Add("IPv6");
        }

        var lines = new List<string> { "network " + n.Name, string.Join(", ", flags) };
        if (n.ConfigOnly)
        {
            lines.AddRange(n.IPv4Config.Concat(n.IPv6Config).Select(c => c.Subnet + (c.Gateway is null ? "" : " gw " + c.Gateway)));
        }
        else
        {
            lines.AddRange(n.IPv4Info.Concat(n.IPv6Info).Select(i => i.Pool + (i.Gateway is { } gw ? " gw " + gw.Address : "")));
        }

        foreach (var key in DeviceOptions)
        {
            if (n.DriverOptions.TryGetValue(key, out var device) && device.Length > 0)
            {
                lines.Add("device " + device);
            }
        }

        lines.AddRange(n.Labels.OrderBy(l => l.Key, StringComparer.Ordinal).Select(l => $"label {l.Key}={l.Value}"));
        return lines;
    }

    private static List<string> SandboxLines(Sandbox s)
    {
        var lines = new List<string> { "sandbox " + s.ContainerId, "id " + NetworkCommands.Short(s.Id) };
        if (s.SharesNetwork)
        {
            lines.Add("container:" + (s.SharedFromContainerId ?? NetworkCommands.Short(s.SharedFrom!)));
        }
        else if (s.UsesHostNamespace)
        {
            lines.Add("host namespace");
        }
        else
        {
            lines.Add("netns " + s.Key);
        }

        if (!s.SharesNetwork && s.Hostname is { Length: > 0 } hostname)
        {
            lines.Add("hostname " + hostname);
        }

        return lines;
    }

    private static List<string> EndpointLines(Endpoint e)
    {
        var lines = new List<string> { e.InterfaceName is { } ifname ? $"{e.Name} ({ifname})" : $"{e.Name} (not joined)" };
        if (e.Address is { } v4)
        {
            lines.Add(v4.ToString());
        }

        if (e.AddressIPv6 is { } v6)
        {
            lines.Add(v6.ToString());
        }

        if (e.MacAddress is { } mac)
        {
            lines.Add(string.Join(':', mac.GetAddressBytes().Select(b => b.ToString("x2", CultureInfo.InvariantCulture))));
        }

        if (e.Aliases.Count > 0)
        {
            lines.Add("alias " + string.Join(", ", e.Aliases));
        }

        lines.AddRange(e.PortBindings.Select(FormatPort));
        return lines;
    }

    /// <summary>A published port as <c>docker ps</c> shows it: <c>0.0.0.0:8080-&gt;80/tcp</c>, <c>[::]:8080-8081-&gt;80/tcp</c>.</summary>
    internal static string FormatPort(PortBinding p)
    {
        var hostIp = p.HostIP ?? IPAddress.Any;
        var host = hostIp.AddressFamily == AddressFamily.InterNetworkV6 ? $"[{hostIp}]" : hostIp.ToString();
        var hostPort = p.HostPortEnd > p.HostPort
            ? string.Create(CultureInfo.InvariantCulture, $"{p.HostPort}-{p.HostPortEnd}")
            : p.HostPort.ToString(CultureInfo.InvariantCulture);
        var protocol = p.Protocol switch
        {
            TransportProtocol.Tcp => "tcp",
            TransportProtocol.Udp => "udp",
            TransportProtocol.Sctp => "sctp",
            _ => ((int)p.Protocol).ToString(CultureInfo.InvariantCulture),
        };
        return string.Create(CultureInfo.InvariantCulture, $"{host}:{hostPort}->{p.ContainerPort}/{protocol}");
    }

    private static void Node(StringBuilder text, string id, IEnumerable<string> lines, string attributes) =>
        text.Append("  ").Append(Quote(id)).Append(" [").Append(attributes).Append(", label=").Append(Label(lines)).Append("];\n");

    private static void Edge(StringBuilder text, string from, string to, string? label, string? attributes)
    {
        text.Append("  ").Append(Quote(from)).Append(" -> ").Append(Quote(to));
        var parts = new List<string>();
        if (attributes is not null)
        {
            parts.Add(attributes);
        }

        if (label is not null)
        {
            parts.Add("label=" + Label([label]));
        }

        if (parts.Count > 0)
        {
            text.Append(" [").Append(string.Join(", ", parts)).Append(']');
        }

        text.Append(";\n");
    }

    /// <summary>A DOT quoted string that Graphviz draws as <paramref name="value"/> (control characters shown escaped).</summary>
    internal static string Quote(string value) => "\"" + EscapeText(value) + "\"";

    /// <summary>A label of several lines: each line escaped, joined with DOT's centred line break <c>\n</c>.</summary>
    internal static string Label(IEnumerable<string> lines) => "\"" + string.Join("\\n", lines.Select(EscapeText)) + "\"";

    /// <summary>Text inside a DOT quoted string: control characters made visible first (so no raw line break, NUL or
    /// escape sequence reaches Graphviz), then every backslash doubled (Graphviz would read <c>\n</c>, <c>\l</c>,
    /// <c>\N</c>... as its own escapes) and every double quote escaped.</summary>
    private static string EscapeText(string value)
    {
        var visible = CliText.Escape(value);
        var text = new StringBuilder(visible.Length + 4);
        foreach (var c in visible)
        {
            if (c is '"' or '\\')
            {
                text.Append('\\');
            }

            text.Append(c);
        }

        return text.ToString();
    }
}

/// <summary>Graphviz's <c>dot</c> as a child process: found on PATH, DOT on its stdin, SVG from its stdout into a
/// temporary file beside the target, renamed over it only when <c>dot</c> succeeded.</summary>
internal static class Graphviz
{
    /// <summary>How long <c>dot</c> may take.</summary>
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(2);

    /// <summary>The path of <c>dot</c> on PATH, or a <see cref="CliException"/> (exit 1) naming the package.</summary>
    public static string RequireDot(string what) =>
        FindOnPath("dot") ?? throw new CliException($"{what}: Graphviz's `dot` is not installed (not found on PATH); install the graphviz package (apt-get install graphviz)");

    /// <summary>The full path of the target file: a usage error when empty or when it names a directory.</summary>
    public static string CheckTarget(string file, string option)
    {
        if (string.IsNullOrWhiteSpace(file) || file.Contains('\0', StringComparison.Ordinal))
        {
            throw new UsageException($"{option} \"{file}\": expected a file path");
        }

        string full;
        try
        {
            full = Path.GetFullPath(file);
        }
        catch (Exception ex) when (ex is ArgumentException or NotSupportedException or PathTooLongException)
        {
            throw new UsageException($"{option} {file}: {ex.Message}");
        }

        if (Directory.Exists(full) || file.EndsWith('/'))
        {
            throw new UsageException($"{option} {file}: is a directory (expected a file path)");
        }

        var directory = Path.GetDirectoryName(full);
        if (directory is null || !Directory.Exists(directory))
        {
            throw new CliException($"{option} {file}: directory {directory} does not exist");
        }

        return full;
    }

    private static string? FindOnPath(string name)
    {
        foreach (var directory in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            if (!Path.IsPathRooted(directory))
            {
                continue;
            }

            var candidate = Path.Combine(directory, name);
            try
            {
                if (!File.Exists(candidate))
                {
                    continue;
                }

                if (OperatingSystem.IsWindows() || (File.GetUnixFileMode(candidate) & (UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute)) != 0)
                {
                    return candidate;
                }
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                // Not usable: look further.
            }
        }

        return null;
    }

    /// <summary>Runs <c>dot -Tsvg</c> with <paramref name="dotText"/> on stdin and writes its output to
    /// <paramref name="file"/> atomically (a temporary file in the same directory, flushed, then renamed over it).
    /// A non-zero exit, a kill or an empty output leaves the target untouched and is an error naming dot's message;
    /// what dot says on stderr when it succeeds is printed as warnings.</summary>
    public static async Task RenderSvgAsync(string dot, string dotText, string file, CancellationToken cancellationToken)
    {
        var directory = Path.GetDirectoryName(file)!;
        var temporary = Path.Combine(directory, $".{Path.GetFileName(file)}.tmp-{Environment.ProcessId}-{Guid.NewGuid():N}");
        var start = new ProcessStartInfo(dot)
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            StandardInputEncoding = new UTF8Encoding(encoderShouldEmitUTF8Identifier: false),
            StandardErrorEncoding = Encoding.UTF8,
        };
        start.ArgumentList.Add("-Tsvg");

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(Timeout);
        var renamed = false;
        try
        {
            using var process = Process.Start(start) ?? throw new CliException($"cannot start {dot}");
            string stderr;
            long length;
            try
            {
                var error = process.StandardError.ReadToEndAsync(timeout.Token);
                Task<long> output;
                await using (var target = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true))
                {
                    output = CopyAsync(process.StandardOutput.BaseStream, target, timeout.Token);
                    try
                    {
                        await process.StandardInput.WriteAsync(dotText.AsMemory(), timeout.Token).ConfigureAwait(false);
                        process.StandardInput.Close();
                    }
                    catch (IOException)
                    {
                        // dot exited before reading everything: its exit code and stderr say why.
                    }

                    length = await output.ConfigureAwait(false);
                    await process.WaitForExitAsync(timeout.Token).ConfigureAwait(false);
                    target.Flush(flushToDisk: true);
                }

                stderr = await error.ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                try
                {
                    process.Kill();
                }
                catch (InvalidOperationException)
                {
                    // It exited in between.
                }

                if (cancellationToken.IsCancellationRequested)
                {
                    throw;
                }

                throw new CliException($"{dot} -Tsvg did not finish within 2 minutes: killed");
            }

            var messages = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            if (process.ExitCode != 0 || length == 0)
            {
                var why = messages.Length > 0 ? string.Join("; ", messages) : length == 0 ? "no output" : "no message";
                throw new CliException($"{dot} -Tsvg failed (exit code {process.ExitCode}): {why}");
            }

            foreach (var message in messages)
            {
                await Console.Error.WriteLineAsync("cnm: warning: dot: " + CliApp.OneLine(message)).ConfigureAwait(false);
            }

            File.Move(temporary, file, overwrite: true);
            renamed = true;
        }
        finally
        {
            if (!renamed)
            {
                File.Delete(temporary);
            }
        }
    }

    private static async Task<long> CopyAsync(Stream from, Stream to, CancellationToken cancellationToken)
    {
        var buffer = new byte[1 << 16];
        long total = 0;
        int read;
        while ((read = await from.ReadAsync(buffer, cancellationToken).ConfigureAwait(false)) > 0)
        {
            await to.WriteAsync(buffer.AsMemory(0, read), cancellationToken).ConfigureAwait(false);
            total += read;
        }

        return total;
    }
}
