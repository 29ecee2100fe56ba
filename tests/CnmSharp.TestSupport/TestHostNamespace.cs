using System.Runtime.InteropServices;
using System.Security.Cryptography;
using CnmSharp.Netlink;

namespace CnmSharp.Testing;

/// <summary>
/// A private, uniquely named network namespace (<c>cnmt-XXXXXXXX</c>) for one test, pinned in a private temporary run
/// directory (never <c>/var/run/netns</c>), with <c>lo</c> up. Everything a test builds goes inside it, so the machine's
/// own interfaces, routes and firewall are never touched. Disposing deletes the namespace, every other namespace the test
/// created through <see cref="Manager"/> (they live in the same private directory) and the directory, also after a
/// failed test.
/// </summary>
public sealed class TestHostNamespace : IAsyncDisposable
{
    private readonly NetworkNamespace _namespace;
    private int _disposed;

    private TestHostNamespace(NetworkNamespaceManager manager, NetworkNamespace ns, string name)
    {
        Manager = manager;
        _namespace = ns;
        Name = name;
    }

    /// <summary>The namespace name, <c>cnmt-</c> and 8 hex digits.</summary>
    public string Name { get; }

    /// <summary>The namespace file: use with <c>nsenter --net=PATH</c> (see <see cref="IpTool"/>).</summary>
    public string Path => Manager.GetPath(Name);

    /// <summary>The private run directory holding this namespace (and any the test creates through <see cref="Manager"/>).</summary>
    public string RunDirectory => Manager.RunDirectory;

    /// <summary>The open namespace.</summary>
    public NetworkNamespace Namespace => _namespace;

    /// <summary>The namespace file descriptor, for <c>RtnetlinkClient.Open</c>.</summary>
    public SafeHandle Handle => _namespace.Handle;

    /// <summary>A manager over the private run directory: namespaces made with it are removed on dispose too.</summary>
    public NetworkNamespaceManager Manager { get; }

    /// <summary>A fresh unique name with the given prefix: <c>PREFIX-XXXXXXXX</c>.</summary>
    /// <param name="prefix">The prefix, e.g. <c>cnmt</c>.</param>
    /// <returns>The name.</returns>
    public static string UniqueName(string prefix = "cnmt") =>
        $"{prefix}-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4))}";

    /// <summary>Creates the namespace and brings <c>lo</c> up inside it.</summary>
    /// <param name="cancellationToken">Cancels the creation.</param>
    /// <returns>The namespace; dispose it in teardown.</returns>
    public static async Task<TestHostNamespace> CreateAsync(CancellationToken cancellationToken = default)
    {
        var runDirectory = System.IO.Path.Combine(System.IO.Path.GetTempPath(), UniqueName("cnmt-run"));
        var manager = new NetworkNamespaceManager(new NetworkNamespaceManagerOptions
        {
            RunDirectory = runDirectory,

            // A private directory needs no propagation, and then nothing stays mounted after the test.
            MakeRunDirectoryShared = false,
        });
        var name = UniqueName();
        NetworkNamespace? ns = null;
        try
        {
            ns = await manager.CreateAsync(name, cancellationToken).ConfigureAwait(false);
            var host = new TestHostNamespace(manager, ns, name);
            await host.BringLoopbackUpAsync().ConfigureAwait(false);
            return host;
        }
        catch
        {
            ns?.Dispose();
            RemoveRunDirectory(manager);
            throw;
        }
    }

    /// <summary>Deletes the namespace, any other namespace in the private run directory, and the directory.</summary>
    /// <returns>A completed task.</returns>
    public ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            _namespace.Dispose();
            RemoveRunDirectory(Manager);
        }

        return ValueTask.CompletedTask;
    }

    private async Task BringLoopbackUpAsync()
    {
        using var client = RtnetlinkClient.Open(Handle);
        var lo = await client.GetLinkAsync("lo").ConfigureAwait(false)
            ?? throw new InvalidOperationException($"no lo in the new namespace {Name}");
        await client.SetLinkUpAsync(lo.Index).ConfigureAwait(false);
    }

    /// <summary>Opens an rtnetlink client whose socket lives in this namespace. Dispose it before the namespace.</summary>
    /// <returns>The client.</returns>
    public RtnetlinkClient OpenClient() => RtnetlinkClient.Open(Handle);

    private static void RemoveRunDirectory(NetworkNamespaceManager manager)
    {
        if (!Directory.Exists(manager.RunDirectory))
        {
            return;
        }

        // The directory is private to this object: everything in it was created by this test.
        foreach (var file in Directory.EnumerateFileSystemEntries(manager.RunDirectory))
        {
            try
            {
                manager.DeleteAsync(System.IO.Path.GetFileName(file)).GetAwaiter().GetResult();
            }
            catch (NamespaceException)
            {
                // Already gone or not a namespace file: the directory removal below reports real leftovers.
            }
        }

        Directory.Delete(manager.RunDirectory, recursive: false);
    }
}
