using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace CnmSharp.Cli;

/// <summary>
/// A directory <c>cnm demo</c> works in, and the proof that the demo made what it removes there. A directory the demo
/// creates or claims gets the marker file <see cref="MarkerName"/>, which lists the directories the demo created for it;
/// the demo holds it open with an exclusive lock while it runs (so a second demo neither uses nor cleans it). A given
/// directory is taken only when it does not exist, is empty, or carries that marker; anything else is refused before
/// anything is touched. At the end the demo removes the entries it makes (<see cref="OwnEntries"/>), the marker, and the
/// directories it created, only when they are then empty.
/// </summary>
internal sealed class DemoDirectory : IDisposable
{
    /// <summary>The marker file's name.</summary>
    public const string MarkerName = ".cnm-demo";

    private const string Magic = "cnm-demo marker v1: this directory is used by `cnm demo`, which removes only what it made here";
    private const string CreatedPrefix = "created ";
    private const UnixFileMode Mode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    private readonly List<string> _created;
    private FileStream? _marker;

    private DemoDirectory(string path, string what, Func<string, bool> ownEntries, bool exists, bool marked, List<string> created)
    {
        Path = path;
        What = what;
        OwnEntries = ownEntries;
        Exists = exists;
        Marked = marked;
        _created = created;
    }

    /// <summary>The canonical path (absolute, no trailing separator, symbolic links resolved).</summary>
    public string Path { get; }

    /// <summary>What it is, for messages ("state directory").</summary>
    public string What { get; }

    /// <summary>Whether an entry name is one the demo makes in this directory.</summary>
    public Func<string, bool> OwnEntries { get; }

    /// <summary>Whether it carried the demo's marker when inspected: an earlier run used it (leftovers possible).</summary>
    public bool Marked { get; }

    private bool Exists { get; }

    private string MarkerPath => System.IO.Path.Combine(Path, MarkerName);

    /// <summary>Checks a directory the demo is given (or will create), touching nothing.</summary>
    /// <exception cref="CliException">It exists and is not a directory, or holds entries without the demo's marker, or
    /// its marker is not the demo's.</exception>
    public static DemoDirectory Inspect(string path, string what, Func<string, bool> ownEntries)
    {
        var canonical = Canonical(path);
        if (File.Exists(canonical))
        {
            throw new CliException($"demo: refusing {what} {canonical}: it is a file, not a directory");
        }

        if (!Directory.Exists(canonical))
        {
            return new DemoDirectory(canonical, what, ownEntries, exists: false, marked: false, []);
        }

        var marker = System.IO.Path.Combine(canonical, MarkerName);
        if (ReadMarker(marker) is { } created)
        {
            return new DemoDirectory(canonical, what, ownEntries, exists: true, marked: true, created);
        }

        if (Directory.EnumerateFileSystemEntries(canonical).Any())
        {
            throw new CliException($"demo: refusing {what} {canonical}: it holds files the demo did not make (no {MarkerName} marker of the demo); give a new or empty directory, or none (the demo then uses a temporary directory of its own)");
        }

        return new DemoDirectory(canonical, what, ownEntries, exists: true, marked: false, []);
    }

    /// <summary>Takes the directory: creates it (and missing parents) when missing, writes or locks the marker.</summary>
    /// <exception cref="CliException">Another demo holds its marker.</exception>
    public void Acquire()
    {
        if (!Exists)
        {
            var missing = new Stack<string>();
            for (var d = Path; !Directory.Exists(d); d = System.IO.Path.GetDirectoryName(d)!)
            {
                missing.Push(d);
            }

            while (missing.TryPop(out var d))
            {
                CreatePrivateDirectory(d);
                _created.Add(d);
            }
        }

        try
        {
            if (Marked)
            {
                _marker = new FileStream(MarkerPath, FileMode.Open, FileAccess.ReadWrite, FileShare.None);
            }
            else
            {
                _marker = new FileStream(MarkerPath, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None);
                var text = new StringBuilder(Magic).Append('\n');
                foreach (var d in _created)
                {
                    text.Append(CreatedPrefix).Append(d).Append('\n');
                }

                _marker.Write(Encoding.UTF8.GetBytes(text.ToString()));
                _marker.Flush(flushToDisk: true);
            }
        }
        catch (IOException ex)
        {
            throw new CliException($"demo: {What} {Path} is in use by another cnm demo ({ex.Message})");
        }
    }

    /// <summary>Locks the marker of a leftover directory; false when another demo holds it.</summary>
    public bool TryAcquire()
    {
        try
        {
            Acquire();
            return true;
        }
        catch (CliException)
        {
            return false;
        }
    }

    /// <summary>The entries the demo made here (the marker aside), as they are now.</summary>
    public IReadOnlyList<string> PresentOwnEntries() =>
        Directory.Exists(Path)
            ? [.. Directory.EnumerateFileSystemEntries(Path).Where(e => OwnEntries(System.IO.Path.GetFileName(e))).Order(StringComparer.Ordinal)]
            : [];

    /// <summary>Removes the marker and every directory the demo created for this one that is empty now, deepest first;
    /// returns one line per removed directory, or one saying what was left and why.</summary>
    public IReadOnlyList<string> Finish()
    {
        var lines = new List<string>();
        _marker?.Dispose();
        _marker = null;
        File.Delete(MarkerPath);
        for (var i = _created.Count - 1; i >= 0; i--)
        {
            var d = _created[i];
            if (!Directory.Exists(d))
            {
                continue;
            }

            if (Directory.EnumerateFileSystemEntries(d).Any())
            {
                lines.Add($"left {d} in place: it holds entries the demo did not make");
                break;
            }

            Directory.Delete(d);
            lines.Add("removed directory " + d);
        }

        if (_created.Count == 0)
        {
            lines.Add($"removed the marker {MarkerPath} (the {What} itself was there before and stays)");
        }

        return lines;
    }

    /// <summary>Releases the marker's lock (at exit, or for <c>--keep</c>).</summary>
    public void Dispose()
    {
        _marker?.Dispose();
        _marker = null;
    }

    /// <summary>The directories a leftover temporary directory of an earlier default run lists, or null when
    /// <paramref name="path"/> is not one: a real directory (not a link) owned by this user, carrying the marker.</summary>
    public static DemoDirectory? InspectLeftover(string path, string what, Func<string, bool> ownEntries)
    {
        var info = new DirectoryInfo(path);
        if (!info.Exists || info.LinkTarget is not null || !OwnedByMe(path))
        {
            return null;
        }

        return ReadMarker(System.IO.Path.Combine(path, MarkerName)) is { } created
            ? new DemoDirectory(Canonical(path), what, ownEntries, exists: true, marked: true, created)
            : null;
    }

    /// <summary>A fresh temporary directory of the demo's own (0700, under the system's temporary folder), marked.</summary>
    public static DemoDirectory CreateTemporary(string prefix, Func<string, bool> ownEntries)
    {
        var dir = Directory.CreateTempSubdirectory(prefix); // 0700
        var d = new DemoDirectory(Canonical(dir.FullName), "temporary directory", ownEntries, exists: true, marked: false, [Canonical(dir.FullName)]);
        d.Acquire();
        return d;
    }

    private static void CreatePrivateDirectory(string directory)
    {
        if (OperatingSystem.IsWindows())
        {
            throw new PlatformNotSupportedException("cnm demo runs on Linux");
        }

        // mkdir applies the umask: the mode is set again.
        Directory.CreateDirectory(directory, Mode);
        File.SetUnixFileMode(directory, Mode);
    }

    /// <summary>The marker's list of created directories, or null when the file is not the demo's marker (missing, not
    /// a regular file, not owned by this user, or without the demo's first line).</summary>
    private static List<string>? ReadMarker(string marker)
    {
        var info = new FileInfo(marker);
        if (!info.Exists || info.LinkTarget is not null || info.Length > 64 * 1024 || !OwnedByMe(marker))
        {
            return null;
        }

        string[] lines;
        try
        {
            using var stream = new FileStream(marker, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            using var reader = new StreamReader(stream, Encoding.UTF8);
            lines = reader.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }

        if (lines.Length == 0 || lines[0] != Magic)
        {
            return null;
        }

        var directory = System.IO.Path.GetDirectoryName(marker)!;
        return [.. lines.Skip(1)
            .Where(l => l.StartsWith(CreatedPrefix, StringComparison.Ordinal))
            .Select(l => l[CreatedPrefix.Length..])
            .Where(d => d == directory || directory.StartsWith(d + "/", StringComparison.Ordinal))];
    }

    /// <summary>Whether this process's user owns <paramref name="path"/> (not following a final symbolic link).</summary>
    private static bool OwnedByMe(string path)
    {
        var start = new ProcessStartInfo("stat", ["-c", "%u", "--", path]) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        using var process = Process.Start(start);
        if (process is null)
        {
            return false;
        }

        var output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return process.ExitCode == 0 && uint.TryParse(output.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var uid) &&
            uid == GetUid();
    }

    private static uint GetUid()
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
        {
            if (line.StartsWith("Uid:", StringComparison.Ordinal))
            {
                var fields = line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
                return uint.Parse(fields[2], CultureInfo.InvariantCulture); // the effective uid
            }
        }

        throw new CliException("cannot read this process's uid from /proc/self/status");
    }

    /// <summary>The canonical form of a path: absolute, without a trailing separator, every symbolic link along it
    /// resolved (the parts that do not exist yet are kept as they are).</summary>
    public static string Canonical(string path)
    {
        var full = System.IO.Path.TrimEndingDirectorySeparator(System.IO.Path.GetFullPath(path));
        var result = "/";
        var parts = new Queue<string>(full.Split('/', StringSplitOptions.RemoveEmptyEntries));
        var links = 0;
        while (parts.TryDequeue(out var part))
        {
            var candidate = System.IO.Path.Combine(result, part);
            var info = new FileInfo(candidate);
            var target = info.Exists || Directory.Exists(candidate) ? info.LinkTarget : null;
            if (target is null)
            {
                result = candidate;
                continue;
            }

            if (++links > 40)
            {
                throw new CliException($"demo: {path}: too many levels of symbolic links");
            }

            // Resolve the link's target (relative to the link's folder) and walk it again, then the rest.
            var resolved = System.IO.Path.GetFullPath(target, result);
            var rest = parts.ToArray();
            parts = new Queue<string>(resolved.Split('/', StringSplitOptions.RemoveEmptyEntries).Concat(rest));
            result = "/";
        }

        return result;
    }
}
