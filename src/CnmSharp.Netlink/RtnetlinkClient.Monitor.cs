using System.Runtime.CompilerServices;
using CnmSharp.Netlink.Internal;

namespace CnmSharp.Netlink;

public sealed partial class RtnetlinkClient
{
    /// <inheritdoc />
    public IAsyncEnumerable<NetlinkEvent> MonitorAsync(NetlinkGroups groups, CancellationToken cancellationToken = default) =>
        MonitorAsync(groups, receiveBufferSize: 0, cancellationToken);

    /// <summary>Monitor with a chosen socket receive buffer (tests use a tiny one to provoke ENOBUFS).</summary>
    internal async IAsyncEnumerable<NetlinkEvent> MonitorAsync(NetlinkGroups groups, int receiveBufferSize, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        // The subscription starts when the enumeration does, as before.
        ObjectDisposedException.ThrowIf(IsDisposed, this);
        var numbers = GroupNumbers(groups);
        var events = _monitors.ReadAsync(
            OpenMonitorSocket(numbers, receiveBufferSize),
            () => OpenMonitorSocket(numbers, receiveBufferSize),
            ParseEvents,
            new NetlinkEvent(NetlinkEventKind.Resync),
            "netlink monitor",
            () => IsDisposed,
            this,
            cancellationToken);
        await foreach (var e in events.ConfigureAwait(false))
        {
            yield return e;
        }
    }

    /// <summary>
    /// Opens a monitor socket in the client's namespace, leased for the enumeration and registered so that
    /// <see cref="Dispose"/> closes it (which ends the enumeration with <see cref="ObjectDisposedException"/>).
    /// </summary>
    private NetlinkSocket OpenMonitorSocket(int[] groups, int receiveBufferSize)
    {
        var socket = InOwnNamespace(() => NetlinkSocket.Open(groups, receiveBufferSize, _pool));
        return _monitors.Add(socket, () => IsDisposed, this);
    }

    internal static void ParseEvents(ReadOnlySpan<byte> datagram, List<NetlinkEvent> events)
    {
        foreach (var message in new NetlinkMessageEnumerator(datagram))
        {
            if (message.Type == Nl.NLMSG_OVERRUN)
            {
                events.Add(new NetlinkEvent(NetlinkEventKind.Resync));
                continue;
            }

            if (RtnetlinkParser.ParseEvent(message.Type, message.Payload) is { } e)
            {
                events.Add(e);
            }
        }
    }

    internal static int[] GroupNumbers(NetlinkGroups groups)
    {
        if (groups == NetlinkGroups.None)
        {
            throw new ArgumentException("Name at least one group to monitor.", nameof(groups));
        }

        // RTNLGRP_* from include/uapi/linux/rtnetlink.h.
        var numbers = new List<int>(6);
        if ((groups & NetlinkGroups.Link) != 0)
        {
            numbers.Add(1);
        }

        if ((groups & NetlinkGroups.Neighbour) != 0)
        {
            numbers.Add(3);
        }

        if ((groups & NetlinkGroups.Ipv4Address) != 0)
        {
            numbers.Add(5);
        }

        if ((groups & NetlinkGroups.Ipv4Route) != 0)
        {
            numbers.Add(7);
        }

        if ((groups & NetlinkGroups.Ipv6Address) != 0)
        {
            numbers.Add(9);
        }

        if ((groups & NetlinkGroups.Ipv6Route) != 0)
        {
            numbers.Add(11);
        }

        return [.. numbers];
    }
}
