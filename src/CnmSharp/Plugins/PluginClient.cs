using System.Net;
using System.Net.Http.Headers;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using CnmSharp.Diagnostics;
using CnmSharp.Plugins.Protocol;
using Microsoft.Extensions.Logging;

namespace CnmSharp.Plugins;

/// <summary>
/// One Docker plugin, reached over HTTP on a unix socket or TCP (TLS when its spec says https). Activation
/// (<c>Plugin.Activate</c>) happens once: concurrent callers wait for the same activation, and a failed one is
/// forgotten so that the next call tries again. When the plugin cannot be reached (it went away), the activation is
/// forgotten too: the next call activates it again and <see cref="Generation"/> grows, which is how an IPAM that asks
/// for request replay learns that the plugin came back. Connection failures are retried with
/// <see cref="PluginOptions.RetryDelays"/>; a plugin's error reply is not; every call is bounded by
/// <see cref="PluginOptions.CallTimeout"/> and honours its cancellation token.
/// </summary>
public sealed class PluginClient : IDisposable
{
    private static readonly byte[] s_emptyBody = [];
    private readonly HttpClient _http;
    private readonly PluginOptions _options;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly CancellationTokenSource _lifetime = new();
    private readonly Lock _lock = new();
    private Task<IReadOnlyList<string>>? _activation;
    private (ulong Device, ulong Inode, long ChangeSeconds, uint ChangeNanoseconds)? _activatedSocket;
    private int _generation;

    /// <summary>Creates a client; nothing is sent until the first call.</summary>
    /// <param name="spec">Where the plugin is.</param>
    /// <param name="options">Retry and timeout settings.</param>
    /// <param name="logger">Where retries and re-activations are logged.</param>
    /// <param name="timeProvider">Time, for the retry waits and the call timeout.</param>
    public PluginClient(PluginSpec spec, PluginOptions options, ILogger logger, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(logger);
        Spec = spec;
        _options = options;
        _logger = logger;
        _time = timeProvider ?? TimeProvider.System;
        _http = new HttpClient(CreateHandler(spec), disposeHandler: true)
        {
            BaseAddress = spec.IsUnixSocket ? new Uri("http://plugin/") : spec.Address,
            Timeout = Timeout.InfiniteTimeSpan,
        };
    }

    /// <summary>How the plugin is reached.</summary>
    public PluginSpec Spec { get; }

    /// <summary>The plugin's name.</summary>
    public string Name => Spec.Name;

    /// <summary>How many times the plugin has been activated: 1 after the first activation, more after it came back.</summary>
    public int Generation => Volatile.Read(ref _generation);

    private static SocketsHttpHandler CreateHandler(PluginSpec spec)
    {
        var handler = new SocketsHttpHandler
        {
            PooledConnectionIdleTimeout = TimeSpan.FromSeconds(30),
            ConnectTimeout = TimeSpan.FromSeconds(10),
            UseProxy = false,
            AllowAutoRedirect = false,
        };

        if (spec.IsUnixSocket)
        {
            var endpoint = new UnixDomainSocketEndPoint(spec.SocketPath);
            handler.ConnectCallback = async (_, cancellationToken) =>
            {
                var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try
                {
                    await socket.ConnectAsync(endpoint, cancellationToken).ConfigureAwait(false);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            };
        }
        else if (spec.Address.Scheme == "https" && spec.Tls is { } tls)
        {
            handler.SslOptions = TlsOptions(spec, tls);
        }

        return handler;
    }

    private static SslClientAuthenticationOptions TlsOptions(PluginSpec spec, PluginTls tls)
    {
        var options = new SslClientAuthenticationOptions();
        try
        {
            if (tls.CertFile is not null && tls.KeyFile is not null)
            {
                options.ClientCertificates = [X509Certificate2.CreateFromPemFile(tls.CertFile, tls.KeyFile)];
            }

            if (tls.InsecureSkipVerify)
            {
                // The .json file asks for it (Docker's TLSConfig.InsecureSkipVerify, or no CA file); discovery logs a warning.
#pragma warning disable CA5359
                options.RemoteCertificateValidationCallback = (_, _, _, _) => true;
#pragma warning restore CA5359
            }
            else if (tls.CAFile is not null)
            {
                var roots = new X509Certificate2Collection();
                roots.ImportFromPemFile(tls.CAFile);
                options.RemoteCertificateValidationCallback = (_, certificate, _, errors) =>
                {
                    if (certificate is null || (errors & ~SslPolicyErrors.RemoteCertificateChainErrors) != SslPolicyErrors.None)
                    {
                        return false;
                    }

                    using var chain = new X509Chain();
                    chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
                    chain.ChainPolicy.CustomTrustStore.AddRange(roots);
                    chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
                    return chain.Build(certificate as X509Certificate2 ?? X509CertificateLoader.LoadCertificate(certificate.GetRawCertData()));
                };
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or System.Security.Cryptography.CryptographicException)
        {
            throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidOption, $"plugin \"{spec.Name}\"", $"TLS settings of {spec.Source}: {ex.Message}", ex);
        }

        return options;
    }

    /// <summary>Activates the plugin (once; concurrent callers share the activation) and returns the interfaces it
    /// implements.</summary>
    /// <param name="cancellationToken">Stops this caller's wait (the activation goes on for the others).</param>
    /// <returns>The interfaces.</returns>
    public async ValueTask<IReadOnlyList<string>> ActivateAsync(CancellationToken cancellationToken = default)
    {
        Task<IReadOnlyList<string>> task;
        var socket = Spec.IsUnixSocket ? FileKinds.Identity(Spec.SocketPath) : null;
        lock (_lock)
        {
            // A unix-socket plugin that restarted made a new socket: it is activated again (and an IPAM that asks for
            // it gets its requests replayed), even if no call failed while it was away.
            if (Spec.IsUnixSocket && socket is not null && _activation is { IsCompletedSuccessfully: true } && socket != _activatedSocket)
            {
                _activation = null;
            }

            if (_activation is null)
            {
                _activatedSocket = socket;
                _activation = RunActivationAsync();
            }

            task = _activation;
        }

        try
        {
            return await task.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch when (task.IsFaulted || task.IsCanceled)
        {
            lock (_lock)
            {
                // A failed activation is forgotten: the next call tries again.
                if (ReferenceEquals(_activation, task))
                {
                    _activation = null;
                }
            }

            throw;
        }
    }

    /// <summary>Activates the plugin and checks that it implements <paramref name="interfaceName"/>.</summary>
    /// <param name="interfaceName"><see cref="PluginProtocol.NetworkDriverInterface"/> or <see cref="PluginProtocol.IpamDriverInterface"/>.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>A task that completes when the plugin is active.</returns>
    public async ValueTask EnsureImplementsAsync(string interfaceName, CancellationToken cancellationToken = default)
    {
        var implements = await ActivateAsync(cancellationToken).ConfigureAwait(false);
        if (!implements.Contains(interfaceName, StringComparer.Ordinal))
        {
            throw new CnmNotImplementedException(CnmErrorCodes.PluginNotImplemented, $"plugin \"{Name}\"", $"Plugin does not implement the requested driver: it implements {(implements.Count == 0 ? "nothing" : string.Join(", ", implements))}, not {interfaceName}");
        }
    }

    private async Task<IReadOnlyList<string>> RunActivationAsync()
    {
        await Task.Yield();
        var (status, body) = await SendWithRetryAsync(PluginMethods.Activate, s_emptyBody, _lifetime.Token).ConfigureAwait(false);
        if (status != HttpStatusCode.OK)
        {
            throw ErrorFromReply(PluginMethods.Activate, status, body, ipam: false);
        }

        var reply = Deserialize(PluginMethods.Activate, body, PluginJsonContext.Default.ActivateResponse);
        if (!string.IsNullOrEmpty(reply?.Err))
        {
            throw new CnmInternalException(CnmErrorCodes.PluginError, $"plugin \"{Name}\"", $"activation failed: {reply.Err}");
        }

        var implements = (IReadOnlyList<string>)(reply?.Implements?.ToArray() ?? []);
        var generation = Interlocked.Increment(ref _generation);
        if (generation > 1)
        {
            PluginLog.PluginReactivated(_logger, Name);
        }

        PluginLog.PluginActivated(_logger, Name, string.Join(", ", implements));
        return implements;
    }

    /// <summary>Forgets the activation after the plugin could not be reached: the next call activates it again.</summary>
    private void ForgetActivation()
    {
        lock (_lock)
        {
            if (_activation is { IsCompletedSuccessfully: true })
            {
                _activation = null;
            }
        }
    }

    /// <summary>Calls a method after activation and checks the interface. The reply body is returned with its status
    /// (200 or not) for the caller to read; transport failures throw <see cref="CnmUnavailableException"/>.</summary>
    /// <param name="interfaceName">The interface the method belongs to.</param>
    /// <param name="method">The method's path (<see cref="PluginMethods"/>).</param>
    /// <param name="body">The JSON body, or empty for methods without arguments.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The status and body.</returns>
    internal async ValueTask<(HttpStatusCode Status, byte[] Body)> CallRawAsync(string interfaceName, string method, byte[] body, CancellationToken cancellationToken)
    {
        await EnsureImplementsAsync(interfaceName, cancellationToken).ConfigureAwait(false);
        return await SendWithRetryAsync(method, body, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Calls a method and reads its 200 reply; a non-200 reply or an error field throws.</summary>
    internal async ValueTask<TResponse> CallAsync<TRequest, TResponse>(string interfaceName, string method, TRequest? request, JsonTypeInfo<TRequest> requestInfo, JsonTypeInfo<TResponse> responseInfo, CancellationToken cancellationToken)
        where TResponse : class, new()
    {
        var body = request is null ? s_emptyBody : JsonSerializer.SerializeToUtf8Bytes(request, requestInfo);
        var (status, reply) = await CallRawAsync(interfaceName, method, body, cancellationToken).ConfigureAwait(false);
        var ipam = string.Equals(interfaceName, PluginProtocol.IpamDriverInterface, StringComparison.Ordinal);
        if (status != HttpStatusCode.OK)
        {
            throw ErrorFromReply(method, status, reply, ipam);
        }

        var response = Deserialize(method, reply, responseInfo) ?? new TResponse();
        var error = response switch
        {
            NetworkResponse n when !ipam => n.Err,
            IpamResponse i when ipam => i.Error,
            _ => null,
        };
        if (!string.IsNullOrEmpty(error))
        {
            throw new CnmInternalException(CnmErrorCodes.PluginError, $"plugin \"{Name}\"", $"{method.TrimStart('/')}: {error}");
        }

        return response;
    }

    private T? Deserialize<T>(string method, byte[] body, JsonTypeInfo<T> info)
    {
        if (body.Length == 0)
        {
            return default;
        }

        try
        {
            return JsonSerializer.Deserialize(body, info);
        }
        catch (JsonException ex)
        {
            throw new CnmInternalException(CnmErrorCodes.PluginProtocolError, $"plugin \"{Name}\"", $"{method.TrimStart('/')}: malformed reply: {ex.Message}", ex);
        }
    }

    /// <summary>A non-200 reply: its JSON <c>Err</c> (or <c>Error</c>) is the message, else the raw body.</summary>
    internal CnmException ErrorFromReply(string method, HttpStatusCode status, byte[] body, bool ipam)
    {
        string? message = null;
        try
        {
            if (body.Length > 0 && body[0] == (byte)'{')
            {
                using var document = JsonDocument.Parse(body);
                foreach (var property in document.RootElement.EnumerateObject())
                {
                    if ((property.NameEquals("Err") || property.NameEquals("Error") || string.Equals(property.Name, ipam ? "error" : "err", StringComparison.OrdinalIgnoreCase))
                        && property.Value.ValueKind == JsonValueKind.String && property.Value.GetString() is { Length: > 0 } text)
                    {
                        message = text;
                        break;
                    }
                }
            }
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException)
        {
            // Not JSON, or a string that is not valid UTF-16 (a lone surrogate escape): the raw body is the message.
            message = null;
        }

        message ??= System.Text.Encoding.UTF8.GetString(body).Trim();
        var reason = $"{method.TrimStart('/')}: {(message.Length == 0 ? $"HTTP {(int)status}" : message)}";
        return status == HttpStatusCode.NotFound
            ? new CnmNotImplementedException(CnmErrorCodes.NotImplemented, $"plugin \"{Name}\"", reason)
            : new CnmInternalException(CnmErrorCodes.PluginError, $"plugin \"{Name}\"", reason);
    }

    private async ValueTask<(HttpStatusCode, byte[])> SendWithRetryAsync(string method, byte[] body, CancellationToken cancellationToken)
    {
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                return await SendOnceAsync(method, body, cancellationToken).ConfigureAwait(false);
            }
            catch (HttpRequestException ex) when (ex.HttpRequestError is HttpRequestError.ConnectionError or HttpRequestError.NameResolutionError && attempt < _options.RetryDelays.Count)
            {
                // Not reachable (not started yet, restarting): Docker's back-off, configurable and cancellable.
                ForgetActivation();
                var delay = _options.RetryDelays[attempt];
                PluginLog.PluginRetry(_logger, ex, Name, method, attempt + 1, delay);
                await Task.Delay(delay, _time, cancellationToken).ConfigureAwait(false);
            }
            catch (HttpRequestException ex)
            {
                ForgetActivation();
                throw new CnmUnavailableException(CnmErrorCodes.PluginUnavailable, $"plugin \"{Name}\"", $"{method.TrimStart('/')}: {Spec.Address} cannot be reached{(attempt > 0 ? $" after {attempt + 1} attempts" : "")}: {ex.Message}", ex);
            }
        }
    }

    private async ValueTask<(HttpStatusCode, byte[])> SendOnceAsync(string method, byte[] body, CancellationToken cancellationToken)
    {
        using var timeout = new CancellationTokenSource(_options.CallTimeout, _time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeout.Token, _lifetime.Token);
        using var request = new HttpRequestMessage(HttpMethod.Post, method.TrimStart('/'))
        {
            // Docker sends no Content-Type, and an empty body for methods without arguments.
            Content = new ByteArrayContent(body),
        };
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue(PluginProtocol.AcceptMediaType));
        try
        {
            using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseContentRead, linked.Token).ConfigureAwait(false);
            var reply = await response.Content.ReadAsByteArrayAsync(linked.Token).ConfigureAwait(false);
            return (response.StatusCode, reply);
        }
        catch (OperationCanceledException ex) when (!cancellationToken.IsCancellationRequested && timeout.IsCancellationRequested)
        {
            ForgetActivation();
            throw new CnmUnavailableException(CnmErrorCodes.PluginUnavailable, $"plugin \"{Name}\"", $"{method.TrimStart('/')}: no reply within {_options.CallTimeout}", ex);
        }
        catch (OperationCanceledException ex) when (!cancellationToken.IsCancellationRequested && _lifetime.IsCancellationRequested)
        {
            throw new ObjectDisposedException($"plugin client \"{Name}\"", ex);
        }
        catch (IOException ex)
        {
            ForgetActivation();
            throw new CnmUnavailableException(CnmErrorCodes.PluginUnavailable, $"plugin \"{Name}\"", $"{method.TrimStart('/')}: the connection broke: {ex.Message}", ex);
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _lifetime.Cancel();
        _http.Dispose();
        _lifetime.Dispose();
    }
}
