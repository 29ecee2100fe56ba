namespace CnmSharp.Netlink;

/// <summary>Settings of a <see cref="NetworkNamespaceManager"/>.</summary>
public sealed class NetworkNamespaceManagerOptions
{
    /// <summary>The default run directory, shared with <c>ip netns</c>.</summary>
    public const string DefaultRunDirectory = "/var/run/netns";

    /// <summary>The directory holding named namespaces. Created (mode 0755) when missing.</summary>
    public string RunDirectory { get; set; } = DefaultRunDirectory;

    /// <summary>
    /// Make the run directory a shared mount point before the first creation, as <c>ip netns add</c> does
    /// (<c>MS_SHARED|MS_REC</c>, bind-mounting the directory onto itself first when it is not a mount point), so that
    /// namespace mounts propagate to other mount namespaces and unmounts free namespaces everywhere. Default true.
    /// The mount of the directory onto itself stays after the namespaces are deleted, as with <c>ip netns</c>.
    /// </summary>
    public bool MakeRunDirectoryShared { get; set; } = true;
}
