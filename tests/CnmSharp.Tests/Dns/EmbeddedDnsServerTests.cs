using System.Net;
using System.Net.Sockets;
using CnmSharp.Dns;
using CnmSharp.Testing;
using Microsoft.Extensions.Logging.Abstractions;
using static CnmSharp.Testing.DnsTestMessages;

namespace CnmSharp.Tests.Dns;

/// <summary>The resolver over real sockets on loopback in the test's own namespace (no namespace switch, no root): a
/// fake upstream on 127.0.0.1, the resolver on another 127.0.0.1 port.</summary>
public sealed class EmbeddedDnsServerTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);
    private FakeDnsServer _upstream = null!;
    private EmbeddedDnsServer _server = null!;
    private IPEndPoint _resolver = null!;

    [SetUp]
    public async Task StartAsync()
    {
        _upstream = await FakeDnsServer.StartAsync(new IPEndPoint(IPAddress.Loopback, 0));
        _server = new EmbeddedDnsServer(
            new EmbeddedDnsOptions { UpstreamTimeout = TimeSpan.FromMilliseconds(300), MaxConcurrentQueries = 4 },
            new CurrentDnsNamespace(),
            NullLoggerFactory.Instance,
            new IPEndPoint(IPAddress.Loopback, 0));
        await _server.ApplyAsync(State([new DnsHost("n1", "front", ["web", "web-alias"], [IPAddress.Parse("10.1.0.2")])]));
        _resolver = _server.ListenEndpointOf("sb1")!;
    }

    [TearDown]
    public async Task StopAsync()
    {
        await _server.DisposeAsync();
        await _upstream.DisposeAsync();
    }

    private DnsState State(IReadOnlyList<DnsHost> hosts) =>
        new([new DnsSandbox("sb1", "unused", ["n1"], [_upstream.Endpoint])], hosts);

    private async Task<byte[]> UdpAsync(byte[] query)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        return await DnsTestClient.UdpAsync(socket, _resolver, query, Wait) ?? throw new AssertionException("no reply");
    }

    private async Task<byte[]> TcpAsync(byte[] query)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        return await DnsTestClient.TcpAsync(socket, _resolver, query, Wait);
    }

    [Test]
    public async Task Local_names_over_udp_and_tcp_never_reach_the_upstream()
    {
        Assert.That(Addresses(await UdpAsync(Query("web", 1))), Is.EqualTo(new[] { IPAddress.Parse("10.1.0.2") }));
        Assert.That(Addresses(await TcpAsync(Query("WEB-ALIAS.front", 1))), Is.EqualTo(new[] { IPAddress.Parse("10.1.0.2") }));
        Assert.That(_upstream.Names, Is.Empty);
    }

    [Test]
    public async Task Other_names_are_answered_by_the_upstream_with_the_clients_id()
    {
        var reply = await UdpAsync(Query("www.example.test", 1, id: 0xBEEF));
        Assert.That(reply[..2], Is.EqualTo(new byte[] { 0xBE, 0xEF }));
        Assert.That(Addresses(reply), Is.EqualTo(new[] { FakeDnsServer.AddressOf("www.example.test") }));
        Assert.That(Rcode(await TcpAsync(Query("nothing.invalid", 1))), Is.EqualTo(3), "NXDOMAIN from the upstream, over TCP");
        Assert.That(_upstream.Names, Does.Contain("www.example.test").And.Contain("nothing.invalid"));
    }

    [Test]
    public async Task A_silent_upstream_gives_servfail_after_the_timeout()
    {
        var reply = await UdpAsync(Query("silent.test", 1));
        Assert.That(Rcode(reply), Is.EqualTo(2));
        Assert.That(QuestionName(reply), Is.EqualTo("silent.test"));
    }

    [Test]
    public async Task A_big_reply_is_truncated_over_udp_and_whole_over_tcp()
    {
        var udp = await UdpAsync(Query("big.test", 1));
        Assert.That(Truncated(udp), Is.True);
        Assert.That(Count(udp, 1), Is.Zero);
        Assert.That(udp, Has.Length.LessThanOrEqualTo(512));
        Assert.That(_upstream.TcpQueries, Is.GreaterThan(0), "the resolver fell back to TCP upstream when the upstream truncated");

        var tcp = await TcpAsync(Query("big.test", 1));
        Assert.That(Truncated(tcp), Is.False);
        Assert.That(Addresses(tcp), Has.Count.EqualTo(FakeDnsServer.BigCount));
        Assert.That(tcp, Has.Length.GreaterThan(512));

        var edns = await UdpAsync(Query("big.test", 1, ednsSize: 4096));
        Assert.That(Addresses(edns), Has.Count.EqualTo(FakeDnsServer.BigCount), "a client that offers 4096 bytes gets it whole over UDP");
    }

    [Test]
    public async Task Malformed_queries_get_formerr_or_nothing_and_the_resolver_keeps_serving()
    {
        var bad = Query("web", 1);
        bad[5] = 3;
        var reply = await UdpAsync(bad);
        Assert.That(Rcode(reply), Is.EqualTo(1));
        using (var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp))
        {
            Assert.That(await DnsTestClient.UdpAsync(socket, _resolver, [1, 2, 3], TimeSpan.FromMilliseconds(300)), Is.Null, "too short for a header: dropped");
        }

        Assert.That(Addresses(await UdpAsync(Query("web", 1))), Has.Count.EqualTo(1));
        Assert.That(Addresses(await TcpAsync(Query("web", 1))), Has.Count.EqualTo(1));
    }

    [Test]
    public async Task Records_follow_apply_at_once()
    {
        await _server.ApplyAsync(State([new DnsHost("n1", "front", ["db"], [IPAddress.Parse("10.1.0.3")])]));
        Assert.That(Addresses(await UdpAsync(Query("db", 1))), Is.EqualTo(new[] { IPAddress.Parse("10.1.0.3") }));
        Assert.That(Rcode(await UdpAsync(Query("web", 1))), Is.EqualTo(3), "gone locally; the upstream does not know it either");
        Assert.That(_upstream.Names, Does.Contain("web"));
        Assert.That(_server.ListenEndpointOf("sb1"), Is.EqualTo(_resolver), "the same listener");

        await _server.ApplyAsync(DnsState.Empty);
        Assert.That(_server.Served, Is.Empty);
    }

    [Test]
    public async Task Beyond_the_cap_on_concurrent_forwards_queries_are_refused()
    {
        var silent = Enumerable.Range(0, 4).Select(i => UdpAsync(Query("silent.test", 1, id: (ushort)i))).ToList();
        await Task.Delay(100);
        var refused = await UdpAsync(Query("x.test", 1, id: 99));
        Assert.That(Rcode(refused), Is.EqualTo(5));
        foreach (var reply in await Task.WhenAll(silent))
        {
            Assert.That(Rcode(reply), Is.EqualTo(2));
        }
    }
}
