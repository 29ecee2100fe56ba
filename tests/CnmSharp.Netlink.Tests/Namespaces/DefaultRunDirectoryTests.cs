using CnmSharp.Netlink;
using CnmSharp.Testing;

namespace CnmSharp.Netlink.Tests.Namespaces;

/// <summary>
/// The one test that uses the real <c>/var/run/netns</c>: a namespace made by the manager is listed and usable by
/// <c>ip netns</c>. It restores the directory's previous state (it removes the directory's self-mount and the directory
/// only when it made them).
/// </summary>
[RequiresRoot]
[NonParallelizable]
public sealed class DefaultRunDirectoryTests
{
    [Test]
    public async Task Ip_netns_sees_namespaces_created_in_the_default_run_directory()
    {
        const string Dir = NetworkNamespaceManagerOptions.DefaultRunDirectory;
        var realDir = Path.GetFullPath("/run/netns");
        var existedBefore = Directory.Exists(Dir);
        var mountedBefore = MountTable.IsMountPoint(realDir) || MountTable.IsMountPoint(Dir);
        var manager = new NetworkNamespaceManager();
        var name = TestHostNamespace.UniqueName();
        try
        {
            using (var ns = await manager.CreateAsync(name))
            {
                var list = await IpTool.ExecAsync("ip", "netns", "list");
                Assert.That(list.StandardOutput, Does.Contain(name));

                // `ip -n NAME` resolves the name in /var/run/netns.
                var links = await IpTool.ExecAsync("ip", "-n", name, "-json", "link", "show");
                Assert.That(links.ExitCode, Is.Zero, links.StandardError);
                Assert.That(links.StandardOutput, Does.Contain("\"lo\""));
                Assert.That(MountTable.LinesUnder(realDir).Concat(MountTable.LinesUnder(Dir)).Any(l => l.Contains(" shared:", StringComparison.Ordinal)), Is.True);
            }

            await manager.DeleteAsync(name);
            var after = await IpTool.ExecAsync("ip", "netns", "list");
            Assert.That(after.StandardOutput, Does.Not.Contain(name));
        }
        finally
        {
            if (manager.Exists(name))
            {
                await manager.DeleteAsync(name);
            }

            if (!mountedBefore)
            {
                while (MountTable.IsMountPoint(realDir))
                {
                    _ = await IpTool.ExecAsync("umount", realDir);
                }
            }

            if (!existedBefore && Directory.Exists(Dir) && !Directory.EnumerateFileSystemEntries(Dir).Any())
            {
                Directory.Delete(Dir);
            }
        }
    }
}
