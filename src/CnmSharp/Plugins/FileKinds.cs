using System.Runtime.InteropServices;

namespace CnmSharp.Plugins;

/// <summary>The file type of a path, through <c>statx(2)</c>, whose layout is the same on every architecture.</summary>
internal static partial class FileKinds
{
    private const int AtFdCwd = -100;
    private const uint StatxType = 0x0001;
    private const uint StatxIno = 0x0100;
    private const uint StatxCtime = 0x0080;
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

    /// <summary>The identity (device and inode) of the file at <paramref name="path"/>, or null when it does not exist.
    /// A plugin that restarts makes a new socket: a new identity.</summary>
    public static unsafe (ulong Device, ulong Inode, long ChangeSeconds, uint ChangeNanoseconds)? Identity(string path)
    {
        // stx_ino is the u64 at offset 32, stx_ctime the timestamp at 96 (s64 seconds, u32 nanoseconds); stx_dev_major
        // and stx_dev_minor the u32s at 136 and 140. An inode number may be reused at once for the new socket; its
        // change time is not.
        byte* buffer = stackalloc byte[256];
        if (Statx(AtFdCwd, path, 0, StatxType | StatxIno | StatxCtime, buffer) != 0)
        {
            return null;
        }

        var device = ((ulong)*(uint*)(buffer + 136) << 32) | *(uint*)(buffer + 140);
        return (device, *(ulong*)(buffer + 32), *(long*)(buffer + 96), *(uint*)(buffer + 104));
    }

    [LibraryImport("libc", EntryPoint = "statx", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static unsafe partial int Statx(int dirfd, string path, int flags, uint mask, byte* buffer);
}
