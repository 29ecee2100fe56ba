using System.Buffers.Binary;
using System.Net.NetworkInformation;
using System.Runtime.InteropServices;
using CnmSharp.Netlink.Internal;

namespace CnmSharp.Netlink;

/// <summary>
/// Requests to send in one datagram with <see cref="IRtnetlinkClient.ExecuteBatchAsync"/>, e.g. a container's
/// endpoint setup: create the veth with its peer inside the sandbox, enslave the host end, bring it up. Links not
/// yet created can be named (<see cref="LinkReference"/>), since their index is unknown when the batch is built.
/// Requests are encoded when added; namespace handles are held open until the batch is disposed.
/// </summary>
public sealed class RtnetlinkBatch : IDisposable
{
    private readonly GrowableBuffer _buffer = new(1024);
    private readonly List<int> _offsets = [];
    private readonly List<SafeHandle> _handles = [];
    private int _length;
    private bool _disposed;

    /// <summary>The number of requests.</summary>
    public int Count => _offsets.Count;

    internal ReadOnlySpan<byte> Bytes => _buffer.Array.AsSpan(0, _length);

    internal void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(_disposed, this);

    internal IReadOnlyList<int> Offsets => _offsets;

    /// <summary>Adds a link creation.</summary>
    /// <param name="spec">What to create.</param>
    /// <returns>This batch.</returns>
    public RtnetlinkBatch CreateLink(LinkSpec spec)
    {
        RtnetlinkClient.ValidateSpec(spec);
        Hold(spec.Namespace);
        Hold((spec as VethLinkSpec)?.PeerNamespace);
        var w = Begin();
        RtnetlinkEncoder.CreateLink(ref w, 0, spec);
        return End(ref w);
    }

    /// <summary>Adds setting IFF_UP.</summary>
    /// <param name="link">The link.</param>
    /// <returns>This batch.</returns>
    public RtnetlinkBatch SetLinkUp(LinkReference link) => SetLink(link, LinkChange.Up, 0, null, null, null);

    /// <summary>Adds clearing IFF_UP.</summary>
    /// <param name="link">The link.</param>
    /// <returns>This batch.</returns>
    public RtnetlinkBatch SetLinkDown(LinkReference link) => SetLink(link, LinkChange.Down, 0, null, null, null);

    /// <summary>Adds an MTU change.</summary>
    /// <param name="link">The link.</param>
    /// <param name="mtu">The MTU.</param>
    /// <returns>This batch.</returns>
    public RtnetlinkBatch SetLinkMtu(LinkReference link, int mtu) => SetLink(link, LinkChange.Mtu, (uint)mtu, null, null, null);

    /// <summary>Adds a hardware address change.</summary>
    /// <param name="link">The link.</param>
    /// <param name="mac">The address.</param>
    /// <returns>This batch.</returns>
    public RtnetlinkBatch SetLinkMac(LinkReference link, PhysicalAddress mac)
    {
        ArgumentNullException.ThrowIfNull(mac);
        return SetLink(link, LinkChange.Mac, 0, mac, null, null);
    }

    /// <summary>Adds setting how the kernel makes the link's IPv6 link-local address (set it before the link goes up).</summary>
    /// <param name="link">The link.</param>
    /// <param name="mode">The mode.</param>
    /// <returns>This batch.</returns>
    public RtnetlinkBatch SetLinkIPv6AddressGeneration(LinkReference link, IPv6AddressGenerationMode mode) =>
        SetLink(link, LinkChange.IPv6AddressGeneration, (uint)mode, null, null, null);

    /// <summary>Adds enslaving to a master (0 releases).</summary>
    /// <param name="link">The link.</param>
    /// <param name="masterIndex">The master's index, or 0.</param>
    /// <returns>This batch.</returns>
    public RtnetlinkBatch SetLinkMaster(LinkReference link, int masterIndex) =>
        SetLink(link, LinkChange.Master, (uint)masterIndex, null, null, null);

    /// <summary>Adds a move to another namespace.</summary>
    /// <param name="link">The link.</param>
    /// <param name="networkNamespace">The target namespace fd (held open until the batch is disposed).</param>
    /// <returns>This batch.</returns>
    public RtnetlinkBatch SetLinkNamespace(LinkReference link, SafeHandle networkNamespace)
    {
        ArgumentNullException.ThrowIfNull(networkNamespace);
        Hold(networkNamespace);
        return SetLink(link, LinkChange.Namespace, 0, null, null, networkNamespace);
    }

    /// <summary>Adds a link deletion.</summary>
    /// <param name="link">The link.</param>
    /// <returns>This batch.</returns>
    public RtnetlinkBatch DeleteLink(LinkReference link)
    {
        var w = Begin();
        RtnetlinkEncoder.DeleteLink(ref w, 0, link);
        return End(ref w);
    }

    /// <summary>Adds an address.</summary>
    /// <param name="spec">The address.</param>
    /// <returns>This batch.</returns>
    public RtnetlinkBatch AddAddress(AddressSpec spec)
    {
        RtnetlinkClient.ValidateSpec(spec);
        var w = Begin();
        RtnetlinkEncoder.Address(ref w, 0, spec, add: true);
        return End(ref w);
    }

    /// <summary>Adds a route.</summary>
    /// <param name="spec">The route.</param>
    /// <returns>This batch.</returns>
    public RtnetlinkBatch AddRoute(RouteSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var w = Begin();
        RtnetlinkEncoder.AddRoute(ref w, 0, spec);
        return End(ref w);
    }

    /// <summary>Adds a route beside any others of the same destination, metric and table (NLM_F_CREATE without
    /// NLM_F_EXCL: <c>ip route prepend</c>). IPv4 puts it before them (it wins while it exists); IPv6 keeps it beside them
    /// (two routes with gateways become one multipath route). EEXIST only if an identical route exists.</summary>
    /// <param name="spec">The route.</param>
    /// <returns>This batch.</returns>
    public RtnetlinkBatch PrependRoute(RouteSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var w = Begin();
        RtnetlinkEncoder.PrependRoute(ref w, 0, spec);
        return End(ref w);
    }

    /// <summary>Deletes a route.</summary>
    /// <param name="spec">The route.</param>
    /// <returns>This batch.</returns>
    public RtnetlinkBatch DeleteRoute(RouteSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var w = Begin();
        RtnetlinkEncoder.DeleteRoute(ref w, 0, spec);
        return End(ref w);
    }

    /// <summary>Adds an FDB entry.</summary>
    /// <param name="spec">The entry.</param>
    /// <returns>This batch.</returns>
    public RtnetlinkBatch AddFdbEntry(FdbEntrySpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var w = Begin();
        RtnetlinkEncoder.Fdb(ref w, 0, spec, add: true);
        return End(ref w);
    }

    /// <summary>Adds an ARP/NDP entry (replacing any).</summary>
    /// <param name="spec">The entry.</param>
    /// <returns>This batch.</returns>
    public RtnetlinkBatch ReplaceNeighbour(NeighbourSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var w = Begin();
        RtnetlinkEncoder.ReplaceNeighbour(ref w, 0, spec);
        return End(ref w);
    }

    /// <summary>Releases the namespace handles the batch holds.</summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        foreach (var handle in _handles)
        {
            handle.DangerousRelease();
        }

        _handles.Clear();
        _buffer.Dispose();
    }

    /// <summary>Copies the requests into <paramref name="destination"/>, numbering them from <paramref name="firstSequence"/>.</summary>
    internal void CopyTo(Span<byte> destination, uint firstSequence, uint portId)
    {
        Bytes.CopyTo(destination);
        for (var i = 0; i < _offsets.Count; i++)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(destination[(_offsets[i] + 8)..], unchecked(firstSequence + (uint)i));
            BinaryPrimitives.WriteUInt32LittleEndian(destination[(_offsets[i] + 12)..], portId);
        }
    }

    private RtnetlinkBatch SetLink(LinkReference link, LinkChange change, uint value, PhysicalAddress? mac, string? name, SafeHandle? ns)
    {
        var w = Begin();
        RtnetlinkEncoder.SetLink(ref w, 0, link, change, value, mac, name, ns);
        return End(ref w);
    }

    private void Hold(SafeHandle? handle)
    {
        if (handle is null)
        {
            return;
        }

        var added = false;
        handle.DangerousAddRef(ref added);
        if (added)
        {
            _handles.Add(handle);
        }
    }

    private NetlinkWriter Begin()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return new NetlinkWriter(_buffer, _length);
    }

    private RtnetlinkBatch End(ref NetlinkWriter w)
    {
        _offsets.Add(_length);
        _length = w.Length;
        return this;
    }
}

/// <summary>The outcome of each request of a batch, in order: null for success, else the kernel's error.</summary>
public sealed class RtnetlinkBatchResult
{
    internal RtnetlinkBatchResult(NetlinkException?[] errors) => Errors = errors;

    /// <summary>One entry per request: null when it succeeded.</summary>
    public IReadOnlyList<NetlinkException?> Errors { get; }

    /// <summary>True when every request succeeded.</summary>
    public bool Succeeded => Errors.All(e => e is null);

    /// <summary>Throws the first failure, if any.</summary>
    public void ThrowIfFailed()
    {
        foreach (var error in Errors)
        {
            if (error is not null)
            {
                throw error;
            }
        }
    }
}
