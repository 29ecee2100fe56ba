using System.Net;
using CnmSharp.Diagnostics;
using CnmSharp.Ipam;
using CnmSharp.Plugins.Protocol;
using Microsoft.Extensions.Logging;

namespace CnmSharp.Plugins;

/// <summary>
/// An IPAM served by a Docker plugin (libnetwork's <c>ipams/remote</c>): every contract call is one
/// <c>IpamDriver.*</c> call; errors come in <c>"Error"</c>. Capabilities are read at creation (a failure means none);
/// the default address spaces too (a failure fails the registration). When the plugin was unreachable and has been
/// activated again, and it asks for request replay, the core's replay runs before the call that found it back.
/// </summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001:Types that own disposable fields should be disposable",
    Justification = "The SemaphoreSlim never allocates a wait handle (AvailableWaitHandle is not used); IPAM drivers have no disposal in the contract (as the default IPAM).")]
public sealed class RemoteIpam : IIpamDriver, IIpamRequestReplay, IIpamOwnerRelease
{
    private static readonly AsyncLocal<bool> s_replaying = new();
    private readonly PluginClient _client;
    private readonly ILogger _logger;
    private readonly SemaphoreSlim _replayGate = new(1, 1);
    private Func<CancellationToken, ValueTask>? _replay;
    private int _replayedGeneration;

    private RemoteIpam(PluginClient client, IpamCapability capability, ILogger logger)
    {
        _client = client;
        Capability = capability;
        _logger = logger;
    }

    /// <inheritdoc />
    public IpamCapability Capability { get; }

    /// <summary>The plugin's name.</summary>
    public string Name => _client.Name;

    /// <summary>Activates the plugin, checks it is an IPAM, and reads its capabilities.</summary>
    /// <param name="client">The plugin.</param>
    /// <param name="logger">Logging.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The IPAM.</returns>
    public static async ValueTask<RemoteIpam> CreateAsync(PluginClient client, ILogger logger, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(logger);
        await client.EnsureImplementsAsync(PluginProtocol.IpamDriverInterface, cancellationToken).ConfigureAwait(false);
        IpamCapability capability;
        try
        {
            var reply = await client.CallAsync(PluginProtocol.IpamDriverInterface, PluginMethods.IpamGetCapabilities, (ReleasePoolRequest?)null, PluginJsonContext.Default.ReleasePoolRequest, PluginJsonContext.Default.IpamCapabilitiesResponse, cancellationToken).ConfigureAwait(false);
            capability = new IpamCapability(reply.RequiresMacAddress, reply.RequiresRequestReplay, reply.ReleasesByOwner);
        }
        catch (CnmException ex) when (ex.Kind is not CnmErrorKind.Unavailable)
        {
            // Optional in the protocol: a plugin that does not answer it has no capabilities.
            capability = new IpamCapability();
        }

        var ipam = new RemoteIpam(client, capability, logger);
        ipam._replayedGeneration = client.Generation;
        return ipam;
    }

    /// <inheritdoc />
    public void SetReplayHandler(Func<CancellationToken, ValueTask> replay) => _replay = replay;

    private async ValueTask<TResponse> CallAsync<TRequest, TResponse>(string method, TRequest? request, System.Text.Json.Serialization.Metadata.JsonTypeInfo<TRequest> requestInfo, System.Text.Json.Serialization.Metadata.JsonTypeInfo<TResponse> responseInfo, CancellationToken cancellationToken)
        where TResponse : class, new()
    {
        await ReplayIfBackAsync(cancellationToken).ConfigureAwait(false);
        var reply = await _client.CallAsync(PluginProtocol.IpamDriverInterface, method, request, requestInfo, responseInfo, cancellationToken).ConfigureAwait(false);
        Diagnostics.FaultPointExtensions.Hit(Faults, Diagnostics.FaultPoint.PluginIpamReplied);
        return reply;
    }

    /// <summary>The controller's fault injector (tests only), or null.</summary>
    internal Diagnostics.FaultPoints? Faults { get; set; }

    /// <summary>After the plugin came back (activated again), replays the core's requests once, before this call.</summary>
    private async ValueTask ReplayIfBackAsync(CancellationToken cancellationToken)
    {
        if (!Capability.RequiresRequestReplay || _replay is not { } replay || s_replaying.Value)
        {
            return;
        }

        await _client.ActivateAsync(cancellationToken).ConfigureAwait(false);
        var generation = _client.Generation;
        if (generation <= Volatile.Read(ref _replayedGeneration))
        {
            return;
        }

        await _replayGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (generation <= _replayedGeneration)
            {
                return;
            }

            s_replaying.Value = true;
            try
            {
                await replay(cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                s_replaying.Value = false;
            }

            Volatile.Write(ref _replayedGeneration, generation);
        }
        finally
        {
            _replayGate.Release();
        }
    }

    /// <inheritdoc />
    public async ValueTask<AddressSpaces> GetDefaultAddressSpacesAsync(CancellationToken cancellationToken = default)
    {
        var reply = await CallAsync(PluginMethods.GetDefaultAddressSpaces, (ReleasePoolRequest?)null, PluginJsonContext.Default.ReleasePoolRequest, PluginJsonContext.Default.AddressSpacesResponse, cancellationToken).ConfigureAwait(false);
        return new AddressSpaces(reply.LocalDefaultAddressSpace ?? "", reply.GlobalDefaultAddressSpace ?? "");
    }

    /// <inheritdoc />
    public async ValueTask<AllocatedPool> RequestPoolAsync(PoolRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        var reply = await CallAsync(PluginMethods.RequestPool, new RequestPoolRequest
        {
            AddressSpace = request.AddressSpace,
            Pool = request.Pool ?? "",
            SubPool = request.SubPool ?? "",
            Options = new(request.Options, StringComparer.Ordinal),
            V6 = request.IPv6,
        }, PluginJsonContext.Default.RequestPoolRequest, PluginJsonContext.Default.RequestPoolResponse, cancellationToken).ConfigureAwait(false);
        if (string.IsNullOrEmpty(reply.PoolId))
        {
            throw Protocol(PluginMethods.RequestPool, "no PoolID");
        }

        if (!IPNetworks.TryParse(reply.Pool, allowHostBits: true, out var pool) || (pool.BaseAddress.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6) != request.IPv6)
        {
            throw Protocol(PluginMethods.RequestPool, $"invalid Pool \"{reply.Pool}\"");
        }

        var data = reply.Data ?? [];
        if (data.TryGetValue(PluginProtocol.GatewayRequestType, out var gateway) && !CidrAddress.TryParse(gateway, out _))
        {
            throw Protocol(PluginMethods.RequestPool, $"invalid gateway \"{gateway}\" in Data");
        }

        return new AllocatedPool(reply.PoolId, pool, data);
    }

    /// <inheritdoc />
    public async ValueTask ReleasePoolAsync(string poolId, CancellationToken cancellationToken = default) =>
        await CallAsync(PluginMethods.ReleasePool, new ReleasePoolRequest { PoolId = poolId }, PluginJsonContext.Default.ReleasePoolRequest, PluginJsonContext.Default.IpamResponse, cancellationToken).ConfigureAwait(false);

    /// <inheritdoc />
    public async ValueTask<AllocatedAddress> RequestAddressAsync(string poolId, IPAddress? preferred, IReadOnlyDictionary<string, string> options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        var reply = await CallAsync(PluginMethods.RequestAddress, new RequestAddressRequest
        {
            PoolId = poolId,
            Address = preferred?.ToString() ?? "",
            Options = new(options, StringComparer.Ordinal),
        }, PluginJsonContext.Default.RequestAddressRequest, PluginJsonContext.Default.RequestAddressResponse, cancellationToken).ConfigureAwait(false);
        if (string.IsNullOrEmpty(reply.Address))
        {
            throw Protocol(PluginMethods.RequestAddress, "no address returned");
        }

        if (!CidrAddress.TryParse(reply.Address, out var address))
        {
            throw Protocol(PluginMethods.RequestAddress, $"invalid Address \"{reply.Address}\"");
        }

        return new AllocatedAddress(address, reply.Data ?? []);
    }

    /// <inheritdoc />
    public async ValueTask ReleaseAddressAsync(string poolId, IPAddress address, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(address);
        await CallAsync(PluginMethods.ReleaseAddress, new ReleaseAddressRequest { PoolId = poolId, Address = address.ToString() }, PluginJsonContext.Default.ReleaseAddressRequest, PluginJsonContext.Default.IpamResponse, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    /// <remarks>The CnmSharp extension <c>IpamDriver.ReleaseOwner</c>; refused (<see cref="CnmNotImplementedException"/>)
    /// unless the plugin's capabilities announce it.</remarks>
    public async ValueTask<int> ReleaseOwnerAsync(string owner, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(owner);
        if (!Capability.ReleasesByOwner)
        {
            throw new CnmNotImplementedException(CnmErrorCodes.NotImplemented, $"plugin \"{Name}\"", "the plugin does not release by owner");
        }

        var reply = await CallAsync(PluginMethods.ReleaseOwner, new ReleaseOwnerRequest { Owner = owner }, PluginJsonContext.Default.ReleaseOwnerRequest, PluginJsonContext.Default.ReleaseOwnerResponse, cancellationToken).ConfigureAwait(false);
        return reply.Released < 0 ? throw Protocol(PluginMethods.ReleaseOwner, $"negative Released {reply.Released}") : reply.Released;
    }

    private CnmInternalException Protocol(string method, string reason) =>
        new(CnmErrorCodes.PluginProtocolError, $"plugin \"{Name}\"", $"{method.TrimStart('/')}: {reason}");
}
