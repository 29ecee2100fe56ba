using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace CnmSharp.Netlink.Interop;

/// <summary>libc calls used by the network-namespace layer. One small declaration per function.</summary>
internal static unsafe partial class NamespaceInterop
{
    internal const int CLONE_NEWNET = 0x40000000;

    internal const nuint MS_BIND = 4096;
    internal const nuint MS_REC = 16384;
    internal const nuint MS_PRIVATE = 1 << 18;
    internal const nuint MS_SHARED = 1 << 20;

    internal const int MNT_DETACH = 2;

    internal const int O_RDONLY = 0;
    internal const int O_WRONLY = 1;
    internal const int O_CREAT = 0x40;
    internal const int O_EXCL = 0x80;
    internal const int O_CLOEXEC = 0x80000;

    /// <summary><c>NS_GET_NSTYPE</c> = <c>_IO(0xb7, 0x3)</c>: the CLONE_NEW* type of a namespace file.</summary>
    internal const nuint NS_GET_NSTYPE = 0xb703;

    internal const int EPERM = 1;
    internal const int ENOENT = 2;
    internal const int ESRCH = 3;
    internal const int EINTR = 4;
    internal const int EACCES = 13;
    internal const int EBUSY = 16;
    internal const int EEXIST = 17;
    internal const int EINVAL = 22;
    internal const int ENOTTY = 25;

    [LibraryImport("libc", EntryPoint = "unshare", SetLastError = true)]
    internal static partial int Unshare(int flags);

    [LibraryImport("libc", EntryPoint = "setns", SetLastError = true)]
    internal static partial int SetNs(SafeHandle fd, int nstype);

    [LibraryImport("libc", EntryPoint = "mount", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int Mount(string source, string target, string fileSystemType, nuint flags, nint data);

    [LibraryImport("libc", EntryPoint = "umount2", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int Umount2(string target, int flags);

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial SafeFileHandle Open(string path, int flags, uint mode);

    [LibraryImport("libc", EntryPoint = "unlink", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int Unlink(string path);

    [LibraryImport("libc", EntryPoint = "ioctl", SetLastError = true)]
    internal static partial int Ioctl(SafeHandle fd, nuint request, nint argument);

    internal const int AT_EMPTY_PATH = 0x1000;
    internal const uint STATX_INO = 0x100;

    /// <summary><c>statx</c>: its buffer layout is the same on every architecture (<c>stx_ino</c> at offset 32).</summary>
    [LibraryImport("libc", EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int Statx(SafeHandle directoryFd, string path, int flags, uint mask, byte* buffer);

    /// <summary>The inode number of an open file.</summary>
    internal static bool TryGetInode(SafeHandle fd, out ulong inode, out int errno)
    {
        var buffer = stackalloc byte[256];
        if (Statx(fd, string.Empty, AT_EMPTY_PATH, STATX_INO, buffer) != 0)
        {
            errno = Marshal.GetLastPInvokeError();
            inode = 0;
            return false;
        }

        errno = 0;
        inode = *(ulong*)(buffer + 32);
        return true;
    }

    [LibraryImport("libc", EntryPoint = "read", SetLastError = true)]
    internal static partial nint Read(SafeHandle fd, byte* buffer, nuint count);

    [LibraryImport("libc", EntryPoint = "write", SetLastError = true)]
    internal static partial nint Write(SafeHandle fd, byte* buffer, nuint count);

    /// <summary>Opens <paramref name="path"/> and returns the handle, or null with <paramref name="errno"/> set.</summary>
    internal static SafeFileHandle? TryOpen(string path, int flags, out int errno, uint mode = 0)
    {
        var handle = Open(path, flags | O_CLOEXEC, mode);
        if (handle.IsInvalid)
        {
            errno = Marshal.GetLastPInvokeError();
            handle.Dispose();
            return null;
        }

        errno = 0;
        return handle;
    }
}
