using System.Diagnostics;
using System.Text.Json;
using CnmSharp.IntegrationTests.Bridge;
using CnmSharp.IntegrationTests.Core;
using CnmSharp.TestHost;
using CnmSharp.Testing;

namespace CnmSharp.IntegrationTests.Sandboxes;

/// <summary>
/// Container mode on the real kernel, as root in a private host namespace: a sandbox that shares another's network
/// namespace sees its interfaces, keeps the namespace when the original goes (with the original's interfaces removed),
/// and the namespace and its bind mount go with the last user, across a restart and across processes.
/// </summary>
[RequiresRoot]
[NonParallelizable]
public class ContainerModeIntegrationTests
{
    private static SandboxCreateOptions Share(string with) => new() { ShareNetworkWith = with };

    /// <summary>The links of a namespace as name and MAC, ordered by name.</summary>
    private static List<(string Name, string? Mac)> Links(string netns) =>
        [.. JsonDocument.Parse(BridgeHarness.Exec(netns, "ip", "-j", "link", "show")).RootElement.EnumerateArray()
            .Select(l => (l.GetProperty("ifname").GetString()!, l.TryGetProperty("address", out var a) ? a.GetString() : null))
            .OrderBy(l => l.Item1, StringComparer.Ordinal)];

    /// <summary>The IPv4 addresses (CIDR) on a device in a namespace.</summary>
    private static List<string> Addresses(string netns, string device) =>
        [.. JsonDocument.Parse(BridgeHarness.Exec(netns, "ip", "-j", "-4", "addr", "show", "dev", device)).RootElement.EnumerateArray()
            .SelectMany(l => l.GetProperty("addr_info").EnumerateArray())
            .Select(a => $"{a.GetProperty("local").GetString()}/{a.GetProperty("prefixlen").GetInt32()}")];

    private static bool LoopbackUp(string netns) =>
        BridgeHarness.Exec(netns, "ip", "-j", "link", "show", "dev", "lo").Contains("\"UP\"", StringComparison.Ordinal);

    private static bool IsNamespaceMount(string path) =>
        MountTable.IsMountPoint(path) && MountTable.LinesUnder(path).Any(l => l.Contains(" - nsfs ", StringComparison.Ordinal));

    [Test]
    public async Task A_sharer_sees_exactly_the_interfaces_of_the_sandbox_it_shares_and_refuses_joins()
    {
        await using var h = await BridgeHarness.CreateAsync();
        var network = await h.NetworkAsync("cm-net", "10.77.70.0/24");
        var (original, endpoint) = await h.ContainerAsync(network, "cm-a");
        var (other, _) = await h.ContainerAsync(network, "cm-b");
        var sharer = await h.Controller.CreateSandboxAsync("cm-side", Share("cm-a"));

        var seenBySharer = Links(sharer.Key);
        Assert.Multiple(() =>
        {
            Assert.That(sharer.Key, Is.EqualTo(original.Key));
            Assert.That(seenBySharer, Is.EqualTo(Links(original.Key)), "the same links, by name and MAC");
            Assert.That(seenBySharer.Select(l => l.Name), Is.EqualTo(new[] { "eth0", "lo" }));
            Assert.That(seenBySharer.Single(l => l.Name == "eth0").Mac, Is.EqualTo(string.Join(':', endpoint.MacAddress!.GetAddressBytes().Select(b => b.ToString("x2", System.Globalization.CultureInfo.InvariantCulture)))));
            Assert.That(Addresses(sharer.Key, "eth0"), Is.EqualTo(new[] { endpoint.Address!.Value.ToString() }));
            Assert.That(BridgeHarness.Ping(sharer.Key, other.Endpoints.Single().Address!.Value.Address.ToString()), Is.True, "the sharer reaches the other container through the original's interface");
        });

        // A second endpoint joined to the original while the sharer lives appears to the sharer too.
        var second = await h.NetworkAsync("cm-net2", "10.77.71.0/24");
        var late = await second.CreateEndpointAsync("cm-late");
        await late.JoinAsync(original);
        Assert.That(Links(sharer.Key).Select(l => l.Name), Is.EqualTo(new[] { "eth0", "eth1", "lo" }));

        // No endpoint can join the sharer, and the refusal leaves nothing behind.
        var refused = await second.CreateEndpointAsync("cm-refused");
        var linksBefore = h.HostLinks();
        var ex = await Assert.ThrowsAsync<CnmConflictException>(async () => await refused.JoinAsync(sharer));
        Assert.Multiple(() =>
        {
            Assert.That(ex!.Code, Is.EqualTo(CnmErrorCodes.SharedNetworkNamespace));
            Assert.That(h.HostLinks(), Is.EquivalentTo(linksBefore), "no veth was made");
            Assert.That(Links(sharer.Key).Select(l => l.Name), Is.EqualTo(new[] { "eth0", "eth1", "lo" }));
        });

        await h.TeardownAndAssertCleanAsync();
    }

    [Test]
    public async Task Deleting_the_original_keeps_the_namespace_for_the_sharer_without_its_interfaces_and_the_last_user_takes_it_across_a_restart()
    {
        await using var h = await BridgeHarness.CreateAsync();
        var network = await h.NetworkAsync("cm-net", "10.77.72.0/24");
        var (original, endpoint) = await h.ContainerAsync(network, "cm-a");
        var sharer = await h.Controller.CreateSandboxAsync("cm-side", Share("cm-a"));
        var key = sharer.Key;
        var hostLinksWithOriginal = h.HostLinks();

        await original.DeleteAsync();
        await h.Controller.WaitForTeardownsAsync();

        Assert.Multiple(() =>
        {
            Assert.That(IsNamespaceMount(key), Is.True, "the namespace's bind mount stays for the sharer");
            Assert.That(Links(key).Select(l => l.Name), Is.EqualTo(new[] { "lo" }), "the original's interface is really gone");
            Assert.That(LoopbackUp(key), Is.True);
            Assert.That(BridgeHarness.Exec(key, "ping", "-c1", "-W1", "127.0.0.1"), Does.Contain("1 received"), "exec in the shared namespace works");
            Assert.That(h.HostLinks(), Has.Count.EqualTo(hostLinksWithOriginal.Count - 1), "the host end of the original's veth went with it");
            Assert.That(File.Exists(sharer.HostsPath), Is.True, "the shared hosts file stays");
            Assert.That(h.Controller.Sandboxes.Select(s => s.ContainerId), Is.EqualTo(new[] { "cm-side" }));
        });

        // A restart in between changes nothing.
        await h.RestartAsync();
        var reloaded = h.Controller.FindSandboxByContainerId("cm-side")!;
        Assert.Multiple(() =>
        {
            Assert.That(reloaded.SharesNetwork, Is.True);
            Assert.That(reloaded.SharedFromContainerId, Is.EqualTo("cm-a"));
            Assert.That(reloaded.Key, Is.EqualTo(key));
            Assert.That(IsNamespaceMount(key), Is.True, "the start's stale-sandbox check keeps a namespace that exists");
            Assert.That(Links(key).Select(l => l.Name), Is.EqualTo(new[] { "lo" }));
        });

        await reloaded.DeleteAsync();
        Assert.Multiple(() =>
        {
            Assert.That(File.Exists(key), Is.False, "the last user takes the namespace file");
            Assert.That(MountTable.LinesUnder(key), Is.Empty, "and its bind mount");
            Assert.That(Directory.Exists(reloaded.FilesDirectory), Is.False, "and the files");
        });
        Assert.That(endpoint.Sandbox, Is.Null);
        await h.TeardownAndAssertCleanAsync();
    }

    [Test]
    public async Task Deleting_both_at_once_removes_the_namespace_and_its_mount()
    {
        await using var h = await BridgeHarness.CreateAsync();
        var network = await h.NetworkAsync("cm-net", "10.77.73.0/24");
        var (original, _) = await h.ContainerAsync(network, "cm-a");
        var sharer = await h.Controller.CreateSandboxAsync("cm-side", Share("cm-a"));
        var key = original.Key;

        await Task.WhenAll(original.DeleteAsync().AsTask(), sharer.DeleteAsync().AsTask());

        Assert.Multiple(() =>
        {
            Assert.That(File.Exists(key), Is.False);
            Assert.That(MountTable.LinesUnder(key), Is.Empty);
        });
        await h.TeardownAndAssertCleanAsync();
    }

    [Test]
    public async Task A_second_process_deleting_the_original_keeps_the_namespace_of_the_sharer_this_process_holds()
    {
        var testHost = HelperProgram.Locate(typeof(ContainerModeIntegrationTests).Assembly, "CnmSharp.TestHost");
        await using var host = await TestHostNamespace.CreateAsync();
        var temp = Directory.CreateTempSubdirectory("cnmshare-").FullName;
        var state = Path.Combine(temp, "state");
        var run = Path.Combine(temp, "run");
        try
        {
            string key;
            await using (var controller = await StopWork.BuildAsync(host.Path, state, run, store: null))
            {
                var network = await StopWork.EnsureNetworkAsync(controller);
                var original = await controller.CreateSandboxAsync("cm-a");
                var endpoint = await network.CreateEndpointAsync("cm-a");
                await endpoint.JoinAsync(original);
                var sharer = await controller.CreateSandboxAsync("cm-side", Share("cm-a"));
                key = sharer.Key;
                Assert.That(Links(key).Select(l => l.Name), Is.EqualTo(new[] { "eth0", "lo" }));

                var (code, stdout, stderr) = await RunTestHostAsync(testHost, "delete-sandbox", state, run, host.Path, "cm-a");
                Assert.That(code, Is.Zero, stdout + stderr);

                Assert.Multiple(() =>
                {
                    Assert.That(IsNamespaceMount(key), Is.True, "the other process kept the namespace: this one's sharer uses it");
                    Assert.That(Links(key).Select(l => l.Name), Is.EqualTo(new[] { "lo" }), "the other process removed the original's interface");
                });

                // This controller learns of the delete at its next operation, and its sharer is then the last user.
                await controller.RefreshAsync();
                Assert.That(controller.FindSandboxByContainerId("cm-a"), Is.Null);
                await sharer.DeleteAsync();
                Assert.Multiple(() =>
                {
                    Assert.That(File.Exists(key), Is.False, "the last user took the namespace");
                    Assert.That(MountTable.LinesUnder(key), Is.Empty);
                    Assert.That(controller.Sandboxes, Is.Empty);
                });
                await controller.WaitForTeardownsAsync();
            }
        }
        finally
        {
            await StopInvariants.UnmountSandboxesAsync(run);
            foreach (var line in MountTable.LinesUnder(temp).Reverse())
            {
                BridgeHarness.Run("umount", "-l", line.Split(' ')[4]);
            }

            Directory.Delete(temp, recursive: true);
        }
    }

    private static async Task<(int Code, string Stdout, string Stderr)> RunTestHostAsync(string testHost, params string[] args)
    {
        var start = new ProcessStartInfo(HelperProgram.DotnetHost()) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(testHost);
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException("cannot start the test host");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(1));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }

        return (process.ExitCode, await stdout, await stderr);
    }
}
