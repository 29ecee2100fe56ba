using System.Diagnostics;
using System.Text.Json;
using CnmSharp.Drivers;
using CnmSharp.Drivers.Bridge;
using CnmSharp.Store;
using CnmSharp.Testing;

namespace CnmSharp.IntegrationTests.Bridge;

/// <summary>
/// One test's world: a private host namespace, a controller on it (run and state directories in a temporary
/// directory, an in-memory store the test can inspect), and the processes the test started. Disposing tears all of it
/// down even after a failure; <see cref="TeardownAndAssertCleanAsync"/> does the same and asserts nothing is left.
/// </summary>
internal sealed class BridgeHarness : IAsyncDisposable
{
    private readonly List<Process> _processes = [];
    private bool _tornDown;

    private readonly IReadOnlyList<INetworkDriverFactory> _extraDrivers;

    private BridgeHarness(TestHostNamespace host, string tempDir, InMemoryKeyValueStore store, NetworkController controller, IReadOnlyList<INetworkDriverFactory> extraDrivers)
    {
        _extraDrivers = extraDrivers;
        Host = host;
        TempDir = tempDir;
        Store = store;
        Controller = controller;
    }

    public TestHostNamespace Host { get; }

    public string TempDir { get; }

    public InMemoryKeyValueStore Store { get; }

    public NetworkController Controller { get; private set; }

    /// <param name="forwardDrop">Sets the host namespace's FORWARD policy to DROP first.</param>
    /// <param name="defaultNetworks">Lets the controller create its default networks.</param>
    /// <param name="extraDrivers">Drivers registered beside the bridge (test drivers); again at each restart.</param>
    public static async Task<BridgeHarness> CreateAsync(bool forwardDrop = false, bool defaultNetworks = false, IReadOnlyList<INetworkDriverFactory>? extraDrivers = null)
    {
        extraDrivers ??= [];
        Assert.That(RootRuleCount(), Is.Zero, "the root namespace must have no rules before the test");
        var host = await TestHostNamespace.CreateAsync();
        var temp = Directory.CreateTempSubdirectory("cnmbr-").FullName;
        var store = new InMemoryKeyValueStore();
        try
        {
            if (forwardDrop)
            {
                Exec(host.Path, "iptables", "-P", "FORWARD", "DROP");
            }

            var controller = await Build(host, temp, store, defaultNetworks, extraDrivers);
            return new BridgeHarness(host, temp, store, controller, extraDrivers);
        }
        catch
        {
            await host.DisposeAsync();
            Directory.Delete(temp, recursive: true);
            throw;
        }
    }

    private static ValueTask<NetworkController> Build(TestHostNamespace host, string temp, IKeyValueStore store, bool defaultNetworks, IReadOnlyList<INetworkDriverFactory> extraDrivers)
    {
        var builder = new NetworkControllerBuilder(new CnmOptions
        {
            HostNamespacePath = host.Path,
            RunDirectory = Path.Combine(temp, "run"),
            StateDirectory = Path.Combine(temp, "state"),
            CreateDefaultNetworks = defaultNetworks,
        })
        .AddDriver(new BridgeDriverFactory(new BridgeDriverOptions { ReapTimeout = TimeSpan.FromSeconds(3) }))
        .UseStore(store);
        foreach (var driver in extraDrivers)
        {
            builder.AddDriver(driver);
        }

        return builder.BuildAsync();
    }

    /// <summary>Stops the controller and starts a new one on the same store and host namespace.</summary>
    public async Task RestartAsync()
    {
        await Controller.DisposeAsync();
        Controller = await Build(Host, TempDir, Store, defaultNetworks: false, _extraDrivers);
    }

    public ValueTask<Network> NetworkAsync(string name, string subnet, Dictionary<string, string>? options = null, bool @internal = false) =>
        Controller.CreateNetworkAsync(name, "bridge", new NetworkCreateOptions
        {
            IPv4Config = [new IpamConfig { Subnet = subnet }],
            DriverOptions = options ?? [],
            Internal = @internal,
        });

    /// <summary>A sandbox joined to <paramref name="network"/> through a new endpoint.</summary>
    public async Task<(Sandbox Sandbox, Endpoint Endpoint)> ContainerAsync(Network network, string name, IReadOnlyList<PortBinding>? ports = null, int priority = 0)
    {
        var sandbox = await Controller.CreateSandboxAsync(name);
        var endpoint = await network.CreateEndpointAsync(name, new EndpointCreateOptions { PortBindings = ports ?? [] });
        await endpoint.JoinAsync(sandbox, new JoinOptions { Priority = priority });
        return (sandbox, endpoint);
    }

    /// <summary>Pings from a namespace this test made (one retry for ARP).</summary>
    public static bool Ping(string fromNamespace, string address)
    {
        for (var i = 0; i < 2; i++)
        {
            if (TryExec(fromNamespace, "ping", "-c1", "-W1", address).Code == 0)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Starts a long-running program inside a namespace; it is killed (by pid) at teardown.</summary>
    public Process Start(string netns, params string[] args)
    {
        var info = new ProcessStartInfo("nsenter") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add("--net=" + netns);
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        var process = Process.Start(info)!;
        _processes.Add(process);
        return process;
    }

    public static string Exec(string netns, params string[] args)
    {
        var (code, stdout, stderr) = TryExec(netns, args);
        return code == 0 ? stdout : throw new InvalidOperationException($"{string.Join(' ', args)} in {netns} failed ({code}): {stderr}");
    }

    public static (int Code, string Stdout, string Stderr) TryExec(string netns, params string[] args) => Run(["nsenter", "--net=" + netns, .. args]);

    public static (int Code, string Stdout, string Stderr) Run(params string[] args) => Firewall.Sh.TryRun(args);

    /// <summary>The <c>-A</c> lines of iptables-save and ip6tables-save in a namespace (or the root one).</summary>
    public static List<string> Rules(string? netns)
    {
        var rules = new List<string>();
        foreach (var tool in new[] { "iptables-save", "ip6tables-save" })
        {
            var output = netns is null ? Run(tool).Stdout : Exec(netns, tool);
            string? table = null;
            foreach (var line in output.Split('\n'))
            {
                if (line.StartsWith('*'))
                {
                    table = line[1..];
                }
                else if (line.StartsWith("-A ", StringComparison.Ordinal))
                {
                    rules.Add($"{tool[..^5]} {table} {line}");
                }
            }
        }

        return rules;
    }

    public static int RootRuleCount() => Rules(null).Count;

    public List<string> HostLinks() => [.. JsonDocument.Parse(Exec(Host.Path, "ip", "-j", "link", "show")).RootElement.EnumerateArray().Select(l => l.GetProperty("ifname").GetString()!)];

    public static List<string> LinksOf(string netns) => [.. JsonDocument.Parse(Exec(netns, "ip", "-j", "link", "show")).RootElement.EnumerateArray().Select(l => l.GetProperty("ifname").GetString()!)];

    /// <summary>The default routes of a namespace as <c>via DEV</c> pairs.</summary>
    public static List<(string? Gateway, string? Dev)> DefaultRoutes(string netns) =>
        [.. JsonDocument.Parse(Exec(netns, "ip", "-j", "route", "show", "default")).RootElement.EnumerateArray()
            .Select(r => (r.TryGetProperty("gateway", out var g) ? g.GetString() : null, r.TryGetProperty("dev", out var d) ? d.GetString() : null))];

    /// <summary>The store keys that must be gone after the test: the bridge driver's records and the default IPAM's pools and addresses.</summary>
    public async Task<List<string>> LeftoverStoreKeysAsync() =>
        [.. (await Store.ListAsync("cnm/v1/")).Select(e => e.Key).Where(k =>
            k.StartsWith("cnm/v1/driver/bridge/", StringComparison.Ordinal)
            || (k.StartsWith("cnm/v1/ipam/", StringComparison.Ordinal) && (k.Contains("/pool/", StringComparison.Ordinal) || k.Contains("/addr/", StringComparison.Ordinal)))
            || k.StartsWith("cnm/v1/endpoint/", StringComparison.Ordinal)
            || k.StartsWith("cnm/v1/sandbox/", StringComparison.Ordinal)
            || k.StartsWith("cnm/v1/intent/", StringComparison.Ordinal))];

    /// <summary>Deletes every sandbox, endpoint and bridge (or extra driver's) network, and asserts that no link, namespace, mount, rule,
    /// driver record or IPAM allocation is left.</summary>
    public async Task TeardownAndAssertCleanAsync()
    {
        KillProcesses();
        await DeleteEverythingAsync();
        var leftoverKeys = await LeftoverStoreKeysAsync();
        Assert.Multiple(() =>
        {
            Assert.That(HostLinks(), Is.EquivalentTo(new[] { "lo" }), "links left in the host namespace");
            Assert.That(Rules(Host.Path), Is.Empty, "rules left in the host namespace");
            Assert.That(RootRuleCount(), Is.Zero, "rules in the root namespace");
            Assert.That(leftoverKeys, Is.Empty, "store records left");
            var netnsDir = Path.Combine(TempDir, "run", "netns");
            Assert.That(Directory.Exists(netnsDir) ? Directory.GetFileSystemEntries(netnsDir) : [], Is.Empty, "sandbox namespace files left");
            Assert.That(MountTable.LinesUnder(TempDir).Where(l => l.Contains(" - nsfs ", StringComparison.Ordinal)), Is.Empty, "namespace mounts left");
        });
        await DisposeAsync();
        Assert.That(MountTable.LinesUnder(TempDir), Is.Empty, "mounts left under the test's directory");
        Assert.That(MountTable.LinesUnder(Host.RunDirectory), Is.Empty, "mounts left under the host namespace's directory");
    }

    private async Task DeleteEverythingAsync()
    {
        foreach (var sandbox in Controller.Sandboxes)
        {
            await sandbox.DeleteAsync();
        }

        // Pre-defined networks (the controller's defaults) cannot be deleted; they go with the host namespace.
        foreach (var network in Controller.Networks.Where(n => (n.Driver == "bridge" || _extraDrivers.Any(d => d.Name == n.Driver)) && !n.PreDefined))
        {
            foreach (var endpoint in network.Endpoints)
            {
                await endpoint.DeleteAsync(force: true);
            }

            await network.DeleteAsync();
        }
    }

    private void KillProcesses()
    {
        foreach (var process in _processes)
        {
            try
            {
                if (!process.HasExited)
                {
                    process.Kill(entireProcessTree: true);
                    process.WaitForExit(5000);
                }
            }
            catch (InvalidOperationException)
            {
            }

            process.Dispose();
        }

        _processes.Clear();
    }

    public async ValueTask DisposeAsync()
    {
        if (_tornDown)
        {
            return;
        }

        _tornDown = true;
        KillProcesses();
        try
        {
            await DeleteEverythingAsync();
        }
        catch (Exception ex)
        {
            await TestContext.Out.WriteLineAsync("teardown: " + ex.Message);
        }

        await Controller.DisposeAsync();
        await Host.DisposeAsync();

        // The core makes <run>/netns a shared self-bind mount (as `ip netns add` does); it holds no namespace any more.
        foreach (var line in MountTable.LinesUnder(TempDir).Reverse())
        {
            var point = line.Split(' ')[4];
            Run("umount", "-l", point);
        }

        Directory.Delete(TempDir, recursive: true);
    }
}
