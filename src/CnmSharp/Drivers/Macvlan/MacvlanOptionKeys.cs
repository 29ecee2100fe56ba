namespace CnmSharp.Drivers.Macvlan;

/// <summary>The macvlan driver's network options (<c>-o key=value</c>).</summary>
public static class MacvlanOptionKeys
{
    /// <summary>The parent link in the host namespace: a name, <c>NAME.VID</c> for an 802.1Q sub-interface (made when
    /// missing), or nothing for an internal parent that only the network's sandboxes share.</summary>
    public const string Parent = "parent";

    /// <summary><c>bridge</c> (default), <c>private</c>, <c>vepa</c> or <c>passthru</c>.</summary>
    public const string Mode = "macvlan_mode";
}
