using System.Globalization;
using System.Runtime.InteropServices;
using CnmSharp.Netlink.Interop;
using Microsoft.Win32.SafeHandles;

namespace CnmSharp.Netlink;

/// <summary>
/// An open network namespace: a file descriptor of <c>/proc/PID/ns/net</c> or of a bind-mounted namespace file such as
/// <c>/var/run/netns/NAME</c>. Holding it keeps the namespace alive. Pass <see cref="Handle"/> to
/// <c>RtnetlinkClient.Open</c> to talk to the namespace, or use it with <see cref="INetworkNamespaceManager"/>.
/// </summary>
public sealed class NetworkNamespace : IDisposable
{
    private readonly SafeFileHandle _handle;

    private NetworkNamespace(SafeFileHandle handle, string? path, string? name, ulong inode)
    {
        _handle = handle;
        Path = path;
        Name = name;
        Inode = inode;
    }

    /// <summary>The namespace file descriptor. Owned by this object: do not dispose it separately.</summary>
    public SafeHandle Handle
    {
        get
        {
            ObjectDisposedException.ThrowIf(_handle.IsClosed, this);
            return _handle;
        }
    }

    /// <summary>The path the namespace was opened from, e.g. <c>/var/run/netns/blue</c> or <c>/proc/42/ns/net</c>.</summary>
    public string? Path { get; }

    /// <summary>The name under the manager's run directory, for namespaces created or opened by name; otherwise null.</summary>
    public string? Name { get; }

    /// <summary>
    /// The inode number of the namespace in <c>nsfs</c>: two handles refer to the same namespace exactly when their
    /// inodes are equal (what <c>readlink /proc/PID/ns/net</c> shows as <c>net:[INODE]</c>).
    /// </summary>
    public ulong Inode { get; }

    /// <summary>True once disposed.</summary>
    public bool IsDisposed => _handle.IsClosed;

    /// <summary>Whether <paramref name="other"/> refers to the same kernel namespace.</summary>
    /// <param name="other">Another open namespace.</param>
    /// <returns>True when both have the same <see cref="Inode"/>.</returns>
    public bool IsSameNamespace(NetworkNamespace other)
    {
        ArgumentNullException.ThrowIfNull(other);
        return other.Inode == Inode;
    }

    /// <inheritdoc />
    public void Dispose() => _handle.Dispose();

    /// <inheritdoc />
    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture, $"net:[{Inode}]{(Path is null ? string.Empty : " " + Path)}");

    /// <summary>Opens a namespace file and checks that it is a network namespace.</summary>
    internal static NetworkNamespace OpenPath(string path, string? name)
    {
        var handle = NamespaceInterop.TryOpen(path, NamespaceInterop.O_RDONLY, out var errno)
            ?? throw NamespaceException.FromErrno("open", errno, path);
        try
        {
            var type = NamespaceInterop.Ioctl(handle, NamespaceInterop.NS_GET_NSTYPE, 0);
            if (type < 0)
            {
                errno = Marshal.GetLastPInvokeError();
                throw new NamespaceException(
                    "ioctl(NS_GET_NSTYPE)",
                    errno,
                    path,
                    errno == NamespaceInterop.ENOTTY
                        ? $"'{path}' is not a namespace file (no namespace is mounted there)"
                        : null);
            }

            if (type != NamespaceInterop.CLONE_NEWNET)
            {
                throw new NamespaceException(
                    "ioctl(NS_GET_NSTYPE)",
                    NamespaceInterop.EINVAL,
                    path,
                    $"'{path}' is a namespace file but not a network namespace");
            }

            return new NetworkNamespace(handle, path, name, ReadInode(handle, path));
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    /// <summary>True when <paramref name="path"/> is a file with a network namespace mounted on it.</summary>
    internal static bool IsNetworkNamespaceFile(string path)
    {
        using var handle = NamespaceInterop.TryOpen(path, NamespaceInterop.O_RDONLY, out _);
        return handle is not null
            && NamespaceInterop.Ioctl(handle, NamespaceInterop.NS_GET_NSTYPE, 0) == NamespaceInterop.CLONE_NEWNET;
    }

    private static ulong ReadInode(SafeFileHandle handle, string path) =>
        NamespaceInterop.TryGetInode(handle, out var inode, out var errno)
            ? inode
            : throw new NamespaceException("statx", errno, path);

    /// <summary>Parses <c>net:[INODE]</c>.</summary>
    internal static bool TryParseInode(string? link, out ulong inode)
    {
        inode = 0;
        const string Prefix = "net:[";
        return link is not null
            && link.StartsWith(Prefix, StringComparison.Ordinal)
            && link.EndsWith(']')
            && ulong.TryParse(link.AsSpan(Prefix.Length, link.Length - Prefix.Length - 1), NumberStyles.None, CultureInfo.InvariantCulture, out inode);
    }
}
