using System.Net;
using CnmSharp.Drivers;
using CnmSharp.Firewall;

namespace CnmSharp.Tests.Firewall;

public class HostPortAllocatorTests
{
    private static readonly IPAddress HostA = IPAddress.Parse("192.0.2.10");
    private static readonly IPAddress HostB = IPAddress.Parse("192.0.2.11");

    private static PortBinding Tcp(ushort hostPort, IPAddress? hostIP = null, ushort end = 0) =>
        new(TransportProtocol.Tcp, 80, hostIP ?? IPAddress.Any, hostPort, end);

    [TestCase((byte)0)]
    [TestCase((byte)1)]
    [TestCase((byte)255)]
    public void An_unknown_protocol_is_an_invalid_argument_and_nothing_is_allocated(byte protocol)
    {
        var allocator = new HostPortAllocator(new HostPortAllocatorOptions { EphemeralStart = 50000, EphemeralEnd = 50001 });
        var unknown = new PortBinding((TransportProtocol)protocol, 80, HostA, 8080);

        var single = Assert.Throws<CnmInvalidArgumentException>(() => allocator.Allocate(unknown));
        var all = Assert.Throws<CnmInvalidArgumentException>(() => allocator.AllocateAll([Tcp(8081, HostA), unknown with { HostPort = 0 }]));

        Assert.Multiple(() =>
        {
            Assert.That(single!.Code, Is.EqualTo(CnmErrorCodes.InvalidOption));
            Assert.That(all!.Code, Is.EqualTo(CnmErrorCodes.InvalidOption));
            Assert.That(allocator.IsAllocated((TransportProtocol)protocol, HostA, 8080), Is.False);
            Assert.That(allocator.IsAllocated(TransportProtocol.Tcp, HostA, 8081), Is.False, "the call's earlier binding is released");
            Assert.That(allocator.IsAllocated((TransportProtocol)protocol, HostA, 50000), Is.False, "no ephemeral port taken");
        });
    }

    [Test]
    public void Specific_port_is_allocated_once_per_protocol_and_address()
    {
        var allocator = new HostPortAllocator();
        var first = allocator.Allocate(Tcp(8080, HostA));
        Assert.That(first.HostPort, Is.EqualTo(8080));

        var ex = Assert.Throws<CnmConflictException>(() => allocator.Allocate(Tcp(8080, HostA)));
        Assert.That(ex!.Code, Is.EqualTo(CnmErrorCodes.PortAlreadyAllocated));

        // Other address, other protocol: free.
        Assert.That(allocator.Allocate(Tcp(8080, HostB)).HostPort, Is.EqualTo(8080));
        Assert.That(allocator.Allocate(new PortBinding(TransportProtocol.Udp, 53, HostA, 8080)).HostPort, Is.EqualTo(8080));
        Assert.That(allocator.Allocate(new PortBinding(TransportProtocol.Sctp, 53, HostA, 8080)).HostPort, Is.EqualTo(8080));
    }

    [Test]
    public void Wildcard_conflicts_with_every_specific_address_of_its_family()
    {
        var allocator = new HostPortAllocator();
        allocator.Allocate(Tcp(8080, HostA));
        Assert.Throws<CnmConflictException>(() => allocator.Allocate(Tcp(8080, IPAddress.Any)));

        allocator.Allocate(Tcp(9090, IPAddress.Any));
        Assert.Throws<CnmConflictException>(() => allocator.Allocate(Tcp(9090, HostB)));
        Assert.That(allocator.IsAllocated(TransportProtocol.Tcp, HostB, 9090), Is.True);

        // IPv6 wildcard is a separate family (separate ip6tables rules).
        Assert.That(allocator.Allocate(Tcp(9090, IPAddress.IPv6Any)).HostPort, Is.EqualTo(9090));
        Assert.Throws<CnmConflictException>(() => allocator.Allocate(Tcp(9090, IPAddress.IPv6Loopback)));
    }

    [Test]
    public void Null_host_address_means_any()
    {
        var allocator = new HostPortAllocator();
        var binding = allocator.Allocate(new PortBinding(TransportProtocol.Tcp, 80, null!, 7000));
        Assert.That(binding.HostIP, Is.EqualTo(IPAddress.Any));
        Assert.Throws<CnmConflictException>(() => allocator.Allocate(Tcp(7000, HostA)));
    }

    [Test]
    public void Release_frees_the_port()
    {
        var allocator = new HostPortAllocator();
        var binding = allocator.Allocate(Tcp(8080, HostA));
        Assert.That(allocator.Release(binding), Is.True);
        Assert.That(allocator.Release(binding), Is.False);
        Assert.That(allocator.Allocate(Tcp(8080, IPAddress.Any)).HostPort, Is.EqualTo(8080));
    }

    [Test]
    public void Range_takes_the_first_free_port_and_fails_when_full()
    {
        var allocator = new HostPortAllocator();
        Assert.That(allocator.Allocate(Tcp(5000, HostA, 5002)).HostPort, Is.EqualTo(5000));
        Assert.That(allocator.Allocate(Tcp(5000, HostA, 5002)).HostPort, Is.EqualTo(5001));
        var resolved = allocator.Allocate(Tcp(5000, HostA, 5002));
        Assert.That((resolved.HostPort, resolved.HostPortEnd), Is.EqualTo(((ushort)5002, (ushort)0)));
        var ex = Assert.Throws<CnmConflictException>(() => allocator.Allocate(Tcp(5000, HostA, 5002)));
        Assert.That(ex!.Code, Is.EqualTo(CnmErrorCodes.PortAlreadyAllocated));

        Assert.Throws<CnmInvalidArgumentException>(() => allocator.Allocate(Tcp(5002, HostA, 5000)));
    }

    [Test]
    public void Ephemeral_ports_come_from_the_configured_range_round_robin()
    {
        var allocator = new HostPortAllocator(new HostPortAllocatorOptions { EphemeralStart = 40000, EphemeralEnd = 40002 });
        var a = allocator.Allocate(Tcp(0));
        var b = allocator.Allocate(Tcp(0));
        Assert.That((a.HostPort, b.HostPort), Is.EqualTo(((ushort)40000, (ushort)40001)));

        // A released port is not handed out again at once.
        allocator.Release(a);
        Assert.That(allocator.Allocate(Tcp(0)).HostPort, Is.EqualTo(40002));
        Assert.That(allocator.Allocate(Tcp(0)).HostPort, Is.EqualTo(40000));

        var ex = Assert.Throws<CnmUnavailableException>(() => allocator.Allocate(Tcp(0)));
        Assert.That(ex!.Code, Is.EqualTo(CnmErrorCodes.PortAlreadyAllocated));

        // Another protocol has its own ports.
        Assert.That(allocator.Allocate(new PortBinding(TransportProtocol.Udp, 53, IPAddress.Any, 0)).HostPort, Is.EqualTo(40000));
    }

    [Test]
    public void Ephemeral_skips_ports_taken_explicitly()
    {
        var allocator = new HostPortAllocator(new HostPortAllocatorOptions { EphemeralStart = 40000, EphemeralEnd = 40010 });
        allocator.Allocate(Tcp(40000, HostA));
        Assert.That(allocator.Allocate(Tcp(0)).HostPort, Is.EqualTo(40001));
        Assert.That(allocator.Allocate(Tcp(0, HostB)).HostPort, Is.EqualTo(40002));
    }

    [Test]
    public void Default_range_is_dockers_fallback()
    {
        var allocator = new HostPortAllocator();
        Assert.That((allocator.EphemeralStart, allocator.EphemeralEnd), Is.EqualTo(((ushort)49153, (ushort)65535)));
        Assert.That(allocator.Allocate(Tcp(0)).HostPort, Is.EqualTo(49153));
        Assert.Throws<ArgumentException>(() => _ = new HostPortAllocator(new HostPortAllocatorOptions { EphemeralStart = 10, EphemeralEnd = 5 }));
    }

    [Test]
    public void AllocateAll_is_all_or_nothing()
    {
        var allocator = new HostPortAllocator();
        allocator.Allocate(Tcp(8082, HostA));
        Assert.Throws<CnmConflictException>(() => allocator.AllocateAll([Tcp(8080, HostA), Tcp(8081, HostA), Tcp(8082, HostA)]));
        Assert.That(allocator.IsAllocated(TransportProtocol.Tcp, HostA, 8080), Is.False);
        Assert.That(allocator.IsAllocated(TransportProtocol.Tcp, HostA, 8081), Is.False);
        Assert.That(allocator.AllocateAll([Tcp(8080, HostA), Tcp(8081, HostA)]), Has.Count.EqualTo(2));
    }

    [Test]
    public void Two_allocators_share_nothing()
    {
        var one = new HostPortAllocator();
        var two = new HostPortAllocator();
        one.Allocate(Tcp(8080));
        Assert.That(two.Allocate(Tcp(8080)).HostPort, Is.EqualTo(8080));
    }

    [TestCase("32768\t60999", true, 32768, 60999)]
    [TestCase("1024 65535\n", true, 1024, 65535)]
    [TestCase("0 10", false, 0, 0)]
    [TestCase("60999 32768", false, 0, 0)]
    [TestCase("garbage", false, 0, 0)]
    [TestCase(null, false, 0, 0)]
    public void Kernel_range_text_parses(string? text, bool ok, int start, int end)
    {
        Assert.That(HostPortAllocator.TryParseRange(text, out var s, out var e), Is.EqualTo(ok));
        if (ok)
        {
            Assert.That(((int)s, (int)e), Is.EqualTo((start, end)));
        }
    }

    [Test]
    public async Task Range_of_the_own_namespace_is_read_from_proc()
    {
        var allocator = await HostPortAllocator.CreateForNamespaceAsync(null);
        var text = await File.ReadAllTextAsync("/proc/sys/net/ipv4/ip_local_port_range");
        Assert.That(HostPortAllocator.TryParseRange(text, out var s, out var e), Is.True);
        Assert.That((allocator.EphemeralStart, allocator.EphemeralEnd), Is.EqualTo((s, e)));
    }
}
