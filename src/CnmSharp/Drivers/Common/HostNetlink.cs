using CnmSharp.Netlink;

namespace CnmSharp.Drivers.Common;

/// <summary>
/// A driver's netlink socket opened inside the host namespace and kept for the driver's life, with the namespace
/// manager that opened it (the bridge, macvlan and ipvlan kernels each hold one). Failures to open either are
/// <see cref="CnmInternalException"/> (<see cref="CnmErrorCodes.KernelError"/>).
/// </summary>
internal sealed class HostNetlink : IDisposable
{
    /// <summary>Opens the host namespace (the process's own when <paramref name="hostNamespacePath"/> is null) and a
    /// netlink socket inside it.</summary>
    /// <param name="hostNamespacePath">The host namespace file, or null for the process's namespace.</param>
    public HostNetlink(string? hostNamespacePath)
    {
        var path = hostNamespacePath ?? "/proc/self/ns/net";
        try
        {
            Host = Manager.Open(path);
        }
        catch (NamespaceException ex)
        {
            throw new CnmInternalException(CnmErrorCodes.KernelError, $"host namespace {path}", ex.Message, ex);
        }

        try
        {
            Client = RtnetlinkClient.Open(Host.Handle);
        }
        catch (NetlinkException ex)
        {
            Host.Dispose();
            throw new CnmInternalException(CnmErrorCodes.KernelError, $"netlink socket in host namespace {path}", ex.Message, ex);
        }
    }

    /// <summary>The manager that opened the host namespace (and opens others, enters them for sysctls).</summary>
    public NetworkNamespaceManager Manager { get; } = new();

    /// <summary>The host namespace.</summary>
    public NetworkNamespace Host { get; }

    /// <summary>The socket inside the host namespace.</summary>
    public RtnetlinkClient Client { get; }

    /// <inheritdoc />
    public void Dispose()
    {
        Client.Dispose();
        Host.Dispose();
    }
}
