namespace CnmSharp.Plugins.Hosting;

/// <summary>Where and how a <see cref="PluginHost"/> listens.</summary>
public sealed class PluginHostOptions
{
    /// <summary>The directory Docker looks for plugin sockets in.</summary>
    public const string DefaultSocketDirectory = "/run/docker/plugins";

    /// <summary>The directory Docker looks for <c>.spec</c>/<c>.json</c> discovery files in first.</summary>
    public const string DefaultSpecDirectory = "/etc/docker/plugins";

    /// <summary>The plugin's name (1 to 255 of <c>[A-Za-z0-9_.-]</c>, starting with a letter or digit): the
    /// driver and IPAM name the daemon uses, and the socket's or discovery file's name.</summary>
    public string Name { get; set; } = "";

    /// <summary>The unix socket to listen on; null means <c>/run/docker/plugins/&lt;name&gt;.sock</c> unless
    /// <see cref="ListenUrl"/> is set. The socket is made mode 0600 (root only, as dockerd runs).</summary>
    public string? SocketPath { get; set; }

    /// <summary>A TCP address instead of the socket: <c>http://127.0.0.1:PORT</c> (plain HTTP only on a loopback
    /// address) or <c>https://ADDRESS:PORT</c> (needs <see cref="CertificateFile"/> and <see cref="KeyFile"/>). Port 0
    /// picks a free port; the discovery file names the one bound.</summary>
    public Uri? ListenUrl { get; set; }

    /// <summary>Where the discovery file of a TCP listener is written (<c>&lt;name&gt;.spec</c> for http,
    /// <c>&lt;name&gt;.json</c> for https) and removed again on stop.</summary>
    public string SpecDirectory { get; set; } = DefaultSpecDirectory;

    /// <summary>The server certificate (PEM) of an https listener.</summary>
    public string? CertificateFile { get; set; }

    /// <summary>The server certificate's private key (PEM) of an https listener.</summary>
    public string? KeyFile { get; set; }

    /// <summary>The CA bundle (PEM) that signs the server certificate, written into the <c>.json</c> discovery file
    /// for the daemon to verify the plugin with; null writes none (the daemon then does not verify it).</summary>
    public string? CAFile { get; set; }

    /// <summary>The largest request body accepted (plugin requests are small).</summary>
    public long MaxRequestBodySize { get; set; } = 1 << 20;
}
