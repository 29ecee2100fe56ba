using System.Collections.Concurrent;
using System.Text.Json;

namespace CnmSharp.Tests.Plugins;

/// <summary>
/// A network driver and IPAM plugin as plugin-protocol.md describes one: it keeps pools, addresses, networks and
/// endpoints in memory, answers in the daemon's shapes (NetworkDriver errors in "Err", IpamDriver errors in "Error",
/// 404 for ProgramExternalConnectivity), fills the MAC at CreateEndpoint, and reports an interface, a gateway and a
/// static route at Join. <see cref="Overrides"/> replace the answer of a path (misbehaviour).
/// </summary>
internal sealed class FakePlugin
{
    private readonly Lock _lock = new();
    private int _activations;

    public ConcurrentDictionary<string, Func<PluginRequest, PluginReply>> Overrides { get; } = new(StringComparer.Ordinal);

    public bool RequiresReplay { get; set; }

    /// <summary>Announces and serves the CnmSharp extension IpamDriver.ReleaseOwner.</summary>
    public bool ReleasesByOwner { get; set; }

    /// <summary>The owner option each pool id and address was requested with.</summary>
    public Dictionary<string, string> Owners { get; } = new(StringComparer.Ordinal);

    public int Activations => Volatile.Read(ref _activations);

    public HashSet<string> Pools { get; } = new(StringComparer.Ordinal);

    public HashSet<string> Addresses { get; } = new(StringComparer.Ordinal);

    public HashSet<string> Networks { get; } = new(StringComparer.Ordinal);

    public HashSet<string> Endpoints { get; } = new(StringComparer.Ordinal);

    public PluginReply Handle(PluginRequest request)
    {
        if (Overrides.TryGetValue(request.Path, out var over))
        {
            return over(request);
        }

        using var doc = request.Body.Length == 0 ? null : JsonDocument.Parse(request.Body);
        var root = doc?.RootElement;
        string S(string name) => root!.Value.GetProperty(name).GetString() ?? "";
        string? Owner() => root!.Value.TryGetProperty("Options", out var o) && o.ValueKind == JsonValueKind.Object && o.TryGetProperty(NetLabels.IpamOwner, out var v) ? v.GetString() : null;
        lock (_lock)
        {
            switch (request.Path)
            {
                case "/Plugin.Activate":
                    Interlocked.Increment(ref _activations);
                    return PluginReply.Ok("{\"Implements\":[\"NetworkDriver\",\"IpamDriver\"]}");
                case "/NetworkDriver.GetCapabilities":
                    return PluginReply.Ok("{\"Scope\":\"local\",\"ConnectivityScope\":\"\"}");
                case "/IpamDriver.GetCapabilities":
                    return PluginReply.Ok($"{{\"RequiresMACAddress\":false,\"RequiresRequestReplay\":{(RequiresReplay ? "true" : "false")},\"ReleasesByOwner\":{(ReleasesByOwner ? "true" : "false")}}}");
                case "/IpamDriver.GetDefaultAddressSpaces":
                    return PluginReply.Ok("{\"LocalDefaultAddressSpace\":\"plugspace\",\"GlobalDefaultAddressSpace\":\"plugglobal\"}");
                case "/IpamDriver.RequestPool":
                {
                    var pool = S("Pool");
                    var id = S("AddressSpace") + "/" + pool;
                    Pools.Add(id);
                    if (Owner() is { } poolOwner)
                    {
                        Owners[id] = poolOwner;
                    }

                    return PluginReply.Ok($"{{\"PoolID\":\"{id}\",\"Pool\":\"{pool}\",\"Data\":{{}}}}");
                }

                case "/IpamDriver.ReleasePool":
                    return Pools.Remove(S("PoolID")) ? PluginReply.Ok("{}") : PluginReply.Ok("{\"Error\":\"no such pool\"}");
                case "/IpamDriver.RequestAddress":
                {
                    var poolId = S("PoolID");
                    if (!Pools.Contains(poolId))
                    {
                        return PluginReply.Ok("{\"Error\":\"no such pool " + poolId + "\"}");
                    }

                    var prefix = poolId.Split('/')[1];
                    var baseText = prefix[..prefix.LastIndexOf('.')];
                    var wanted = S("Address");
                    var isGateway = root!.Value.GetProperty("Options").TryGetProperty("RequestAddressType", out _);
                    if (wanted.Length == 0)
                    {
                        wanted = isGateway ? baseText + ".1" : Enumerable.Range(2, 250).Select(i => baseText + "." + i).First(a => !Addresses.Contains(a));
                    }
                    else if (Addresses.Contains(wanted))
                    {
                        return PluginReply.Ok("{\"Error\":\"address in use\"}");
                    }

                    Addresses.Add(wanted);
                    if (Owner() is { } addressOwner)
                    {
                        Owners[wanted] = addressOwner;
                    }

                    return PluginReply.Ok($"{{\"Address\":\"{wanted}/24\",\"Data\":{{}}}}");
                }

                case "/IpamDriver.ReleaseOwner" when ReleasesByOwner:
                {
                    var owner = S("Owner");
                    var owned = Owners.Where(o => o.Value == owner).Select(o => o.Key).ToList();
                    foreach (var item in owned)
                    {
                        Owners.Remove(item);
                        Pools.Remove(item);
                        Addresses.Remove(item);
                    }

                    return PluginReply.Ok($"{{\"Released\":{owned.Count}}}");
                }

                case "/IpamDriver.ReleaseAddress":
                    Addresses.Remove(S("Address"));
                    return PluginReply.Ok("{}");
                case "/NetworkDriver.CreateNetwork":
                    Networks.Add(S("NetworkID"));
                    return PluginReply.Ok("{}");
                case "/NetworkDriver.DeleteNetwork":
                    Networks.Remove(S("NetworkID"));
                    return PluginReply.Ok("{}");
                case "/NetworkDriver.CreateEndpoint":
                {
                    Endpoints.Add(S("EndpointID"));
                    var address = root!.Value.GetProperty("Interface").GetProperty("Address").GetString()!;
                    var octets = address.Split('/')[0].Split('.').Select(byte.Parse).ToArray();
                    var mac = "02:42:" + string.Join(':', octets.Select(b => b.ToString("x2", System.Globalization.CultureInfo.InvariantCulture)));
                    return PluginReply.Ok($"{{\"Interface\":{{\"MacAddress\":\"{mac}\",\"Address\":\"\",\"AddressIPv6\":\"\"}}}}");
                }

                case "/NetworkDriver.DeleteEndpoint":
                    Endpoints.Remove(S("EndpointID"));
                    return PluginReply.Ok("{}");
                case "/NetworkDriver.Join":
                {
                    var ep = S("EndpointID");
                    return PluginReply.Ok($"{{\"InterfaceName\":{{\"SrcName\":\"plugveth{ep[..5]}\",\"DstPrefix\":\"eth\"}},\"Gateway\":\"10.98.0.1\",\"GatewayIPv6\":\"\",\"StaticRoutes\":[{{\"Destination\":\"192.168.50.0/24\",\"RouteType\":0,\"NextHop\":\"10.98.0.254\"}}],\"DisableGatewayService\":false}}");
                }

                case "/NetworkDriver.Leave":
                case "/NetworkDriver.RevokeExternalConnectivity":
                case "/NetworkDriver.EndpointOperInfo":
                    return PluginReply.Ok("{}");
                case "/NetworkDriver.ProgramExternalConnectivity":
                    return new PluginReply(404, "404 page not found");
                default:
                    return new PluginReply(404, "404 page not found");
            }
        }
    }
}
