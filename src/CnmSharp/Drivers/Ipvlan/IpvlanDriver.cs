using System.Net;
using System.Runtime.InteropServices;
using CnmSharp.Drivers.Common;
using CnmSharp.Netlink;

namespace CnmSharp.Drivers.Ipvlan;

/// <summary>The ipvlan driver of one controller: the shared parent handling of <see cref="ParentLinkDriver"/> and an
/// ipvlan device per endpoint, in the network's mode and flag. In l2 the endpoint's gateway is the IPAM gateway; in l3
/// and l3s there is none: the join disables the gateway service and asks for default routes on the device.</summary>
internal sealed class IpvlanDriver(DriverContext context, IParentLinkKernel kernel)
    : ParentLinkDriver(context, kernel, IpvlanDriverFactory.DriverName)
{
    private static readonly string[] s_keys = [IpvlanOptionKeys.Mode, IpvlanOptionKeys.Flag];
    private static readonly IPNetwork s_anyIPv4 = new(IPAddress.Any, 0);
    private static readonly IPNetwork s_anyIPv6 = new(IPAddress.IPv6Any, 0);

    protected override IReadOnlyCollection<string> KindOptionKeys => s_keys;

    protected override string DeviceKind => "ipvlan";

    protected override string DevicePrefix => "iv";

    internal static IpvlanMode ParseModeName(string text, string subject) => text switch
    {
        "l2" => IpvlanMode.L2,
        "l3" => IpvlanMode.L3,
        "l3s" => IpvlanMode.L3S,
        _ => throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidOption, subject, $"{IpvlanOptionKeys.Mode} \"{text}\" is not one of l2, l3, l3s"),
    };

    internal static IpvlanFlags ParseFlagName(string text, string subject) => text switch
    {
        "bridge" => IpvlanFlags.Bridge,
        "private" => IpvlanFlags.Private,
        "vepa" => IpvlanFlags.Vepa,
        _ => throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidOption, subject, $"{IpvlanOptionKeys.Flag} \"{text}\" is not one of bridge, private, vepa"),
    };

    protected override ParentLinkMode ParseMode(IReadOnlyDictionary<string, string> options, string subject)
    {
        var mode = options.TryGetValue(IpvlanOptionKeys.Mode, out var m) && !string.IsNullOrEmpty(m) ? m : "l2";
        var flag = options.TryGetValue(IpvlanOptionKeys.Flag, out var f) && !string.IsNullOrEmpty(f) ? f : "bridge";
        ParseModeName(mode, subject);
        ParseFlagName(flag, subject);
        return new ParentLinkMode(mode, flag);
    }

    /// <summary>An ipvlan device has its parent's MAC: a MAC of the endpoint's own is refused (as libnetwork does).</summary>
    protected override void FillInterface(ParentLinkNetwork network, IInterfaceInfo interfaceInfo, string subject)
    {
        if (interfaceInfo.MacAddress is not null)
        {
            throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidOption, subject, "ipvlan interfaces do not support a MAC address of their own");
        }
    }

    protected override LinkSpec DeviceSpec(string name, int parentIndex, ParentLinkNetwork network, ParentLinkEndpointRecord endpoint, SafeHandle sandbox)
    {
        var flag = ParseFlagName(network.Record.Flag ?? "bridge", network.Record.Name);
        return new IpvlanLinkSpec(name, parentIndex)
        {
            Mode = ParseModeName(network.Record.Mode, network.Record.Name),
            Flags = flag,
            Mtu = network.Record.Mtu,
            Namespace = sandbox,
        };
    }

    protected override void ReportGateway(ParentLinkNetwork network, ParentLinkEndpointRecord endpoint, IJoinInfo joinInfo)
    {
        if (ParseModeName(network.Record.Mode, network.Record.Name) == IpvlanMode.L2)
        {
            ReportIpamGateways(network, endpoint, joinInfo);
            return;
        }

        // l3 and l3s: the parent routes; the sandbox sends everything straight out of the device.
        joinInfo.DisableGatewayService();
        if (network.Record.Internal)
        {
            return;
        }

        if (endpoint.Address is not null)
        {
            joinInfo.AddStaticRoute(new StaticRoute(s_anyIPv4, RouteType.Connected, null));
        }

        if (network.Record.EnableIPv6 && endpoint.AddressIPv6 is not null)
        {
            joinInfo.AddStaticRoute(new StaticRoute(s_anyIPv6, RouteType.Connected, null));
        }
    }
}
