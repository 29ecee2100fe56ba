using System.Net;
using CnmSharp.Netlink.Nftables;

namespace CnmSharp.Netlink.Tests.Nftables;

/// <summary>golden.nft (docs: nftables-netlink.md section 7) built with the library, in nft's message order.</summary>
internal static class GoldenRuleset
{
    public const string Table = "cnmsharp";
    private const NftFamily Ip = NftFamily.IPv4;

    // nft's set user data (byte order and typeof hints for printing), copied from its batch: the kernel keeps it unread.
    public static readonly byte[] FwdInUserData = Convert.FromHexString("000401000000010400000000060400000000");
    public static readonly byte[] PublishedUserData = Convert.FromHexString("000400000000030800040d0000000100");
    public static readonly byte[] DnatUserData = Convert.FromHexString("000402000000010400000000040800040d0000000100060400000000");

    public static NftablesBatch Build(NftablesBatch b)
    {
        var bridge = NftValues.InterfaceName("br-cnm0");
        b.AddTable(Ip, Table)
            .AddChain(Ip, Table, "forward", new NftBaseChain("filter", NftHook.Forward, 0))
            .AddChain(Ip, Table, "fwd-in-br-cnm0")
            .AddChain(Ip, Table, "prerouting", new NftBaseChain("nat", NftHook.Prerouting, -100))
            .AddChain(Ip, Table, "output", new NftBaseChain("nat", NftHook.Output, -100))
            .AddChain(Ip, Table, "publish")
            .AddChain(Ip, Table, "postrouting", new NftBaseChain("nat", NftHook.Postrouting, 100))
            .AddSet(Ip, Table, new NftSetSpec
            {
                Name = "fwd-in", Flags = NftSetOptions.Map, KeyType = NftDataTypes.InterfaceName, KeyLength = 16,
                DataType = NftDataTypes.Verdict, DataLength = 0, UserData = FwdInUserData,
            })
            .AddElements(Ip, Table, "fwd-in", [new NftSetElement(bridge, Verdict: NftVerdict.JumpTo("fwd-in-br-cnm0"))])
            .AddSet(Ip, Table, new NftSetSpec
            {
                Name = "published", KeyType = NftDataTypes.Concat(NftDataTypes.IPv4Address, NftDataTypes.InetProto, NftDataTypes.InetService),
                KeyLength = 12, UserData = PublishedUserData,
            })
            .AddElements(Ip, Table, "published", [new NftSetElement(NftValues.Concat(NftValues.Address(IPAddress.Parse("172.18.0.2")), [6], NftValues.Be16(80)))])
            .AddSet(Ip, Table, new NftSetSpec
            {
                Name = "dnat-tcp", Flags = NftSetOptions.Map, KeyType = NftDataTypes.InetService, KeyLength = 2,
                DataType = NftDataTypes.Concat(NftDataTypes.IPv4Address, NftDataTypes.InetService), DataLength = 8, UserData = DnatUserData,
            })
            .AddElements(Ip, Table, "dnat-tcp", [new NftSetElement(NftValues.Be16(8080), NftValues.Concat(NftValues.Address(IPAddress.Parse("172.18.0.2")), NftValues.Be16(80)))])
            .AddRule(Ip, Table, "forward", [new NftMeta(NftMetaKey.OutputInterfaceName), new NftLookup("fwd-in", Destination: NftRegisters.Verdict)])
            .AddRule(Ip, Table, "fwd-in-br-cnm0",
            [
                new NftCt(NftCtKey.State), new NftBitwise(NftValues.HostU32(6), NftValues.HostU32(0)),
                new NftCmp(NftCmpOp.Neq, NftValues.HostU32(0)), new NftImmediateVerdict(NftVerdict.Accept),
            ])
            .AddRule(Ip, Table, "fwd-in-br-cnm0", [new NftMeta(NftMetaKey.InputInterfaceName), new NftCmp(NftCmpOp.Eq, bridge), new NftImmediateVerdict(NftVerdict.Accept)])
            .AddRule(Ip, Table, "fwd-in-br-cnm0",
            [
                new NftPayload(NftPayloadBase.Network, 16, 4), new NftMeta(NftMetaKey.L4Proto, NftRegisters.Reg32(1)),
                new NftPayload(NftPayloadBase.Transport, 2, 2, NftRegisters.Reg32(2)), new NftLookup("published"),
                new NftImmediateVerdict(NftVerdict.Accept),
            ])
            .AddRule(Ip, Table, "fwd-in-br-cnm0", [new NftImmediateVerdict(NftVerdict.Drop)])
            .AddRule(Ip, Table, "prerouting",
            [
                new NftFib(NftFibLookup.DestinationAddress, NftFibResult.AddressType), new NftCmp(NftCmpOp.Eq, NftValues.HostU32(2)),
                new NftImmediateVerdict(NftVerdict.JumpTo("publish")),
            ])
            .AddRule(Ip, Table, "output",
            [
                new NftPayload(NftPayloadBase.Network, 16, 1), new NftCmp(NftCmpOp.Neq, [127]),
                new NftFib(NftFibLookup.DestinationAddress, NftFibResult.AddressType), new NftCmp(NftCmpOp.Eq, NftValues.HostU32(2)),
                new NftImmediateVerdict(NftVerdict.JumpTo("publish")),
            ])
            .AddRule(Ip, Table, "publish",
            [
                new NftMeta(NftMetaKey.InputInterfaceName), new NftCmp(NftCmpOp.Neq, bridge),
                new NftMeta(NftMetaKey.L4Proto), new NftCmp(NftCmpOp.Eq, [6]),
                new NftPayload(NftPayloadBase.Transport, 2, 2), new NftLookup("dnat-tcp", Destination: NftRegisters.Reg1),
                new NftNat(NftNatType.Dnat, NftFamily.IPv4, NftRegisters.Reg1, NftRegisters.Reg32(1)),
            ])
            .AddRule(Ip, Table, "postrouting",
            [
                new NftMeta(NftMetaKey.OutputInterfaceName), new NftCmp(NftCmpOp.Neq, bridge),
                new NftPayload(NftPayloadBase.Network, 12, 2), new NftCmp(NftCmpOp.Eq, [172, 18]),
                new NftMasquerade(),
            ]);
        return b;
    }
}
