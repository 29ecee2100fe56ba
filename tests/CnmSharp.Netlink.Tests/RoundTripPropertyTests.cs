using System.Net;
using System.Text;
using CnmSharp.Netlink.Internal;
using CsCheck;

namespace CnmSharp.Netlink.Tests;

/// <summary>What the writer encodes, the reader reads back (requests and replies share the attribute layout).</summary>
public class RoundTripPropertyTests
{
    private static readonly Gen<string> s_name = Gen.Char["abcdefghijklmnopqrstuvwxyz0123456789-_"].Array[1, 15].Select(c => new string(c));

    [Test]
    public void Link_create_requests_read_back() =>
        Gen.Select(s_name, Gen.Int[68, 65535], Gen.Int[1, 100_000], Gen.Bool)
            .Sample((name, mtu, master, up) =>
            {
                var buffer = new byte[512];
                var writer = new NetlinkWriter(buffer);
                RtnetlinkEncoder.CreateLink(ref writer, 9, new BridgeLinkSpec(name) { Mtu = mtu, MasterIndex = master, Up = up });
                var count = 0;
                foreach (var message in new NetlinkMessageEnumerator(writer.Written))
                {
                    count++;
                    var view = RtnetlinkParser.ParseLink(message.Payload);
                    Assert.That(Encoding.UTF8.GetString(view.Name), Is.EqualTo(name));
                    Assert.That(view.Mtu, Is.EqualTo((uint)mtu));
                    Assert.That(view.Master, Is.EqualTo(master));
                    Assert.That(Encoding.UTF8.GetString(view.Kind), Is.EqualTo("bridge"));
                    Assert.That(view.Flags & 1, Is.EqualTo(up ? 1u : 0u));
                    Assert.That(message.Sequence, Is.EqualTo(9u));
                }

                Assert.That(count, Is.EqualTo(1));
            }, iter: 2_000);

    [Test]
    public void Route_requests_read_back() =>
        Gen.Select(Gen.UInt, Gen.Int[0, 32], Gen.UInt[1, 100_000], Gen.UInt[1, 1_000_000], Gen.Bool)
            .Sample((bits, prefix, table, metric, onlink) =>
            {
                var network = new IPNetwork(Mask(new IPAddress(BitConverter.GetBytes(bits)), prefix), prefix);
                var spec = new RouteSpec(network) { Gateway = IPAddress.Parse("192.0.2.1"), OutputIndex = 3, Table = table, Metric = metric, OnLink = onlink };
                var buffer = new byte[512];
                var writer = new NetlinkWriter(buffer);
                RtnetlinkEncoder.AddRoute(ref writer, 1, spec);
                var e = new NetlinkMessageEnumerator(writer.Written);
                Assert.That(e.MoveNext(), Is.True);
                var route = RtnetlinkParser.ParseRoute(e.Current.Payload);
                Assert.That(route.Destination, Is.EqualTo(network));
                Assert.That(route.Table, Is.EqualTo(table));
                Assert.That(route.Metric, Is.EqualTo(metric));
                Assert.That(route.OnLink, Is.EqualTo(onlink));
                Assert.That(route.Gateway, Is.EqualTo(IPAddress.Parse("192.0.2.1")));
                Assert.That(route.OutputIndex, Is.EqualTo(3));
            }, iter: 2_000);

    private static IPAddress Mask(IPAddress address, int prefix)
    {
        var bytes = address.GetAddressBytes();
        for (var i = 0; i < bytes.Length; i++)
        {
            var bits = prefix - (i * 8);
            bytes[i] &= bits >= 8 ? (byte)0xff : bits <= 0 ? (byte)0 : (byte)(0xff << (8 - bits));
        }

        return new IPAddress(bytes);
    }
}
