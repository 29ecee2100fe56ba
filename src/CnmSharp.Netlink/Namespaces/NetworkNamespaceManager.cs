using System.Runtime.InteropServices;
using System.Text;
using CnmSharp.Netlink.Interop;

namespace CnmSharp.Netlink;

/// <summary>
/// The kernel implementation of <see cref="INetworkNamespaceManager"/>: <c>unshare</c>, bind mounts and <c>setns</c> on
/// dedicated threads, no external processes. Thread-safe.
/// </summary>
public sealed class NetworkNamespaceManager : INetworkNamespaceManager
{
    private const string ThreadSelfNet = "/proc/thread-self/ns/net";

    private readonly bool _makeShared;
    private readonly Lock _runDirectoryLock = new();
    private bool _runDirectoryReady;

    /// <summary>Creates a manager using <c>/var/run/netns</c>.</summary>
    public NetworkNamespaceManager()
        : this(new NetworkNamespaceManagerOptions())
    {
    }

    /// <summary>Creates a manager using <paramref name="runDirectory"/>, made a shared mount like <c>ip netns</c> does.</summary>
    /// <param name="runDirectory">An absolute directory path.</param>
    public NetworkNamespaceManager(string runDirectory)
        : this(new NetworkNamespaceManagerOptions { RunDirectory = runDirectory })
    {
    }

    /// <summary>Creates a manager with explicit options.</summary>
    /// <param name="options">The options.</param>
    public NetworkNamespaceManager(NetworkNamespaceManagerOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentException.ThrowIfNullOrEmpty(options.RunDirectory);
        if (!System.IO.Path.IsPathRooted(options.RunDirectory))
        {
            throw new ArgumentException("The run directory must be an absolute path.", nameof(options));
        }

        RunDirectory = System.IO.Path.TrimEndingDirectorySeparator(System.IO.Path.GetFullPath(options.RunDirectory));
        _makeShared = options.MakeRunDirectoryShared;
    }

    /// <inheritdoc />
    public string RunDirectory { get; }

    /// <summary>Throws <see cref="ArgumentException"/> unless <paramref name="name"/> is a valid namespace name.</summary>
    /// <param name="name">The name to check.</param>
    public static void ValidateName(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (!IsValidName(name))
        {
            throw new ArgumentException(
                $"Invalid namespace name '{name}': it must be 1-255 bytes, contain no '/' or NUL, and not be '.' or '..'.",
                nameof(name));
        }
    }

    /// <summary>Whether <paramref name="name"/> is a valid namespace name.</summary>
    /// <param name="name">The name to check.</param>
    /// <returns>True when valid.</returns>
    public static bool IsValidName(string? name) =>
        !string.IsNullOrEmpty(name)
        && name is not "." and not ".."
        && !name.Contains('/', StringComparison.Ordinal)
        && !name.Contains('\0', StringComparison.Ordinal)
        && Encoding.UTF8.GetByteCount(name) <= 255;

    /// <inheritdoc />
    public string GetPath(string name)
    {
        ValidateName(name);
        return RunDirectory + "/" + name;
    }

    /// <inheritdoc />
    public Task<NetworkNamespace> CreateAsync(string name, CancellationToken cancellationToken = default)
    {
        var path = GetPath(name);
        if (cancellationToken.IsCancellationRequested)
        {
            return Task.FromCanceled<NetworkNamespace>(cancellationToken);
        }

        PrepareRunDirectory();

        // Claim the name first: O_EXCL makes a duplicate fail before any namespace exists.
        using (var file = NamespaceInterop.TryOpen(path, NamespaceInterop.O_RDONLY | NamespaceInterop.O_CREAT | NamespaceInterop.O_EXCL, out var errno))
        {
            if (file is null)
            {
                throw errno == NamespaceInterop.EEXIST
                    ? new NamespaceAlreadyExistsException("create", errno, path, $"Network namespace '{name}' already exists ('{path}').")
                    : NamespaceException.FromErrno("create", errno, path);
            }
        }

        return CreateCoreAsync(name, path);
    }

    private static async Task<NetworkNamespace> CreateCoreAsync(string name, string path)
    {
        try
        {
            // Not cancellable once the name is claimed: a half-made namespace would be worse.
            return await NamespaceExecutor.RunAsync(
                () =>
                {
                    if (NamespaceInterop.Unshare(NamespaceInterop.CLONE_NEWNET) != 0)
                    {
                        throw NamespaceException.FromLastError("unshare(CLONE_NEWNET)", null);
                    }

                    if (NamespaceInterop.Mount(ThreadSelfNet, path, "none", NamespaceInterop.MS_BIND, 0) != 0)
                    {
                        throw NamespaceException.FromLastError("mount(MS_BIND)", path);
                    }

                    // The executor returns this thread to the process's namespace (or fails fast).
                    return NetworkNamespace.OpenPath(path, name);
                },
                CancellationToken.None).ConfigureAwait(false);
        }
        catch
        {
            _ = NamespaceInterop.Umount2(path, NamespaceInterop.MNT_DETACH);
            _ = NamespaceInterop.Unlink(path);
            throw;
        }
    }

    /// <inheritdoc />
    public Task DeleteAsync(string name, CancellationToken cancellationToken = default)
    {
        var path = GetPath(name);
        if (cancellationToken.IsCancellationRequested)
        {
            return Task.FromCanceled(cancellationToken);
        }

        try
        {
            Delete(name, path);
            return Task.CompletedTask;
        }
        catch (NamespaceException ex)
        {
            return Task.FromException(ex);
        }
    }

    private static void Delete(string name, string path)
    {
        // Like `ip netns delete`: a lazy unmount (EINVAL = not mounted is tolerated), then the file.
        if (NamespaceInterop.Umount2(path, NamespaceInterop.MNT_DETACH) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            if (errno == NamespaceInterop.ENOENT)
            {
                throw new NamespaceNotFoundException("umount2", errno, path, $"Network namespace '{name}' does not exist ('{path}').");
            }

            if (errno != NamespaceInterop.EINVAL)
            {
                throw new NamespaceException("umount2", errno, path);
            }
        }

        if (NamespaceInterop.Unlink(path) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            throw errno == NamespaceInterop.ENOENT
                ? new NamespaceNotFoundException("unlink", errno, path, $"Network namespace '{name}' does not exist ('{path}').")
                : new NamespaceException("unlink", errno, path);
        }
    }

    /// <inheritdoc />
    public bool Exists(string name) => NetworkNamespace.IsNetworkNamespaceFile(GetPath(name));

    /// <inheritdoc />
    public NetworkNamespace OpenByName(string name) => NetworkNamespace.OpenPath(GetPath(name), name);

    /// <inheritdoc />
    public NetworkNamespace Open(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        return NetworkNamespace.OpenPath(path, null);
    }

    /// <inheritdoc />
    public NetworkNamespace OpenForProcess(int pid)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(pid);
        return NetworkNamespace.OpenPath($"/proc/{pid}/ns/net", null);
    }

    /// <inheritdoc />
    public NetworkNamespace OpenCurrent() => NetworkNamespace.OpenPath(ThreadSelfNet, null);

    /// <inheritdoc />
    public Task<T> RunInsideAsync<T>(NetworkNamespace networkNamespace, Func<T> action, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(networkNamespace);
        ArgumentNullException.ThrowIfNull(action);
        return NamespaceExecutor.RunInAsync(networkNamespace.Handle, action, cancellationToken);
    }

    /// <inheritdoc />
    public Task<string> ReadSysctlAsync(NetworkNamespace networkNamespace, string key, CancellationToken cancellationToken = default)
    {
        var path = Sysctl.GetPath(key);
        return RunInsideAsync(networkNamespace, () => Sysctl.Read(path), cancellationToken);
    }

    /// <inheritdoc />
    public Task WriteSysctlAsync(NetworkNamespace networkNamespace, string key, string value, CancellationToken cancellationToken = default)
    {
        var path = Sysctl.GetPath(key);
        ArgumentNullException.ThrowIfNull(value);
        if (value.Contains('\n', StringComparison.Ordinal) || value.Contains('\0', StringComparison.Ordinal))
        {
            throw new ArgumentException("A sysctl value must be one line.", nameof(value));
        }

        return RunInsideAsync(networkNamespace, () => Sysctl.Write(path, value), cancellationToken);
    }

    private void PrepareRunDirectory()
    {
        lock (_runDirectoryLock)
        {
            if (_runDirectoryReady)
            {
                return;
            }

            try
            {
                // Mode 0777 minus the umask, i.e. 0755 normally, as `ip netns` makes it.
                Directory.CreateDirectory(RunDirectory);
            }
            catch (IOException ex)
            {
                throw new NamespaceException($"Cannot create the namespace run directory '{RunDirectory}': {ex.Message}", ex);
            }
            catch (UnauthorizedAccessException ex)
            {
                throw new NamespaceException($"Cannot create the namespace run directory '{RunDirectory}': {ex.Message}", ex);
            }

            if (_makeShared)
            {
                MakeShared(RunDirectory);
            }

            _runDirectoryReady = true;
        }
    }

    /// <summary>What <c>ip netns add</c> does: make the directory a shared mount, bind-mounting it onto itself if needed.</summary>
    private static void MakeShared(string directory)
    {
        var boundOntoItself = false;
        while (NamespaceInterop.Mount("none", directory, "none", NamespaceInterop.MS_SHARED | NamespaceInterop.MS_REC, 0) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            if (errno != NamespaceInterop.EINVAL || boundOntoItself)
            {
                throw new NamespaceException("mount(MS_SHARED|MS_REC)", errno, directory);
            }

            // Not a mount point yet: make it one.
            if (NamespaceInterop.Mount(directory, directory, "none", NamespaceInterop.MS_BIND | NamespaceInterop.MS_REC, 0) != 0)
            {
                throw NamespaceException.FromLastError("mount(MS_BIND|MS_REC)", directory);
            }

            boundOntoItself = true;
        }
    }
}
