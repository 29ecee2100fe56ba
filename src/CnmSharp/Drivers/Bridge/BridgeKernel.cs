using CnmSharp.Drivers.Common;
using CnmSharp.Netlink;

namespace CnmSharp.Drivers.Bridge;

/// <summary>What the driver needs from the kernel, behind a seam so unit tests can fake it: a netlink client in the
/// controller's host namespace, that namespace's sysctls, and sandbox namespaces by path.</summary>
internal interface IBridgeKernel : IDisposable
{
    /// <summary>rtnetlink in the host namespace.</summary>
    IRtnetlinkClient Netlink { get; }

    /// <summary>Writes a sysctl of the host namespace; false when the key does not exist there.</summary>
    ValueTask<bool> TryWriteSysctlAsync(string key, string value, CancellationToken cancellationToken);

    /// <summary>Opens a sandbox's namespace file.</summary>
    NetworkNamespace OpenNamespace(string path);

    /// <summary>Whether a namespace is still mounted at the path.</summary>
    bool NamespaceExists(string path);

    /// <summary>Which instance of the host namespace this is, as text that no other namespace, now or after a reboot,
    /// shares (the boot id and the namespace's cookie); null when the kernel cannot tell (then every start restores
    /// the kernel objects and rules in full).</summary>
    ValueTask<string?> HostInstanceAsync(CancellationToken cancellationToken) => ValueTask.FromResult<string?>(null);
}

/// <summary>The real kernel: one netlink socket opened inside the host namespace and kept for the driver's life.</summary>
internal sealed class LinuxBridgeKernel : IBridgeKernel
{
    private const int ENOENT = 2;
    private readonly HostNetlink _netlink;

    public LinuxBridgeKernel(string? hostNamespacePath) => _netlink = new HostNetlink(hostNamespacePath);

    public IRtnetlinkClient Netlink => _netlink.Client;

    public async ValueTask<bool> TryWriteSysctlAsync(string key, string value, CancellationToken cancellationToken)
    {
        try
        {
            await _netlink.Manager.WriteSysctlAsync(_netlink.Host, key, value, cancellationToken).ConfigureAwait(false);
            return true;
        }
        catch (NamespaceException ex) when (ex.ErrorNumber == ENOENT)
        {
            return false;
        }
    }

    public NetworkNamespace OpenNamespace(string path) => _netlink.Manager.Open(path);

    public bool NamespaceExists(string path)
    {
        try
        {
            using var ns = _netlink.Manager.Open(path);
            return true;
        }
        catch (NamespaceException)
        {
            return false;
        }
    }

    public async ValueTask<string?> HostInstanceAsync(CancellationToken cancellationToken)
    {
        if (_netlink.Client.GetNamespaceCookie() is not { } cookie)
        {
            return null;
        }

        try
        {
            var boot = (await File.ReadAllTextAsync("/proc/sys/kernel/random/boot_id", cancellationToken).ConfigureAwait(false)).Trim();
            return boot.Length == 0 ? null : string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{boot}/{cookie}");
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    public void Dispose()
    {
        _netlink.Dispose();
    }
}
