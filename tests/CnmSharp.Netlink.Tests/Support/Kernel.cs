using System.Buffers.Binary;
using static CnmSharp.Netlink.Tests.Support.Hand;

namespace CnmSharp.Netlink.Tests.Support;

/// <summary>Crafts what the kernel would send: replies, errors with extended ACKs, dumps.</summary>
internal static class Kernel
{
    public const ushort NLMSG_ERROR = 2;
    public const ushort NLMSG_DONE = 3;
    public const ushort NLM_F_MULTI = 0x02;
    public const ushort NLM_F_DUMP_INTR = 0x10;
    public const ushort NLM_F_CAPPED = 0x100;
    public const ushort NLM_F_ACK_TLVS = 0x200;
    public const ushort NLMSGERR_ATTR_MSG = 1;
    public const ushort NLMSGERR_ATTR_OFFS = 2;
    public const ushort IFLA_OPERSTATE = 16;

    public static byte[] WithPid(byte[] message, uint pid)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(message.AsSpan(12), pid);
        return message;
    }

    public static byte[] Header(uint length, ushort type, ushort flags, uint seq, uint pid)
    {
        var h = new byte[16];
        BinaryPrimitives.WriteUInt32LittleEndian(h, length);
        BinaryPrimitives.WriteUInt16LittleEndian(h.AsSpan(4), type);
        BinaryPrimitives.WriteUInt16LittleEndian(h.AsSpan(6), flags);
        BinaryPrimitives.WriteUInt32LittleEndian(h.AsSpan(8), seq);
        BinaryPrimitives.WriteUInt32LittleEndian(h.AsSpan(12), pid);
        return h;
    }

    /// <summary>An NLMSG_ERROR as sent on a socket with NETLINK_CAP_ACK and NETLINK_EXT_ACK.</summary>
    public static byte[] Error(int errno, uint seq, uint pid, string? message = null, ushort requestType = RTM_NEWLINK)
    {
        var originalHeader = Header(40, requestType, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, seq, pid);
        var tlvs = message is null ? [] : Concat(Attr(NLMSGERR_ATTR_MSG, Str(message)), Attr(NLMSGERR_ATTR_OFFS, U32(20)));
        var flags = (ushort)(errno == 0 ? NLM_F_CAPPED : NLM_F_CAPPED | (message is null ? 0 : NLM_F_ACK_TLVS));
        var body = Concat(BitConverter.GetBytes(-errno), originalHeader, tlvs);
        return WithPid(Msg(NLMSG_ERROR, flags, seq, body), pid);
    }

    /// <summary>An NLMSG_ERROR without NETLINK_CAP_ACK: the whole request is echoed before the TLVs.</summary>
    public static byte[] UncappedError(int errno, uint seq, uint pid, byte[] request, string message)
    {
        var tlvs = Attr(NLMSGERR_ATTR_MSG, Str(message));
        return WithPid(Msg(NLMSG_ERROR, NLM_F_ACK_TLVS, seq, Concat(BitConverter.GetBytes(-errno), request, tlvs)), pid);
    }

    public static byte[] Done(uint seq, uint pid, int errno = 0) =>
        WithPid(Msg(NLMSG_DONE, NLM_F_MULTI, seq, BitConverter.GetBytes(-errno)), pid);

    public static byte[] LinkMessage(int index, string name, string kind, uint seq, uint pid, ushort flags = NLM_F_MULTI, uint mtu = 1500, int master = 0)
    {
        var attrs = new List<byte[]>
        {
            Attr(IFLA_IFNAME, Str(name)),
            Attr(IFLA_MTU, U32(mtu)),
            Attr(IFLA_ADDRESS, [2, 0, 0, 0, (byte)(index >> 8), (byte)index]),
            Attr(IFLA_OPERSTATE, U8(6)),
        };
        if (master != 0)
        {
            attrs.Add(Attr(IFLA_MASTER, U32((uint)master)));
        }

        attrs.Add(Nest(IFLA_LINKINFO, Attr(IFLA_INFO_KIND, Str(kind))));
        return WithPid(Msg(RTM_NEWLINK, flags, seq, IfInfo(AF_UNSPEC, index, IFF_UP | 0x1000, 0), [.. attrs]), pid);
    }
}
