using System.Globalization;
using System.Net;
using System.Text.Json;
using CnmSharp.Testing;

namespace CnmSharp.Cli.Tests;

/// <summary>
/// The consistency checks every multi-process test makes, on a quiet state (no operation running): what the store
/// holds, read through fresh <c>cnm</c> processes (<c>network ls</c>/<c>inspect</c>, <c>sandbox ls</c>/<c>inspect</c>),
/// against itself and against the kernel (<c>ip -json</c> in each sandbox namespace and in the host namespace).
/// <list type="bullet">
/// <item>per network: no IPv4/IPv6 address and no MAC held by two endpoints; no endpoint on the gateway or an
/// auxiliary address; every endpoint address inside a subnet of the network; no two networks with overlapping
/// subnets;</item>
/// <item>each sandbox's endpoints are listed by their network with the same id, MAC and address;</item>
/// <item>per sandbox: the interfaces in its namespace (but <c>lo</c>) are exactly those its endpoints name, each with
/// the endpoint's MAC and addresses (global scope), no more, no fewer;</item>
/// <item>host: every bridge network has exactly one bridge (the link holding its gateway address) and every bridge
/// belongs to exactly one network; every veth in the host namespace is the peer of exactly one sandbox interface and
/// is a port of the bridge of that endpoint's network.</item>
/// </list>
/// </summary>
internal static class StateInvariants
{
    /// <summary>Reads the store through <c>cnm</c> and checks everything; fails the test listing every violation.</summary>
    /// <param name="lab">The lab.</param>
    /// <param name="when">Names the moment, for the message.</param>
    /// <returns>The store as read, for further checks.</returns>
    public static async Task<StoreView> AssertConsistentAsync(CliLab lab, string when)
    {
        var view = await StoreView.ReadAsync(lab);
        var violations = await CheckAsync(lab, view);
        if (violations.Count > 0)
        {
            Assert.Fail($"{when}: {violations.Count} invariant violation(s):\n  " + string.Join("\n  ", violations));
        }

        return view;
    }

    /// <summary>Every violation of the invariants in <paramref name="view"/> and the kernel (empty when consistent).</summary>
    public static async Task<List<string>> CheckAsync(CliLab lab, StoreView view)
    {
        var violations = new List<string>();
        CheckNetworks(view, violations);
        var hostPeers = new List<(int HostIndex, string EndpointId, string NetworkId, string Where)>();
        foreach (var sandbox in view.Sandboxes)
        {
            await CheckSandboxAsync(view, sandbox, hostPeers, violations);
        }

        await CheckHostAsync(lab, view, hostPeers, violations);
        return violations;
    }

    /// <summary>Fails unless the store holds only the default networks (none, host, bridge) without endpoints and no
    /// sandbox, the run directory holds no namespace, the invariants hold, and the host namespace holds exactly
    /// <paramref name="baseline"/>.</summary>
    public static async Task AssertOnlyDefaultsAsync(CliLab lab, HostSnapshot baseline, string when)
    {
        var problems = await OnlyDefaultsProblemsAsync(lab, baseline);
        if (problems.Count > 0)
        {
            Assert.Fail($"{when}: the state is not back to the default networks only:\n  " + string.Join("\n  ", problems));
        }
    }

    /// <summary>What <see cref="AssertOnlyDefaultsAsync"/> fails on (empty when nothing).</summary>
    public static async Task<List<string>> OnlyDefaultsProblemsAsync(CliLab lab, HostSnapshot baseline)
    {
        var view = await StoreView.ReadAsync(lab);
        var problems = await CheckAsync(lab, view);
        var names = view.Networks.Select(n => n.Name).Order(StringComparer.Ordinal).ToList();
        if (!names.SequenceEqual(["bridge", "host", "none"]))
        {
            problems.Add($"networks left: {string.Join(", ", names)} (expected only bridge, host, none)");
        }

        problems.AddRange(view.Networks.Where(n => n.Endpoints.Count > 0)
            .Select(n => $"network {n.Name} still has endpoints: {string.Join(", ", n.Endpoints.Select(e => e.Name))}"));
        if (view.Sandboxes.Count > 0)
        {
            problems.Add($"sandboxes left: {string.Join(", ", view.Sandboxes.Select(s => s.ContainerId))}");
        }

        var netns = Path.Combine(lab.RunDirectory, "netns");
        if (Directory.Exists(netns) && Directory.EnumerateFileSystemEntries(netns).Any())
        {
            problems.Add($"namespace files left in {netns}: {string.Join(", ", Directory.EnumerateFileSystemEntries(netns).Select(Path.GetFileName))}");
        }

        var now = await HostSnapshot.TakeAsync(lab.Host.Path);
        problems.AddRange(baseline.Diff(now));
        return problems;
    }

    private static void CheckNetworks(StoreView view, List<string> violations)
    {
        foreach (var n in view.Networks)
        {
            var reserved = n.Gateways.Concat(n.AuxAddresses).ToHashSet();
            foreach (var group in n.Endpoints.Where(e => e.IPv4 is not null).GroupBy(e => e.IPv4!.Address).Where(g => g.Count() > 1))
            {
                violations.Add($"network {n.Name}: IPv4 address {group.Key} held by {Names(group)}");
            }

            foreach (var group in n.Endpoints.Where(e => e.IPv6 is not null).GroupBy(e => e.IPv6!.Address).Where(g => g.Count() > 1))
            {
                violations.Add($"network {n.Name}: IPv6 address {group.Key} held by {Names(group)}");
            }

            foreach (var group in n.Endpoints.Where(e => e.Mac.Length > 0).GroupBy(e => e.Mac).Where(g => g.Count() > 1))
            {
                violations.Add($"network {n.Name}: MAC {group.Key} held by {Names(group)}");
            }

            foreach (var e in n.Endpoints)
            {
                foreach (var a in new[] { e.IPv4, e.IPv6 }.OfType<Cidr>())
                {
                    if (reserved.Contains(a.Address))
                    {
                        violations.Add($"network {n.Name}: endpoint {e.Name} holds the reserved (gateway or auxiliary) address {a.Address}");
                    }

                    if (!n.Subnets.Any(s => s.Contains(a.Address)))
                    {
                        violations.Add($"network {n.Name}: endpoint {e.Name} address {a} is in no subnet of the network ({string.Join(", ", n.Subnets)})");
                    }
                }
            }
        }

        for (var i = 0; i < view.Networks.Count; i++)
        {
            for (var j = i + 1; j < view.Networks.Count; j++)
            {
                var (a, b) = (view.Networks[i], view.Networks[j]);
                foreach (var sa in a.Subnets)
                {
                    foreach (var sb in b.Subnets.Where(sb => sb.BaseAddress.AddressFamily == sa.BaseAddress.AddressFamily && (sa.Contains(sb.BaseAddress) || sb.Contains(sa.BaseAddress))))
                    {
                        violations.Add($"networks {a.Name} ({sa}) and {b.Name} ({sb}) have overlapping subnets");
                    }
                }
            }
        }

        foreach (var s in view.Sandboxes)
        {
            foreach (var e in s.Endpoints)
            {
                var network = view.Networks.FirstOrDefault(n => n.Id == e.NetworkId);
                var listed = network?.Endpoints.FirstOrDefault(x => x.Id == e.Id);
                if (listed is null)
                {
                    violations.Add($"sandbox {s.ContainerId}: endpoint {e.Name} ({Short(e.Id)}) is not listed by its network {e.NetworkName}");
                }
                else if (listed.ContainerKey != s.ContainerId || listed.Mac != e.Mac || !Equals(listed.IPv4, e.IPv4) || !Equals(listed.IPv6, e.IPv6))
                {
                    violations.Add($"sandbox {s.ContainerId}: endpoint {e.Name} differs between sandbox inspect ({e.Mac} {e.IPv4} {e.IPv6}) and network inspect ({listed.ContainerKey}: {listed.Mac} {listed.IPv4} {listed.IPv6})");
                }
            }
        }
    }

    private static async Task CheckSandboxAsync(StoreView view, SandboxView s, List<(int, string, string, string)> hostPeers, List<string> violations)
    {
        if (s.UsesHostNamespace)
        {
            return;
        }

        if (!File.Exists(s.Key))
        {
            violations.Add($"sandbox {s.ContainerId}: its namespace {s.Key} does not exist");
            return;
        }

        var links = await IpTool.JsonAsync(s.Key, "link", "show");
        var addresses = await IpTool.JsonAsync(s.Key, "addr", "show");
        var kernel = links.EnumerateArray()
            .Where(l => l.GetProperty("ifname").GetString() != "lo")
            .ToDictionary(l => l.GetProperty("ifname").GetString()!, l => l);
        var stored = s.Endpoints.Where(e => e.Interface is not null).ToList();
        var storedNames = stored.Select(e => e.Interface!).ToHashSet();
        foreach (var extra in kernel.Keys.Where(k => !storedNames.Contains(k)).Order(StringComparer.Ordinal))
        {
            violations.Add($"sandbox {s.ContainerId}: interface {extra} is in its namespace but no endpoint names it");
        }

        foreach (var e in stored)
        {
            if (!kernel.TryGetValue(e.Interface!, out var link))
            {
                violations.Add($"sandbox {s.ContainerId}: endpoint {e.Name} on {e.NetworkName} names interface {e.Interface}, which is not in its namespace");
                continue;
            }

            var mac = link.TryGetProperty("address", out var m) ? m.GetString() ?? "" : "";
            if (!string.Equals(mac, e.Mac, StringComparison.OrdinalIgnoreCase))
            {
                violations.Add($"sandbox {s.ContainerId}: {e.Interface} has MAC {mac} in the kernel, {e.Mac} in the store");
            }

            var inKernel = GlobalAddresses(addresses, e.Interface!);
            var inStore = new[] { e.IPv4, e.IPv6 }.OfType<Cidr>().Select(c => c.ToString()).Order(StringComparer.Ordinal).ToList();
            if (!inKernel.SequenceEqual(inStore))
            {
                violations.Add($"sandbox {s.ContainerId}: {e.Interface} ({e.NetworkName}) has [{string.Join(", ", inKernel)}] in the kernel, [{string.Join(", ", inStore)}] in the store");
            }

            var network = view.Networks.FirstOrDefault(n => n.Id == e.NetworkId);
            if (network?.Driver == "bridge")
            {
                if (link.TryGetProperty("link_index", out var peer))
                {
                    hostPeers.Add((peer.GetInt32(), e.Id, e.NetworkId, $"sandbox {s.ContainerId} {e.Interface}"));
                }
                else
                {
                    violations.Add($"sandbox {s.ContainerId}: {e.Interface} on bridge network {e.NetworkName} has no peer link");
                }
            }
        }
    }

    private static async Task CheckHostAsync(CliLab lab, StoreView view, List<(int HostIndex, string EndpointId, string NetworkId, string Where)> hostPeers, List<string> violations)
    {
        var links = (await IpTool.JsonAsync(lab.Host.Path, "link", "show")).EnumerateArray().ToList();
        var addresses = await IpTool.JsonAsync(lab.Host.Path, "addr", "show");
        var byIndex = links.ToDictionary(l => l.GetProperty("ifindex").GetInt32());
        var bridges = links.Where(l => Kind(l) == "bridge").Select(l => l.GetProperty("ifname").GetString()!).ToHashSet();
        var bridgeOf = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var n in view.Networks.Where(n => n.Driver == "bridge"))
        {
            var holders = n.Gateways.Where(g => g.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork)
                .SelectMany(g => AddressHolders(addresses, g)).Distinct().ToList();
            if (holders.Count != 1)
            {
                violations.Add($"network {n.Name}: {holders.Count} host link(s) hold its gateway {string.Join(", ", n.Gateways)}: [{string.Join(", ", holders)}]");
                continue;
            }

            if (!bridges.Contains(holders[0]))
            {
                violations.Add($"network {n.Name}: its gateway is on {holders[0]}, which is not a bridge");
                continue;
            }

            bridgeOf[n.Id] = holders[0];
        }

        foreach (var group in bridgeOf.GroupBy(kv => kv.Value).Where(g => g.Count() > 1))
        {
            violations.Add($"bridge {group.Key} serves {group.Count()} networks");
        }

        foreach (var orphan in bridges.Where(b => !bridgeOf.ContainsValue(b)).Order(StringComparer.Ordinal))
        {
            violations.Add($"host bridge {orphan} belongs to no network");
        }

        foreach (var group in hostPeers.GroupBy(p => p.HostIndex).Where(g => g.Count() > 1))
        {
            violations.Add($"host link {group.Key} is the peer of {string.Join(" and ", group.Select(p => p.Where))}");
        }

        var peerIndexes = hostPeers.Select(p => p.HostIndex).ToHashSet();
        foreach (var (index, endpointId, networkId, where) in hostPeers)
        {
            if (!byIndex.TryGetValue(index, out var hostLink) || Kind(hostLink) != "veth")
            {
                violations.Add($"{where}: its host peer (ifindex {index}) is not a veth in the host namespace");
                continue;
            }

            var master = hostLink.TryGetProperty("master", out var ms) ? ms.GetString() : null;
            if (bridgeOf.TryGetValue(networkId, out var bridge) && master != bridge)
            {
                violations.Add($"{where}: its host peer {hostLink.GetProperty("ifname").GetString()} is on {master ?? "no bridge"}, not on {bridge}");
            }
        }

        foreach (var veth in links.Where(l => Kind(l) == "veth" && !peerIndexes.Contains(l.GetProperty("ifindex").GetInt32())))
        {
            var master = veth.TryGetProperty("master", out var ms) ? ms.GetString() : null;
            violations.Add($"host veth {veth.GetProperty("ifname").GetString()} (on {master ?? "no bridge"}) is the peer of no endpoint's interface");
        }
    }

    private static string? Kind(JsonElement link) =>
        link.TryGetProperty("linkinfo", out var info) && info.TryGetProperty("info_kind", out var kind) ? kind.GetString() : null;

    /// <summary>The global-scope addresses of <paramref name="ifname"/> as <c>address/prefix</c>, sorted.</summary>
    internal static List<string> GlobalAddresses(JsonElement addrShow, string ifname) =>
        [.. addrShow.EnumerateArray()
            .Where(l => l.GetProperty("ifname").GetString() == ifname)
            .SelectMany(l => l.GetProperty("addr_info").EnumerateArray())
            .Where(a => a.GetProperty("scope").GetString() == "global")
            .Select(a => $"{a.GetProperty("local").GetString()}/{a.GetProperty("prefixlen").GetInt32()}")
            .Order(StringComparer.Ordinal)];

    private static IEnumerable<string> AddressHolders(JsonElement addrShow, IPAddress address) =>
        addrShow.EnumerateArray()
            .Where(l => l.GetProperty("addr_info").EnumerateArray().Any(a => IPAddress.Parse(a.GetProperty("local").GetString()!).Equals(address)))
            .Select(l => l.GetProperty("ifname").GetString()!);

    private static string Names(IEnumerable<EndpointView> endpoints) =>
        string.Join(", ", endpoints.Select(e => $"{e.Name} ({Short(e.Id)})"));

    private static string Short(string id) => id.Length > 12 ? id[..12] : id;
}

/// <summary>An address with its prefix length.</summary>
internal sealed record Cidr(IPAddress Address, int Prefix)
{
    public static Cidr? Parse(string? text)
    {
        if (string.IsNullOrEmpty(text))
        {
            return null;
        }

        var slash = text.IndexOf('/', StringComparison.Ordinal);
        return slash < 0
            ? new Cidr(IPAddress.Parse(text), -1)
            : new Cidr(IPAddress.Parse(text[..slash]), int.Parse(text[(slash + 1)..], CultureInfo.InvariantCulture));
    }

    public override string ToString() => Prefix < 0 ? Address.ToString() : $"{Address}/{Prefix}";
}

/// <summary>An endpoint as <c>network inspect</c> (Containers) or <c>sandbox inspect</c> (Endpoints) shows it.</summary>
/// <param name="ContainerKey">Network inspect: the key under Containers (the container id when joined, else
/// <c>ep-&lt;id&gt;</c>); sandbox inspect: null.</param>
internal sealed record EndpointView(string Id, string Name, string? ContainerKey, string NetworkId, string NetworkName, string? Interface, string Mac, Cidr? IPv4, Cidr? IPv6)
{
    public bool Joined => ContainerKey is not null && !ContainerKey.StartsWith("ep-", StringComparison.Ordinal);
}

/// <summary>A network as <c>network inspect</c> shows it.</summary>
internal sealed record NetworkView(string Id, string Name, string Driver, IReadOnlyList<IPNetwork> Subnets, IReadOnlyList<IPAddress> Gateways, IReadOnlyList<IPAddress> AuxAddresses, IReadOnlyList<EndpointView> Endpoints);

/// <summary>A sandbox as <c>sandbox inspect</c> shows it.</summary>
internal sealed record SandboxView(string Id, string ContainerId, string Key, bool UsesHostNamespace, IReadOnlyList<EndpointView> Endpoints);

/// <summary>The store as fresh <c>cnm</c> processes read it.</summary>
internal sealed record StoreView(IReadOnlyList<NetworkView> Networks, IReadOnlyList<SandboxView> Sandboxes)
{
    public static async Task<StoreView> ReadAsync(CliLab lab)
    {
        var networkNames = await ListColumnAsync(lab, ["network", "ls"], 1);
        var containerIds = await ListColumnAsync(lab, ["sandbox", "ls"], 1);
        var networks = new List<NetworkView>();
        if (networkNames.Count > 0)
        {
            using var doc = JsonDocument.Parse(await OkAsync(lab, ["network", "inspect", .. networkNames]));
            networks.AddRange(doc.RootElement.EnumerateArray().Select(ParseNetwork));
        }

        var sandboxes = new List<SandboxView>();
        if (containerIds.Count > 0)
        {
            using var doc = JsonDocument.Parse(await OkAsync(lab, ["sandbox", "inspect", .. containerIds]));
            sandboxes.AddRange(doc.RootElement.EnumerateArray().Select(ParseSandbox));
        }

        return new StoreView(networks, sandboxes);
    }

    private static async Task<List<string>> ListColumnAsync(CliLab lab, string[] args, int column)
    {
        var output = await OkAsync(lab, args);
        return [.. output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Skip(1)
            .Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[column])];
    }

    private static async Task<string> OkAsync(CliLab lab, string[] args)
    {
        var r = await lab.CnmAsync(args);
        Assert.That(r.ExitCode, Is.Zero, $"cnm {string.Join(' ', args)}: {r}");
        return r.StdOut;
    }

    private static NetworkView ParseNetwork(JsonElement n)
    {
        var id = n.GetProperty("Id").GetString()!;
        var name = n.GetProperty("Name").GetString()!;
        var configs = n.GetProperty("IPAM").GetProperty("Config").EnumerateArray().ToList();
        var endpoints = n.GetProperty("Containers").EnumerateObject().Select(c => new EndpointView(
            c.Value.GetProperty("EndpointID").GetString()!,
            c.Value.GetProperty("Name").GetString()!,
            c.Name,
            id,
            name,
            null,
            c.Value.GetProperty("MacAddress").GetString()!,
            Cidr.Parse(c.Value.GetProperty("IPv4Address").GetString()),
            Cidr.Parse(c.Value.GetProperty("IPv6Address").GetString()))).ToList();
        return new NetworkView(
            id,
            name,
            n.GetProperty("Driver").GetString()!,
            [.. configs.Select(c => IPNetwork.Parse(c.GetProperty("Subnet").GetString()!))],
            [.. configs.Where(c => c.TryGetProperty("Gateway", out var g) && g.ValueKind == JsonValueKind.String).Select(c => IPAddress.Parse(c.GetProperty("Gateway").GetString()!))],
            [.. configs.Where(c => c.TryGetProperty("AuxiliaryAddresses", out var a) && a.ValueKind == JsonValueKind.Object)
                .SelectMany(c => c.GetProperty("AuxiliaryAddresses").EnumerateObject().Select(a => IPAddress.Parse(a.Value.GetString()!)))],
            endpoints);
    }

    private static SandboxView ParseSandbox(JsonElement s) => new(
        s.GetProperty("Id").GetString()!,
        s.GetProperty("ContainerId").GetString()!,
        s.GetProperty("Key").GetString()!,
        s.GetProperty("UsesHostNamespace").GetBoolean(),
        [.. s.GetProperty("Endpoints").EnumerateArray().Select(e => new EndpointView(
            e.GetProperty("EndpointID").GetString()!,
            e.GetProperty("Name").GetString()!,
            null,
            e.GetProperty("NetworkID").GetString()!,
            e.GetProperty("Network").GetString()!,
            e.GetProperty("Interface").GetString(),
            e.GetProperty("MacAddress").GetString()!,
            Cidr.Parse(e.GetProperty("IPv4Address").GetString()),
            Cidr.Parse(e.GetProperty("IPv6Address").GetString())))]);
}

/// <summary>
/// What a host namespace holds, as comparable lines: links (name, kind, master, MTU), global addresses, main-table
/// routes, and the iptables and ip6tables rules (counters and comments dropped). Taken right after the first
/// <c>cnm</c> command created the default networks, it is what the namespace must hold again once everything else is
/// removed.
/// </summary>
internal sealed record HostSnapshot(IReadOnlyList<string> Lines)
{
    public static async Task<HostSnapshot> TakeAsync(string hostPath)
    {
        var lines = new List<string>();
        foreach (var l in (await IpTool.JsonAsync(hostPath, "link", "show")).EnumerateArray())
        {
            var kind = l.TryGetProperty("linkinfo", out var info) && info.TryGetProperty("info_kind", out var k) ? k.GetString() : "-";
            var master = l.TryGetProperty("master", out var m) ? m.GetString() : "-";
            lines.Add($"link {l.GetProperty("ifname").GetString()} kind={kind} master={master} mtu={l.GetProperty("mtu").GetInt32()}");
        }

        var addresses = await IpTool.JsonAsync(hostPath, "addr", "show");
        foreach (var l in addresses.EnumerateArray())
        {
            var name = l.GetProperty("ifname").GetString()!;
            lines.AddRange(StateInvariants.GlobalAddresses(addresses, name).Select(a => $"addr {name} {a}"));
        }

        foreach (var family in new[] { "-4", "-6" })
        {
            foreach (var r in (await IpTool.JsonAsync(hostPath, family, "route", "show")).EnumerateArray())
            {
                var dst = r.GetProperty("dst").GetString();
                if (dst is not null && dst.StartsWith("fe80:", StringComparison.Ordinal))
                {
                    continue;
                }

                lines.Add($"route{family} {dst} dev={Str(r, "dev")} gw={Str(r, "gateway")} scope={Str(r, "scope")} proto={Str(r, "protocol")}");
            }
        }

        foreach (var tool in new[] { "iptables-save", "ip6tables-save" })
        {
            var result = await IpTool.ExecAsync("nsenter", $"--net={hostPath}", tool);
            if (result.ExitCode != 0)
            {
                throw new InvalidOperationException($"{tool} in {hostPath} exited {result.ExitCode}: {result.StandardError.Trim()}");
            }

            var table = "";
            foreach (var raw in result.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                var line = raw.Trim();
                if (line.StartsWith('#') || line == "COMMIT")
                {
                    continue;
                }

                if (line.StartsWith('*'))
                {
                    table = line[1..];
                    continue;
                }

                if (line.StartsWith(':'))
                {
                    line = System.Text.RegularExpressions.Regex.Replace(line, @"\s*\[\d+:\d+\]$", "");
                }

                lines.Add($"{tool} {table} {line}");
            }
        }

        lines.Sort(StringComparer.Ordinal);
        return new HostSnapshot(lines);
    }

    /// <summary>The lines only one of the two snapshots has (as multisets): <c>missing:</c> for those gone since this
    /// one, <c>extra:</c> for those added.</summary>
    public IReadOnlyList<string> Diff(HostSnapshot now)
    {
        var missing = Lines.ToList();
        var extra = new List<string>();
        foreach (var line in now.Lines)
        {
            if (!missing.Remove(line))
            {
                extra.Add(line);
            }
        }

        return [.. missing.Select(l => "host namespace missing: " + l), .. extra.Select(l => "host namespace extra: " + l)];
    }

    private static string Str(JsonElement e, string property) =>
        e.TryGetProperty(property, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString()! : "-";
}
