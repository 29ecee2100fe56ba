using System.Globalization;
using System.Runtime.InteropServices;

namespace CnmSharp.Core;

/// <summary>
/// The one place that decides whether a directory or file is the controller's own, and whether a path may be
/// unmounted or deleted. A state or run directory (or the store file) must be owned by this process's user or by root
/// and must not be writable by group or others, as ssh demands of its key files; directories this code creates get an
/// explicit mode whatever the umask. Paths to delete must resolve to a direct child of a given root directory, with no
/// symbolic link in the last component and none leading out of the root.
/// </summary>
internal static unsafe partial class OwnedDirectory
{
    /// <summary>The state directory's mode: only the owner.</summary>
    public const UnixFileMode StateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    /// <summary>The run directory's mode (and of its <c>netns/</c> and <c>sandboxes/</c>): others may traverse it
    /// (a container runtime in a user namespace must reach the bind-mounted hosts and resolv.conf files) but not list it.</summary>
    public const UnixFileMode RunMode = StateMode | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute;

    /// <summary>The mode of a sandbox's own file directory: readable by all (its files are 0644).</summary>
    public const UnixFileMode SandboxFilesMode = RunMode | UnixFileMode.GroupRead | UnixFileMode.OtherRead;

    /// <summary>The mode of parent directories this code creates because they were missing.</summary>
    private const UnixFileMode ParentMode = SandboxFilesMode;

    private const int AtFdCwd = -100;
    private const int AtSymlinkNoFollow = 0x100;
    private const uint StatxBasicStats = 0x7ff;
    private const int ENOENT = 2;
    private const int ENOTDIR = 20;
    private const uint TypeMask = 0xF000;
    private const uint TypeDirectory = 0x4000;
    private const uint TypeSymlink = 0xA000;
    private const uint TypeRegular = 0x8000;
    private const uint GroupOrOtherWrite = 0x12; // 0o022

    /// <summary>What a path is, as <c>statx</c> saw it.</summary>
    internal readonly record struct FileStatus(uint Uid, uint Mode, ulong Inode, uint DeviceMajor, uint DeviceMinor)
    {
        public bool IsDirectory => (Mode & TypeMask) == TypeDirectory;

        public bool IsSymlink => (Mode & TypeMask) == TypeSymlink;

        public bool IsRegularFile => (Mode & TypeMask) == TypeRegular;
    }

    /// <summary>
    /// Creates <paramref name="path"/> if it is missing (missing parents get 0755, the directory itself
    /// <paramref name="mode"/>, both set explicitly so the umask does not matter), then checks that it is ours.
    /// </summary>
    /// <param name="path">An absolute path.</param>
    /// <param name="mode">The mode of the directory if it is created.</param>
    /// <param name="what">What the directory is, for the error message (for example "state directory").</param>
    /// <param name="parentMode">The mode of missing parents; 0755 when null.</param>
    /// <exception cref="CnmInvalidArgumentException">The path is relative, or the directory is not safely ours (code
    /// <see cref="CnmErrorCodes.UnsafeDirectory"/>).</exception>
    /// <exception cref="IOException">It cannot be created, or is not a directory.</exception>
    /// <exception cref="UnauthorizedAccessException">It cannot be created.</exception>
    public static void Ensure(string path, UnixFileMode mode, string what, UnixFileMode? parentMode = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!Path.IsPathRooted(path))
        {
            throw Unsafe(path, what, "the path must be absolute");
        }

        var full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(path));
        var missing = new Stack<string>();
        for (var directory = full; !string.IsNullOrEmpty(directory) && !Exists(directory); directory = Path.GetDirectoryName(directory))
        {
            missing.Push(directory);
        }

        while (missing.TryPop(out var directory))
        {
            CreateOne(directory, missing.Count == 0 ? mode : parentMode ?? ParentMode);
        }

        CheckDirectory(full, what);
    }

    /// <summary>Creates one directory (its parent exists) with exactly <paramref name="mode"/>: <c>mkdir</c> applies the
    /// umask, so the mode is set again. An existing directory keeps its mode.</summary>
    public static void CreateOne(string directory, UnixFileMode mode)
    {
        if (OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(directory);
            return;
        }

        if (Directory.Exists(directory))
        {
            return;
        }

        Directory.CreateDirectory(directory, mode);
        File.SetUnixFileMode(directory, mode);
    }

    /// <summary>Checks that an existing directory is ours: a directory (a symbolic link to one is followed), owned by
    /// this process's user or root, not writable by group or others.</summary>
    /// <param name="path">The directory.</param>
    /// <param name="what">What it is, for the error message.</param>
    /// <exception cref="CnmInvalidArgumentException">It is not safely ours.</exception>
    /// <exception cref="IOException">It does not exist or is not a directory.</exception>
    public static void CheckDirectory(string path, string what)
    {
        var status = Stat(path, followSymlinks: true) ?? throw new DirectoryNotFoundException($"The {what} {path} does not exist.");
        if (!status.IsDirectory)
        {
            throw new IOException($"The {what} {path} is not a directory.");
        }

        CheckOwnerAndMode(path, what, status);
    }

    /// <summary>Checks that an existing file is ours (see <see cref="CheckDirectory"/>); a missing file passes.</summary>
    /// <param name="path">The file.</param>
    /// <param name="what">What it is, for the error message.</param>
    /// <exception cref="CnmInvalidArgumentException">It is not.</exception>
    public static void CheckFileIfExists(string path, string what)
    {
        if (Stat(path, followSymlinks: false) is not { } status)
        {
            return;
        }

        if (!status.IsRegularFile)
        {
            throw Unsafe(path, what, "it is not a regular file (a symbolic link or a device is not accepted)");
        }

        CheckOwnerAndMode(path, what, status);
    }

    /// <summary>
    /// Resolves <paramref name="path"/> for a destructive operation confined to <paramref name="root"/>: it must name a
    /// direct child of the root (lexically), the child's parent must resolve (real path) to the root's real path, and the
    /// child itself must not be a symbolic link. Returns the child under the root's real path (what to act on), or null
    /// when the root does not exist (then nothing exists inside it either).
    /// </summary>
    /// <param name="path">The path to act on.</param>
    /// <param name="root">The directory it must be in.</param>
    /// <param name="what">What the path is, for the error message.</param>
    /// <returns>The path to act on, or null when there is nothing there.</returns>
    /// <exception cref="CnmInvalidArgumentException">The path is outside the root or is a symbolic link (code <see cref="CnmErrorCodes.UnownedPath"/>).</exception>
    public static string? ResolveChild(string path, string root, string what)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentException.ThrowIfNullOrEmpty(root);
        if (!TryGetChildName(path, root, out var name))
        {
            throw Unowned(path, what, $"it is not directly inside {root}");
        }

        var realRoot = RealPath(root);
        if (realRoot is null)
        {
            return null;
        }

        var realParent = RealPath(Path.GetDirectoryName(Path.GetFullPath(path))!);
        if (!string.Equals(realParent, realRoot, StringComparison.Ordinal))
        {
            throw Unowned(path, what, $"its directory resolves to {realParent ?? "nothing"}, not to {realRoot}");
        }

        var resolved = realRoot.TrimEnd('/') + "/" + name;
        if (Stat(resolved, followSymlinks: false) is { IsSymlink: true })
        {
            throw Unowned(path, what, "it is a symbolic link, which is never followed");
        }

        return resolved;
    }

    /// <summary>Whether <paramref name="path"/> names a direct child of <paramref name="root"/> (lexically, after
    /// normalisation), and its name.</summary>
    public static bool TryGetChildName(string path, string root, out string name)
    {
        name = string.Empty;
        if (string.IsNullOrEmpty(path) || !Path.IsPathRooted(path) || !Path.IsPathRooted(root) || path.Contains('\0', StringComparison.Ordinal))
        {
            return false;
        }

        var full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(path));
        var parent = Path.GetDirectoryName(full);
        var child = Path.GetFileName(full);
        if (parent is null || child.Length == 0 || child is "." or "..")
        {
            return false;
        }

        if (!string.Equals(parent, Path.TrimEndingDirectorySeparator(Path.GetFullPath(root)), StringComparison.Ordinal))
        {
            return false;
        }

        name = child;
        return true;
    }

    /// <summary><c>statx</c> of a path; null when it does not exist.</summary>
    public static FileStatus? Stat(string path, bool followSymlinks)
    {
        var buffer = stackalloc byte[256];
        if (Statx(AtFdCwd, path, followSymlinks ? 0 : AtSymlinkNoFollow, StatxBasicStats, buffer) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            if (errno is ENOENT or ENOTDIR)
            {
                return null;
            }

            throw new CnmInvalidArgumentException(CnmErrorCodes.UnsafeDirectory, path, $"cannot inspect it (statx errno {errno.ToString(CultureInfo.InvariantCulture)})");
        }

        // struct statx: stx_uid at 20, stx_mode (u16) at 28, stx_ino at 32, stx_dev_major/minor at 136/140.
        return new FileStatus(*(uint*)(buffer + 20), *(ushort*)(buffer + 28), *(ulong*)(buffer + 32), *(uint*)(buffer + 136), *(uint*)(buffer + 140));
    }

    /// <summary>The canonical absolute path (<c>realpath(3)</c>), or null when the path does not exist.</summary>
    public static string? RealPath(string path)
    {
        var result = RealPathNative(path, 0);
        if (result == 0)
        {
            return null;
        }

        try
        {
            return Marshal.PtrToStringUTF8(result);
        }
        finally
        {
            Free(result);
        }
    }

    /// <summary>The effective user id of this process.</summary>
    public static uint EffectiveUserId => GetEffectiveUserId();

    private static bool Exists(string path) => Stat(path, followSymlinks: true) is not null;

    private static void CheckOwnerAndMode(string path, string what, FileStatus status)
    {
        var euid = EffectiveUserId;
        if (status.Uid != euid && status.Uid != 0)
        {
            throw Unsafe(path, what, $"it is owned by uid {status.Uid.ToString(CultureInfo.InvariantCulture)}, not by this user (uid {euid.ToString(CultureInfo.InvariantCulture)}) or root");
        }

        if ((status.Mode & GroupOrOtherWrite) != 0)
        {
            throw Unsafe(path, what, $"its mode {Convert.ToString(status.Mode & 0xFFF, 8)} lets group or others write it (chmod go-w)");
        }
    }

    private static CnmInvalidArgumentException Unsafe(string path, string what, string reason, Exception? inner = null) =>
        new(CnmErrorCodes.UnsafeDirectory, $"{what} {path}", "refused: " + reason, inner);

    private static CnmInvalidArgumentException Unowned(string path, string what, string reason) =>
        new(CnmErrorCodes.UnownedPath, $"{what} {path}", "not the controller's own path, left untouched: " + reason);

    [LibraryImport("libc", EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Statx(int directoryFd, string path, int flags, uint mask, byte* buffer);

    [LibraryImport("libc", EntryPoint = "realpath", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial nint RealPathNative(string path, nint resolved);

    [LibraryImport("libc", EntryPoint = "free")]
    private static partial void Free(nint pointer);

    [LibraryImport("libc", EntryPoint = "geteuid")]
    private static partial uint GetEffectiveUserId();
}
