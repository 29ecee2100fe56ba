namespace CnmSharp.Core;

/// <summary>
/// Which endpoint of a sandbox provides its default gateway: endpoints are ordered by join priority (higher first),
/// then non-internal before internal networks, then by gateway weight (an IPv6 gateway counts 2, IPv4 1, higher
/// first), then by network name. Each family is elected on its own, as libnetwork does since it gave IPv6 its own
/// gateway endpoint: the first endpoint with an IPv4 gateway gives the IPv4 default route, the first with an IPv6
/// gateway the IPv6 one (so an IPv6-only network beside an IPv4-only one gives the sandbox both), and the endpoint that
/// gives the IPv4 route, else the IPv6 one, provides external connectivity. As in libnetwork, an endpoint whose driver
/// disabled the gateway service is elected like any other when it has a gateway (a plugin may report both); the flag
/// only means that it needs no gateway from elsewhere (<see cref="NeedsDefaultGateway"/>).
/// </summary>
internal static class GatewayElection
{
    public static void Sort(List<Endpoint> endpoints) => endpoints.Sort(Compare);

    /// <summary>The endpoint that provides external connectivity: the IPv4 gateway endpoint, else the IPv6 one.</summary>
    public static Endpoint? Elect(IEnumerable<Endpoint> ordered)
    {
        var list = ordered as IReadOnlyList<Endpoint> ?? ordered.ToList();
        return ElectIPv4(list) ?? ElectIPv6(list);
    }

    /// <summary>The endpoint whose IPv4 gateway is the sandbox's IPv4 default route.</summary>
    public static Endpoint? ElectIPv4(IEnumerable<Endpoint> ordered) => ordered.FirstOrDefault(e => e.Record.Join?.Gateway is not null);

    /// <summary>The endpoint whose IPv6 gateway is the sandbox's IPv6 default route.</summary>
    public static Endpoint? ElectIPv6(IEnumerable<Endpoint> ordered) => ordered.FirstOrDefault(e => e.Record.Join?.GatewayIPv6 is not null);

    /// <summary>
    /// libnetwork's <c>needDefaultGW</c>: true when some endpoint with an interface in the sandbox, on a non-internal
    /// network, that did not disable the gateway service, exists and none such has a gateway (of either family) or a
    /// static default route. The controller logs such a sandbox; the endpoints that make it join the gateway network are
    /// chosen by <see cref="NeedsGatewayNetwork"/>.
    /// </summary>
    public static bool NeedsDefaultGateway(IEnumerable<Endpoint> endpoints)
    {
        var needs = false;
        foreach (var e in endpoints)
        {
            if (e.Record.Join is not { DestinationName: not null } join || e.Network.Internal || join.DisableGatewayService)
            {
                continue;
            }

            if (join.Gateway is not null || join.GatewayIPv6 is not null || join.StaticRoutes.Any(r => r.Destination is "0.0.0.0/0" or "::/0"))
            {
                return false;
            }

            needs = true;
        }

        return needs;
    }

    /// <summary>
    /// Whether a sandbox needs the controller's gateway network (libnetwork's <c>docker_gwbridge</c>; see
    /// <see cref="CnmOptions.GatewayNetwork"/>), given its joined endpoints other than its gateway network endpoint:
    /// true when one of them is on a network whose driver gives no external connectivity
    /// (<see cref="Drivers.DriverCapability.NoExternalConnectivity"/>), that is neither internal nor labelled
    /// <see cref="NetLabels.NoGatewayNetwork"/>, and did not disable the gateway service, and none of the non-internal
    /// ones has a gateway (of either family) or a static default route. Endpoints without an interface in the sandbox
    /// (host, null) count for nothing.
    /// </summary>
    /// <param name="endpoints">The sandbox's joined endpoints, its gateway network endpoint left out.</param>
    /// <returns>True when the sandbox needs a gateway network endpoint.</returns>
    public static bool NeedsGatewayNetwork(IEnumerable<Endpoint> endpoints)
    {
        var needs = false;
        foreach (var e in endpoints)
        {
            if (e.Record.Join is not { DestinationName: not null } join || e.Network.Internal)
            {
                continue;
            }

            if (join.Gateway is not null || join.GatewayIPv6 is not null || join.StaticRoutes.Any(r => r.Destination is "0.0.0.0/0" or "::/0"))
            {
                return false;
            }

            if (!join.DisableGatewayService && !e.Network.ConfigOnly && e.Network.RegisteredDriver.Capability.NoExternalConnectivity
                && !(e.Network.Labels.TryGetValue(NetLabels.NoGatewayNetwork, out var off) && string.Equals(off, "true", StringComparison.OrdinalIgnoreCase)))
            {
                needs = true;
            }
        }

        return needs;
    }

    public static int Compare(Endpoint a, Endpoint b)
    {
        var c = b.Priority.CompareTo(a.Priority);
        if (c != 0)
        {
            return c;
        }

        c = a.Network.Internal.CompareTo(b.Network.Internal);
        if (c != 0)
        {
            return c;
        }

        c = Weight(b).CompareTo(Weight(a));
        if (c != 0)
        {
            return c;
        }

        c = string.CompareOrdinal(a.Network.Name, b.Network.Name);
        return c != 0 ? c : string.CompareOrdinal(a.Id, b.Id);
    }

    private static int Weight(Endpoint e) =>
        (e.Record.Join?.GatewayIPv6 is null ? 0 : 2) + (e.Record.Join?.Gateway is null ? 0 : 1);
}
