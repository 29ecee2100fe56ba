using System.Runtime.InteropServices;
using System.Text;
using CnmSharp.Netlink.Interop;

namespace CnmSharp.Netlink;

/// <summary>Per-namespace sysctl files: keys are validated and confined to <c>/proc/sys/net</c>.</summary>
internal static class Sysctl
{
    private const string Root = "/proc/sys/";

    /// <summary>Maps <c>net.ipv4.ip_forward</c> (or <c>net/ipv4/ip_forward</c>) to its /proc/sys path.</summary>
    internal static string GetPath(string key)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        if (key.Length > 512 || key.Contains("..", StringComparison.Ordinal))
        {
            throw InvalidKey(key);
        }

        foreach (var c in key)
        {
            if (c is not ((>= 'a' and <= 'z') or (>= '0' and <= '9') or '_' or '.' or '/' or '-'))
            {
                throw InvalidKey(key);
            }
        }

        // A key with '/' uses '/' as the separator, so interface names with dots (eth0.10) can be addressed.
        var relative = key.Contains('/', StringComparison.Ordinal) ? key : key.Replace('.', '/');
        if (!relative.StartsWith("net/", StringComparison.Ordinal) || relative.EndsWith('/') || relative.Contains("//", StringComparison.Ordinal))
        {
            throw InvalidKey(key);
        }

        return Root + relative;
    }

    internal static unsafe string Read(string path)
    {
        using var handle = NamespaceInterop.TryOpen(path, NamespaceInterop.O_RDONLY, out var errno)
            ?? throw NamespaceException.FromErrno("open", errno, path);
        var buffer = new byte[4096];
        var length = 0;
        fixed (byte* start = buffer)
        {
            while (length < buffer.Length)
            {
                var n = NamespaceInterop.Read(handle, start + length, (nuint)(buffer.Length - length));
                if (n < 0)
                {
                    errno = Marshal.GetLastPInvokeError();
                    if (errno == NamespaceInterop.EINTR)
                    {
                        continue;
                    }

                    throw new NamespaceException("read", errno, path);
                }

                if (n == 0)
                {
                    break;
                }

                length += (int)n;
            }
        }

        return Encoding.UTF8.GetString(buffer, 0, length).TrimEnd('\n');
    }

    internal static unsafe bool Write(string path, string value)
    {
        using var handle = NamespaceInterop.TryOpen(path, NamespaceInterop.O_WRONLY, out var errno)
            ?? throw NamespaceException.FromErrno("open", errno, path);
        var bytes = Encoding.UTF8.GetBytes(value);
        fixed (byte* start = bytes)
        {
            var n = NamespaceInterop.Write(handle, start, (nuint)bytes.Length);
            if (n < 0)
            {
                throw NamespaceException.FromLastError("write", path);
            }

            if (n != bytes.Length)
            {
                throw new NamespaceException("write", 0, path, $"short write to '{path}' ({n} of {bytes.Length} bytes)");
            }
        }

        return true;
    }

    private static ArgumentException InvalidKey(string key) =>
        new($"Invalid sysctl key '{key}': only [a-z0-9_./-] under 'net', no '..'.", nameof(key));
}
