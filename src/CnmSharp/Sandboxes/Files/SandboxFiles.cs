using System.Net;

namespace CnmSharp.Sandboxes.Files;

/// <summary>The file-system implementation of <see cref="ISandboxFiles"/>. Calls on one sandbox directory are serialised.</summary>
/// <remarks>
/// Built with a root directory (the controller uses <c>&lt;RunDirectory&gt;/sandboxes</c>), every sandbox directory must
/// be a direct child of it, resolved with real-path semantics and not a symbolic link; any other path is refused with
/// <see cref="CnmErrorCodes.UnownedPath"/> and left untouched. The root is created with mode 0711 and each sandbox
/// directory with 0755, whatever the umask. Without a root, only the symbolic-link rule applies to deletion.
/// </remarks>
public sealed class SandboxFiles : ISandboxFiles
{
    /// <summary>The hosts file's name in a sandbox directory.</summary>
    public const string HostsFileName = "hosts";

    /// <summary>The resolv.conf file's name in a sandbox directory.</summary>
    public const string ResolvConfFileName = "resolv.conf";

    private readonly SemaphoreSlim[] _locks = Enumerable.Range(0, 32).Select(_ => new SemaphoreSlim(1, 1)).ToArray();
    private readonly string? _root;

    /// <summary>Creates an implementation that accepts any sandbox directory (tests, tools).</summary>
    public SandboxFiles()
    {
    }

    /// <summary>Creates an implementation confined to direct children of <paramref name="rootDirectory"/>.</summary>
    /// <param name="rootDirectory">The absolute directory that holds the sandbox directories.</param>
    public SandboxFiles(string rootDirectory)
    {
        ArgumentException.ThrowIfNullOrEmpty(rootDirectory);
        if (!Path.IsPathRooted(rootDirectory))
        {
            throw new ArgumentException("The root directory must be an absolute path.", nameof(rootDirectory));
        }

        _root = Path.TrimEndingDirectorySeparator(Path.GetFullPath(rootDirectory));
    }

    /// <summary>The hosts file of a sandbox directory.</summary>
    /// <param name="sandboxDirectory">The directory.</param>
    /// <returns>The path.</returns>
    public static string HostsPath(string sandboxDirectory) => Path.Combine(sandboxDirectory, HostsFileName);

    /// <summary>The resolv.conf of a sandbox directory.</summary>
    /// <param name="sandboxDirectory">The directory.</param>
    /// <returns>The path.</returns>
    public static string ResolvConfPath(string sandboxDirectory) => Path.Combine(sandboxDirectory, ResolvConfFileName);

    /// <summary>Generates a sandbox's resolv.conf content from the options and the host's file (systemd-resolved rule
    /// applied). In host mode without DNS settings, it is the host's file as is (<see cref="SandboxFileOptions.HostResolvConfPath"/>).</summary>
    /// <param name="options">The options.</param>
    /// <param name="cancellationToken">Cancels the reads.</param>
    /// <returns>The content.</returns>
    public static async Task<string> GenerateResolvConfAsync(SandboxFileOptions options, CancellationToken cancellationToken = default) =>
        AtomicFile.Decode(await GenerateResolvConfBytesAsync(options, cancellationToken).ConfigureAwait(false));

    /// <summary>Whether a sandbox's resolv.conf is the host's file copied as is: host mode (it shares the host's
    /// loopback, so localhost nameservers work there) and no DNS settings of its own, as libnetwork does.</summary>
    /// <param name="options">The options.</param>
    /// <returns>True to copy.</returns>
    private static bool CopiesHostResolvConf(SandboxFileOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return options.UseHostNetwork && options.DnsServers.Count == 0 && options.DnsSearch.Count == 0 && options.DnsOptions.Count == 0;
    }

    private static async Task<byte[]> GenerateResolvConfBytesAsync(SandboxFileOptions options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (CopiesHostResolvConf(options))
        {
            return await AtomicFile.TryReadBytesAsync(options.HostResolvConfPath, cancellationToken).ConfigureAwait(false) ?? [];
        }

        var hostPath = await ResolvConf.ResolveHostPathAsync(
            options.HostResolvConfPath, options.SystemdResolvedConfPath, cancellationToken).ConfigureAwait(false);
        var host = await ResolvConf.ReadAsync(hostPath, cancellationToken).ConfigureAwait(false);
        var content = ResolvConf.Generate(host, options.DnsServers, options.DnsSearch, options.DnsOptions, options.EnableIPv6);
        return AtomicFile.Encode(options.UseEmbeddedDns ? ResolvConf.BuildForEmbeddedDns(ResolvConf.Parse(content)).Content : content);
    }

    /// <inheritdoc/>
    public async Task CreateAsync(string sandboxDirectory, SandboxFileOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(sandboxDirectory);
        ArgumentNullException.ThrowIfNull(options);
        await UnderGateAsync(sandboxDirectory, async () =>
        {
            if (_root is not null)
            {
                Core.OwnedDirectory.Ensure(_root, Core.OwnedDirectory.RunMode, "sandbox files directory");
            }

            sandboxDirectory = Own(sandboxDirectory) ?? sandboxDirectory;
            if (_root is null)
            {
                Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(sandboxDirectory))!);
            }

            Core.OwnedDirectory.CreateOne(sandboxDirectory, Core.OwnedDirectory.SandboxFilesMode);

            var hostsPath = HostsPath(sandboxDirectory);
            if (!File.Exists(hostsPath))
            {
                var hostCopy = options.UseHostNetwork && options.ExtraHosts.Count == 0
                    ? await AtomicFile.TryReadBytesAsync(options.HostHostsPath, cancellationToken).ConfigureAwait(false)
                    : null;
                if (hostCopy is not null)
                {
                    await AtomicFile.WriteAsync(hostsPath, hostCopy, cancellationToken).ConfigureAwait(false);
                }
                else
                {
                    await HostsFile.WriteAsync(hostsPath, options.ExtraHosts, cancellationToken).ConfigureAwait(false);
                }
            }

            var resolvPath = ResolvConfPath(sandboxDirectory);
            if (!File.Exists(resolvPath))
            {
                var content = await GenerateResolvConfBytesAsync(options, cancellationToken).ConfigureAwait(false);
                await ResolvConf.WriteBytesAsync(resolvPath, content, cancellationToken).ConfigureAwait(false);
            }

            return true;
        },
        cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public async Task AddHostEntriesAsync(string sandboxDirectory, IEnumerable<HostEntry> entries, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(sandboxDirectory);
        ArgumentNullException.ThrowIfNull(entries);
        await UnderGateAsync(sandboxDirectory, async () =>
        {
            await HostsFile.AddEntriesAsync(HostsPath(Own(sandboxDirectory) ?? sandboxDirectory), entries, cancellationToken).ConfigureAwait(false);
            return true;
        },
        cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public async Task RemoveHostEntriesAsync(string sandboxDirectory, IEnumerable<IPAddress> addresses, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(sandboxDirectory);
        ArgumentNullException.ThrowIfNull(addresses);
        await UnderGateAsync(sandboxDirectory, async () =>
        {
            await HostsFile.RemoveEntriesAsync(HostsPath(Own(sandboxDirectory) ?? sandboxDirectory), addresses, cancellationToken).ConfigureAwait(false);
            return true;
        },
        cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public async Task<ResolvConfUpdateResult> UpdateResolvConfAsync(
        string sandboxDirectory, SandboxFileOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(sandboxDirectory);
        ArgumentNullException.ThrowIfNull(options);
        return await UnderGateAsync(sandboxDirectory, async () =>
        {
            var content = await GenerateResolvConfBytesAsync(options, cancellationToken).ConfigureAwait(false);
            return await ResolvConf.UpdateBytesAsync(ResolvConfPath(Own(sandboxDirectory) ?? sandboxDirectory), content, cancellationToken).ConfigureAwait(false);
        },
        cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    /// <exception cref="CnmInvalidArgumentException">The directory is outside the root or is a symbolic link (code
    /// <see cref="CnmErrorCodes.UnownedPath"/>); nothing is deleted.</exception>
    public async Task DeleteAsync(string sandboxDirectory, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(sandboxDirectory);
        await UnderGateAsync(sandboxDirectory, () =>
        {
            string target;
            if (_root is null)
            {
                if (Core.OwnedDirectory.Stat(sandboxDirectory, followSymlinks: false) is { IsSymlink: true })
                {
                    throw new CnmInvalidArgumentException(CnmErrorCodes.UnownedPath, $"sandbox files directory {sandboxDirectory}", "not the controller's own path, left untouched: it is a symbolic link, which is never followed");
                }

                target = sandboxDirectory;
            }
            else if (Own(sandboxDirectory) is { } owned)
            {
                target = owned;
            }
            else
            {
                return Task.FromResult(true);
            }

            try
            {
                Directory.Delete(target, recursive: true);
            }
            catch (DirectoryNotFoundException)
            {
            }

            return Task.FromResult(true);
        },
        cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The path to act on: with a root, the directory's real path directly inside it (null when the root does
    /// not exist); without one, the directory as given.</summary>
    /// <exception cref="CnmInvalidArgumentException">It is outside the root or a symbolic link (<see cref="CnmErrorCodes.UnownedPath"/>).</exception>
    private string? Own(string sandboxDirectory) =>
        _root is null ? sandboxDirectory : Core.OwnedDirectory.ResolveChild(sandboxDirectory, _root, "sandbox files directory");

    /// <summary>Runs <paramref name="body"/> holding the gate of the sandbox directory (calls on one directory are serialised).</summary>
    private async Task<T> UnderGateAsync<T>(string sandboxDirectory, Func<Task<T>> body, CancellationToken cancellationToken)
    {
        var gate = Gate(sandboxDirectory);
        await gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return await body().ConfigureAwait(false);
        }
        finally
        {
            gate.Release();
        }
    }

    private SemaphoreSlim Gate(string sandboxDirectory)
    {
        var key = Path.GetFullPath(sandboxDirectory).TrimEnd(Path.DirectorySeparatorChar);
        return _locks[(int)((uint)StringComparer.Ordinal.GetHashCode(key) % (uint)_locks.Length)];
    }
}
