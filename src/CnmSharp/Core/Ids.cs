using System.Buffers.Text;
using System.Security.Cryptography;

namespace CnmSharp.Core;

/// <summary>Ids (the rules for names and ids a caller gives are in <see cref="Validation"/>).</summary>
internal static class Ids
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
}
