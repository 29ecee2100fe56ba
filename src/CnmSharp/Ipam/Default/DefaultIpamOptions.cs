using System.Globalization;
using System.Net;

namespace CnmSharp.Ipam.Default;

/// <summary>A range of predefined pools: <see cref="Base"/> carved into subnets of prefix length <see cref="Size"/>
/// (Docker's <c>default-address-pools</c> entry).</summary>
/// <param name="Base">The range to carve.</param>
/// <param name="Size">The prefix length of each pool; at least the base's prefix length.</param>
public sealed record PoolSplit(IPNetwork Base, int Size)
{
    /// <summary>Parses <c>base/len</c> and a size, for example <c>PoolSplit.Parse("10.0.0.0/8", 24)</c>.</summary>
    /// <param name="cidr">The base subnet in CIDR form.</param>
    /// <param name="size">The prefix length of each pool.</param>
    /// <returns>The split.</returns>
    /// <exception cref="CnmInvalidArgumentException">The base is not a subnet in CIDR form.</exception>
    public static PoolSplit Parse(string cidr, int size) =>
        IPNetworks.TryParse(cidr, allowHostBits: false, out var network)
            ? new PoolSplit(network, size)
            : throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidPool, $"pool \"{cidr}\"", "not a subnet in CIDR form");

    /// <summary>The number of pools this split yields.</summary>
    /// <returns>2 to the power of (<see cref="Size"/> minus the base's prefix length); 0 for an invalid split
    /// (size shorter than the base, or more than 2^127 pools).</returns>
    public UInt128 Count() =>
        Size < Base.PrefixLength || Size - Base.PrefixLength > 127 ? UInt128.Zero : UInt128.One << (Size - Base.PrefixLength);

    /// <inheritdoc />
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{Base} split into /{Size}");
}

/// <summary>The predefined pools of the default IPAM.</summary>
/// <remarks>
/// The defaults match libnetwork: local pools 172.17.0.0/16 to 172.31.0.0/16 and 192.168.0.0/16 carved into /20s
/// (31 pools), global pools 10.0.0.0/8 carved into /24s. libnetwork has no IPv6 default; CnmSharp adds
/// <c>fdcd:6e73::/32</c> carved into /64s, a unique local range that can be replaced or emptied.
/// </remarks>
public sealed class DefaultIpamOptions
{
    /// <summary>The most pools one split may yield (2^64), so the pool index always fits.</summary>
    public const int MaxSplitBits = 64;

    /// <summary>Predefined pools of the local address space, searched in order.</summary>
    public IReadOnlyList<PoolSplit> LocalPools { get; set; } = DefaultLocalPools;

    /// <summary>Predefined pools of the global address space, searched in order.</summary>
    public IReadOnlyList<PoolSplit> GlobalPools { get; set; } = DefaultGlobalPools;

    /// <summary>Predefined IPv6 pools (both address spaces), searched in order. Empty means an IPv6 network needs an
    /// explicit subnet, as in libnetwork.</summary>
    public IReadOnlyList<PoolSplit> IPv6Pools { get; set; } = DefaultIPv6Pools;

    /// <summary>libnetwork's local default pools.</summary>
    public static IReadOnlyList<PoolSplit> DefaultLocalPools { get; } =
    [
        PoolSplit.Parse("172.17.0.0/16", 16),
        PoolSplit.Parse("172.18.0.0/16", 16),
        PoolSplit.Parse("172.19.0.0/16", 16),
        PoolSplit.Parse("172.20.0.0/14", 16),
        PoolSplit.Parse("172.24.0.0/14", 16),
        PoolSplit.Parse("172.28.0.0/14", 16),
        PoolSplit.Parse("192.168.0.0/16", 20),
    ];

    /// <summary>libnetwork's global default pools.</summary>
    public static IReadOnlyList<PoolSplit> DefaultGlobalPools { get; } = [PoolSplit.Parse("10.0.0.0/8", 24)];

    /// <summary>CnmSharp's IPv6 default pools: a unique local range carved into /64s.</summary>
    public static IReadOnlyList<PoolSplit> DefaultIPv6Pools { get; } = [PoolSplit.Parse("fdcd:6e73::/32", 64)];

    /// <summary>Checks the options.</summary>
    /// <returns>The problems found; empty when the options are valid.</returns>
    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        Check(nameof(LocalPools), LocalPools, ipv6: false, errors);
        Check(nameof(GlobalPools), GlobalPools, ipv6: false, errors);
        Check(nameof(IPv6Pools), IPv6Pools, ipv6: true, errors);
        return errors;
    }

    /// <summary>Throws when <see cref="Validate"/> finds a problem.</summary>
    /// <exception cref="CnmInvalidArgumentException">The options are invalid (code <see cref="CnmErrorCodes.InvalidOption"/>).</exception>
    public void ThrowIfInvalid()
    {
        var errors = Validate();
        if (errors.Count > 0)
        {
            throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidOption, "default IPAM options", string.Join("; ", errors));
        }
    }

    private static void Check(string name, IReadOnlyList<PoolSplit>? splits, bool ipv6, List<string> errors)
    {
        if (splits is null)
        {
            errors.Add($"{name} is null");
            return;
        }

        var family = ipv6 ? "IPv6" : "IPv4";
        var maxBits = ipv6 ? 128 : 32;
        var valid = new List<IPNetwork>();
        for (var i = 0; i < splits.Count; i++)
        {
            var split = splits[i];
            var at = string.Create(CultureInfo.InvariantCulture, $"{name}[{i}]");
            if (split is null || split.Base.BaseAddress is null)
            {
                errors.Add($"{at} has no base subnet");
                continue;
            }

            if (split.Base.IsIPv6() != ipv6)
            {
                errors.Add($"{at} ({split.Base}) is not {family}: each list holds one family");
                continue;
            }

            if (split.Size < split.Base.PrefixLength)
            {
                errors.Add(string.Create(CultureInfo.InvariantCulture, $"{at}: size /{split.Size} is shorter than the base {split.Base}"));
                continue;
            }

            if (split.Size > maxBits)
            {
                errors.Add(string.Create(CultureInfo.InvariantCulture, $"{at}: size /{split.Size} is longer than {maxBits} bits"));
                continue;
            }

            if (split.Size - split.Base.PrefixLength > MaxSplitBits)
            {
                errors.Add(string.Create(CultureInfo.InvariantCulture, $"{at}: {split} yields more than 2^{MaxSplitBits} pools"));
                continue;
            }

            foreach (var other in valid)
            {
                if (other.Overlaps(split.Base))
                {
                    errors.Add($"{at}: {split.Base} overlaps {other} of the same list");
                }
            }

            valid.Add(split.Base);
        }
    }
}
