using System.Globalization;
using CnmSharp.Netlink;

namespace CnmSharp.Drivers.Common;

/// <summary>
/// The <c>parent</c> option of a link-on-a-parent network (macvlan, ipvlan), checked before anything is touched: an
/// interface name as the kernel accepts it (1 to 15 bytes, no <c>/</c>, <c>:</c> or whitespace), and a name with a
/// dot is an 802.1Q sub-interface written <c>NAME.VID</c> with VID 1 to 4094.
/// </summary>
/// <param name="Name">The parent's name as given.</param>
/// <param name="BaseName">For <c>NAME.VID</c>, the link the sub-interface is made on; otherwise null.</param>
/// <param name="VlanId">For <c>NAME.VID</c>, the VLAN id; otherwise 0.</param>
internal sealed record ParentName(string Name, string? BaseName, ushort VlanId)
{
    /// <summary>The largest 802.1Q VLAN id a sub-interface may carry (4095 is reserved).</summary>
    public const int MaxVlanId = 4094;

    /// <summary>True for a <c>NAME.VID</c> sub-interface.</summary>
    public bool IsVlan => BaseName is not null;

    /// <summary>Parses the option; null or empty means "no parent" (an internal parent is made).</summary>
    /// <param name="value">The option's value.</param>
    /// <param name="subject">The network, for the error.</param>
    /// <returns>The parent, or null for none.</returns>
    /// <exception cref="CnmInvalidArgumentException">The name is not valid.</exception>
    public static ParentName? Parse(string? value, string subject)
    {
        if (string.IsNullOrEmpty(value))
        {
            return null;
        }

        try
        {
            LinkNames.Validate(value);
        }
        catch (ArgumentException)
        {
            throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidOption, subject, $"parent interface \"{value}\" is not a valid interface name: 1 to 15 bytes, without '/', ':' or whitespace");
        }

        var dot = value.IndexOf('.', StringComparison.Ordinal);
        if (dot < 0)
        {
            return new ParentName(value, null, 0);
        }

        // libnetwork's rule: a dotted parent is NAME.VID, nothing else.
        var baseName = value[..dot];
        var vid = value[(dot + 1)..];
        if (baseName.Length == 0
            || vid.Contains('.', StringComparison.Ordinal)
            || !int.TryParse(vid, NumberStyles.None, CultureInfo.InvariantCulture, out var id)
            || id is < 1 or > MaxVlanId)
        {
            throw new CnmInvalidArgumentException(
                CnmErrorCodes.InvalidOption,
                subject,
                $"parent interface \"{value}\" is not NAME.VID with a VLAN id from 1 to {MaxVlanId}: example formatting is eth0.10");
        }

        return new ParentName(value, baseName, (ushort)id);
    }

    /// <summary>The name of the internal parent of a network created without one: <c>dm-</c> and the first 12
    /// characters of the network id (libnetwork's dummy name).</summary>
    /// <param name="networkId">The network id.</param>
    /// <returns>The name.</returns>
    public static string Internal(string networkId) => "dm-" + (networkId.Length > 12 ? networkId[..12] : networkId);
}
