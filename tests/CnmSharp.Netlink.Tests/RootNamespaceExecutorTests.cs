using System.Net;
using CnmSharp.Netlink.Internal;
using CnmSharp.Netlink.Tests.Support;
using CnmSharp.Testing;

namespace CnmSharp.Netlink.Tests;

[RequiresRoot]
[Parallelizable(ParallelScope.All)]
public class RootNamespaceExecutorTests
{
    private static string NamespaceId(string path) => new FileInfo(path).ResolveLinkTarget(false)?.Name ?? Inode(path);

    private static string Inode(string path)
    {
        var stat = TestNamespace.Run("stat", $"-L -c %i {path}").Trim();
        return $"net:[{stat}]";
    }

    [Test]
    public void RunIn_executes_inside_the_target_and_leaves_the_caller_alone()
    {
        using var ns = TestNamespace.Create();
        var callerBefore = NamespaceId("/proc/thread-self/ns/net");
        var inside = NamespaceExecutor.RunIn(ns.Handle, () => NamespaceId("/proc/thread-self/ns/net"));
        Assert.Multiple(() =>
        {
            Assert.That(inside, Is.EqualTo(Inode($"/run/netns/{ns.Name}")));
            Assert.That(NamespaceId("/proc/thread-self/ns/net"), Is.EqualTo(callerBefore));
        });
    }

    [Test]
    public void RunIn_rethrows_the_function_s_exception()
    {
        using var ns = TestNamespace.Create();
        Assert.Throws<InvalidTimeZoneException>(() => NamespaceExecutor.RunIn<int>(ns.Handle, () => throw new InvalidTimeZoneException()));
    }

    [Test]
    public async Task Open_without_a_namespace_uses_the_calling_thread_s()
    {
        using var ns = TestNamespace.Create();
        await using var client = NamespaceExecutor.RunIn(ns.Handle, () => RtnetlinkClient.Open());
        await client.CreateLinkAsync(new BridgeLinkSpec("here0"));
        Assert.That(ns.Link("here0"), Is.Not.Null);
    }

    [Test]
    public async Task Extension_conveniences()
    {
        using var ns = TestNamespace.Create();
        await using var client = RtnetlinkClient.Open(ns.Handle);
        await client.CreateLinkAsync(new VethLinkSpec("x0", "x1") { Up = true });
        var link = await client.GetRequiredLinkAsync("x0");
        await client.AddAddressAsync(link.Index, IPAddress.Parse("10.3.0.2"), 24);
        await client.ReplaceDefaultRouteAsync(IPAddress.Parse("10.3.0.1"));
        Assert.That(ns.IpJson("route show default")[0].GetProperty("gateway").GetString(), Is.EqualTo("10.3.0.1"));
        await client.DeleteAddressAsync(link.Index, IPAddress.Parse("10.3.0.2"), 24);
        Assert.That((await client.GetAddressesAsync(link.Index)).Any(a => a.Address.Equals(IPAddress.Parse("10.3.0.2"))), Is.False);
        var e = (await Assert.ThrowsAsync<NetlinkException>(async () => await client.GetRequiredLinkAsync("absent0")))!;
        Assert.That(e.ErrorName, Is.EqualTo("ENODEV"));
    }
}
