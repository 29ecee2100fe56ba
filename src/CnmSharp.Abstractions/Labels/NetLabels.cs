namespace CnmSharp;

/// <summary>The option and label keys of the CNM, as Docker spells them on the wire and in the store.</summary>
public static class NetLabels
{
    /// <summary>The prefix of every well-known key.</summary>
    public const string Prefix = "com.docker.network";

    /// <summary>The user's driver options (<c>-o k=v</c>), passed to the driver as a string map.</summary>
    public const string Generic = Prefix + ".generic";

    /// <summary>Enables IPv6 on a network (<c>true</c>/<c>false</c>).</summary>
    public const string EnableIPv6 = Prefix + ".enable_ipv6";

    /// <summary>Marks a network internal: no gateway route out, no masquerade.</summary>
    public const string Internal = Prefix + ".internal";

    /// <summary>The MTU of the network's interfaces.</summary>
    public const string DriverMtu = Prefix + ".driver.mtu";

    /// <summary>The prefix of container-side interface names (default <c>eth</c>).</summary>
    public const string ContainerIfacePrefix = Prefix + ".container_iface_prefix";

    /// <summary>The source address for SNAT instead of masquerade.</summary>
    public const string HostIPv4 = Prefix + ".host_ipv4";

    /// <summary>An endpoint's exposed ports.</summary>
    public const string ExposedPorts = Prefix + ".endpoint.exposedports";

    /// <summary>An endpoint's published port bindings.</summary>
    public const string PortMap = Prefix + ".portmap";

    /// <summary>An endpoint's MAC address.</summary>
    public const string MacAddress = Prefix + ".endpoint.macaddress";

    /// <summary>An endpoint's DNS servers.</summary>
    public const string DnsServers = Prefix + ".endpoint.dnsservers";

    /// <summary>The IPAM option that asks for the gateway address (value <see cref="RequestAddressTypeGateway"/>).</summary>
    public const string RequestAddressType = "RequestAddressType";

    /// <summary>The value of <see cref="RequestAddressType"/> for a gateway, and the IPAM meta key of a chosen gateway.</summary>
    public const string RequestAddressTypeGateway = Prefix + ".gateway";

    /// <summary>The IPAM option for serial (round-robin) allocation instead of first-free.</summary>
    public const string IpamSerial = Prefix + ".ipam.serial";

    /// <summary>The overlay VXLAN id list option.</summary>
    public const string OverlayVxlanIdList = Prefix + ".driver.overlay.vxlanid_list";

    /// <summary>The bridge driver's option prefix.</summary>
    public const string BridgePrefix = Prefix + ".bridge";

    /// <summary>The IPAM option that names the owner of an address (an endpoint id, or <c>network:&lt;id&gt;</c> for
    /// gateways and aux addresses), so that an IPAM implementing <see cref="Ipam.IIpamOwnedAllocations"/> can release what a
    /// crash left behind. A CnmSharp extension; IPAMs that do not know it ignore it.</summary>
    public const string IpamOwner = "io.cnmsharp.ipam.owner";

    /// <summary>A network label: <c>true</c> keeps the network's endpoints from ever giving their sandbox the
    /// controller's gateway network (outbound access through a local bridge), as an internal network never does.</summary>
    public const string NoGatewayNetwork = "io.cnmsharp.network.no_gateway_network";

    /// <summary>Splits <c>key=value</c> at the first <c>=</c>.</summary>
    /// <param name="keyValue">The text.</param>
    /// <returns>The key and the value (empty when there is no <c>=</c>).</returns>
    public static (string Key, string Value) Split(string keyValue)
    {
        ArgumentNullException.ThrowIfNull(keyValue);
        var eq = keyValue.IndexOf('=', StringComparison.Ordinal);
        return eq < 0 ? (keyValue.Trim(), string.Empty) : (keyValue[..eq].Trim(), keyValue[(eq + 1)..].Trim());
    }
}
