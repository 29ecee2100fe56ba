using System.Net;

namespace CnmSharp.Dns;

/// <summary>
/// What name resolution needs to know of the controller's objects, as the core hands it over: no DNS wire detail.
/// The core builds a whole new value after every change (join, leave, sandbox delete, reload) and gives it to
/// <see cref="IEmbeddedDns.ApplyAsync"/>.
/// </summary>
/// <param name="Sandboxes">The sandboxes that get a resolver.</param>
/// <param name="Hosts">The names known on each network.</param>
internal sealed record DnsState(IReadOnlyList<DnsSandbox> Sandboxes, IReadOnlyList<DnsHost> Hosts)
{
    /// <summary>Nothing to serve.</summary>
    public static DnsState Empty { get; } = new([], []);
}

/// <summary>A sandbox that gets a resolver.</summary>
/// <param name="Id">The sandbox id.</param>
/// <param name="Key">Its network namespace (the path of its namespace file).</param>
/// <param name="NetworkIds">The networks it resolves names on: those of its endpoints that do not disable resolution.</param>
/// <param name="Upstreams">The servers other names are forwarded to (at most three are used).</param>
internal sealed record DnsSandbox(string Id, string Key, IReadOnlyList<string> NetworkIds, IReadOnlyList<IPEndPoint> Upstreams);

/// <summary>One endpoint's names on its network.</summary>
/// <param name="NetworkId">The network.</param>
/// <param name="NetworkName">The network's name (for <c>name.network</c>).</param>
/// <param name="Names">The names (endpoint name, container name, hostname, aliases), any case.</param>
/// <param name="Addresses">The endpoint's addresses.</param>
internal sealed record DnsHost(string NetworkId, string NetworkName, IReadOnlyList<string> Names, IReadOnlyList<IPAddress> Addresses);

/// <summary>
/// The resolver service as the core sees it. The core calls <see cref="ApplyAsync"/> after every change it commits and
/// once at start; the implementation opens and closes per-sandbox listeners to match and swaps its records.
/// </summary>
internal interface IEmbeddedDns : IAsyncDisposable
{
    /// <summary>Makes the served sandboxes and records match <paramref name="state"/>. A sandbox whose listener cannot be
    /// opened is logged and retried at the next call; the others are served.</summary>
    /// <param name="state">The whole state.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when the listeners of every sandbox in the state are open.</returns>
    ValueTask ApplyAsync(DnsState state, CancellationToken cancellationToken = default);
}
