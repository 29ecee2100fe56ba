using System.Text.Json;
using CnmSharp.Cli.Formatting;

namespace CnmSharp.Cli.Tests;

/// <summary>The <c>--format</c> template engine: every construct it supports, Go's output for each, and the errors of
/// malformed or unsupported templates.</summary>
[TestFixture]
public sealed class GoTemplateTests
{
    private const string Network = """
        {
          "Name": "web",
          "Id": "654f2c3ce2a574a452e3783c6eeb4c6ca431d114060761afee91523aa56d12c3",
          "Driver": "bridge",
          "EnableIPv6": false,
          "Internal": true,
          "Priority": 0,
          "Count": 3,
          "IPAM": {
            "Driver": "default",
            "Options": {},
            "Config": [
              { "Subnet": "10.42.0.0/24", "Gateway": "10.42.0.1", "IPRange": null },
              { "Subnet": "fd00:42::/64", "Gateway": null, "IPRange": null }
            ]
          },
          "Containers": {
            "c2": { "Name": "c2", "IPv4Address": "10.42.0.3/24" },
            "c1": { "Name": "c1", "IPv4Address": "10.42.0.2/24" }
          },
          "Options": { "com.docker.network.bridge.name": "br-web" },
          "Labels": { "team": "web", "tier": "front" },
          "Tags": ["a", "b", "c"],
          "SharedFrom": null,
          "Empty": ""
        }
        """;

    private static string Run(string template, string json = Network, TemplateOptions? options = null)
    {
        using var document = JsonDocument.Parse(json);
        return GoTemplate.Parse(template).Execute(document.RootElement, options);
    }

    private static string ParseError(string template) =>
        Assert.Throws<TemplateException>(() => GoTemplate.Parse(template))!.Message;

    private static string ExecError(string template) =>
        Assert.Throws<TemplateException>(() => Run(template))!.Message;

    [TestCase("plain text", "plain text")]
    [TestCase("", "")]
    [TestCase("{{.Name}}", "web")]
    [TestCase("{{ .Name }}", "web")]
    [TestCase("{{.Driver}}/{{.Name}}", "bridge/web")]
    [TestCase("{{.IPAM.Driver}}", "default")]
    [TestCase("{{.Internal}} {{.EnableIPv6}} {{.Count}}", "true false 3")]
    [TestCase("{{.SharedFrom}}|{{.Empty}}|", "||")]
    [TestCase("{{.Tags}}", "[a b c]")]
    [TestCase("{{.Labels}}", "map[team:web tier:front]")]
    [TestCase("{{.IPAM.Options}}", "map[]")]
    [TestCase("{{.IPAM.Config}}", "[map[Gateway:10.42.0.1 IPRange: Subnet:10.42.0.0/24] map[Gateway: IPRange: Subnet:fd00:42::/64]]")]
    [TestCase("{{$.Name}}", "web")]
    [TestCase("{{.IPAM}}", "map[Config:[map[Gateway:10.42.0.1 IPRange: Subnet:10.42.0.0/24] map[Gateway: IPRange: Subnet:fd00:42::/64]] Driver:default Options:map[]]")]
    [TestCase("{{.Containers.c1}}", "map[IPv4Address:10.42.0.2/24 Name:c1]")]
    public void Fields_and_nested_paths_print_as_go_prints_them(string template, string expected) =>
        Assert.That(Run(template), Is.EqualTo(expected));

    [Test]
    public void Json_writes_compact_json_without_html_escaping()
    {
        Assert.Multiple(() =>
        {
            Assert.That(Run("{{json .IPAM.Config}}"), Is.EqualTo("""[{"Subnet":"10.42.0.0/24","Gateway":"10.42.0.1","IPRange":null},{"Subnet":"fd00:42::/64","Gateway":null,"IPRange":null}]"""));
            Assert.That(Run("{{json .Name}}"), Is.EqualTo("\"web\""));
            Assert.That(Run("{{json .Count}} {{json .Internal}} {{json .SharedFrom}}"), Is.EqualTo("3 true null"));
            Assert.That(Run("{{json .X}}", """{"X": "a<b>&c+d é"}"""), Is.EqualTo("\"a<b>&c+d é\""));
            Assert.That(Run("{{json (split \"a,b\" \",\")}}"), Is.EqualTo("""["a","b"]"""));
            Assert.That(Run("{{json \"lit\"}} {{json 7}} {{json false}} {{json nil}}"), Is.EqualTo("\"lit\" 7 false null"));
            Assert.That(Run("{{json .}}", """{"B":1,"A":[true]}"""), Is.EqualTo("""{"B":1,"A":[true]}"""));
        });
    }

    [Test]
    public void Range_over_arrays_maps_and_with_variables()
    {
        Assert.Multiple(() =>
        {
            Assert.That(Run("{{range .IPAM.Config}}{{.Subnet}} {{end}}"), Is.EqualTo("10.42.0.0/24 fd00:42::/64 "));
            Assert.That(Run("{{range .Containers}}{{.Name}}={{.IPv4Address}};{{end}}"), Is.EqualTo("c1=10.42.0.2/24;c2=10.42.0.3/24;"), "maps in key order");
            Assert.That(Run("{{range $k, $v := .Labels}}{{$k}}:{{$v}},{{end}}"), Is.EqualTo("team:web,tier:front,"));
            Assert.That(Run("{{range $i, $t := .Tags}}{{$i}}{{$t}}{{end}}"), Is.EqualTo("0a1b2c"));
            Assert.That(Run("{{range $t := .Tags}}{{$t}}{{end}}"), Is.EqualTo("abc"));
            Assert.That(Run("{{range .Tags}}{{$.Name}}{{end}}"), Is.EqualTo("webwebweb"), "$ is the root inside range");
            Assert.That(Run("{{range .IPAM.Options}}x{{else}}none{{end}}"), Is.EqualTo("none"));
            Assert.That(Run("{{range .SharedFrom}}x{{else}}nil{{end}}"), Is.EqualTo("nil"));
            Assert.That(Run("{{range .Tags}}{{$x := .}}[{{$x}}]{{end}}"), Is.EqualTo("[a][b][c]"));
            Assert.That(Run("{{range .IPAM.Config}}{{range $.Tags}}{{.}}{{end}}{{end}}"), Is.EqualTo("abcabc"), "nested range");
        });
    }

    [Test]
    public void If_else_if_else_and_with()
    {
        Assert.Multiple(() =>
        {
            Assert.That(Run("{{if .Internal}}internal{{end}}"), Is.EqualTo("internal"));
            Assert.That(Run("{{if .EnableIPv6}}v6{{else}}v4{{end}}"), Is.EqualTo("v4"));
            Assert.That(Run("{{if .EnableIPv6}}a{{else if .Internal}}b{{else}}c{{end}}"), Is.EqualTo("b"));
            Assert.That(Run("{{if .EnableIPv6}}a{{else if .Empty}}b{{else}}c{{end}}"), Is.EqualTo("c"));
            Assert.That(Run("{{if .Priority}}a{{else}}zero{{end}} {{if .Count}}three{{end}}"), Is.EqualTo("zero three"));
            Assert.That(Run("{{if .Tags}}t{{end}}{{if .IPAM.Options}}o{{end}}{{if .SharedFrom}}s{{end}}{{if .Empty}}e{{end}}"), Is.EqualTo("t"));
            Assert.That(Run("{{with .IPAM}}{{.Driver}}{{end}}"), Is.EqualTo("default"));
            Assert.That(Run("{{with .SharedFrom}}{{.X}}{{else}}own{{end}}"), Is.EqualTo("own"));
            Assert.That(Run("{{with $d := .Driver}}{{$d}}{{end}}"), Is.EqualTo("bridge"));
            Assert.That(Run("{{if eq .Driver \"bridge\" \"macvlan\"}}y{{end}}{{if ne .Driver \"bridge\"}}n{{end}}"), Is.EqualTo("y"));
            Assert.That(Run("{{if and .Internal (not .EnableIPv6)}}y{{end}}{{if or .EnableIPv6 .Empty}}n{{end}}"), Is.EqualTo("y"));
            Assert.That(Run("{{and .Name .Driver}} {{or .Empty .Driver}} {{and .Empty .Driver}}|"), Is.EqualTo("bridge bridge |"));
            Assert.That(Run("{{if eq .Count 3}}3{{end}}{{if eq .Internal true}}t{{end}}{{if eq .SharedFrom nil}}n{{end}}"), Is.EqualTo("3tn"));
        });
    }

    [Test]
    public void Functions_index_len_join_split_case_pad_truncate_print()
    {
        Assert.Multiple(() =>
        {
            Assert.That(Run("{{index .Options \"com.docker.network.bridge.name\"}}"), Is.EqualTo("br-web"));
            Assert.That(Run("{{index .Labels \"nosuch\"}}|"), Is.EqualTo("|"), "a missing key is the zero value");
            Assert.That(Run("{{index .Tags 1}} {{(index .IPAM.Config 0).Gateway}} {{index .IPAM.Config 1 \"Subnet\"}}"), Is.EqualTo("b 10.42.0.1 fd00:42::/64"));
            Assert.That(Run("{{len .Tags}} {{len .Labels}} {{len .Name}} {{len (split \"a:b:c\" \":\")}}"), Is.EqualTo("3 2 3 3"));
            Assert.That(Run("{{join .Tags \", \"}}|{{join .Labels \"+\"}}|{{join .SharedFrom \",\"}}"), Is.EqualTo("a, b, c|front+web|"), "map values sorted, as Docker joins them");
            Assert.That(Run("{{split \"10.42.0.2/24\" \"/\"}} {{index (split \"10.42.0.2/24\" \"/\") 0}}"), Is.EqualTo("[10.42.0.2 24] 10.42.0.2"));
            Assert.That(Run("{{upper .Name}} {{lower \"AbC\"}} {{title \"hello big-world\"}}"), Is.EqualTo("WEB abc Hello Big-World"));
            Assert.That(Run("{{.Name | upper}} {{.Tags | len}} {{split \"x,y\" \",\" | len}}"), Is.EqualTo("WEB 3 2"), "pipelines pass the value as the last argument");
            Assert.That(Run("[{{pad .Name 1 2}}][{{pad .Empty 1 2}}] {{truncate .Id 12}} {{truncate .Name 10}}"), Is.EqualTo("[ web  ][] 654f2c3ce2a5 web"));
            Assert.That(Run("{{print .Name .Driver}} {{print 1 2}} {{println .Name 1}}."), Is.EqualTo("webbridge 1 2 web 1\n."));
            Assert.That(Run("{{range .Tags}}{{println .}}{{end}}"), Is.EqualTo("a\nb\nc\n"));
            Assert.That(Run("{{`raw\\n`}} {{\"q\\\"\\t\\x41\\u00e9\"}}"), Is.EqualTo("raw\\n q\"\tAé"));
            Assert.That(Run("{{-5}} {{+7}}"), Is.EqualTo("-5 7"));
        });
    }

    [Test]
    public void Trim_markers_and_comments()
    {
        Assert.Multiple(() =>
        {
            Assert.That(Run("a  {{- .Name -}}  \n b"), Is.EqualTo("awebb"));
            Assert.That(Run("{{range .Tags -}}\n  {{.}}\n{{- end}}"), Is.EqualTo("abc"));
            Assert.That(Run("x{{/* a comment {{.Nope}} */}}y"), Is.EqualTo("xy"));
            Assert.That(Run("x {{- /* trimmed */ -}} y"), Is.EqualTo("xy"));
        });
    }

    [Test]
    public void Variables_declared_in_an_action()
    {
        Assert.Multiple(() =>
        {
            Assert.That(Run("{{$n := .Name}}{{$d := .IPAM}}{{$n}}:{{$d.Driver}}"), Is.EqualTo("web:default"));
            Assert.That(Run("{{$c := index .IPAM.Config 0}}{{$c.Subnet}}"), Is.EqualTo("10.42.0.0/24"));
        });
    }

    [Test]
    public void Header_mode_keeps_header_names_through_functions()
    {
        const string headers = """{"Name": "NAME", "Labels": "LABELS"}""";
        var options = new TemplateOptions { HeaderMode = true };
        Assert.Multiple(() =>
        {
            Assert.That(Run("{{.Name}}\t{{json .Labels}}\t{{lower .Name}}\t{{join .Labels \",\"}}\t{{truncate .Name 2}}", headers, options),
                Is.EqualTo("NAME\tLABELS\tNAME\tLABELS\tNAME"));
            Assert.That(Run("{{lower .Name}}", headers), Is.EqualTo("name"), "not in header mode: the function applies");
        });
    }

    [Test]
    public void Data_strings_are_escaped_but_template_text_is_not()
    {
        var options = new TemplateOptions { EscapeData = CliText.Escape };
        Assert.Multiple(() =>
        {
            Assert.That(Run("{{.X}}\t{{println .X}}", """{"X": "a\tb\nc"}""", options), Is.EqualTo("a\\tb\\nc\ta\\tb\\nc\n"));
            Assert.That(Run("{{json .X}}", """{"X": "a\tb"}""", options), Is.EqualTo("\"a\\tb\""), "json escapes by itself");
        });
    }

    [TestCase("{{.Name", "1:1: unclosed action")]
    [TestCase("a\n{{.Name}", "2:1: unclosed action")]
    [TestCase("{{}}", "missing value for command")]
    [TestCase("{{if .Internal}}x", "missing {{end}} for {{if}}")]
    [TestCase("{{range .Tags}}x", "missing {{end}} for {{range}}")]
    [TestCase("{{with .IPAM}}x{{else}}y", "missing {{end}} for {{with}}")]
    [TestCase("x{{end}}", "1:2: unexpected {{end}}")]
    [TestCase("{{else}}", "unexpected {{else}}")]
    [TestCase("{{if}}x{{end}}", "missing value for if")]
    [TestCase("{{range}}x{{end}}", "missing value for range")]
    [TestCase("{{end .Name}}", "unexpected {{end}}")]
    [TestCase("{{if .A}}{{end .B}}", "unexpected tokens after end")]
    [TestCase("{{printf \"%s\" .Name}}", "function \"printf\" not defined")]
    [TestCase("{{nosuch .Name}}", "function \"nosuch\" not defined")]
    [TestCase("{{.Name .Driver}}", "can't give argument to non-function \".Name\"")]
    [TestCase("{{\"abc}}", "unterminated quoted string")]
    [TestCase("{{`abc}}", "unterminated raw quoted string")]
    [TestCase("{{\"\\q\"}}", "unknown escape \\q")]
    [TestCase("{{'a'}}", "character constants are not supported")]
    [TestCase("{{1.5}}", "unsupported number \"1.5\"")]
    [TestCase("{{0x1F}}", "unsupported number \"0x1F\"")]
    [TestCase("{{.Name}", "unclosed action")]
    [TestCase("{{.Name | }}", "missing value for command")]
    [TestCase("{{| .Name}}", "missing value for command")]
    [TestCase("{{(.Name}}", "unclosed left paren")]
    [TestCase("{{.Name)}}", "unexpected right paren")]
    [TestCase("{{()}}", "missing value for parenthesized pipeline")]
    [TestCase("{{$x}}", "undefined variable \"$x\"")]
    [TestCase("{{if .A}}{{$x := 1}}{{end}}{{$x}}", "undefined variable \"$x\"")]
    [TestCase("{{$x = 1}}", "variable assignment with = is not supported")]
    [TestCase("{{$a, $b := .Tags}}", "wrong number of variables in command declaration")]
    [TestCase("{{range $a, $b, $c := .Tags}}{{end}}", "wrong number of variables in range declaration")]
    [TestCase("{{range $a, := .Tags}}{{end}}", "wrong number of variables in range declaration")]
    [TestCase("{{template \"x\"}}", "{{template}} is not supported")]
    [TestCase("{{define \"x\"}}{{end}}", "{{define}} is not supported")]
    [TestCase("{{range .Tags}}{{break}}{{end}}", "{{break}} is not supported")]
    [TestCase("{{/* open", "unclosed comment")]
    [TestCase("{{/* x */ .Name}}", "comment ends before closing delimiter")]
    [TestCase("{{.Name ! }}", "unexpected \"!\" in action")]
    [TestCase("{{. .Name}}", "can't give argument to non-function")]
    [TestCase("{{..Name}}", "unexpected . after term")]
    [TestCase("{{if .A}}x{{else .B}}y{{end}}", "unexpected tokens after else")]
    [TestCase("{{len if}}", "unexpected \"if\" in operand")]
    [TestCase("{{.A,}}", "unexpected \",\" in operand")]
    public void Malformed_or_unsupported_templates_are_parse_errors(string template, string message)
    {
        var error = ParseError(template);
        Assert.That(error, Does.StartWith("template parsing error: ").And.Contain(message));
        Assert.That(error, Does.Not.Contain("\n"), "one line");
    }

    [TestCase("{{.Nope}}", "in <.Nope>: map has no entry for key \"Nope\"")]
    [TestCase("{{.IPAM.Nope}}", "in <.IPAM.Nope>: map has no entry for key \"Nope\"")]
    [TestCase("{{.Name.First}}", "can't evaluate field First in type string")]
    [TestCase("{{.SharedFrom.SandboxID}}", "nil value evaluating field SandboxID")]
    [TestCase("{{range .Name}}{{end}}", "range can't iterate over web")]
    [TestCase("{{range .Count}}{{end}}", "range can't iterate over 3")]
    [TestCase("{{index .Tags 3}}", "error calling index: index out of range: 3")]
    [TestCase("{{index .Tags \"a\"}}", "expected integer; got string")]
    [TestCase("{{index .Name 0}}", "can't index item of type string")]
    [TestCase("{{index .SharedFrom \"a\"}}", "index of untyped nil")]
    [TestCase("{{index .Labels 1}}", "cannot index a map with int")]
    [TestCase("{{len .Count}}", "len of type number")]
    [TestCase("{{join .Name \",\"}}", "expected slice, got string")]
    [TestCase("{{upper .Tags}}", "expected string; got list")]
    [TestCase("{{upper}}", "wrong number of args for upper: want 1 got 0")]
    [TestCase("{{json .Name .Driver}}", "wrong number of args for json: want 1 got 2")]
    [TestCase("{{eq .Name 1}}", "incompatible types for comparison")]
    [TestCase("{{eq .Tags .Tags}}", "non-comparable type list")]
    [TestCase("{{eq .Name}}", "missing argument for comparison")]
    [TestCase("{{.Name | .Driver}}", "can't give argument to non-function .Driver")]
    public void Templates_that_fail_on_the_data_are_execution_errors(string template, string message)
    {
        var error = ExecError(template);
        Assert.That(error, Does.StartWith("template execution error in <").And.Contain(message));
    }

    [Test]
    public void A_template_runs_again_on_other_data_with_fresh_variables()
    {
        var template = GoTemplate.Parse("{{$n := .Name}}{{range .Tags}}{{$n}}{{.}}{{end}}");
        using var first = JsonDocument.Parse("""{"Name": "a", "Tags": ["1", "2"]}""");
        using var second = JsonDocument.Parse("""{"Name": "b", "Tags": []}""");
        Assert.Multiple(() =>
        {
            Assert.That(template.Execute(first.RootElement), Is.EqualTo("a1a2"));
            Assert.That(template.Execute(second.RootElement), Is.EqualTo(""));
            Assert.That(template.Execute(first.RootElement), Is.EqualTo("a1a2"));
        });
    }
}
