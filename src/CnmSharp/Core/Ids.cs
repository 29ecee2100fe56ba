using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text.RegularExpressions;

namespace CnmSharp.Core;

/// <summary>Ids and name rules.</summary>
internal static partial class Ids
{
    /// <summary>A random 64-hex-character id, as libnetwork and Docker use.</summary>
    public static string NewId()
    {
        Span<byte> bytes = stackalloc byte[32];
        RandomNumberGenerator.Fill(bytes);
        return Convert.ToHexStringLower(bytes);
    }

    /// <summary>True for an id of the form <see cref="NewId"/> makes: 64 lowercase hexadecimal digits.</summary>
    public static bool IsFullId(string? id) =>
        id is { Length: 64 } && id.AsSpan().IndexOfAnyExcept(LowerHex) < 0;

    private static readonly System.Buffers.SearchValues<char> LowerHex = System.Buffers.SearchValues.Create("0123456789abcdef");

    /// <summary>The short form (first 12 characters) of an id.</summary>
    public static string Short(string id) => id.Length > 12 ? id[..12] : id;

    /// <summary>Object names: what Docker accepts for network and container names.</summary>
    [GeneratedRegex("^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,254}$", RegexOptions.CultureInvariant)]
    private static partial Regex NamePattern();

    /// <summary>Ids given by callers.</summary>
    [GeneratedRegex("^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$", RegexOptions.CultureInvariant)]
    private static partial Regex IdPattern();

    public static void ValidateName(string? name, string what)
    {
        if (string.IsNullOrWhiteSpace(name) || !NamePattern().IsMatch(name))
        {
            throw new CnmInvalidArgumentException(
                CnmErrorCodes.InvalidName,
                $"{what} name \"{name}\"",
                "invalid name: use 1 to 255 letters, digits, '_', '.' or '-', starting with a letter or digit");
        }
    }

    public static void ValidateId(string? id, string what)
    {
        if (string.IsNullOrWhiteSpace(id) || !IdPattern().IsMatch(id))
        {
            throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidId, $"{what} id \"{id}\"", "invalid id");
        }
    }
}
