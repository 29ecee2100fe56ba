using System.Text;

namespace CnmSharp.Sandboxes.Files;

/// <summary>Whole-file writes that readers never see half done: a temporary file in the same directory, then a rename.</summary>
internal static class AtomicFile
{
    /// <summary>rw-r--r--, the mode of every file CnmSharp writes for a sandbox.</summary>
    internal const UnixFileMode Mode0644 =
        UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead;

    /// <summary>The suffix of temporary files; a crash can leave one behind, and <see cref="IsTemporary"/> recognises it.</summary>
    internal const string TemporarySuffix = ".cnmtmp";

    private static readonly UTF8Encoding s_utf8 = new(encoderShouldEmitUTF8Identifier: false);

    internal static Task WriteTextAsync(string path, string content, CancellationToken cancellationToken) =>
        WriteAsync(path, s_utf8.GetBytes(content), cancellationToken);

    internal static async Task WriteAsync(string path, ReadOnlyMemory<byte> content, CancellationToken cancellationToken)
    {
        var fullPath = Path.GetFullPath(path);
        var directory = Path.GetDirectoryName(fullPath)
            ?? throw new ArgumentException("The path has no parent directory.", nameof(path));
        var temporary = Path.Combine(
            directory, "." + Path.GetFileName(fullPath) + "." + Guid.NewGuid().ToString("N")[..12] + TemporarySuffix);
        try
        {
            var options = new FileStreamOptions
            {
                Mode = FileMode.CreateNew,
                Access = FileAccess.Write,
                Share = FileShare.None,
                Options = FileOptions.Asynchronous,
            };
            if (!OperatingSystem.IsWindows())
            {
                options.UnixCreateMode = Mode0644;
            }

            var stream = new FileStream(temporary, options);
            await using (stream.ConfigureAwait(false))
            {
                await stream.WriteAsync(content, cancellationToken).ConfigureAwait(false);
                // No fsync: sandbox files live in the run directory, which does not outlive a reboot, and the rename
                // below is atomic for every reader and across a process crash. An fsync here cost about 5-15 ms per
                // write, several writes per container (measured by the sandbox-setup workload).
                await stream.FlushAsync(cancellationToken).ConfigureAwait(false);
            }

            if (!OperatingSystem.IsWindows())
            {
                // The create mode is filtered by the umask; set it exactly.
                File.SetUnixFileMode(temporary, Mode0644);
            }

            File.Move(temporary, fullPath, overwrite: true);
        }
        catch
        {
            TryDelete(temporary);
            throw;
        }
    }

    /// <summary>Reads a whole text file, or returns null when it does not exist.</summary>
    internal static async Task<string?> TryReadTextAsync(string path, CancellationToken cancellationToken)
    {
        try
        {
            return await File.ReadAllTextAsync(path, s_utf8, cancellationToken).ConfigureAwait(false);
        }
        catch (FileNotFoundException)
        {
            return null;
        }
        catch (DirectoryNotFoundException)
        {
            return null;
        }
    }

    /// <summary>Reads a whole file, or returns null when it does not exist.</summary>
    internal static async Task<byte[]?> TryReadBytesAsync(string path, CancellationToken cancellationToken)
    {
        try
        {
            return await File.ReadAllBytesAsync(path, cancellationToken).ConfigureAwait(false);
        }
        catch (FileNotFoundException)
        {
            return null;
        }
        catch (DirectoryNotFoundException)
        {
            return null;
        }
    }

    internal static string Decode(byte[] content) => s_utf8.GetString(content);

    internal static byte[] Encode(string content) => s_utf8.GetBytes(content);

    internal static bool IsTemporary(string fileName) => fileName.EndsWith(TemporarySuffix, StringComparison.Ordinal);

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    /// <summary>Splits text into lines (LF; a CR before it is dropped); a final newline does not make an empty last line.</summary>
    internal static List<string> SplitLines(string content)
    {
        var lines = new List<string>();
        if (content.Length == 0)
        {
            return lines;
        }

        var start = 0;
        while (start < content.Length)
        {
            var end = content.IndexOf('\n', start);
            if (end < 0)
            {
                end = content.Length;
            }

            var line = content[start..end];
            lines.Add(line.EndsWith('\r') ? line[..^1] : line);
            start = end + 1;
        }

        return lines;
    }

    /// <summary>Joins lines with LF, each line ending with one.</summary>
    internal static string JoinLines(IEnumerable<string> lines)
    {
        var builder = new StringBuilder();
        foreach (var line in lines)
        {
            builder.Append(line).Append('\n');
        }

        return builder.ToString();
    }
}
