using System.Net;
using CnmSharp.Diagnostics;
using Microsoft.Extensions.Logging;

namespace CnmSharp.Dns;

/// <summary>
/// The embedded DNS of one controller (or of the <c>cnm dns serve</c> process): one <see cref="SandboxResolver"/> per
/// sandbox that needs one, all answering from one record table that <see cref="ApplyAsync"/> swaps.
/// </summary>
internal sealed class EmbeddedDnsServer : IEmbeddedDns
{
    /// <summary>Where the resolver listens inside each sandbox: <c>127.0.0.11:53</c>.</summary>
    public static readonly IPEndPoint DefaultListen = new(IPAddress.Parse(Sandboxes.Files.ResolvConf.EmbeddedDnsAddress), 53);

    private readonly EmbeddedDnsOptions _options;
    private readonly IDnsNamespaces _namespaces;
    private readonly IPEndPoint _listen;
    private readonly ILogger _logger;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly Dictionary<string, SandboxResolver> _resolvers = new(StringComparer.Ordinal);
    private volatile DnsRecordTable _table = DnsRecordTable.Empty;
    private bool _disposed;

    /// <summary>Creates the server; it serves nothing until the first <see cref="ApplyAsync"/>.</summary>
    /// <param name="options">Timeouts and limits.</param>
    /// <param name="namespaces">Opens sockets inside sandboxes.</param>
    /// <param name="loggerFactory">Logging.</param>
    /// <param name="listen">The listening address inside each sandbox; <see cref="DefaultListen"/> when null.</param>
    public EmbeddedDnsServer(EmbeddedDnsOptions options, IDnsNamespaces namespaces, ILoggerFactory loggerFactory, IPEndPoint? listen = null)
    {
        _options = options;
        _namespaces = namespaces;
        _listen = listen ?? DefaultListen;
        _logger = loggerFactory.CreateLogger<EmbeddedDnsServer>();
    }

    /// <summary>The current records.</summary>
    internal DnsRecordTable Table => _table;

    /// <summary>The ids of the sandboxes served now.</summary>
    internal IReadOnlyCollection<string> Served
    {
        get
        {
            lock (_resolvers)
            {
                return _resolvers.Keys.ToArray();
            }
        }
    }

    /// <summary>The address a sandbox's resolver listens on (its port when the listen port was 0), or null.</summary>
    internal IPEndPoint? ListenEndpointOf(string sandboxId)
    {
        lock (_resolvers)
        {
            return _resolvers.TryGetValue(sandboxId, out var resolver) ? resolver.LocalEndpoint : null;
        }
    }

    /// <inheritdoc />
    public async ValueTask ApplyAsync(DnsState state, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(state);
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            _table = DnsRecordTable.Build(state.Hosts);
            var wanted = state.Sandboxes.ToDictionary(s => s.Id, StringComparer.Ordinal);
            List<SandboxResolver> gone;
            lock (_resolvers)
            {
                gone = _resolvers.Where(p => !wanted.TryGetValue(p.Key, out var s) || s.Key != p.Value.Sandbox.Key).Select(p => p.Value).ToList();
                foreach (var resolver in gone)
                {
                    _resolvers.Remove(resolver.Sandbox.Id);
                }
            }

            foreach (var resolver in gone)
            {
                await resolver.DisposeAsync().ConfigureAwait(false);
                DnsLog.Stopped(_logger, resolver.Sandbox.Id);
            }

            foreach (var sandbox in state.Sandboxes)
            {
                SandboxResolver? existing;
                lock (_resolvers)
                {
                    _resolvers.TryGetValue(sandbox.Id, out existing);
                }

                if (existing is not null)
                {
                    existing.Sandbox = sandbox;
                    continue;
                }

                try
                {
                    var resolver = await SandboxResolver.StartAsync(sandbox, this, cancellationToken).ConfigureAwait(false);
                    lock (_resolvers)
                    {
                        _resolvers[sandbox.Id] = resolver;
                    }

                    DnsLog.Listening(_logger, sandbox.Id, sandbox.Key);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    DnsLog.ListenFailed(_logger, ex, sandbox.Id, sandbox.Key);
                }
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await _gate.WaitAsync().ConfigureAwait(false);
        try
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            SandboxResolver[] all;
            lock (_resolvers)
            {
                all = [.. _resolvers.Values];
                _resolvers.Clear();
            }

            foreach (var resolver in all)
            {
                await resolver.DisposeAsync().ConfigureAwait(false);
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    internal EmbeddedDnsOptions Options => _options;

    internal IDnsNamespaces Namespaces => _namespaces;

    internal IPEndPoint Listen => _listen;

    internal ILogger Logger => _logger;
}
