namespace CnmSharp.Firewall.Iptables;

/// <summary>Creates <see cref="IptablesFirewallBackend"/>s.</summary>
public sealed class IptablesFirewallBackendFactory : IFirewallBackendFactory
{
    private readonly IptablesFirewallBackendOptions _options;

    /// <summary>Creates a factory.</summary>
    /// <param name="options">Settings applied to every backend (the namespace path is set per backend).</param>
    public IptablesFirewallBackendFactory(IptablesFirewallBackendOptions? options = null) =>
        _options = options ?? new IptablesFirewallBackendOptions();

    /// <inheritdoc />
    public string Name => IptablesFirewallBackend.BackendName;

    /// <inheritdoc />
    public IFirewallBackend Create(string? hostNamespacePath) =>
        new IptablesFirewallBackend(_options with { HostNamespacePath = hostNamespacePath });
}
