using System.Net.NetworkInformation;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace CnmSharp.Netlink.Internal;

/// <summary>A request the client can encode without allocating; structs, so generic calls do not box.</summary>
internal interface IRequest
{
    void Encode(ref NetlinkWriter writer, uint sequence);

    /// <summary>Handles whose fds the message carries (kept alive while it is in flight).</summary>
    void GetHandles(out SafeHandle? first, out SafeHandle? second);
}

internal readonly struct CreateLinkRequest(LinkSpec spec) : IRequest
{
    public void Encode(ref NetlinkWriter writer, uint sequence) => RtnetlinkEncoder.CreateLink(ref writer, sequence, spec);

    public void GetHandles(out SafeHandle? first, out SafeHandle? second)
    {
        first = spec.Namespace;
        second = (spec as VethLinkSpec)?.PeerNamespace;
    }
}

internal readonly struct SetLinkRequest(LinkReference link, LinkChange change, uint value, PhysicalAddress? mac, string? name, SafeHandle? ns) : IRequest
{
    public void Encode(ref NetlinkWriter writer, uint sequence) =>
        RtnetlinkEncoder.SetLink(ref writer, sequence, link, change, value, mac, name, ns);

    public void GetHandles(out SafeHandle? first, out SafeHandle? second)
    {
        first = ns;
        second = null;
    }
}

internal readonly struct HairpinRequest(int index, bool enabled) : IRequest
{
    public void Encode(ref NetlinkWriter writer, uint sequence) => RtnetlinkEncoder.SetBridgePortHairpin(ref writer, sequence, index, enabled);

    public void GetHandles(out SafeHandle? first, out SafeHandle? second) => first = second = null;
}

internal readonly struct DeleteLinkRequest(LinkReference link) : IRequest
{
    public void Encode(ref NetlinkWriter writer, uint sequence) => RtnetlinkEncoder.DeleteLink(ref writer, sequence, link);

    public void GetHandles(out SafeHandle? first, out SafeHandle? second) => first = second = null;
}

internal readonly struct GetLinkRequest(LinkReference link) : IRequest
{
    public void Encode(ref NetlinkWriter writer, uint sequence) => RtnetlinkEncoder.GetLink(ref writer, sequence, link);

    public void GetHandles(out SafeHandle? first, out SafeHandle? second) => first = second = null;
}

internal readonly struct DumpLinksRequest : IRequest
{
    public void Encode(ref NetlinkWriter writer, uint sequence) => RtnetlinkEncoder.DumpLinks(ref writer, sequence);

    public void GetHandles(out SafeHandle? first, out SafeHandle? second) => first = second = null;
}

internal readonly struct AddressRequest(AddressSpec spec, bool add) : IRequest
{
    public void Encode(ref NetlinkWriter writer, uint sequence) => RtnetlinkEncoder.Address(ref writer, sequence, spec, add);

    public void GetHandles(out SafeHandle? first, out SafeHandle? second) => first = second = null;
}

internal readonly struct DumpAddressesRequest(AddressFamily family) : IRequest
{
    public void Encode(ref NetlinkWriter writer, uint sequence) => RtnetlinkEncoder.DumpAddresses(ref writer, sequence, family);

    public void GetHandles(out SafeHandle? first, out SafeHandle? second) => first = second = null;
}

internal readonly struct RouteRequest(RouteSpec spec, ushort type, ushort flags) : IRequest
{
    public void Encode(ref NetlinkWriter writer, uint sequence) => RtnetlinkEncoder.Route(ref writer, sequence, spec, type, flags);

    public void GetHandles(out SafeHandle? first, out SafeHandle? second) => first = second = null;
}

internal readonly struct DumpRoutesRequest(AddressFamily family) : IRequest
{
    public void Encode(ref NetlinkWriter writer, uint sequence) => RtnetlinkEncoder.DumpRoutes(ref writer, sequence, family);

    public void GetHandles(out SafeHandle? first, out SafeHandle? second) => first = second = null;
}

internal readonly struct NeighbourRequest(NeighbourSpec spec, ushort type, ushort flags) : IRequest
{
    public void Encode(ref NetlinkWriter writer, uint sequence) => RtnetlinkEncoder.Neighbour(ref writer, sequence, spec, type, flags);

    public void GetHandles(out SafeHandle? first, out SafeHandle? second) => first = second = null;
}

internal readonly struct FdbRequest(FdbEntrySpec spec, bool add) : IRequest
{
    public void Encode(ref NetlinkWriter writer, uint sequence) => RtnetlinkEncoder.Fdb(ref writer, sequence, spec, add);

    public void GetHandles(out SafeHandle? first, out SafeHandle? second) => first = second = null;
}

internal readonly struct DumpNeighboursRequest(byte family) : IRequest
{
    public void Encode(ref NetlinkWriter writer, uint sequence) => RtnetlinkEncoder.DumpNeighbours(ref writer, sequence, family);

    public void GetHandles(out SafeHandle? first, out SafeHandle? second) => first = second = null;
}
