using System.CommandLine;
using CnmSharp.Cli.Formatting;

namespace CnmSharp.Cli;

/// <summary><c>cnm sandbox ...</c>.</summary>
internal static class SandboxCommands
{
    public static Command Build()
    {
        var sandbox = new Command("sandbox", "Manage sandboxes (a container's network namespace)");
        sandbox.Subcommands.Add(Create());
        sandbox.Subcommands.Add(List());
        sandbox.Subcommands.Add(Inspect());
        sandbox.Subcommands.Add(Remove());
        sandbox.Subcommands.Add(Exec());
        return sandbox;
    }

    /// <summary>A sandbox by container id, then by sandbox id or its 12-character prefix.</summary>
    public static Sandbox Find(NetworkController controller, string nameOrId) =>
        controller.FindSandboxByContainerId(nameOrId)
        ?? controller.FindSandboxById(nameOrId)
        ?? (nameOrId.Length >= 12 ? controller.Sandboxes.FirstOrDefault(s => s.Id.StartsWith(nameOrId, StringComparison.Ordinal)) : null)
        ?? throw new CnmNotFoundException("no_such_sandbox", $"sandbox \"{nameOrId}\"", "no such sandbox");

    private static Command Create()
    {
        var hostname = new Option<string?>("--hostname") { Description = "Hostname of the sandbox", HelpName = "H" };
        var domainname = new Option<string?>("--domainname") { Description = "Domain name of the sandbox (in its hosts file)", HelpName = "DOMAIN" };
        var dns = NetworkCommands.Multi("--dns", "DNS server for the sandbox's resolv.conf (replaces the host's)", "IP");
        var dnsSearch = NetworkCommands.Multi("--dns-search", "DNS search domain ('.' for none)", "DOMAIN");
        var dnsOption = NetworkCommands.Multi("--dns-option", "resolv.conf option (e.g. ndots:2)", "OPTION");
        var addHost = NetworkCommands.Multi("--add-host", "Extra hosts-file entry (name:ip or name=ip; an IPv6 address may be in brackets)", "NAME:IP");
        var hostMode = new Option<bool>("--host-mode") { Description = "Use the host namespace instead of a new one" };
        var share = new Option<string?>("--share")
        {
            Description = "Share the network namespace of another sandbox (container mode, Docker's --network container:SANDBOX): no endpoints of its own, its hosts and resolv.conf",
            HelpName = "SANDBOX",
        };
        var name = new Argument<string>("NAME") { Description = "Container id the sandbox belongs to" };
        var cmd = new Command("create", "Create a sandbox and print its id") { hostname, domainname, dns, dnsSearch, dnsOption, addHost, hostMode, share, name };
        cmd.SetAction((parse, ct) => CliApp.RunAsync(parse, async context =>
        {
            var shared = parse.GetValue(share);
            if (shared is not null)
            {
                var conflicting = new (bool Given, string Option)[]
                {
                    (parse.GetValue(hostMode), "--host-mode"),
                    (parse.GetValue(hostname) is not null, "--hostname"),
                    (parse.GetValue(domainname) is not null, "--domainname"),
                    (parse.GetValue(dns)!.Length > 0, "--dns"),
                    (parse.GetValue(dnsSearch)!.Length > 0, "--dns-search"),
                    (parse.GetValue(dnsOption)!.Length > 0, "--dns-option"),
                    (parse.GetValue(addHost)!.Length > 0, "--add-host"),
                }.Where(c => c.Given).Select(c => c.Option).ToList();
                if (conflicting.Count > 0)
                {
                    throw new UsageException($"sandbox create: --share cannot be combined with {string.Join(", ", conflicting)} (the shared sandbox's apply)");
                }
            }

            var options = new SandboxCreateOptions
            {
                Hostname = Checked(parse.GetValue(hostname), "--hostname", v => new SandboxCreateOptions { Hostname = v }),
                DomainName = Checked(parse.GetValue(domainname), "--domainname", v => new SandboxCreateOptions { DomainName = v }),
                DnsServers = parse.GetValue(dns)!.Select(v => StrictAddress.Parse(v, "--dns").ToString()).ToList(),
                DnsSearch = parse.GetValue(dnsSearch)!.Select(v => Checked(v, "--dns-search", x => new SandboxCreateOptions { DnsSearch = [x] })!).ToList(),
                DnsOptions = parse.GetValue(dnsOption)!.Select(v => Checked(v, "--dns-option", x => new SandboxCreateOptions { DnsOptions = [x] })!).ToList(),
                ExtraHosts = parse.GetValue(addHost)!.Select(ParseExtraHost).ToList(),
                UseHostNamespace = parse.GetValue(hostMode),
            };
            LibraryRules.Check("sandbox create", options.Validate);

            await using var controller = await context.OpenControllerAsync(ct).ConfigureAwait(false);
            var sandbox = await controller.CreateSandboxAsync(
                parse.GetValue(name)!,
                options with { ShareNetworkWith = shared is null ? null : Find(controller, shared).Id },
                ct).ConfigureAwait(false);
            Console.WriteLine(sandbox.Id);
            return 0;
        }));
        return cmd;
    }

    /// <summary>A value checked alone by the library's rules (<see cref="SandboxCreateOptions.Validate"/>), so a refusal
    /// names its option.</summary>
    private static string? Checked(string? value, string option, Func<string, SandboxCreateOptions> alone)
    {
        if (value is not null)
        {
            LibraryRules.Check($"{option} {value}", alone(value).Validate);
        }

        return value;
    }

    /// <summary>
    /// An <c>--add-host</c> value as Docker's CLI takes it (<c>opts.ValidateExtraHost</c>): <c>NAME=IP</c>, or else
    /// <c>NAME:IP</c> split at the first ':' (so <c>name:::1</c> is IPv6 <c>::1</c>); the address may be in brackets
    /// (<c>name:[::1]</c>); the name has no ':'. Docker's special value <c>host-gateway</c> is refused: cnm has no
    /// host-gateway address. Then the library's rules (an RFC 1123 name; an address without a scope).
    /// </summary>
    internal static HostEntry ParseExtraHost(string text)
    {
        var eq = text.IndexOf('=', StringComparison.Ordinal);
        var sep = eq >= 0 ? eq : text.IndexOf(':', StringComparison.Ordinal);
        var host = sep < 0 ? "" : text[..sep];
        var value = sep < 0 ? "" : text[(sep + 1)..];
        if (sep < 0 || host.Length == 0 || host.Contains(':', StringComparison.Ordinal))
        {
            throw new UsageException($"--add-host {text}: bad format (expected NAME:IP or NAME=IP)");
        }

        if (value == "host-gateway")
        {
            throw new UsageException($"--add-host {text}: host-gateway is not supported (cnm has no host-gateway address); give the address");
        }

        if (value.Length > 2 && value[0] == '[' && value[^1] == ']')
        {
            value = value[1..^1];
        }

        var entry = new HostEntry(host, StrictAddress.TryParse(value) ?? throw new UsageException($"--add-host {text}: invalid IP address \"{value}\""));
        LibraryRules.Check($"--add-host {text}", new SandboxCreateOptions { ExtraHosts = [entry] }.Validate);
        return entry;
    }

    private static Command List()
    {
        var format = FormatOptions.List();
        var quiet = FormatOptions.Quiet("sandbox");
        var noTrunc = FormatOptions.NoTrunc();
        var cmd = new Command("ls", "List sandboxes") { format, quiet, noTrunc };
        cmd.Aliases.Add("list");
        cmd.SetAction((parse, ct) => CliApp.RunAsync(parse, async context =>
        {
            var listFormat = ListFormat.Parse(parse.GetValue(format));
            var trunc = !parse.GetValue(noTrunc);
            await using var controller = await context.OpenControllerAsync(ControllerAccess.ReadOnly, ct).ConfigureAwait(false);
            var sandboxes = controller.Sandboxes.OrderBy(s => s.ContainerId, StringComparer.Ordinal).ToList();
            if (listFormat is not null)
            {
                Console.Write(listFormat.Render(ListFields.Sandboxes(sandboxes, trunc)));
                return 0;
            }

            if (parse.GetValue(quiet))
            {
                IdList.Write(sandboxes.Select(s => s.Id), trunc);
                return 0;
            }

            var rows = sandboxes
                .Select(s => new[]
                {
                    trunc ? NetworkCommands.Short(s.Id) : s.Id,
                    s.ContainerId,
                    s.Key,
                    s.Endpoints.Count == 0 ? "-" : string.Join(',', s.Endpoints.Select(e => $"{e.Network.Name}:{e.Name}")),
                    InspectJson.NetworkMode(s),
                }).ToList();
            Table.Write(["SANDBOX ID", "CONTAINER", "KEY", "ENDPOINTS", "NETWORK MODE"], rows);
            return 0;
        }));
        return cmd;
    }

    private static Command Inspect()
    {
        var names = new Argument<string[]>("SANDBOX") { Description = "Container ids or sandbox ids", Arity = ArgumentArity.OneOrMore };
        var format = FormatOptions.Inspect();
        var cmd = new Command("inspect", "Show sandboxes as a JSON array") { format, names };
        cmd.SetAction((parse, ct) => CliApp.RunAsync(parse, async context =>
        {
            var inspectFormat = InspectFormat.Parse(parse.GetValue(format));
            await using var controller = await context.OpenControllerAsync(ControllerAccess.ReadOnly, ct).ConfigureAwait(false);
            var sandboxes = parse.GetValue(names)!.Select(n => Find(controller, n)).ToList();
            if (inspectFormat is not null)
            {
                Console.Write(inspectFormat.Render(sandboxes, controller.Sandboxes));
                return 0;
            }

            Console.WriteLine(InspectJson.Sandbox(sandboxes, controller.Sandboxes));
            return 0;
        }));
        return cmd;
    }

    private static Command Remove()
    {
        var names = new Argument<string[]>("SANDBOX") { Description = "Container ids or sandbox ids", Arity = ArgumentArity.OneOrMore };
        var cmd = new Command("rm", "Remove sandboxes (their endpoints leave and are deleted)") { names };
        cmd.Aliases.Add("remove");
        cmd.SetAction((parse, ct) => CliApp.RunAsync(parse, async context =>
        {
            await using var controller = await context.OpenControllerAsync(ct).ConfigureAwait(false);
            var status = await CliApp.RemoveEachAsync(parse.GetValue(names)!, name => Find(controller, name).DeleteAsync(ct).AsTask()).ConfigureAwait(false);
            await DnsCommands.NotifyAsync(context, needed: false, ct).ConfigureAwait(false);
            return status;
        }));
        return cmd;
    }

    private static Command Exec()
    {
        var name = new Argument<string>("SANDBOX") { Description = "Container id or sandbox id" };
        var command = new Argument<string[]>("COMMAND") { Description = "Command and arguments, after --", Arity = ArgumentArity.OneOrMore };
        var cmd = new Command("exec", "Run a command in the sandbox's network namespace, with its /etc/hosts and /etc/resolv.conf (like ip netns exec): cnm sandbox exec NAME -- CMD ARGS...")
        {
            name, command,
        };
        cmd.SetAction((parse, ct) => CliApp.RunAsync(parse, async context =>
        {
            SandboxExec.Target target;
            await using (var controller = await context.OpenControllerAsync(ControllerAccess.ReadOnly, ct).ConfigureAwait(false))
            {
                target = SandboxExec.Target.Of(Find(controller, parse.GetValue(name)!), context);
            }

            return await SandboxExec.RunAsync(target, parse.GetValue(command)!, output: null, ct).ConfigureAwait(false);
        }));
        return cmd;
    }
}
