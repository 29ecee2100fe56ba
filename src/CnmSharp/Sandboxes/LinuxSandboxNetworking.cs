using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using CnmSharp.Diagnostics;
using CnmSharp.Drivers;
using CnmSharp.Netlink;
using Microsoft.Extensions.Logging;

namespace CnmSharp.Sandboxes;

/// <summary>
/// The Linux kernel side of sandboxes, on <c>CnmSharp.Netlink</c>: one network namespace per sandbox, bind-mounted at
/// its key; interfaces renamed and configured inside it with one netlink socket per sandbox (opened once, inside the
/// namespace). Deleting a namespace takes the interfaces created in it along, which is far cheaper on this kernel than
/// deleting each device.
/// </summary>
/// <remarks>
/// Every key must name a direct child of the namespace directory given at construction (resolved with real-path
/// semantics; a symbolic link is never followed, in the key's directory or as the key itself). A key outside it is
/// refused with <see cref="CnmErrorCodes.UnownedPath"/> and left untouched: nothing is created, opened, unmounted or
/// unlinked there. The host namespace (the controller's, or the process's own) is never unmounted, wherever it is.
/// </remarks>
public sealed partial class LinuxSandboxNetworking : ISandboxNetworking, IAsyncDisposable
{
    private const string OwnNamespacePath = "/proc/self/ns/net";
    private readonly string? _hostNamespacePath;
    private readonly string _namespaceDirectory;
    private readonly ILogger _logger;
    private readonly ConcurrentDictionary<string, SandboxHandles> _open = new(StringComparer.Ordinal);

    /// <summary>The controller's fault injector (tests only), or null.</summary>
    internal Diagnostics.FaultPoints? Faults { get; init; }

    /// <summary>Creates the implementation for one controller.</summary>
    /// <param name="hostNamespacePath">The controller's host namespace, or null for the process's own.</param>
    /// <param name="namespaceDirectory">The directory (absolute) that holds the sandboxes' namespace files, normally
    /// <c>&lt;RunDirectory&gt;/netns</c>: the only place this object creates, unmounts or unlinks anything.</param>
    /// <param name="loggerFactory">Logging.</param>
    public LinuxSandboxNetworking(string? hostNamespacePath, string namespaceDirectory, ILoggerFactory loggerFactory)
    {
        ArgumentNullException.ThrowIfNull(loggerFactory);
        ArgumentException.ThrowIfNullOrEmpty(namespaceDirectory);
        if (!Path.IsPathRooted(namespaceDirectory))
        {
            throw new ArgumentException("The namespace directory must be an absolute path.", nameof(namespaceDirectory));
        }

        _hostNamespacePath = hostNamespacePath;
        _namespaceDirectory = Path.TrimEndingDirectorySeparator(Path.GetFullPath(namespaceDirectory));
        _logger = loggerFactory.CreateLogger<LinuxSandboxNetworking>();
    }

    /// <inheritdoc />
    public async ValueTask CreateNamespaceAsync(string key, CancellationToken cancellationToken = default)
    {
        // Created 0711 whatever the umask (and refused if another user owns it or others can write it) before the
        // namespace manager would create it with the umask's mode.
        try
        {
            Core.OwnedDirectory.Ensure(_namespaceDirectory, Core.OwnedDirectory.RunMode, "sandbox namespace directory");
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw KernelError($"sandbox namespace {key}", ex);
        }

        var (manager, name) = ManagerFor(Own(key) ?? throw Unowned(key, "the namespace directory does not exist"));
        NetworkNamespace ns;
        try
        {
            ns = await manager.CreateAsync(name, cancellationToken).ConfigureAwait(false);
            Faults.Hit(Diagnostics.FaultPoint.SandboxNamespaceMounted);
        }
        catch (NamespaceAlreadyExistsException ex)
        {
            throw new CnmConflictException(CnmErrorCodes.SandboxExists, $"sandbox namespace {key}", "a namespace already exists at that key", ex);
        }
        catch (NamespaceException ex)
        {
            throw KernelError($"sandbox namespace {key}", ex);
        }

        SandboxHandles? handles = null;
        try
        {
            handles = new SandboxHandles(ns, RtnetlinkClient.Open(ns.Handle));
            await handles.Client.SetLinkUpAsync(LoopbackIndex, cancellationToken).ConfigureAwait(false);
        }
        catch (NetlinkException ex)
        {
            if (handles is null)
            {
                ns.Dispose();
            }
            else
            {
                handles.Dispose();
            }

            await manager.DeleteAsync(name, CancellationToken.None).ConfigureAwait(false);
            throw KernelError($"sandbox namespace {key}", ex);
        }

        _open[key] = handles;
    }

    /// <inheritdoc />
    public ValueTask<bool> NamespaceExistsAsync(string key, CancellationToken cancellationToken = default)
    {
        string? path;
        try
        {
            path = Own(key);
        }
        catch (CnmInvalidArgumentException ex) when (ex.Code == CnmErrorCodes.UnownedPath)
        {
            // Not a namespace of this controller's: it does not exist as far as sandboxes go, and deleting it is refused.
            LogUnownedKey(_logger, key, ex.Reason);
            return ValueTask.FromResult(false);
        }

        if (path is null)
        {
            return ValueTask.FromResult(false);
        }

        var (manager, name) = ManagerFor(path);
        return ValueTask.FromResult(manager.Exists(name));
    }

    /// <inheritdoc />
    /// <exception cref="CnmInvalidArgumentException">The key is outside the namespace directory, is a symbolic link, or
    /// is the host namespace (code <see cref="CnmErrorCodes.UnownedPath"/>); nothing is unmounted or unlinked.</exception>
    public async ValueTask DeleteNamespaceAsync(string key, CancellationToken cancellationToken = default)
    {
        if (_open.TryRemove(key, out var handles))
        {
            handles.Dispose();
        }

        var path = Own(key);
        if (path is null)
        {
            return;
        }

        if (IsHostNamespace(path))
        {
            throw Unowned(key, "it is the host namespace, which is never unmounted");
        }

        var (manager, name) = ManagerFor(path);
        try
        {
            await manager.DeleteAsync(name, cancellationToken).ConfigureAwait(false);
        }
        catch (NamespaceNotFoundException)
        {
            // Already gone: deletion is idempotent.
        }
        catch (NamespaceException ex)
        {
            throw KernelError($"sandbox namespace {key}", ex);
        }
    }

    /// <inheritdoc />
    public async ValueTask AddInterfaceAsync(string key, SandboxInterface sandboxInterface, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(sandboxInterface);
        var subject = $"interface {sandboxInterface.SourceName} of sandbox {key}";
        var sandbox = Open(key);
        try
        {
            if (sandboxInterface.Placement == InterfacePlacement.HostNamespace)
            {
                using var host = OpenHost();
                var link = await host.GetLinkAsync(sandboxInterface.SourceName, cancellationToken).ConfigureAwait(false)
                    ?? throw new CnmNotFoundException(CnmErrorCodes.KernelError, subject, "the driver's interface does not exist in the host namespace");
                await host.SetLinkNamespaceAsync(link.Index, sandbox.Namespace.Handle, cancellationToken).ConfigureAwait(false);
                Faults.Hit(Diagnostics.FaultPoint.SandboxInterfaceMoved);
            }

            var client = sandbox.Client;
            var index = (await client.GetLinkAsync(sandboxInterface.SourceName, cancellationToken).ConfigureAwait(false)
                ?? throw new CnmNotFoundException(CnmErrorCodes.KernelError, subject, "the interface is not in the sandbox")).Index;

            if (!string.Equals(sandboxInterface.SourceName, sandboxInterface.DestinationName, StringComparison.Ordinal))
            {
                // A new or moved device is down, which a rename needs.
                await client.SetLinkNameAsync(index, sandboxInterface.DestinationName, cancellationToken).ConfigureAwait(false);
                Faults.Hit(Diagnostics.FaultPoint.SandboxInterfaceRenamed);
            }

            using (var batch = new RtnetlinkBatch())
            {

                if (sandboxInterface.MacAddress is { } mac)
                {
                    batch.SetLinkMac(index, mac);
                }

                foreach (var address in sandboxInterface.Addresses)
                {
                    batch.AddAddress(new AddressSpec(index, address.Address, address.PrefixLength) { Flags = address.IsIPv6 ? AddressFlags.NoDad : 0 });
                }

                // An interface without IPv6 addresses stays silent on IPv6 (no link-local address, so no DAD, router
                // solicitations or MLD reports): on a bridge every such packet is flooded to every other port, which
                // makes each new container cost more the more there are. Docker disables IPv6 on such interfaces.
                if (KernelHasIPv6 && !sandboxInterface.Addresses.Any(a => a.IsIPv6))
                {
                    batch.SetLinkIPv6AddressGeneration(index, IPv6AddressGenerationMode.None);
                }

                batch.SetLinkUp(index);
                foreach (var route in sandboxInterface.Routes)
                {
                    // Beside any route of the same destination (a default route the core installed for another
                    // endpoint, one added by hand): a driver's route never replaces another, and goes with its interface.
                    batch.PrependRoute(new RouteSpec(route.Destination)
                    {
                        OutputIndex = index,
                        Protocol = CoreRouteProtocol,
                        Gateway = route.Type == Drivers.RouteType.NextHop ? route.NextHop : null,
                        Scope = route.Type == Drivers.RouteType.Connected ? RouteScope.Link : RouteScope.Universe,
                    });
                }

                (await client.ExecuteBatchAsync(batch, cancellationToken).ConfigureAwait(false)).ThrowIfFailed();
            }
        }
        catch (NetlinkException ex)
        {
            throw KernelError(subject, ex);
        }
        catch (NamespaceException ex)
        {
            throw KernelError(subject, ex);
        }
    }

    /// <inheritdoc />
    public async ValueTask RemoveInterfaceAsync(string key, SandboxInterface sandboxInterface, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(sandboxInterface);
        if (!_open.ContainsKey(key) && !(await NamespaceExistsAsync(key, cancellationToken).ConfigureAwait(false)))
        {
            return;
        }

        var sandbox = Open(key);
        try
        {
            var link = await sandbox.Client.GetLinkAsync(sandboxInterface.DestinationName, cancellationToken).ConfigureAwait(false);
            if (link is null)
            {
                return;
            }

            if (sandboxInterface.Placement == InterfacePlacement.Sandbox)
            {
                await sandbox.Client.DeleteLinkAsync(link.Index, cancellationToken).ConfigureAwait(false);
                return;
            }

            // A driver's interface that was moved in goes back to the host under its own name, for the driver to delete.
            using var hostNs = OpenHostNamespace();
            await sandbox.Client.SetLinkDownAsync(link.Index, cancellationToken).ConfigureAwait(false);
            await sandbox.Client.SetLinkNameAsync(link.Index, sandboxInterface.SourceName, cancellationToken).ConfigureAwait(false);
            await sandbox.Client.SetLinkNamespaceAsync(link.Index, hostNs.Handle, cancellationToken).ConfigureAwait(false);
        }
        catch (NetlinkException ex) when (ex.IsNotFound)
        {
            // Already gone.
        }
        catch (Exception ex) when (ex is NetlinkException or NamespaceException)
        {
            throw KernelError($"interface {sandboxInterface.DestinationName} of sandbox {key}", ex);
        }
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<SandboxLink>> GetInterfacesAsync(string key, CancellationToken cancellationToken = default)
    {
        if (!_open.ContainsKey(key) && !(await NamespaceExistsAsync(key, cancellationToken).ConfigureAwait(false)))
        {
            return [];
        }

        try
        {
            var links = await Open(key).Client.GetLinksAsync(cancellationToken).ConfigureAwait(false);
            return links.Where(l => l.Index != LoopbackIndex).Select(l => new SandboxLink(l.Name, l.Mac)).ToArray();
        }
        catch (NetlinkException ex)
        {
            throw KernelError($"interfaces of sandbox {key}", ex);
        }
    }

    /// <inheritdoc />
    public async ValueTask ChangeGatewayRoutesAsync(string key, IReadOnlyList<SandboxGatewayRoute> remove, IReadOnlyList<SandboxGatewayRoute> add, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(remove);
        ArgumentNullException.ThrowIfNull(add);
        var client = Open(key).Client;
        try
        {
            // Added first, so that a move of the gateway leaves no moment without a default route.
            foreach (var route in add)
            {
                var index = (await client.GetLinkAsync(route.InterfaceName, cancellationToken).ConfigureAwait(false)
                    ?? throw new CnmNotFoundException(CnmErrorCodes.KernelError, $"default route of sandbox {key}", $"interface {route.InterfaceName} is not in the sandbox")).Index;
                using var batch = new RtnetlinkBatch().PrependRoute(CoreRoute(route, index));
                var error = (await client.ExecuteBatchAsync(batch, cancellationToken).ConfigureAwait(false)).Errors[0];
                if (error is not null && !error.IsAlreadyExists)
                {
                    throw error;
                }
            }

            foreach (var route in remove)
            {
                // A route goes with its interface: if the interface is gone, so is the route.
                if (await client.GetLinkAsync(route.InterfaceName, cancellationToken).ConfigureAwait(false) is not { } link)
                {
                    continue;
                }

                try
                {
                    await client.DeleteRouteAsync(CoreRoute(route, link.Index), cancellationToken).ConfigureAwait(false);
                }
                catch (NetlinkException ex) when (ex.IsNotFound)
                {
                    // Gone already.
                }
            }
        }
        catch (NetlinkException ex)
        {
            throw KernelError($"default routes of sandbox {key}", ex);
        }
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync()
    {
        foreach (var key in _open.Keys)
        {
            if (_open.TryRemove(key, out var handles))
            {
                handles.Dispose();
            }
        }

        return ValueTask.CompletedTask;
    }

    /// <summary>The protocol the core marks its routes with (RTPROT_STATIC, "installed by an administrator"), so that
    /// a delete removes only a route the core installed, never one of the same gateway a person or another tool added
    /// (<c>ip route add</c> uses RTPROT_BOOT).</summary>
    internal const RouteProtocol CoreRouteProtocol = RouteProtocol.Static;

    /// <summary>The exact route: the default route of the gateway's family, through it, on the interface, in the main
    /// table, marked with <see cref="CoreRouteProtocol"/> (an unmarked route, which an earlier version installed, carries
    /// RTPROT_BOOT). A delete matches the protocol too.</summary>
    private static RouteSpec CoreRoute(SandboxGatewayRoute route, int index) =>
        new(new IPNetwork(route.Gateway.AddressFamily == AddressFamily.InterNetworkV6 ? IPAddress.IPv6Any : IPAddress.Any, 0))
        {
            Gateway = route.Gateway,
            OutputIndex = index,
            Table = RouteTables.Main,
            Protocol = route.Unmarked ? RouteProtocol.Boot : CoreRouteProtocol,
            MatchProtocolOnDelete = true,
        };

    private const int LoopbackIndex = 1;

    /// <summary>False on a kernel without IPv6 (booted with <c>ipv6.disable=1</c>), which refuses AF_INET6 link settings.</summary>
    private static bool KernelHasIPv6 { get; } = Directory.Exists("/proc/sys/net/ipv6");

    private SandboxHandles Open(string key) =>
        _open.GetOrAdd(key, k =>
        {
            var path = Own(k) ?? throw new CnmNotFoundException(CnmErrorCodes.NoSuchSandbox, $"sandbox namespace {k}", "the namespace does not exist");
            NetworkNamespace? ns = null;
            try
            {
                ns = new NetworkNamespaceManager(new NetworkNamespaceManagerOptions { RunDirectory = _namespaceDirectory, MakeRunDirectoryShared = false }).Open(path);
                return new SandboxHandles(ns, RtnetlinkClient.Open(ns.Handle));
            }
            catch (NamespaceException ex)
            {
                ns?.Dispose();
                throw new CnmNotFoundException(CnmErrorCodes.NoSuchSandbox, $"sandbox namespace {k}", "the namespace does not exist", ex);
            }
            catch (NetlinkException ex)
            {
                ns?.Dispose();
                throw KernelError($"sandbox namespace {k}", ex);
            }
        });

    private NetworkNamespace OpenHostNamespace()
    {
        HostNamespaceGuard.Check(_hostNamespacePath, "sandbox networking (host side)");
        return new NetworkNamespaceManager().Open(_hostNamespacePath ?? "/proc/self/ns/net");
    }

    private RtnetlinkClient OpenHost()
    {
        HostNamespaceGuard.Check(_hostNamespacePath, "sandbox networking (host side)");
        if (_hostNamespacePath is null)
        {
            return RtnetlinkClient.Open();
        }

        using var ns = OpenHostNamespace();
        return RtnetlinkClient.Open(ns.Handle);
    }

    // The run directory is not made a shared mount point (as `ip netns` does for /run/netns): CnmSharp's sandboxes are
    // not meant to propagate into other mount namespaces, and a bind mount of the directory would outlive the controller.
    private static (NetworkNamespaceManager Manager, string Name) ManagerFor(string key) =>
        (new NetworkNamespaceManager(new NetworkNamespaceManagerOptions { RunDirectory = Path.GetDirectoryName(key)!, MakeRunDirectoryShared = false }), Path.GetFileName(key));

    private static CnmInternalException KernelError(string subject, Exception ex) =>
        new(CnmErrorCodes.KernelError, subject, ex.Message, ex);

    /// <summary>The path to act on for a key: its real path, directly inside the namespace directory, or null when
    /// that directory does not exist.</summary>
    /// <exception cref="CnmInvalidArgumentException">The key is not this controller's (<see cref="CnmErrorCodes.UnownedPath"/>).</exception>
    private string? Own(string key) => Core.OwnedDirectory.ResolveChild(key, _namespaceDirectory, "sandbox key");

    private static CnmInvalidArgumentException Unowned(string key, string reason) =>
        new(CnmErrorCodes.UnownedPath, $"sandbox key {key}", "not the controller's own path, left untouched: " + reason);

    /// <summary>Whether a path is (a mount of) the host namespace: the same path, or the same namespace file.</summary>
    private bool IsHostNamespace(string path)
    {
        var host = _hostNamespacePath ?? OwnNamespacePath;
        if (string.Equals(Core.OwnedDirectory.RealPath(host), path, StringComparison.Ordinal))
        {
            return true;
        }

        return Core.OwnedDirectory.Stat(host, followSymlinks: true) is { } hostStatus &&
            Core.OwnedDirectory.Stat(path, followSymlinks: true) is { } pathStatus &&
            hostStatus.Inode == pathStatus.Inode && hostStatus.DeviceMajor == pathStatus.DeviceMajor && hostStatus.DeviceMinor == pathStatus.DeviceMinor;
    }

    [LoggerMessage(40, LogLevel.Warning, "Sandbox key {Key} is not inside this controller's namespace directory and is left untouched: {Reason}")]
    private static partial void LogUnownedKey(ILogger logger, string key, string reason);

    private sealed class SandboxHandles(NetworkNamespace ns, RtnetlinkClient client) : IDisposable
    {
        public NetworkNamespace Namespace { get; } = ns;

        public RtnetlinkClient Client { get; } = client;

        public void Dispose()
        {
            Client.Dispose();
            Namespace.Dispose();
        }
    }
}
