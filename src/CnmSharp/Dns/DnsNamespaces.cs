using CnmSharp.Netlink;

namespace CnmSharp.Dns;

/// <summary>Creates sockets inside a sandbox's network namespace: the work runs on a thread switched into it, and the
/// sockets it creates stay there wherever they are used from.</summary>
internal interface IDnsNamespaces
{
    /// <summary>Runs <paramref name="create"/> inside the namespace at <paramref name="key"/>.</summary>
    /// <typeparam name="T">What it creates.</typeparam>
    /// <param name="key">The namespace file.</param>
    /// <param name="create">Synchronous work (socket creation and bind).</param>
    /// <param name="cancellationToken">Cancels while queued.</param>
    /// <returns>Its result.</returns>
    Task<T> RunInsideAsync<T>(string key, Func<T> create, CancellationToken cancellationToken);
}

/// <summary>The Linux implementation, on <c>CnmSharp.Netlink</c>'s namespace threads.</summary>
internal sealed class LinuxDnsNamespaces : IDnsNamespaces
{
    /// <inheritdoc />
    public async Task<T> RunInsideAsync<T>(string key, Func<T> create, CancellationToken cancellationToken)
    {
        var manager = new NetworkNamespaceManager(new NetworkNamespaceManagerOptions { RunDirectory = Path.GetDirectoryName(key) ?? "/", MakeRunDirectoryShared = false });
        using var ns = manager.Open(key);
        return await manager.RunInsideAsync(ns, create, cancellationToken).ConfigureAwait(false);
    }
}

/// <summary>For tests: sockets in the process's current namespace.</summary>
internal sealed class CurrentDnsNamespace : IDnsNamespaces
{
    /// <inheritdoc />
    public Task<T> RunInsideAsync<T>(string key, Func<T> create, CancellationToken cancellationToken) => Task.FromResult(create());
}
