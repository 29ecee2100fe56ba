using System.Net.Sockets;
using CnmSharp.Netlink.Internal;

namespace CnmSharp.Netlink;

public sealed partial class RtnetlinkClient
{
    private static readonly MessageParser<AddressInfo> s_parseAddress = static (type, payload, results) =>
    {
        if (type == Rt.RTM_NEWADDR)
        {
            results.Add(RtnetlinkParser.ParseAddress(payload));
        }
    };

    /// <inheritdoc />
    public ValueTask AddAddressAsync(AddressSpec spec, CancellationToken cancellationToken = default)
    {
        ValidateSpec(spec);
        return ExecuteAsync(new AddressRequest(spec, add: true), "add address", cancellationToken);
    }

    /// <inheritdoc />
    public ValueTask DeleteAddressAsync(AddressSpec spec, CancellationToken cancellationToken = default)
    {
        ValidateSpec(spec);
        return ExecuteAsync(new AddressRequest(spec, add: false), "delete address", cancellationToken);
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<AddressInfo>> GetAddressesAsync(int? linkIndex = null, AddressFamily family = AddressFamily.Unspecified, CancellationToken cancellationToken = default)
    {
        var results = new List<AddressInfo>();
        await QueryAsync(new DumpAddressesRequest(family), s_parseAddress, results, "dump addresses", cancellationToken).ConfigureAwait(false);
        if (linkIndex is { } index)
        {
            results.RemoveAll(a => a.LinkIndex != index);
        }

        return results;
    }
}
