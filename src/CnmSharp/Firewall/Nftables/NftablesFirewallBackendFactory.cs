using CnmSharp.Diagnostics;
using Microsoft.Extensions.Logging;

namespace CnmSharp.Firewall.Nftables;

/// <summary>Creates <see cref="NftablesFirewallBackend"/>s.</summary>
public sealed class NftablesFirewallBackendFactory : IFirewallBackendFactory
{
    private readonly NftablesFirewallBackendOptions _options;
    private readonly ILoggerFactory? _loggerFactory;

    /// <summary>Creates a factory.</summary>
    /// <param name="options">Settings applied to every backend (the namespace path is set per backend).</param>
    /// <param name="loggerFactory">Logging for the backends; null for none.</param>
    public NftablesFirewallBackendFactory(NftablesFirewallBackendOptions? options = null, ILoggerFactory? loggerFactory = null)
    {
        _options = options ?? new NftablesFirewallBackendOptions();
        _loggerFactory = loggerFactory;
    }

    /// <inheritdoc />
    public string Name => NftablesFirewallBackend.BackendName;

    /// <inheritdoc />
    public IFirewallBackend Create(string? hostNamespacePath)
    {
        HostNamespaceGuard.Check(hostNamespacePath, "nftables firewall backend");
        return new NftablesFirewallBackend(_options with { HostNamespacePath = hostNamespacePath }, _loggerFactory?.CreateLogger<NftablesFirewallBackend>());
    }
}
