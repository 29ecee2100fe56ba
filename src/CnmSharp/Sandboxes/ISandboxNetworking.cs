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

/// <summary>A default route the core installs in a sandbox: through the gateway endpoint's gateway (the family is
/// the gateway's), on that endpoint's interface, in the main table.</summary>
/// <param name="InterfaceName">The interface's name inside the sandbox.</param>
/// <param name="Gateway">The next hop.</param>
public sealed record SandboxGatewayRoute(string InterfaceName, IPAddress Gateway)
{
    /// <summary>Installed by a CnmSharp version that did not mark its routes (it carries RTPROT_BOOT, the protocol
    /// <c>ip route add</c> gives).</summary>
    public bool Unmarked { get; init; }
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

    /// <summary>Changes the default routes the core installed in a sandbox: adds <paramref name="add"/> (beside any other
    /// route of the same destination, such as a driver's static default route or one added by hand; one that exists
    /// already is not an error), then removes exactly <paramref name="remove"/> (a route, or its interface, that is gone
    /// is not an error). No other route is ever removed.</summary>
    /// <param name="key">The sandbox key.</param>
    /// <param name="remove">Routes the core installed before and no longer wants.</param>
    /// <param name="add">Routes the core wants that it has not installed.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when the routes are changed.</returns>
    ValueTask ChangeGatewayRoutesAsync(string key, IReadOnlyList<SandboxGatewayRoute> remove, IReadOnlyList<SandboxGatewayRoute> add, CancellationToken cancellationToken = default);
}
