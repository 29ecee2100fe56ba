using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace CnmSharp.Cli.Formatting;

/// <summary>A template that cannot be parsed, or that failed on the data it was given: one line, no stack trace.</summary>
internal sealed class TemplateException(string message) : Exception(message);

/// <summary>How a template runs.</summary>
internal sealed record TemplateOptions
{
    /// <summary>Docker's table header mode: <c>json</c>, <c>split</c>, <c>join</c>, <c>title</c>, <c>lower</c>,
    /// <c>upper</c> and <c>truncate</c> return their first argument unchanged, so a header stays the column's name.</summary>
    public bool HeaderMode { get; init; }

    /// <summary>Applied to every string that comes from the data when it is printed (not to the template's own text,
    /// nor to what <c>json</c> writes, which escapes by itself).</summary>
    public Func<string, string>? EscapeData { get; init; }
}

/// <summary>
/// A small subset of Go's <c>text/template</c> (the syntax <c>docker --format</c> takes), evaluated over a
/// <see cref="JsonElement"/>: text and <c>{{ }}</c> actions with <c>{{-</c>/<c>-}}</c> trimming and <c>{{/* */}}</c>
/// comments; pipelines (<c>|</c>); operands <c>.</c>, <c>.A.B</c> field paths, <c>$</c> and <c>$name</c> variables
/// (<c>{{$x := ...}}</c>, <c>{{range $k, $v := ...}}</c>), <c>( )</c>, string, integer, <c>true</c>/<c>false</c>/<c>nil</c>
/// literals; <c>if</c>/<c>else if</c>/<c>else</c>, <c>range</c>/<c>else</c>, <c>with</c>/<c>else</c>, <c>end</c>; functions
/// <c>json index len join split upper lower title pad truncate eq ne not and or print println</c>. Anything else is a
/// <see cref="TemplateException"/> at parse time. A missing key is an error (Go's <c>missingkey=error</c>, as
/// <c>docker inspect</c> uses on raw JSON); JSON null prints as the empty string; objects print as Go prints maps
/// (<c>map[k:v ...]</c>, keys sorted), arrays as <c>[a b]</c>.
/// </summary>
internal sealed class GoTemplate
{
    private static readonly HashSet<string> Functions = new(StringComparer.Ordinal)
    {
        "json", "index", "len", "join", "split", "upper", "lower", "title", "pad", "truncate", "eq", "ne", "not", "and", "or", "print", "println",
    };

    private static readonly HashSet<string> HeaderIdentityFunctions = new(StringComparer.Ordinal)
    {
        "json", "split", "join", "title", "lower", "upper", "truncate",
    };

    private static readonly JsonWriterOptions JsonOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private readonly List<Node> _nodes;

    private GoTemplate(List<Node> nodes) => _nodes = nodes;

    /// <summary>Parses <paramref name="text"/>; throws <see cref="TemplateException"/> naming the problem and where.</summary>
    public static GoTemplate Parse(string text) => new(new Parser(text).ParseTemplate());

    /// <summary>Runs the template with <paramref name="data"/> as dot (and <c>$</c>).</summary>
    public string Execute(JsonElement data, TemplateOptions? options = null)
    {
        var state = new ExecState(options ?? new TemplateOptions(), data);
        var output = new StringBuilder();
        state.Walk(_nodes, data, output);
        return output.ToString();
    }

    // ---------------------------------------------------------------- syntax tree

    private abstract record Node;

    private sealed record TextNode(string Text) : Node;

    private sealed record ActionNode(Pipe Pipe) : Node;

    /// <summary><c>if</c> (<see cref="IsWith"/> false) or <c>with</c>.</summary>
    private sealed record IfNode(bool IsWith, Pipe Pipe, List<Node> Then, List<Node>? Else) : Node;

    private sealed record RangeNode(Pipe Pipe, List<Node> Body, List<Node>? Else) : Node;

    private sealed record Pipe(List<string> Declarations, List<Cmd> Commands, string Source);

    private sealed record Cmd(List<Operand> Args, string Source);

    private abstract record Operand;

    private enum FieldBase
    {
        Dot,
        Variable,
        Paren,
    }

    /// <summary><c>.</c>, <c>.A.B</c>, <c>$x.A</c>, <c>(pipe).A</c>.</summary>
    private sealed record FieldOperand(FieldBase Base, string? Variable, Pipe? Paren, List<string> Fields, string Source) : Operand;

    private sealed record LiteralOperand(object? Value) : Operand;

    private sealed record FunctionOperand(string Name) : Operand;

    // ---------------------------------------------------------------- lexer and parser

    private enum TokenKind
    {
        Field,
        Dot,
        Variable,
        Identifier,
        String,
        Number,
        Pipe,
        LeftParen,
        RightParen,
        Declare,
        Assign,
        Comma,
    }

    private sealed record Token(TokenKind Kind, string Text, int Position, bool SpaceBefore, object? Value = null);

    /// <summary>One <c>{{ }}</c> or a run of text.</summary>
    private sealed record Item(string? Text, List<Token>? Tokens, int Position, string Source);

    private sealed class Parser(string text)
    {
        private readonly List<Item> _items = [];
        private readonly List<string> _variables = ["$"];
        private int _next;

        public List<Node> ParseTemplate()
        {
            Lex();
            var (nodes, terminator) = ParseList();
            if (terminator is not null)
            {
                throw Error(terminator.Position, $"unexpected {{{{{terminator.Tokens![0].Text}}}}}");
            }

            return nodes;
        }

        // Lexing: text and actions, trim markers applied.
        private void Lex()
        {
            var i = 0;
            var trimNext = false;
            while (i < text.Length)
            {
                var open = text.IndexOf("{{", i, StringComparison.Ordinal);
                var run = open < 0 ? text[i..] : text[i..open];
                if (trimNext)
                {
                    run = run.TrimStart(' ', '\t', '\r', '\n');
                }

                if (open < 0)
                {
                    AddText(run, i);
                    break;
                }

                var p = open + 2;
                if (p + 1 < text.Length && text[p] == '-' && IsSpace(text[p + 1]))
                {
                    run = run.TrimEnd(' ', '\t', '\r', '\n');
                    p += 2;
                }

                AddText(run, i);
                (i, trimNext) = LexAction(open, p);
            }
        }

        private void AddText(string run, int position)
        {
            if (run.Length > 0)
            {
                _items.Add(new Item(run, null, position, run));
            }
        }

        private (int Next, bool TrimNext) LexAction(int open, int p)
        {
            var tokens = new List<Token>();
            if (text.IndexOf("}}", p, StringComparison.Ordinal) < 0 && string.CompareOrdinal(text, p, "/*", 0, 2) != 0)
            {
                throw Error(open, "unclosed action");
            }

            if (string.CompareOrdinal(text, p, "/*", 0, 2) == 0)
            {
                var close = text.IndexOf("*/", p + 2, StringComparison.Ordinal);
                if (close < 0)
                {
                    throw Error(open, "unclosed comment");
                }

                var q = close + 2;
                if (string.CompareOrdinal(text, q, "}}", 0, 2) == 0)
                {
                    return (q + 2, false);
                }

                if (string.CompareOrdinal(text, q, " -}}", 0, 4) == 0)
                {
                    return (q + 4, true);
                }

                throw Error(close, "comment ends before closing delimiter");
            }

            while (true)
            {
                var start = p;
                p = SkipSpaces(p);
                var space = p > start;
                if (p >= text.Length)
                {
                    throw Error(open, "unclosed action");
                }

                var c = text[p];
                if (c == '}' && p + 1 < text.Length && text[p + 1] == '}')
                {
                    _items.Add(new Item(null, tokens, open, text[open..(p + 2)]));
                    return (p + 2, false);
                }

                if (c == '-' && space && string.CompareOrdinal(text, p, "-}}", 0, 3) == 0)
                {
                    _items.Add(new Item(null, tokens, open, text[open..(p + 3)]));
                    return (p + 3, true);
                }

                switch (c)
                {
                    case '|':
                        tokens.Add(new Token(TokenKind.Pipe, "|", p, space));
                        p++;
                        continue;
                    case '(':
                        tokens.Add(new Token(TokenKind.LeftParen, "(", p, space));
                        p++;
                        continue;
                    case ')':
                        tokens.Add(new Token(TokenKind.RightParen, ")", p, space));
                        p++;
                        continue;
                    case ',':
                        tokens.Add(new Token(TokenKind.Comma, ",", p, space));
                        p++;
                        continue;
                    case ':' when p + 1 < text.Length && text[p + 1] == '=':
                        tokens.Add(new Token(TokenKind.Declare, ":=", p, space));
                        p += 2;
                        continue;
                    case '=':
                        tokens.Add(new Token(TokenKind.Assign, "=", p, space));
                        p++;
                        continue;
                    case '"':
                        p = LexQuoted(p, space, tokens);
                        continue;
                    case '`':
                        {
                            var end = text.IndexOf('`', p + 1);
                            if (end < 0)
                            {
                                throw Error(p, "unterminated raw quoted string");
                            }

                            tokens.Add(new Token(TokenKind.String, text[p..(end + 1)], p, space, text[(p + 1)..end]));
                            p = end + 1;
                            continue;
                        }

                    case '\'':
                        throw Error(p, "character constants are not supported");
                    case '.':
                        {
                            var end = ScanWord(p + 1);
                            tokens.Add(end == p + 1
                                ? new Token(TokenKind.Dot, ".", p, space)
                                : new Token(TokenKind.Field, text[p..end], p, space));
                            p = end;
                            continue;
                        }

                    case '$':
                        {
                            var end = ScanWord(p + 1);
                            tokens.Add(new Token(TokenKind.Variable, text[p..end], p, space));
                            p = end;
                            continue;
                        }
                }

                if (char.IsAsciiDigit(c) || ((c == '-' || c == '+') && p + 1 < text.Length && char.IsAsciiDigit(text[p + 1])))
                {
                    var end = p + 1;
                    while (end < text.Length && (char.IsAsciiLetterOrDigit(text[end]) || text[end] is '.' or '_'))
                    {
                        end++;
                    }

                    var literal = text[p..end];
                    if (!long.TryParse(literal, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var number))
                    {
                        throw Error(p, $"unsupported number {Quote(literal)} (only decimal integers)");
                    }

                    tokens.Add(new Token(TokenKind.Number, literal, p, space, number));
                    p = end;
                    continue;
                }

                if (char.IsLetter(c) || c == '_')
                {
                    var end = ScanWord(p);
                    tokens.Add(new Token(TokenKind.Identifier, text[p..end], p, space));
                    p = end;
                    continue;
                }

                throw Error(p, $"unexpected {Quote(new string(c, 1))} in action");
            }
        }

        private int LexQuoted(int p, bool space, List<Token> tokens)
        {
            var value = new StringBuilder();
            var i = p + 1;
            while (true)
            {
                if (i >= text.Length || text[i] == '\n')
                {
                    throw Error(p, "unterminated quoted string");
                }

                var c = text[i];
                if (c == '"')
                {
                    tokens.Add(new Token(TokenKind.String, text[p..(i + 1)], p, space, value.ToString()));
                    return i + 1;
                }

                if (c != '\\')
                {
                    value.Append(c);
                    i++;
                    continue;
                }

                if (i + 1 >= text.Length)
                {
                    throw Error(p, "unterminated quoted string");
                }

                var e = text[i + 1];
                switch (e)
                {
                    case '\\' or '"' or '\'':
                        value.Append(e);
                        i += 2;
                        break;
                    case 'n':
                        value.Append('\n');
                        i += 2;
                        break;
                    case 't':
                        value.Append('\t');
                        i += 2;
                        break;
                    case 'r':
                        value.Append('\r');
                        i += 2;
                        break;
                    case 'x' or 'u':
                        {
                            var digits = e == 'x' ? 2 : 4;
                            if (i + 2 + digits > text.Length
                                || !int.TryParse(text.AsSpan(i + 2, digits), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var code))
                            {
                                throw Error(i, $"invalid escape \\{e} in quoted string");
                            }

                            value.Append((char)code);
                            i += 2 + digits;
                            break;
                        }

                    default:
                        throw Error(i, $"unknown escape \\{e} in quoted string");
                }
            }
        }

        private int ScanWord(int p)
        {
            while (p < text.Length && (char.IsLetterOrDigit(text[p]) || text[p] == '_'))
            {
                p++;
            }

            return p;
        }

        private int SkipSpaces(int p)
        {
            while (p < text.Length && IsSpace(text[p]))
            {
                p++;
            }

            return p;
        }

        private static bool IsSpace(char c) => c is ' ' or '\t' or '\r' or '\n';

        // Parsing: a list of nodes up to a terminating {{end}} or {{else ...}} (returned), or the end of the text.
        private (List<Node> Nodes, Item? Terminator) ParseList()
        {
            var nodes = new List<Node>();
            while (_next < _items.Count)
            {
                var item = _items[_next++];
                if (item.Text is not null)
                {
                    nodes.Add(new TextNode(item.Text));
                    continue;
                }

                var tokens = item.Tokens!;
                if (tokens.Count == 0)
                {
                    throw Error(item.Position, "missing value for command");
                }

                var first = tokens[0];
                if (first.Kind == TokenKind.Identifier)
                {
                    switch (first.Text)
                    {
                        case "end" or "else":
                            return (nodes, item);
                        case "if":
                            nodes.Add(ParseIf(item, isWith: false, 1));
                            continue;
                        case "with":
                            nodes.Add(ParseIf(item, isWith: true, 1));
                            continue;
                        case "range":
                            nodes.Add(ParseRange(item));
                            continue;
                        case "define" or "template" or "block" or "break" or "continue":
                            throw Error(item.Position, $"{{{{{first.Text}}}}} is not supported");
                    }
                }

                var pipe = ParsePipe(item, 0, tokens.Count, allowDeclarations: 1, context: "command");
                _variables.AddRange(pipe.Declarations);
                nodes.Add(new ActionNode(pipe));
            }

            return (nodes, null);
        }

        private IfNode ParseIf(Item item, bool isWith, int from)
        {
            var keyword = isWith ? "with" : "if";
            var mark = _variables.Count;
            var pipe = ParsePipe(item, from, item.Tokens!.Count, allowDeclarations: 1, context: keyword);
            _variables.AddRange(pipe.Declarations);
            var (then, terminator) = ParseList();
            List<Node>? otherwise = null;
            if (terminator is null)
            {
                throw Error(item.Position, $"missing {{{{end}}}} for {{{{{keyword}}}}}");
            }

            _variables.RemoveRange(mark, _variables.Count - mark);
            if (terminator.Tokens![0].Text == "else")
            {
                var rest = terminator.Tokens;
                if (rest.Count > 1 && rest[1] is { Kind: TokenKind.Identifier, Text: "if" })
                {
                    // {{else if ...}}: a nested if that shares this {{end}}.
                    otherwise = [ParseIf(terminator, isWith: false, 2)];
                    return new IfNode(isWith, pipe, then, otherwise);
                }

                if (rest.Count > 1)
                {
                    throw Error(terminator.Position, "unexpected tokens after else");
                }

                (otherwise, terminator) = ParseList();
                if (terminator is null || terminator.Tokens![0].Text != "end")
                {
                    throw Error(item.Position, $"missing {{{{end}}}} for {{{{{keyword}}}}}");
                }
            }

            ExpectBareEnd(terminator);
            return new IfNode(isWith, pipe, then, otherwise);
        }

        private RangeNode ParseRange(Item item)
        {
            var mark = _variables.Count;
            var pipe = ParsePipe(item, 1, item.Tokens!.Count, allowDeclarations: 2, context: "range");
            _variables.AddRange(pipe.Declarations);
            var (body, terminator) = ParseList();
            List<Node>? otherwise = null;
            if (terminator is not null && terminator.Tokens![0].Text == "else")
            {
                if (terminator.Tokens.Count > 1)
                {
                    throw Error(terminator.Position, "unexpected tokens after else in range");
                }

                (otherwise, terminator) = ParseList();
            }

            if (terminator is null || terminator.Tokens![0].Text != "end")
            {
                throw Error(item.Position, "missing {{end}} for {{range}}");
            }

            ExpectBareEnd(terminator);
            _variables.RemoveRange(mark, _variables.Count - mark);
            return new RangeNode(pipe, body, otherwise);
        }

        private void ExpectBareEnd(Item end)
        {
            if (end.Tokens!.Count > 1)
            {
                throw Error(end.Position, "unexpected tokens after end");
            }
        }

        private Pipe ParsePipe(Item item, int from, int to, int allowDeclarations, string context)
        {
            var tokens = item.Tokens!;
            var declarations = new List<string>();
            var declareAt = tokens.FindIndex(from, to - from, t => t.Kind is TokenKind.Declare or TokenKind.Assign);
            if (declareAt >= 0)
            {
                if (tokens[declareAt].Kind == TokenKind.Assign)
                {
                    throw Error(tokens[declareAt].Position, "variable assignment with = is not supported (declare with :=)");
                }

                for (var i = from; i < declareAt; i++)
                {
                    var expectVariable = (i - from) % 2 == 0;
                    if (expectVariable ? tokens[i].Kind != TokenKind.Variable || tokens[i].Text == "$" : tokens[i].Kind != TokenKind.Comma)
                    {
                        throw Error(tokens[i].Position, $"unexpected {Quote(tokens[i].Text)} in declaration");
                    }

                    if (expectVariable)
                    {
                        declarations.Add(tokens[i].Text);
                    }
                }

                if (declarations.Count == 0 || (declareAt - from) % 2 == 0 || declarations.Count > allowDeclarations)
                {
                    throw Error(tokens[declareAt].Position, $"wrong number of variables in {context} declaration");
                }

                from = declareAt + 1;
            }

            var commands = new List<Cmd>();
            var start = from;
            var depth = 0;
            for (var i = from; i <= to; i++)
            {
                if (i < to && tokens[i].Kind == TokenKind.LeftParen)
                {
                    depth++;
                }
                else if (i < to && tokens[i].Kind == TokenKind.RightParen)
                {
                    depth--;
                    if (depth < 0)
                    {
                        throw Error(tokens[i].Position, "unexpected right paren");
                    }
                }
                else if (i == to || (depth == 0 && tokens[i].Kind == TokenKind.Pipe))
                {
                    if (i == to && depth > 0)
                    {
                        throw Error(item.Position, "unclosed left paren");
                    }

                    if (i == start)
                    {
                        throw Error(i < tokens.Count ? tokens[i].Position : item.Position, $"missing value for {context}");
                    }

                    commands.Add(ParseCommand(item, start, i));
                    start = i + 1;
                }
            }

            var source = tokens.Count == 0 ? "" : text[tokens[Math.Min(from, tokens.Count - 1)].Position..EndOf(tokens[to - 1])];
            return new Pipe(declarations, commands, source);
        }

        private static int EndOf(Token token) => token.Position + token.Text.Length;

        private Cmd ParseCommand(Item item, int from, int to)
        {
            var tokens = item.Tokens!;
            var args = new List<Operand>();
            var i = from;
            while (i < to)
            {
                var (operand, next) = ParseOperand(item, i, to);
                if (args.Count > 0 && !tokens[i].SpaceBefore && tokens[i].Kind != TokenKind.LeftParen)
                {
                    throw Error(tokens[i].Position, $"missing space before {Quote(tokens[i].Text)}");
                }

                args.Add(operand);
                i = next;
            }

            if (args.Count > 1 && args[0] is not FunctionOperand)
            {
                throw Error(tokens[from].Position, $"can't give argument to non-function {Quote(text[tokens[from].Position..EndOf(tokens[from])])}");
            }

            return new Cmd(args, text[tokens[from].Position..EndOf(tokens[to - 1])]);
        }

        private (Operand Operand, int Next) ParseOperand(Item item, int i, int to)
        {
            var tokens = item.Tokens!;
            var token = tokens[i];
            FieldOperand field;
            switch (token.Kind)
            {
                case TokenKind.Field:
                    field = new FieldOperand(FieldBase.Dot, null, null, [token.Text[1..]], "");
                    i++;
                    break;
                case TokenKind.Dot:
                    field = new FieldOperand(FieldBase.Dot, null, null, [], "");
                    i++;
                    if (i < to && tokens[i].Kind == TokenKind.Field && !tokens[i].SpaceBefore)
                    {
                        throw Error(tokens[i].Position, "unexpected . after term \".\"");
                    }

                    break;
                case TokenKind.Variable:
                    if (!_variables.Contains(token.Text))
                    {
                        throw Error(token.Position, $"undefined variable {Quote(token.Text)}");
                    }

                    field = new FieldOperand(FieldBase.Variable, token.Text, null, [], "");
                    i++;
                    break;
                case TokenKind.LeftParen:
                    {
                        var depth = 0;
                        var close = -1;
                        for (var j = i; j < to; j++)
                        {
                            depth += tokens[j].Kind == TokenKind.LeftParen ? 1 : tokens[j].Kind == TokenKind.RightParen ? -1 : 0;
                            if (depth == 0)
                            {
                                close = j;
                                break;
                            }
                        }

                        if (close < 0)
                        {
                            throw Error(token.Position, "unclosed left paren");
                        }

                        var inner = ParsePipe(item, i + 1, close, allowDeclarations: 0, context: "parenthesized pipeline");
                        field = new FieldOperand(FieldBase.Paren, null, inner, [], "");
                        i = close + 1;
                        break;
                    }

                case TokenKind.String:
                case TokenKind.Number:
                    return (new LiteralOperand(token.Value), i + 1);
                case TokenKind.Identifier:
                    switch (token.Text)
                    {
                        case "true":
                            return (new LiteralOperand(true), i + 1);
                        case "false":
                            return (new LiteralOperand(false), i + 1);
                        case "nil":
                            return (new LiteralOperand(null), i + 1);
                        case "if" or "else" or "end" or "range" or "with" or "define" or "template" or "block" or "break" or "continue":
                            throw Error(token.Position, $"unexpected {Quote(token.Text)} in operand");
                    }

                    if (!Functions.Contains(token.Text))
                    {
                        throw Error(token.Position, $"function {Quote(token.Text)} not defined (supported: {string.Join(", ", Functions)})");
                    }

                    return (new FunctionOperand(token.Text), i + 1);
                default:
                    throw Error(token.Position, $"unexpected {Quote(token.Text)} in operand");
            }

            // Field names chained without space: .A.B, $x.A, (pipe).A
            while (i < to && tokens[i].Kind == TokenKind.Field && !tokens[i].SpaceBefore)
            {
                field.Fields.Add(tokens[i].Text[1..]);
                i++;
            }

            return (field with { Source = text[token.Position..EndOf(tokens[i - 1])] }, i);
        }

        private TemplateException Error(int position, string message)
        {
            var line = 1;
            var column = 1;
            for (var i = 0; i < position && i < text.Length; i++)
            {
                if (text[i] == '\n')
                {
                    line++;
                    column = 1;
                }
                else
                {
                    column++;
                }
            }

            return new TemplateException($"template parsing error: {line}:{column}: {message}");
        }
    }

    private static string Quote(string s) => "\"" + s.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal) + "\"";

    // ---------------------------------------------------------------- evaluation

    /// <summary>The result of <c>split</c>: a list the template can range over, index, join.</summary>
    private sealed class ValueList(List<object?> items)
    {
        public List<object?> Items { get; } = items;
    }

    private sealed class ExecState(TemplateOptions options, JsonElement root)
    {
        private readonly List<(string Name, object? Value)> _variables = [("$", root)];

        public void Walk(List<Node> nodes, object? dot, StringBuilder output)
        {
            foreach (var node in nodes)
            {
                switch (node)
                {
                    case TextNode t:
                        output.Append(t.Text);
                        break;
                    case ActionNode a:
                        {
                            var value = EvalPipe(a.Pipe, dot);
                            if (a.Pipe.Declarations.Count == 0)
                            {
                                output.Append(Print(value));
                            }
                            else
                            {
                                _variables.Add((a.Pipe.Declarations[0], value));
                            }

                            break;
                        }

                    case IfNode i:
                        {
                            var mark = _variables.Count;
                            var value = EvalPipe(i.Pipe, dot);
                            if (i.Pipe.Declarations.Count > 0)
                            {
                                _variables.Add((i.Pipe.Declarations[0], value));
                            }

                            if (IsTrue(value))
                            {
                                Walk(i.Then, i.IsWith ? value : dot, output);
                            }
                            else if (i.Else is not null)
                            {
                                Walk(i.Else, dot, output);
                            }

                            _variables.RemoveRange(mark, _variables.Count - mark);
                            break;
                        }

                    case RangeNode r:
                        WalkRange(r, dot, output);
                        break;
                }
            }
        }

        private void WalkRange(RangeNode r, object? dot, StringBuilder output)
        {
            var value = EvalPipe(r.Pipe, dot);
            var items = new List<(object? Key, object? Value)>();
            switch (value)
            {
                case null:
                    break;
                case JsonElement { ValueKind: JsonValueKind.Null }:
                    break;
                case JsonElement { ValueKind: JsonValueKind.Array } array:
                    items.AddRange(array.EnumerateArray().Select((e, i) => ((object?)(long)i, (object?)e)));
                    break;
                case JsonElement { ValueKind: JsonValueKind.Object } map:
                    items.AddRange(map.EnumerateObject().OrderBy(p => p.Name, StringComparer.Ordinal).Select(p => ((object?)p.Name, (object?)p.Value)));
                    break;
                case ValueList list:
                    items.AddRange(list.Items.Select((e, i) => ((object?)(long)i, e)));
                    break;
                default:
                    throw ExecError(r.Pipe.Source, $"range can't iterate over {Print(value)}");
            }

            if (items.Count == 0)
            {
                if (r.Else is not null)
                {
                    Walk(r.Else, dot, output);
                }

                return;
            }

            foreach (var (key, element) in items)
            {
                var mark = _variables.Count;
                switch (r.Pipe.Declarations.Count)
                {
                    case 1:
                        _variables.Add((r.Pipe.Declarations[0], element));
                        break;
                    case 2:
                        _variables.Add((r.Pipe.Declarations[0], key));
                        _variables.Add((r.Pipe.Declarations[1], element));
                        break;
                }

                Walk(r.Body, element, output);
                _variables.RemoveRange(mark, _variables.Count - mark);
            }
        }

        private object? EvalPipe(Pipe pipe, object? dot)
        {
            object? value = null;
            var hasFinal = false;
            foreach (var cmd in pipe.Commands)
            {
                value = EvalCommand(cmd, dot, hasFinal, value);
                hasFinal = true;
            }

            return value;
        }

        private object? EvalCommand(Cmd cmd, object? dot, bool hasFinal, object? final)
        {
            if (cmd.Args[0] is FunctionOperand function)
            {
                var args = cmd.Args.Skip(1).Select(a => EvalOperand(a, dot)).ToList();
                if (hasFinal)
                {
                    args.Add(final);
                }

                try
                {
                    return Call(function.Name, args);
                }
                catch (TemplateException ex)
                {
                    throw ExecError(cmd.Source, $"error calling {function.Name}: {ex.Message}");
                }
            }

            if (hasFinal)
            {
                throw ExecError(cmd.Source, $"can't give argument to non-function {cmd.Source}");
            }

            return EvalOperand(cmd.Args[0], dot);
        }

        private object? EvalOperand(Operand operand, object? dot)
        {
            switch (operand)
            {
                case LiteralOperand literal:
                    return literal.Value;
                case FunctionOperand function:
                    try
                    {
                        return Call(function.Name, []);
                    }
                    catch (TemplateException ex)
                    {
                        throw ExecError(function.Name, $"error calling {function.Name}: {ex.Message}");
                    }

                case FieldOperand field:
                    {
                        var value = field.Base switch
                        {
                            FieldBase.Dot => dot,
                            FieldBase.Variable => _variables.FindLast(v => v.Name == field.Variable).Value,
                            _ => EvalPipe(field.Paren!, dot),
                        };
                        foreach (var name in field.Fields)
                        {
                            value = value switch
                            {
                                JsonElement { ValueKind: JsonValueKind.Object } map => map.TryGetProperty(name, out var child)
                                    ? child
                                    : throw ExecError(field.Source, $"map has no entry for key {Quote(name)}"),
                                null or JsonElement { ValueKind: JsonValueKind.Null } => throw ExecError(field.Source, $"nil value evaluating field {name}"),
                                _ => throw ExecError(field.Source, $"can't evaluate field {name} in type {TypeName(value)}"),
                            };
                        }

                        return value;
                    }

                default:
                    throw new InvalidOperationException("unknown operand");
            }
        }

        private static TemplateException ExecError(string source, string message) =>
            new($"template execution error in <{source}>: {message}");

        // ------------------------------------------------------------ functions

        private object? Call(string name, List<object?> args)
        {
            if (options.HeaderMode && HeaderIdentityFunctions.Contains(name))
            {
                Arity(name, args, name == "split" || name == "join" || name == "truncate" ? 2 : 1);
                return Print(args[0]);
            }

            switch (name)
            {
                case "json":
                    Arity(name, args, 1);
                    return Json(args[0]);
                case "index":
                    if (args.Count < 1)
                    {
                        throw new TemplateException("wrong number of args for index: want at least 1 got 0");
                    }

                    return args.Skip(1).Aggregate(args[0], Index);
                case "len":
                    Arity(name, args, 1);
                    return Length(args[0]);
                case "join":
                    Arity(name, args, 2);
                    return Join(args[0], AsString(args[1]));
                case "split":
                    {
                        Arity(name, args, 2);
                        var (s, separator) = (AsString(args[0]), AsString(args[1]));
                        var parts = separator.Length == 0 ? s.Select(c => new string(c, 1)).ToArray() : s.Split(separator);
                        return new ValueList([.. parts]);
                    }

                case "upper":
                    Arity(name, args, 1);
                    return AsString(args[0]).ToUpperInvariant();
                case "lower":
                    Arity(name, args, 1);
                    return AsString(args[0]).ToLowerInvariant();
                case "title":
                    Arity(name, args, 1);
                    return Title(AsString(args[0]));
                case "pad":
                    {
                        Arity(name, args, 3);
                        var s = AsString(args[0]);
                        return s.Length == 0 ? s : new string(' ', (int)AsInteger(args[1])) + s + new string(' ', (int)AsInteger(args[2]));
                    }

                case "truncate":
                    {
                        Arity(name, args, 2);
                        var s = AsString(args[0]);
                        var n = AsInteger(args[1]);
                        return s.Length < n ? s : s[..(int)Math.Max(0, n)];
                    }

                case "eq":
                    if (args.Count < 2)
                    {
                        throw new TemplateException("missing argument for comparison");
                    }

                    return args.Skip(1).Any(other => Equal(args[0], other));
                case "ne":
                    Arity(name, args, 2);
                    return !Equal(args[0], args[1]);
                case "not":
                    Arity(name, args, 1);
                    return !IsTrue(args[0]);
                case "and":
                    ArityAtLeast(name, args, 1);
                    return args.FirstOrDefault(a => !IsTrue(a), args[^1]);
                case "or":
                    ArityAtLeast(name, args, 1);
                    return args.FirstOrDefault(IsTrue, args[^1]);
                case "print":
                    return PrintAll(args, newline: false);
                case "println":
                    return PrintAll(args, newline: true);
                default:
                    throw new TemplateException($"function {Quote(name)} not defined");
            }
        }

        private static void Arity(string name, List<object?> args, int want)
        {
            if (args.Count != want)
            {
                throw new TemplateException($"wrong number of args for {name}: want {want} got {args.Count}");
            }
        }

        private static void ArityAtLeast(string name, List<object?> args, int want)
        {
            if (args.Count < want)
            {
                throw new TemplateException($"wrong number of args for {name}: want at least {want} got {args.Count}");
            }
        }

        private string PrintAll(List<object?> args, bool newline)
        {
            // fmt.Sprint adds a space between operands when neither is a string; fmt.Sprintln always does.
            var text = new StringBuilder();
            for (var i = 0; i < args.Count; i++)
            {
                if (i > 0 && (newline || (!IsString(args[i - 1]) && !IsString(args[i]))))
                {
                    text.Append(' ');
                }

                text.Append(Print(args[i]));
            }

            if (newline)
            {
                text.Append('\n');
            }

            return text.ToString();
        }

        private static bool IsString(object? v) => v is string or JsonElement { ValueKind: JsonValueKind.String };

        private static object? Index(object? item, object? key)
        {
            switch (item)
            {
                case JsonElement { ValueKind: JsonValueKind.Object } map:
                    {
                        var name = key switch
                        {
                            string s => s,
                            JsonElement { ValueKind: JsonValueKind.String } s => s.GetString()!,
                            _ => throw new TemplateException($"cannot index a map with {TypeName(key)}"),
                        };

                        // Go's index gives the zero value for a missing key.
                        return map.TryGetProperty(name, out var child) ? child : null;
                    }

                case JsonElement { ValueKind: JsonValueKind.Array } array:
                    {
                        var i = AsInteger(key);
                        return i >= 0 && i < array.GetArrayLength() ? array[(int)i] : throw new TemplateException($"index out of range: {i}");
                    }

                case ValueList list:
                    {
                        var i = AsInteger(key);
                        return i >= 0 && i < list.Items.Count ? list.Items[(int)i] : throw new TemplateException($"index out of range: {i}");
                    }

                case null or JsonElement { ValueKind: JsonValueKind.Null }:
                    throw new TemplateException("index of untyped nil");
                default:
                    throw new TemplateException($"can't index item of type {TypeName(item)}");
            }
        }

        private static long Length(object? v) => v switch
        {
            string s => Encoding.UTF8.GetByteCount(s),
            JsonElement { ValueKind: JsonValueKind.String } s => Encoding.UTF8.GetByteCount(s.GetString()!),
            JsonElement { ValueKind: JsonValueKind.Array } a => a.GetArrayLength(),
            JsonElement { ValueKind: JsonValueKind.Object } o => o.EnumerateObject().Count(),
            ValueList list => list.Items.Count,
            _ => throw new TemplateException($"len of type {TypeName(v)}"),
        };

        private string Join(object? elements, string separator) => elements switch
        {
            null or JsonElement { ValueKind: JsonValueKind.Null } => "",
            JsonElement { ValueKind: JsonValueKind.Array } a => string.Join(separator, a.EnumerateArray().Select(e => Print(e))),
            JsonElement { ValueKind: JsonValueKind.Object } o => string.Join(separator, o.EnumerateObject().Select(p => Print(p.Value)).Order(StringComparer.Ordinal)),
            ValueList list => string.Join(separator, list.Items.Select(Print)),
            _ => throw new TemplateException($"expected slice, got {TypeName(elements)}"),
        };

        private static string Title(string s)
        {
            var chars = s.ToCharArray();
            for (var i = 0; i < chars.Length; i++)
            {
                if (i == 0 || !(char.IsLetterOrDigit(chars[i - 1]) || chars[i - 1] == '_'))
                {
                    chars[i] = char.ToUpperInvariant(chars[i]);
                }
            }

            return new string(chars);
        }

        private static string AsString(object? v) => v switch
        {
            string s => s,
            JsonElement { ValueKind: JsonValueKind.String } s => s.GetString()!,
            _ => throw new TemplateException($"expected string; got {TypeName(v)}"),
        };

        private static long AsInteger(object? v) => v switch
        {
            long n => n,
            JsonElement { ValueKind: JsonValueKind.Number } n when n.TryGetInt64(out var i) => i,
            _ => throw new TemplateException($"expected integer; got {TypeName(v)}"),
        };

        private static bool Equal(object? a, object? b)
        {
            var (x, y) = (Comparable(a), Comparable(b));
            if (x is null || y is null)
            {
                return x is null && y is null;
            }

            return x.GetType() == y.GetType() ? x.Equals(y) : throw new TemplateException($"incompatible types for comparison: {TypeName(a)} and {TypeName(b)}");
        }

        private static object? Comparable(object? v) => v switch
        {
            null or JsonElement { ValueKind: JsonValueKind.Null } => null,
            string or bool => v,
            long n => (decimal)n,
            JsonElement { ValueKind: JsonValueKind.String } s => s.GetString(),
            JsonElement { ValueKind: JsonValueKind.True } => true,
            JsonElement { ValueKind: JsonValueKind.False } => false,
            JsonElement { ValueKind: JsonValueKind.Number } n when n.TryGetDecimal(out var d) => d,
            _ => throw new TemplateException($"non-comparable type {TypeName(v)}"),
        };

        public static bool IsTrue(object? v) => v switch
        {
            null => false,
            bool b => b,
            long n => n != 0,
            string s => s.Length > 0,
            ValueList list => list.Items.Count > 0,
            JsonElement e => e.ValueKind switch
            {
                JsonValueKind.True => true,
                JsonValueKind.String => e.GetString()!.Length > 0,
                JsonValueKind.Number => !(e.TryGetDecimal(out var d) && d == 0),
                JsonValueKind.Array => e.GetArrayLength() > 0,
                JsonValueKind.Object => e.EnumerateObject().Any(),
                _ => false,
            },
            _ => true,
        };

        private static string TypeName(object? v) => v switch
        {
            null => "nil",
            string => "string",
            bool => "bool",
            long => "int",
            ValueList => "list",
            JsonElement e => e.ValueKind switch
            {
                JsonValueKind.Object => "map",
                JsonValueKind.Array => "list",
                JsonValueKind.String => "string",
                JsonValueKind.Number => "number",
                JsonValueKind.True or JsonValueKind.False => "bool",
                _ => "nil",
            },
            _ => v.GetType().Name,
        };

        /// <summary>A value as Go's <c>fmt</c> prints it (maps with sorted keys).</summary>
        public string Print(object? v) => v switch
        {
            null => "",
            string s => s,
            bool b => b ? "true" : "false",
            long n => n.ToString(CultureInfo.InvariantCulture),
            ValueList list => "[" + string.Join(' ', list.Items.Select(Print)) + "]",
            JsonElement e => e.ValueKind switch
            {
                JsonValueKind.String => Escape(e.GetString()!),
                JsonValueKind.Number => e.GetRawText(),
                JsonValueKind.True => "true",
                JsonValueKind.False => "false",
                JsonValueKind.Array => "[" + string.Join(' ', e.EnumerateArray().Select(x => Print(x))) + "]",
                JsonValueKind.Object => "map[" + string.Join(' ', e.EnumerateObject().OrderBy(p => p.Name, StringComparer.Ordinal)
                    .Select(p => Escape(p.Name) + ":" + Print(p.Value))) + "]",
                _ => "",
            },
            _ => v.ToString() ?? "",
        };

        private string Escape(string s) => options.EscapeData is { } escape ? escape(s) : s;

        private static string Json(object? v)
        {
            using var buffer = new MemoryStream();
            using (var writer = new Utf8JsonWriter(buffer, JsonOptions))
            {
                WriteJson(writer, v);
            }

            return Encoding.UTF8.GetString(buffer.ToArray());
        }

        private static void WriteJson(Utf8JsonWriter writer, object? v)
        {
            switch (v)
            {
                case null:
                    writer.WriteNullValue();
                    break;
                case string s:
                    writer.WriteStringValue(s);
                    break;
                case bool b:
                    writer.WriteBooleanValue(b);
                    break;
                case long n:
                    writer.WriteNumberValue(n);
                    break;
                case JsonElement e:
                    e.WriteTo(writer);
                    break;
                case ValueList list:
                    writer.WriteStartArray();
                    foreach (var item in list.Items)
                    {
                        WriteJson(writer, item);
                    }

                    writer.WriteEndArray();
                    break;
                default:
                    writer.WriteStringValue(v.ToString());
                    break;
            }
        }
    }
}
