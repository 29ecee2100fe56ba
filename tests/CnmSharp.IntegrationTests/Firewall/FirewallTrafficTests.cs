using System.Diagnostics;
using System.Net;
using CnmSharp.Drivers;
using CnmSharp.Firewall;
using CnmSharp.Firewall.Iptables;
using CnmSharp.Testing;

namespace CnmSharp.IntegrationTests.Firewall;

/// <summary>
/// Real traffic: a private host namespace H with FORWARD policy DROP (as after dockerd ran), a bridge and two
/// "container" namespaces attached by veth. Only the backend's own accepts let traffic through.
/// </summary>
[RequiresRoot]
[NonParallelizable]
public class FirewallTrafficTests
{
    private TestNamespace _host = null!;
    private TestNamespace _c1 = null!;
    private TestNamespace _c2 = null!;
    private string _bridge = null!;
    private IptablesFirewallBackend _backend = null!;

    [SetUp]
    public void SetUp()
    {
        Assert.That(Sh.RootRuleCount(), Is.Zero);
        try
        {
            Build();
        }
        catch
        {
            // NUnit skips TearDown when SetUp fails: clean up here.
            CleanUp();
            throw;
        }
    }

    private void Build()
    {
        _host = new TestNamespace("h");
        _c1 = new TestNamespace("c");
        _c2 = new TestNamespace("c");
        _bridge = "br-" + Sh.NewName()[Sh.Prefix.Length..];
        _host.Exec("ip", "link", "set", "lo", "up");
        _host.Exec("ip", "link", "add", _bridge, "type", "bridge");
        _host.Exec("ip", "addr", "add", "10.231.9.1/24", "dev", _bridge);
        _host.Exec("ip", "link", "set", _bridge, "up");
        var index = 2;
        foreach (var container in new[] { _c1, _c2 })
        {
            var veth = "v" + Sh.NewName()[Sh.Prefix.Length..];
            _host.Exec("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", container.Name);
            _host.Exec("ip", "link", "set", veth, "master", _bridge, "up");
            _host.Exec("ip", "link", "set", veth, "type", "bridge_slave", "hairpin", "on");
            container.Exec("ip", "addr", "add", $"10.231.9.{index++}/24", "dev", "eth0");
            container.Exec("ip", "link", "set", "eth0", "up");
            container.Exec("ip", "link", "set", "lo", "up");
            container.Exec("ip", "route", "add", "default", "via", "10.231.9.1");
        }

        _host.Exec("iptables", "-P", "FORWARD", "DROP");
        _host.Exec("sysctl", "-q", "-w", "net.ipv4.ip_forward=1"); // the bridge driver's job, in H only
        _backend = new IptablesFirewallBackend(_host.Path);
    }

    [TearDown]
    public void TearDown()
    {
        CleanUp();
        Assert.That(Sh.RootRuleCount(), Is.Zero, "the root namespace must still have no rules");
    }

    private void CleanUp()
    {
        _backend?.Dispose();
        _c1?.Dispose();
        _c2?.Dispose();
        _host?.Dispose();
        _backend = null!;
        _c1 = _c2 = _host = null!;
    }

    private FirewallNetwork Network => new()
    {
        NetworkId = "traffic",
        BridgeName = _bridge,
        IPv4Subnets = [IPNetwork.Parse("10.231.9.0/24")],
        BridgeIPv4 = IPAddress.Parse("10.231.9.1"),
    };

    private static bool Ping(TestNamespace from, string to)
    {
        // One retry: the first packet may wait for ARP.
        for (var i = 0; i < 2; i++)
        {
            if (from.TryExec("ping", "-c1", "-W1", to).Code == 0)
            {
                return true;
            }
        }

        return false;
    }

    [Test]
    public async Task Icc_on_and_off_under_forward_policy_drop()
    {
        Assert.That(Ping(_c1, "10.231.9.3"), Is.False, "FORWARD policy DROP blocks bridged traffic before any rule");

        await _backend.SetupNetworkAsync(Network);
        Assert.That(Ping(_c1, "10.231.9.3"), Is.True, "the network's own ICC accept lets containers talk");

        await _backend.SetupNetworkAsync(Network with { EnableIcc = false });
        Assert.That(_host.Rules(), Does.Contain($"filter -A FORWARD -i {_bridge} -o {_bridge} -j DROP"));
        Assert.That(_host.Rules(), Does.Not.Contain($"filter -A FORWARD -i {_bridge} -o {_bridge} -j ACCEPT"));
        Assert.That(Ping(_c1, "10.231.9.3"), Is.False, "ICC off");
        Assert.That(Ping(_c1, "10.231.9.1"), Is.True, "the gateway stays reachable");

        await _backend.TeardownNetworkAsync(Network);
        Assert.That(_host.Rules(), Is.Empty);
    }

    private static Process Listen(TestNamespace container, string greeting)
    {
        var info = new ProcessStartInfo("nsenter") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in new[] { "--net=" + container.Path, "sh", "-c", $"echo {greeting} | timeout 10 nc -l -N 80" })
        {
            info.ArgumentList.Add(arg);
        }

        return Process.Start(info)!;
    }

    private static async Task<string> ConnectAsync(TestNamespace from, string greeting)
    {
        var reply = string.Empty;
        for (var attempt = 0; attempt < 20 && !reply.Contains(greeting, StringComparison.Ordinal); attempt++)
        {
            await Task.Delay(100);
            reply = from.TryExec("sh", "-c", "nc -w 2 -N 10.231.9.1 8080 </dev/null").Stdout;
        }

        return reply;
    }

    private async Task PublishAsync()
    {
        await _backend.SetupNetworkAsync(Network);
        await _backend.SetupPortForwardsAsync(new FirewallPortForward
        {
            NetworkId = "traffic",
            EndpointId = "web",
            BridgeName = _bridge,
            ContainerIPv4 = IPAddress.Parse("10.231.9.2"),
            PortBindings = [new PortBinding(TransportProtocol.Tcp, 80, IPAddress.Any, 8080)],
        });
    }

    [TestCase("host")]
    [TestCase("other container")]
    [TestCase("same container (hairpin)")]
    public async Task Published_port_is_reached(string from)
    {
        await PublishAsync();
        var client = from switch { "host" => _host, "other container" => _c2, _ => _c1 };
        using var listener = Listen(_c1, "hello-from-c1");
        try
        {
            Assert.That(await ConnectAsync(client, "hello-from-c1"), Does.Contain("hello-from-c1"), $"{from} -> 10.231.9.1:8080 is DNATed to c1:80");
        }
        finally
        {
            if (!listener.HasExited)
            {
                listener.Kill(entireProcessTree: true);
            }
        }

        await _backend.TeardownNetworkAsync(Network);
        Assert.That(_host.Rules(), Is.Empty);
    }
}
