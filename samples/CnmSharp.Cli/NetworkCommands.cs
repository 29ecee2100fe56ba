using System.CommandLine;
using System.Globalization;
using System.Net;
using System.Text.Json;
using CnmSharp.Cli.Formatting;
using CnmSharp.Drivers;

namespace CnmSharp.Cli;

/// <summary><c>cnm network ...</c>.</summary>
internal static class NetworkCommands
{
    public static Command Build()
    {
        var network = new Command("network", "Manage networks");
        network.Subcommands.Add(Create());
        network.Subcommands.Add(List());
        network.Subcommands.Add(Inspect());
        network.Subcommands.Add(Remove());
        network.Subcommands.Add(Prune());
        network.Subcommands.Add(Connect());
        network.Subcommands.Add(Disconnect());
        return network;
    }

    private static Command Create()
    {
        var driver = new Option<string>("--driver", "-d") { Description = "Driver that manages the network", DefaultValueFactory = _ => "bridge", HelpName = "DRIVER" };
        var subnet = Multi("--subnet", "Subnet in CIDR format (repeat for several pools; IPv6 ones need --ipv6)", "CIDR");
        var gateway = Multi("--gateway", "Gateway for the subnet at the same position", "IP");
        var ipRange = Multi("--ip-range", "Allocate container addresses from a sub-range (per subnet, same position)", "CIDR");
        var aux = Multi("--aux-address", "Auxiliary address reserved in the subnet that holds it", "name=ip");
        var ipv6 = new Option<bool>("--ipv6") { Description = "Enable IPv6" };
        var isInternal = new Option<bool>("--internal") { Description = "Restrict external access to the network" };
        var disableDns = new Option<bool>("--disable-dns") { Description = "No embedded DNS (127.0.0.11) for the network's sandboxes, and its names not served" };
        var opt = Multi("--opt", "Driver option", "k=v");
        opt.Aliases.Add("-o");
        var ipamDriver = new Option<string?>("--ipam-driver") { Description = "IPAM driver (default: default)", HelpName = "NAME" };
        var ipamOpt = Multi("--ipam-opt", "IPAM driver option", "k=v");
        var label = Multi("--label", "Label on the network", "k=v");
        var configOnly = new Option<bool>("--config-only") { Description = "Create a configuration-only network (settings for --config-from; no driver, no pool, no containers)" };
        var configFrom = new Option<string?>("--config-from") { Description = "Take the configuration (subnets, IPAM, IPv6, options, labels) from a configuration-only network", HelpName = "NETWORK" };
        var scope = new Option<string?>("--scope") { Description = "Network scope: local or global (global needs --store etcd://...; default: the driver's)", HelpName = "local|global" };
        var name = new Argument<string>("NAME") { Description = "Network name" };
        var cmd = new Command("create", "Create a network and print its id") { driver, subnet, gateway, ipRange, aux, ipv6, isInternal, disableDns, opt, ipamDriver, ipamOpt, label, configOnly, configFrom, scope, name };
        cmd.SetAction((parse, ct) => CliApp.RunAsync(parse, async context =>
        {
            var enableIPv6 = parse.GetValue(ipv6);
            var (v4, v6) = BuildIpamConfigs(parse.GetValue(subnet)!, parse.GetValue(gateway)!, parse.GetValue(ipRange)!, parse.GetValue(aux)!);
            if (v6.Count > 0 && !enableIPv6)
            {
                throw new UsageException("an IPv6 --subnet needs --ipv6");
            }

            var options = new NetworkCreateOptions
            {
                DriverOptions = KeyValues.Parse(parse.GetValue(opt)!, "--opt"),
                Labels = KeyValues.Parse(parse.GetValue(label)!, "--label"),
                IpamOptions = KeyValues.Parse(parse.GetValue(ipamOpt)!, "--ipam-opt"),
                IpamDriver = parse.GetValue(ipamDriver),
                EnableIPv6 = enableIPv6,
                Internal = parse.GetValue(isInternal),
                DisableDns = parse.GetValue(disableDns),
                IPv4Config = v4,
                IPv6Config = v6,
                ConfigOnly = parse.GetValue(configOnly),
                ConfigFrom = parse.GetValue(configFrom),
                Scope = parse.GetValue(scope) switch
                {
                    null => null,
                    "local" => Drivers.DriverScope.Local,
                    "global" => Drivers.DriverScope.Global,
                    var other => throw new UsageException($"--scope {other}: expected local or global"),
                },
            };
            await using var controller = await context.OpenControllerAsync(ct).ConfigureAwait(false);
            var created = await controller.CreateNetworkAsync(parse.GetValue(name)!, parse.GetValue(driver)!, options, ct).ConfigureAwait(false);
            Console.WriteLine(created.Id);
            return 0;
        }));
        return cmd;
    }

    internal static (List<IpamConfig> V4, List<IpamConfig> V6) BuildIpamConfigs(string[] subnets, string[] gateways, string[] ranges, string[] auxAddresses)
    {
        if (subnets.Length == 0 && (gateways.Length > 0 || ranges.Length > 0 || auxAddresses.Length > 0))
        {
            throw new UsageException("--gateway, --ip-range and --aux-address need a --subnet");
        }

        if (gateways.Length > subnets.Length || ranges.Length > subnets.Length)
        {
            throw new UsageException("more --gateway or --ip-range values than --subnet values");
        }

        var parsed = subnets.Select(s => StrictAddress.ParseNetwork(s, "--subnet")).ToArray();
        for (var i = 0; i < gateways.Length; i++)
        {
            var address = StrictAddress.Parse(gateways[i], "--gateway", parsed[i].BaseAddress.AddressFamily);
            if (!parsed[i].Contains(address))
            {
                throw new UsageException($"--gateway {gateways[i]}: not in --subnet {subnets[i]}");
            }
        }

        for (var i = 0; i < ranges.Length; i++)
        {
            var range = StrictAddress.ParseNetwork(ranges[i], "--ip-range");
            if (range.BaseAddress.AddressFamily != parsed[i].BaseAddress.AddressFamily || range.PrefixLength < parsed[i].PrefixLength || !parsed[i].Contains(range.BaseAddress))
            {
                throw new UsageException($"--ip-range {ranges[i]}: not in --subnet {subnets[i]}");
            }
        }

        var auxBySubnet = parsed.Select(_ => new Dictionary<string, string>(StringComparer.Ordinal)).ToArray();
        foreach (var (key, value) in KeyValues.Parse(auxAddresses, "--aux-address"))
        {
            var address = StrictAddress.TryParse(value) ?? throw new UsageException($"--aux-address {key}={value}: invalid IP address");
            var index = Array.FindIndex(parsed, n => n.Contains(address));
            if (index < 0)
            {
                throw new UsageException($"--aux-address {key}={value}: no --subnet contains it");
            }

            auxBySubnet[index][key] = value;
        }

        var v4 = new List<IpamConfig>();
        var v6 = new List<IpamConfig>();
        for (var i = 0; i < subnets.Length; i++)
        {
            var config = new IpamConfig
            {
                Subnet = subnets[i],
                Gateway = i < gateways.Length ? gateways[i] : null,
                IPRange = i < ranges.Length ? ranges[i] : null,
                AuxAddresses = auxBySubnet[i],
            };
            (parsed[i].BaseAddress.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? v6 : v4).Add(config);
        }

        return (v4, v6);
    }

    private static Command List()
    {
        var format = FormatOptions.List();
        var quiet = FormatOptions.Quiet("network");
        var noTrunc = FormatOptions.NoTrunc();
        var cmd = new Command("ls", "List networks") { format, quiet, noTrunc };
        cmd.Aliases.Add("list");
        cmd.SetAction((parse, ct) => CliApp.RunAsync(parse, async context =>
        {
            var listFormat = ListFormat.Parse(parse.GetValue(format));
            var trunc = !parse.GetValue(noTrunc);
            await using var controller = await context.OpenControllerAsync(ControllerAccess.ReadOnly, ct).ConfigureAwait(false);
            var networks = controller.Networks.OrderBy(n => n.Name, StringComparer.Ordinal).ToList();
            if (listFormat is not null)
            {
                Console.Write(listFormat.Render(ListFields.Networks(networks, trunc)));
                return 0;
            }

            if (parse.GetValue(quiet))
            {
                IdList.Write(networks.Select(n => n.Id), trunc);
                return 0;
            }

            var rows = networks.Select(n => new[] { trunc ? Short(n.Id) : n.Id, n.Name, n.Driver, n.Scope }).ToList();
            Table.Write(["NETWORK ID", "NAME", "DRIVER", "SCOPE"], rows);
            return 0;
        }));
        return cmd;
    }

    private static Command Inspect()
    {
        var names = new Argument<string[]>("NETWORK") { Description = "Network names or ids", Arity = ArgumentArity.OneOrMore };
        var format = FormatOptions.Inspect();
        var cmd = new Command("inspect", "Show networks as a JSON array") { format, names };
        cmd.SetAction((parse, ct) => CliApp.RunAsync(parse, async context =>
        {
            var inspectFormat = InspectFormat.Parse(parse.GetValue(format));
            await using var controller = await context.OpenControllerAsync(ControllerAccess.ReadOnly, ct).ConfigureAwait(false);
            var networks = parse.GetValue(names)!.Select(controller.GetNetwork).ToList();
            if (inspectFormat is not null)
            {
                Console.Write(inspectFormat.Render(networks));
                return 0;
            }

            Console.WriteLine(InspectJson.Network(networks));
            return 0;
        }));
        return cmd;
    }

    private static Command Remove()
    {
        var names = new Argument<string[]>("NETWORK") { Description = "Network names or ids", Arity = ArgumentArity.OneOrMore };
        var cmd = new Command("rm", "Remove networks") { names };
        cmd.Aliases.Add("remove");
        cmd.SetAction((parse, ct) => CliApp.RunAsync(parse, async context =>
        {
            await using var controller = await context.OpenControllerAsync(ct).ConfigureAwait(false);
            return await CliApp.RemoveEachAsync(parse.GetValue(names)!, name => controller.GetNetwork(name).DeleteAsync(ct).AsTask()).ConfigureAwait(false);
        }));
        return cmd;
    }

    private static Command Prune()
    {
        var cmd = new Command("prune", "Remove all networks without endpoints (except none, host and bridge)");
        cmd.SetAction((parse, ct) => CliApp.RunAsync(parse, async context =>
        {
            await using var controller = await context.OpenControllerAsync(ct).ConfigureAwait(false);
            // Configuration-only networks last: the networks that took their configuration go first.
            var unused = controller.Networks
                .Where(n => n.Endpoints.Count == 0 && !n.PreDefined)
                .OrderBy(n => n.ConfigOnly).ThenBy(n => n.Name, StringComparer.Ordinal).ToList();
            if (unused.Count > 0)
            {
                Console.WriteLine("Deleted Networks:");
            }

            foreach (var network in unused)
            {
                await network.DeleteAsync(ct).ConfigureAwait(false);
                Console.WriteLine(network.Name);
            }

            return 0;
        }));
        return cmd;
    }

    private static Command Connect()
    {
        var ip = new Option<string?>("--ip") { Description = "IPv4 address", HelpName = "IP" };
        var ip6 = new Option<string?>("--ip6") { Description = "IPv6 address", HelpName = "IP" };
        var alias = Multi("--alias", "Network-scoped alias", "ALIAS");
        var priority = new Option<int>("--priority") { Description = "Gateway priority of the endpoint in the sandbox", HelpName = "N" };
        var publish = Multi("--publish", "Publish a container's port(s) to the host (no host port: an ephemeral one, printed)", "[IP:][HOSTPORT[-END]:]CONTAINERPORT[-END][/tcp|udp|sctp]");
        publish.Aliases.Add("-p");
        var macAddress = new Option<string?>("--mac-address") { Description = "MAC address of the sandbox's interface (e.g. 92:d0:c6:0a:29:33)", HelpName = "MAC" };
        var linkLocal = Multi("--link-local-ip", "Link-local address of the interface (169.254.0.0/16 or fe80::/10)", "IP");
        var driverOpt = Multi("--driver-opt", "Driver option for the endpoint (given at create and join)", "k=v");
        var networkArg = new Argument<string>("NETWORK");
        var sandboxArg = new Argument<string>("SANDBOX") { Description = "Sandbox container id (or sandbox id)" };
        var cmd = new Command("connect", "Connect a sandbox to a network: create an endpoint named after its container and join it")
        {
            ip, ip6, alias, priority, publish, macAddress, linkLocal, driverOpt, networkArg, sandboxArg,
        };
        cmd.SetAction((parse, ct) => CliApp.RunAsync(parse, async context =>
        {
            var driverOptions = KeyValues.Parse(parse.GetValue(driverOpt)!, "--driver-opt");
            var bindings = parse.GetValue(publish)!.SelectMany(ParsePublish).ToList();
            var options = new EndpointCreateOptions
            {
                IPv4Address = parse.GetValue(ip) is { } v4 ? StrictAddress.Parse(v4, "--ip", System.Net.Sockets.AddressFamily.InterNetwork) : null,
                IPv6Address = parse.GetValue(ip6) is { } v6 ? StrictAddress.Parse(v6, "--ip6", System.Net.Sockets.AddressFamily.InterNetworkV6) : null,
                Aliases = parse.GetValue(alias)!,
                MacAddress = parse.GetValue(macAddress) is { } mac ? ParseMac(mac) : null,
                LinkLocalAddresses = parse.GetValue(linkLocal)!.Select(ParseLinkLocal).ToList(),
                PortBindings = bindings,
                ExposedPorts = bindings.Select(b => new TransportPort(b.Protocol, b.ContainerPort)).Distinct().ToList(),
                DriverOptions = driverOptions,
            };
            LibraryRules.Check("network connect", options.Validate);
            await using var controller = await context.OpenControllerAsync(ct).ConfigureAwait(false);
            var network = controller.GetNetwork(parse.GetValue(networkArg)!);
            var sandbox = SandboxCommands.Find(controller, parse.GetValue(sandboxArg)!);
            var endpoint = await network.CreateEndpointAsync(sandbox.ContainerId, options, ct).ConfigureAwait(false);
            try
            {
                await endpoint.JoinAsync(sandbox, new JoinOptions { Priority = parse.GetValue(priority), DriverOptions = driverOptions }, ct).ConfigureAwait(false);
            }
            catch
            {
                await endpoint.DeleteAsync(force: true, CancellationToken.None).ConfigureAwait(false);
                throw;
            }

            if (bindings.Count > 0)
            {
                await PrintPublishedAsync(sandbox, endpoint, ct).ConfigureAwait(false);
            }

            await DnsCommands.NotifyAsync(context, controller.EmbeddedDnsSandboxCount > 0, ct).ConfigureAwait(false);
            return 0;
        }));
        return cmd;
    }

    /// <summary>One <c>-p</c> value: Docker's syntax (<see cref="PortSpec"/>), then the library's rules for a binding.</summary>
    private static IReadOnlyList<PortBinding> ParsePublish(string spec)
    {
        var bindings = PortSpec.Parse(spec);
        LibraryRules.Check($"--publish {spec}", new EndpointCreateOptions { PortBindings = bindings }.Validate);
        return bindings;
    }

    /// <summary>A MAC address as Docker's <c>--mac-address</c> takes it (six hex pairs separated by ':' or '-'), then
    /// the library's rules (unicast, not all zero).</summary>
    private static System.Net.NetworkInformation.PhysicalAddress ParseMac(string text)
    {
        var pairs = text.Split(text.Contains('-', StringComparison.Ordinal) ? '-' : ':');
        if (pairs.Length != 6 || pairs.Any(p => p.Length != 2 || !p.All(char.IsAsciiHexDigit)))
        {
            throw new UsageException($"--mac-address {text}: invalid MAC address (six hex pairs, e.g. 92:d0:c6:0a:29:33)");
        }

        var mac = new System.Net.NetworkInformation.PhysicalAddress(pairs.Select(p => byte.Parse(p, NumberStyles.HexNumber, CultureInfo.InvariantCulture)).ToArray());
        LibraryRules.Check($"--mac-address {text}", new EndpointCreateOptions { MacAddress = mac }.Validate);
        return mac;
    }

    /// <summary>A <c>--link-local-ip</c> address, as Docker takes it (an address; libnetwork gives it /16 for IPv4, /64
    /// for IPv6), then the library's rules (link-local, no scope).</summary>
    private static CidrAddress ParseLinkLocal(string text)
    {
        var address = StrictAddress.Parse(text, "--link-local-ip");
        var cidr = new CidrAddress(address, address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? 16 : 64);
        LibraryRules.Check($"--link-local-ip {text}", new EndpointCreateOptions { LinkLocalAddresses = [cidr] }.Validate);
        return cidr;
    }

    /// <summary>Prints the endpoint's published ports the way <c>docker port</c> does, one line each, with the host
    /// ports the driver gave (an ephemeral one resolved). Ports are published only by the endpoint that gives the
    /// sandbox its external connectivity (its gateway endpoint, not on an internal network) and only by a driver that
    /// publishes ports (bridge); otherwise a warning says they are not published now.</summary>
    private static async Task PrintPublishedAsync(Sandbox sandbox, Endpoint endpoint, CancellationToken ct)
    {
        var gateway = sandbox.GatewayEndpoint;
        if (gateway is null || gateway.Id != endpoint.Id || endpoint.Network.Internal)
        {
            await Console.Error.WriteLineAsync(CliText.Escape(
                $"cnm: warning: ports of {endpoint.Network.Name}:{endpoint.Name} are not published now: only the endpoint that gives the sandbox its gateway publishes ports"
                + (endpoint.Network.Internal ? " (an internal network never does)" : gateway is null ? "" : $" (now {gateway.Network.Name}:{gateway.Name}; see --priority)"))).ConfigureAwait(false);
            return;
        }

        var info = await endpoint.GetDriverInfoAsync(ct).ConfigureAwait(false);
        if (!info.TryGetValue(NetLabels.PortMap, out var text) || !PortMap.TryParse(text, out var published))
        {
            await Console.Error.WriteLineAsync(CliText.Escape($"cnm: warning: ports of {endpoint.Network.Name}:{endpoint.Name} are not published: driver {endpoint.Network.Driver} publishes no ports")).ConfigureAwait(false);
            return;
        }

        foreach (var binding in published)
        {
            Console.WriteLine(PortSpec.Format(binding));
        }
    }

    private static Command Disconnect()
    {
        var networkArg = new Argument<string>("NETWORK");
        var sandboxArg = new Argument<string>("SANDBOX") { Description = "Sandbox container id (or sandbox id)" };
        var cmd = new Command("disconnect", "Disconnect a sandbox from a network: leave and delete its endpoint") { networkArg, sandboxArg };
        cmd.SetAction((parse, ct) => CliApp.RunAsync(parse, async context =>
        {
            await using var controller = await context.OpenControllerAsync(ct).ConfigureAwait(false);
            var network = controller.GetNetwork(parse.GetValue(networkArg)!);
            var sandbox = SandboxCommands.Find(controller, parse.GetValue(sandboxArg)!);
            var endpoint = sandbox.Endpoints.FirstOrDefault(e => e.Network.Id == network.Id)
                ?? throw new CliException($"container \"{sandbox.ContainerId}\" is not connected to network \"{network.Name}\"");
            await endpoint.LeaveAsync(sandbox, ct).ConfigureAwait(false);
            await endpoint.DeleteAsync(cancellationToken: ct).ConfigureAwait(false);
            await DnsCommands.NotifyAsync(context, needed: false, ct).ConfigureAwait(false);
            return 0;
        }));
        return cmd;
    }

    internal static Option<string[]> Multi(string name, string description, string helpName) =>
        new(name) { Description = description, HelpName = helpName, DefaultValueFactory = _ => [], AllowMultipleArgumentsPerToken = false };

    internal static string Short(string id) => id.Length > 12 ? id[..12] : id;
}

/// <summary>The output of <c>ls -q</c>: one id a line.</summary>
internal static class IdList
{
    public static void Write(IEnumerable<string> ids, bool trunc)
    {
        foreach (var id in ids)
        {
            Console.WriteLine(trunc ? NetworkCommands.Short(id) : id);
        }
    }
}

/// <summary><c>k=v</c> lists.</summary>
internal static class KeyValues
{
    public static Dictionary<string, string> Parse(IEnumerable<string> items, string option)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var item in items)
        {
            var eq = item.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0)
            {
                throw new UsageException($"{option} {item}: expected key=value");
            }

            result[item[..eq]] = item[(eq + 1)..];
        }

        return result;
    }
}

/// <summary>Left-aligned columns separated by three spaces, like docker's tables. Control characters in a cell are
/// escaped, so every row is one line.</summary>
internal static class Table
{
    public static void Write(string[] headers, IReadOnlyList<string[]> rawRows)
    {
        var rows = rawRows.Select(r => r.Select(CliText.Escape).ToArray()).ToList();
        var widths = headers.Select((h, i) => Math.Max(h.Length, rows.Count == 0 ? 0 : rows.Max(r => r[i].Length))).ToArray();
        Console.WriteLine(Format(headers, widths));
        foreach (var row in rows)
        {
            Console.WriteLine(Format(row, widths));
        }
    }

    private static string Format(string[] cells, int[] widths) =>
        string.Join("   ", cells.Select((c, i) => i == cells.Length - 1 ? c : c.PadRight(widths[i]))).TrimEnd();
}
