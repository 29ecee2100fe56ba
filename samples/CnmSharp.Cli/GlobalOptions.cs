using System.CommandLine;
using CnmSharp.Store.Etcd;

namespace CnmSharp.Cli;

/// <summary>The options every command takes.</summary>
internal static class GlobalOptions
{
    public const string DefaultStateDirectory = "/var/lib/cnmsharp";
    public const string DefaultRunDirectory = "/var/run/cnmsharp";

    public static readonly Option<string?> StateDir = new("--state-dir")
    {
        Description = $"State directory holding the embedded store (env CNM_STATE_DIR; default {DefaultStateDirectory})",
        Recursive = true,
        HelpName = "DIR",
    };

    public static readonly Option<string?> RunDir = new("--run-dir")
    {
        Description = $"Run directory for sandbox namespaces (default {DefaultRunDirectory})",
        Recursive = true,
        HelpName = "DIR",
    };

    public static readonly Option<string> Store = new("--store")
    {
        Description = "Global store shared by the cluster's hosts: embedded (none: this host alone) or etcd://HOST:PORT[,HOST:PORT...] (global-scope networks and their endpoints on every host; local state stays in the state directory)",
        Recursive = true,
        DefaultValueFactory = _ => "embedded",
        HelpName = "embedded|etcd://HOST:PORT[,...]",
    };

    // ---- cluster (global store) options, issue 13 ----
    public static readonly Option<string?> StoreCa = new("--store-ca") { Description = "PEM CA file for an etcd store over TLS (makes the etcd URLs https)", Recursive = true, HelpName = "FILE" };

    public static readonly Option<string?> StoreCert = new("--store-cert") { Description = "PEM client certificate for the etcd store (with --store-key)", Recursive = true, HelpName = "FILE" };

    public static readonly Option<string?> StoreKey = new("--store-key") { Description = "PEM private key of --store-cert", Recursive = true, HelpName = "FILE" };

    public static readonly Option<string?> NodeName = new("--node-name") { Description = "This host's name in the cluster (default: the host name)", Recursive = true, HelpName = "NAME" };

    public static readonly Option<string?> AdvertiseAddress = new("--advertise-address") { Description = "The address other hosts reach this one at (overlay tunnel endpoint)", Recursive = true, HelpName = "IP" };

    /// <summary>The etcd store of <c>--store etcd://...</c> with its TLS files; null for <c>embedded</c>.</summary>
    private static CnmSharp.Store.Etcd.EtcdStoreOptions? ReadGlobalStore(ParseResult parse, string store)
    {
        var ca = Given(parse.GetValue(StoreCa), "--store-ca");
        var cert = Given(parse.GetValue(StoreCert), "--store-cert");
        var key = Given(parse.GetValue(StoreKey), "--store-key");
        if (string.Equals(store, "embedded", StringComparison.Ordinal))
        {
            return ca is null && cert is null && key is null ? null : throw new UsageException("--store-ca, --store-cert and --store-key need --store etcd://...");
        }

        if (!store.StartsWith("etcd://", StringComparison.OrdinalIgnoreCase))
        {
            throw new UsageException($"--store {store}: unknown store (expected embedded or etcd://HOST:PORT[,HOST:PORT...])");
        }

        var scheme = ca is not null || cert is not null ? "https://" : "http://";
        var options = new CnmSharp.Store.Etcd.EtcdStoreOptions
        {
            CaCertificatePath = ca is null ? null : FullPath(ca, "--store-ca"),
            ClientCertificatePath = cert is null ? null : FullPath(cert, "--store-cert"),
            ClientKeyPath = key is null ? null : FullPath(key, "--store-key"),
        };
        foreach (var member in store["etcd://".Length..].Split(','))
        {
            options.Endpoints.Add(scheme + member.Trim());
        }

        try
        {
            options.Validate();
        }
        catch (CnmInvalidArgumentException ex)
        {
            throw new UsageException($"--store {store}: {ex.Reason}");
        }

        return options;
    }

    public static readonly Option<string?> HostNetns = new("--host-netns")
    {
        Description = "Network namespace file the controller treats as the host (default: the namespace cnm runs in)",
        Recursive = true,
        HelpName = "PATH",
    };

    public static readonly Option<string?> Firewall = new("--firewall")
    {
        Description = "Firewall backend: auto (nftables where the kernel has nf_tables, else iptables), nftables, iptables or none (env CNM_FIREWALL; default iptables)",
        Recursive = true,
        HelpName = "auto|nftables|iptables|none",
    };

    public static void AddTo(RootCommand root)
    {
        root.Options.Add(StateDir);
        root.Options.Add(RunDir);
        root.Options.Add(Store);
        root.Options.Add(HostNetns);
        root.Options.Add(Firewall);
        root.Options.Add(StoreCa);
        root.Options.Add(StoreCert);
        root.Options.Add(StoreKey);
        root.Options.Add(NodeName);
        root.Options.Add(AdvertiseAddress);
    }

    /// <summary>The --firewall choice (or CNM_FIREWALL); null when neither is given.</summary>
    private static CnmSharp.Firewall.FirewallBackendChoice? ReadFirewall(ParseResult parse)
    {
        var given = parse.GetValue(Firewall) ?? NullIfEmpty(Environment.GetEnvironmentVariable("CNM_FIREWALL"));
        return given switch
        {
            null => null,
            "auto" => CnmSharp.Firewall.FirewallBackendChoice.Auto,
            "nftables" => CnmSharp.Firewall.FirewallBackendChoice.Nftables,
            "iptables" => CnmSharp.Firewall.FirewallBackendChoice.Iptables,
            "none" => CnmSharp.Firewall.FirewallBackendChoice.None,
            _ => throw new UsageException($"--firewall {given}: expected auto, nftables, iptables or none"),
        };
    }

    public static CliContext Read(ParseResult parse)
    {
        var store = parse.GetValue(Store) ?? "embedded";
        var globalStore = ReadGlobalStore(parse, store);
        var nodeName = parse.GetValue(NodeName);
        if (nodeName is not null && !System.Text.RegularExpressions.Regex.IsMatch(nodeName, "^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"))
        {
            throw new UsageException($"--node-name {nodeName}: 1 to 63 of [A-Za-z0-9_.-], starting with a letter or digit");
        }

        var advertise = parse.GetValue(AdvertiseAddress);
        if (advertise is not null && StrictAddress.TryParse(advertise) is null)
        {
            throw new UsageException($"--advertise-address {advertise}: invalid IP address");
        }

        var explicitState = Given(parse.GetValue(StateDir), "--state-dir") ?? NullIfEmpty(Environment.GetEnvironmentVariable("CNM_STATE_DIR"));
        var explicitRun = Given(parse.GetValue(RunDir), "--run-dir");
        var hostNetns = Given(parse.GetValue(HostNetns), "--host-netns");
        if (hostNetns is not null && !File.Exists(hostNetns))
        {
            throw new CliException($"--host-netns {hostNetns}: no such namespace file");
        }

        return new CliContext(
            explicitState is null ? DefaultStateDirectory : FullPath(explicitState, "state directory"),
            explicitRun is null ? DefaultRunDirectory : FullPath(explicitRun, "--run-dir"),
            hostNetns is null ? null : FullPath(hostNetns, "--host-netns"),
            explicitState is not null,
            explicitRun is not null)
        {
            Firewall = ReadFirewall(parse),
            GlobalStore = globalStore,
            NodeName = nodeName,
            AdvertiseAddress = advertise,
        };
    }

    /// <summary>A path option's value when given: an empty (or blank) one, or one with a NUL, is a usage error.</summary>
    private static string? Given(string? value, string option)
    {
        if (value is null)
        {
            return null;
        }

        if (string.IsNullOrWhiteSpace(value) || value.Contains('\0', StringComparison.Ordinal))
        {
            throw new UsageException($"{option} \"{value}\": expected a path");
        }

        return value;
    }

    private static string FullPath(string path, string what)
    {
        try
        {
            return Path.GetFullPath(path);
        }
        catch (Exception ex) when (ex is ArgumentException or NotSupportedException or PathTooLongException)
        {
            throw new UsageException($"{what} {path}: {ex.Message}");
        }
    }

    private static string? NullIfEmpty(string? s) => string.IsNullOrEmpty(s) ? null : s;
}

/// <summary>The settings of one invocation.</summary>
internal sealed record CliContext(string StateDirectory, string RunDirectory, string? HostNamespacePath, bool StateDirectoryGiven, bool RunDirectoryGiven)
{
    /// <summary>The firewall backend chosen with --firewall or CNM_FIREWALL; null for the library's default.</summary>
    public CnmSharp.Firewall.FirewallBackendChoice? Firewall { get; init; }

    /// <summary>The etcd store of --store etcd://..., or null.</summary>
    public CnmSharp.Store.Etcd.EtcdStoreOptions? GlobalStore { get; init; }

    /// <summary>--node-name, or null for the host name.</summary>
    public string? NodeName { get; init; }

    /// <summary>--advertise-address, or null.</summary>
    public string? AdvertiseAddress { get; init; }

    /// <summary>Builds a read-write controller on the embedded store of the state directory (its recovery runs at
    /// start): for commands that change the state.</summary>
    /// <exception cref="CliException">The process lacks CAP_NET_ADMIN or CAP_SYS_ADMIN (checked first: nothing is
    /// created then).</exception>
    public Task<NetworkController> OpenControllerAsync(CancellationToken cancellationToken) =>
        OpenControllerAsync(ControllerAccess.ReadWrite, cancellationToken);

    /// <summary>Builds a controller on the embedded store of the state directory. Its warnings and errors are written
    /// to stderr, one line each (<see cref="StderrLoggerProvider"/>).</summary>
    /// <param name="access"><see cref="ControllerAccess.ReadOnly"/> for commands that only show the state (<c>ls</c>,
    /// <c>inspect</c>): the records are read under the state lock and nothing else runs (no driver start, recovery,
    /// firewall or default networks; see <see cref="CnmOptions.ReadOnly"/>), and every change is refused. On a store
    /// never started read-write (the first open creates the default networks), and when the read finds recovery work
    /// (<see cref="NetworkController.RecoveryPending"/>: a command killed halfway, a vanished namespace), the open is a
    /// read-write one instead, so the command shows the recovered state and its warnings.
    /// <see cref="ControllerAccess.ReadWrite"/> for everything else.</param>
    /// <param name="cancellationToken">Cancels the open.</param>
    /// <exception cref="CliException">The process lacks CAP_NET_ADMIN or CAP_SYS_ADMIN (checked first: nothing is
    /// created then).</exception>
    public async Task<NetworkController> OpenControllerAsync(ControllerAccess access, CancellationToken cancellationToken)
    {
        Privileges.Require();
        if (access == ControllerAccess.ReadOnly)
        {
            NetworkController? readOnly = null;
            try
            {
                readOnly = await Build(readOnly: true, cancellationToken).ConfigureAwait(false);
            }
            catch (CnmUnavailableException ex) when (ex.Code == CnmErrorCodes.StateNotInitialized)
            {
                // A fresh state: initialize it as any first command does, so that ls shows none, host and bridge.
            }

            if (readOnly is { RecoveryPending: false })
            {
                return readOnly;
            }

            if (readOnly is not null)
            {
                // A command was killed halfway (or a namespace vanished): show the state after recovery, as a
                // read-write start makes it, with its warnings, rather than the work left half done.
                await readOnly.DisposeAsync().ConfigureAwait(false);
            }
        }

        return await Build(readOnly: false, cancellationToken).ConfigureAwait(false);
    }

    private async Task<NetworkController> Build(bool readOnly, CancellationToken cancellationToken)
    {
        // The builder creates the state (0700) and run (0711) directories whatever the umask, and refuses them when
        // another user owns them or group or others can write them.
        var builder = new NetworkControllerBuilder();
        if (GlobalStore is { } etcd)
        {
            // --store etcd://...: global-scope networks and their endpoints are the cluster's (docs/overlay.md).
            builder.UseEtcdGlobalStore(etcd).Configure(o =>
            {
                o.Cluster.NodeName = NodeName;
                o.AdvertiseAddress = AdvertiseAddress;
            });
        }
        else if (AdvertiseAddress is not null)
        {
            builder.Configure(o => o.AdvertiseAddress = AdvertiseAddress);
        }

        return await builder
            .Configure(o =>
            {
                o.StateDirectory = StateDirectory;
                o.RunDirectory = RunDirectory;
                o.HostNamespacePath = HostNamespacePath;
                o.ReadOnly = readOnly;
                if (Firewall is { } firewall)
                {
                    o.Firewall = firewall;
                }

                // A cnm command is a short process: the sandboxes' DNS is served by 'cnm dns serve' (DnsCommands).
                o.Dns.Mode = EmbeddedDnsMode.External;
            })
            .UseLoggerFactory(StderrLoggerFactory.Instance)
            .BuildAsync(cancellationToken).ConfigureAwait(false);
    }
}

/// <summary>What a command does with the state.</summary>
internal enum ControllerAccess
{
    /// <summary>Changes it: the controller starts fully (drivers, recovery, default networks on a fresh store).</summary>
    ReadWrite,

    /// <summary>Only shows it: a read-only open (<see cref="CnmOptions.ReadOnly"/>).</summary>
    ReadOnly,
}
