using System.ComponentModel.DataAnnotations;
using CnmSharp.Store;
using Microsoft.Extensions.Options;

namespace CnmSharp;

/// <summary>Options of a <see cref="NetworkController"/>.</summary>
public sealed class CnmOptions
{
    /// <summary>Where persistent state lives (the embedded store's file). Default <c>/var/lib/cnmsharp</c>.</summary>
    [Required]
    public string StateDirectory { get; set; } = "/var/lib/cnmsharp";

    /// <summary>Where runtime files live. Sandbox namespaces go under <c>&lt;RunDirectory&gt;/netns</c>. Default <c>/var/run/cnmsharp</c>.</summary>
    [Required]
    public string RunDirectory { get; set; } = "/var/run/cnmsharp";

    /// <summary>What an acknowledged write of the default store (<c>&lt;StateDirectory&gt;/cnm.db</c>) survives; ignored
    /// when the builder is given a store. Default <see cref="SqliteDurability.Tiered"/>: networks, their pools and the
    /// drivers' network records are synced to disk before a call returns (they survive a power loss); per-container
    /// records (endpoints, sandboxes, joins, port allocations) survive a process crash, and a power loss, which also
    /// clears the kernel state they describe, may undo the last of them. See <c>docs/store.md</c>.</summary>
    public SqliteDurability Durability { get; set; } = SqliteDurability.Tiered;

    /// <summary>The network namespace (a path such as <c>/run/netns/h1</c>) that plays the host for this
    /// controller; null for the process's own. Drivers do all host-side work there.</summary>
    public string? HostNamespacePath { get; set; }

    /// <summary>A stable id of this controller; generated and persisted on first start when null.</summary>
    [RegularExpression("^[0-9a-f]{64}$")]
    public string? ControllerId { get; set; }

    /// <summary>Refuse a network whose name is taken (Docker's behaviour; libnetwork itself allows it). Default true.</summary>
    public bool RejectDuplicateNetworkNames { get; set; } = true;

    /// <summary>On a fresh store, create the <see cref="DefaultNetworks"/> whose driver is registered. Default true.</summary>
    public bool CreateDefaultNetworks { get; set; } = true;

    /// <summary>The networks created once on a fresh store, as Docker creates <c>none</c>, <c>host</c> and
    /// <c>bridge</c>. Null (the default) means exactly those three; a network whose driver is not registered is skipped.</summary>
    [ValidateEnumeratedItems]
    public IList<DefaultNetwork>? DefaultNetworks { get; set; }

    /// <summary>The host's resolv.conf. A sandbox in the host's namespace without DNS settings of its own gets a
    /// byte-for-byte copy of it; other sandboxes' files are generated from it. Default <c>/etc/resolv.conf</c>.</summary>
    [Required]
    public string HostResolvConfPath { get; set; } = "/etc/resolv.conf";

    /// <summary>The host's hosts file, copied for a sandbox in the host's namespace without extra hosts. Default <c>/etc/hosts</c>.</summary>
    [Required]
    public string HostHostsPath { get; set; } = "/etc/hosts";

    /// <summary>
    /// Open the state for reading only (default false): the start reads the networks, endpoints and sandboxes under
    /// the state lock (a consistent view, between other processes' operations) and does nothing else: no driver or
    /// IPAM is created (so no kernel object, firewall rule or host port is touched), no recovery runs, no default
    /// network is created, no record is quarantined, no directory but the state directory is created. The
    /// controller shows the state as committed: objects marked for deletion are hidden, and what a process that died
    /// left half done stays as it is until a read-write controller recovers it. <see cref="NetworkController.RefreshAsync"/>
    /// reads again; every change (and driver registration, recovery, firewall reconciliation, driver data such as
    /// <see cref="Endpoint.GetDriverInfoAsync"/>) is refused with <see cref="CnmConflictException"/>
    /// (<see cref="CnmErrorCodes.ReadOnlyController"/>). A store never started read-write is refused with
    /// <see cref="CnmUnavailableException"/> (<see cref="CnmErrorCodes.StateNotInitialized"/>).
    /// </summary>
    public bool ReadOnly { get; set; }

    /// <summary>This node's address as drivers with global connectivity learn it in node discovery
    /// (<see cref="Drivers.IDiscoveryAwareDriver"/>) and as <see cref="Drivers.DriverContext.AdvertiseAddress"/> (the
    /// VXLAN tunnel endpoint of overlay networks). An IPv4 or IPv6 address without zone. Default null: <c>127.0.0.1</c>,
    /// what a dockerd outside a swarm sends.</summary>
    [IPAddressText]
    public string? AdvertiseAddress { get; set; }

    /// <summary>This controller as one host of a cluster sharing a global store (given to the builder with
    /// <c>UseGlobalStore</c>): its node name and liveness lease. See docs/architecture.md, "Two stores".</summary>
    [ValidateObjectMembers]
    public ClusterOptions Cluster { get; set; } = new();

    /// <summary>How unknown network and IPAM driver names are found as Docker plugins (directories, transport rules,
    /// retries, timeout). See <c>docs/plugins.md</c>.</summary>
    public Plugins.PluginOptions Plugins { get; set; } = new();

    /// <summary>
    /// The firewall backend (default <see cref="Firewall.FirewallBackendChoice.Iptables"/>): <c>Auto</c> takes nftables
    /// where the host namespace's kernel has nf_tables, else iptables; <c>None</c> programs no rule. Switching between
    /// iptables and nftables on an existing state removes the old backend's rules as each driver reconciles at start.
    /// A firewall factory given to the builder (<c>UseFirewall</c>) is used instead, unless this is <c>None</c>.
    /// </summary>
    [EnumDataType(typeof(Firewall.FirewallBackendChoice))]
    public Firewall.FirewallBackendChoice Firewall { get; set; } = CnmSharp.Firewall.FirewallBackendChoice.Iptables;

    /// <summary>
    /// With the nftables backend (chosen or taken by <c>Auto</c>): watch CnmSharp's tables for changes other processes
    /// make and repair the networks they touched at once, without waiting for a reconcile (see
    /// <see cref="Firewall.Nftables.NftablesFirewallBackendOptions.WatchForDrift"/>). Off by default; turn it on in the one
    /// long-lived controller that owns the host namespace's firewall, never in short-lived processes such as the
    /// <c>cnm</c> CLI. Ignored with iptables, with <c>None</c> and when the builder is given a firewall factory.
    /// </summary>
    public bool FirewallDriftWatch { get; set; }

    /// <summary>The IPAM driver used when a network names none. Default <c>default</c>.</summary>
    [Required]
    public string DefaultIpamDriver { get; set; } = "default";

    /// <summary>The embedded DNS (<c>127.0.0.11</c> in every sandbox with an endpoint on a network that does not
    /// disable it): who serves it, timeouts and limits. See docs/dns.md.</summary>
    public EmbeddedDnsOptions Dns { get; set; } = new();

    /// <summary>The gateway network (libnetwork's <c>docker_gwbridge</c>) that gives outbound access to sandboxes whose
    /// endpoints are all on networks without external connectivity (overlay). See docs/overlay.md.</summary>
    [ValidateObjectMembers]
    public GatewayNetworkOptions GatewayNetwork { get; set; } = new();
}

/// <summary>The gateway network (<see cref="CnmOptions.GatewayNetwork"/>): when a sandbox joins an endpoint whose driver
/// gives no external connectivity (<see cref="Drivers.DriverCapability.NoExternalConnectivity"/>), on a network that is
/// not internal, and no other endpoint of the sandbox has a gateway, the controller joins the sandbox to this local
/// network too, with an endpoint named <c>gateway_&lt;first 12 characters of the sandbox id&gt;</c> that gives the
/// default route; it creates the network on first need.</summary>
public sealed class GatewayNetworkOptions
{
    /// <summary>Give such sandboxes a gateway network endpoint. Default true.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>The network's name (a network of that name that already exists is used as it is). Default
    /// <c>docker_gwbridge</c>.</summary>
    [Required]
    [RegularExpression("^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$")]
    public string Name { get; set; } = "docker_gwbridge";

    /// <summary>The driver that creates the network. Default <c>bridge</c>.</summary>
    [Required]
    [RegularExpression("^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,254}$")]
    public string Driver { get; set; } = "bridge";

    /// <summary>The driver options the network is created with. Null (the default) means libnetwork's: the bridge
    /// device named as the network (when the name is a valid interface name of at most 15 characters),
    /// inter-container traffic off and masquerading on.</summary>
    public IDictionary<string, string>? DriverOptions { get; set; }

    /// <summary>The driver options in effect (<see cref="DriverOptions"/>, else libnetwork's).</summary>
    /// <returns>A new dictionary.</returns>
    public Dictionary<string, string> EffectiveDriverOptions()
    {
        if (DriverOptions is { } given)
        {
            return new Dictionary<string, string>(given, StringComparer.Ordinal);
        }

        var options = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            [NetLabels.BridgePrefix + ".enable_icc"] = "false",
            [NetLabels.BridgePrefix + ".enable_ip_masquerade"] = "true",
        };
        if (Name.Length <= 15 && Name.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-' or '.'))
        {
            options[NetLabels.BridgePrefix + ".name"] = Name;
        }

        return options;
    }
}

/// <summary>This controller as one host of a cluster (<see cref="CnmOptions.Cluster"/>); used only with a global store.</summary>
public sealed class ClusterOptions
{
    /// <summary>This host's name in the cluster: unique among the controllers sharing the global store, it names the
    /// host's liveness record and the endpoints the host made. 1 to 63 of <c>[A-Za-z0-9_.-]</c>, starting with a
    /// letter or digit. Default null: the machine's host name.</summary>
    [RegularExpression("^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")]
    public string? NodeName { get; set; }

    /// <summary>The time to live of the host's liveness lease (<c>cnm/v1/node/&lt;name&gt;</c> in the global store):
    /// when the controller is gone for that long, other hosts remove its endpoints from the cluster's view. Default
    /// 10 s; 2 s to 10 min.</summary>
    public TimeSpan NodeLeaseTtl { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>The node name in effect: <see cref="NodeName"/>, else the machine's host name.</summary>
    /// <returns>The name.</returns>
    public string EffectiveNodeName() => NodeName ?? Environment.MachineName;
}

/// <summary>Validates that a string option, when set, is an IPv4 or IPv6 address without zone (through the strict
/// parser every address option goes through).</summary>
[AttributeUsage(AttributeTargets.Property)]
public sealed class IPAddressTextAttribute : ValidationAttribute
{
    /// <summary>Creates the attribute.</summary>
    public IPAddressTextAttribute()
        : base("The field {0} must be an IPv4 or IPv6 address.")
    {
    }

    /// <inheritdoc />
    public override bool IsValid(object? value) =>
        value is null || (value is string text && IPAddressText.TryParseStrict(text, out _));
}

/// <summary>Validates <see cref="CnmOptions"/> (source-generated).</summary>
[OptionsValidator]
public sealed partial class CnmOptionsValidator : IValidateOptions<CnmOptions>
{
}

/// <summary>A network the controller creates once on a fresh store.</summary>
public sealed class DefaultNetwork
{
    /// <summary>The network's name.</summary>
    [Required]
    public string Name { get; set; } = "";

    /// <summary>The driver's name.</summary>
    [Required]
    public string Driver { get; set; } = "";

    /// <summary>Driver options.</summary>
    public IDictionary<string, string> DriverOptions { get; set; } = new Dictionary<string, string>(StringComparer.Ordinal);

    /// <summary>No embedded DNS on this network (<see cref="NetworkCreateOptions.DisableDns"/>): Docker gives its default
    /// <c>bridge</c> network none.</summary>
    public bool DisableDns { get; set; }

    /// <summary>The standard set: <c>none</c> (null driver), <c>host</c> (host driver), <c>bridge</c> (bridge driver,
    /// without embedded DNS, as Docker's default bridge).</summary>
    /// <returns>A new list.</returns>
    public static IList<DefaultNetwork> Standard() =>
    [
        new() { Name = "none", Driver = "null" },
        new() { Name = "host", Driver = "host" },
        new() { Name = "bridge", Driver = "bridge", DriverOptions = new Dictionary<string, string>(StringComparer.Ordinal) { [NetLabels.BridgePrefix + ".default_bridge"] = "true" }, DisableDns = true },
    ];
}
