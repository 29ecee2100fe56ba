using System.Globalization;
using CnmSharp.Store;
using Microsoft.Extensions.Logging;

namespace CnmSharp.Drivers.Overlay;

/// <summary>
/// The cluster-wide VNI allocator in the global store: <c>vni/&lt;vni&gt;</c> names the network that holds a VNI (a
/// create-only write claims it), <c>network/&lt;nid&gt;</c> holds a network's VNIs (written create-only by the first host
/// that creates the network). Every step is a compare-and-swap, so hosts racing each other never share a VNI.
/// </summary>
/// <param name="store">The global store.</param>
/// <param name="prefix">The driver's global prefix (ends with <c>/</c>).</param>
/// <param name="logger">Logging.</param>
/// <param name="first">The first VNI handed out (default <see cref="OverlayDriver.FirstVni"/>).</param>
/// <param name="last">The last VNI handed out (default <see cref="OverlayDriver.LastVni"/>).</param>
internal sealed class OverlayVniAllocator(IKeyValueStore store, string prefix, ILogger logger, uint first = OverlayDriver.FirstVni, uint last = OverlayDriver.LastVni)
{
    private readonly IKeyValueStore _store = store;
    private readonly ILogger _logger = logger;
    private readonly uint _first = first;
    private readonly uint _last = last;

    private string Prefix => prefix;

    public string NetworkKey(string networkId) => Prefix + "network/" + networkId;

    public string VniKey(uint vni) => Prefix + "vni/" + vni.ToString(CultureInfo.InvariantCulture);

    /// <summary>The VNIs of a network: those of its global record when another host (or an earlier attempt) wrote it;
    /// else the user's list or newly allocated ones, claimed one key each (create-only) and then the record written
    /// create-only. Losing that race releases the claims and takes the winner's VNIs.</summary>
    public async ValueTask<List<uint>> ResolveAsync(string networkId, List<string> subnets, List<uint>? wanted, string subject, CancellationToken cancellationToken)
    {
        for (var attempt = 0; attempt < 8; attempt++)
        {
            if (await _store.GetAsync(NetworkKey(networkId), cancellationToken).ConfigureAwait(false) is { } existing)
            {
                var known = OverlayJson.Read(existing.Key, existing.Value, OverlayJsonContext.Default.OverlayGlobalNetwork);
                if (!known.Subnets.SequenceEqual(subnets, StringComparer.Ordinal))
                {
                    throw new CnmConflictException(CnmErrorCodes.DriverForbidden, subject, $"network {networkId} exists in the cluster with subnets {string.Join(',', known.Subnets)}");
                }

                if (wanted is not null && !known.Vnis.SequenceEqual(wanted.Take(subnets.Count)))
                {
                    throw new CnmConflictException(CnmErrorCodes.DriverForbidden, subject, $"network {networkId} exists in the cluster with VNIs {string.Join(',', known.Vnis)}");
                }

                return known.Vnis;
            }

            var claimed = new List<uint>();
            try
            {
                for (var i = 0; i < subnets.Count; i++)
                {
                    claimed.Add(wanted is not null
                        ? await ClaimVniAsync(wanted[i], networkId, subject, cancellationToken).ConfigureAwait(false)
                        : await AllocateVniAsync(networkId, claimed, subject, cancellationToken).ConfigureAwait(false));
                }

                var record = new OverlayGlobalNetwork { Id = networkId, Subnets = subnets, Vnis = claimed };
                await _store.PutAsync(NetworkKey(networkId), OverlayJson.Write(record, OverlayJsonContext.Default.OverlayGlobalNetwork), StoreVersion.Absent, cancellationToken).ConfigureAwait(false);
                return claimed;
            }
            catch (CnmConflictException ex) when (ex.Code == CnmErrorCodes.VersionConflict)
            {
                // Another host wrote the network first: release ours and read theirs.
                await ReleaseVnisAsync(networkId, claimed, CancellationToken.None).ConfigureAwait(false);
            }
            catch
            {
                await ReleaseVnisAsync(networkId, claimed, CancellationToken.None).ConfigureAwait(false);
                throw;
            }
        }

        throw new CnmUnavailableException(CnmErrorCodes.VersionConflict, subject, "the network's VNIs kept changing in the global store");
    }

    /// <summary>Claims one VNI the user named; it may already be this network's.</summary>
    private async ValueTask<uint> ClaimVniAsync(uint vni, string networkId, string subject, CancellationToken cancellationToken)
    {
        var claim = OverlayJson.Write(new OverlayVniClaim { NetworkId = networkId }, OverlayJsonContext.Default.OverlayVniClaim);
        try
        {
            await _store.PutAsync(VniKey(vni), claim, StoreVersion.Absent, cancellationToken).ConfigureAwait(false);
            return vni;
        }
        catch (CnmConflictException ex) when (ex.Code == CnmErrorCodes.VersionConflict)
        {
            var owner = await _store.GetAsync(VniKey(vni), cancellationToken).ConfigureAwait(false);
            if (owner is not null && OverlayJson.TryRead(owner.Value, OverlayJsonContext.Default.OverlayVniClaim)?.NetworkId == networkId)
            {
                return vni;
            }

            throw new CnmConflictException(CnmErrorCodes.DriverForbidden, subject, $"VNI {vni} is used by another overlay network", ex);
        }
    }

    /// <summary>The lowest free VNI of the range, claimed with a create-only put (a lost race moves on).</summary>
    private async ValueTask<uint> AllocateVniAsync(string networkId, List<uint> already, string subject, CancellationToken cancellationToken)
    {
        var used = new HashSet<uint>(already);
        foreach (var entry in await _store.ListAsync(Prefix + "vni/", cancellationToken).ConfigureAwait(false))
        {
            if (uint.TryParse(entry.Key.AsSpan(Prefix.Length + 4), NumberStyles.None, CultureInfo.InvariantCulture, out var v))
            {
                used.Add(v);
            }
        }

        var claim = OverlayJson.Write(new OverlayVniClaim { NetworkId = networkId }, OverlayJsonContext.Default.OverlayVniClaim);
        for (var vni = _first; vni <= _last; vni++)
        {
            if (used.Contains(vni))
            {
                continue;
            }

            try
            {
                await _store.PutAsync(VniKey(vni), claim, StoreVersion.Absent, cancellationToken).ConfigureAwait(false);
                return vni;
            }
            catch (CnmConflictException ex) when (ex.Code == CnmErrorCodes.VersionConflict)
            {
                // Taken since the listing; try the next.
            }
        }

        throw new CnmUnavailableException(CnmErrorCodes.NoAvailableVni, subject, $"every VNI from {_first} to {_last} is taken");
    }

    /// <summary>Deletes the VNI claims that name this network (a claim that names another is left alone).</summary>
    public async ValueTask ReleaseVnisAsync(string networkId, IEnumerable<uint> vnis, CancellationToken cancellationToken)
    {
        foreach (var vni in vnis)
        {
            try
            {
                var entry = await _store.GetAsync(VniKey(vni), cancellationToken).ConfigureAwait(false);
                if (entry is not null && OverlayJson.TryRead(entry.Value, OverlayJsonContext.Default.OverlayVniClaim)?.NetworkId == networkId)
                {
                    await _store.DeleteAsync(VniKey(vni), entry.Version, cancellationToken).ConfigureAwait(false);
                }
            }
            catch (CnmConflictException ex) when (ex.Code == CnmErrorCodes.VersionConflict)
            {
                // Another host freeing the same network released it first.
            }
            catch (CnmException ex)
            {
                OverlayLog.GlobalWriteFailed(_logger, ex, VniKey(vni));
            }
        }
    }

    /// <summary>Deletes a network's record and frees its VNIs (when the last host deleted the network).</summary>
    public async ValueTask FreeNetworkAsync(string networkId, CancellationToken cancellationToken)
    {
        if (await _store.GetAsync(NetworkKey(networkId), cancellationToken).ConfigureAwait(false) is { } record)
        {
            var network = OverlayJson.Read(record.Key, record.Value, OverlayJsonContext.Default.OverlayGlobalNetwork);
            await ReleaseVnisAsync(networkId, network.Vnis, cancellationToken).ConfigureAwait(false);
            try
            {
                await _store.DeleteAsync(NetworkKey(networkId), record.Version, cancellationToken).ConfigureAwait(false);
            }
            catch (CnmConflictException ex) when (ex.Code == CnmErrorCodes.VersionConflict)
            {
                // Two hosts that left the network at once both found no member left, and the other one deleted the
                // record first: freed either way. (Failing here failed the driver's DeleteNetworkAsync after its
                // kernel and local state were gone, so the controller kept the network.)
            }
        }
    }
}
