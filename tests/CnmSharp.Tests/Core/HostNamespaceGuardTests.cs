using CnmSharp.Drivers.Bridge;
using CnmSharp.Firewall.Iptables;
using CnmSharp.Store;
using Microsoft.Extensions.Logging.Abstractions;

namespace CnmSharp.Tests.Core;

/// <summary>
/// The test projects turn on the AppContext switch <c>CnmSharp.RequireExplicitHostNamespace</c> (tests/Directory.Build.props):
/// a kernel-changing component without a host namespace path refuses to start instead of changing the machine's own
/// namespace. These checks run before anything touches the kernel.
/// </summary>
public sealed class HostNamespaceGuardTests
{
    [Test]
    public void The_switch_is_on_in_the_test_projects() =>
        Assert.That(AppContext.TryGetSwitch("CnmSharp.RequireExplicitHostNamespace", out var on) && on, Is.True);

    [Test]
    public void A_firewall_backend_for_the_process_s_own_namespace_is_refused()
    {
        var ex = Assert.Throws<CnmInvalidArgumentException>(() => new IptablesFirewallBackendFactory().Create(null));
        Assert.That(ex!.Message, Does.Contain("CnmSharp.RequireExplicitHostNamespace"));
        Assert.That(new IptablesFirewallBackendFactory().Create("/run/netns/some-private-host"), Is.Not.Null, "an explicit namespace is fine (nothing runs yet)");
    }

    [Test]
    public async Task A_bridge_driver_for_the_process_s_own_namespace_is_refused()
    {
        await using var store = new InMemoryKeyValueStore();
        var context = new CnmSharp.Drivers.DriverContext
        {
            ControllerId = "guard",
            RunDirectory = Path.GetTempPath(),
            Store = store,
            StoreKeyPrefix = "cnm/v1/driver/bridge/",
            LoggerFactory = NullLoggerFactory.Instance,
        };

        var ex = await Assert.ThrowsAsync<CnmInvalidArgumentException>(async () => await new BridgeDriverFactory().CreateAsync(context));
        Assert.That(ex!.Message, Does.Contain("bridge driver"));
    }

    [Test]
    public async Task Macvlan_and_ipvlan_drivers_for_the_process_s_own_namespace_are_refused()
    {
        await using var store = new InMemoryKeyValueStore();
        var context = new CnmSharp.Drivers.DriverContext
        {
            ControllerId = "guard",
            RunDirectory = Path.GetTempPath(),
            Store = store,
            StoreKeyPrefix = "cnm/v1/driver/macvlan/",
            LoggerFactory = NullLoggerFactory.Instance,
        };

        var macvlan = await Assert.ThrowsAsync<CnmInvalidArgumentException>(async () => await new CnmSharp.Drivers.Macvlan.MacvlanDriverFactory().CreateAsync(context));
        var ipvlan = await Assert.ThrowsAsync<CnmInvalidArgumentException>(async () => await new CnmSharp.Drivers.Ipvlan.IpvlanDriverFactory().CreateAsync(context));
        Assert.Multiple(() =>
        {
            Assert.That(macvlan!.Message, Does.Contain("macvlan driver"));
            Assert.That(ipvlan!.Message, Does.Contain("ipvlan driver"));
        });
    }
}
