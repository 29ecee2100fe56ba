using System.Runtime.InteropServices;
using CnmSharp.Drivers.Common;
using CnmSharp.Netlink;

namespace CnmSharp.Drivers.Macvlan;

/// <summary>The macvlan driver of one controller: the shared parent handling of <see cref="ParentLinkDriver"/> and a
/// macvlan device per endpoint, in the network's mode, with the endpoint's MAC.</summary>
internal sealed class MacvlanDriver(DriverContext context, IParentLinkKernel kernel)
    : ParentLinkDriver(context, kernel, MacvlanDriverFactory.DriverName)
{
    private static readonly string[] s_keys = [MacvlanOptionKeys.Mode];

    protected override IReadOnlyCollection<string> KindOptionKeys => s_keys;

    protected override string DeviceKind => "macvlan";

    protected override string DevicePrefix => "mv";

    /// <summary>The mode's kernel value, by its option spelling.</summary>
    internal static MacvlanMode ParseModeName(string text, string subject) => text switch
    {
        "bridge" => MacvlanMode.Bridge,
        "private" => MacvlanMode.Private,
        "vepa" => MacvlanMode.Vepa,
        "passthru" => MacvlanMode.Passthru,
        _ => throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidOption, subject, $"{MacvlanOptionKeys.Mode} \"{text}\" is not one of bridge, private, vepa, passthru"),
    };

    protected override ParentLinkMode ParseMode(IReadOnlyDictionary<string, string> options, string subject)
    {
        var text = options.TryGetValue(MacvlanOptionKeys.Mode, out var value) && !string.IsNullOrEmpty(value) ? value : "bridge";
        ParseModeName(text, subject);
        return new ParentLinkMode(text, null);
    }

    /// <summary>passthru hands the whole parent to one device: a second endpoint is refused here, before any address
    /// or device is taken, rather than by the kernel at join.</summary>
    protected override void CheckNewEndpoint(ParentLinkNetwork network, string subject)
    {
        if (string.Equals(network.Record.Mode, "passthru", StringComparison.Ordinal) && !network.Endpoints.IsEmpty)
        {
            throw new CnmConflictException(CnmErrorCodes.DriverForbidden, subject, $"network {network.Record.Name} is in passthru mode and already has an endpoint on parent interface {network.Record.Parent}");
        }
    }

    /// <summary>No MAC given: <c>02:42:</c> and the IPv4 address, as libnetwork does.</summary>
    protected override void FillInterface(ParentLinkNetwork network, IInterfaceInfo interfaceInfo, string subject)
    {
        if (interfaceInfo.MacAddress is null && interfaceInfo.Address is { } address)
        {
            interfaceInfo.SetMacAddress(MacAddresses.FromIPv4(address.Address));
        }
    }

    protected override LinkSpec DeviceSpec(string name, int parentIndex, ParentLinkNetwork network, ParentLinkEndpointRecord endpoint, SafeHandle sandbox) =>
        new MacvlanLinkSpec(name, parentIndex)
        {
            Mode = ParseModeName(network.Record.Mode, network.Record.Name),
            Mtu = network.Record.Mtu,
            Mac = endpoint.MacAddress is { } mac ? System.Net.NetworkInformation.PhysicalAddress.Parse(mac) : null,
            Namespace = sandbox,
        };

    protected override void ReportGateway(ParentLinkNetwork network, ParentLinkEndpointRecord endpoint, IJoinInfo joinInfo) =>
        ReportIpamGateways(network, endpoint, joinInfo);
}
