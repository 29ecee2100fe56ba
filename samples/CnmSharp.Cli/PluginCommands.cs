using System.CommandLine;
using System.Runtime.InteropServices;
using CnmSharp.Drivers;
using CnmSharp.Drivers.Bridge;
using CnmSharp.Drivers.Ipvlan;
using CnmSharp.Drivers.Macvlan;
using CnmSharp.Ipam;
using CnmSharp.Ipam.Default;
using CnmSharp.Ipam.Null;
using CnmSharp.Plugins.Hosting;

namespace CnmSharp.Cli;

/// <summary>
/// <c>cnm plugin serve</c>: serves a CnmSharp driver (and IPAM) to a Docker daemon as a network plugin, on a unix
/// socket (<c>/run/docker/plugins/NAME.sock</c> by default) or on TCP with a discovery file, until SIGTERM or SIGINT.
/// Its state is the embedded store <c>plugins/NAME.db</c> in the state directory; the driver works in the host
/// namespace (<c>--host-netns</c>) with the firewall backend of <c>--firewall</c>.
/// </summary>
internal static class PluginCommands
{
    public static Command Build()
    {
        var name = new Option<string>("--name") { Description = "Plugin name (the daemon's driver and IPAM name; the socket's or discovery file's name)", Required = true, HelpName = "NAME" };
        var driver = new Option<string>("--driver") { Description = "Driver to serve: bridge, macvlan or ipvlan (only bridge can leave the interface for the daemon to move)", Required = true, HelpName = "DRIVER" };
        var ipamDriver = new Option<string?>("--ipam-driver") { Description = "IPAM to serve as well: default or null (default: none, the daemon uses its own)", HelpName = "IPAM" };
        var socket = new Option<string?>("--socket") { Description = "Unix socket to serve on (default /run/docker/plugins/NAME.sock)", HelpName = "PATH" };
        var listen = new Option<string?>("--listen") { Description = "Serve on TCP instead: http://127.0.0.1:PORT (plain http on loopback only) or https://ADDRESS:PORT with --tls-cert and --tls-key; writes NAME.spec or NAME.json in --spec-dir", HelpName = "URL" };
        var specDir = new Option<string>("--spec-dir") { Description = "Where a TCP listener writes its discovery file (removed on exit)", DefaultValueFactory = _ => PluginHostOptions.DefaultSpecDirectory, HelpName = "DIR" };
        var tlsCert = new Option<string?>("--tls-cert") { Description = "Server certificate (PEM) for https", HelpName = "FILE" };
        var tlsKey = new Option<string?>("--tls-key") { Description = "Server key (PEM) for https", HelpName = "FILE" };
        var tlsCa = new Option<string?>("--tls-ca") { Description = "CA (PEM) the daemon verifies the server with, written into NAME.json", HelpName = "FILE" };
        var serve = new Command("serve", "Serve a driver (and IPAM) to a Docker daemon as a network plugin until SIGTERM or SIGINT")
        {
            name, driver, ipamDriver, socket, listen, specDir, tlsCert, tlsKey, tlsCa,
        };
        serve.SetAction((parse, ct) => CliApp.RunAsync(parse, async context =>
        {
            var socketPath = parse.GetValue(socket);
            var listenUrl = parse.GetValue(listen);
            if (socketPath is not null && listenUrl is not null)
            {
                throw new UsageException("--socket and --listen: give one of them");
            }

            Uri? url = null;
            if (listenUrl is not null && !Uri.TryCreate(listenUrl, UriKind.Absolute, out url))
            {
                throw new UsageException($"--listen {listenUrl}: expected http://ADDRESS:PORT or https://ADDRESS:PORT");
            }

            var options = new PluginServerOptions
            {
                Host = new PluginHostOptions
                {
                    Name = parse.GetValue(name)!,
                    SocketPath = socketPath is null ? null : Path.GetFullPath(socketPath),
                    ListenUrl = url,
                    SpecDirectory = Path.GetFullPath(parse.GetValue(specDir)!),
                    CertificateFile = parse.GetValue(tlsCert),
                    KeyFile = parse.GetValue(tlsKey),
                    CAFile = parse.GetValue(tlsCa),
                },
                Driver = DriverFactory(parse.GetValue(driver)!),
                Ipam = parse.GetValue(ipamDriver) is { } ipam ? IpamFactory(ipam) : null,
                StateDirectory = context.StateDirectory,
                RunDirectory = context.RunDirectory,
                HostNamespacePath = context.HostNamespacePath,
                Firewall = context.Firewall ?? new CnmOptions().Firewall,
            };
            return await ServeAsync(options, ct);
        }));
        return new Command("plugin", "Serve CnmSharp drivers to Docker as network plugins") { serve };
    }

    private static INetworkDriverFactory DriverFactory(string name) => name switch
    {
        "bridge" => new BridgeDriverFactory(),
        "macvlan" => new MacvlanDriverFactory(),
        "ipvlan" => new IpvlanDriverFactory(),
        _ => throw new UsageException($"--driver {name}: expected bridge, macvlan or ipvlan"),
    };

    private static IIpamDriverFactory IpamFactory(string name) => name switch
    {
        IpamNames.Default => new DefaultIpamFactory(),
        IpamNames.Null => new NullIpamFactory(),
        _ => throw new UsageException($"--ipam-driver {name}: expected default or null"),
    };

    private static async Task<int> ServeAsync(PluginServerOptions options, CancellationToken cancellationToken)
    {
        Privileges.Require();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; stop.Cancel(); });
        using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; stop.Cancel(); });
        var server = await PluginServer.StartAsync(options, StderrLoggerFactory.Instance, stop.Token);
        await using (server)
        {
            var where = server.Host.SocketPath is { } path ? "unix://" + path : $"{server.Host.Address} ({server.Host.DiscoveryFile})";
            Console.WriteLine($"serving plugin {CliText.Escape(server.Host.Name)} on {CliText.Escape(where)}");
            try
            {
                await Task.Delay(Timeout.Infinite, stop.Token);
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                // SIGTERM or SIGINT: stop cleanly.
            }
        }

        return 0;
    }
}
