using System.Runtime.InteropServices;

namespace CnmSharp.Netlink.Interop;

/// <summary>The few libc functions the netlink layer needs. One declaration per function.</summary>
internal static partial class Libc
{
    private const string Lib = "libc";

    public const int AF_NETLINK = 16;
    public const int AF_UNSPEC = 0;
    public const int AF_INET = 2;
    public const int AF_INET6 = 10;
    public const int AF_BRIDGE = 7;
    public const int SOCK_RAW = 3;
    public const int SOCK_CLOEXEC = 0x80000;
    public const int NETLINK_ROUTE = 0;
    public const int NETLINK_NETFILTER = 12;
    public const int SOL_SOCKET = 1;
    public const int SO_SNDBUF = 7;
    public const int SO_RCVBUF = 8;
    public const int SO_RCVBUFFORCE = 33;
    public const int SOL_NETLINK = 270;
    public const int NETLINK_ADD_MEMBERSHIP = 1;
    public const int NETLINK_CAP_ACK = 10;
    public const int NETLINK_EXT_ACK = 11;
    public const int NETLINK_GET_STRICT_CHK = 12;
    public const int O_RDONLY = 0;
    public const int O_CLOEXEC = 0x80000;
    public const int CLONE_NEWNET = 0x40000000;

    /// <summary>struct sockaddr_nl.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct SockAddrNetlink
    {
        public ushort Family;
        public ushort Pad;
        public uint PortId;
        public uint Groups;
    }

    [LibraryImport(Lib, EntryPoint = "socket", SetLastError = true)]
    public static partial int Socket(int domain, int type, int protocol);

    [LibraryImport(Lib, EntryPoint = "bind", SetLastError = true)]
    public static unsafe partial int Bind(int fd, SockAddrNetlink* addr, int addrlen);

    [LibraryImport(Lib, EntryPoint = "getsockname", SetLastError = true)]
    public static unsafe partial int GetSockName(int fd, SockAddrNetlink* addr, int* addrlen);

    [LibraryImport(Lib, EntryPoint = "setsockopt", SetLastError = true)]
    public static unsafe partial int SetSockOpt(int fd, int level, int name, void* value, int len);

    [LibraryImport(Lib, EntryPoint = "close", SetLastError = true)]
    public static partial int Close(int fd);

    [LibraryImport(Lib, EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Open(string path, int flags);

    [LibraryImport(Lib, EntryPoint = "setns", SetLastError = true)]
    public static partial int SetNs(SafeHandle fd, int nstype);

    /// <summary>Sets an int socket option; returns 0 or the errno.</summary>
    public static unsafe int SetSockOptInt(int fd, int level, int name, int value) =>
        SetSockOpt(fd, level, name, &value, sizeof(int)) == 0 ? 0 : Marshal.GetLastPInvokeError();
}
