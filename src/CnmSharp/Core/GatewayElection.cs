namespace CnmSharp.Core;

/// <summary>
/// Which endpoint of a sandbox provides its default gateway: endpoints are ordered by join priority (higher first),
/// then non-internal before internal networks, then by gateway weight (an IPv6 gateway counts 2, IPv4 1, higher
/// first), then by network name; the first with an IPv4 gateway wins.
/// </summary>
internal static class GatewayElection
{
    public static void Sort(List<Endpoint> endpoints) => endpoints.Sort(Compare);

    public static Endpoint? Elect(IEnumerable<Endpoint> ordered) => ordered.FirstOrDefault(e => e.Record.Join?.Gateway is not null);

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
