namespace CnmSharp.Firewall;

/// <summary>
/// Programs the packet filter of one host namespace for bridge networks: rules per network, port forwards per
/// endpoint. A driver depends on this contract alone, so a backend (iptables, nftables) can be swapped without touching
/// drivers. A backend serializes its calls; every call either applies completely or changes nothing and throws.
/// </summary>
/// <remarks>
/// A backend keeps the records it was given in memory and re-creates the ruleset from them in
/// <see cref="ReconcileAsync"/>. After a process restart the owner (the driver) calls <see cref="ReconcileAsync"/> (or
/// the setup methods) with what it restored before tearing anything down.
/// </remarks>
public interface IFirewallBackend
{
    /// <summary>The backend's name, for example <c>iptables</c>.</summary>
    string Name { get; }

    /// <summary>Creates (or, for a known <see cref="FirewallNetwork.NetworkId"/>, updates) the rules of a network,
    /// and the shared chains when it is the first. Idempotent: rules present already are not added twice.</summary>
    /// <param name="network">The network.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when the rules are in place.</returns>
    /// <exception cref="CnmInvalidArgumentException">The record is malformed (bad bridge name, wrong address family).</exception>
    /// <exception cref="CnmConflictException">Another network uses the same bridge.</exception>
    /// <exception cref="CnmInternalException">The kernel refused the change (<see cref="CnmErrorCodes.KernelError"/>).</exception>
    ValueTask SetupNetworkAsync(FirewallNetwork network, CancellationToken cancellationToken = default);

    /// <summary>Removes exactly the rules the network added (and the shared chains when it is the last). Rules already
    /// missing are ignored; tearing down an unknown network removes whatever of its rules exist.</summary>
    /// <param name="network">The network.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when the rules are gone.</returns>
    /// <exception cref="CnmInternalException">The kernel refused the change.</exception>
    ValueTask TeardownNetworkAsync(FirewallNetwork network, CancellationToken cancellationToken = default);

    /// <summary>Creates (or replaces) the port forwards of one endpoint. The network must have been set up.</summary>
    /// <param name="forward">The endpoint's forwards, host ports resolved.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when the forwards are in place.</returns>
    /// <exception cref="CnmInvalidArgumentException">The record is malformed (unresolved port, missing container address).</exception>
    /// <exception cref="CnmNotFoundException">The network is unknown to this backend.</exception>
    /// <exception cref="CnmInternalException">The kernel refused the change.</exception>
    ValueTask SetupPortForwardsAsync(FirewallPortForward forward, CancellationToken cancellationToken = default);

    /// <summary>Removes the port forwards of one endpoint. Rules already missing are ignored.</summary>
    /// <param name="forward">The endpoint's forwards.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when the forwards are gone.</returns>
    /// <exception cref="CnmInternalException">The kernel refused the change.</exception>
    ValueTask TeardownPortForwardsAsync(FirewallPortForward forward, CancellationToken cancellationToken = default);

    /// <summary>
    /// Reconciles every owner at once: makes the packet filter hold exactly the rules of the given records, in one batch per address family: re-creates
    /// what an external flush (firewalld reload, <c>iptables -F</c>) removed and removes what previously known records
    /// added but the new set does not contain. The records replace the backend's in-memory state.
    /// </summary>
    /// <param name="networks">Every network that should have rules.</param>
    /// <param name="forwards">Every endpoint's port forwards.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when the ruleset is in place.</returns>
    /// <exception cref="CnmInvalidArgumentException">A record is malformed.</exception>
    /// <exception cref="CnmInternalException">The kernel refused the change.</exception>
    ValueTask ReconcileAsync(IReadOnlyList<FirewallNetwork> networks, IReadOnlyList<FirewallPortForward> forwards, CancellationToken cancellationToken = default);

    /// <summary>
    /// Reconciles one owner's part of the rule set: the owner's records are replaced with the given ones (the other
    /// owners' are kept), the kernel is made to hold exactly the rules of the owner's records (re-creating what was
    /// deleted behind the backend's back, removing what the owner's previous records added and the new ones do not)
    /// and the shared rules; the rules of other owners are neither removed nor re-created.
    /// </summary>
    /// <param name="owner">The owner (<see cref="FirewallNetwork.Owner"/>); every network given must have it.</param>
    /// <param name="networks">Every network of the owner that should have rules.</param>
    /// <param name="forwards">Every port forward of those networks.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when the owner's part is in place.</returns>
    /// <exception cref="CnmInvalidArgumentException">A record is malformed or names another owner.</exception>
    /// <exception cref="CnmInternalException">The kernel refused the change.</exception>
    ValueTask ReconcileOwnerAsync(string owner, IReadOnlyList<FirewallNetwork> networks, IReadOnlyList<FirewallPortForward> forwards, CancellationToken cancellationToken = default);

    /// <summary>
    /// Replaces one owner's in-memory records without touching the packet filter (see <see cref="AdoptAsync"/>); the
    /// other owners' records are kept.
    /// </summary>
    /// <param name="owner">The owner; every network given must have it.</param>
    /// <param name="networks">Every network of the owner that has rules now.</param>
    /// <param name="forwards">Every port forward of those networks now.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when the records are replaced.</returns>
    /// <exception cref="CnmInvalidArgumentException">A record is malformed or names another owner.</exception>
    ValueTask AdoptOwnerAsync(string owner, IReadOnlyList<FirewallNetwork> networks, IReadOnlyList<FirewallPortForward> forwards, CancellationToken cancellationToken = default);

    /// <summary>
    /// Replaces the backend's in-memory records with the given ones without touching the packet filter: another
    /// controller sharing the state has changed the rules (and the records), and this backend must not plan its next
    /// change from what it remembered (it would re-create the rules of networks the other one deleted).
    /// </summary>
    /// <param name="networks">Every network that has rules now.</param>
    /// <param name="forwards">Every endpoint's port forwards now.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when the records are replaced.</returns>
    /// <exception cref="CnmInvalidArgumentException">A record is malformed.</exception>
    ValueTask AdoptAsync(IReadOnlyList<FirewallNetwork> networks, IReadOnlyList<FirewallPortForward> forwards, CancellationToken cancellationToken = default);
}
