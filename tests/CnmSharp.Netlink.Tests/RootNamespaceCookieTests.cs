using CnmSharp.Netlink.Tests.Support;
using CnmSharp.Testing;

namespace CnmSharp.Netlink.Tests;

/// <summary><see cref="RtnetlinkClient.GetNamespaceCookie"/>: the same for every socket of a namespace, different for
/// another namespace, also one made after the first was freed (where the inode number may come back).</summary>
[RequiresRoot]
public class RootNamespaceCookieTests
{
    [Test]
    public void The_cookie_names_the_namespace_instance()
    {
        ulong? first;
        ulong? again;
        using (var ns = TestNamespace.Create())
        {
            using var a = RtnetlinkClient.Open(ns.Handle);
            using var b = RtnetlinkClient.Open(ns.Handle);
            first = a.GetNamespaceCookie();
            again = b.GetNamespaceCookie();
        }

        using var other = TestNamespace.Create();
        using var c = RtnetlinkClient.Open(other.Handle);
        var next = c.GetNamespaceCookie();
        Assert.Multiple(() =>
        {
            // Linux 5.14+ tells it (the kernels these tests run on are newer).
            Assert.That(first, Is.Not.Null.And.Not.Zero);
            Assert.That(again, Is.EqualTo(first), "every socket of a namespace sees the same cookie");
            Assert.That(next, Is.Not.Null.And.Not.EqualTo(first), "a namespace made after the first was freed has its own");
        });
    }
}
