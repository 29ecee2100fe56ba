using CnmSharp.Core;
using CnmSharp.Diagnostics;
using CnmSharp.Ipam;

namespace CnmSharp;

/// <summary>
/// Request replay for IPAMs that keep no state of their own (<see cref="IpamCapability.RequiresRequestReplay"/>): every
/// pool, gateway, auxiliary address and endpoint address the networks of that IPAM hold is requested again, with the
/// same values, at start, when the IPAM is registered later, and when the IPAM finds it lost its state
/// (<see cref="IIpamRequestReplay"/>). A single request's failure is logged and the replay goes on.
/// </summary>
public sealed partial class NetworkController
{
    /// <summary>Wires the replay of a just-registered IPAM and, when its networks are loaded, replays now.</summary>
    private async ValueTask SetUpReplayAsync(RegisteredIpam ipam, CancellationToken cancellationToken)
    {
        if (!ipam.Ipam.Capability.RequiresRequestReplay)
        {
            return;
        }

        if (ipam.Ipam is IIpamRequestReplay replayable)
        {
            replayable.SetReplayHandler(ct => ReplayIpamAsync(ipam, ct));
        }

        if (_loaded)
        {
            await ReplayIpamAsync(ipam, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>At start, after the networks are loaded: replays every registered IPAM that asks for it.</summary>
    private async ValueTask ReplayAllIpamsAsync(CancellationToken cancellationToken)
    {
        foreach (var ipam in _registry.Ipams.Where(i => i.Ipam.Capability.RequiresRequestReplay))
        {
            await ReplayIpamAsync(ipam, cancellationToken).ConfigureAwait(false);
        }
    }

    private async ValueTask ReplayIpamAsync(RegisteredIpam ipam, CancellationToken cancellationToken)
    {
        int pools = 0, addresses = 0;
        var networks = _networks.Values.Where(n => !n.ConfigOnly && string.Equals(n.IpamDriver, ipam.Name, StringComparison.Ordinal)).OrderBy(n => n.Id, StringComparer.Ordinal).ToArray();
        foreach (var network in networks)
        {
            var owner = NetworkOwner(network.Id);
            foreach (var (pool, ipv6, range) in network.IPv4Info.Select((p, i) => (p, false, RangeOf(network.IPv4Config, p)))
                .Concat(network.IPv6Info.Select(p => (p, true, RangeOf(network.IPv6Config, p)))))
            {
                var poolOptions = new Dictionary<string, string>(network.IpamOptions, StringComparer.Ordinal) { [NetLabels.IpamOwner] = owner };
                if (!await ReplayOneAsync(ipam, $"pool {pool.Pool} of network {network.Name}", async () =>
                    {
                        var replayed = await ipam.Ipam.RequestPoolAsync(new PoolRequest { AddressSpace = pool.AddressSpace, Pool = pool.Pool.ToString(), SubPool = range, Options = poolOptions, IPv6 = ipv6 }, cancellationToken).ConfigureAwait(false);
                        if (!string.Equals(replayed.PoolId, pool.PoolId, StringComparison.Ordinal))
                        {
                            throw new CnmInternalException(CnmErrorCodes.PoolNotFound, $"pool {pool.Pool}", $"the IPAM answered the replayed request with pool id \"{replayed.PoolId}\", not \"{pool.PoolId}\"");
                        }
                    }, cancellationToken).ConfigureAwait(false))
                {
                    continue;
                }

                pools++;
                var addressOptions = new Dictionary<string, string>(network.IpamOptions, StringComparer.Ordinal) { [NetLabels.IpamOwner] = owner };
                if (pool.Gateway is { } gateway && !pool.Meta.ContainsKey(NetLabels.RequestAddressTypeGateway))
                {
                    var gatewayOptions = new Dictionary<string, string>(addressOptions, StringComparer.Ordinal) { [NetLabels.RequestAddressType] = NetLabels.RequestAddressTypeGateway };
                    addresses += await ReplayAddressAsync(ipam, pool.PoolId, gateway.Address, gatewayOptions, cancellationToken).ConfigureAwait(false);
                }

                foreach (var aux in pool.AuxAddresses.Values)
                {
                    addresses += await ReplayAddressAsync(ipam, pool.PoolId, aux.Address, addressOptions, cancellationToken).ConfigureAwait(false);
                }
            }

            foreach (var endpoint in network.Endpoints)
            {
                var record = endpoint.Record;
                var options = new Dictionary<string, string>(network.IpamOptions, StringComparer.Ordinal) { [NetLabels.IpamOwner] = endpoint.Id };
                if (ipam.Ipam.Capability.RequiresMacAddress && record.MacAddress is { } mac)
                {
                    options[NetLabels.MacAddress] = mac;
                }

                foreach (var (poolId, address) in new[] { (record.PoolIdV4, record.Address), (record.PoolIdV6, record.AddressIPv6) })
                {
                    if (poolId is not null && address is not null)
                    {
                        addresses += await ReplayAddressAsync(ipam, poolId, CidrAddress.Parse(address).Address, options, cancellationToken).ConfigureAwait(false);
                    }
                }
            }
        }

        PluginLog.IpamReplayed(_logger, ipam.Name, pools, addresses);
    }

    private static string? RangeOf(IReadOnlyList<IpamConfig> configs, IpamInfo pool) =>
        configs.FirstOrDefault(c => c.Subnet is { } s && IPNetworks.TryParse(s, allowHostBits: true, out var subnet) && subnet.Equals(pool.Pool))?.IPRange;

    private async ValueTask<int> ReplayAddressAsync(RegisteredIpam ipam, string poolId, System.Net.IPAddress address, IReadOnlyDictionary<string, string> options, CancellationToken cancellationToken) =>
        await ReplayOneAsync(ipam, $"address {address} of pool {poolId}", async () => await ipam.Ipam.RequestAddressAsync(poolId, address, options, cancellationToken).ConfigureAwait(false), cancellationToken).ConfigureAwait(false) ? 1 : 0;

    private async ValueTask<bool> ReplayOneAsync(RegisteredIpam ipam, string what, Func<Task> request, CancellationToken cancellationToken)
    {
        try
        {
            await request().ConfigureAwait(false);
            return true;
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            PluginLog.IpamReplayFailed(_logger, ex, ipam.Name, what);
            return false;
        }
    }
}
