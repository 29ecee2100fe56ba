using System.Net;
using System.Net.Sockets;

namespace CnmSharp.Ipam.Default;

/// <summary>The default IPAM's pool capacity rule (<see cref="IIpamPoolConfigurationCheck"/>).</summary>
internal static class PoolCapacity
{
    /// <summary>
    /// Refuses a subnet that has no address left to hand out to an endpoint: the usable addresses are all of the
    /// subnet except the network address and, for IPv4, the broadcast address (an IPv4 /31 or /32 and an IPv6 /127 or
    /// /128 have neither, RFC 3021 and RFC 6164); an IP range narrows them to the range; the gateway (given, or chosen by
    /// IPAM from them) and the auxiliary addresses in them are taken.
    /// </summary>
    public static void Check(string subject, IPNetwork subnet, IPNetwork? range, IPAddress? gateway, IEnumerable<IPAddress> auxAddresses)
    {
        var bits = subnet.BaseAddress.AddressFamily == AddressFamily.InterNetwork ? 32 : 128;
        var hostBits = bits - subnet.PrefixLength;
        var first = IpMath.ToUInt128(subnet.BaseAddress);
        var last = first + (hostBits == 128 ? UInt128.MaxValue : (UInt128.One << hostBits) - 1);
        var lo = first;
        var hi = last;
        if (hostBits > 1)
        {
            lo = first + 1;
            hi = bits == 32 ? last - 1 : last;
        }

        if (range is { } r)
        {
            var rangeHostBits = bits - r.PrefixLength;
            var rangeFirst = IpMath.ToUInt128(r.BaseAddress);
            var rangeLast = rangeFirst + (rangeHostBits == 128 ? UInt128.MaxValue : (UInt128.One << rangeHostBits) - 1);
            lo = UInt128.Max(lo, rangeFirst);
            hi = UInt128.Min(hi, rangeLast);
        }

        var available = hi >= lo ? hi - lo + 1 : UInt128.Zero;
        var taken = new HashSet<UInt128>();
        var takenCount = UInt128.Zero;
        if (gateway is null)
        {
            takenCount++; // IPAM picks the gateway from these addresses
        }
        else if (IpMath.ToUInt128(gateway) is var g && g >= lo && g <= hi && taken.Add(g))
        {
            takenCount++;
        }

        foreach (var aux in auxAddresses)
        {
            if (IpMath.ToUInt128(aux) is var a && a >= lo && a <= hi && taken.Add(a))
            {
                takenCount++;
            }
        }

        if (available > takenCount)
        {
            return;
        }

        var where = range is { } shown ? $"IP range {shown} of subnet {subnet}" : $"subnet {subnet}";
        var smallest = bits == 32 ? "/31" : "/127";
        throw new CnmInvalidArgumentException(
            range is null ? CnmErrorCodes.InvalidPool : CnmErrorCodes.InvalidSubPool,
            subject,
            $"{where} has no address left for an endpoint after the gateway{(taken.Count > (gateway is null ? 0 : 1) ? " and the auxiliary addresses" : "")}: a network needs at least a {smallest} (one gateway and one endpoint)");
    }
}

/// <summary>The default IPAM's pool configuration check (kept beside the rule it applies).</summary>
public sealed partial class DefaultIpam : IIpamPoolConfigurationCheck
{
    /// <inheritdoc />
    public void CheckPoolConfiguration(string subject, PoolConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        PoolCapacity.Check(subject, configuration.Subnet, configuration.IPRange, configuration.Gateway, configuration.AuxAddresses);
    }
}
