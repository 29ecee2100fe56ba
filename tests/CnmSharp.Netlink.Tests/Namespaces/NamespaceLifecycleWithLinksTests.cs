using System.Diagnostics;
using System.Net.NetworkInformation;
using CnmSharp.Netlink;
using CnmSharp.Testing;

namespace CnmSharp.Netlink.Tests.Namespaces;

/// <summary>Namespaces from the manager together with the rtnetlink client: peers created in place, reaped on delete.</summary>
[RequiresRoot]
public sealed class NamespaceLifecycleWithLinksTests
{
    [Test]
    public async Task Deleting_container_namespaces_reaps_their_veths_in_the_host_namespace()
    {
        await using var host = await TestHostNamespace.CreateAsync();
        using var client = host.OpenClient();
        var names = Enumerable.Range(0, 5).Select(_ => TestHostNamespace.UniqueName("cnmt-c")).ToArray();
        for (var i = 0; i < names.Length; i++)
        {
            using var ns = await host.Manager.CreateAsync(names[i]);
            var mac = PhysicalAddress.Parse($"02-42-0a-4d-00-{i + 2:x2}");
            await client.CreateLinkAsync(new VethLinkSpec($"vh{i}", "eth0")
            {
                Up = true,
                PeerNamespace = ns.Handle,
                PeerMac = mac,
            });

            // The peer is inside the container namespace, named and addressed as asked; the oracle agrees.
            var eth0 = await host.Manager.RunInsideAsync(ns, () =>
            {
                using var inside = RtnetlinkClient.Open();
                return inside.GetLinkAsync("eth0").AsTask().GetAwaiter().GetResult();
            });
            Assert.That(eth0, Is.Not.Null);
            Assert.That(eth0!.Mac, Is.EqualTo(mac));
            Assert.That(await IpTool.LinkNamesAsync(ns.Path!), Is.EquivalentTo(new[] { "lo", "eth0" }));
        }

        Assert.That((await client.GetLinksAsync()).Count, Is.EqualTo(1 + names.Length));

        foreach (var name in names)
        {
            await host.Manager.DeleteAsync(name);
        }

        // The kernel destroys the namespaces asynchronously and takes the host ends with them.
        var clock = Stopwatch.StartNew();
        while ((await client.GetLinksAsync()).Count > 1 && clock.Elapsed < TimeSpan.FromSeconds(30))
        {
            await Task.Delay(10);
        }

        Assert.That((await client.GetLinksAsync()).Select(l => l.Name), Is.EqualTo(new[] { "lo" }));
    }

    [Test]
    public async Task A_namespace_held_open_keeps_its_veth_until_the_handle_is_closed()
    {
        await using var host = await TestHostNamespace.CreateAsync();
        using var client = host.OpenClient();
        var name = TestHostNamespace.UniqueName("cnmt-c");
        var control = TestHostNamespace.UniqueName("cnmt-c");
        var ns = await host.Manager.CreateAsync(name);
        try
        {
            await client.CreateLinkAsync(new VethLinkSpec("vh0", "eth0") { PeerNamespace = ns.Handle });
            using (var unheld = await host.Manager.CreateAsync(control))
            {
                await client.CreateLinkAsync(new VethLinkSpec("vc0", "eth0") { PeerNamespace = unheld.Handle });
            }

            // Both deleted, the held one first. The kernel destroys namespaces asynchronously, in the order they lost
            // their last reference: once the control's veth is reaped, the held one's would be too, were it not held.
            await host.Manager.DeleteAsync(name);
            await host.Manager.DeleteAsync(control);
            var reaping = Stopwatch.StartNew();
            while (await client.GetLinkAsync("vc0") is not null && reaping.Elapsed < TimeSpan.FromSeconds(30))
            {
                await Task.Delay(10);
            }

            Assert.That(await client.GetLinkAsync("vc0"), Is.Null, "the control namespace (no handle open) was destroyed");
            Assert.That(await client.GetLinkAsync("vh0"), Is.Not.Null, "the open handle keeps the namespace and its peer alive");
        }
        finally
        {
            ns.Dispose();
        }

        var clock = Stopwatch.StartNew();
        while (await client.GetLinkAsync("vh0") is not null && clock.Elapsed < TimeSpan.FromSeconds(30))
        {
            await Task.Delay(10);
        }

        Assert.That(await client.GetLinkAsync("vh0"), Is.Null);
    }
}
