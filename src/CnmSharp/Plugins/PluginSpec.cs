namespace CnmSharp.Plugins;

/// <summary>How a plugin is reached, as discovery found it.</summary>
/// <param name="Name">The plugin's name (its file's name without extension).</param>
/// <param name="Address">The address: <c>unix:///path</c>, <c>http://host:port</c> or <c>https://host:port</c>
/// (<c>tcp://</c> becomes <c>http://</c>, or <c>https://</c> with TLS settings).</param>
/// <param name="Source">The socket or discovery file it was found through.</param>
/// <param name="Tls">TLS settings (https only), or null.</param>
public sealed record PluginSpec(string Name, Uri Address, string Source, PluginTls? Tls = null)
{
    /// <summary>True for a unix-socket plugin.</summary>
    public bool IsUnixSocket => Address.Scheme == "unix";

    /// <summary>The socket path of a unix-socket plugin.</summary>
    public string SocketPath => Uri.UnescapeDataString(Address.AbsolutePath);
}

/// <summary>TLS settings of an https plugin (from a <c>.json</c> discovery file).</summary>
/// <param name="InsecureSkipVerify">Do not verify the plugin's certificate (Docker's rule: also when no CA file is given).</param>
/// <param name="CAFile">The CA bundle that signs the plugin's certificate, or null.</param>
/// <param name="CertFile">The client certificate (PEM), or null.</param>
/// <param name="KeyFile">The client key (PEM), or null.</param>
public sealed record PluginTls(bool InsecureSkipVerify, string? CAFile, string? CertFile, string? KeyFile);
