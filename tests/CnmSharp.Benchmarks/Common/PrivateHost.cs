using System.Security.Cryptography;
using CnmSharp.Netlink;

namespace CnmSharp.Benchmarks.Common;

/// <summary>
/// A private run directory under /tmp (unique tag) holding a private host namespace H, and the namespace manager for
/// every namespace a pass makes. Nothing is made in the root namespace. <see cref="DisposeAsync"/> deletes every
/// namespace file in the directory (all were made by this pass, H included) and then the whole directory.
/// </summary>
internal sealed class PrivateHost : IAsyncDisposable
{
    private PrivateHost(string tag, NetworkNamespaceManager manager, NetworkNamespace host)
    {
        Tag = tag;
        Manager = manager;
        Host = host;
    }

    /// <summary>The unique tag of this pass (name of the directory and prefix of its namespaces).</summary>
    public string Tag { get; }

    /// <summary>Makes and deletes namespaces in <see cref="Directory"/>.</summary>
    public NetworkNamespaceManager Manager { get; }

    /// <summary>The private host namespace H.</summary>
    public NetworkNamespace Host { get; }

    /// <summary>The namespace file of H.</summary>
    public string HostPath => Host.Path!;

    /// <summary>The private directory (namespace files; tools may put scratch directories under it).</summary>
    public string Directory => Manager.RunDirectory;

    /// <summary>Creates the directory and H (loopback up).</summary>
    public static async Task<PrivateHost> CreateAsync(string prefix = "cnmb")
    {
        var tag = prefix + "-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4));
        var manager = new NetworkNamespaceManager(new NetworkNamespaceManagerOptions { RunDirectory = Path.Combine(Path.GetTempPath(), tag), MakeRunDirectoryShared = false });
        var host = await manager.CreateAsync(tag + "-host").ConfigureAwait(false);
        var result = new PrivateHost(tag, manager, host);
        try
        {
            await Exec.IpAsync(result.HostPath, "link", "set", "lo", "up").ConfigureAwait(false);
        }
        catch
        {
            await result.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        return result;
    }

    /// <summary>Number of links in H, by an ip process.</summary>
    public async Task<int> LinkCountAsync()
    {
        var output = await Exec.IpAsync(HostPath, "-o", "link", "show").ConfigureAwait(false);
        return output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length;
    }

    /// <summary>Number of veth devices in H, by an ip process.</summary>
    public async Task<int> VethCountAsync()
    {
        var output = await Exec.IpAsync(HostPath, "-o", "link", "show", "type", "veth").ConfigureAwait(false);
        return output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length;
    }

    /// <summary>Mount points (from /proc/self/mountinfo) at or under <paramref name="directory"/>.</summary>
    public static IReadOnlyList<string> MountsUnder(string directory)
    {
        var prefix = directory.TrimEnd('/') + "/";
        return [.. File.ReadLines("/proc/self/mountinfo")
            .Select(line => line.Split(' ')[4].Replace("\\040", " ", StringComparison.Ordinal))
            .Where(m => m.StartsWith(prefix, StringComparison.Ordinal) || m == directory)];
    }

    public async ValueTask DisposeAsync()
    {
        Host.Dispose();
        if (!System.IO.Directory.Exists(Directory))
        {
            return;
        }

        // The directory is private to this pass: every namespace file in it was made by this pass.
        foreach (var file in System.IO.Directory.EnumerateFiles(Directory))
        {
            var name = Path.GetFileName(file);
            try
            {
                if (NetworkNamespaceManager.IsValidName(name))
                {
                    await Manager.DeleteAsync(name).ConfigureAwait(false);
                }
            }
            catch (NamespaceException)
            {
                File.Delete(file);
            }
        }

        // Namespace files a tool left deeper in the directory (e.g. a controller's run directory) are unmounted first.
        foreach (var mountPoint in MountsUnder(Directory).OrderByDescending(m => m.Length))
        {
            await Exec.RunAsync("umount", ["-l", mountPoint]).ConfigureAwait(false);
        }

        System.IO.Directory.Delete(Directory, recursive: true);
    }
}
