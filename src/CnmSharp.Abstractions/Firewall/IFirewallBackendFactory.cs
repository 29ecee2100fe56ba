namespace CnmSharp.Firewall;

/// <summary>
/// Creates firewall backends. Registered once (for example in dependency injection); a controller asks it for the
/// backend of its host namespace and offers that backend to drivers through <c>DriverContext.Services</c> as
/// <see cref="IFirewallBackend"/>.
/// </summary>
public interface IFirewallBackendFactory
{
    /// <summary>The backend's name, for example <c>iptables</c>.</summary>
    string Name { get; }

    /// <summary>Creates a backend that programs the given network namespace.</summary>
    /// <param name="hostNamespacePath">The path of the host network namespace (for example <c>/run/netns/h1</c>), or
    /// null for the process's own.</param>
    /// <returns>A backend; it holds no kernel resources until its first call.</returns>
    IFirewallBackend Create(string? hostNamespacePath);
}
