namespace CnmSharp.Drivers.Bridge;

/// <summary>The network option keys the <c>bridge</c> driver understands (<c>-o key=value</c>), as Docker spells them.</summary>
public static class BridgeOptionKeys
{
    /// <summary>The bridge device name (1 to 15 bytes). Default <c>br-</c> and the first 12 characters of the network id,
    /// or <see cref="BridgeDriverOptions.DefaultBridgeName"/> for the default bridge.</summary>
    public const string BridgeName = NetLabels.BridgePrefix + ".name";

    /// <summary>Inter-container communication on the network (<c>true</c>/<c>false</c>, default true).</summary>
    public const string EnableIcc = NetLabels.BridgePrefix + ".enable_icc";

    /// <summary>Masquerade traffic leaving the network (default true).</summary>
    public const string EnableIPMasquerade = NetLabels.BridgePrefix + ".enable_ip_masquerade";

    /// <summary>The default host address of published ports that give none (an IPv4 address).</summary>
    public const string HostBindingIPv4 = NetLabels.BridgePrefix + ".host_binding_ipv4";

    /// <summary>Give the bridge no IPv4 address (default false).</summary>
    public const string InhibitIPv4 = NetLabels.BridgePrefix + ".inhibit_ipv4";

    /// <summary>Marks the default bridge network (default false).</summary>
    public const string DefaultBridge = NetLabels.BridgePrefix + ".default_bridge";

    /// <summary>The MTU of the bridge and of the endpoints' veths (68 to 65535).</summary>
    public const string Mtu = NetLabels.DriverMtu;

    /// <summary>The prefix of the endpoints' interface names inside sandboxes (default <c>eth</c>).</summary>
    public const string ContainerInterfacePrefix = NetLabels.ContainerIfacePrefix;

    /// <summary>Source-NAT traffic leaving the network to this IPv4 address instead of masquerading.</summary>
    public const string HostIPv4 = NetLabels.HostIPv4;
}
