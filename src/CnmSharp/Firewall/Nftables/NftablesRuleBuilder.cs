using System.Net;
using System.Net.Sockets;
using CnmSharp.Drivers;
using CnmSharp.Firewall.Internal;
using CnmSharp.Netlink.Nftables;

namespace CnmSharp.Firewall.Nftables;

/// <summary>One rule of the model: its id (kept as the rule's comment <c>owner:id</c>) and its expressions.</summary>
internal sealed record NftRuleModel(string Comment, NftExpression[] Expressions);

/// <summary>One chain of the model: base chain settings, the owner tag kept as its comment, its rules in order.</summary>
internal sealed record NftChainModel(string Name, NftBaseChain? Base, string Owner, List<NftRuleModel> Rules)
{
    public IEnumerable<string> RuleComments => Rules.Select(r => r.Comment);
}

/// <summary>The desired content of one family's table, computed from records. Pure: no kernel access.</summary>
internal sealed class NftModel
{
    public List<NftChainModel> Chains { get; } = [];

    /// <summary>Per set, the elements by key (hex); each element's comment is its owner.</summary>
    public Dictionary<string, Dictionary<string, NftSetElement>> Elements { get; } = new(StringComparer.Ordinal);

    public bool IsEmpty => Chains.Count == 0;

    public NftChainModel? Chain(string name) => Chains.FirstOrDefault(c => c.Name == name);

    public void AddElement(string set, NftSetElement element)
    {
        if (!Elements.TryGetValue(set, out var elements))
        {
            Elements[set] = elements = new(StringComparer.Ordinal);
        }

        elements[element.KeyHex] = element;
    }
}

/// <summary>
/// CnmSharp's nftables layout for one family (<c>ip</c> or <c>ip6</c>), in a table of its own:
/// base chains <c>forward</c> (filter, priority 0), <c>prerouting</c> and <c>output</c> (nat, -100),
/// <c>postrouting</c> (nat, 100) dispatch through interface-name verdict maps to per-bridge chains
/// (<c>fwd-in-B</c>, <c>fwd-out-B</c>, <c>nat-in-B</c>, <c>nat-out-B</c>); published ports are elements of maps and
/// sets, so publishing a port changes no rule.
/// </summary>
internal static class NftablesRuleBuilder
{
    /// <summary>The owner tag of the shared chains and rules (not a valid owner name, so never an owner's).</summary>
    public const string SharedOwner = "*";

    public const string Forward = "forward";
    public const string Prerouting = "prerouting";
    public const string Output = "output";
    public const string Postrouting = "postrouting";
    public const string Publish = "publish";
    public const string FwdIn = "fwd-in";
    public const string FwdOut = "fwd-out";
    public const string NatIn = "nat-in";
    public const string NatOut = "nat-out";
    public const string NoHairpin = "no-hairpin";
    public const string Published = "published";
    public const string HairpinSet = "hairpin";

    private static readonly TransportProtocol[] Protocols = [TransportProtocol.Tcp, TransportProtocol.Udp, TransportProtocol.Sctp];

    public static string DnatAny(TransportProtocol protocol) => "dnat-any-" + ProtocolName(protocol);

    public static string DnatAddress(TransportProtocol protocol) => "dnat-addr-" + ProtocolName(protocol);

    private static string ProtocolName(TransportProtocol protocol) => protocol switch
    {
        TransportProtocol.Tcp => "tcp",
        TransportProtocol.Udp => "udp",
        _ => "sctp",
    };

    private static int AddressLength(NftFamily family) => family == NftFamily.IPv4 ? 4 : 16;

    private static uint AddressType(NftFamily family) => family == NftFamily.IPv4 ? NftDataTypes.IPv4Address : NftDataTypes.IPv6Address;

    private static uint SourceOffset(NftFamily family) => family == NftFamily.IPv4 ? 12u : 8u;

    private static uint DestinationOffset(NftFamily family) => family == NftFamily.IPv4 ? 16u : 24u;

    /// <summary>The 4-byte register right after an address loaded into register 1.</summary>
    private static uint AfterAddress(NftFamily family) => NftRegisters.Reg32(AddressLength(family) / 4);

    /// <summary>nft's set user data: key (and data) byte order, so <c>nft list</c> prints the elements.</summary>
    private static byte[] UserData(uint keyOrder, uint? dataOrder)
    {
        var bytes = new List<byte> { 0, 4 };
        bytes.AddRange(BitConverter.GetBytes(keyOrder));
        if (dataOrder is { } order)
        {
            bytes.AddRange([1, 4]);
            bytes.AddRange(BitConverter.GetBytes(order));
        }

        return [.. bytes];
    }

    /// <summary>The sets and maps of a family's table (fixed; created with the table).</summary>
    public static List<NftSetSpec> Sets(NftFamily family)
    {
        var a = (uint)AddressLength(family);
        var at = AddressType(family);
        const uint hostOrder = 1, bigEndian = 2, none = 0;
        var sets = new List<NftSetSpec>();
        foreach (var name in new[] { FwdIn, FwdOut, NatIn, NatOut })
        {
            sets.Add(new NftSetSpec
            {
                Name = name, Flags = NftSetOptions.Map, KeyType = NftDataTypes.InterfaceName, KeyLength = 16,
                DataType = NftDataTypes.Verdict, DataLength = 0, UserData = UserData(hostOrder, none),
            });
        }

        sets.Add(new NftSetSpec { Name = NoHairpin, KeyType = NftDataTypes.InterfaceName, KeyLength = 16, UserData = UserData(hostOrder, null) });
        sets.Add(new NftSetSpec
        {
            Name = Published, KeyType = NftDataTypes.Concat(at, NftDataTypes.InetProto, NftDataTypes.InetService), KeyLength = a + 8,
            UserData = UserData(none, null),
        });
        sets.Add(new NftSetSpec
        {
            Name = HairpinSet, KeyType = NftDataTypes.Concat(at, at, NftDataTypes.InetProto, NftDataTypes.InetService), KeyLength = (2 * a) + 8,
            UserData = UserData(none, null),
        });
        foreach (var protocol in Protocols)
        {
            sets.Add(new NftSetSpec
            {
                Name = DnatAny(protocol), Flags = NftSetOptions.Map, KeyType = NftDataTypes.InetService, KeyLength = 2,
                DataType = NftDataTypes.Concat(at, NftDataTypes.InetService), DataLength = a + 4, UserData = UserData(bigEndian, none),
            });
            sets.Add(new NftSetSpec
            {
                Name = DnatAddress(protocol), Flags = NftSetOptions.Map, KeyType = NftDataTypes.Concat(at, NftDataTypes.InetService), KeyLength = a + 4,
                DataType = NftDataTypes.Concat(at, NftDataTypes.InetService), DataLength = a + 4, UserData = UserData(none, none),
            });
        }

        return sets;
    }

    private static IReadOnlyList<IPNetwork> Subnets(FirewallNetwork network, NftFamily family) =>
        family == NftFamily.IPv4 ? network.IPv4Subnets : network.IPv6Subnets;

    private static bool InFamily(IPAddress address, NftFamily family) =>
        family == NftFamily.IPv4 ? address.AddressFamily == AddressFamily.InterNetwork || address.IsIPv4MappedToIPv6
            : address.AddressFamily == AddressFamily.InterNetworkV6 && !address.IsIPv4MappedToIPv6;

    /// <summary>Builds the desired model of a family.</summary>
    /// <param name="family">ip or ip6.</param>
    /// <param name="networks">The networks.</param>
    /// <param name="forwards">The port forwards, each with its network (null: unknown, ignored).</param>
    /// <returns>The model; empty when no network has a subnet of the family.</returns>
    public static NftModel Build(NftFamily family, IReadOnlyList<FirewallNetwork> networks, IEnumerable<(FirewallPortForward Forward, FirewallNetwork? Network)> forwards)
    {
        var model = new NftModel();
        var active = networks.Where(n => Subnets(n, family).Count > 0).ToList();
        if (active.Count == 0)
        {
            return model;
        }

        AddSharedChains(model, family, active.Any(n => n.Hairpin && !n.Internal));
        foreach (var network in active)
        {
            AddNetwork(model, family, network);
        }

        foreach (var (forward, network) in forwards)
        {
            if (network is not null && !network.Internal && active.Contains(network))
            {
                AddForward(model, family, network, forward);
            }
        }

        return model;
    }

    /// <summary>True when some network has a subnet of the family (the model of the family is not empty).</summary>
    public static bool IsActive(NftFamily family, IReadOnlyList<FirewallNetwork> networks) => networks.Any(n => Subnets(n, family).Count > 0);

    /// <summary>Only the elements some port forwards add to the model (what <see cref="Build"/> gives it).</summary>
    public static NftModel BuildForwards(NftFamily family, IEnumerable<(FirewallPortForward Forward, FirewallNetwork? Network)> forwards)
    {
        var model = new NftModel();
        foreach (var (forward, network) in forwards)
        {
            if (network is not null && !network.Internal && Subnets(network, family).Count > 0)
            {
                AddForward(model, family, network, forward);
            }
        }

        return model;
    }

    private static NftRuleModel Rule(string owner, string id, params NftExpression[] expressions) => new($"{owner}:{id}", expressions);

    private static void AddSharedChains(NftModel model, NftFamily family, bool anyHairpin)
    {
        const string s = SharedOwner;
        model.Chains.Add(new NftChainModel(Forward, new NftBaseChain("filter", NftHook.Forward, 0), s,
        [
            Rule(s, "fwd-in", new NftMeta(NftMetaKey.OutputInterfaceName), new NftLookup(FwdIn, Destination: NftRegisters.Verdict)),
            Rule(s, "fwd-out", new NftMeta(NftMetaKey.InputInterfaceName), new NftLookup(FwdOut, Destination: NftRegisters.Verdict)),
        ]));

        var local = new NftExpression[]
        {
            new NftFib(NftFibLookup.DestinationAddress, NftFibResult.AddressType), new NftCmp(NftCmpOp.Eq, NftValues.HostU32(2)),
            new NftImmediateVerdict(NftVerdict.JumpTo(Publish)),
        };
        model.Chains.Add(new NftChainModel(Prerouting, new NftBaseChain("nat", NftHook.Prerouting, -100), s, [Rule(s, "publish", local)]));

        // Without hairpin on any network, loopback destinations are not published (Docker's "! -d 127.0.0.0/8").
        var output = anyHairpin ? Rule(s, "publish", local)
            : family == NftFamily.IPv4
                ? Rule(s, "publish-not-loopback", [new NftPayload(NftPayloadBase.Network, 16, 1), new NftCmp(NftCmpOp.Neq, [127]), .. local])
                : Rule(s, "publish-not-loopback", [new NftPayload(NftPayloadBase.Network, 24, 16), new NftCmp(NftCmpOp.Neq, IPAddress.IPv6Loopback.GetAddressBytes()), .. local]);
        model.Chains.Add(new NftChainModel(Output, new NftBaseChain("nat", NftHook.Output, -100), s, [output]));

        var publish = new List<NftRuleModel>
        {
            Rule(s, "no-hairpin", new NftMeta(NftMetaKey.InputInterfaceName), new NftLookup(NoHairpin), new NftImmediateVerdict(NftVerdict.Return)),
        };
        var port = AfterAddress(family);
        foreach (var protocol in Protocols)
        {
            publish.Add(Rule(s, DnatAddress(protocol),
                new NftMeta(NftMetaKey.L4Proto), new NftCmp(NftCmpOp.Eq, [(byte)protocol]),
                new NftPayload(NftPayloadBase.Network, DestinationOffset(family), (uint)AddressLength(family)),
                new NftPayload(NftPayloadBase.Transport, 2, 2, port),
                new NftLookup(DnatAddress(protocol), Destination: NftRegisters.Reg1),
                new NftNat(NftNatType.Dnat, family, NftRegisters.Reg1, port)));
            publish.Add(Rule(s, DnatAny(protocol),
                new NftMeta(NftMetaKey.L4Proto), new NftCmp(NftCmpOp.Eq, [(byte)protocol]),
                new NftPayload(NftPayloadBase.Transport, 2, 2),
                new NftLookup(DnatAny(protocol), Destination: NftRegisters.Reg1),
                new NftNat(NftNatType.Dnat, family, NftRegisters.Reg1, port)));
        }

        model.Chains.Add(new NftChainModel(Publish, null, s, publish));
        model.Chains.Add(new NftChainModel(Postrouting, new NftBaseChain("nat", NftHook.Postrouting, 100), s,
        [
            Rule(s, "nat-in", new NftMeta(NftMetaKey.OutputInterfaceName), new NftLookup(NatIn, Destination: NftRegisters.Verdict)),
            Rule(s, "nat-out", new NftMeta(NftMetaKey.InputInterfaceName), new NftLookup(NatOut, Destination: NftRegisters.Verdict)),
        ]));
    }

    private static NftExpression[] Interface(NftMetaKey key, NftCmpOp op, string bridge) =>
        [new NftMeta(key), new NftCmp(op, NftValues.InterfaceName(bridge))];

    /// <summary>Matches a source subnet: the prefix bytes when byte-aligned, else the address masked.</summary>
    private static NftExpression[] SourceIn(NftFamily family, IPNetwork subnet)
    {
        var bytes = subnet.BaseAddress.GetAddressBytes();
        var prefix = subnet.PrefixLength;
        if (prefix == 0)
        {
            return [];
        }

        if (prefix % 8 == 0)
        {
            return [new NftPayload(NftPayloadBase.Network, SourceOffset(family), (uint)(prefix / 8)), new NftCmp(NftCmpOp.Eq, bytes[..(prefix / 8)])];
        }

        var mask = new byte[bytes.Length];
        for (var i = 0; i < prefix; i++)
        {
            mask[i / 8] |= (byte)(0x80 >> (i % 8));
        }

        return
        [
            new NftPayload(NftPayloadBase.Network, SourceOffset(family), (uint)bytes.Length),
            new NftBitwise(mask, new byte[bytes.Length]),
            new NftCmp(NftCmpOp.Eq, bytes),
        ];
    }

    public static string FwdInChain(string bridge) => "fwd-in-" + bridge;

    public static string FwdOutChain(string bridge) => "fwd-out-" + bridge;

    public static string NatInChain(string bridge) => "nat-in-" + bridge;

    public static string NatOutChain(string bridge) => "nat-out-" + bridge;

    private static void AddNetwork(NftModel model, NftFamily family, FirewallNetwork network)
    {
        var o = network.Owner;
        var b = network.BridgeName;
        var accept = new NftImmediateVerdict(NftVerdict.Accept);
        var drop = new NftImmediateVerdict(NftVerdict.Drop);
        var icc = Rule(o, network.EnableIcc ? "icc-accept" : "icc-drop", [.. Interface(NftMetaKey.InputInterfaceName, NftCmpOp.Eq, b), network.EnableIcc ? accept : drop]);
        var element = new Func<string, NftSetElement>(chain => new NftSetElement(NftValues.InterfaceName(b), Verdict: NftVerdict.JumpTo(chain)) { Comment = o });
        if (network.Internal)
        {
            model.Chains.Add(new NftChainModel(FwdInChain(b), null, o, [icc, Rule(o, "isolate", drop)]));
            model.Chains.Add(new NftChainModel(FwdOutChain(b), null, o, [Rule(o, "internal", drop)]));
            model.AddElement(FwdIn, element(FwdInChain(b)));
            model.AddElement(FwdOut, element(FwdOutChain(b)));
            return;
        }

        model.Chains.Add(new NftChainModel(FwdInChain(b), null, o,
        [
            Rule(o, "established", new NftCt(NftCtKey.State), new NftBitwise(NftValues.HostU32(6), NftValues.HostU32(0)),
                new NftCmp(NftCmpOp.Neq, NftValues.HostU32(0)), accept),
            Rule(o, "published", [.. Interface(NftMetaKey.InputInterfaceName, NftCmpOp.Neq, b),
                new NftPayload(NftPayloadBase.Network, DestinationOffset(family), (uint)AddressLength(family)),
                new NftMeta(NftMetaKey.L4Proto, AfterAddress(family)),
                new NftPayload(NftPayloadBase.Transport, 2, 2, AfterAddress(family) + 1),
                new NftLookup(Published), accept]),
            icc,
            Rule(o, "isolate", drop),
        ]));
        model.Chains.Add(new NftChainModel(FwdOutChain(b), null, o, [Rule(o, "out", accept)]));
        model.AddElement(FwdIn, element(FwdInChain(b)));
        model.AddElement(FwdOut, element(FwdOutChain(b)));

        var snat = family == NftFamily.IPv4 ? network.SnatSource : null;
        if (network.EnableMasquerade || snat is not null)
        {
            var rules = new List<NftRuleModel>();
            foreach (var subnet in Subnets(network, family))
            {
                var match = new List<NftExpression>(Interface(NftMetaKey.OutputInterfaceName, NftCmpOp.Neq, b));
                match.AddRange(SourceIn(family, subnet));
                if (snat is not null)
                {
                    match.Add(new NftImmediateData(snat.GetAddressBytes()));
                    match.Add(new NftNat(NftNatType.Snat, family, NftRegisters.Reg1));
                    rules.Add(Rule(o, $"snat {subnet} {snat}", [.. match]));
                }
                else
                {
                    match.Add(new NftMasquerade());
                    rules.Add(Rule(o, $"masq {subnet}", [.. match]));
                }
            }

            model.Chains.Add(new NftChainModel(NatOutChain(b), null, o, rules));
            model.AddElement(NatOut, element(NatOutChain(b)));
        }

        if (network.Hairpin)
        {
            var a = (uint)AddressLength(family);
            model.Chains.Add(new NftChainModel(NatInChain(b), null, o,
            [
                Rule(o, "hairpin-local", new NftFib(NftFibLookup.SourceAddress, NftFibResult.AddressType), new NftCmp(NftCmpOp.Eq, NftValues.HostU32(2)),
                    new NftMasquerade()),
                Rule(o, "hairpin-self",
                    new NftPayload(NftPayloadBase.Network, SourceOffset(family), a),
                    new NftPayload(NftPayloadBase.Network, DestinationOffset(family), a, NftRegisters.Reg32(AddressLength(family) / 4)),
                    new NftMeta(NftMetaKey.L4Proto, NftRegisters.Reg32(2 * AddressLength(family) / 4)),
                    new NftPayload(NftPayloadBase.Transport, 2, 2, NftRegisters.Reg32((2 * AddressLength(family) / 4) + 1)),
                    new NftLookup(HairpinSet), new NftMasquerade()),
            ]));
            model.AddElement(NatIn, element(NatInChain(b)));
        }
        else
        {
            model.AddElement(NoHairpin, new NftSetElement(NftValues.InterfaceName(b)) { Comment = o });
        }
    }

    private static void AddForward(NftModel model, NftFamily family, FirewallNetwork network, FirewallPortForward forward)
    {
        var container = family == NftFamily.IPv4 ? forward.ContainerIPv4 : forward.ContainerIPv6;
        if (container is null)
        {
            return;
        }

        var c = container.GetAddressBytes();
        foreach (var binding in forward.PortBindings)
        {
            var hostIp = binding.HostIP ?? IPAddress.Any;
            if (!InFamily(hostIp, family))
            {
                continue;
            }

            var proto = new[] { (byte)binding.Protocol };
            var containerPort = NftValues.Be16(binding.ContainerPort);
            var target = NftValues.Concat(c, containerPort);
            model.AddElement(Published, new NftSetElement(NftValues.Concat(c, proto, containerPort)) { Comment = network.Owner });
            if (network.Hairpin)
            {
                model.AddElement(HairpinSet, new NftSetElement(NftValues.Concat(c, c, proto, containerPort)) { Comment = network.Owner });
            }

            var any = hostIp.Equals(IPAddress.Any) || hostIp.Equals(IPAddress.IPv6Any);
            if (any)
            {
                model.AddElement(DnatAny(binding.Protocol), new NftSetElement(NftValues.Be16(binding.HostPort), target) { Comment = network.Owner });
            }
            else
            {
                var host = hostIp.IsIPv4MappedToIPv6 ? hostIp.MapToIPv4() : hostIp;
                model.AddElement(DnatAddress(binding.Protocol),
                    new NftSetElement(NftValues.Concat(host.GetAddressBytes(), NftValues.Be16(binding.HostPort)), target) { Comment = network.Owner });
            }
        }
    }
}

/// <summary>The nftables model of shared firewall records.</summary>
internal static class NftablesRecordsExtensions
{
    public static NftModel Build(this FirewallRecords records, NftFamily family) =>
        NftablesRuleBuilder.Build(family, records.Networks, records.Forwards.Select(f => (f, records.NetworkOf(f))));
}
