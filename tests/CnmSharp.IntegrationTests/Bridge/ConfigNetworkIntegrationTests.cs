using CnmSharp.Core.Persistence;
using CnmSharp.Testing;

namespace CnmSharp.IntegrationTests.Bridge;

/// <summary>A bridge network created from a configuration-only network, as root in a private host namespace.</summary>
[RequiresRoot]
[NonParallelizable]
public class ConfigNetworkIntegrationTests
{
    [Test]
    public async Task A_bridge_network_takes_its_subnet_from_a_config_network_which_cannot_go_before_it()
    {
        await using var h = await BridgeHarness.CreateAsync();
        var linksBefore = h.HostLinks();
        var config = await h.Controller.CreateNetworkAsync("cfg", "bridge", new NetworkCreateOptions
        {
            ConfigOnly = true,
            IPv4Config = [new IpamConfig { Subnet = "10.77.60.0/24", Gateway = "10.77.60.254" }],
            DriverOptions = new Dictionary<string, string> { ["com.docker.network.bridge.name"] = "cnmcfg0" },
        });
        Assert.That(h.HostLinks(), Is.EquivalentTo(linksBefore), "a configuration network creates no link");
        Assert.That(BridgeHarness.Rules(h.Host.Path), Is.Empty, "a configuration network writes no rule");

        var net = await h.Controller.CreateNetworkAsync("net", "bridge", new NetworkCreateOptions { ConfigFrom = "cfg" });
        Assert.Multiple(() =>
        {
            Assert.That(net.ConfigFrom, Is.EqualTo("cfg"));
            Assert.That(net.IPv4Info.Single().Pool.ToString(), Is.EqualTo("10.77.60.0/24"));
            Assert.That(h.HostLinks(), Does.Contain("cnmcfg0"), "the bridge takes its name from the configuration's driver options");
            Assert.That(BridgeHarness.Exec(h.Host.Path, "ip", "-br", "addr", "show", "dev", "cnmcfg0"), Does.Contain("10.77.60.254/24"));
        });

        var (sandbox, endpoint) = await h.ContainerAsync(net, "c1");
        Assert.That(endpoint.Address?.ToString(), Does.StartWith("10.77.60."));
        Assert.That(BridgeHarness.Ping(sandbox.Key, "10.77.60.254"), Is.True, "the container reaches the configured gateway");

        await AssertDeleteRefusedAsync(config);

        // After a restart the reference still holds.
        await h.RestartAsync();
        var config2 = h.Controller.GetNetwork("cfg");
        Assert.That(config2.ConfigOnly, Is.True);
        Assert.That(h.Controller.GetNetwork("net").ConfigFrom, Is.EqualTo("cfg"));
        await AssertDeleteRefusedAsync(config2);

        var joined = h.Controller.GetNetwork("net").FindEndpointByName("c1")!;
        await joined.LeaveAsync(h.Controller.FindSandboxByContainerId("c1")!);
        await joined.DeleteAsync();
        await h.Controller.FindSandboxByContainerId("c1")!.DeleteAsync();
        await h.Controller.GetNetwork("net").DeleteAsync();
        await config2.DeleteAsync();

        Assert.That(h.Controller.Networks.Select(n => n.Name), Does.Not.Contain("cfg").And.Not.Contain("net"));
        Assert.That(await h.Store.ListAsync(CoreStore.NetworkPrefix), Is.Empty, "no network record left");
        await h.TeardownAndAssertCleanAsync();
    }

    private static async Task AssertDeleteRefusedAsync(Network config)
    {
        var ex = await Assert.ThrowsAsync<CnmConflictException>(async () => await config.DeleteAsync());
        Assert.That(ex!.Code, Is.EqualTo(CnmErrorCodes.ConfigNetworkInUse));
        Assert.That(ex.Reason, Does.Contain("\"net\""));
    }
}
