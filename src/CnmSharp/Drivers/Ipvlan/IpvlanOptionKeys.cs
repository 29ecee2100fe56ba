namespace CnmSharp.Drivers.Ipvlan;

/// <summary>The ipvlan driver's network options (<c>-o key=value</c>).</summary>
public static class IpvlanOptionKeys
{
    /// <summary>The parent link in the host namespace: a name, <c>NAME.VID</c> for an 802.1Q sub-interface (made when
    /// missing), or nothing for an internal parent that only the network's sandboxes share.</summary>
    public const string Parent = "parent";

    /// <summary><c>l2</c> (default), <c>l3</c> or <c>l3s</c>.</summary>
    public const string Mode = "ipvlan_mode";

    /// <summary><c>bridge</c> (default), <c>private</c> or <c>vepa</c>.</summary>
    public const string Flag = "ipvlan_flag";
}
