using System.Net;
using System.Net.NetworkInformation;
using CnmSharp.Drivers;

namespace CnmSharp.Sandboxes;

/// <summary>An interface the core places in a sandbox at join.</summary>
public sealed record SandboxInterface
{
    /// <summary>The interface's name where it is now.</summary>
    public required string SourceName { get; init; }

    /// <summary>Where it is now: the host namespace (moved in) or already inside the sandbox (renamed only).</summary>
    public required InterfacePlacement Placement { get; init; }

    /// <summary>Its name inside the sandbox (<c>eth0</c>, ...).</summary>
    public required string DestinationName { get; init; }

    /// <summary>Its MAC address, if set.</summary>
    public PhysicalAddress? MacAddress { get; init; }

    /// <summary>Its addresses (IPv4, IPv6, link-local).</summary>
    public IReadOnlyList<CidrAddress> Addresses { get; init; } = [];

    /// <summary>Routes on the interface (connected routes and next-hop routes through it).</summary>
    public IReadOnlyList<StaticRoute> Routes { get; init; } = [];
}

/// <summary>An interface found in a sandbox.</summary>
/// <param name="Name">Its name.</param>
/// <param name="MacAddress">Its hardware address, if it has one.</param>
public sealed record SandboxLink(string Name, PhysicalAddress? MacAddress);

/// <summary>
/// The kernel side of sandboxes: namespaces, interfaces in them, routes. The core calls it; the Linux implementation
/// uses <c>CnmSharp.Netlink</c>. Every method is idempotent so that rollback and crash recovery can repeat it.
/// </summary>
public interface ISandboxNetworking
{
    /// <summary>Creates a sandbox's network namespace at its key (a path the core chose), with <c>lo</c> up.</summary>
    /// <param name="key">The key.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when the namespace exists.</returns>
    ValueTask CreateNamespaceAsync(string key, CancellationToken cancellationToken = default);

    /// <summary>True when the namespace behind a key still exists.</summary>
    /// <param name="key">The key.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>True when it exists.</returns>
    ValueTask<bool> NamespaceExistsAsync(string key, CancellationToken cancellationToken = default);

    /// <summary>Deletes a sandbox's namespace; interfaces created inside it go with it. A missing one is not an error.</summary>
    /// <param name="key">The key.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when the namespace is gone.</returns>
    ValueTask DeleteNamespaceAsync(string key, CancellationToken cancellationToken = default);

    /// <summary>Puts an interface in the sandbox under its destination name, with its MAC, addresses and routes, and
    /// brings it up.</summary>
    /// <param name="key">The sandbox key.</param>
    /// <param name="sandboxInterface">The interface.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when the interface is configured.</returns>
    ValueTask AddInterfaceAsync(string key, SandboxInterface sandboxInterface, CancellationToken cancellationToken = default);

    /// <summary>Takes an interface out of the sandbox: one the driver created inside is deleted, one moved in is
    /// moved back to the host namespace under its source name. A missing one is not an error.</summary>
    /// <param name="key">The sandbox key.</param>
    /// <param name="sandboxInterface">The interface, as it was added.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when the interface is out.</returns>
    ValueTask RemoveInterfaceAsync(string key, SandboxInterface sandboxInterface, CancellationToken cancellationToken = default);

    /// <summary>Lists the interfaces in a sandbox (loopback excluded); none when its namespace does not exist. Recovery
    /// uses it to find an interface a driver created in the sandbox before the core learnt its name.</summary>
    /// <param name="key">The sandbox key.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The interfaces.</returns>
    ValueTask<IReadOnlyList<SandboxLink>> GetInterfacesAsync(string key, CancellationToken cancellationToken = default);

    /// <summary>Makes the sandbox's default routes go through the given gateways on the given interface, replacing
    /// any previous ones; null removes the default route of that family.</summary>
    /// <param name="key">The sandbox key.</param>
    /// <param name="interfaceName">The interface of the gateway endpoint, or null when there is none.</param>
    /// <param name="gateway">The IPv4 gateway, or null.</param>
    /// <param name="gatewayIPv6">The IPv6 gateway, or null.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when the routes are set.</returns>
    ValueTask SetDefaultGatewayAsync(string key, string? interfaceName, IPAddress? gateway, IPAddress? gatewayIPv6, CancellationToken cancellationToken = default);
}
