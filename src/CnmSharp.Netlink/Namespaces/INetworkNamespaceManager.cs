namespace CnmSharp.Netlink;

/// <summary>
/// Creates, opens and deletes network namespaces, runs code inside them and reads or writes their sysctls.
/// Named namespaces are files under <see cref="RunDirectory"/> with the namespace bind-mounted onto them, compatible with
/// <c>ip netns</c> when the run directory is <c>/var/run/netns</c>.
/// </summary>
public interface INetworkNamespaceManager
{
    /// <summary>The directory holding named namespaces (default <c>/var/run/netns</c>).</summary>
    string RunDirectory { get; }

    /// <summary>The path of the namespace file for <paramref name="name"/>; validates the name.</summary>
    /// <param name="name">A namespace name: not empty, no '/', not '.' or '..', at most 255 bytes.</param>
    /// <returns><c>RunDirectory/name</c>.</returns>
    string GetPath(string name);

    /// <summary>Creates a new, empty network namespace and pins it as <c>RunDirectory/name</c>.</summary>
    /// <param name="name">The namespace name.</param>
    /// <param name="cancellationToken">Cancels before the namespace is made; once begun the creation completes.</param>
    /// <returns>The new namespace, open.</returns>
    /// <exception cref="NamespaceAlreadyExistsException">A file of that name exists already.</exception>
    /// <exception cref="NamespaceException">A system call failed.</exception>
    Task<NetworkNamespace> CreateAsync(string name, CancellationToken cancellationToken = default);

    /// <summary>Deletes the named namespace: lazily unmounts (<c>MNT_DETACH</c>) and removes its file.</summary>
    /// <param name="name">The namespace name.</param>
    /// <param name="cancellationToken">Cancels before the deletion starts.</param>
    /// <returns>A task completed when the file is gone; the kernel frees the namespace once nothing holds it.</returns>
    /// <exception cref="NamespaceNotFoundException">No such namespace file.</exception>
    Task DeleteAsync(string name, CancellationToken cancellationToken = default);

    /// <summary>Whether <c>RunDirectory/name</c> exists and has a network namespace mounted on it.</summary>
    /// <param name="name">The namespace name.</param>
    /// <returns>True when the named namespace exists.</returns>
    bool Exists(string name);

    /// <summary>Opens the named namespace under <see cref="RunDirectory"/>.</summary>
    /// <param name="name">The namespace name.</param>
    /// <returns>The namespace, open.</returns>
    /// <exception cref="NamespaceNotFoundException">No such namespace.</exception>
    NetworkNamespace OpenByName(string name);

    /// <summary>Opens the network namespace file at <paramref name="path"/> (a bind mount or <c>/proc/PID/ns/net</c>).</summary>
    /// <param name="path">An absolute path.</param>
    /// <returns>The namespace, open.</returns>
    /// <exception cref="NamespaceNotFoundException">The file does not exist.</exception>
    /// <exception cref="NamespaceException">The file is not a network namespace.</exception>
    NetworkNamespace Open(string path);

    /// <summary>Opens the network namespace of process <paramref name="pid"/>.</summary>
    /// <param name="pid">A process id.</param>
    /// <returns>The namespace, open.</returns>
    /// <exception cref="NamespaceNotFoundException">No such process.</exception>
    NetworkNamespace OpenForProcess(int pid);

    /// <summary>Opens the network namespace of the calling thread.</summary>
    /// <returns>The namespace, open.</returns>
    NetworkNamespace OpenCurrent();

    /// <summary>
    /// Runs <paramref name="action"/> on a dedicated thread switched into <paramref name="networkNamespace"/>, then switches
    /// the thread back (the process terminates if it cannot). Sockets created by the action stay in the namespace.
    /// </summary>
    /// <typeparam name="T">The result type.</typeparam>
    /// <param name="networkNamespace">The namespace to run in.</param>
    /// <param name="action">Synchronous work; must not leave the thread in another namespace on purpose.</param>
    /// <param name="cancellationToken">Cancels while the work is still queued.</param>
    /// <returns>The action's result.</returns>
    Task<T> RunInsideAsync<T>(NetworkNamespace networkNamespace, Func<T> action, CancellationToken cancellationToken = default);

    /// <summary>Reads a sysctl of the namespace, e.g. <c>net.ipv4.ip_forward</c> (only the per-namespace <c>net</c> tree).</summary>
    /// <param name="networkNamespace">The namespace.</param>
    /// <param name="key">Dotted (<c>net.ipv4.ip_forward</c>) or slashed (<c>net/ipv4/conf/eth0.10/forwarding</c>) key.</param>
    /// <param name="cancellationToken">Cancels while queued.</param>
    /// <returns>The value without the trailing newline.</returns>
    Task<string> ReadSysctlAsync(NetworkNamespace networkNamespace, string key, CancellationToken cancellationToken = default);

    /// <summary>Writes a sysctl of the namespace (only the per-namespace <c>net</c> tree).</summary>
    /// <param name="networkNamespace">The namespace.</param>
    /// <param name="key">Dotted or slashed key.</param>
    /// <param name="value">The value to write.</param>
    /// <param name="cancellationToken">Cancels while queued.</param>
    /// <returns>A task completed when written.</returns>
    Task WriteSysctlAsync(NetworkNamespace networkNamespace, string key, string value, CancellationToken cancellationToken = default);
}
