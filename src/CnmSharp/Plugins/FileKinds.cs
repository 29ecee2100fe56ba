using System.Runtime.InteropServices;

namespace CnmSharp.Plugins;

/// <summary>The file type of a path, through <c>statx(2)</c>, whose layout is the same on every architecture.</summary>
internal static partial class FileKinds
{
    private const int AtFdCwd = -100;
    private const uint StatxType = 0x0001;
    private const ushort TypeMask = 0xF000;
    private const ushort SocketType = 0xC000;

    /// <summary>True when <paramref name="path"/> is a unix socket (following symbolic links, as Go's os.Stat).</summary>
    public static unsafe bool IsSocket(string path)
    {
        // struct statx is 256 bytes; stx_mode is the u16 at offset 28.
        byte* buffer = stackalloc byte[256];
        if (Statx(AtFdCwd, path, 0, StatxType, buffer) != 0)
        {
            return false;
        }

        var mode = *(ushort*)(buffer + 28);
        return (mode & TypeMask) == SocketType;
    }

    [LibraryImport("libc", EntryPoint = "statx", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static unsafe partial int Statx(int dirfd, string path, int flags, uint mask, byte* buffer);
}
