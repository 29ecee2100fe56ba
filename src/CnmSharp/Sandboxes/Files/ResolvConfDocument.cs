using System.Net;

namespace CnmSharp.Sandboxes.Files;

/// <summary>What a line of resolv.conf is.</summary>
public enum ResolvConfLineKind
{
    /// <summary>An empty or white-space line.</summary>
    Blank,

    /// <summary>A comment: the first non-blank character is <c>#</c> or <c>;</c>.</summary>
    Comment,

    /// <summary><c>nameserver &lt;address&gt;</c> with a valid IPv4 or IPv6 address.</summary>
    Nameserver,

    /// <summary><c>search &lt;domain&gt;...</c>.</summary>
    Search,

    /// <summary><c>options &lt;option&gt;...</c>.</summary>
    Options,

    /// <summary>Anything else (<c>domain</c>, <c>sortlist</c>, a <c>nameserver</c> line without a valid address, ...): kept verbatim.</summary>
    Other,
}

/// <summary>One line of resolv.conf.</summary>
/// <param name="Kind">What the line is.</param>
/// <param name="Text">The line as written, without its line break.</param>
/// <param name="Values">The values after the keyword (one address for a nameserver; domains; options); empty otherwise.</param>
public sealed record ResolvConfLine(ResolvConfLineKind Kind, string Text, IReadOnlyList<string> Values);

/// <summary>
/// A parsed resolv.conf. Every line is kept, comments included, so a filtered copy keeps what it does not change.
/// </summary>
/// <remarks>
/// As in glibc: keywords start a line (leading white space is allowed), a <c>#</c> or <c>;</c> token ends a directive's
/// values, the last <c>search</c> line wins and <c>options</c> lines add up.
/// </remarks>
public sealed class ResolvConfDocument
{
    private ResolvConfDocument(IReadOnlyList<ResolvConfLine> lines)
    {
        Lines = lines;
        Nameservers = lines.Where(l => l.Kind == ResolvConfLineKind.Nameserver).Select(l => l.Values[0]).ToList();
        Search = lines.LastOrDefault(l => l.Kind == ResolvConfLineKind.Search)?.Values ?? [];
        Options = lines.Where(l => l.Kind == ResolvConfLineKind.Options).SelectMany(l => l.Values).ToList();
        Comments = lines.Where(l => l.Kind == ResolvConfLineKind.Comment).Select(l => l.Text).ToList();
    }

    /// <summary>An empty document (a missing host file).</summary>
    public static ResolvConfDocument Empty { get; } = new([]);

    /// <summary>All lines, in order.</summary>
    public IReadOnlyList<ResolvConfLine> Lines { get; }

    /// <summary>The nameserver addresses, in order, as written.</summary>
    public IReadOnlyList<string> Nameservers { get; }

    /// <summary>The search domains (of the last <c>search</c> line).</summary>
    public IReadOnlyList<string> Search { get; }

    /// <summary>The options of all <c>options</c> lines, in order.</summary>
    public IReadOnlyList<string> Options { get; }

    /// <summary>The comment lines, as written.</summary>
    public IReadOnlyList<string> Comments { get; }

    /// <summary>Parses resolv.conf content. Never fails: what it does not understand is kept as <see cref="ResolvConfLineKind.Other"/>.</summary>
    /// <param name="content">The content.</param>
    /// <returns>The document.</returns>
    public static ResolvConfDocument Parse(string content)
    {
        ArgumentNullException.ThrowIfNull(content);
        var lines = AtomicFile.SplitLines(content).Select(ParseLine).ToList();
        return new ResolvConfDocument(lines);
    }

    /// <summary>The content of the document: every line followed by a line feed.</summary>
    /// <returns>The text.</returns>
    public override string ToString() => AtomicFile.JoinLines(Lines.Select(l => l.Text));

    private static ResolvConfLine ParseLine(string text)
    {
        var trimmed = text.TrimStart();
        if (trimmed.Length == 0)
        {
            return new ResolvConfLine(ResolvConfLineKind.Blank, text, []);
        }

        if (trimmed[0] is '#' or ';')
        {
            return new ResolvConfLine(ResolvConfLineKind.Comment, text, []);
        }

        var tokens = trimmed.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
        var values = tokens.Skip(1).TakeWhile(t => t[0] is not ('#' or ';')).ToList();
        switch (tokens[0])
        {
            case "nameserver" when values.Count > 0 && IPAddress.TryParse(values[0], out _):
                return new ResolvConfLine(ResolvConfLineKind.Nameserver, text, [values[0]]);
            case "search":
                return new ResolvConfLine(ResolvConfLineKind.Search, text, values);
            case "options":
                return new ResolvConfLine(ResolvConfLineKind.Options, text, values);
            default:
                return new ResolvConfLine(ResolvConfLineKind.Other, text, []);
        }
    }
}
