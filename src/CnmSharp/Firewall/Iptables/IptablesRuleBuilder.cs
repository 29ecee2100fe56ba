using System.Globalization;
using System.Net;
using System.Net.Sockets;
using CnmSharp.Drivers;

namespace CnmSharp.Firewall.Iptables;

/// <summary>
/// Turns network and port-forward records into Docker's iptables layout, rule text exactly as <c>iptables-save</c>
/// prints it. Pure: no kernel access.
/// </summary>
internal static class IptablesRuleBuilder
{
    public const string Nat = "nat";
    public const string Filter = "filter";
    public const string DockerChain = "DOCKER";
    public const string IsolationStage1 = "DOCKER-ISOLATION-STAGE-1";
    public const string IsolationStage2 = "DOCKER-ISOLATION-STAGE-2";
    public const string DockerUser = "DOCKER-USER";

    /// <summary>The chains the backend owns, per table, in creation order.</summary>
    public static readonly ChainRef[] OwnedChains =
    [
        new(Nat, DockerChain),
        new(Filter, DockerChain),
        new(Filter, IsolationStage1),
        new(Filter, IsolationStage2),
        new(Filter, DockerUser),
    ];

    /// <summary>
    /// Owned chains that administrators fill: <c>DOCKER-USER</c>. Once such a chain holds a rule that is not ours it is
    /// never flushed or deleted, and the jump to it stays, even when no network needs it any more (Docker never removes
    /// it either). Without foreign rules it goes with the last network, so nothing is left behind.
    /// </summary>
    public static readonly ChainRef[] UserChains = [new(Filter, DockerUser)];

    /// <summary>Builds the desired ruleset of one family.</summary>
    /// <param name="family">The family.</param>
    /// <param name="networks">The networks, in order.</param>
    /// <param name="forwards">The port forwards with their network (null when unknown: both hairpin variants are produced).</param>
    /// <returns>The ruleset.</returns>
    public static IptablesRuleSet Build(IptablesFamily family, IEnumerable<FirewallNetwork> networks, IEnumerable<(FirewallPortForward Forward, FirewallNetwork? Network)> forwards)
    {
        var set = new IptablesRuleSet();
        var inFamily = networks.Where(n => Subnets(n, family).Count > 0).ToList();
        var forwardList = forwards.Where(f => f.Forward.PortBindings.Any(b => FamilyOf(b.HostIP) == family)).ToList();
        if (inFamily.Count == 0 && forwardList.Count == 0)
        {
            return set;
        }

        AddBase(set, family, inFamily.Count == 0 || inFamily.Any(n => n.Hairpin && !n.Internal));
        foreach (var network in inFamily)
        {
            AddNetwork(set, family, network);
        }

        foreach (var (forward, network) in forwardList)
        {
            if (network is null)
            {
                AddForward(set, family, forward, hairpin: true);
                AddForward(set, family, forward, hairpin: false);
            }
            else if (!network.Internal)
            {
                AddForward(set, family, forward, network.Hairpin);
            }
        }

        return set;
    }

    /// <summary>True for a rule of the shared layout inside a chain this backend owns (the isolation chains' closing
    /// <c>RETURN</c>), which stays when the last network goes.</summary>
    internal static bool IsBaseRule(string table, string chain, string spec) =>
        table == Filter && chain is IsolationStage1 or IsolationStage2 && spec == "-j RETURN";

    /// <summary>The shared chains and jumps.</summary>
    private static void AddBase(IptablesRuleSet set, IptablesFamily family, bool hairpin)
    {
        foreach (var chain in OwnedChains)
        {
            set.AddChain(chain);
        }

        set.Add(Nat, "PREROUTING", "-m addrtype --dst-type LOCAL -j DOCKER");
        set.Add(Nat, "OUTPUT", hairpin
            ? "-m addrtype --dst-type LOCAL -j DOCKER"
            : $"! -d {(family == IptablesFamily.IPv4 ? "127.0.0.0/8" : "::1/128")} -m addrtype --dst-type LOCAL -j DOCKER");
        set.Add(Filter, "FORWARD", "-j DOCKER-USER", RulePosition.Head);
        set.Add(Filter, "FORWARD", "-j DOCKER-ISOLATION-STAGE-1", RulePosition.Head);
        set.Add(Filter, IsolationStage1, "-j RETURN", RulePosition.Tail);
        set.Add(Filter, IsolationStage2, "-j RETURN", RulePosition.Tail);
        set.Add(Filter, DockerUser, "-j RETURN", RulePosition.Tail);
    }

    private static void AddNetwork(IptablesRuleSet set, IptablesFamily family, FirewallNetwork network)
    {
        var bridge = network.BridgeName;
        var icc = network.EnableIcc ? "ACCEPT" : "DROP";
        if (network.Internal)
        {
            foreach (var subnet in Subnets(network, family))
            {
                set.Add(Filter, IsolationStage1, $"! -s {Format(subnet)} -o {bridge} -j DROP");
                set.Add(Filter, IsolationStage1, $"! -d {Format(subnet)} -i {bridge} -j DROP");
            }

            set.Add(Filter, "FORWARD", $"-i {bridge} -o {bridge} -j {icc}");
            return;
        }

        if (network.EnableMasquerade)
        {
            var snat = family == IptablesFamily.IPv4 && network.SnatSource is { AddressFamily: AddressFamily.InterNetwork } source
                ? $"SNAT --to-source {source}"
                : "MASQUERADE";
            foreach (var subnet in Subnets(network, family))
            {
                set.Add(Nat, "POSTROUTING", $"-s {Format(subnet)} ! -o {bridge} -j {snat}");
            }
        }

        if (network.Hairpin)
        {
            set.Add(Nat, "POSTROUTING", $"-o {bridge} -m addrtype --src-type LOCAL -j MASQUERADE");
        }
        else
        {
            set.Add(Nat, DockerChain, $"-i {bridge} -j RETURN");
        }

        set.Add(Filter, "FORWARD", $"-o {bridge} -j DOCKER");
        set.Add(Filter, "FORWARD", $"-o {bridge} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT");
        set.Add(Filter, "FORWARD", $"-i {bridge} ! -o {bridge} -j ACCEPT");
        set.Add(Filter, "FORWARD", $"-i {bridge} -o {bridge} -j {icc}");
        set.Add(Filter, IsolationStage1, $"-i {bridge} ! -o {bridge} -j DOCKER-ISOLATION-STAGE-2");
        set.Add(Filter, IsolationStage2, $"-o {bridge} -j DROP");
    }

    private static void AddForward(IptablesRuleSet set, IptablesFamily family, FirewallPortForward forward, bool hairpin)
    {
        var bridge = forward.BridgeName;
        var container = family == IptablesFamily.IPv4 ? forward.ContainerIPv4 : forward.ContainerIPv6;
        if (container is null)
        {
            return;
        }

        foreach (var binding in forward.PortBindings)
        {
            if (FamilyOf(binding.HostIP) != family)
            {
                continue;
            }

            var proto = ProtocolName(binding.Protocol);
            var match = $"-p {proto} -m {proto}";
            var destination = IsWildcard(binding.HostIP) ? string.Empty : $"-d {FormatHost(binding.HostIP)} ";
            var notFromBridge = hairpin ? string.Empty : $"! -i {bridge} ";
            var to = family == IptablesFamily.IPv4
                ? string.Create(CultureInfo.InvariantCulture, $"{container}:{binding.ContainerPort}")
                : string.Create(CultureInfo.InvariantCulture, $"[{container}]:{binding.ContainerPort}");
            set.Add(Nat, DockerChain, string.Create(CultureInfo.InvariantCulture,
                $"{destination}{notFromBridge}{match} --dport {binding.HostPort} -j DNAT --to-destination {to}"));
            set.Add(Filter, DockerChain, string.Create(CultureInfo.InvariantCulture,
                $"-d {FormatHost(container)} ! -i {bridge} -o {bridge} {match} --dport {binding.ContainerPort} -j ACCEPT"));
            set.Add(Nat, "POSTROUTING", string.Create(CultureInfo.InvariantCulture,
                $"-s {FormatHost(container)} -d {FormatHost(container)} {match} --dport {binding.ContainerPort} -j MASQUERADE"));
        }
    }

    /// <summary>The family of a host address (null means 0.0.0.0).</summary>
    /// <param name="address">The address.</param>
    /// <returns>The family.</returns>
    public static IptablesFamily FamilyOf(IPAddress? address) =>
        address is { AddressFamily: AddressFamily.InterNetworkV6, IsIPv4MappedToIPv6: false } ? IptablesFamily.IPv6 : IptablesFamily.IPv4;

    /// <summary>The subnets of a network in a family.</summary>
    /// <param name="network">The network.</param>
    /// <param name="family">The family.</param>
    /// <returns>The subnets.</returns>
    public static IReadOnlyList<IPNetwork> Subnets(FirewallNetwork network, IptablesFamily family) =>
        family == IptablesFamily.IPv4 ? network.IPv4Subnets : network.IPv6Subnets;

    /// <summary>The iptables name of a protocol.</summary>
    /// <param name="protocol">The protocol.</param>
    /// <returns><c>tcp</c>, <c>udp</c> or <c>sctp</c>.</returns>
    public static string ProtocolName(TransportProtocol protocol) => protocol switch
    {
        TransportProtocol.Tcp => "tcp",
        TransportProtocol.Udp => "udp",
        TransportProtocol.Sctp => "sctp",
        _ => throw new ArgumentOutOfRangeException(nameof(protocol), protocol, "unsupported protocol"),
    };

    private static bool IsWildcard(IPAddress? address) =>
        address is null || address.Equals(IPAddress.Any) || address.Equals(IPAddress.IPv6Any);

    private static string Format(IPNetwork network) =>
        string.Create(CultureInfo.InvariantCulture, $"{network.BaseAddress}/{network.PrefixLength}");

    private static string FormatHost(IPAddress address)
    {
        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }

        return address.AddressFamily == AddressFamily.InterNetwork ? $"{address}/32" : $"{address}/128";
    }
}
