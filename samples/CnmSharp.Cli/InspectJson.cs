using System.Text.Json;
using System.Text.Json.Serialization;

namespace CnmSharp.Cli;

/// <summary>The JSON <c>network inspect</c> and <c>sandbox inspect</c> print.</summary>
internal static class InspectJson
{
    public static string Network(IEnumerable<Network> networks) =>
        JsonSerializer.Serialize(networks.Select(ToModel).ToList(), CliJsonContext.Default.ListNetworkInspect);

    /// <summary>The sandboxes as JSON; <paramref name="all"/> (every sandbox) finds those that share each one's namespace.</summary>
    public static string Sandbox(IEnumerable<Sandbox> sandboxes, IReadOnlyList<Sandbox> all) =>
        JsonSerializer.Serialize(sandboxes.Select(s => ToModel(s, all)).ToList(), CliJsonContext.Default.ListSandboxInspect);

    /// <summary>How a sandbox gets its network namespace, as Docker names network modes: <c>container:&lt;id&gt;</c> when it
    /// shares another sandbox's, <c>host</c> for the host's, else its own.</summary>
    public static string NetworkMode(Sandbox s) =>
        s.SharesNetwork ? "container:" + s.SharedFromContainerId : s.UsesHostNamespace ? "host" : "own";

    internal static NetworkInspect ToModel(Network n)
    {
        // A configuration-only network holds no pool: it shows its configuration as given.
        var configs = n.ConfigOnly
            ? n.IPv4Config.Concat(n.IPv6Config).Select(ToConfig).ToList()
            : n.IPv4Info.Select((info, i) => ToConfig(info, n.IPv4Config.ElementAtOrDefault(i)))
                .Concat(n.IPv6Info.Select((info, i) => ToConfig(info, n.IPv6Config.ElementAtOrDefault(i))))
                .ToList();
        var containers = new SortedDictionary<string, ContainerInspect>(StringComparer.Ordinal);
        foreach (var e in n.Endpoints)
        {
            var sandbox = e.Sandbox;
            containers[sandbox?.ContainerId ?? "ep-" + e.Id] = new ContainerInspect(
                e.Name,
                e.Id,
                e.MacAddress is { } mac ? FormatMac(mac) : "",
                e.Address?.ToString() ?? "",
                e.AddressIPv6?.ToString() ?? "")
            { Node = e.Node };
        }

        // A global network's endpoints on the cluster's other hosts, each with its node.
        foreach (var e in n.RemoteEndpoints)
        {
            containers["ep-" + e.Id] = new ContainerInspect(e.Name, e.Id, e.MacAddress ?? "", e.Address?.ToString() ?? "", e.AddressIPv6?.ToString() ?? "") { Node = e.Node };
        }

        return new NetworkInspect(
            n.Name,
            n.Id,
            n.Created,
            n.Scope,
            n.Driver,
            n.EnableIPv6,
            new IpamInspect(n.IpamDriver ?? "default", new SortedDictionary<string, string>(n.IpamOptions.ToDictionary(), StringComparer.Ordinal), configs),
            n.Internal,
            n.Attachable,
            new ConfigFromInspect(n.ConfigFrom ?? ""),
            n.ConfigOnly,
            containers,
            new SortedDictionary<string, string>(n.DriverOptions.ToDictionary(), StringComparer.Ordinal),
            new SortedDictionary<string, string>(n.Labels.ToDictionary(), StringComparer.Ordinal));
    }

    private static IpamConfigInspect ToConfig(IpamInfo info, IpamConfig? requested) => new(
        info.Pool.ToString(),
        info.Gateway?.Address.ToString(),
        requested?.IPRange,
        info.AuxAddresses.Count == 0 ? null : new SortedDictionary<string, string>(info.AuxAddresses.ToDictionary(kv => kv.Key, kv => kv.Value.Address.ToString()), StringComparer.Ordinal));

    private static IpamConfigInspect ToConfig(IpamConfig config) => new(
        config.Subnet ?? "",
        config.Gateway,
        config.IPRange,
        config.AuxAddresses.Count == 0 ? null : new SortedDictionary<string, string>(config.AuxAddresses.ToDictionary(), StringComparer.Ordinal));

    private static SandboxInspect ToModel(Sandbox s, IReadOnlyList<Sandbox> all) => new(
        s.Id,
        s.ContainerId,
        s.Key,
        s.UsesHostNamespace,
        s.Hostname,
        s.DomainName,
        s.HostsPath,
        s.ResolvConfPath,
        NetworkMode(s),
        s.SharesNetwork ? new SharedFromInspect(s.SharedFrom!, s.SharedFromContainerId ?? "") : null,
        s.NetworkSandboxId,
        all.Where(o => o.SharesNetwork && !ReferenceEquals(o, s) && o.NetworkSandboxId == s.NetworkSandboxId).Select(o => o.ContainerId).Order(StringComparer.Ordinal).ToList(),
        s.Endpoints.Select(e => new SandboxEndpointInspect(
            e.Name,
            e.Id,
            e.Network.Name,
            e.Network.Id,
            e.InterfaceName,
            e.MacAddress is { } mac ? FormatMac(mac) : "",
            e.Address?.ToString() ?? "",
            e.AddressIPv6?.ToString() ?? "",
            e.Gateway?.ToString(),
            e.Priority)).ToList(),
        s.GatewayEndpoint?.Name,
        Ports(s));

    /// <summary>
    /// The sandbox's ports as <c>docker inspect</c> shows <c>NetworkSettings.Ports</c>: <c>"80/tcp": [{"HostIp":
    /// "0.0.0.0", "HostPort": "8080"}]</c> for a published port (with the host port the driver gave), <c>"80/tcp":
    /// null</c> for one an endpoint asks for but does not publish now. Only the endpoint that gives the sandbox its
    /// gateway (not on an internal network) publishes ports.
    /// </summary>
    internal static SortedDictionary<string, List<PortBindingInspect>?> Ports(Sandbox s)
    {
        var ports = new SortedDictionary<string, List<PortBindingInspect>?>(StringComparer.Ordinal);
        var gateway = s.GatewayEndpoint;
        foreach (var e in s.Endpoints)
        {
            var published = gateway is not null && gateway.Id == e.Id && !e.Network.Internal;
            foreach (var binding in e.PortBindings)
            {
                var key = PortSpec.Key(binding);
                if (!published)
                {
                    ports.TryAdd(key, null);
                    continue;
                }

                if (!ports.TryGetValue(key, out var list) || list is null)
                {
                    ports[key] = list = [];
                }

                list.Add(new PortBindingInspect(binding.HostIP.ToString(), PortSpec.HostPort(binding)));
            }
        }

        return ports;
    }

    private static string FormatMac(System.Net.NetworkInformation.PhysicalAddress mac) =>
        string.Join(':', mac.GetAddressBytes().Select(b => b.ToString("x2", System.Globalization.CultureInfo.InvariantCulture)));
}

internal sealed record NetworkInspect(
    string Name,
    string Id,
    DateTimeOffset Created,
    string Scope,
    string Driver,
    [property: JsonPropertyName("EnableIPv6")] bool EnableIPv6,
    [property: JsonPropertyName("IPAM")] IpamInspect Ipam,
    bool Internal,
    bool Attachable,
    ConfigFromInspect ConfigFrom,
    bool ConfigOnly,
    SortedDictionary<string, ContainerInspect> Containers,
    SortedDictionary<string, string> Options,
    SortedDictionary<string, string> Labels);

/// <summary>As docker prints it: <c>{"Network": ""}</c> when the network took no configuration.</summary>
internal sealed record ConfigFromInspect(string Network);

internal sealed record IpamInspect(string Driver, SortedDictionary<string, string> Options, List<IpamConfigInspect> Config);

internal sealed record IpamConfigInspect(
    string Subnet,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Gateway,
    [property: JsonPropertyName("IPRange"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? IPRange,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] SortedDictionary<string, string>? AuxiliaryAddresses);

internal sealed record ContainerInspect(
    string Name,
    [property: JsonPropertyName("EndpointID")] string EndpointId,
    string MacAddress,
    [property: JsonPropertyName("IPv4Address")] string IPv4Address,
    [property: JsonPropertyName("IPv6Address")] string IPv6Address)
{
    /// <summary>The cluster node that made the endpoint (global networks only).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Node { get; init; }
}

internal sealed record SandboxInspect(
    string Id,
    string ContainerId,
    string Key,
    bool UsesHostNamespace,
    string? Hostname,
    string? Domainname,
    string HostsPath,
    string ResolvConfPath,
    string NetworkMode,
    SharedFromInspect? SharedFrom,
    [property: JsonPropertyName("NetworkSandboxID")] string NetworkSandboxId,
    List<string> SharedBy,
    List<SandboxEndpointInspect> Endpoints,
    string? GatewayEndpoint,
    SortedDictionary<string, List<PortBindingInspect>?> Ports);

/// <summary>One host binding of a port, as Docker's <c>nat.PortBinding</c> is shown.</summary>
internal sealed record PortBindingInspect([property: JsonPropertyName("HostIp")] string HostIp, string HostPort);

/// <summary>Container mode: the sandbox (and its container) whose network namespace a sandbox shares.</summary>
internal sealed record SharedFromInspect([property: JsonPropertyName("SandboxID")] string SandboxId, string ContainerId);

internal sealed record SandboxEndpointInspect(
    string Name,
    [property: JsonPropertyName("EndpointID")] string EndpointId,
    string Network,
    [property: JsonPropertyName("NetworkID")] string NetworkId,
    string? Interface,
    string MacAddress,
    [property: JsonPropertyName("IPv4Address")] string IPv4Address,
    [property: JsonPropertyName("IPv6Address")] string IPv6Address,
    string? Gateway,
    int Priority);

[JsonSourceGenerationOptions(WriteIndented = true)]
[JsonSerializable(typeof(List<NetworkInspect>))]
[JsonSerializable(typeof(List<SandboxInspect>))]
internal sealed partial class CliJsonContext : JsonSerializerContext;
