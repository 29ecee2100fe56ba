using CnmSharp.Diagnostics;
using Microsoft.Extensions.Logging;

namespace CnmSharp.Firewall.Iptables;

/// <summary>Creates <see cref="IptablesFirewallBackend"/>s.</summary>
public sealed class IptablesFirewallBackendFactory : IFirewallBackendFactory
{
    private readonly IptablesFirewallBackendOptions _options;
    private readonly ILoggerFactory? _loggerFactory;

    /// <summary>Creates a factory.</summary>
    /// <param name="options">Settings applied to every backend (the namespace path is set per backend).</param>
    /// <param name="loggerFactory">Logging for the backends; null for none.</param>
    public IptablesFirewallBackendFactory(IptablesFirewallBackendOptions? options = null, ILoggerFactory? loggerFactory = null)
    {
        _options = options ?? new IptablesFirewallBackendOptions();
        _loggerFactory = loggerFactory;
    }

    /// <inheritdoc />
    public string Name => IptablesFirewallBackend.BackendName;

    /// <inheritdoc />
    public IFirewallBackend Create(string? hostNamespacePath)
    {
        HostNamespaceGuard.Check(hostNamespacePath, "iptables firewall backend");
        return new IptablesFirewallBackend(_options with { HostNamespacePath = hostNamespacePath }, _loggerFactory?.CreateLogger<IptablesFirewallBackend>());
    }
}
