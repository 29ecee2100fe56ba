using System.Net.NetworkInformation;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace CnmSharp.Netlink;

/// <summary>
/// rtnetlink operations on one network namespace: links, addresses, routes, neighbours and notifications.
/// Implemented by <see cref="RtnetlinkClient"/>; mock this interface in tests of code that drives the kernel.
/// Failures the kernel reports surface as <see cref="NetlinkException"/> with the errno and the kernel's message; so do
/// failures of the socket itself (errno and operation, e.g. ENOBUFS when replies were lost). A request on a disposed
/// client, or one running while the client is disposed, ends with <see cref="ObjectDisposedException"/> (unless its
/// reply was already in), and a cancelled one with <see cref="OperationCanceledException"/>.
/// </summary>
public interface IRtnetlinkClient
{
    // ---- links ----

    /// <summary>Creates a link (RTM_NEWLINK with NLM_F_CREATE | NLM_F_EXCL); EEXIST if the name is taken.</summary>
    /// <param name="spec">What to create.</param>
    /// <param name="cancellationToken">Cancels the wait for the kernel's answer.</param>
    /// <returns>A task that completes when the kernel acknowledged.</returns>
    ValueTask CreateLinkAsync(LinkSpec spec, CancellationToken cancellationToken = default);

    /// <summary>Sets IFF_UP on a link.</summary>
    /// <param name="index">The interface index.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>A task that completes when the kernel acknowledged.</returns>
    ValueTask SetLinkUpAsync(int index, CancellationToken cancellationToken = default);

    /// <summary>Clears IFF_UP on a link.</summary>
    /// <param name="index">The interface index.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>A task that completes when the kernel acknowledged.</returns>
    ValueTask SetLinkDownAsync(int index, CancellationToken cancellationToken = default);

    /// <summary>Sets a link's MTU.</summary>
    /// <param name="index">The interface index.</param>
    /// <param name="mtu">The MTU.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>A task that completes when the kernel acknowledged.</returns>
    ValueTask SetLinkMtuAsync(int index, int mtu, CancellationToken cancellationToken = default);

    /// <summary>Sets how the kernel makes a link's IPv6 link-local address (<c>ip link set addrgenmode</c>). Set it
    /// before the link goes up; <see cref="IPv6AddressGenerationMode.None"/> keeps the link silent on IPv6.</summary>
    /// <param name="index">The interface index.</param>
    /// <param name="mode">The mode.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>A task that completes when the kernel acknowledged.</returns>
    ValueTask SetLinkIPv6AddressGenerationAsync(int index, IPv6AddressGenerationMode mode, CancellationToken cancellationToken = default);

    /// <summary>Sets a link's hardware address.</summary>
    /// <param name="index">The interface index.</param>
    /// <param name="mac">The address.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>A task that completes when the kernel acknowledged.</returns>
    ValueTask SetLinkMacAsync(int index, PhysicalAddress mac, CancellationToken cancellationToken = default);

    /// <summary>Renames a link (it must be down).</summary>
    /// <param name="index">The interface index.</param>
    /// <param name="name">The new name (at most 15 bytes).</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>A task that completes when the kernel acknowledged.</returns>
    ValueTask SetLinkNameAsync(int index, string name, CancellationToken cancellationToken = default);

    /// <summary>Enslaves a link to a master (bridge), or releases it with 0.</summary>
    /// <param name="index">The interface index.</param>
    /// <param name="masterIndex">The master's index, or 0 for none.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>A task that completes when the kernel acknowledged.</returns>
    ValueTask SetLinkMasterAsync(int index, int masterIndex, CancellationToken cancellationToken = default);

    /// <summary>Moves a link into another network namespace (IFLA_NET_NS_FD).</summary>
    /// <param name="index">The interface index.</param>
    /// <param name="networkNamespace">An open fd of the target namespace.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>A task that completes when the kernel acknowledged.</returns>
    ValueTask SetLinkNamespaceAsync(int index, SafeHandle networkNamespace, CancellationToken cancellationToken = default);

    /// <summary>Turns hairpin mode of a bridge port on or off (AF_BRIDGE IFLA_PROTINFO / IFLA_BRPORT_MODE).</summary>
    /// <param name="index">The bridge port's index.</param>
    /// <param name="enabled">Whether hairpin is on.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>A task that completes when the kernel acknowledged.</returns>
    ValueTask SetBridgePortHairpinAsync(int index, bool enabled, CancellationToken cancellationToken = default);

    /// <summary>Deletes a link; ENODEV if there is none.</summary>
    /// <param name="index">The interface index.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>A task that completes when the kernel acknowledged.</returns>
    ValueTask DeleteLinkAsync(int index, CancellationToken cancellationToken = default);

    /// <summary>Deletes a link by name; ENODEV if there is none.</summary>
    /// <param name="name">The interface name.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>A task that completes when the kernel acknowledged.</returns>
    ValueTask DeleteLinkAsync(string name, CancellationToken cancellationToken = default);

    /// <summary>Looks a link up by name.</summary>
    /// <param name="name">The interface name.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>The link, or null when there is none (ENODEV).</returns>
    ValueTask<LinkInfo?> GetLinkAsync(string name, CancellationToken cancellationToken = default);

    /// <summary>Looks a link up by index.</summary>
    /// <param name="index">The interface index.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>The link, or null when there is none (ENODEV).</returns>
    ValueTask<LinkInfo?> GetLinkAsync(int index, CancellationToken cancellationToken = default);

    /// <summary>Dumps all links of the namespace.</summary>
    /// <param name="cancellationToken">Cancels the dump.</param>
    /// <returns>The links.</returns>
    ValueTask<IReadOnlyList<LinkInfo>> GetLinksAsync(CancellationToken cancellationToken = default);

    /// <summary>
    /// Sends every request of <paramref name="batch"/> in one datagram and collects one acknowledgement each. The
    /// kernel runs them in order and goes on after a failure; the result tells which failed.
    /// </summary>
    /// <param name="batch">The requests.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>One outcome per request, in order.</returns>
    ValueTask<RtnetlinkBatchResult> ExecuteBatchAsync(RtnetlinkBatch batch, CancellationToken cancellationToken = default);

    // ---- addresses ----

    /// <summary>Adds an address to a link; EEXIST if it is there.</summary>
    /// <param name="spec">The address.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>A task that completes when the kernel acknowledged.</returns>
    ValueTask AddAddressAsync(AddressSpec spec, CancellationToken cancellationToken = default);

    /// <summary>Removes an address from a link; EADDRNOTAVAIL if it is not there.</summary>
    /// <param name="spec">The address (link, address, prefix length).</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>A task that completes when the kernel acknowledged.</returns>
    ValueTask DeleteAddressAsync(AddressSpec spec, CancellationToken cancellationToken = default);

    /// <summary>Dumps addresses.</summary>
    /// <param name="linkIndex">Only this link's, or null for all.</param>
    /// <param name="family">Only this family, or <see cref="AddressFamily.Unspecified"/> for both.</param>
    /// <param name="cancellationToken">Cancels the dump.</param>
    /// <returns>The addresses.</returns>
    ValueTask<IReadOnlyList<AddressInfo>> GetAddressesAsync(int? linkIndex = null, AddressFamily family = AddressFamily.Unspecified, CancellationToken cancellationToken = default);

    // ---- routes ----

    /// <summary>Adds a route; EEXIST if an equal one exists.</summary>
    /// <param name="spec">The route.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>A task that completes when the kernel acknowledged.</returns>
    ValueTask AddRouteAsync(RouteSpec spec, CancellationToken cancellationToken = default);

    /// <summary>Adds or replaces a route (NLM_F_CREATE | NLM_F_REPLACE).</summary>
    /// <param name="spec">The route.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>A task that completes when the kernel acknowledged.</returns>
    ValueTask ReplaceRouteAsync(RouteSpec spec, CancellationToken cancellationToken = default);

    /// <summary>Deletes a route; ESRCH if there is none.</summary>
    /// <param name="spec">The route.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>A task that completes when the kernel acknowledged.</returns>
    ValueTask DeleteRouteAsync(RouteSpec spec, CancellationToken cancellationToken = default);

    /// <summary>Dumps the routes of all tables.</summary>
    /// <param name="family">Only this family, or <see cref="AddressFamily.Unspecified"/> for both.</param>
    /// <param name="cancellationToken">Cancels the dump.</param>
    /// <returns>The routes.</returns>
    ValueTask<IReadOnlyList<RouteInfo>> GetRoutesAsync(AddressFamily family = AddressFamily.Unspecified, CancellationToken cancellationToken = default);

    // ---- neighbours ----

    /// <summary>Adds an ARP/NDP entry; EEXIST if there is one.</summary>
    /// <param name="spec">The entry.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>A task that completes when the kernel acknowledged.</returns>
    ValueTask AddNeighbourAsync(NeighbourSpec spec, CancellationToken cancellationToken = default);

    /// <summary>Adds or replaces an ARP/NDP entry.</summary>
    /// <param name="spec">The entry.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>A task that completes when the kernel acknowledged.</returns>
    ValueTask ReplaceNeighbourAsync(NeighbourSpec spec, CancellationToken cancellationToken = default);

    /// <summary>Deletes an ARP/NDP entry.</summary>
    /// <param name="spec">The entry (link and address).</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>A task that completes when the kernel acknowledged.</returns>
    ValueTask DeleteNeighbourAsync(NeighbourSpec spec, CancellationToken cancellationToken = default);

    /// <summary>Dumps ARP/NDP entries.</summary>
    /// <param name="family">Only this family, or <see cref="AddressFamily.Unspecified"/> for both.</param>
    /// <param name="linkIndex">Only this link's, or null.</param>
    /// <param name="cancellationToken">Cancels the dump.</param>
    /// <returns>The entries.</returns>
    ValueTask<IReadOnlyList<NeighbourInfo>> GetNeighboursAsync(AddressFamily family = AddressFamily.Unspecified, int? linkIndex = null, CancellationToken cancellationToken = default);

    /// <summary>Adds (or appends) a bridge FDB entry, e.g. a VXLAN peer.</summary>
    /// <param name="spec">The entry.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>A task that completes when the kernel acknowledged.</returns>
    ValueTask AddFdbEntryAsync(FdbEntrySpec spec, CancellationToken cancellationToken = default);

    /// <summary>Deletes a bridge FDB entry.</summary>
    /// <param name="spec">The entry.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>A task that completes when the kernel acknowledged.</returns>
    ValueTask DeleteFdbEntryAsync(FdbEntrySpec spec, CancellationToken cancellationToken = default);

    /// <summary>Dumps bridge FDB entries.</summary>
    /// <param name="linkIndex">Only this device's, or null.</param>
    /// <param name="cancellationToken">Cancels the dump.</param>
    /// <returns>The entries.</returns>
    ValueTask<IReadOnlyList<NeighbourInfo>> GetFdbEntriesAsync(int? linkIndex = null, CancellationToken cancellationToken = default);

    // ---- monitor ----

    /// <summary>
    /// Streams notifications of the given groups from a socket of its own, until cancelled. When the kernel drops
    /// events (ENOBUFS) a <see cref="NetlinkEventKind.Resync"/> event is yielded and the stream goes on.
    /// </summary>
    /// <param name="groups">The groups to join.</param>
    /// <param name="cancellationToken">Ends the stream.</param>
    /// <returns>The events.</returns>
    IAsyncEnumerable<NetlinkEvent> MonitorAsync(NetlinkGroups groups, CancellationToken cancellationToken = default);
}
