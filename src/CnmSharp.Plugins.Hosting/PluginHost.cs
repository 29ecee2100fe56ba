using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using CnmSharp.Plugins.Protocol;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace CnmSharp.Plugins.Hosting;

/// <summary>
/// Serves a <see cref="PluginRequestHandler"/> to Docker over HTTP/1.1 (Kestrel): on a unix socket (mode 0600,
/// <c>/run/docker/plugins/&lt;name&gt;.sock</c> by default), or on TCP with a <c>.spec</c> (http) or <c>.json</c>
/// (https) discovery file written for the daemon and removed on stop. Every request is a <c>POST</c>; any
/// Content-Type is accepted; replies carry <c>application/vnd.docker.plugins.v1+json</c>.
/// </summary>
public sealed partial class PluginHost : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ILogger _logger;
    private readonly string? _discoveryContent;
    private int _stopped;

    private PluginHost(WebApplication app, ILogger logger, string name, string? socketPath, Uri? address, string? discoveryFile, string? discoveryContent)
    {
        _app = app;
        _logger = logger;
        Name = name;
        SocketPath = socketPath;
        Address = address;
        DiscoveryFile = discoveryFile;
        _discoveryContent = discoveryContent;
    }

    /// <summary>The plugin's name.</summary>
    public string Name { get; }

    /// <summary>The unix socket served, or null for TCP.</summary>
    public string? SocketPath { get; }

    /// <summary>The TCP address served (with the port bound), or null for a unix socket.</summary>
    public Uri? Address { get; }

    /// <summary>The discovery file written for a TCP listener, or null.</summary>
    public string? DiscoveryFile { get; }

    /// <summary>Starts serving.</summary>
    /// <param name="options">Where to listen.</param>
    /// <param name="handler">What answers.</param>
    /// <param name="loggerFactory">Logging.</param>
    /// <param name="cancellationToken">Cancels the start.</param>
    /// <returns>The running host; dispose it (or <see cref="StopAsync"/>) to stop.</returns>
    /// <exception cref="CnmInvalidArgumentException">The options are invalid (<see cref="CnmErrorCodes.InvalidOption"/>):
    /// a bad name, both or neither of socket and URL, plain http off loopback, https without certificate.</exception>
    /// <exception cref="CnmConflictException">Another process serves the socket already (<see cref="CnmErrorCodes.NetworkExists"/> is not used:
    /// <see cref="CnmErrorCodes.ActiveRegistration"/>).</exception>
    public static async Task<PluginHost> StartAsync(PluginHostOptions options, PluginRequestHandler handler, ILoggerFactory loggerFactory, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(handler);
        ArgumentNullException.ThrowIfNull(loggerFactory);
        var logger = loggerFactory.CreateLogger<PluginHost>();
        var name = options.Name;
        if (!PluginDiscovery.IsValidName(name))
        {
            throw InvalidOption("name", $"\"{name}\" is not a valid plugin name (1 to 255 of [A-Za-z0-9_.-], starting with a letter or digit)");
        }

        if (options.SocketPath is not null && options.ListenUrl is not null)
        {
            throw InvalidOption("listen", "give a socket path or a URL, not both");
        }

        string? socketPath = null;
        IPEndPoint? endpoint = null;
        X509Certificate2? certificate = null;
        if (options.ListenUrl is { } url)
        {
            (endpoint, certificate) = CheckUrl(url, options);
        }
        else
        {
            socketPath = Path.GetFullPath(options.SocketPath ?? Path.Combine(PluginHostOptions.DefaultSocketDirectory, name + ".sock"));
            await PrepareSocketPathAsync(socketPath, cancellationToken).ConfigureAwait(false);
        }

        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
        builder.Services.AddSingleton(loggerFactory);
        builder.WebHost.UseKestrelCore();
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            kestrel.Limits.MaxRequestBodySize = options.MaxRequestBodySize;
            if (socketPath is not null)
            {
                kestrel.ListenUnixSocket(socketPath, listen => listen.Protocols = HttpProtocols.Http1);
            }
            else
            {
                kestrel.Listen(endpoint!, listen =>
                {
                    listen.Protocols = HttpProtocols.Http1;
                    if (certificate is not null)
                    {
                        listen.UseHttps(certificate);
                    }
                });
            }
        });
        var app = builder.Build();
        app.Run(context => ServeAsync(context, handler));
        try
        {
            await app.StartAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or SocketException or InvalidOperationException)
        {
            await app.DisposeAsync().ConfigureAwait(false);
            throw new CnmUnavailableException(CnmErrorCodes.PluginUnavailable, $"plugin \"{name}\"", $"cannot listen on {socketPath ?? options.ListenUrl!.ToString()}: {ex.Message}", ex);
        }

        Uri? address = null;
        string? discoveryFile = null;
        string? discoveryContent = null;
        try
        {
            if (socketPath is not null)
            {
                // Root only, as dockerd runs: the protocol has no authentication.
                SocketFiles.SetMode(socketPath, UnixFileMode.UserRead | UnixFileMode.UserWrite);
                Log.Serving(logger, name, "unix://" + socketPath);
            }
            else
            {
                var bound = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault()
                    ?? throw new CnmInternalException(CnmErrorCodes.PluginUnavailable, $"plugin \"{name}\"", "the server reports no bound address");
                var port = new Uri(bound).Port;
                var host = endpoint!.Address.AddressFamily == AddressFamily.InterNetworkV6 ? $"[{endpoint.Address}]" : endpoint.Address.ToString();
                address = new Uri($"{options.ListenUrl!.Scheme}://{host}:{port}");
                (discoveryFile, discoveryContent) = WriteDiscoveryFile(options, name, address);
                Log.ServingTcp(logger, name, address, discoveryFile);
            }
        }
        catch
        {
            await app.StopAsync(CancellationToken.None).ConfigureAwait(false);
            await app.DisposeAsync().ConfigureAwait(false);
            RemoveSocket(socketPath);
            throw;
        }

        return new PluginHost(app, logger, name, socketPath, address, discoveryFile, discoveryContent);
    }

    private static async Task ServeAsync(HttpContext context, PluginRequestHandler handler)
    {
        var response = context.Response;
        if (!HttpMethods.IsPost(context.Request.Method))
        {
            response.StatusCode = StatusCodes.Status405MethodNotAllowed;
            return;
        }

        byte[] body;
        using (var buffer = new MemoryStream())
        {
            await context.Request.Body.CopyToAsync(buffer, context.RequestAborted).ConfigureAwait(false);
            body = buffer.ToArray();
        }

        var reply = await handler.HandleAsync(context.Request.Path.Value ?? "", body, context.RequestAborted).ConfigureAwait(false);
        response.StatusCode = reply.StatusCode;
        response.ContentType = PluginProtocol.ResponseMediaType;
        response.ContentLength = reply.Body.Length;
        await response.Body.WriteAsync(reply.Body, context.RequestAborted).ConfigureAwait(false);
    }

    private static (IPEndPoint Endpoint, X509Certificate2? Certificate) CheckUrl(Uri url, PluginHostOptions options)
    {
        if (!url.IsAbsoluteUri || url.Scheme is not ("http" or "https") || url.AbsolutePath is not ("/" or "") || !string.IsNullOrEmpty(url.Query) || url.IsDefaultPort && !url.OriginalString.Contains(":" + url.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal))
        {
            throw InvalidOption("listen", $"\"{url.OriginalString}\": expected http://ADDRESS:PORT or https://ADDRESS:PORT");
        }

        var hostText = url.Host.Trim('[', ']');
        var ip = string.Equals(hostText, "localhost", StringComparison.OrdinalIgnoreCase) ? IPAddress.Loopback
            : IPAddressText.TryParseStrict(hostText, out var parsed) ? parsed
            : throw InvalidOption("listen", $"\"{url.OriginalString}\": the address must be an IP address or localhost");
        var endpoint = new IPEndPoint(ip, url.Port);
        if (url.Scheme == "http")
        {
            if (!IPAddress.IsLoopback(ip))
            {
                throw InvalidOption("listen", $"\"{url.OriginalString}\": plain http is only served on a loopback address; use https with a certificate (--tls-cert, --tls-key) elsewhere");
            }

            return (endpoint, null);
        }

        if (string.IsNullOrEmpty(options.CertificateFile) || string.IsNullOrEmpty(options.KeyFile))
        {
            throw InvalidOption("listen", $"\"{url.OriginalString}\": https needs a certificate and its key (PEM)");
        }

        try
        {
            using var pem = X509Certificate2.CreateFromPemFile(options.CertificateFile, options.KeyFile);

            // Re-imported so the key is usable by SslStream on every platform.
            return (endpoint, X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), null));
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or System.Security.Cryptography.CryptographicException or ArgumentException)
        {
            throw InvalidOption("tls", $"cannot load {options.CertificateFile} / {options.KeyFile}: {ex.Message}");
        }
    }

    /// <summary>Makes the socket's directory (0700 when it is new) and removes a stale socket file left by a host
    /// that died; a socket another process still answers on is refused.</summary>
    private static async Task PrepareSocketPathAsync(string socketPath, CancellationToken cancellationToken)
    {
        var directory = Path.GetDirectoryName(socketPath)!;
        if (!Directory.Exists(directory))
        {
            SocketFiles.CreatePrivateDirectory(directory);
        }

        var info = new FileInfo(socketPath);
        if (!info.Exists && !Directory.Exists(socketPath))
        {
            return;
        }

        if (Directory.Exists(socketPath) || (info.Attributes & FileAttributes.ReparsePoint) != 0 || !SocketFiles.IsSocket(socketPath))
        {
            throw InvalidOption("socket", $"{socketPath} exists and is not a socket");
        }

        using var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await probe.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), cancellationToken).ConfigureAwait(false);
        }
        catch (SocketException)
        {
            // Nobody listens: a stale socket of a host that died.
            File.Delete(socketPath);
            return;
        }

        throw new CnmConflictException(CnmErrorCodes.ActiveRegistration, $"socket {socketPath}", "another process serves this socket");
    }

    private static (string File, string Content) WriteDiscoveryFile(PluginHostOptions options, string name, Uri address)
    {
        var directory = Path.GetFullPath(options.SpecDirectory);
        Directory.CreateDirectory(directory);
        string file;
        string content;
        if (address.Scheme == "http")
        {
            file = Path.Combine(directory, name + ".spec");
            content = address.GetLeftPart(UriPartial.Authority) + "\n";
        }
        else
        {
            file = Path.Combine(directory, name + ".json");
            var spec = new PluginSpecFile
            {
                Name = name,
                Addr = address.GetLeftPart(UriPartial.Authority),
                TlsConfig = new PluginTlsConfig
                {
                    InsecureSkipVerify = string.IsNullOrEmpty(options.CAFile),
                    CAFile = string.IsNullOrEmpty(options.CAFile) ? "" : Path.GetFullPath(options.CAFile),
                    CertFile = "",
                    KeyFile = "",
                },
            };
            content = JsonSerializer.Serialize(spec, PluginJsonContext.Default.PluginSpecFile) + "\n";
        }

        // Written whole under another name, then renamed: the daemon never reads half a file.
        var temporary = file + ".tmp-" + Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture);
        File.WriteAllText(temporary, content);
        SocketFiles.SetMode(temporary, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        File.Move(temporary, file, overwrite: true);
        return (file, content);
    }

    private static void RemoveSocket(string? socketPath)
    {
        if (socketPath is not null && File.Exists(socketPath))
        {
            File.Delete(socketPath);
        }
    }

    private static CnmInvalidArgumentException InvalidOption(string what, string reason) => new(CnmErrorCodes.InvalidOption, $"plugin host {what}", reason);

    /// <summary>Stops serving (in-flight calls finish first, within <paramref name="cancellationToken"/>), removes the
    /// socket and the discovery file (only when it still holds what this host wrote).</summary>
    /// <param name="cancellationToken">Ends the wait for in-flight calls.</param>
    /// <returns>A task that completes when stopped.</returns>
    public async Task StopAsync(CancellationToken cancellationToken = default)
    {
        if (Interlocked.Exchange(ref _stopped, 1) != 0)
        {
            return;
        }

        // The discovery file goes first, so the daemon stops finding a host that no longer answers.
        if (DiscoveryFile is not null)
        {
            try
            {
                if (File.Exists(DiscoveryFile) && string.Equals(await File.ReadAllTextAsync(DiscoveryFile, CancellationToken.None).ConfigureAwait(false), _discoveryContent, StringComparison.Ordinal))
                {
                    File.Delete(DiscoveryFile);
                }
            }
            catch (IOException ex)
            {
                Log.CleanupFailed(_logger, DiscoveryFile, ex.Message);
            }
        }

        try
        {
            await _app.StopAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            try
            {
                RemoveSocket(SocketPath);
            }
            catch (IOException ex)
            {
                Log.CleanupFailed(_logger, SocketPath!, ex.Message);
            }

            Log.Stopped(_logger, Name);
        }
    }

    /// <summary>Stops (see <see cref="StopAsync"/>) and releases the server.</summary>
    /// <returns>A task that completes when released.</returns>
    public async ValueTask DisposeAsync()
    {
        using (var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10)))
        {
            await StopAsync(timeout.Token).ConfigureAwait(false);
        }

        await _app.DisposeAsync().ConfigureAwait(false);
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 10, Level = LogLevel.Information, Message = "Plugin {Name} serving on {Address}")]
        public static partial void Serving(ILogger logger, string name, string address);

        [LoggerMessage(EventId = 13, Level = LogLevel.Information, Message = "Plugin {Name} serving on {Address} (discovery file {File})")]
        public static partial void ServingTcp(ILogger logger, string name, Uri address, string file);

        [LoggerMessage(EventId = 11, Level = LogLevel.Information, Message = "Plugin {Name} stopped")]
        public static partial void Stopped(ILogger logger, string name);

        [LoggerMessage(EventId = 12, Level = LogLevel.Warning, Message = "Could not remove {Path}: {Reason}")]
        public static partial void CleanupFailed(ILogger logger, string path, string reason);
    }
}
