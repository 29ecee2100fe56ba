using System.Net.Sockets;
using CnmSharp.Netlink.Internal;

namespace CnmSharp.Netlink;

public sealed partial class RtnetlinkClient
{
    private const ushort CreateExclusive = Nl.NLM_F_REQUEST | Nl.NLM_F_ACK | Nl.NLM_F_CREATE | Nl.NLM_F_EXCL;
    private const ushort CreateReplace = Nl.NLM_F_REQUEST | Nl.NLM_F_ACK | Nl.NLM_F_CREATE | Nl.NLM_F_REPLACE;
    private const ushort Acked = Nl.NLM_F_REQUEST | Nl.NLM_F_ACK;

    private static readonly MessageParser<RouteInfo> s_parseRoute = static (type, payload, results) =>
    {
        if (type == Rt.RTM_NEWROUTE)
        {
            var header = new RtMsg(payload);
            if (header.Family is Interop.Libc.AF_INET or Interop.Libc.AF_INET6)
            {
                results.Add(RtnetlinkParser.ParseRoute(payload));
            }
        }
    };

    /// <inheritdoc />
    public ValueTask AddRouteAsync(RouteSpec spec, CancellationToken cancellationToken = default)
    {
        ValidateSpec(spec);
        return ExecuteAsync(new RouteRequest(spec, Rt.RTM_NEWROUTE, CreateExclusive), "add route", cancellationToken);
    }

    /// <inheritdoc />
    public ValueTask ReplaceRouteAsync(RouteSpec spec, CancellationToken cancellationToken = default)
    {
        ValidateSpec(spec);
        return ExecuteAsync(new RouteRequest(spec, Rt.RTM_NEWROUTE, CreateReplace), "replace route", cancellationToken);
    }

    /// <inheritdoc />
    public ValueTask DeleteRouteAsync(RouteSpec spec, CancellationToken cancellationToken = default)
    {
        ValidateSpec(spec);
        return ExecuteAsync(new RouteRequest(spec, Rt.RTM_DELROUTE, Acked), "delete route", cancellationToken);
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<RouteInfo>> GetRoutesAsync(AddressFamily family = AddressFamily.Unspecified, CancellationToken cancellationToken = default)
    {
        var results = new List<RouteInfo>();
        await QueryAsync(new DumpRoutesRequest(family), s_parseRoute, results, "dump routes", cancellationToken).ConfigureAwait(false);
        return results;
    }

    internal static void ValidateSpec(RouteSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var family = spec.Destination.BaseAddress.AddressFamily;
        if (spec.Gateway is { } gateway && gateway.AddressFamily != family)
        {
            throw new ArgumentException("The gateway's family differs from the destination's.", nameof(spec));
        }
    }
}
