using CnmSharp.Netlink;

namespace CnmSharp.Benchmarks.Common;

/// <summary>
/// A completion wait for devices that live in many namespaces (a macvlan device is in its container's namespace, not
/// in H): one rtnetlink socket per namespace, opened before the timed phase (<see cref="Open"/>, not timed); inside
/// it, <see cref="WaitGoneAsync"/> dumps the links of each namespace in process and returns when none of them has a
/// device of the kind left, dumping a namespace again (every millisecond, 120 s at most) while one remains. The same
/// for every tool; no process is spawned.
/// </summary>
internal sealed class LinkKindWaiter : IDisposable
{
    private readonly List<(string Path, NetworkNamespace Namespace, RtnetlinkClient Client)> _namespaces = [];

    private LinkKindWaiter()
    {
    }

    /// <summary>Opens a socket in each namespace (by its file): the namespaces the devices may be in.</summary>
    public static LinkKindWaiter Open(NetworkNamespaceManager manager, IEnumerable<string> namespacePaths)
    {
        var waiter = new LinkKindWaiter();
        try
        {
            foreach (var path in namespacePaths)
            {
                var ns = manager.Open(path);
                try
                {
                    waiter._namespaces.Add((path, ns, RtnetlinkClient.Open(ns.Handle)));
                }
                catch
                {
                    ns.Dispose();
                    throw;
                }
            }

            return waiter;
        }
        catch
        {
            waiter.Dispose();
            throw;
        }
    }

    /// <summary>Returns when no namespace has a link of kind <paramref name="kind"/> (120 s at most).</summary>
    public async Task WaitGoneAsync(string kind, string what)
    {
        var deadline = DateTime.UtcNow.AddSeconds(120);
        foreach (var (path, _, client) in _namespaces)
        {
            while (true)
            {
                var left = (await client.GetLinksAsync().ConfigureAwait(false)).Where(l => l.Kind == kind).ToList();
                if (left.Count == 0)
                {
                    break;
                }

                if (DateTime.UtcNow > deadline)
                {
                    throw new TimeoutException($"{what}: {kind} device(s) {string.Join(", ", left.Select(l => l.Name))} still in {path} after 120 s");
                }

                await Task.Delay(1).ConfigureAwait(false);
            }
        }
    }

    /// <summary>Number of links of kind <paramref name="kind"/> in every namespace together.</summary>
    public async Task<int> CountAsync(string kind)
    {
        var count = 0;
        foreach (var (_, _, client) in _namespaces)
        {
            count += (await client.GetLinksAsync().ConfigureAwait(false)).Count(l => l.Kind == kind);
        }

        return count;
    }

    public void Dispose()
    {
        foreach (var (_, ns, client) in _namespaces)
        {
            client.Dispose();
            ns.Dispose();
        }

        _namespaces.Clear();
    }
}
