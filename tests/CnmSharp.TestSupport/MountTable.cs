namespace CnmSharp.Testing;

/// <summary>Reads <c>/proc/self/mountinfo</c>: tests check that nothing stays mounted after them.</summary>
public static class MountTable
{
    /// <summary>The mount points of the calling process's mount namespace (octal escapes decoded).</summary>
    /// <returns>Mount points, in mountinfo order.</returns>
    public static IReadOnlyList<string> MountPoints() =>
        [.. File.ReadAllLines("/proc/self/mountinfo").Select(line => Unescape(line.Split(' ')[4]))];

    /// <summary>The mountinfo lines whose mount point is <paramref name="path"/> or lies under it.</summary>
    /// <param name="path">A path.</param>
    /// <returns>The matching lines.</returns>
    public static IReadOnlyList<string> LinesUnder(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var prefix = path.TrimEnd('/') + "/";
        return [.. File.ReadAllLines("/proc/self/mountinfo").Where(line =>
        {
            var point = Unescape(line.Split(' ')[4]);
            return point == path.TrimEnd('/') || point.StartsWith(prefix, StringComparison.Ordinal);
        })];
    }

    /// <summary>Whether <paramref name="path"/> is a mount point.</summary>
    /// <param name="path">A path.</param>
    /// <returns>True when mounted.</returns>
    public static bool IsMountPoint(string path) => MountPoints().Contains(path.TrimEnd('/'), StringComparer.Ordinal);

    private static string Unescape(string field)
    {
        if (!field.Contains('\\', StringComparison.Ordinal))
        {
            return field;
        }

        var builder = new System.Text.StringBuilder(field.Length);
        for (var i = 0; i < field.Length; i++)
        {
            if (field[i] == '\\' && i + 3 < field.Length)
            {
                builder.Append((char)Convert.ToInt32(field.Substring(i + 1, 3), 8));
                i += 3;
            }
            else
            {
                builder.Append(field[i]);
            }
        }

        return builder.ToString();
    }
}
