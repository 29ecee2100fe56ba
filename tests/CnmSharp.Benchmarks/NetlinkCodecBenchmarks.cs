using BenchmarkDotNet.Attributes;
using CnmSharp.Netlink;
using CnmSharp.Netlink.Internal;
using Microsoft.Win32.SafeHandles;

namespace CnmSharp.Benchmarks;

/// <summary>
/// The rtnetlink codec without a socket: encoding the per-container veth request, and walking a 1000-link dump
/// the way the kernel would deliver it (datagrams of at most 32 KiB, ~700 bytes per link).
/// </summary>
[MemoryDiagnoser]
public class NetlinkCodecBenchmarks
{
    private readonly byte[] _buffer = new byte[4096];
    private readonly SafeFileHandle _namespace = new(42, ownsHandle: false);
    private VethLinkSpec _veth = null!;
    private VethLinkSpec _vethWithMacs = null!;
    private List<byte[]> _dump = null!;
    private readonly List<LinkInfo> _links = new(1000);
    private long _sink;

    /// <summary>Number of links in the dump.</summary>
    [Params(1000)]
    public int Links { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _veth = new VethLinkSpec("veth1a2b3c4", "eth0") { PeerNamespace = _namespace, Mtu = 1500, MasterIndex = 3, Up = true };
        _vethWithMacs = _veth with
        {
            Mac = System.Net.NetworkInformation.PhysicalAddress.Parse("02-42-ac-11-00-01"),
            PeerMac = System.Net.NetworkInformation.PhysicalAddress.Parse("02-42-ac-11-00-02"),
        };
        _dump = LinkDump.Build(Links, seq: 7, portId: 99);
    }

    [Benchmark(Description = "encode veth create (peer in netns)")]
    public int EncodeVethCreate()
    {
        var writer = new NetlinkWriter(_buffer);
        RtnetlinkEncoder.CreateLink(ref writer, 1, _veth);
        return writer.Length;
    }

    [Benchmark(Description = "encode veth create + 2 MACs")]
    public int EncodeVethCreateWithMacs()
    {
        var writer = new NetlinkWriter(_buffer);
        RtnetlinkEncoder.CreateLink(ref writer, 1, _vethWithMacs);
        return writer.Length;
    }

    [Benchmark(Description = "walk 1000-link dump (views)")]
    public long WalkLinkDump()
    {
        long sum = 0;
        foreach (var datagram in _dump)
        {
            foreach (var message in new NetlinkMessageEnumerator(datagram))
            {
                if (message.Type == 16)
                {
                    var view = RtnetlinkParser.ParseLink(message.Payload);
                    sum += view.Index + view.Mtu + view.Name.Length + view.Kind.Length;
                }
            }
        }

        _sink = sum;
        return sum;
    }

    [Benchmark(Description = "materialize 1000 LinkInfo")]
    public int MaterializeLinkDump()
    {
        _links.Clear();
        var interrupted = false;
        foreach (var datagram in _dump)
        {
            RtnetlinkClient.ProcessQueryReply(datagram, 7, 99, static (type, payload, results) =>
            {
                if (type == 16)
                {
                    results.Add(RtnetlinkParser.ParseLinkInfo(payload));
                }
            }, _links, ref interrupted, "dump");
        }

        return _links.Count + (int)(_sink & 1);
    }
}

/// <summary>Builds kernel-like RTM_NEWLINK dump datagrams.</summary>
internal static class LinkDump
{
    public static List<byte[]> Build(int links, uint seq, uint portId)
    {
        var datagrams = new List<byte[]>();
        using var buffer = new GrowableBuffer(64 * 1024);
        var writer = new NetlinkWriter(buffer);
        for (var i = 1; i <= links; i++)
        {
            var start = writer.Length;
            var msg = writer.BeginMessage(16, 0x02, seq, portId);
            writer.WriteIfInfoMsg(0, i, 0x1043, 0, 1);
            writer.WriteString(3, i == 1 ? "lo" : $"veth{i:x7}");
            writer.WriteU32(13, 1000);
            writer.WriteU8(16, 6);
            writer.WriteU8(17, 0);
            writer.WriteU32(4, 1500);
            writer.WriteU32(50, 68);
            writer.WriteU32(51, 65535);
            writer.WriteU32(27, 0);
            writer.WriteU32(30, 0);
            writer.WriteU32(31, 1);
            writer.WriteU32(32, 1);
            writer.WriteU32(40, 65536);
            writer.WriteU32(41, 65535);
            writer.WriteU8(33, 1);
            writer.WriteString(6, "noqueue");
            writer.WriteU32(10, 3);
            writer.WriteU32(5, (uint)(i + 1));
            writer.WriteBytes(1, [2, 0x42, 0xac, 0x11, (byte)(i >> 8), (byte)i]);
            writer.WriteBytes(2, [0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
            var linkinfo = writer.BeginNested(18);
            writer.WriteString(1, "veth");
            writer.WriteString(4, "bridge");
            var slave = writer.BeginNested(5);
            writer.Reserve(120);
            writer.EndNested(slave);
            writer.EndNested(linkinfo);
            var afSpec = writer.BeginNested(26);
            writer.Reserve(380);
            writer.EndNested(afSpec);
            writer.EndMessage(msg);
            if (writer.Length > 32 * 1024)
            {
                datagrams.Add(buffer.Array.AsSpan(0, start).ToArray());
                var tail = buffer.Array.AsSpan(start, writer.Length - start).ToArray();
                writer = new NetlinkWriter(buffer);
                tail.CopyTo(writer.Reserve(tail.Length));
            }
        }

        var done = writer.BeginMessage(3, 0x02, seq, portId);
        writer.WriteI32Raw(0);
        writer.EndMessage(done);
        datagrams.Add(buffer.Array.AsSpan(0, writer.Length).ToArray());
        return datagrams;
    }

    private static void WriteI32Raw(this ref NetlinkWriter writer, int value) =>
        BitConverter.TryWriteBytes(writer.Reserve(4), value);
}
