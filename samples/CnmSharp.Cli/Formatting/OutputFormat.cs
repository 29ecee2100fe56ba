using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;

namespace CnmSharp.Cli.Formatting;

/// <summary>The rows an <c>ls</c> command can format: one JSON object of string fields per row (Docker's <c>ls</c>
/// field names), and the header of each field for tables.</summary>
internal sealed record ListRows(IReadOnlyList<JsonElement> Rows, JsonElement Headers)
{
    /// <summary>Rows from field/value pairs; each row's fields are written in ordinal order, as Docker's
    /// <c>{{json .}}</c> writes them.</summary>
    public static ListRows Of(IReadOnlyDictionary<string, string> headers, IEnumerable<IReadOnlyDictionary<string, string>> rows) =>
        new([.. rows.Select(ToElement)], ToElement(headers));

    private static JsonElement ToElement(IReadOnlyDictionary<string, string> fields)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            foreach (var (key, value) in fields.OrderBy(kv => kv.Key, StringComparer.Ordinal))
            {
                writer.WriteString(key, value);
            }

            writer.WriteEndObject();
        }

        using var document = JsonDocument.Parse(buffer.ToArray());
        return document.RootElement.Clone();
    }
}

/// <summary>
/// <c>ls --format</c>, as <c>docker network ls --format</c> takes it: <c>table</c> (the default table),
/// <c>table TEMPLATE</c> (a header row made from the field names, columns aligned), <c>json</c> (one JSON object per
/// line), or a template (one line per row). In <c>table</c> and template formats the two characters <c>\t</c> and
/// <c>\n</c> stand for a tab (a column break in tables) and a newline, as in Docker.
/// </summary>
internal sealed class ListFormat
{
    private const string TablePrefix = "table";

    private readonly GoTemplate _template;
    private readonly bool _table;

    private ListFormat(GoTemplate template, bool table) => (_template, _table) = (template, table);

    /// <summary>The format; null for the command's default table (no value, an empty one, or <c>table</c>). A template
    /// that does not parse is a <see cref="UsageException"/>.</summary>
    public static ListFormat? Parse(string? format)
    {
        if (string.IsNullOrEmpty(format) || format == TablePrefix)
        {
            return null;
        }

        if (format == "json")
        {
            return new ListFormat(GoTemplate.Parse("{{json .}}"), table: false);
        }

        var table = format.StartsWith(TablePrefix, StringComparison.Ordinal);
        var text = (table ? format[TablePrefix.Length..] : format).Trim(' ')
            .Replace(@"\t", "\t", StringComparison.Ordinal)
            .Replace(@"\n", "\n", StringComparison.Ordinal);
        try
        {
            return new ListFormat(GoTemplate.Parse(text), table);
        }
        catch (TemplateException ex)
        {
            throw new UsageException("--format: " + ex.Message);
        }
    }

    /// <summary>The whole output (each row followed by a newline; a table's header first). A template that fails on
    /// the rows is a <see cref="UsageException"/>, and then nothing is printed.</summary>
    public string Render(ListRows rows)
    {
        try
        {
            var options = new TemplateOptions { EscapeData = CliText.Escape };
            var lines = new StringBuilder();
            if (_table)
            {
                lines.Append(_template.Execute(rows.Headers, options with { HeaderMode = true })).Append('\n');
            }

            foreach (var row in rows.Rows)
            {
                lines.Append(_template.Execute(row, options)).Append('\n');
            }

            return _table ? Align(lines.ToString()) : lines.ToString();
        }
        catch (TemplateException ex)
        {
            throw new UsageException("--format: " + ex.Message);
        }
    }

    /// <summary>Tab-separated cells aligned in columns as the default tables are: each cell but a line's last padded
    /// to its column's width, three spaces between columns, trailing spaces dropped.</summary>
    internal static string Align(string text)
    {
        var lines = text.Split('\n');
        if (lines.Length > 0 && lines[^1].Length == 0)
        {
            lines = lines[..^1];
        }

        var cells = lines.Select(l => l.Split('\t')).ToList();
        var widths = new List<int>();
        foreach (var row in cells)
        {
            for (var i = 0; i < row.Length - 1; i++)
            {
                if (i == widths.Count)
                {
                    widths.Add(0);
                }

                widths[i] = Math.Max(widths[i], row[i].Length);
            }
        }

        var output = new StringBuilder();
        foreach (var row in cells)
        {
            output.Append(string.Join("   ", row.Select((c, i) => i == row.Length - 1 ? c : c.PadRight(widths[i]))).TrimEnd()).Append('\n');
        }

        return output.ToString();
    }
}

/// <summary>
/// <c>inspect -f/--format</c>, as <c>docker inspect --format</c> takes it: <c>json</c> (the same JSON array as the
/// default output, on one line) or a template run on each object in turn, each result followed by a newline. The
/// template sees the same document the default output prints, property names and all, except that the properties
/// it leaves out when they are null (<c>IPAM.Config[].Gateway</c>, <c>IPRange</c>, <c>AuxiliaryAddresses</c>) are
/// there as null (printed empty), as Docker's typed fields are there when empty.
/// </summary>
internal sealed class InspectFormat
{
    private static readonly JsonSerializerOptions KeepNulls = new(CliJsonContext.Default.Options)
    {
        TypeInfoResolver = CliJsonContext.Default.WithAddedModifier(static info =>
        {
            foreach (var property in info.Properties)
            {
                property.ShouldSerialize = null;
            }
        }),
    };

    private readonly GoTemplate? _template;

    private InspectFormat(GoTemplate? template) => _template = template;

    /// <summary>The format; null for the default (indented JSON): no value or an empty one. A template that does not
    /// parse is a <see cref="UsageException"/>.</summary>
    public static InspectFormat? Parse(string? format)
    {
        if (string.IsNullOrEmpty(format))
        {
            return null;
        }

        if (format == "json")
        {
            return new InspectFormat(null);
        }

        try
        {
            return new InspectFormat(GoTemplate.Parse(format));
        }
        catch (TemplateException ex)
        {
            throw new UsageException("--format: " + ex.Message);
        }
    }

    /// <summary><c>network inspect</c>'s output for <paramref name="networks"/>.</summary>
    public string Render(IReadOnlyList<Network> networks) =>
        _template is null
            ? Compact(InspectJson.Network(networks))
            : Run(JsonSerializer.SerializeToElement(networks.Select(InspectJson.ToModel).ToList(), TypeInfo<List<NetworkInspect>>()));

    /// <summary><c>sandbox inspect</c>'s output for <paramref name="sandboxes"/> (<paramref name="all"/>: every sandbox).</summary>
    public string Render(IReadOnlyList<Sandbox> sandboxes, IReadOnlyList<Sandbox> all)
    {
        var json = InspectJson.Sandbox(sandboxes, all);
        if (_template is null)
        {
            return Compact(json);
        }

        using var document = JsonDocument.Parse(json);
        return Run(document.RootElement);
    }

    /// <summary>The template on each element of <paramref name="array"/>.</summary>
    internal string Run(JsonElement array)
    {
        try
        {
            var output = new StringBuilder();
            foreach (var element in array.EnumerateArray())
            {
                output.Append(_template!.Execute(element, new TemplateOptions { EscapeData = CliText.Escape })).Append('\n');
            }

            return output.ToString();
        }
        catch (TemplateException ex)
        {
            throw new UsageException("--format: " + ex.Message);
        }
    }

    private static JsonTypeInfo<T> TypeInfo<T>() => (JsonTypeInfo<T>)KeepNulls.GetTypeInfo(typeof(T));

    private static string Compact(string json)
    {
        using var document = JsonDocument.Parse(json);
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            document.RootElement.WriteTo(writer);
        }

        return Encoding.UTF8.GetString(buffer.ToArray()) + "\n";
    }
}

/// <summary>The fields of <c>network ls</c> and <c>sandbox ls</c> rows for <c>--format</c>.</summary>
internal static class ListFields
{
    private static readonly Dictionary<string, string> NetworkHeaders = new(StringComparer.Ordinal)
    {
        ["ID"] = "NETWORK ID",
        ["Name"] = "NAME",
        ["Driver"] = "DRIVER",
        ["Scope"] = "SCOPE",
        ["IPv6"] = "IPV6",
        ["Internal"] = "INTERNAL",
        ["Labels"] = "LABELS",
        ["CreatedAt"] = "CREATED AT",
    };

    private static readonly Dictionary<string, string> SandboxHeaders = new(StringComparer.Ordinal)
    {
        ["ID"] = "SANDBOX ID",
        ["Container"] = "CONTAINER",
        ["Key"] = "KEY",
        ["Endpoints"] = "ENDPOINTS",
        ["NetworkMode"] = "NETWORK MODE",
    };

    /// <summary>Docker's <c>network ls</c> fields: ID (12 characters; whole with <paramref name="trunc"/> false, as
    /// <c>--no-trunc</c> asks), Name, Driver, Scope, IPv6 and Internal
    /// (<c>true</c>/<c>false</c>), Labels (<c>k=v</c> sorted, comma-separated), CreatedAt (as Go prints a time).</summary>
    public static ListRows Networks(IEnumerable<Network> networks, bool trunc = true) => ListRows.Of(NetworkHeaders, networks.Select(n => new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["ID"] = trunc ? NetworkCommands.Short(n.Id) : n.Id,
        ["Name"] = n.Name,
        ["Driver"] = n.Driver,
        ["Scope"] = n.Scope,
        ["IPv6"] = n.EnableIPv6 ? "true" : "false",
        ["Internal"] = n.Internal ? "true" : "false",
        ["Labels"] = string.Join(',', n.Labels.Select(kv => kv.Key + "=" + kv.Value).Order(StringComparer.Ordinal)),
        ["CreatedAt"] = GoTime(n.Created),
    }));

    /// <summary>The <c>sandbox ls</c> columns: ID (12 characters; whole with <paramref name="trunc"/> false), Container, Key, Endpoints (<c>network:endpoint</c>,
    /// comma-separated, <c>-</c> for none), NetworkMode.</summary>
    public static ListRows Sandboxes(IEnumerable<Sandbox> sandboxes, bool trunc = true) => ListRows.Of(SandboxHeaders, sandboxes.Select(s => new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["ID"] = trunc ? NetworkCommands.Short(s.Id) : s.Id,
        ["Container"] = s.ContainerId,
        ["Key"] = s.Key,
        ["Endpoints"] = s.Endpoints.Count == 0 ? "-" : string.Join(',', s.Endpoints.Select(e => $"{e.Network.Name}:{e.Name}")),
        ["NetworkMode"] = InspectJson.NetworkMode(s),
    }));

    /// <summary>A time as Go's <c>time.Time.String()</c> prints a UTC one: <c>2006-01-02 15:04:05.999999999 +0000 UTC</c>.</summary>
    internal static string GoTime(DateTimeOffset time) =>
        time.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss.FFFFFFF", CultureInfo.InvariantCulture).TrimEnd('.') + " +0000 UTC";
}

/// <summary>The <c>--format</c> options of <c>ls</c> and <c>inspect</c>.</summary>
internal static class FormatOptions
{
    /// <summary><c>ls --format</c> (no short form: <c>-f</c> is <c>--filter</c> on Docker's <c>ls</c>).</summary>
    public static System.CommandLine.Option<string?> List() => new("--format")
    {
        Description = "Format output: 'table' (default), 'table TEMPLATE' (a table of the given Go template's columns), 'json' (one JSON object per line), or 'TEMPLATE' (one line per row; see docs/cli.md)",
        HelpName = "FORMAT",
    };

    /// <summary><c>ls -q/--quiet</c>: only the ids, one a line (as Docker, it applies to the default table format; a
    /// <c>--format</c> given wins).</summary>
    public static System.CommandLine.Option<bool> Quiet(string what) => new("--quiet", "-q")
    {
        Description = $"Only display {what} IDs",
    };

    /// <summary><c>ls --no-trunc</c>: whole ids (in the table, <c>-q</c> and the <c>ID</c> field of a format).</summary>
    public static System.CommandLine.Option<bool> NoTrunc() => new("--no-trunc")
    {
        Description = "Do not truncate the output (whole 64-character IDs)",
    };

    /// <summary><c>inspect -f/--format</c>.</summary>
    public static System.CommandLine.Option<string?> Inspect() => new("--format", "-f")
    {
        Description = "Format output: 'json' (the JSON array on one line) or 'TEMPLATE' (a Go template run on each object; see docs/cli.md)",
        HelpName = "FORMAT",
    };
}
