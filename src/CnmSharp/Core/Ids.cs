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
        FillRandom(bytes);
        return Convert.ToHexStringLower(bytes);
    }

    /// <summary>
    /// Fills <paramref name="bytes"/> from the kernel's random generator (<c>/dev/urandom</c>), falling back to
    /// <see cref="RandomNumberGenerator"/>. On Linux <see cref="RandomNumberGenerator"/> goes through OpenSSL, whose
    /// load and initialization (libssl, libcrypto, openssl.cnf) every process pays on first use: every controller start
    /// makes an id (its intent owner), and a <c>cnm</c> command is one start (docs/cli-performance.md).
    /// </summary>
    internal static void FillRandom(Span<byte> bytes)
    {
        try
        {
            using var random = new FileStream("/dev/urandom", FileMode.Open, FileAccess.Read, FileShare.ReadWrite, bufferSize: 0);
            random.ReadExactly(bytes);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or NotSupportedException)
        {
            RandomNumberGenerator.Fill(bytes);
        }
    }

    /// <summary>True for an id of the form <see cref="NewId"/> makes: 64 lowercase hexadecimal digits.</summary>
    public static bool IsFullId(string? id) =>
        id is { Length: 64 } && id.AsSpan().IndexOfAnyExcept(LowerHex) < 0;

    private static readonly System.Buffers.SearchValues<char> LowerHex = System.Buffers.SearchValues.Create("0123456789abcdef");

    /// <summary>The short form (first 12 characters) of an id.</summary>
    public static string Short(string id) => id.Length > 12 ? id[..12] : id;
}
