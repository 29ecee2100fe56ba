using System.Net.NetworkInformation;
using System.Runtime.InteropServices;
using CnmSharp.Netlink.Internal;

namespace CnmSharp.Netlink;

public sealed partial class RtnetlinkClient
{
    private static readonly MessageParser<LinkInfo> s_parseLink = static (type, payload, results) =>
    {
        if (type == Rt.RTM_NEWLINK)
        {
            results.Add(RtnetlinkParser.ParseLinkInfo(payload));
        }
    };

    /// <inheritdoc />
    public ValueTask CreateLinkAsync(LinkSpec spec, CancellationToken cancellationToken = default)
    {
        ValidateSpec(spec);
        return ExecuteAsync(new CreateLinkRequest(spec), "create link", cancellationToken);
    }

    /// <inheritdoc />
    public ValueTask SetLinkUpAsync(int index, CancellationToken cancellationToken = default) =>
        SetLinkAsync(index, LinkChange.Up, 0, null, null, null, "set link up", cancellationToken);

    /// <inheritdoc />
    public ValueTask SetLinkDownAsync(int index, CancellationToken cancellationToken = default) =>
        SetLinkAsync(index, LinkChange.Down, 0, null, null, null, "set link down", cancellationToken);

    /// <inheritdoc />
    public ValueTask SetLinkMtuAsync(int index, int mtu, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(mtu);
        return SetLinkAsync(index, LinkChange.Mtu, (uint)mtu, null, null, null, "set link mtu", cancellationToken);
    }

    /// <inheritdoc />
    public ValueTask SetLinkIPv6AddressGenerationAsync(int index, IPv6AddressGenerationMode mode, CancellationToken cancellationToken = default)
    {
        if (!Enum.IsDefined(mode))
        {
            throw new ArgumentOutOfRangeException(nameof(mode), mode, "unknown IPv6 address generation mode");
        }

        return SetLinkAsync(index, LinkChange.IPv6AddressGeneration, (uint)mode, null, null, null, "set link addrgenmode", cancellationToken);
    }

    /// <inheritdoc />
    public ValueTask SetLinkMacAsync(int index, PhysicalAddress mac, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(mac);
        return SetLinkAsync(index, LinkChange.Mac, 0, mac, null, null, "set link address", cancellationToken);
    }

    /// <inheritdoc />
    public ValueTask SetLinkNameAsync(int index, string name, CancellationToken cancellationToken = default)
    {
        LinkNames.Validate(name);
        return SetLinkAsync(index, LinkChange.Name, 0, null, name, null, "rename link", cancellationToken);
    }

    /// <inheritdoc />
    public ValueTask SetLinkMasterAsync(int index, int masterIndex, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(masterIndex);
        return SetLinkAsync(index, LinkChange.Master, (uint)masterIndex, null, null, null, "set link master", cancellationToken);
    }

    /// <inheritdoc />
    public ValueTask SetLinkNamespaceAsync(int index, SafeHandle networkNamespace, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(networkNamespace);
        return SetLinkAsync(index, LinkChange.Namespace, 0, null, null, networkNamespace, "move link to namespace", cancellationToken);
    }

    /// <inheritdoc />
    public ValueTask SetBridgePortHairpinAsync(int index, bool enabled, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(index);
        return ExecuteAsync(new HairpinRequest(index, enabled), "set bridge port hairpin", cancellationToken);
    }

    /// <inheritdoc />
    public ValueTask DeleteLinkAsync(int index, CancellationToken cancellationToken = default) =>
        ExecuteAsync(new DeleteLinkRequest(LinkReference.FromIndex(index)), "delete link", cancellationToken);

    /// <inheritdoc />
    public ValueTask DeleteLinkAsync(string name, CancellationToken cancellationToken = default) =>
        ExecuteAsync(new DeleteLinkRequest(LinkReference.FromName(name)), "delete link", cancellationToken);

    /// <inheritdoc />
    public ValueTask<LinkInfo?> GetLinkAsync(string name, CancellationToken cancellationToken = default) =>
        GetLinkAsync(LinkReference.FromName(name), cancellationToken);

    /// <inheritdoc />
    public ValueTask<LinkInfo?> GetLinkAsync(int index, CancellationToken cancellationToken = default) =>
        GetLinkAsync(LinkReference.FromIndex(index), cancellationToken);

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<LinkInfo>> GetLinksAsync(CancellationToken cancellationToken = default)
    {
        var results = new List<LinkInfo>();
        await QueryAsync(default(DumpLinksRequest), s_parseLink, results, "dump links", cancellationToken).ConfigureAwait(false);
        return results;
    }

    private async ValueTask<LinkInfo?> GetLinkAsync(LinkReference link, CancellationToken cancellationToken)
    {
        var results = new List<LinkInfo>(1);
        try
        {
            await QueryAsync(new GetLinkRequest(link), s_parseLink, results, "get link", cancellationToken).ConfigureAwait(false);
        }
        catch (NetlinkException e) when (e.Errno == Errnos.ENODEV)
        {
            return null;
        }

        return results.Count > 0 ? results[0] : null;
    }

    private ValueTask SetLinkAsync(int index, LinkChange change, uint value, PhysicalAddress? mac, string? name, SafeHandle? ns, string operation, CancellationToken cancellationToken) =>
        ExecuteAsync(new SetLinkRequest(LinkReference.FromIndex(index), change, value, mac, name, ns), operation, cancellationToken);
}
