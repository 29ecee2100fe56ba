using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using System.Text;
using CnmSharp.Netlink.Interop;

namespace CnmSharp.Netlink.Internal;

/// <summary>A link message parsed without allocating: numbers, and spans into the message for the rest.</summary>
internal ref struct LinkView
{
    public int Index;
    public ushort LinkType;
    public uint Flags;
    public uint Mtu;
    public int Master;
    public int Parent;
    public int ParentNetNsId;
    public bool HasParentNetNsId;
    public byte OperState;
    public ReadOnlySpan<byte> Name;
    public ReadOnlySpan<byte> Mac;
    public ReadOnlySpan<byte> Kind;
    public ReadOnlySpan<byte> SlaveKind;
    public ReadOnlySpan<byte> InfoData;
}

/// <summary>Parses rtnetlink replies and notifications.</summary>
internal static class RtnetlinkParser
{
    /// <summary>Parses the payload of an RTM_NEWLINK/RTM_DELLINK message without allocating.</summary>
    public static LinkView ParseLink(ReadOnlySpan<byte> payload)
    {
        var header = new IfInfoMsg(payload);
        var view = new LinkView { Index = header.Index, Flags = header.Flags, LinkType = header.Type };
        foreach (var attr in new NetlinkAttributeEnumerator(FamilyHeaders.Attributes(payload, Rt.IfInfoMsgSize)))
        {
            switch (attr.Type)
            {
                case Rt.IFLA_IFNAME:
                    view.Name = attr.GetStringBytes();
                    break;
                case Rt.IFLA_MTU:
                    view.Mtu = attr.GetU32();
                    break;
                case Rt.IFLA_ADDRESS:
                    view.Mac = attr.Payload;
                    break;
                case Rt.IFLA_MASTER:
                    view.Master = attr.GetI32();
                    break;
                case Rt.IFLA_LINK:
                    view.Parent = attr.GetI32();
                    break;
                case Rt.IFLA_LINK_NETNSID:
                    view.ParentNetNsId = attr.GetI32();
                    view.HasParentNetNsId = true;
                    break;
                case Rt.IFLA_OPERSTATE:
                    view.OperState = attr.GetU8();
                    break;
                case Rt.IFLA_LINKINFO:
                    foreach (var info in attr.GetNested())
                    {
                        switch (info.Type)
                        {
                            case Rt.IFLA_INFO_KIND:
                                view.Kind = info.GetStringBytes();
                                break;
                            case Rt.IFLA_INFO_SLAVE_KIND:
                                view.SlaveKind = info.GetStringBytes();
                                break;
                            case Rt.IFLA_INFO_DATA:
                                view.InfoData = info.Payload;
                                break;
                        }
                    }

                    break;
            }
        }

        return view;
    }

    public static LinkInfo ToLinkInfo(in LinkView view)
    {
        var kind = view.Kind.IsEmpty ? null : Encoding.UTF8.GetString(view.Kind);
        VxlanInfo? vxlan = null;
        MacvlanMode? macvlanMode = null;
        if (kind == "vxlan")
        {
            vxlan = ParseVxlan(view.InfoData);
        }
        else if (kind is "macvlan" or "macvtap")
        {
            foreach (var attr in new NetlinkAttributeEnumerator(view.InfoData))
            {
                if (attr.Type == Rt.IFLA_MACVLAN_MODE)
                {
                    macvlanMode = (MacvlanMode)attr.GetU32();
                }
            }
        }

        return new LinkInfo
        {
            Index = view.Index,
            Name = Encoding.UTF8.GetString(view.Name),
            Kind = kind,
            Mtu = (int)view.Mtu,
            Mac = view.Mac.IsEmpty ? null : new PhysicalAddress(view.Mac.ToArray()),
            MasterIndex = view.Master,
            ParentIndex = view.Parent,
            ParentNetNsId = view.HasParentNetNsId ? view.ParentNetNsId : null,
            Flags = (LinkFlags)view.Flags,
            OperState = (LinkOperState)view.OperState,
            LinkType = view.LinkType,
            Vxlan = vxlan,
            MacvlanMode = macvlanMode,
            SlaveKind = view.SlaveKind.IsEmpty ? null : Encoding.UTF8.GetString(view.SlaveKind),
        };
    }

    public static LinkInfo ParseLinkInfo(ReadOnlySpan<byte> payload) => ToLinkInfo(ParseLink(payload));

    private static VxlanInfo ParseVxlan(ReadOnlySpan<byte> data)
    {
        uint vni = 0;
        ushort port = 0;
        IPAddress? group = null, local = null;
        var learning = false;
        var device = 0;
        byte ttl = 0;
        foreach (var attr in new NetlinkAttributeEnumerator(data))
        {
            switch (attr.Type)
            {
                case Rt.IFLA_VXLAN_ID:
                    vni = attr.GetU32();
                    break;
                case Rt.IFLA_VXLAN_PORT:
                    port = attr.GetBe16();
                    break;
                case Rt.IFLA_VXLAN_GROUP:
                case Rt.IFLA_VXLAN_GROUP6:
                    group = attr.GetAddress();
                    break;
                case Rt.IFLA_VXLAN_LOCAL:
                case Rt.IFLA_VXLAN_LOCAL6:
                    local = attr.GetAddress();
                    break;
                case Rt.IFLA_VXLAN_LEARNING:
                    learning = attr.GetU8() != 0;
                    break;
                case Rt.IFLA_VXLAN_LINK:
                    device = attr.GetI32();
                    break;
                case Rt.IFLA_VXLAN_TTL:
                    ttl = attr.GetU8();
                    break;
            }
        }

        return new VxlanInfo(vni, port, group, local, learning, device, ttl);
    }

    public static AddressInfo ParseAddress(ReadOnlySpan<byte> payload)
    {
        var header = new IfAddrMsg(payload);
        IPAddress? address = null, local = null, broadcast = null;
        string? label = null;
        var flags = (uint)header.Flags;
        foreach (var attr in new NetlinkAttributeEnumerator(FamilyHeaders.Attributes(payload, Rt.IfAddrMsgSize)))
        {
            switch (attr.Type)
            {
                case Rt.IFA_ADDRESS:
                    address = attr.GetAddress();
                    break;
                case Rt.IFA_LOCAL:
                    local = attr.GetAddress();
                    break;
                case Rt.IFA_BROADCAST:
                    broadcast = attr.GetAddress();
                    break;
                case Rt.IFA_LABEL:
                    label = attr.GetString();
                    break;
                case Rt.IFA_FLAGS:
                    flags = attr.GetU32();
                    break;
            }
        }

        var main = local ?? address ?? ThrowHelper.ThrowProtocol<IPAddress>("address message without IFA_ADDRESS or IFA_LOCAL");
        return new AddressInfo(header.Index, main, header.PrefixLength)
        {
            Peer = local is not null && address is not null && !local.Equals(address) ? address : null,
            Broadcast = broadcast,
            Label = label,
            Flags = (AddressFlags)flags,
            Scope = (RouteScope)header.Scope,
        };
    }

    public static RouteInfo ParseRoute(ReadOnlySpan<byte> payload)
    {
        var header = new RtMsg(payload);
        IPAddress? dst = null, gateway = null, prefsrc = null;
        var oif = 0;
        uint table = header.Table, metric = 0;
        foreach (var attr in new NetlinkAttributeEnumerator(FamilyHeaders.Attributes(payload, Rt.RtMsgSize)))
        {
            switch (attr.Type)
            {
                case Rt.RTA_DST:
                    dst = attr.GetAddress();
                    break;
                case Rt.RTA_GATEWAY:
                    gateway = attr.GetAddress();
                    break;
                case Rt.RTA_OIF:
                    oif = attr.GetI32();
                    break;
                case Rt.RTA_PRIORITY:
                    metric = attr.GetU32();
                    break;
                case Rt.RTA_TABLE:
                    table = attr.GetU32();
                    break;
                case Rt.RTA_PREFSRC:
                    prefsrc = attr.GetAddress();
                    break;
            }
        }

        var v6 = header.Family == Libc.AF_INET6;
        if (header.Family != Libc.AF_INET && !v6)
        {
            ThrowHelper.ThrowProtocol($"route family {header.Family} is not IPv4 or IPv6");
        }

        var maxPrefix = v6 ? 128 : 32;
        if (header.DstLength > maxPrefix)
        {
            ThrowHelper.ThrowProtocol($"route prefix length {header.DstLength} exceeds {maxPrefix}");
        }

        dst ??= v6 ? IPAddress.IPv6Any : IPAddress.Any;
        if (dst.AddressFamily != (v6 ? AddressFamily.InterNetworkV6 : AddressFamily.InterNetwork))
        {
            ThrowHelper.ThrowProtocol("route destination of the wrong family");
        }

        return new RouteInfo(new IPNetwork(Mask(dst, header.DstLength), header.DstLength))
        {
            Gateway = gateway,
            OutputIndex = oif,
            Table = table,
            Metric = metric,
            Scope = (RouteScope)header.Scope,
            Protocol = (RouteProtocol)header.Protocol,
            Type = (RouteType)header.Type,
            OnLink = (header.Flags & Rt.RTNH_F_ONLINK) != 0,
            PreferredSource = prefsrc,
        };
    }

    private static IPAddress Mask(IPAddress address, int prefixLength)
    {
        Span<byte> bytes = stackalloc byte[16];
        address.TryWriteBytes(bytes, out var length);
        bytes = bytes[..length];
        for (var i = 0; i < length; i++)
        {
            var bits = prefixLength - (i * 8);
            bytes[i] &= bits >= 8 ? (byte)0xff : bits <= 0 ? (byte)0 : (byte)(0xff << (8 - bits));
        }

        return new IPAddress(bytes);
    }

    public static NeighbourInfo ParseNeighbour(ReadOnlySpan<byte> payload)
    {
        var header = new NdMsg(payload);
        IPAddress? dst = null;
        PhysicalAddress? mac = null;
        ushort? vlan = null;
        uint? vni = null;
        var master = 0;
        foreach (var attr in new NetlinkAttributeEnumerator(FamilyHeaders.Attributes(payload, Rt.NdMsgSize)))
        {
            switch (attr.Type)
            {
                case Rt.NDA_DST:
                    dst = attr.GetAddress();
                    break;
                case Rt.NDA_LLADDR:
                    mac = attr.GetMac();
                    break;
                case Rt.NDA_VLAN:
                    vlan = attr.GetU16();
                    break;
                case Rt.NDA_VNI:
                    vni = attr.GetU32();
                    break;
                case Rt.NDA_MASTER:
                    master = attr.GetI32();
                    break;
            }
        }

        var family = header.Family switch
        {
            Libc.AF_INET => AddressFamily.InterNetwork,
            Libc.AF_INET6 => AddressFamily.InterNetworkV6,
            _ => (AddressFamily)header.Family,
        };
        return new NeighbourInfo(header.Index, family)
        {
            Address = dst,
            Mac = mac,
            State = (NeighbourState)header.State,
            Flags = (NeighbourFlags)header.Flags,
            Vlan = vlan,
            Vni = vni,
            MasterIndex = master,
        };
    }

    /// <summary>Turns a notification into an event, or null for message types that are not reported.</summary>
    public static NetlinkEvent? ParseEvent(ushort type, ReadOnlySpan<byte> payload) => type switch
    {
        Rt.RTM_NEWLINK => new NetlinkEvent(NetlinkEventKind.LinkAdded) { Link = ParseLinkInfo(payload) },
        Rt.RTM_DELLINK => new NetlinkEvent(NetlinkEventKind.LinkRemoved) { Link = ParseLinkInfo(payload) },
        Rt.RTM_NEWADDR => new NetlinkEvent(NetlinkEventKind.AddressAdded) { Address = ParseAddress(payload) },
        Rt.RTM_DELADDR => new NetlinkEvent(NetlinkEventKind.AddressRemoved) { Address = ParseAddress(payload) },
        Rt.RTM_NEWROUTE => new NetlinkEvent(NetlinkEventKind.RouteAdded) { Route = ParseRoute(payload) },
        Rt.RTM_DELROUTE => new NetlinkEvent(NetlinkEventKind.RouteRemoved) { Route = ParseRoute(payload) },
        Rt.RTM_NEWNEIGH => new NetlinkEvent(NetlinkEventKind.NeighbourAdded) { Neighbour = ParseNeighbour(payload) },
        Rt.RTM_DELNEIGH => new NetlinkEvent(NetlinkEventKind.NeighbourRemoved) { Neighbour = ParseNeighbour(payload) },
        _ => null,
    };

    /// <summary>
    /// Reads an NLMSG_ERROR payload: the (negative) error code and, when the kernel added them, the extended-ack
    /// message. Returns the positive errno (0 for an ACK).
    /// </summary>
    public static int ParseError(ReadOnlySpan<byte> payload, ushort flags, out string? extendedMessage, bool isDone = false)
    {
        extendedMessage = null;
        if (payload.Length < 4)
        {
            ThrowHelper.ThrowProtocol("NLMSG_ERROR shorter than its error code");
        }

        var error = System.Buffers.Binary.BinaryPrimitives.ReadInt32LittleEndian(payload);
        if (isDone)
        {
            // NLMSG_DONE: the status, then the TLVs directly (no echoed request).
            if ((flags & Nl.NLM_F_ACK_TLVS) != 0)
            {
                extendedMessage = FindMessage(payload[4..]);
            }

            return -error;
        }

        if ((flags & Nl.NLM_F_ACK_TLVS) == 0 || payload.Length < 4 + Nl.HeaderSize)
        {
            return -error;
        }

        // The original request's header follows; its full payload too unless the ACK was capped.
        var original = payload[4..];
        var skip = Nl.HeaderSize;
        if ((flags & Nl.NLM_F_CAPPED) == 0)
        {
            var originalLength = System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(original);
            if (originalLength < Nl.HeaderSize || originalLength > (uint)original.Length)
            {
                ThrowHelper.ThrowProtocol($"NLMSG_ERROR echoes a request of {originalLength} bytes in {original.Length}");
            }

            skip = Nl.Align((int)originalLength);
        }

        extendedMessage = FindMessage(original[Math.Min(skip, original.Length)..]);
        return -error;
    }

    private static string? FindMessage(ReadOnlySpan<byte> tlvs)
    {
        string? message = null;
        foreach (var attr in new NetlinkAttributeEnumerator(tlvs))
        {
            if (attr.Type == Nl.NLMSGERR_ATTR_MSG)
            {
                message = attr.GetString();
            }
        }

        return message;
    }
}
