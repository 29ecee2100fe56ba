using System.Net;

namespace CnmSharp.Ipam;

/// <summary>A pool configuration a user asked for, as the core parsed it, before anything is reserved.</summary>
/// <param name="Subnet">The subnet.</param>
/// <param name="IPRange">The sub-pool addresses are given from, or null for the whole subnet.</param>
/// <param name="Gateway">The gateway the user gave, or null when the IPAM will choose one.</param>
/// <param name="AuxAddresses">The auxiliary addresses the user reserved.</param>
public sealed record PoolConfiguration(IPNetwork Subnet, IPNetwork? IPRange, IPAddress? Gateway, IReadOnlyList<IPAddress> AuxAddresses);

/// <summary>
/// An IPAM that can refuse a pool configuration before the core reserves anything, for example one that leaves no
/// address for an endpoint once the gateway and auxiliary addresses are taken. How many addresses a pool offers is the
/// IPAM's rule (the default IPAM never hands out the network and broadcast addresses), so the check lives behind the
/// IPAM contract; the core calls it for every configuration with a subnet when the network's IPAM implements it.
/// </summary>
public interface IIpamPoolConfigurationCheck
{
    /// <summary>Throws <see cref="CnmInvalidArgumentException"/> when the configuration cannot work with this IPAM.</summary>
    /// <param name="subject">What to name in the error (for example <c>network "n"</c>).</param>
    /// <param name="configuration">The configuration.</param>
    void CheckPoolConfiguration(string subject, PoolConfiguration configuration);
}
