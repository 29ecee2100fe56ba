using System.Text.Json;
using CnmSharp.Testing;

namespace CnmSharp.Cli.Tests;

/// <summary>
/// <c>ls --format</c> and <c>inspect -f/--format</c> through the real <c>cnm</c> process, in a private host namespace
/// with temporary state: the formats Docker users type (<c>json</c>, <c>table TEMPLATE</c>, templates with fields,
/// nested paths, <c>range</c>, <c>json</c>, <c>index</c>), and bad templates as usage errors that print nothing.
/// </summary>
[TestFixture]
[RequiresRoot]
public sealed class FormatCliTests : CliFixture
{
    private string _net = null!;
    private string _netId = null!;
    private string _plain = null!;
    private string _sandbox = null!;

    [OneTimeSetUp]
    public async Task CreateObjectsAsync()
    {
        _net = Unique("fmt");
        _plain = Unique("fmtp");
        _sandbox = Unique("fmtc");
        var create = await Cnm("network", "create", "--subnet", "10.94.0.0/24", "--gateway", "10.94.0.1", "--ip-range", "10.94.0.128/25",
            "--label", "team=web", "--label", "tier=front", "-o", "com.docker.network.bridge.name=br-" + _net[^6..], _net);
        Assert.That(create.ExitCode, Is.Zero, create.ToString());
        _netId = create.StdOut.Trim();
        var plain = await Cnm("network", "create", "--subnet", "10.95.0.0/24", _plain);
        Assert.That(plain.ExitCode, Is.Zero, plain.ToString());
        var sandbox = await Cnm("sandbox", "create", _sandbox);
        Assert.That(sandbox.ExitCode, Is.Zero, sandbox.ToString());
        var connect = await Cnm("network", "connect", "--ip", "10.94.0.130", _net, _sandbox);
        Assert.That(connect.ExitCode, Is.Zero, connect.ToString());
    }

    private static string[] Lines(ProcessResult r) => r.StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries);

    private static void AssertUsageError(ProcessResult r, string message)
    {
        Assert.That(r.ExitCode, Is.EqualTo(2), r.ToString());
        Assert.That(r.StdErrLines, Has.Length.EqualTo(1), r.ToString());
        Assert.That(r.StdErr, Does.StartWith("cnm: --format: ").And.Contain(message));
        Assert.That(r.StdErr, Does.Not.Contain("Exception").And.Not.Contain("   at "), "no stack trace");
        Assert.That(r.StdOut, Is.Empty, "nothing printed");
    }

    [Test]
    public async Task Network_ls_with_a_template_prints_one_line_per_network()
    {
        var r = await Cnm("network", "ls", "--format", "{{.Name}}");
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        var names = Lines(r);
        Assert.That(names, Does.Contain(_net).And.Contain(_plain).And.Contain("bridge").And.Contain("host").And.Contain("none"));
        Assert.That(names, Is.Ordered.Using((IComparer<string>)StringComparer.Ordinal), "in ls order");

        var fields = await Cnm("network", "ls", "--format", "{{.ID}} {{.Driver}} {{.Scope}} {{.Internal}} {{.IPv6}} {{.Labels}} {{if eq .Name \"" + _net + "\"}}mine{{end}}");
        Assert.That(fields.ExitCode, Is.Zero, fields.ToString());
        Assert.That(Lines(fields), Does.Contain($"{_netId[..12]} bridge local false false team=web,tier=front mine"));
    }

    [Test]
    public async Task Network_ls_json_prints_one_docker_shaped_object_per_line()
    {
        var r = await Cnm("network", "ls", "--format", "json");
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        var rows = Lines(r).Select(l => JsonDocument.Parse(l)).ToList();
        try
        {
            var mine = rows.Single(d => d.RootElement.GetProperty("Name").GetString() == _net).RootElement;
            Assert.Multiple(() =>
            {
                Assert.That(mine.EnumerateObject().Select(p => p.Name),
                    Is.EqualTo(new[] { "CreatedAt", "Driver", "ID", "IPv6", "Internal", "Labels", "Name", "Scope" }), "Docker's fields, in Docker's order");
                Assert.That(mine.GetProperty("ID").GetString(), Is.EqualTo(_netId[..12]));
                Assert.That(mine.GetProperty("Driver").GetString(), Is.EqualTo("bridge"));
                Assert.That(mine.GetProperty("Scope").GetString(), Is.EqualTo("local"));
                Assert.That(mine.GetProperty("Internal").GetString(), Is.EqualTo("false"));
                Assert.That(mine.GetProperty("IPv6").GetString(), Is.EqualTo("false"));
                Assert.That(mine.GetProperty("Labels").GetString(), Is.EqualTo("team=web,tier=front"));
                Assert.That(mine.GetProperty("CreatedAt").GetString(), Does.Match(@"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)? \+0000 UTC$"));
            });
            Assert.That(rows.Select(d => d.RootElement.GetProperty("Name").GetString()), Does.Contain("bridge").And.Contain(_plain));
        }
        finally
        {
            rows.ForEach(d => d.Dispose());
        }
    }

    [Test]
    public async Task Network_ls_table_template_has_a_header_from_the_field_names_and_aligned_columns()
    {
        // As typed in a shell: the two characters \t between the fields.
        var r = await Cnm("network", "ls", "--format", @"table {{.ID}}\t{{.Name}}\t{{.Driver}}");
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        var lines = Lines(r);
        Assert.That(lines[0], Does.Match(@"^NETWORK ID\s+NAME\s+DRIVER$"));
        var row = lines.Single(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1] == _net);
        Assert.That(row.Split(' ', StringSplitOptions.RemoveEmptyEntries), Is.EqualTo(new[] { _netId[..12], _net, "bridge" }));
        Assert.Multiple(() =>
        {
            Assert.That(row.IndexOf(_net, StringComparison.Ordinal), Is.EqualTo(lines[0].IndexOf("NAME", StringComparison.Ordinal)), "columns aligned");
            Assert.That(row.IndexOf(" bridge", StringComparison.Ordinal) + 1, Is.EqualTo(lines[0].IndexOf("DRIVER", StringComparison.Ordinal)), "columns aligned");
            Assert.That(r.StdOut, Does.Not.Contain("\t"));
        });

        var labels = await Cnm("network", "ls", "--format", @"table {{.Name}}\t{{.Labels}}\t{{upper .Driver}}");
        Assert.That(labels.ExitCode, Is.Zero, labels.ToString());
        Assert.That(Lines(labels)[0], Does.Match(@"^NAME\s+LABELS\s+DRIVER$"), "functions keep the header's name");
        Assert.That(Lines(labels), Has.Some.Match($@"^{_net}\s+team=web,tier=front\s+BRIDGE$"));

        var table = await Cnm("network", "ls", "--format", "table");
        var plain = await Cnm("network", "ls");
        Assert.That(table.StdOut, Is.EqualTo(plain.StdOut), "--format table is the default table");
    }

    [Test]
    public async Task Network_inspect_with_templates()
    {
        var driver = await Cnm("network", "inspect", "-f", "{{.Driver}}", _net);
        Assert.That(driver.ExitCode, Is.Zero, driver.ToString());
        Assert.That(driver.StdOut, Is.EqualTo("bridge\n"));

        var subnets = await Cnm("network", "inspect", "--format", "{{range .IPAM.Config}}{{.Subnet}} {{.Gateway}} {{.IPRange}}|{{end}}", _net, _plain);
        Assert.That(subnets.ExitCode, Is.Zero, subnets.ToString());
        Assert.That(subnets.StdOut, Is.EqualTo("10.94.0.0/24 10.94.0.1 10.94.0.128/25|\n10.95.0.0/24 10.95.0.1 |\n"),
            "one line per network; IPRange, absent from the JSON when unset, is empty");

        var ipam = await Cnm("network", "inspect", "-f", "{{json .IPAM}}", _net);
        Assert.That(ipam.ExitCode, Is.Zero, ipam.ToString());
        Assert.That(Lines(ipam), Has.Length.EqualTo(1));
        using (var doc = JsonDocument.Parse(ipam.StdOut))
        {
            Assert.That(doc.RootElement.GetProperty("Driver").GetString(), Is.EqualTo("default"));
            Assert.That(doc.RootElement.GetProperty("Config")[0].GetProperty("Subnet").GetString(), Is.EqualTo("10.94.0.0/24"));
        }

        var more = await Cnm("network", "inspect", "-f",
            "{{.Name}} {{index .Labels \"team\"}} {{index .Options \"com.docker.network.bridge.name\"}} {{range $c, $e := .Containers}}{{$c}}={{$e.IPv4Address}}{{end}} {{len .IPAM.Config}} {{.ConfigFrom.Network}}.",
            _net);
        Assert.That(more.ExitCode, Is.Zero, more.ToString());
        Assert.That(more.StdOut, Is.EqualTo($"{_net} web br-{_net[^6..]} {_sandbox}=10.94.0.130/24 1 .\n"));
    }

    [Test]
    public async Task Network_inspect_json_is_the_default_document_on_one_line()
    {
        var r = await Cnm("network", "inspect", "--format", "json", _net, _plain);
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        Assert.That(Lines(r), Has.Length.EqualTo(1));
        var plain = await Cnm("network", "inspect", _net, _plain);
        using var compact = JsonDocument.Parse(r.StdOut);
        using var indented = JsonDocument.Parse(plain.StdOut);
        Assert.That(compact.RootElement.GetArrayLength(), Is.EqualTo(2));
        Assert.That(compact.RootElement[0].GetProperty("Name").GetString(), Is.EqualTo(_net));
        Assert.That(JsonElement.DeepEquals(compact.RootElement, indented.RootElement), Is.True, "the same document");
    }

    [Test]
    public async Task Sandbox_ls_and_inspect_take_the_same_formats()
    {
        var ls = await Cnm("sandbox", "ls", "--format", "{{.Container}} {{.Endpoints}} {{.NetworkMode}}");
        Assert.That(ls.ExitCode, Is.Zero, ls.ToString());
        Assert.That(Lines(ls), Does.Contain($"{_sandbox} {_net}:{_sandbox} own"));

        var table = await Cnm("sandbox", "ls", "--format", @"table {{.ID}}\t{{.Container}}");
        Assert.That(table.ExitCode, Is.Zero, table.ToString());
        Assert.That(Lines(table)[0], Does.Match(@"^SANDBOX ID\s+CONTAINER$"));

        var inspect = await Cnm("sandbox", "inspect", "-f", "{{.ContainerId}} {{range .Endpoints}}{{.Network}} {{.IPv4Address}}{{end}}", _sandbox);
        Assert.That(inspect.ExitCode, Is.Zero, inspect.ToString());
        Assert.That(inspect.StdOut, Is.EqualTo($"{_sandbox} {_net} 10.94.0.130/24\n"));

        var json = await Cnm("sandbox", "inspect", "--format", "json", _sandbox);
        Assert.That(json.ExitCode, Is.Zero, json.ToString());
        using var doc = JsonDocument.Parse(json.StdOut);
        Assert.That(doc.RootElement[0].GetProperty("ContainerId").GetString(), Is.EqualTo(_sandbox));
    }

    [TestCase("network", "inspect", "{{.Name", "template parsing error: 1:1: unclosed action")]
    [TestCase("network", "inspect", "{{printf \"%s\" .Name}}", "function \"printf\" not defined")]
    [TestCase("network", "inspect", "{{.Nope}}", "map has no entry for key \"Nope\"")]
    [TestCase("network", "inspect", "{{range .Name}}{{end}}", "range can't iterate over")]
    [TestCase("network", "ls", "{{if .Name}}", "missing {{end}} for {{if}}")]
    [TestCase("network", "ls", "{{.Nope}}", "map has no entry for key \"Nope\"")]
    [TestCase("network", "ls", "table {{.Name}\\t{{.Driver}}", "unexpected \"}\" in action")]
    [TestCase("sandbox", "inspect", "{{.Endpoints.Name}}", "can't evaluate field Name in type list")]
    [TestCase("sandbox", "ls", "{{json}}", "wrong number of args for json")]
    public async Task A_bad_template_is_a_usage_error_and_prints_nothing(string noun, string verb, string template, string message)
    {
        string[] args = verb == "inspect"
            ? [noun, verb, "--format", template, noun == "network" ? _net : _sandbox]
            : [noun, verb, "--format", template];
        AssertUsageError(await Cnm(args), message);
    }

    [Test]
    public async Task Ls_has_no_short_f_for_format()
    {
        // As in Docker, where -f on ls is --filter: cnm has no --filter, so -f is unknown.
        var r = await Cnm("network", "ls", "-f", "{{.Name}}");
        Assert.That(r.ExitCode, Is.EqualTo(2), r.ToString());
    }
}
