using CnmSharp.Drivers;
using CnmSharp.Sandboxes;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace CnmSharp.Tests.Core;

public sealed class DependencyInjectionTests : ControllerTestBase
{
    private ServiceProvider Provider(Action<CnmOptions>? configure = null, Action<ICnmBuilder>? cnm = null)
    {
        var services = new ServiceCollection();
        var builder = services.AddCnmSharp(o =>
        {
            o.StateDirectory = F.Directory;
            o.RunDirectory = Path.Combine(F.Directory, "run");
            configure?.Invoke(o);
        });
        builder.UseInMemoryStore();
        cnm?.Invoke(builder);
        services.AddSingleton(F.Netns.Object);

        // No kernel work in unit tests: drop the drivers that open the host namespace (bridge, macvlan, ipvlan, overlay) and the
        // firewall that AddCnmSharp registers.
        services.RemoveAll<CnmSharp.Firewall.IFirewallBackendFactory>();
        Type[] kernelDrivers = [typeof(CnmSharp.Drivers.Bridge.BridgeDriverFactory), typeof(CnmSharp.Drivers.Macvlan.MacvlanDriverFactory), typeof(CnmSharp.Drivers.Ipvlan.IpvlanDriverFactory), typeof(CnmSharp.Drivers.Overlay.OverlayDriverFactory)];
        foreach (var driver in services.Where(d => kernelDrivers.Contains(d.ImplementationType)
            || kernelDrivers.Contains(d.ImplementationFactory?.Method.ReturnType)).ToList())
        {
            services.Remove(driver);
        }

        return services.BuildServiceProvider();
    }

    [Test]
    public async Task The_provider_starts_one_controller_and_hands_out_the_same_instance()
    {
        await using var sp = Provider();
        var provider = sp.GetRequiredService<NetworkControllerProvider>();

        var first = await provider.GetControllerAsync();
        var second = await sp.GetRequiredService<NetworkControllerProvider>().GetControllerAsync();

        Assert.Multiple(() =>
        {
            Assert.That(second, Is.SameAs(first));
            Assert.That(first.Drivers, Is.SupersetOf(new[] { "host", "null" }));
            Assert.That(first.IpamDrivers, Is.SupersetOf(new[] { "default", "null" }));
            Assert.That(first.Networks.Select(n => n.Name), Is.EquivalentTo(new[] { "host", "none" }));
        });
    }

    [Test]
    public async Task Concurrent_first_calls_start_one_controller()
    {
        await using var sp = Provider();
        var provider = sp.GetRequiredService<NetworkControllerProvider>();

        var controllers = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => provider.GetControllerAsync().AsTask()));

        Assert.That(controllers.Distinct().Count(), Is.EqualTo(1));
    }

    [TestCase("")]
    [TestCase("not-hex")]
    public async Task Invalid_options_throw_an_options_validation_exception(string bad)
    {
        await using var sp = Provider(o =>
        {
            if (bad.Length == 0)
            {
                o.StateDirectory = bad;
            }
            else
            {
                o.ControllerId = bad;
            }
        });

        var ex = await CatchAsync(() => sp.GetRequiredService<NetworkControllerProvider>().GetControllerAsync().AsTask());

        Assert.That(ex, Is.InstanceOf<OptionsValidationException>());
    }

    [Test]
    public async Task A_driver_added_through_the_builder_is_registered_and_usable()
    {
        await using var sp = Provider(cnm: b => b.AddDriver(new FakeDriverFactory("custom", F.Driver.Object)));
        var controller = await sp.GetRequiredService<NetworkControllerProvider>().GetControllerAsync();

        var n = await controller.CreateNetworkAsync("c", "custom");

        Assert.Multiple(() =>
        {
            Assert.That(controller.Drivers, Does.Contain("custom"));
            Assert.That(n.Driver, Is.EqualTo("custom"));
        });
    }

    [Test]
    public async Task Options_reach_the_controller()
    {
        const string Id = "feedfeedfeedfeedfeedfeedfeedfeedfeedfeedfeedfeedfeedfeedfeedfeed";
        await using var sp = Provider(o =>
        {
            o.ControllerId = Id;
            o.CreateDefaultNetworks = false;
        });

        var controller = await sp.GetRequiredService<NetworkControllerProvider>().GetControllerAsync();

        Assert.Multiple(() =>
        {
            Assert.That(controller.Id, Is.EqualTo(Id));
            Assert.That(controller.Networks, Is.Empty);
        });
    }

    [Test]
    public async Task Two_controllers_in_one_process_do_not_see_each_other()
    {
        await using var other = new ControllerFixture();
        var a = await F.StartAsync();
        var b = await other.StartAsync();

        await a.CreateNetworkAsync("only-a", ControllerFixture.DriverName, Subnet("10.95.0.0/24"));
        var inB = await b.CreateNetworkAsync("only-b", ControllerFixture.DriverName, Subnet("10.95.0.0/24"));

        Assert.Multiple(() =>
        {
            Assert.That(a.Id, Is.Not.EqualTo(b.Id));
            Assert.That(a.FindNetworkByName("only-b"), Is.Null);
            Assert.That(b.FindNetworkByName("only-a"), Is.Null);
            Assert.That(inB.IPv4Info[0].Pool.ToString(), Is.EqualTo("10.95.0.0/24"));
        });
    }

    [Test]
    public async Task Disposing_the_service_provider_disposes_the_controller()
    {
        NetworkController controller;
        await using (var sp = Provider())
        {
            controller = await sp.GetRequiredService<NetworkControllerProvider>().GetControllerAsync();
        }

        Assert.That(async () => await controller.CreateNetworkAsync("late", "null"), Throws.InstanceOf<ObjectDisposedException>());
    }

    [Test]
    public async Task The_sandbox_networking_mock_is_what_the_provider_uses()
    {
        await using var sp = Provider();
        Assert.That(sp.GetRequiredService<ISandboxNetworking>(), Is.SameAs(F.Netns.Object));
        Assert.That(sp.GetServices<INetworkDriverFactory>().Select(f => f.Name), Is.EquivalentTo(new[] { "null", "host" }));
    }
}
