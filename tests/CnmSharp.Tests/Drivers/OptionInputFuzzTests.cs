using System.Net;
using System.Net.NetworkInformation;
using CnmSharp.Core;
using CnmSharp.Drivers;
using CnmSharp.Drivers.Bridge;
using CnmSharp.Drivers.Common;
using CnmSharp.Drivers.Ipvlan;
using CnmSharp.Drivers.Macvlan;
using CnmSharp.Testing;
using CsCheck;

namespace CnmSharp.Tests.Drivers;

/// <summary>
/// Hostile option labels and strings (docs/reliability.md, "Hostile input"): <c>com.docker.network.*</c> and driver
/// options of the bridge, macvlan and ipvlan drivers, parent interface names, CIDR, IP and MAC strings, port
/// bindings and names, given as any user can give them. Each parser returns or throws
/// <see cref="CnmInvalidArgumentException"/>; where a text form exists, parse(format(x)) = x.
/// </summary>
public sealed class OptionInputFuzzTests
{
    private static readonly string[] s_keys =
    [
        BridgeOptionKeys.BridgeName, BridgeOptionKeys.EnableIcc, BridgeOptionKeys.EnableIPMasquerade, BridgeOptionKeys.HostBindingIPv4,
        BridgeOptionKeys.InhibitIPv4, BridgeOptionKeys.DefaultBridge, NetLabels.DriverMtu, NetLabels.ContainerIfacePrefix,
        NetLabels.HostIPv4, NetLabels.EnableIPv6, NetLabels.Internal, MacvlanOptionKeys.Parent, MacvlanOptionKeys.Mode,
        IpvlanOptionKeys.Mode, IpvlanOptionKeys.Flag, "com.docker.network.bridge.gateway_mode_ipv4", "com.docker.network.driver.overlay.vxlanid_list",
    ];

    /// <summary>Option values: the interesting strings, numbers at the edges, and random text.</summary>
    private static readonly Gen<string> s_value = Gen.OneOf(
        Gen.OneOf(HostileJson.InterestingStrings),
        Gen.OneOf("1", "0", "68", "65535", "65536", "-1", "+1", " 1500", "1500 ", "1_500", "0x10", "true", "True", "TRUE", "yes", "l2", "l3", "l3s", "bridge", "private", "vepa", "passthru", "eth0.4095", "eth0.4096", "eth0.0", "eth0.", ".10", "eth0.10.20"),
        Gen.String[0, 20],
        Gen.Char["0123456789.:/%-abcdefABCDEF"].Array[0, 24].Select(c => new string(c)));

    private static readonly Gen<Dictionary<string, string>> s_options =
        Gen.Select(Gen.OneOf(Gen.OneOf(s_keys), Gen.String[0, 12]), s_value).Array[0, 6]
            .Select(pairs =>
            {
                var options = new Dictionary<string, string>(StringComparer.Ordinal);
                foreach (var (key, value) in pairs)
                {
                    options[key] = value;
                }

                return options;
            });

    private static void Typed(Action parse)
    {
        try
        {
            parse();
        }
        catch (CnmInvalidArgumentException)
        {
        }
    }

    [Test]
    public void Bridge_network_options_parse_or_refuse_with_invalid_argument() =>
        Fuzz.Run(
            Gen.Select(s_options, Gen.Bool),
            t => Typed(() => BridgeNetworkOptions.Parse(
                new NetworkCreateRequest
                {
                    NetworkId = "0123456789abcdef",
                    NetworkName = "n",
                    DriverOptions = t.Item1,
                    EnableIPv6 = t.Item2,
                    IPv4Data = [new IpamData("LocalDefault", IPNetwork.Parse("10.80.0.0/24"), CidrAddress.Parse("10.80.0.1/24"), new Dictionary<string, CidrAddress>())],
                },
                new BridgeDriverOptions())),
            iterations: 4_000,
            seed: 601,
            print: t => string.Join(", ", t.Item1.Select(kv => $"{kv.Key}={kv.Value}")));

    [Test]
    public void Parent_names_and_macvlan_ipvlan_modes_parse_or_refuse_with_invalid_argument() =>
        Fuzz.Run(
            Gen.Select(s_value, s_value),
            t =>
            {
                Typed(() => ParentName.Parse(t.Item1, "network"));
                Typed(() => MacvlanDriver.ParseModeName(t.Item1, "network"));
                Typed(() => IpvlanDriver.ParseModeName(t.Item1, "network"));
                Typed(() => IpvlanDriver.ParseFlagName(t.Item2, "network"));
                _ = NetLabels.Split(t.Item1 + "=" + t.Item2);
            },
            iterations: 4_000,
            seed: 602);

    [Test]
    public void Address_cidr_and_mac_strings_parse_or_refuse_with_invalid_argument() =>
        Fuzz.Run(
            s_value,
            text =>
            {
                Typed(() => CidrAddress.Parse(text));
                Typed(() => IPAddressText.ParseStrict(text));
                Typed(() => IPAddressText.ParseStrict(text, allowScopeId: true));
                _ = IPNetworks.TryParse(text, allowHostBits: false, out _);
                _ = IPNetworks.TryParse(text, allowHostBits: true, out _);
                if (PhysicalAddress.TryParse(text, out var mac))
                {
                    Typed(() => Validation.MacAddress(mac, "endpoint"));
                }
            },
            iterations: 6_000,
            seed: 603);

    [Test]
    public void Names_ids_and_dns_values_are_accepted_or_refused_with_invalid_argument() =>
        Fuzz.Run(
            s_value,
            text =>
            {
                Typed(() => Validation.Name(text, "network"));
                Typed(() => Validation.Id(text, "network"));
                Typed(() => Validation.ContainerId(text));
                Typed(() => Validation.Hostname(text));
                Typed(() => Validation.DomainName(text, "domain"));
                Typed(() => Validation.DnsSearch(text));
                Typed(() => Validation.DnsServer(text));
                Typed(() => Validation.DnsOption(text));
                Typed(() => Validation.InterfaceNames(text, text));
                _ = BridgeNetworkOptions.IsValidBridgeName(text);
                _ = BridgeNetworkOptions.TryParseBool(text, out _);
            },
            iterations: 6_000,
            seed: 604);

    [Test]
    public void Port_bindings_are_accepted_or_refused_with_invalid_argument() =>
        Fuzz.Run(
            Gen.Select(Gen.OneOf(TransportProtocol.Tcp, TransportProtocol.Udp, TransportProtocol.Sctp, (TransportProtocol)99), Gen.UShort, s_value, Gen.UShort, Gen.UShort),
            t =>
            {
                var (protocol, port, host, hostPort, hostPortEnd) = t;
                var hostIP = IPAddressText.TryParseStrict(host, out var a, allowScopeId: true) ? a : IPAddress.Any;
                Typed(() => Validation.PortBinding(new PortBinding(protocol, port, hostIP, hostPort, hostPortEnd), "endpoint"));
            },
            iterations: 4_000,
            seed: 605);

    [Test]
    public void Addresses_and_cidrs_round_trip_through_their_text() =>
        Fuzz.Run(
            Gen.Select(Gen.Bool, Gen.Byte.Array[16], Gen.Int[0, 128]),
            t =>
            {
                var (v6, bytes, prefixSeed) = t;
                var address = new IPAddress(v6 ? bytes : bytes[..4]);
                var prefix = prefixSeed % (v6 ? 129 : 33);
                Assert.That(IPAddressText.ParseStrict(address.ToString()), Is.EqualTo(address));
                var cidr = new CidrAddress(address, prefix);
                Assert.That(CidrAddress.Parse(cidr.ToString()), Is.EqualTo(cidr));
                var network = IPNetworks.Containing(address, prefix);
                Assert.That(IPNetworks.TryParse(network.ToString(), allowHostBits: false, out var back) && back.Equals(network), Is.True, network.ToString());
            },
            iterations: 3_000,
            seed: 606);
}
