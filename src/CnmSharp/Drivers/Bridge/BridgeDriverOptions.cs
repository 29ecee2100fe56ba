using System.ComponentModel.DataAnnotations;

namespace CnmSharp.Drivers.Bridge;

/// <summary>Driver-wide settings of the <c>bridge</c> driver (libnetwork's bridge <c>configuration</c>).</summary>
public sealed class BridgeDriverOptions
{
    /// <summary>The default name of the default bridge network's device.</summary>
    public const string DefaultDefaultBridgeName = "cnm0";

    /// <summary>
    /// The device name of the network created with <c>com.docker.network.bridge.default_bridge=true</c> when it gives
    /// no <c>com.docker.network.bridge.name</c>. Default <c>cnm0</c> (not <c>docker0</c>, so CnmSharp can live beside
    /// Docker). 1 to 15 bytes.
    /// </summary>
    [Required]
    public string DefaultBridgeName { get; set; } = DefaultDefaultBridgeName;

    /// <summary>Set <c>net.ipv4.ip_forward=1</c> (and <c>net.ipv6.conf.all.forwarding=1</c> for IPv6 networks) in the
    /// controller's host namespace when a network is created. Default true.</summary>
    public bool EnableIPForwarding { get; set; } = true;

    /// <summary>Program the controller's firewall backend (when it has one) for networks and published ports. Default true.</summary>
    public bool EnableFirewall { get; set; } = true;

    /// <summary>The MTU of networks that give no <c>com.docker.network.driver.mtu</c>. Default 1500.</summary>
    [Range(BridgeNetworkOptions.MinMtu, BridgeNetworkOptions.MaxMtu)]
    public int DefaultMtu { get; set; } = 1500;

    /// <summary>Set <c>net.bridge.bridge-nf-call-iptables</c> (and <c>-ip6tables</c>) to 1 in the host namespace for
    /// networks with inter-container communication off, so the firewall sees bridged traffic. Default true.</summary>
    public bool EnableBridgeNetfilter { get; set; } = true;

    /// <summary>How long <see cref="INetworkDriver.DeleteEndpointAsync"/> waits for the kernel to reap an endpoint's
    /// host-side veth after its sandbox's namespace was deleted, before deleting it itself. Default 10 s.</summary>
    public TimeSpan ReapTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Throws <see cref="CnmInvalidArgumentException"/> (code <see cref="CnmErrorCodes.InvalidOption"/>) when a
    /// setting is out of range.</summary>
    public void Validate()
    {
        if (!BridgeNetworkOptions.IsValidBridgeName(DefaultBridgeName))
        {
            throw Invalid($"DefaultBridgeName \"{DefaultBridgeName}\" must be 1 to 15 bytes without '/', ':' or whitespace");
        }

        if (DefaultMtu is < BridgeNetworkOptions.MinMtu or > BridgeNetworkOptions.MaxMtu)
        {
            throw Invalid($"DefaultMtu {DefaultMtu} is outside {BridgeNetworkOptions.MinMtu}..{BridgeNetworkOptions.MaxMtu}");
        }

        if (ReapTimeout < TimeSpan.Zero)
        {
            throw Invalid("ReapTimeout must not be negative");
        }

    }

    /// <summary>A copy, so a driver keeps the settings it started with.</summary>
    /// <returns>The copy.</returns>
    public BridgeDriverOptions Clone() => (BridgeDriverOptions)MemberwiseClone();

    private static CnmInvalidArgumentException Invalid(string reason) =>
        new(CnmErrorCodes.InvalidOption, "bridge driver options", reason);
}
