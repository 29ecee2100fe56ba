using System.Text;
using System.Text.Json;
using CsCheck;

namespace CnmSharp.Testing;

/// <summary>
/// Generators of hostile JSON text for the parsers of plugin messages and store records: objects whose known fields
/// get plausible, wrong-typed, null, huge or malformed values, and raw damage (truncation, random bytes, deep nesting,
/// megabyte strings, invalid UTF-8 and surrogates, duplicate keys).
/// </summary>
public static class HostileJson
{
    /// <summary>Strings that parsers of addresses, names and scopes meet in practice, valid and not.</summary>
    public static readonly string[] InterestingStrings =
    [
        "", " ", "10.0.0.2/24", "10.0.0.0/24", "fd00::2/64", "fd00::/64", "10.0.0.1", "fd00::1", "0.0.0.0/0", "::/0",
        "10.0.0.0/33", "fd00::/129", "10.0.0.1/-1", "1.2.3", "010.0.0.1", "::ffff:10.0.0.1", "::ffff:10.0.0.1/120",
        "fe80::1%eth0", "fe80::1%eth0/64", "256.0.0.1", "10.0.0.1/24/24", "02:42:ac:11:00:02", "02-42-AC-11-00-02",
        "02:42:ac:11:00", "02:42:ac:11:00:02:03", "ff:ff:ff:ff:ff:ff", "AkKsEQAC", "local", "global", "swarm",
        "NetworkDriver", "IpamDriver", "eth", "veth0", "a-very-long-interface-name", "eth0/..", "../../etc/passwd",
        "default", "null", "true", "0", "-1", "65536", "tcp", "udp", "\u0000", "\u00e9", "\ud83d\ude00", "a\nb",
        "x;rm -rf /", new string('a', 300),
    ];

    /// <summary>A JSON string literal (escaped by the serializer), or a hand-written one with a lone surrogate.</summary>
    public static Gen<string> StringLiteral { get; } = Gen.OneOf(
        Gen.OneOf(InterestingStrings).Select(Quote),
        Gen.String[0, 24].Select(Quote),
        Gen.OneOf("\"\\ud800\"", "\"\\udfff x\"", "\"\\u0000\"", "\"\\x41\"", "\"" + new string('b', 70_000) + "\""));

    /// <summary>Any JSON scalar, valid or nearly so.</summary>
    public static Gen<string> Scalar { get; } = Gen.OneOf(
        Gen.OneOf("null", "true", "false", "0", "-0", "1.5", "1e400", "-1e400", "18446744073709551616", "-2147483649", "NaN", "01"),
        Gen.Int.Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)),
        StringLiteral);

    /// <summary>Any JSON value up to <paramref name="depth"/> levels of arrays and objects.</summary>
    public static Gen<string> Value(int depth, IReadOnlyList<string>? names = null) => depth <= 0
        ? Scalar
        : Gen.OneOf(
            Scalar,
            Scalar,
            Value(depth - 1, names).Array[0, 3].Select(items => "[" + string.Join(",", items) + "]"),
            Gen.Select(Name(names), Value(depth - 1, names)).Array[0, 3].Select(JsonObject));

    /// <summary>An object whose named fields each get a value from their generator (or a hostile one), some left out,
    /// some written twice, plus an unknown field now and then.</summary>
    public static Gen<string> Shaped(params (string Name, Gen<string> Value)[] fields)
    {
        var names = fields.Select(f => f.Name).ToArray();
        var members = fields.Select(f => Gen.Select(Gen.Int[0, 9], CaseVariant(f.Name), Gen.Frequency((5, f.Value), (1, Value(2, names))))
            .Select(t => t.Item1 switch
            {
                0 => Array.Empty<(string, string)>(),
                1 => new[] { (t.Item2, t.Item3), (t.Item2, "null") },
                _ => new[] { (t.Item2, t.Item3) },
            })).ToArray();
        var all = Gen.Const(Array.Empty<(string, string)>());
        foreach (var member in members)
        {
            all = Gen.Select(all, member).Select(t => t.Item1.Concat(t.Item2).ToArray());
        }

        return Gen.Select(all, Gen.Select(Name(null), Value(1)).Array[0, 1])
            .Select(t => JsonObject([.. t.Item1, .. t.Item2]));
    }

    /// <summary>A body: mostly <paramref name="shaped"/>, sometimes damaged or replaced by raw hostility.</summary>
    public static Gen<byte[]> Body(Gen<string> shaped) => Gen.Frequency(
        (12, shaped.Select(Encoding.UTF8.GetBytes)),
        (1, Gen.Select(shaped, Gen.Int).Select(t =>
        {
            var bytes = Encoding.UTF8.GetBytes(t.Item1);
            return bytes[..(int)((uint)t.Item2 % (uint)(bytes.Length + 1))];
        })),
        (1, Gen.Select(shaped, Gen.Int, Gen.Byte).Select(t =>
        {
            var bytes = Encoding.UTF8.GetBytes(t.Item1);
            if (bytes.Length > 0)
            {
                bytes[(int)((uint)t.Item2 % (uint)bytes.Length)] = t.Item3;
            }

            return bytes;
        })),
        (1, Gen.OneOf(
        Value(3).Select(Encoding.UTF8.GetBytes),
        Gen.Byte.Array[0, 64],
        Gen.Int[1, 5_000].Select(depth => Encoding.UTF8.GetBytes(new string('[', depth) + new string(']', depth))),
        Gen.Int[1, 5_000].Select(depth => Encoding.UTF8.GetBytes(string.Concat(Enumerable.Repeat("{\"a\":", depth)) + "1" + new string('}', depth))),
        Gen.OneOf(
            "{}"u8.ToArray(), "null"u8.ToArray(), "[]"u8.ToArray(), "\"{}\""u8.ToArray(), ""u8.ToArray(), "{"u8.ToArray(),
            [0xEF, 0xBB, 0xBF, (byte)'{', (byte)'}'], [(byte)'{', (byte)'"', 0xC3, 0x28, (byte)'"', (byte)':', (byte)'1', (byte)'}'],
            Encoding.UTF8.GetBytes("{\"x\":\"" + new string('z', 1 << 20) + "\"}")))));

    /// <summary>The name of a field: one of <paramref name="names"/> (in any letter case) or a random one.</summary>
    private static Gen<string> Name(IReadOnlyList<string>? names) => names is { Count: > 0 }
        ? Gen.OneOf(Gen.OneOf<string>([.. names]).SelectMany(CaseVariant), Gen.String[0, 8])
        : Gen.String[0, 8];

    private static Gen<string> CaseVariant(string name) => Gen.Int[0, 3].Select(i => i switch
    {
        1 => name.ToLowerInvariant(),
        2 => name.ToUpperInvariant(),
        _ => name,
    });

    /// <summary>A JSON object from members given as (name, raw JSON value).</summary>
    public static string JsonObject(IEnumerable<(string Name, string Value)> members) =>
        "{" + string.Join(",", members.Select(m => Quote(m.Name) + ":" + m.Value)) + "}";

    /// <summary>A JSON string literal.</summary>
    public static string Quote(string text) => JsonSerializer.Serialize(text);
}
