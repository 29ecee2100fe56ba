using CnmSharp.Netlink;
using CnmSharp.Testing;

namespace CnmSharp.Netlink.Tests.Namespaces;

/// <summary>
/// The one test that uses the real <c>/var/run/netns</c>: a namespace made by the manager is listed and usable by
/// <c>ip netns</c>. The directory is shared with other users (other test runs, <c>ip netns</c>), so the test removes only
/// its own uniquely named namespace; the directory and its self-bind-mount stay, exactly as after <c>ip netns add</c>.
/// </summary>
[RequiresRoot]
[NonParallelizable]
public sealed class DefaultRunDirectoryTests
{
    [Test]
    public async Task Ip_netns_sees_namespaces_created_in_the_default_run_directory()
    {
        var manager = new NetworkNamespaceManager();
        var name = TestHostNamespace.UniqueName();
        var path = manager.GetPath(name);
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

                var dirLine = MountTable.LinesUnder("/run/netns").FirstOrDefault(l => l.Split(' ')[4] == "/run/netns");
                Assert.That(dirLine, Does.Contain(" shared:"), "the run directory is a shared mount, as ip netns makes it");
            }

            await manager.DeleteAsync(name);
            var after = await IpTool.ExecAsync("ip", "netns", "list");
            Assert.Multiple(() =>
            {
                Assert.That(after.StandardOutput, Does.Not.Contain(name));
                Assert.That(File.Exists(path), Is.False);
                Assert.That(MountTable.LinesUnder(path), Is.Empty);
            });
        }
        finally
        {
            // Only our own namespace: never the directory, which others may be using.
            if (File.Exists(path))
            {
                await manager.DeleteAsync(name);
            }
        }
    }
}
