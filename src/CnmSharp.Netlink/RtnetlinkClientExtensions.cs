using System.Net;

namespace CnmSharp.Netlink;

/// <summary>Conveniences over <see cref="IRtnetlinkClient"/> (kept out of the interface so mocks stay small).</summary>
public static class RtnetlinkClientExtensions
{
    /// <summary>Adds <paramref name="address"/>/<paramref name="prefixLength"/> to a link.</summary>
    /// <param name="client">The client.</param>
    /// <param name="linkIndex">The interface index.</param>
    /// <param name="address">The address, host bits kept (e.g. 172.18.0.2).</param>
    /// <param name="prefixLength">The prefix length (e.g. 16).</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>A task that completes when the kernel acknowledged.</returns>
    public static ValueTask AddAddressAsync(this IRtnetlinkClient client, int linkIndex, IPAddress address, int prefixLength, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(client);
        return client.AddAddressAsync(new AddressSpec(linkIndex, address, prefixLength), cancellationToken);
    }

    /// <summary>Removes <paramref name="address"/>/<paramref name="prefixLength"/> from a link.</summary>
    /// <param name="client">The client.</param>
    /// <param name="linkIndex">The interface index.</param>
    /// <param name="address">The address.</param>
    /// <param name="prefixLength">The prefix length.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>A task that completes when the kernel acknowledged.</returns>
    public static ValueTask DeleteAddressAsync(this IRtnetlinkClient client, int linkIndex, IPAddress address, int prefixLength, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(client);
        return client.DeleteAddressAsync(new AddressSpec(linkIndex, address, prefixLength), cancellationToken);
    }

    /// <summary>Adds (or replaces) the default route via <paramref name="gateway"/>.</summary>
    /// <param name="client">The client.</param>
    /// <param name="gateway">The gateway; its family picks 0.0.0.0/0 or ::/0.</param>
    /// <param name="outputIndex">The output interface, or null.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>A task that completes when the kernel acknowledged.</returns>
    public static ValueTask ReplaceDefaultRouteAsync(this IRtnetlinkClient client, IPAddress gateway, int? outputIndex = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(gateway);
        var any = gateway.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? IPAddress.Any : IPAddress.IPv6Any;
        return client.ReplaceRouteAsync(new RouteSpec(new IPNetwork(any, 0)) { Gateway = gateway, OutputIndex = outputIndex }, cancellationToken);
    }

    /// <summary>Looks a link up by name and throws when it is missing.</summary>
    /// <param name="client">The client.</param>
    /// <param name="name">The interface name.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>The link.</returns>
    /// <exception cref="NetlinkException">ENODEV when there is no such link.</exception>
    public static async ValueTask<LinkInfo> GetRequiredLinkAsync(this IRtnetlinkClient client, string name, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(client);
        return await client.GetLinkAsync(name, cancellationToken).ConfigureAwait(false)
            ?? throw new NetlinkException(Errnos.ENODEV, $"no link named '{name}'", "get link");
    }
}
