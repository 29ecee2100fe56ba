using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using CnmSharp.Netlink.Interop;

namespace CnmSharp.Netlink.Internal;

/// <summary>What a set-link request changes.</summary>
internal enum LinkChange : byte
{
    Up,
    Down,
    Mtu,
    Mac,
    Name,
    Master,
    Namespace,
    IPv6AddressGeneration,
}

/// <summary>Encodes rtnetlink requests. Every method writes one complete message; nothing here allocates.</summary>
internal static class RtnetlinkEncoder
{
    private const ushort CreateFlags = Nl.NLM_F_REQUEST | Nl.NLM_F_ACK | Nl.NLM_F_CREATE | Nl.NLM_F_EXCL;
    private const ushort ReplaceFlags = Nl.NLM_F_REQUEST | Nl.NLM_F_ACK | Nl.NLM_F_CREATE | Nl.NLM_F_REPLACE;
    private const ushort PrependFlags = Nl.NLM_F_REQUEST | Nl.NLM_F_ACK | Nl.NLM_F_CREATE;
    private const ushort AckFlags = Nl.NLM_F_REQUEST | Nl.NLM_F_ACK;
    private const ushort DumpFlags = Nl.NLM_F_REQUEST | Nl.NLM_F_DUMP;
    private const uint IFF_UP = 1;
    private const uint RTEXT_FILTER_SKIP_STATS = 1 << 3;

    public static int Fd(SafeHandle handle) => (int)handle.DangerousGetHandle();

    // ---- links ----

    public static void CreateLink(ref NetlinkWriter w, uint seq, LinkSpec spec)
    {
        var msg = w.BeginMessage(Rt.RTM_NEWLINK, CreateFlags, seq);
        var up = spec.Up ? IFF_UP : 0;
        w.WriteIfInfoMsg(Libc.AF_UNSPEC, 0, up, up);
        w.WriteString(Rt.IFLA_IFNAME, spec.Name);
        if (spec.Mtu is { } mtu)
        {
            w.WriteU32(Rt.IFLA_MTU, (uint)mtu);
        }

        if (spec.Mac is { } mac)
        {
            w.WriteMac(Rt.IFLA_ADDRESS, mac);
        }

        if (spec.MasterIndex is { } master)
        {
            w.WriteU32(Rt.IFLA_MASTER, (uint)master);
        }

        if (spec.Namespace is { } ns)
        {
            w.WriteU32(Rt.IFLA_NET_NS_FD, (uint)Fd(ns));
        }

        switch (spec)
        {
            case MacvlanLinkSpec m:
                w.WriteU32(Rt.IFLA_LINK, (uint)m.ParentIndex);
                break;
            case IpvlanLinkSpec i:
                w.WriteU32(Rt.IFLA_LINK, (uint)i.ParentIndex);
                break;
            case VlanLinkSpec v:
                w.WriteU32(Rt.IFLA_LINK, (uint)v.ParentIndex);
                break;
        }

        var linkInfo = w.BeginNested(Rt.IFLA_LINKINFO);
        w.WriteString(Rt.IFLA_INFO_KIND, spec.Kind);
        switch (spec)
        {
            case VethLinkSpec veth:
                {
                    var data = w.BeginNested(Rt.IFLA_INFO_DATA);
                    var peer = w.BeginNested(Rt.VETH_INFO_PEER);
                    w.WriteIfInfoMsg(Libc.AF_UNSPEC, 0);
                    w.WriteString(Rt.IFLA_IFNAME, veth.PeerName);
                    if (veth.PeerMac is { } peerMac)
                    {
                        w.WriteMac(Rt.IFLA_ADDRESS, peerMac);
                    }

                    if ((veth.PeerMtu ?? veth.Mtu) is { } peerMtu)
                    {
                        w.WriteU32(Rt.IFLA_MTU, (uint)peerMtu);
                    }

                    if (veth.PeerNamespace is { } peerNs)
                    {
                        w.WriteU32(Rt.IFLA_NET_NS_FD, (uint)Fd(peerNs));
                    }

                    w.EndNested(peer);
                    w.EndNested(data);
                    break;
                }

            case VxlanLinkSpec vx:
                {
                    var data = w.BeginNested(Rt.IFLA_INFO_DATA);
                    w.WriteU32(Rt.IFLA_VXLAN_ID, vx.Vni);
                    if (vx.Group is { } group)
                    {
                        w.WriteAddress(group.AddressFamily == AddressFamily.InterNetwork ? Rt.IFLA_VXLAN_GROUP : Rt.IFLA_VXLAN_GROUP6, group);
                    }

                    if (vx.Local is { } local)
                    {
                        w.WriteAddress(local.AddressFamily == AddressFamily.InterNetwork ? Rt.IFLA_VXLAN_LOCAL : Rt.IFLA_VXLAN_LOCAL6, local);
                    }

                    if (vx.DeviceIndex is { } dev)
                    {
                        w.WriteU32(Rt.IFLA_VXLAN_LINK, (uint)dev);
                    }

                    if (vx.Ttl is { } ttl)
                    {
                        w.WriteU8(Rt.IFLA_VXLAN_TTL, ttl);
                    }

                    if (vx.Learning is { } learning)
                    {
                        w.WriteU8(Rt.IFLA_VXLAN_LEARNING, learning ? (byte)1 : (byte)0);
                    }

                    if (vx.Proxy is { } proxy)
                    {
                        w.WriteU8(Rt.IFLA_VXLAN_PROXY, proxy ? (byte)1 : (byte)0);
                    }

                    if (vx.Port is { } port)
                    {
                        w.WriteBe16(Rt.IFLA_VXLAN_PORT, port);
                    }

                    w.EndNested(data);
                    break;
                }

            case MacvlanLinkSpec m:
                {
                    var data = w.BeginNested(Rt.IFLA_INFO_DATA);
                    w.WriteU32(Rt.IFLA_MACVLAN_MODE, (uint)m.Mode);
                    w.EndNested(data);
                    break;
                }

            case IpvlanLinkSpec i:
                {
                    var data = w.BeginNested(Rt.IFLA_INFO_DATA);
                    w.WriteU16(Rt.IFLA_IPVLAN_MODE, (ushort)i.Mode);
                    if (i.Flags != IpvlanFlags.Bridge)
                    {
                        w.WriteU16(Rt.IFLA_IPVLAN_FLAGS, (ushort)i.Flags);
                    }

                    w.EndNested(data);
                    break;
                }

            case VlanLinkSpec v:
                {
                    var data = w.BeginNested(Rt.IFLA_INFO_DATA);
                    w.WriteU16(Rt.IFLA_VLAN_ID, v.VlanId);
                    w.EndNested(data);
                    break;
                }
        }

        w.EndNested(linkInfo);
        w.EndMessage(msg);
    }

    public static void SetLink(ref NetlinkWriter w, uint seq, LinkReference link, LinkChange change, uint value, PhysicalAddress? mac, string? name, SafeHandle? ns)
    {
        var msg = w.BeginMessage(Rt.RTM_SETLINK, AckFlags, seq);
        var flags = change == LinkChange.Up ? IFF_UP : 0;
        var mask = change is LinkChange.Up or LinkChange.Down ? IFF_UP : 0;
        w.WriteIfInfoMsg(Libc.AF_UNSPEC, link.Index, flags, mask);
        if (link.Name is { } linkName)
        {
            w.WriteString(Rt.IFLA_IFNAME, linkName);
        }

        switch (change)
        {
            case LinkChange.Mtu:
                w.WriteU32(Rt.IFLA_MTU, value);
                break;
            case LinkChange.Mac:
                w.WriteMac(Rt.IFLA_ADDRESS, mac!);
                break;
            case LinkChange.Name:
                w.WriteString(Rt.IFLA_IFNAME, name!);
                break;
            case LinkChange.Master:
                w.WriteU32(Rt.IFLA_MASTER, value);
                break;
            case LinkChange.Namespace:
                w.WriteU32(Rt.IFLA_NET_NS_FD, (uint)Fd(ns!));
                break;
            case LinkChange.IPv6AddressGeneration:
                var afSpec = w.BeginNested(Rt.IFLA_AF_SPEC, setNestedFlag: true);
                var inet6 = w.BeginNested((ushort)Libc.AF_INET6, setNestedFlag: true);
                w.WriteU8(Rt.IFLA_INET6_ADDR_GEN_MODE, (byte)value);
                w.EndNested(inet6);
                w.EndNested(afSpec);
                break;
        }

        w.EndMessage(msg);
    }

    public static void SetBridgePortHairpin(ref NetlinkWriter w, uint seq, int index, bool enabled)
    {
        var msg = w.BeginMessage(Rt.RTM_SETLINK, AckFlags, seq);
        w.WriteIfInfoMsg(Libc.AF_BRIDGE, index);
        var protinfo = w.BeginNested(Rt.IFLA_PROTINFO, setNestedFlag: true);
        w.WriteU8(Rt.IFLA_BRPORT_MODE, enabled ? (byte)1 : (byte)0);
        w.EndNested(protinfo);
        w.EndMessage(msg);
    }

    public static void DeleteLink(ref NetlinkWriter w, uint seq, LinkReference link)
    {
        var msg = w.BeginMessage(Rt.RTM_DELLINK, AckFlags, seq);
        w.WriteIfInfoMsg(Libc.AF_UNSPEC, link.Index);
        if (link.Name is { } name)
        {
            w.WriteString(Rt.IFLA_IFNAME, name);
        }

        w.EndMessage(msg);
    }

    public static void GetLink(ref NetlinkWriter w, uint seq, LinkReference link)
    {
        var msg = w.BeginMessage(Rt.RTM_GETLINK, Nl.NLM_F_REQUEST, seq);
        w.WriteIfInfoMsg(Libc.AF_UNSPEC, link.Index);
        if (link.Name is { } name)
        {
            w.WriteString(Rt.IFLA_IFNAME, name);
        }

        w.WriteU32(Rt.IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
        w.EndMessage(msg);
    }

    public static void DumpLinks(ref NetlinkWriter w, uint seq)
    {
        var msg = w.BeginMessage(Rt.RTM_GETLINK, DumpFlags, seq);
        w.WriteIfInfoMsg(Libc.AF_UNSPEC, 0);
        w.WriteU32(Rt.IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
        w.EndMessage(msg);
    }

    // ---- addresses ----

    public static byte Family(IPAddress address) =>
        address.AddressFamily == AddressFamily.InterNetwork ? (byte)Libc.AF_INET : (byte)Libc.AF_INET6;

    public static byte Family(AddressFamily family) => family switch
    {
        AddressFamily.InterNetwork => Libc.AF_INET,
        AddressFamily.InterNetworkV6 => Libc.AF_INET6,
        _ => Libc.AF_UNSPEC,
    };

    public static void Address(ref NetlinkWriter w, uint seq, AddressSpec spec, bool add)
    {
        var msg = w.BeginMessage(add ? Rt.RTM_NEWADDR : Rt.RTM_DELADDR, add ? CreateFlags : AckFlags, seq);
        var v4 = spec.Address.AddressFamily == AddressFamily.InterNetwork;
        w.WriteIfAddrMsg(Family(spec.Address), (byte)spec.PrefixLength, (byte)((uint)spec.Flags & 0xff), (byte)spec.Scope, spec.LinkIndex);
        if (v4)
        {
            w.WriteAddress(Rt.IFA_LOCAL, spec.Address);
        }

        w.WriteAddress(Rt.IFA_ADDRESS, spec.Address);
        if (add && v4)
        {
            if (spec.Broadcast is { } brd)
            {
                w.WriteAddress(Rt.IFA_BROADCAST, brd);
            }
            else if (spec.PrefixLength < 31)
            {
                Span<byte> bytes = stackalloc byte[4];
                spec.Address.TryWriteBytes(bytes, out _);
                var host = System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(bytes);
                var broadcast = host | (uint.MaxValue >> spec.PrefixLength);
                if (spec.PrefixLength == 0)
                {
                    broadcast = uint.MaxValue;
                }

                System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(bytes, broadcast);
                w.WriteBytes(Rt.IFA_BROADCAST, bytes);
            }

            if (spec.Label is { } label)
            {
                w.WriteString(Rt.IFA_LABEL, label);
            }
        }

        if (add && spec.Flags != AddressFlags.None)
        {
            w.WriteU32(Rt.IFA_FLAGS, (uint)spec.Flags);
        }

        w.EndMessage(msg);
    }

    public static void DumpAddresses(ref NetlinkWriter w, uint seq, AddressFamily family)
    {
        var msg = w.BeginMessage(Rt.RTM_GETADDR, DumpFlags, seq);
        w.WriteIfAddrMsg(Family(family), 0, 0, 0, 0);
        w.EndMessage(msg);
    }

    // ---- routes ----

    public static void Route(ref NetlinkWriter w, uint seq, RouteSpec spec, ushort type, ushort flags)
    {
        var msg = w.BeginMessage(type, flags, seq);
        var family = Family(spec.Destination.BaseAddress);
        var delete = type == Rt.RTM_DELROUTE;
        var scope = spec.Scope ?? (delete
            ? RouteScope.Nowhere
            : spec.Gateway is null && spec.OutputIndex is not null ? RouteScope.Link : RouteScope.Universe);
        var table = spec.Table <= 255 ? (byte)spec.Table : Rt.RT_TABLE_UNSPEC;
        w.WriteRtMsg(
            family,
            (byte)spec.Destination.PrefixLength,
            0,
            0,
            table,
            delete && !spec.MatchProtocolOnDelete ? (byte)0 : (byte)spec.Protocol,
            (byte)scope,
            (byte)spec.Type,
            spec.OnLink ? Rt.RTNH_F_ONLINK : 0);
        if (spec.Table > 255)
        {
            w.WriteU32(Rt.RTA_TABLE, spec.Table);
        }

        if (spec.Destination.PrefixLength > 0)
        {
            w.WriteAddress(Rt.RTA_DST, spec.Destination.BaseAddress);
        }

        if (spec.Gateway is { } gw)
        {
            w.WriteAddress(Rt.RTA_GATEWAY, gw);
        }

        if (spec.OutputIndex is { } oif)
        {
            w.WriteU32(Rt.RTA_OIF, (uint)oif);
        }

        if (spec.Metric is { } metric)
        {
            w.WriteU32(Rt.RTA_PRIORITY, metric);
        }

        if (spec.PreferredSource is { } src)
        {
            w.WriteAddress(Rt.RTA_PREFSRC, src);
        }

        w.EndMessage(msg);
    }

    public static void AddRoute(ref NetlinkWriter w, uint seq, RouteSpec spec) => Route(ref w, seq, spec, Rt.RTM_NEWROUTE, CreateFlags);

    public static void PrependRoute(ref NetlinkWriter w, uint seq, RouteSpec spec) => Route(ref w, seq, spec, Rt.RTM_NEWROUTE, PrependFlags);

    public static void ReplaceRoute(ref NetlinkWriter w, uint seq, RouteSpec spec) => Route(ref w, seq, spec, Rt.RTM_NEWROUTE, ReplaceFlags);

    public static void DeleteRoute(ref NetlinkWriter w, uint seq, RouteSpec spec) => Route(ref w, seq, spec, Rt.RTM_DELROUTE, AckFlags);

    public static void DumpRoutes(ref NetlinkWriter w, uint seq, AddressFamily family)
    {
        var msg = w.BeginMessage(Rt.RTM_GETROUTE, DumpFlags, seq);
        w.WriteRtMsg(Family(family), 0, 0, 0, 0, 0, 0, 0, 0);
        w.EndMessage(msg);
    }

    // ---- neighbours ----

    public static void Neighbour(ref NetlinkWriter w, uint seq, NeighbourSpec spec, ushort type, ushort flags)
    {
        var msg = w.BeginMessage(type, flags, seq);
        w.WriteNdMsg(Family(spec.Address), spec.LinkIndex, (ushort)spec.State, (byte)spec.Flags, 0);
        w.WriteAddress(Rt.NDA_DST, spec.Address);
        if (spec.Mac is { } mac)
        {
            w.WriteMac(Rt.NDA_LLADDR, mac);
        }

        w.EndMessage(msg);
    }

    public static void AddNeighbour(ref NetlinkWriter w, uint seq, NeighbourSpec spec) => Neighbour(ref w, seq, spec, Rt.RTM_NEWNEIGH, CreateFlags);

    public static void ReplaceNeighbour(ref NetlinkWriter w, uint seq, NeighbourSpec spec) => Neighbour(ref w, seq, spec, Rt.RTM_NEWNEIGH, ReplaceFlags);

    public static void DeleteNeighbour(ref NetlinkWriter w, uint seq, NeighbourSpec spec) => Neighbour(ref w, seq, spec, Rt.RTM_DELNEIGH, AckFlags);

    public static void Fdb(ref NetlinkWriter w, uint seq, FdbEntrySpec spec, bool add)
    {
        ushort flags = add
            ? (ushort)(Nl.NLM_F_REQUEST | Nl.NLM_F_ACK | Nl.NLM_F_CREATE | (spec.Replace ? Nl.NLM_F_REPLACE : spec.Append ? Nl.NLM_F_APPEND : Nl.NLM_F_EXCL))
            : AckFlags;
        var msg = w.BeginMessage(add ? Rt.RTM_NEWNEIGH : Rt.RTM_DELNEIGH, flags, seq);
        w.WriteNdMsg(Libc.AF_BRIDGE, spec.LinkIndex, (ushort)spec.State, (byte)spec.Flags, 0);
        w.WriteMac(Rt.NDA_LLADDR, spec.Mac);
        if (spec.Destination is { } dst)
        {
            w.WriteAddress(Rt.NDA_DST, dst);
        }

        if (spec.Vlan is { } vlan)
        {
            w.WriteU16(Rt.NDA_VLAN, vlan);
        }

        if (spec.Port is { } port)
        {
            w.WriteBe16(Rt.NDA_PORT, port);
        }

        if (spec.Vni is { } vni)
        {
            w.WriteU32(Rt.NDA_VNI, vni);
        }

        w.EndMessage(msg);
    }

    public static void DumpNeighbours(ref NetlinkWriter w, uint seq, byte family)
    {
        var msg = w.BeginMessage(Rt.RTM_GETNEIGH, DumpFlags, seq);
        w.WriteNdMsg(family, 0, 0, 0, 0);
        w.EndMessage(msg);
    }
}
