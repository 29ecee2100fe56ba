using System.Globalization;
using System.Net;
using CnmSharp.Netlink;

namespace CnmSharp.Benchmarks.EndpointSetup;

/// <summary>
/// Everything one measured pass works in: a private run directory under /tmp, a private host namespace H with bridge
/// <c>br0</c> (10.77.0.1/16), and the names, paths and addresses of N containers. Nothing is made in the root namespace;
/// <see cref="DisposeAsync"/> deletes every namespace file in the private directory (all made by this fixture) and the
/// directory.
/// </summary>
internal sealed class Fixture : IAsyncDisposable
{
    public const string Bridge = "br0";
    public const string Gateway = "10.77.0.1";
    public const int PrefixLength = 16;

    private readonly PrivateHost _private;

    private Fixture(PrivateHost host, int count)
    {
        _private = host;
        Count = count;
    }

    /// <summary>The unique tag of this pass (also the name prefix of its namespaces).</summary>
    public string Tag => _private.Tag;

    public NetworkNamespaceManager Manager => _private.Manager;

    public NetworkNamespace Host => _private.Host;

    public string HostPath => _private.HostPath;

    public int Count { get; }
    public string ContainerName(int i) => string.Create(CultureInfo.InvariantCulture, $"{Tag}-c{i}");

    public string ContainerPath(int i) => Manager.GetPath(ContainerName(i));

    /// <summary>Host-side veth name, at most 15 characters.</summary>
    public static string HostVeth(int i) => string.Create(CultureInfo.InvariantCulture, $"vh{i}");

    /// <summary>10.77.0.2 + i.</summary>
    public static IPAddress Address(int i)
    {
        var n = i + 2;
        return new IPAddress([10, 77, (byte)(n >> 8), (byte)n]);
    }

    public static string AddressText(int i) => Address(i).ToString();

    /// <summary>A locally administered MAC derived from the address, as Docker does (02:42:IP).</summary>
    public static byte[] Mac(int i)
    {
        var ip = Address(i).GetAddressBytes();
        return [0x02, 0x42, ip[0], ip[1], ip[2], ip[3]];
    }

    public static string MacText(int i) => string.Join(':', Mac(i).Select(b => b.ToString("x2", CultureInfo.InvariantCulture)));

    public static async Task<Fixture> CreateAsync(int count)
    {
        var fixture = new Fixture(await PrivateHost.CreateAsync().ConfigureAwait(false), count);
        try
        {
            // Not measured: the bridge of the host namespace, made with ip inside H.
            await Exec.IpBatchAsync(
                fixture.HostPath,
                $"link add {Bridge} type bridge\naddr add {Gateway}/{PrefixLength} dev {Bridge}\nlink set {Bridge} up\n").ConfigureAwait(false);
        }
        catch
        {
            await fixture.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        return fixture;
    }

    /// <summary>Number of links in H, by an ip process (used by the peer tools and for checks).</summary>
    public Task<int> HostLinkCountByIpAsync() => _private.LinkCountAsync();

    /// <summary>Checks a few containers with ip: eth0 has its MAC, address, UP and a default route; H has all host ends.</summary>
    public async Task VerifyAsync(string tool)
    {
        var links = await HostLinkCountByIpAsync().ConfigureAwait(false);
        if (links != Count + 2)
        {
            throw new InvalidOperationException($"{tool}: H has {links} links, expected {Count + 2}");
        }

        foreach (var i in new[] { 0, Count / 2, Count - 1 }.Distinct())
        {
            var path = ContainerPath(i);
            var eth0 = await Exec.IpAsync(path, "-o", "addr", "show", "dev", "eth0").ConfigureAwait(false);
            var link = await Exec.IpAsync(path, "-o", "link", "show", "dev", "eth0").ConfigureAwait(false);
            var lo = await Exec.IpAsync(path, "-o", "link", "show", "dev", "lo").ConfigureAwait(false);
            var route = await Exec.IpAsync(path, "route", "show", "default").ConfigureAwait(false);
            var master = await Exec.IpAsync(HostPath, "-o", "link", "show", "dev", HostVeth(i)).ConfigureAwait(false);
            if (!eth0.Contains($"inet {AddressText(i)}/{PrefixLength}", StringComparison.Ordinal)
                || !link.Contains(MacText(i), StringComparison.Ordinal)
                || !link.Contains(",UP", StringComparison.Ordinal)
                || !lo.Contains(",UP", StringComparison.Ordinal)
                || !route.Contains($"default via {Gateway} dev eth0", StringComparison.Ordinal)
                || !master.Contains($"master {Bridge}", StringComparison.Ordinal)
                || !master.Contains(",UP", StringComparison.Ordinal))
            {
                throw new InvalidOperationException($"{tool}: container {i} is not configured as expected:\n{eth0}{link}{lo}{route}{master}");
            }
        }

        // Packets between our own namespaces only: container 0 to the bridge address in H. ping exits 0 when any of the
        // echoes is answered; on a heavily loaded machine one lost first echo (ARP resolution) must not fail the run.
        await Exec.RunAsync("nsenter", [$"--net={ContainerPath(0)}", "ping", "-c", "3", "-i", "0.2", "-W", "5", "-q", Gateway]).ConfigureAwait(false);
    }

    public ValueTask DisposeAsync() => _private.DisposeAsync();
}
