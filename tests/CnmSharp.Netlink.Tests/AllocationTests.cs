using CnmSharp.Netlink.Internal;
using CnmSharp.Netlink.Tests.Support;
using Microsoft.Win32.SafeHandles;

namespace CnmSharp.Netlink.Tests;

/// <summary>The codec's steady state allocates nothing on the managed heap.</summary>
[NonParallelizable]
public class AllocationTests
{
    private static long Measure(Action action, int iterations = 1000)
    {
        action(); // warm up: JIT, statics
        action();
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < iterations; i++)
        {
            action();
        }

        return GC.GetAllocatedBytesForCurrentThread() - before;
    }

    [Test]
    public void Encoding_a_veth_create_request_allocates_nothing()
    {
        var buffer = new byte[4096];
        using var ns = new SafeFileHandle(42, ownsHandle: false);
        var spec = new VethLinkSpec("veth1a2b3c4", "eth0") { PeerNamespace = ns, Mtu = 1500, MasterIndex = 3, Up = true };
        var allocated = Measure(() =>
        {
            var writer = new NetlinkWriter(buffer);
            RtnetlinkEncoder.CreateLink(ref writer, 1, spec);
        });
        Assert.That(allocated, Is.Zero);
    }

    [Test]
    public void Encoding_route_address_and_set_link_requests_allocates_nothing()
    {
        var buffer = new byte[4096];
        var route = new RouteSpec(System.Net.IPNetwork.Parse("0.0.0.0/0")) { Gateway = System.Net.IPAddress.Parse("172.17.0.1"), OutputIndex = 2 };
        var address = new AddressSpec(2, System.Net.IPAddress.Parse("172.17.0.2"), 16);
        var allocated = Measure(() =>
        {
            var writer = new NetlinkWriter(buffer);
            RtnetlinkEncoder.AddRoute(ref writer, 1, route);
            RtnetlinkEncoder.Address(ref writer, 2, address, add: true);
            RtnetlinkEncoder.SetLink(ref writer, 3, "eth0", LinkChange.Up, 0, null, null, null);
            RtnetlinkEncoder.SetLink(ref writer, 4, 7, LinkChange.Master, 3, null, null, null);
        });
        Assert.That(allocated, Is.Zero);
    }

    [Test]
    public void Walking_a_1000_link_dump_allocates_nothing()
    {
        var datagrams = new List<byte[]>();
        var current = new List<byte[]>();
        for (var i = 1; i <= 1000; i++)
        {
            current.Add(Kernel.LinkMessage(i, $"veth{i:x7}", "veth", 7, 99, master: 3));
            if (current.Count == 40)
            {
                datagrams.Add(Hand.Concat([.. current]));
                current.Clear();
            }
        }

        datagrams.Add(Kernel.Done(7, 99));
        long sum = 0;
        var allocated = Measure(
            () =>
            {
                foreach (var datagram in datagrams)
                {
                    foreach (var message in new NetlinkMessageEnumerator(datagram))
                    {
                        if (message.Type == Hand.RTM_NEWLINK)
                        {
                            var view = RtnetlinkParser.ParseLink(message.Payload);
                            sum += view.Index + view.Mtu + view.Master + view.Name.Length + view.Kind.Length;
                        }
                    }
                }
            },
            iterations: 20);
        Assert.Multiple(() =>
        {
            Assert.That(allocated, Is.Zero);
            Assert.That(sum, Is.GreaterThan(0));
        });
    }
}
