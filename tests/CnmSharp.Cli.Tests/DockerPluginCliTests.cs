using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using CnmSharp.Testing;

namespace CnmSharp.Cli.Tests;

/// <summary>
/// <c>cnm plugin serve</c> driven by a real dockerd (Debian's docker.io, <c>plugin-protocol.md</c> section 7): the
/// daemon runs in the lab's private host namespace (plus its own UTS and mount namespaces, see
/// <see cref="DockerDaemon"/>), the plugin host wraps the bridge driver and the default IPAM in the same namespace and
/// listens on the socket the daemon sees as <c>/run/docker/plugins/NAME.sock</c>. Containers use a busybox image the
/// test imports itself. Teardown (also after a failure): the containers are removed, dockerd and its containerd stopped
/// by PID, the plugin host killed by PID, the namespace (with every bridge, veth and rule) and the directories removed.
/// </summary>
[TestFixture]
[RequiresRoot]
[NonParallelizable]
public sealed class DockerPluginCliTests
{
    private const string Image = "cnmt-busybox";

    [Test]
    public async Task A_real_dockerd_uses_the_plugin_host_for_network_and_ipam_across_connect_disconnect_and_restarts_of_both()
    {
        var missing = DockerDaemon.MissingFiles;
        Assert.That(missing, Is.Empty, "install the Debian packages docker.io containerd runc busybox-static (sudo bash .ci/setup)");

        await using var lab = await CliLab.CreateAsync();
        var plugin = "cnmtdk" + lab.Suffix;
        var (net, other) = ($"cnmt-dk-{lab.Suffix}-a", $"cnmt-dk-{lab.Suffix}-b");
        await using var daemon = await DockerDaemon.StartAsync(lab.Host.Path, Path.Combine(lab.Root, "docker"), "cnmt-dk-" + lab.Suffix);
        var socket = Path.Combine(daemon.PluginDirectory, plugin + ".sock");
        var serve = await StartPluginHostAsync(lab, plugin, socket);
        await daemon.ImportBusyboxAsync(Image);

        async Task<string> Docker(params string[] args)
        {
            var r = await daemon.TryDockerAsync(args);
            Assert.That(r.ExitCode, Is.Zero, $"docker {string.Join(' ', args)}: {r.StandardError.Trim()}\ndockerd: {daemon.Tail(10)}");
            return r.StandardOutput;
        }

        async Task<(string Address, string Gateway)> RunAsync(string name, string network)
        {
            daemon.Track(name);
            _ = await Docker("run", "-d", "--name", name, "--network", network, Image, "sleep", "1000000");
            return await AddressOnAsync(name, network);
        }

        async Task<(string Address, string Gateway)> AddressOnAsync(string container, string network)
        {
            var json = await Docker("inspect", "-f", "{{json .NetworkSettings.Networks}}", container);
            using var doc = JsonDocument.Parse(json);
            Assert.That(doc.RootElement.TryGetProperty(network, out var n), Is.True, $"{container} on {network}: {json}");
            return (n.GetProperty("IPAddress").GetString()!, n.GetProperty("Gateway").GetString()!);
        }

        async Task PingAsync(string from, string address) =>
            _ = await Docker("exec", from, "ping", "-c", "2", "-W", "5", address);

        async Task<Dictionary<string, string>> InspectedAsync(string network)
        {
            var json = await Docker("network", "inspect", "-f", "{{json .Containers}}", network);
            using var doc = JsonDocument.Parse(json);
            return doc.RootElement.ValueKind == JsonValueKind.Object
                ? doc.RootElement.EnumerateObject().ToDictionary(p => p.Value.GetProperty("Name").GetString()!, p => p.Value.GetProperty("IPv4Address").GetString()!)
                : [];
        }

        try
        {
            // Create: the driver and the IPAM are both the plugin.
            _ = await Docker("network", "create", "-d", plugin, "--ipam-driver", plugin, "--subnet", "10.231.1.0/24", net);
            _ = await Docker("network", "create", "-d", plugin, "--ipam-driver", plugin, "--subnet", "10.231.2.0/24", other);
            Assert.That((await Docker("network", "inspect", "-f", "{{.Driver}} {{.IPAM.Driver}}", net)).Trim(), Is.EqualTo($"{plugin} {plugin}"));

            // Two containers ping each other by address; the addresses are the plugin IPAM's, the gateway is the
            // plugin bridge's address in the host namespace.
            var (a1, gw) = await RunAsync("cnmt-dk-c1-" + lab.Suffix, net);
            var (a2, _) = await RunAsync("cnmt-dk-c2-" + lab.Suffix, net);
            Assert.That(new[] { a1, a2, gw }, Has.All.StartsWith("10.231.1."));
            Assert.That(new[] { a1, a2, gw }, Is.Unique);
            var bridge = await DeviceWithAddressAsync(lab, gw);
            Assert.That(bridge, Is.Not.Null, $"the gateway {gw} is on a device in the host namespace (the plugin's bridge)");
            await PingAsync("cnmt-dk-c1-" + lab.Suffix, a2);
            await PingAsync("cnmt-dk-c2-" + lab.Suffix, a1);
            var inspected = await InspectedAsync(net);
            Assert.That(inspected, Is.EquivalentTo(new Dictionary<string, string>
            {
                ["cnmt-dk-c1-" + lab.Suffix] = a1 + "/24",
                ["cnmt-dk-c2-" + lab.Suffix] = a2 + "/24",
            }));
            var inside = await Docker("exec", "cnmt-dk-c1-" + lab.Suffix, "ip", "-o", "-4", "addr", "show", "dev", "eth0");
            Assert.That(inside, Does.Contain($"inet {a1}/24"), "the container has the address docker shows");

            // connect / disconnect: a container of the other network joins this one and leaves it.
            var c3 = "cnmt-dk-c3-" + lab.Suffix;
            _ = await RunAsync(c3, other);
            _ = await Docker("network", "connect", net, c3);
            var (a3, _) = await AddressOnAsync(c3, net);
            Assert.That(a3, Does.StartWith("10.231.1."));
            Assert.That(new[] { a1, a2, gw }, Has.No.Member(a3));
            await PingAsync(c3, a1);
            Assert.That((await InspectedAsync(net))[c3], Is.EqualTo(a3 + "/24"));
            _ = await Docker("network", "disconnect", net, c3);
            Assert.That((await InspectedAsync(net)).Keys, Has.No.Member(c3));
            var afterDisconnect = await Docker("exec", c3, "ip", "-o", "-4", "addr");
            Assert.That(afterDisconnect, Does.Not.Contain(a3 + "/"), "the interface on the left network is gone");

            // dockerd restarted (its containers removed first, as section 7 says): the networks survive and a new
            // container gets an address from the plugin and pings.
            await daemon.RestartAsync();
            Assert.That(await Docker("network", "ls", "--format", "{{.Name}}"), Does.Contain(net).And.Contain(other));
            var (a4, _) = await RunAsync("cnmt-dk-c4-" + lab.Suffix, net);
            var (a5, _) = await RunAsync("cnmt-dk-c5-" + lab.Suffix, net);
            Assert.That(new[] { a4, a5 }, Has.All.StartsWith("10.231.1."));
            Assert.That(new[] { a4, a5, gw }, Is.Unique);
            await PingAsync("cnmt-dk-c4-" + lab.Suffix, a5);

            // The plugin host restarted (SIGTERM ends it cleanly): it keeps its pools and endpoints, a new container
            // gets a fresh address and pings the ones that lived through the restart.
            await StopPluginHostAsync(serve);
            serve = await StartPluginHostAsync(lab, plugin, socket);
            var (a6, _) = await RunAsync("cnmt-dk-c6-" + lab.Suffix, net);
            Assert.That(a6, Does.StartWith("10.231.1."));
            Assert.That(new[] { a4, a5, gw }, Has.No.Member(a6), "the restarted plugin host kept the addresses it gave");
            await PingAsync("cnmt-dk-c6-" + lab.Suffix, a4);
            await PingAsync("cnmt-dk-c5-" + lab.Suffix, a6);

            // network rm (after its containers): docker forgets it and the plugin's bridge is gone.
            _ = await Docker("rm", "-f", "cnmt-dk-c4-" + lab.Suffix, "cnmt-dk-c5-" + lab.Suffix, "cnmt-dk-c6-" + lab.Suffix);
            _ = await Docker("network", "rm", net, other);
            Assert.That(await Docker("network", "ls", "--format", "{{.Name}}"), Does.Not.Contain(net).And.Not.Contain(other));
            Assert.That(await DeviceWithAddressAsync(lab, gw), Is.Null, "the plugin removed its bridge");
            Assert.That(await IpTool.LinkNamesAsync(lab.Host.Path), Has.No.Member(bridge));
        }
        finally
        {
            await daemon.StopAsync();
            await StopPluginHostAsync(serve);
        }
    }

    /// <summary>Starts <c>cnm plugin serve</c> (bridge driver, default IPAM) on <paramref name="socket"/> and waits until
    /// it accepts connections.</summary>
    private static async Task<StartedProcess> StartPluginHostAsync(CliLab lab, string plugin, string socket)
    {
        var serve = lab.Start(["plugin", "serve", "--name", plugin, "--driver", "bridge", "--ipam-driver", "default", "--socket", socket]);
        await Until.TrueAsync(() => serve.HasExited || Accepts(socket), $"cnm plugin serve listening on {socket}");
        if (serve.HasExited)
        {
            Assert.Fail($"cnm plugin serve ended at start: {await serve.WaitAsync(TimeSpan.FromSeconds(5))}");
        }

        return serve;
    }

    /// <summary>SIGTERM to the plugin host (its PID), which must end cleanly (exit 0) within 30 s.</summary>
    private static async Task StopPluginHostAsync(StartedProcess serve)
    {
        if (serve.HasExited)
        {
            return;
        }

        _ = await IpTool.ExecAsync("kill", "-TERM", serve.Pid.ToString(System.Globalization.CultureInfo.InvariantCulture));
        var result = await serve.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.That(result.ExitCode, Is.Zero, $"cnm plugin serve after SIGTERM: {result}");
    }

    private static bool Accepts(string socket)
    {
        if (!File.Exists(socket))
        {
            return false;
        }

        try
        {
            using var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            s.Connect(new UnixDomainSocketEndPoint(socket));
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    /// <summary>The device in the lab's host namespace that holds <paramref name="address"/>, or null.</summary>
    private static async Task<string?> DeviceWithAddressAsync(CliLab lab, string address)
    {
        var addresses = await IpTool.JsonAsync(lab.Host.Path, "-4", "addr", "show");
        var wanted = IPAddress.Parse(address).ToString();
        foreach (var link in addresses.EnumerateArray())
        {
            if (link.TryGetProperty("addr_info", out var info) && info.EnumerateArray().Any(a => a.GetProperty("local").GetString() == wanted))
            {
                return link.GetProperty("ifname").GetString();
            }
        }

        return null;
    }
}
