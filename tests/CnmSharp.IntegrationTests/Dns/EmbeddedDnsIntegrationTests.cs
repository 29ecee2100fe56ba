using System.Net;
using System.Net.Sockets;
using CnmSharp.IntegrationTests.Bridge;
using CnmSharp.Netlink;
using CnmSharp.Testing;
using static CnmSharp.Testing.DnsTestMessages;

namespace CnmSharp.IntegrationTests.Dns;

/// <summary>
/// The embedded DNS on the real kernel, as root in a private host namespace: the controller serves 127.0.0.11:53 inside
/// each sandbox; the only upstream is a fake DNS server the test starts on the first network's gateway address in the
/// host namespace (every sandbox names it as its DNS server), so no query leaves the machine.
/// </summary>
[RequiresRoot]
[NonParallelizable]
public class EmbeddedDnsIntegrationTests
{
    private static readonly IPEndPoint Resolver = new(IPAddress.Parse("127.0.0.11"), 53);
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(15);

    private static SandboxCreateOptions WithUpstream(string upstream) => new() { DnsServers = [upstream], DnsSearch = ["corp.invalid"] };

    private static async Task<(Sandbox Sandbox, Endpoint Endpoint)> ContainerAsync(NetworkController controller, Network network, string name, string upstream, IReadOnlyList<string>? aliases = null)
    {
        var sandbox = await controller.CreateSandboxAsync(name, WithUpstream(upstream));
        var endpoint = await network.CreateEndpointAsync(name, new EndpointCreateOptions { Aliases = aliases ?? [] });
        await endpoint.JoinAsync(sandbox);
        return (sandbox, endpoint);
    }

    /// <summary>One query to 127.0.0.11 from a socket made inside the sandbox's namespace.</summary>
    private static async Task<byte[]> QueryAsync(Sandbox sandbox, string name, ushort type = 1, bool tcp = false)
    {
        var manager = new NetworkNamespaceManager(new NetworkNamespaceManagerOptions { RunDirectory = Path.GetDirectoryName(sandbox.Key)!, MakeRunDirectoryShared = false });
        using var ns = manager.Open(sandbox.Key);
        using var socket = await manager.RunInsideAsync(ns, () => tcp
            ? new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp)
            : new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp));
        return tcp
            ? await DnsTestClient.TcpAsync(socket, Resolver, Query(name, type), Wait)
            : await DnsTestClient.UdpAsync(socket, Resolver, Query(name, type), Wait) ?? throw new AssertionException($"no reply for {name}");
    }

    /// <summary>Runs a program in the sandbox as a container would: its namespace, its resolv.conf and hosts mounted
    /// over /etc in a private mount namespace.</summary>
    private static (int Code, string Stdout, string Stderr) InSandbox(Sandbox sandbox, params string[] args) =>
        BridgeHarness.Run(["unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
            "mount --bind \"$1\" /etc/resolv.conf && mount --bind \"$2\" /etc/hosts && shift 2 && exec nsenter --net=\"$0\" -- \"$@\"",
            sandbox.Key, sandbox.ResolvConfPath, sandbox.HostsPath, .. args]);

    [Test]
    public async Task Sandboxes_resolve_each_others_names_and_aliases_only_on_their_networks_and_everything_else_upstream()
    {
        await using var h = await BridgeHarness.CreateAsync();
        var front = await h.NetworkAsync("dns-front", "10.77.80.0/24");
        var back = await h.NetworkAsync("dns-back", "10.77.81.0/24");
        const string Upstream = "10.77.80.1";
        await using var upstream = await FakeDnsServer.StartAsync(new IPEndPoint(IPAddress.Parse(Upstream), 53), h.Host.Namespace, h.Host.Manager);
        var (s1, e1) = await ContainerAsync(h.Controller, front, "dns-s1", Upstream);
        var (s2, e2) = await ContainerAsync(h.Controller, front, "dns-s2", Upstream, aliases: ["db"]);
        var (s3, _) = await ContainerAsync(h.Controller, back, "dns-s3", Upstream);
        var s2Address = e2.Address!.Value.Address;

        var resolv = await File.ReadAllTextAsync(s1.ResolvConfPath);
        Assert.Multiple(() =>
        {
            Assert.That(resolv, Does.Contain("nameserver 127.0.0.11\n").And.Contain("search corp.invalid\n").And.Contain("options ndots:0\n"), resolv);
            Assert.That(resolv, Does.Not.Contain(Upstream), "the real upstream is the resolver's, not the file's");
        });

        foreach (var name in new[] { "dns-s2", "db", "DB.dns-front", "dns-s2.dns-front" })
        {
            Assert.That(Addresses(await QueryAsync(s1, name)), Is.EqualTo(new[] { s2Address }), name);
        }

        Assert.That(Addresses(await QueryAsync(s2, "dns-s1", tcp: true)), Is.EqualTo(new[] { e1.Address!.Value.Address }), "over TCP");
        var ptr = await QueryAsync(s1, DnsWire(s2Address), type: 12);
        Assert.That(Count(ptr, 1), Is.EqualTo(1), "PTR for a neighbour's address");

        // busybox's nslookup tries only the search domains for a name without a dot: ask for the absolute name.
        var nslookup = InSandbox(s1, "busybox", "nslookup", "db.");
        Assert.That(nslookup.Stdout, Does.Contain(s2Address.ToString()), nslookup.Stdout + nslookup.Stderr);
        var ping = InSandbox(s1, "ping", "-c1", "-W2", "dns-s2");
        Assert.That(ping.Code, Is.Zero, ping.Stdout + ping.Stderr);

        // A sandbox on the other network does not see them.
        Assert.That(Rcode(await QueryAsync(s3, "dns-s2")), Is.EqualTo(3));
        Assert.That(Rcode(await QueryAsync(s3, "db.dns-front")), Is.EqualTo(3));
        Assert.That(upstream.Names, Does.Not.Contain("dns-s2").And.Not.Contain("db"), "local names never go upstream");

        // Other names: the fake upstream, reached from inside the sandboxes, also from the other network.
        Assert.That(Addresses(await QueryAsync(s3, "www.example.test")), Is.EqualTo(new[] { FakeDnsServer.AddressOf("www.example.test") }));
        Assert.That(Rcode(await QueryAsync(s1, "silent.test")), Is.EqualTo(2), "SERVFAIL once the upstream timeout passed");
        var big = await QueryAsync(s1, "big.test");
        Assert.That(Truncated(big) && Count(big, 1) == 0, Is.True, "over UDP: cut, TC set");
        Assert.That(Addresses(await QueryAsync(s1, "big.test", tcp: true)), Has.Count.EqualTo(FakeDnsServer.BigCount), "over TCP: whole");

        // A restart loses no listener and no record.
        await h.RestartAsync();
        s1 = h.Controller.FindSandboxByContainerId("dns-s1")!;
        s2 = h.Controller.FindSandboxByContainerId("dns-s2")!;
        Assert.That(Addresses(await QueryAsync(s1, "db")), Is.EqualTo(new[] { s2Address }), "after a restart");

        // After a leave the name is gone at once.
        await h.Controller.Sandboxes.Single(s => s.ContainerId == "dns-s2").Endpoints.Single().LeaveAsync(s2);
        Assert.That(Rcode(await QueryAsync(s1, "dns-s2")), Is.EqualTo(3));
        Assert.That(Rcode(await QueryAsync(s1, "db")), Is.EqualTo(3));

        await h.TeardownAndAssertCleanAsync();
    }

    [Test]
    public async Task A_network_without_dns_and_an_endpoint_that_disables_resolution_give_no_resolver()
    {
        await using var h = await BridgeHarness.CreateAsync();
        var plain = await h.Controller.CreateNetworkAsync("dns-off", "bridge", new NetworkCreateOptions { IPv4Config = [new IpamConfig { Subnet = "10.77.82.0/24" }], DisableDns = true });
        var sandbox = await h.Controller.CreateSandboxAsync("dns-off-1", WithUpstream("10.77.82.1"));
        await (await plain.CreateEndpointAsync("dns-off-1")).JoinAsync(sandbox);
        var other = await h.NetworkAsync("dns-on", "10.77.83.0/24");
        var quiet = await h.Controller.CreateSandboxAsync("dns-off-2", WithUpstream("10.77.83.1"));
        await (await other.CreateEndpointAsync("dns-off-2", new EndpointCreateOptions { DisableResolution = true })).JoinAsync(quiet);

        foreach (var s in new[] { sandbox, quiet })
        {
            var resolv = await File.ReadAllTextAsync(s.ResolvConfPath);
            Assert.That(resolv, Does.Not.Contain("127.0.0.11"), resolv);
            var listening = BridgeHarness.Exec(s.Key, "ss", "-lnu");
            Assert.That(listening, Does.Not.Contain("127.0.0.11:53"), listening);
        }

        await h.TeardownAndAssertCleanAsync();
    }

    private static string DnsWire(IPAddress address) => CnmSharp.Dns.DnsWire.ReverseName(address);
}
