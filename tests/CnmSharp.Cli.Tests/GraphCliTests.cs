using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using System.Xml.Linq;
using CnmSharp.Drivers;
using CnmSharp.Testing;

namespace CnmSharp.Cli.Tests;

/// <summary>
/// <c>cnm graph</c> and <c>cnm graph --svg FILE</c> on a state like the demo's, grown: two networks, three sandboxes
/// (one on both networks, one with a published port), and a sandbox that shares another's namespace (container mode).
/// One lab for the fixture: a private host namespace, temporary state and run directories.
/// </summary>
[TestFixture]
[RequiresRoot]
public sealed partial class GraphCliTests
{
    /// <summary>A label with a quote, a backslash, a line feed and a non-ASCII letter: drawn as written, the line feed
    /// shown escaped.</summary>
    private const string AwkwardLabelValue = "a\"b\\c\nd\u00e9";
    private const string AwkwardLabelShown = "label note=a\"b\\c\\nd\u00e9";

    private CliLab _lab = null!;
    private string _net1 = null!;
    private string _net2 = null!;
    private string _bridge = null!;
    private string _a = null!;
    private string _b = null!;
    private string _c = null!;
    private string _side = null!;

    [OneTimeSetUp]
    public async Task CreateStateAsync()
    {
        _lab = await CliLab.CreateAsync();
        var s = _lab.Suffix;
        (_net1, _net2, _bridge) = ($"gra-{s}", $"grb-{s}", $"grbr{s}");
        (_a, _b, _c, _side) = ($"ga-{s}", $"gb-{s}", $"gc-{s}", $"gside-{s}");

        await OkAsync("network", "create", "--subnet", "10.94.0.0/24", "--gateway", "10.94.0.1", "-o", "com.docker.network.bridge.name=" + _bridge, _net1);
        await OkAsync("network", "create", "--subnet", "10.95.0.0/24", "--label", "note=" + AwkwardLabelValue, _net2);
        foreach (var sandbox in new[] { _a, _b, _c })
        {
            await OkAsync("sandbox", "create", sandbox);
        }

        await OkAsync("network", "connect", "--ip", "10.94.0.10", _net1, _a);
        await OkAsync("network", "connect", "--ip", "10.95.0.10", _net2, _a);
        await OkAsync("network", "connect", "--ip", "10.94.0.11", _net1, _b);
        await OkAsync("sandbox", "create", "--share", _a, _side);

        // c's endpoint publishes 8080 -> 80/tcp, through the library (the same state).
        await using (var controller = await _lab.OpenControllerAsync())
        {
            var network = controller.FindNetworkByName(_net2)!;
            var sandbox = controller.FindSandboxByContainerId(_c)!;
            var endpoint = await network.CreateEndpointAsync(_c, new EndpointCreateOptions
            {
                IPv4Address = IPAddress.Parse("10.95.0.11"),
                PortBindings = [new PortBinding(TransportProtocol.Tcp, 80, IPAddress.Any, 8080)],
            });
            await endpoint.JoinAsync(sandbox);
        }
    }

    [OneTimeTearDown]
    public async Task RemoveStateAsync() => await _lab.DisposeAsync();

    private async Task<ProcessResult> OkAsync(params string[] args)
    {
        var r = await _lab.CnmAsync(args);
        Assert.That(r.ExitCode, Is.Zero, $"cnm {string.Join(' ', args)}: {r}");
        return r;
    }

    /// <summary>Every network, sandbox and endpoint address, and the published port: what the picture must name.</summary>
    private string[] Expected() =>
    [
        "network " + _net1, "network " + _net2, "10.94.0.0/24 gw 10.94.0.1", "10.95.0.0/24 gw 10.95.0.1", "device " + _bridge,
        "sandbox " + _a, "sandbox " + _b, "sandbox " + _c, "sandbox " + _side, "container:" + _a,
        "10.94.0.10/24", "10.95.0.10/24", "10.94.0.11/24", "10.95.0.11/24", "0.0.0.0:8080->80/tcp", AwkwardLabelShown,
    ];

    [Test]
    public async Task Dot_names_every_object_and_links_sandboxes_endpoints_and_networks()
    {
        var r = await OkAsync("graph");
        Assert.That(r.StdErr, Is.Empty);
        var graph = Dot.Parse(r.StdOut);

        var labels = graph.Nodes.Values.SelectMany(l => l).ToList();
        Assert.That(Expected().Where(e => !labels.Contains(e)), Is.Empty, "lines missing from the node labels:\n" + r.StdOut);

        string Node(string firstLine) => graph.Nodes.Single(n => n.Value[0] == firstLine).Key;
        string EndpointOf(string address) => graph.Nodes.Single(n => n.Value.Contains(address)).Key;
        var connections = new[]
        {
            (_a, "10.94.0.10/24", _net1), (_a, "10.95.0.10/24", _net2), (_b, "10.94.0.11/24", _net1), (_c, "10.95.0.11/24", _net2),
        };
        Assert.Multiple(() =>
        {
            Assert.That(graph.Edges.Where(e => !graph.Nodes.ContainsKey(e.From) || !graph.Nodes.ContainsKey(e.To)), Is.Empty, "every edge joins declared nodes");
            foreach (var (sandbox, address, network) in connections)
            {
                var endpoint = EndpointOf(address);
                Assert.That(graph.Edges, Does.Contain(new DotEdge(Node("sandbox " + sandbox), endpoint, null)), $"{sandbox} -> {address}");
                Assert.That(graph.Edges, Does.Contain(new DotEdge(endpoint, Node("network " + network), null)), $"{address} -> {network}");
            }

            Assert.That(graph.Edges, Does.Contain(new DotEdge(Node("sandbox " + _side), Node("sandbox " + _a), "shares netns")), "the sharer's edge");
            Assert.That(graph.Edges.Count(e => e.From == Node("sandbox " + _side)), Is.EqualTo(1), "the sharer has no endpoint of its own");
            Assert.That(graph.Nodes[EndpointOf("10.95.0.11/24")], Does.Contain("0.0.0.0:8080->80/tcp"), "the port is on c's endpoint");
            Assert.That(r.StdOut, Does.Not.Contain("\nd\u00e9"), "the label's line feed is not written raw");
        });
    }

    [Test]
    public async Task Svg_is_valid_names_every_object_and_replaces_the_file_atomically()
    {
        var directory = Path.Combine(_lab.Root, "svg-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(3)));
        Directory.CreateDirectory(directory);
        var file = Path.Combine(directory, "topology.svg");
        await File.WriteAllTextAsync(file, "old");

        var r = await OkAsync("graph", "--svg", file);

        Assert.That(r.StdOut, Is.Empty, "nothing on stdout with --svg");
        var texts = SvgTexts(file);
        Assert.Multiple(() =>
        {
            Assert.That(Expected().Where(e => !texts.Contains(e)), Is.Empty, "lines missing from the SVG's text:\n" + string.Join('\n', texts));
            Assert.That(Directory.EnumerateFileSystemEntries(directory).Select(Path.GetFileName), Is.EqualTo(new[] { "topology.svg" }), "no temporary file left");
        });
    }

    [Test]
    public async Task Svg_without_dot_on_PATH_is_one_line_naming_graphviz_and_writes_nothing()
    {
        var empty = Path.Combine(_lab.Root, "nodot-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(3)));
        Directory.CreateDirectory(empty);
        var file = Path.Combine(empty, "x.svg");

        var r = await CnmRunner.RunAsync(DotnetPath(), [CnmRunner.CnmDll, .. _lab.GlobalArgs, "graph", "--svg", file], TimeSpan.FromMinutes(2), environment: new Dictionary<string, string?> { ["PATH"] = empty });

        Assert.Multiple(() =>
        {
            Assert.That(r.ExitCode, Is.EqualTo(1), r.ToString());
            Assert.That(r.StdErrLines, Has.Length.EqualTo(1), r.ToString());
            Assert.That(r.StdErr, Does.StartWith("cnm: graph --svg: Graphviz's `dot` is not installed").And.Contain("graphviz package"));
            Assert.That(Directory.EnumerateFileSystemEntries(empty), Is.Empty, "nothing written");
        });
    }

    [Test]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public async Task A_failing_dot_leaves_the_target_untouched_and_is_reported()
    {
        var directory = Path.Combine(_lab.Root, "baddot-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(3)));
        var bin = Path.Combine(directory, "bin");
        Directory.CreateDirectory(bin);
        var fake = Path.Combine(bin, "dot");
        await File.WriteAllTextAsync(fake, "#!/bin/sh\ncat >/dev/null\necho 'Error: <stdin>: syntax error in line 1' >&2\nexit 3\n");
        File.SetUnixFileMode(fake, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var file = Path.Combine(directory, "x.svg");
        await File.WriteAllTextAsync(file, "old");

        var path = bin + ":" + Environment.GetEnvironmentVariable("PATH");
        var r = await CnmRunner.CnmWithEnvironmentAsync(new Dictionary<string, string?> { ["PATH"] = path }, _lab.GlobalArgs, "graph", "--svg", file);

        Assert.Multiple(() =>
        {
            Assert.That(r.ExitCode, Is.EqualTo(1), r.ToString());
            Assert.That(r.StdErr.Trim(), Is.EqualTo($"cnm: {fake} -Tsvg failed (exit code 3): Error: <stdin>: syntax error in line 1"));
            Assert.That(File.ReadAllText(file), Is.EqualTo("old"), "the target is untouched");
            Assert.That(Directory.EnumerateFileSystemEntries(directory).Select(Path.GetFileName).Order(), Is.EqualTo(new[] { "bin", "x.svg" }), "no temporary file left");
        });
    }

    /// <summary>The text of every <c>&lt;text&gt;</c> element of an SVG (one per label line), after checking that the
    /// file is well-formed XML with an <c>svg</c> root in the SVG namespace.</summary>
    internal static List<string> SvgTexts(string file)
    {
        var doc = XDocument.Load(file);
        XNamespace svg = "http://www.w3.org/2000/svg";
        Assert.That(doc.Root?.Name, Is.EqualTo(svg + "svg"), "an SVG document");
        return [.. doc.Descendants(svg + "text").Select(t => t.Value)];
    }

    internal static string DotnetPath() =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Select(d => Path.Combine(d, "dotnet")).FirstOrDefault(File.Exists)
        ?? throw new InvalidOperationException("dotnet is not on PATH");

    private sealed record DotEdge(string From, string To, string? Label);

    /// <summary>A minimal reader of the DOT <c>cnm graph</c> writes: one statement per line, quoted ids, a
    /// <c>label</c> attribute whose <c>\n</c> separates lines.</summary>
    private sealed partial record Dot(Dictionary<string, List<string>> Nodes, List<DotEdge> Edges)
    {
        [GeneratedRegex("\"((?:[^\"\\\\]|\\\\.)*)\"")]
        private static partial Regex Quoted();

        [GeneratedRegex("label=\"((?:[^\"\\\\]|\\\\.)*)\"")]
        private static partial Regex LabelAttribute();

        public static Dot Parse(string text)
        {
            var lines = text.Split('\n');
            Assert.That(lines.First(l => !l.StartsWith("//", StringComparison.Ordinal)), Is.EqualTo("digraph \"cnm\" {"));
            Assert.That(text.TrimEnd(), Does.EndWith("}"));
            var nodes = new Dictionary<string, List<string>>(StringComparer.Ordinal);
            var edges = new List<DotEdge>();
            foreach (var line in lines.Select(l => l.Trim()).Where(l => l.StartsWith('"')))
            {
                Assert.That(line, Does.EndWith(";"), line);
                var ids = Quoted().Matches(line);
                var label = LabelAttribute().Match(line) is { Success: true } m ? Unescape(m.Groups[1].Value) : null;
                if (line[ids[0].Length..].TrimStart().StartsWith("->", StringComparison.Ordinal))
                {
                    edges.Add(new DotEdge(Unescape(ids[0].Groups[1].Value), Unescape(ids[1].Groups[1].Value), label));
                }
                else
                {
                    Assert.That(label, Is.Not.Null, line);
                    nodes.Add(Unescape(ids[0].Groups[1].Value), [.. label!.Split('\n')]);
                }
            }

            return new Dot(nodes, edges);
        }

        /// <summary>DOT's escapes as Graphviz draws them: <c>\"</c> a quote, <c>\\</c> a backslash, <c>\n</c> a line break.</summary>
        private static string Unescape(string s)
        {
            var text = new StringBuilder(s.Length);
            for (var i = 0; i < s.Length; i++)
            {
                if (s[i] == '\\' && i + 1 < s.Length)
                {
                    i++;
                    text.Append(s[i] == 'n' ? '\n' : s[i]);
                }
                else
                {
                    text.Append(s[i]);
                }
            }

            return text.ToString();
        }
    }
}

/// <summary><c>cnm demo --graph FILE</c>: the demo writes its topology as SVG before removing it.</summary>
[TestFixture]
[RequiresRoot]
public sealed class DemoGraphTests
{
    private string _root = null!;

    [SetUp]
    public void SetUp()
    {
        _root = Path.Combine(Path.GetTempPath(), "cnmdemog-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4)));
        Directory.CreateDirectory(_root);
    }

    [TearDown]
    public async Task TearDown()
    {
        // What a failed demo may have left under this test's own folder (nothing else), then the folder.
        foreach (var run in Directory.EnumerateDirectories(_root, "*", SearchOption.AllDirectories).Where(d => File.Exists(Path.Combine(d, "cnm-demo-host")) || Directory.Exists(Path.Combine(d, "netns"))).ToList())
        {
            await Cleanup.RemoveRunDirectoryAsync(run);
            if (File.Exists(Path.Combine(run, "cnm-demo-host")))
            {
                await new CnmSharp.Netlink.NetworkNamespaceManager(new CnmSharp.Netlink.NetworkNamespaceManagerOptions { RunDirectory = run, MakeRunDirectoryShared = false }).DeleteAsync("cnm-demo-host");
            }
        }

        Directory.Delete(_root, recursive: true);
    }

    [Test]
    public async Task Demo_graph_writes_the_svg_of_its_topology_before_removing_it()
    {
        var tmp = Path.Combine(_root, "tmp");
        Directory.CreateDirectory(tmp);
        var file = Path.Combine(_root, "demo-topology.svg");

        var r = await CnmRunner.CnmWithEnvironmentAsync(new Dictionary<string, string?> { ["TMPDIR"] = tmp }, [], "demo", "--graph", file);

        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        Assert.That(r.StdOut, Does.Contain("wrote the topology to " + file));
        var texts = GraphCliTests.SvgTexts(file);
        Assert.Multiple(() =>
        {
            foreach (var expected in new[] { "network demo-net", "10.89.0.0/24 gw 10.89.0.1", "sandbox demo-a", "sandbox demo-b" })
            {
                Assert.That(texts, Does.Contain(expected));
            }

            Assert.That(texts.Count(t => Regex.IsMatch(t, @"^10\.89\.0\.\d+/24$")), Is.EqualTo(2), "both endpoint addresses:\n" + string.Join('\n', texts));
            Assert.That(Directory.EnumerateFileSystemEntries(tmp), Is.Empty, "the demo still removed everything");
        });
    }
}
