using System.Runtime.InteropServices;

namespace CnmSharp.Plugins.Hosting;

/// <summary>The file type of a path through <c>statx(2)</c> (its layout is the same on every architecture).</summary>
internal static partial class SocketFiles
{
    private const int AtFdCwd = -100;
    private const int AtSymlinkNoFollow = 0x100;
    private const uint StatxType = 0x0001;
    private const ushort TypeMask = 0xF000;
    private const ushort SocketType = 0xC000;

    /// <summary>True when <paramref name="path"/> itself (not a link's target) is a unix socket.</summary>
    public static unsafe bool IsSocket(string path)
    {
        // struct statx is 256 bytes; stx_mode is the u16 at offset 28.
        byte* buffer = stackalloc byte[256];
        if (Statx(AtFdCwd, path, AtSymlinkNoFollow, StatxType, buffer) != 0)
        {
            return false;
        }

        return (*(ushort*)(buffer + 28) & TypeMask) == SocketType;
    }

    /// <summary>Sets a file's mode exactly (the create mode is filtered by the umask).</summary>
    public static void SetMode(string path, UnixFileMode mode)
    {
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(path, mode);
        }
    }

    /// <summary>Creates a directory (and its parents) as 0700 when it does not exist.</summary>
    public static void CreatePrivateDirectory(string path)
    {
        if (OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(path);
        }
        else
        {
            Directory.CreateDirectory(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
    }

    [LibraryImport("libc", EntryPoint = "statx", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static unsafe partial int Statx(int dirfd, string path, int flags, uint mask, byte* buffer);
}
