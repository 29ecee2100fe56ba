using CnmSharp.Core;
using CnmSharp.Diagnostics;
using CnmSharp.Drivers;

namespace CnmSharp;

/// <summary>
/// The gateway network (libnetwork's <c>docker_gwbridge</c>, <see cref="CnmOptions.GatewayNetwork"/>): a sandbox whose
/// endpoints include one on a network whose driver gives no external connectivity, and none that gives it a gateway,
/// is joined to a local network (bridge by default, inter-container traffic off, masquerading on) with an endpoint
/// <c>gateway_&lt;sandbox id[:12]&gt;</c> whose gateway becomes its default route. Everything goes through the same
/// network, endpoint and join code as any caller's, so it is recorded, recovered and rolled back the same way; after
/// every join and leave (and once at start, for what a crash interrupted) the sandbox is made to have that endpoint
/// exactly when <see cref="GatewayElection.NeedsGatewayNetwork"/> says so.
/// </summary>
public sealed partial class NetworkController
{
    private const string GatewayEndpointPrefix = "gateway_";

    private static readonly System.Buffers.SearchValues<char> LowerHex = System.Buffers.SearchValues.Create("0123456789abcdef");

    /// <summary>Serialises gateway network changes (the network's creation and each sandbox's endpoint).</summary>
    private readonly SemaphoreSlim _gatewayNetworkGate = new(1, 1);

    /// <summary>The name of a sandbox's gateway network endpoint: <c>gateway_</c> and the first 12 characters of its id.</summary>
    internal static string GatewayEndpointName(string sandboxId) =>
        GatewayEndpointPrefix + (sandboxId.Length > 12 ? sandboxId[..12] : sandboxId);

    /// <summary>True for the controller's gateway network (by its configured name, local scope).</summary>
    private bool IsGatewayNetwork(Network network) =>
        _options.GatewayNetwork.Enabled
        && string.Equals(network.Name, _options.GatewayNetwork.Name, StringComparison.Ordinal)
        && string.Equals(network.Scope, "local", StringComparison.Ordinal)
        && !network.ConfigOnly;

    /// <summary>True for the endpoint the controller made for a sandbox on the gateway network.</summary>
    private bool IsGatewayNetworkEndpoint(Endpoint endpoint, string sandboxId) =>
        string.Equals(endpoint.Name, GatewayEndpointName(sandboxId), StringComparison.Ordinal) && IsGatewayNetwork(endpoint.Network);

    /// <summary>True when a sandbox's endpoints make it need a gateway network endpoint (it may already have one).</summary>
    private bool WantsGatewayNetwork(Sandbox sandbox) =>
        _options.GatewayNetwork.Enabled && !sandbox.UsesHostNamespace && !sandbox.SharesNetwork
        && GatewayElection.NeedsGatewayNetwork(sandbox.Endpoints.Where(e => !IsGatewayNetworkEndpoint(e, sandbox.Id)));

    /// <summary>
    /// Gives a sandbox its gateway network endpoint when it needs one and has none, or removes the one it has when it
    /// no longer needs it. Failing to add one throws (the caller's join is undone); failing to remove one is logged
    /// (the endpoint stays joined, harmlessly: a real gateway wins the election by name or weight, or the next join,
    /// leave or start removes it).
    /// </summary>
    private async ValueTask ConvergeGatewayNetworkAsync(Sandbox sandbox, CancellationToken cancellationToken)
    {
        if (!_options.GatewayNetwork.Enabled || sandbox.UsesHostNamespace || sandbox.SharesNetwork)
        {
            return;
        }

        await _gatewayNetworkGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (sandbox.Deleting || !_sandboxes.ContainsKey(sandbox.Id))
            {
                return;
            }

            var current = sandbox.Endpoints.FirstOrDefault(e => IsGatewayNetworkEndpoint(e, sandbox.Id));
            var needs = WantsGatewayNetwork(sandbox);
            if (needs && current is null)
            {
                await AddGatewayNetworkEndpointAsync(sandbox, cancellationToken).ConfigureAwait(false);
            }
            else if (!needs && current is not null)
            {
                try
                {
                    await LeaveCoreAsync(current, sandbox, removeInterface: true, convergeGatewayNetwork: false, cancellationToken).ConfigureAwait(false);
                    await DeleteEndpointAsync(current, force: false, cancellationToken).ConfigureAwait(false);
                    Log.GatewayNetworkLeft(_logger, sandbox.Id, current.Id);
                }
                catch (CnmException ex)
                {
                    Log.GatewayNetworkConvergeFailed(_logger, ex, sandbox.Id);
                }
            }
        }
        finally
        {
            _gatewayNetworkGate.Release();
        }
    }

    /// <summary>Creates the gateway network if it does not exist, then an endpoint on it for the sandbox (or reuses the
    /// sandbox's endpoint a crash left unjoined), and joins it. On failure, what this call made is removed.</summary>
    private async ValueTask AddGatewayNetworkEndpointAsync(Sandbox sandbox, CancellationToken cancellationToken)
    {
        var settings = _options.GatewayNetwork;
        var network = FindNetworkByName(settings.Name);
        var networkCreated = false;
        if (network is null)
        {
            network = await CreateNetworkAsync(
                settings.Name,
                settings.Driver,
                new NetworkCreateOptions { DriverOptions = settings.EffectiveDriverOptions(), DisableDns = true, Scope = DriverScope.Local },
                cancellationToken).ConfigureAwait(false);
            networkCreated = true;
            Log.GatewayNetworkCreated(_logger, network.Name, network.Id, network.Driver);
        }
        else if (!IsGatewayNetwork(network))
        {
            throw new CnmConflictException(CnmErrorCodes.InvalidScope, network.ToString(), "the gateway network's name is taken by a network that is not a local one");
        }

        var name = GatewayEndpointName(sandbox.Id);
        Endpoint? endpoint = null;
        var endpointCreated = false;
        try
        {
            endpoint = network.FindEndpointByName(name);
            if (endpoint is { Record.Join: { } join })
            {
                throw new CnmConflictException(CnmErrorCodes.EndpointExists, endpoint.ToString(), $"the gateway network endpoint name is joined to sandbox {Ids.Short(join.SandboxId)}");
            }

            if (endpoint is null)
            {
                endpoint = await CreateEndpointAsync(network, name, new EndpointCreateOptions { DisableResolution = true }, cancellationToken).ConfigureAwait(false);
                endpointCreated = true;
            }

            await JoinCoreAsync(endpoint, sandbox, new JoinOptions(), convergeGatewayNetwork: false, cancellationToken).ConfigureAwait(false);
            Log.GatewayNetworkJoined(_logger, sandbox.Id, endpoint.Name, endpoint.Id);
        }
        catch
        {
            var made = endpointCreated ? endpoint : null;
            await UndoAsync("gateway network join", [
                ("delete gateway endpoint", async () =>
                {
                    if (made is not null && !made.Deleted)
                    {
                        await DeleteEndpointAsync(made, force: true, CancellationToken.None).ConfigureAwait(false);
                    }
                }),
                ("delete gateway network", async () =>
                {
                    if (networkCreated && network.EndpointCount == 0)
                    {
                        await DeleteNetworkAsync(network, CancellationToken.None).ConfigureAwait(false);
                    }
                }),
            ]).ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>
    /// At start, after recovery: every sandbox gets (or loses) its gateway network endpoint as its endpoints say (a
    /// crash between a join and the gateway network's join, or an older version, may have left it without), and
    /// gateway endpoints a crash left unjoined are deleted. Failures are logged; the controller starts anyway.
    /// </summary>
    private async ValueTask ConvergeGatewayNetworksAsync(CancellationToken cancellationToken)
    {
        if (!_options.GatewayNetwork.Enabled)
        {
            return;
        }

        foreach (var sandbox in _sandboxes.Values.ToArray())
        {
            try
            {
                await ConvergeGatewayNetworkAsync(sandbox, cancellationToken).ConfigureAwait(false);
            }
            catch (CnmException ex)
            {
                Log.GatewayNetworkConvergeFailed(_logger, ex, sandbox.Id);
            }
        }

        if (FindNetworkByName(_options.GatewayNetwork.Name) is not { } network || !IsGatewayNetwork(network))
        {
            return;
        }

        foreach (var endpoint in network.Endpoints.Where(e => e.Record.Join is null && IsGatewayEndpointName(e.Name)).ToArray())
        {
            try
            {
                await DeleteEndpointAsync(endpoint, force: false, cancellationToken).ConfigureAwait(false);
            }
            catch (CnmException ex)
            {
                Log.GatewayNetworkConvergeFailed(_logger, ex, endpoint.Name[GatewayEndpointPrefix.Length..]);
            }
        }
    }

    /// <summary>True for a name of the form the controller gives gateway network endpoints.</summary>
    private static bool IsGatewayEndpointName(string name) =>
        name.Length == GatewayEndpointPrefix.Length + 12
        && name.StartsWith(GatewayEndpointPrefix, StringComparison.Ordinal)
        && name.AsSpan(GatewayEndpointPrefix.Length).IndexOfAnyExcept(LowerHex) < 0;
}
