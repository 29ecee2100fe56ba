using System.CommandLine;

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
        var hostMode = new Option<bool>("--host-mode") { Description = "Use the host namespace instead of a new one" };
        var share = new Option<string?>("--share")
        {
            Description = "Share the network namespace of another sandbox (container mode, Docker's --network container:SANDBOX): no endpoints of its own, its hosts and resolv.conf",
            HelpName = "SANDBOX",
        };
        var name = new Argument<string>("NAME") { Description = "Container id the sandbox belongs to" };
        var cmd = new Command("create", "Create a sandbox and print its id") { hostname, hostMode, share, name };
        cmd.SetAction((parse, ct) => CliApp.RunAsync(parse, async context =>
        {
            var shared = parse.GetValue(share);
            if (shared is not null && (parse.GetValue(hostMode) || parse.GetValue(hostname) is not null))
            {
                throw new UsageException("sandbox create: --share cannot be combined with --host-mode or --hostname (the shared sandbox's apply)");
            }

            await using var controller = await context.OpenControllerAsync(ct).ConfigureAwait(false);
            var sandbox = await controller.CreateSandboxAsync(
                parse.GetValue(name)!,
                new SandboxCreateOptions
                {
                    Hostname = parse.GetValue(hostname),
                    UseHostNamespace = parse.GetValue(hostMode),
                    ShareNetworkWith = shared is null ? null : Find(controller, shared).Id,
                },
                ct).ConfigureAwait(false);
            Console.WriteLine(sandbox.Id);
            return 0;
        }));
        return cmd;
    }

    private static Command List()
    {
        var cmd = new Command("ls", "List sandboxes");
        cmd.Aliases.Add("list");
        cmd.SetAction((parse, ct) => CliApp.RunAsync(parse, async context =>
        {
            await using var controller = await context.OpenControllerAsync(ControllerAccess.ReadOnly, ct).ConfigureAwait(false);
            var rows = controller.Sandboxes.OrderBy(s => s.ContainerId, StringComparer.Ordinal)
                .Select(s => new[]
                {
                    NetworkCommands.Short(s.Id),
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
        var cmd = new Command("inspect", "Show sandboxes as a JSON array") { names };
        cmd.SetAction((parse, ct) => CliApp.RunAsync(parse, async context =>
        {
            await using var controller = await context.OpenControllerAsync(ControllerAccess.ReadOnly, ct).ConfigureAwait(false);
            var sandboxes = parse.GetValue(names)!.Select(n => Find(controller, n)).ToList();
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
            return await CliApp.RemoveEachAsync(parse.GetValue(names)!, name => Find(controller, name).DeleteAsync(ct).AsTask()).ConfigureAwait(false);
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
