using System.Runtime.InteropServices;
using CnmSharp.Netlink;

namespace CnmSharp.Drivers.Common;

/// <summary>What a link-on-a-parent driver needs from the kernel, behind a seam so unit tests can fake it: a netlink
/// client in the controller's host namespace, and sandbox namespaces by path.</summary>
internal interface IParentLinkKernel : IDisposable
{
    /// <summary>rtnetlink in the host namespace.</summary>
    IRtnetlinkClient Netlink { get; }

    /// <summary>Opens a sandbox's namespace file; the handle is the caller's to dispose.</summary>
    /// <exception cref="NamespaceException">It cannot be opened (gone).</exception>
    SafeHandle OpenNamespace(string path);
}

/// <summary>The real kernel: one netlink socket opened inside the host namespace and kept for the driver's life.</summary>
internal sealed class LinuxParentLinkKernel : IParentLinkKernel
{
    private readonly HostNetlink _netlink;

    public LinuxParentLinkKernel(string? hostNamespacePath) => _netlink = new HostNetlink(hostNamespacePath);

    public IRtnetlinkClient Netlink => _netlink.Client;

    // NetworkNamespace owns nothing but its handle: disposing the handle closes it.
    public SafeHandle OpenNamespace(string path) => _netlink.Manager.Open(path).Handle;

    public void Dispose()
    {
        _netlink.Dispose();
    }
}
