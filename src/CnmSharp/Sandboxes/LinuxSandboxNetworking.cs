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
public sealed class LinuxSandboxNetworking : ISandboxNetworking, IAsyncDisposable
{
    private readonly string? _hostNamespacePath;
    private readonly ILogger _logger;
    private readonly ConcurrentDictionary<string, SandboxHandles> _open = new(StringComparer.Ordinal);

    /// <summary>Creates the implementation for one controller.</summary>
    /// <param name="hostNamespacePath">The controller's host namespace, or null for the process's own.</param>
    /// <param name="loggerFactory">Logging.</param>
    public LinuxSandboxNetworking(string? hostNamespacePath, ILoggerFactory loggerFactory)
    {
        ArgumentNullException.ThrowIfNull(loggerFactory);
        _hostNamespacePath = hostNamespacePath;
        _logger = loggerFactory.CreateLogger<LinuxSandboxNetworking>();
    }

    /// <inheritdoc />
    public async ValueTask CreateNamespaceAsync(string key, CancellationToken cancellationToken = default)
    {
        var (manager, name) = ManagerFor(key);
        NetworkNamespace ns;
        try
        {
            ns = await manager.CreateAsync(name, cancellationToken).ConfigureAwait(false);
        }
        catch (NamespaceAlreadyExistsException ex)
        {
            throw new CnmConflictException(CnmErrorCodes.SandboxExists, $"sandbox namespace {key}", "a namespace already exists at that key", ex);
        }
        catch (NamespaceException ex)
        {
            throw KernelError($"sandbox namespace {key}", ex);
        }

        var handles = new SandboxHandles(ns, RtnetlinkClient.Open(ns.Handle));
        try
        {
            await handles.Client.SetLinkUpAsync(LoopbackIndex, cancellationToken).ConfigureAwait(false);
        }
        catch (NetlinkException ex)
        {
            handles.Dispose();
            await manager.DeleteAsync(name, CancellationToken.None).ConfigureAwait(false);
            throw KernelError($"sandbox namespace {key}", ex);
        }

        _open[key] = handles;
    }

    /// <inheritdoc />
    public ValueTask<bool> NamespaceExistsAsync(string key, CancellationToken cancellationToken = default)
    {
        var (manager, name) = ManagerFor(key);
        return ValueTask.FromResult(manager.Exists(name));
    }

    /// <inheritdoc />
    public async ValueTask DeleteNamespaceAsync(string key, CancellationToken cancellationToken = default)
    {
        if (_open.TryRemove(key, out var handles))
        {
            handles.Dispose();
        }

        var (manager, name) = ManagerFor(key);
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
            }

            var client = sandbox.Client;
            var index = (await client.GetLinkAsync(sandboxInterface.SourceName, cancellationToken).ConfigureAwait(false)
                ?? throw new CnmNotFoundException(CnmErrorCodes.KernelError, subject, "the interface is not in the sandbox")).Index;

            if (!string.Equals(sandboxInterface.SourceName, sandboxInterface.DestinationName, StringComparison.Ordinal))
            {
                // A new or moved device is down, which a rename needs.
                await client.SetLinkNameAsync(index, sandboxInterface.DestinationName, cancellationToken).ConfigureAwait(false);
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
                    batch.AddRoute(new RouteSpec(route.Destination)
                    {
                        OutputIndex = index,
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
        catch (NetlinkException ex)
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
    public async ValueTask SetDefaultGatewayAsync(string key, string? interfaceName, IPAddress? gateway, IPAddress? gatewayIPv6, CancellationToken cancellationToken = default)
    {
        var client = Open(key).Client;
        try
        {
            var index = interfaceName is null ? (int?)null : (await client.GetLinkAsync(interfaceName, cancellationToken).ConfigureAwait(false))?.Index;
            await SetDefaultRouteAsync(client, new IPNetwork(IPAddress.Any, 0), index, gateway, cancellationToken).ConfigureAwait(false);
            await SetDefaultRouteAsync(client, new IPNetwork(IPAddress.IPv6Any, 0), index, gatewayIPv6, cancellationToken).ConfigureAwait(false);
        }
        catch (NetlinkException ex)
        {
            throw KernelError($"default gateway of sandbox {key}", ex);
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

    private static async ValueTask SetDefaultRouteAsync(RtnetlinkClient client, IPNetwork destination, int? index, IPAddress? gateway, CancellationToken cancellationToken)
    {
        if (gateway is not null && index is not null)
        {
            await client.ReplaceRouteAsync(new RouteSpec(destination) { Gateway = gateway, OutputIndex = index }, cancellationToken).ConfigureAwait(false);
            return;
        }

        var family = destination.BaseAddress.AddressFamily;
        foreach (var route in await client.GetRoutesAsync(family, cancellationToken).ConfigureAwait(false))
        {
            if (route.Destination.PrefixLength == 0 && route.Table == RouteTables.Main)
            {
                try
                {
                    await client.DeleteRouteAsync(new RouteSpec(route.Destination) { Gateway = route.Gateway, OutputIndex = route.OutputIndex }, cancellationToken).ConfigureAwait(false);
                }
                catch (NetlinkException ex) when (ex.IsNotFound)
                {
                    // Gone already.
                }
            }
        }
    }

    private const int LoopbackIndex = 1;

    /// <summary>False on a kernel without IPv6 (booted with <c>ipv6.disable=1</c>), which refuses AF_INET6 link settings.</summary>
    private static bool KernelHasIPv6 { get; } = Directory.Exists("/proc/sys/net/ipv6");

    private SandboxHandles Open(string key) =>
        _open.GetOrAdd(key, static k =>
        {
            NetworkNamespace? ns = null;
            try
            {
                ns = new NetworkNamespaceManager(new NetworkNamespaceManagerOptions { RunDirectory = Path.GetDirectoryName(k)!, MakeRunDirectoryShared = false }).Open(k);
                return new SandboxHandles(ns, RtnetlinkClient.Open(ns.Handle));
            }
            catch (NamespaceException ex)
            {
                ns?.Dispose();
                throw new CnmNotFoundException(CnmErrorCodes.NoSuchSandbox, $"sandbox namespace {k}", "the namespace does not exist", ex);
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
