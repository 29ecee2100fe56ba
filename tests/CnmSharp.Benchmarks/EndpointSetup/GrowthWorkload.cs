using System.Diagnostics;
using System.Globalization;
using System.Net;
using CnmSharp.Netlink;

namespace CnmSharp.Benchmarks.EndpointSetup;

/// <summary>
/// <c>endpoint-setup --growth [--count 1000]</c>: per-operation cost on the first and the last 100 of N links and
/// namespaces, to show that it does not grow with the number that exist. Everything lives in a private host namespace
/// and private run directory, removed at the end (deleting H reaps its links in one batch).
/// </summary>
internal static class GrowthWorkload
{
    public static async Task<int> RunAsync(int count)
    {
        count = Math.Max(count, 200);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"endpoint-setup --growth: n={count} links and namespaces, {DateTime.UtcNow:yyyy-MM-dd HH:mm}Z"));
        var rows = new List<(string Op, double[] Times)>();

        // Link count alone, without a bridge: N pairs in a fresh host namespace.
        await using (var plain = await Fixture.CreateAsync(0).ConfigureAwait(false))
        {
            using var client = RtnetlinkClient.Open(plain.Host.Handle);
            rows.Add(("veth pair create (no bridge)", await TimeEachAsync(count, i => client.CreateLinkAsync(new VethLinkSpec(Fixture.HostVeth(i), string.Create(CultureInfo.InvariantCulture, $"vp{i}"))).AsTask()).ConfigureAwait(false)));
        }

        await using (var fixture = await Fixture.CreateAsync(0).ConfigureAwait(false))
        {
            using var client = RtnetlinkClient.Open(fixture.Host.Handle);
            var bridge = (await client.GetLinkAsync(Fixture.Bridge).ConfigureAwait(false))!.Index;
            var create = new double[count];
            var indexes = new int[count];
            for (var i = 0; i < count; i++)
            {
                var start = Stopwatch.GetTimestamp();
                await client.CreateLinkAsync(new VethLinkSpec(Fixture.HostVeth(i), string.Create(CultureInfo.InvariantCulture, $"vp{i}")) { MasterIndex = bridge }).ConfigureAwait(false);
                create[i] = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
            }

            rows.Add(("veth pair create (host end on br0)", create));
            rows.Add(("link get by name", await TimeEachAsync(count, async i => indexes[i] = (await client.GetLinkAsync(Fixture.HostVeth(i)).ConfigureAwait(false))!.Index).ConfigureAwait(false)));
            rows.Add(("link set up", await TimeEachAsync(count, i => client.SetLinkUpAsync(indexes[i]).AsTask()).ConfigureAwait(false)));
            rows.Add(("address add", await TimeEachAsync(count, i => client.AddAddressAsync(new AddressSpec(indexes[i], Fixture.Address(i), 32)).AsTask()).ConfigureAwait(false)));
            rows.Add(("route add (/32 via link)", await TimeEachAsync(count, i => client.AddRouteAsync(new RouteSpec(new IPNetwork(Fixture.Address(i + 60000 - count), 32)) { OutputIndex = indexes[i], Scope = RouteScope.Link }).AsTask()).ConfigureAwait(false)));

            var namespaces = new NetworkNamespace[count];
            try
            {
                rows.Add(("namespace create", await TimeEachAsync(count, async i => namespaces[i] = await fixture.Manager.CreateAsync(fixture.ContainerName(i)).ConfigureAwait(false)).ConfigureAwait(false)));
                rows.Add(("run inside namespace (no-op)", await TimeEachAsync(count, i => fixture.Manager.RunInsideAsync(namespaces[i], () => 0)).ConfigureAwait(false)));
            }
            finally
            {
                foreach (var ns in namespaces)
                {
                    ns?.Dispose();
                }
            }

            rows.Add(("namespace delete", await TimeEachAsync(count, i => fixture.Manager.DeleteAsync(fixture.ContainerName(i))).ConfigureAwait(false)));
        }

        Console.WriteLine("| operation | first 100 median ms | first 100 p99 ms | last 100 median ms | last 100 p99 ms | last/first median |");
        Console.WriteLine("|---|---|---|---|---|---|");
        foreach (var (op, times) in rows)
        {
            var first = times[..100];
            var last = times[^100..];
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {op} | {Stats.Median(first):F3} | {Stats.Percentile(first, 99):F3} | {Stats.Median(last):F3} | {Stats.Percentile(last, 99):F3} | {Stats.Median(last) / Stats.Median(first):F2} |"));
        }

        return 0;
    }

    private static async Task<double[]> TimeEachAsync(int count, Func<int, Task> op) =>
        [.. await PhaseResult.TimeEachAsync(count, 1, op).ConfigureAwait(false)];
}
