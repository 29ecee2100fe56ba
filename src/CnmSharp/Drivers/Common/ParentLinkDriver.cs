using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using CnmSharp.Diagnostics;
using CnmSharp.Netlink;
using Microsoft.Extensions.Logging;

namespace CnmSharp.Drivers.Common;

/// <summary>The per-kind settings of a network (macvlan's mode; ipvlan's mode and flag), as the options spell them.</summary>
/// <param name="Mode">The mode.</param>
/// <param name="Flag">The flag, or null for kinds without one.</param>
internal sealed record ParentLinkMode(string Mode, string? Flag);

/// <summary>
/// A driver whose endpoints are links on a parent link of the host namespace (macvlan, ipvlan). This base does what
/// both share: the <c>parent</c> option (checked before anything is made; loopback and missing parents refused;
/// <c>NAME.VID</c> makes an 802.1Q sub-interface; no parent makes an internal one), one network per parent, the MTU, the
/// driver's records (reloaded like the bridge driver's), and the join, which creates the endpoint's device directly
/// inside the sandbox's namespace. The kind supplies its options, its device and what a join reports.
/// </summary>
internal abstract partial class ParentLinkDriver : INetworkDriver, CnmSharp.Store.IStateReloadable, IAsyncDisposable
{
    /// <summary>The option naming the parent link.</summary>
    public const string ParentOption = "parent";

    /// <summary>The smallest MTU accepted.</summary>
    public const int MinMtu = 68;

    /// <summary>The MTU of an internal parent when none is given.</summary>
    public const int DefaultMtu = 1500;

    private const int MaxJoinAttempts = 4;
    private static readonly HashSet<string> s_passThrough = new(StringComparer.Ordinal) { NetLabels.EnableIPv6, NetLabels.Internal };

    private readonly IParentLinkKernel _kernel;
    private readonly ParentLinkStore _store;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly ConcurrentDictionary<string, ParentLinkNetwork> _networks = new(StringComparer.Ordinal);
    private int _disposed;

    /// <summary>The controller's fault injector (tests only), or null.</summary>
    private readonly FaultPoints? _faults;

    protected ParentLinkDriver(DriverContext context, IParentLinkKernel kernel, string driverName)
    {
        ArgumentNullException.ThrowIfNull(context);
        _kernel = kernel;
        DriverName = driverName;
        _store = new ParentLinkStore(context.Store, context.StoreKeyPrefix, driverName);
        Logger = context.LoggerFactory.CreateLogger(GetType());
        _faults = FaultPoints.From(context.Services);
    }

    /// <summary>Data scope local, connectivity scope global (libnetwork's macvlan and ipvlan).</summary>
    public DriverCapability Capability { get; } = new(DriverScope.Local, DriverScope.Global);

    /// <summary>The driver's name.</summary>
    protected string DriverName { get; }

    protected ILogger Logger { get; }

    /// <summary>The option keys the kind reads (besides <c>parent</c> and the MTU).</summary>
    protected abstract IReadOnlyCollection<string> KindOptionKeys { get; }

    /// <summary>The kind of the endpoints' devices (<c>macvlan</c>, <c>ipvlan</c>).</summary>
    protected abstract string DeviceKind { get; }

    /// <summary>The first letters of an endpoint's device name before the core renames it.</summary>
    protected abstract string DevicePrefix { get; }

    internal IReadOnlyCollection<ParentLinkNetwork> NetworksForTest => [.. _networks.Values];

    /// <summary>Parses and validates the kind's options; throws <see cref="CnmInvalidArgumentException"/>.</summary>
    protected abstract ParentLinkMode ParseMode(IReadOnlyDictionary<string, string> options, string subject);

    /// <summary>Refuses an endpoint the kind cannot have (macvlan passthru: one per parent). Called under the gate.</summary>
    protected virtual void CheckNewEndpoint(ParentLinkNetwork network, string subject)
    {
    }

    /// <summary>Fills what the kind derives for a new endpoint (a MAC), or refuses what it cannot take.</summary>
    protected abstract void FillInterface(ParentLinkNetwork network, IInterfaceInfo interfaceInfo, string subject);

    /// <summary>The device of an endpoint, created inside <paramref name="sandbox"/> on the parent of that index.</summary>
    protected abstract LinkSpec DeviceSpec(string name, int parentIndex, ParentLinkNetwork network, ParentLinkEndpointRecord endpoint, SafeHandle sandbox);

    /// <summary>Reports the gateway (or the routes that replace it) of a join.</summary>
    protected abstract void ReportGateway(ParentLinkNetwork network, ParentLinkEndpointRecord endpoint, IJoinInfo joinInfo);

    // ---------------------------------------------------------------- start, reload, dispose

    /// <summary>Loads the records and re-creates the parents this driver made that are missing from the kernel.</summary>
    internal async ValueTask RestoreAsync(CancellationToken cancellationToken)
    {
        foreach (var record in await _store.ListNetworksAsync(cancellationToken).ConfigureAwait(false))
        {
            var network = new ParentLinkNetwork(record);
            _networks[record.Id] = network;
            if (record.CreatedParent is null)
            {
                continue;
            }

            try
            {
                var link = await _kernel.Netlink.GetLinkAsync(record.Parent, cancellationToken).ConfigureAwait(false);
                if (link is null)
                {
                    network.Record = await CreateParentAsync(record, ParentName.Parse(record.Parent, record.Name), cancellationToken).ConfigureAwait(false);
                }
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                ParentLinkLog.RestoreFailed(Logger, ex, DriverName, record.Id, record.Parent);
            }
        }

        var endpoints = 0;
        foreach (var record in await _store.ListEndpointsAsync(null, cancellationToken).ConfigureAwait(false))
        {
            if (_networks.TryGetValue(record.NetworkId, out var network))
            {
                network.Endpoints[record.Id] = record;
                endpoints++;
            }
            else
            {
                // Its network is gone (a crash between the two deletes): the device went with its sandbox or parent.
                await _store.DeleteEndpointAsync(record.NetworkId, record.Id, cancellationToken).ConfigureAwait(false);
            }
        }

        if (!_networks.IsEmpty)
        {
            ParentLinkLog.Restored(Logger, DriverName, _networks.Count, endpoints);
        }
    }

    /// <summary>Re-reads the networks and endpoints from the records, replacing the in-memory view without touching the
    /// kernel: for when another process changed the store.</summary>
    internal async ValueTask ReloadAsync(CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var networkRecords = await _store.ListNetworksAsync(cancellationToken).ConfigureAwait(false);
            var endpointRecords = await _store.ListEndpointsAsync(null, cancellationToken).ConfigureAwait(false);
            var networks = networkRecords.ToDictionary(r => r.Id, r => new ParentLinkNetwork(r), StringComparer.Ordinal);
            foreach (var record in endpointRecords)
            {
                if (networks.TryGetValue(record.NetworkId, out var network))
                {
                    network.Endpoints[record.Id] = record;
                }
            }

            foreach (var gone in _networks.Keys.Where(id => !networks.ContainsKey(id)).ToList())
            {
                _networks.TryRemove(gone, out _);
            }

            foreach (var (id, network) in networks)
            {
                _networks[id] = network;
            }

            ParentLinkLog.Reloaded(Logger, DriverName, networks.Count, endpointRecords.Count);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <inheritdoc />
    ValueTask CnmSharp.Store.IStateReloadable.ReloadAsync(CancellationToken cancellationToken) => ReloadAsync(cancellationToken);

    /// <inheritdoc />
    public ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            _kernel.Dispose();
            _gate.Dispose();
        }

        GC.SuppressFinalize(this);
        return ValueTask.CompletedTask;
    }

    // ---------------------------------------------------------------- networks

    /// <inheritdoc />
    public async ValueTask CreateNetworkAsync(NetworkCreateRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        var subject = $"network \"{request.NetworkName}\"";

        // 1. Everything the request says, checked before anything is touched.
        string? parentText = null;
        int? mtu = null;
        foreach (var (key, value) in request.DriverOptions)
        {
            if (string.Equals(key, ParentOption, StringComparison.Ordinal))
            {
                parentText = value;
            }
            else if (string.Equals(key, NetLabels.DriverMtu, StringComparison.Ordinal))
            {
                if (!int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var m) || m is < MinMtu or > 65535)
                {
                    throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidOption, subject, $"{key} \"{value}\" must be an integer from {MinMtu} to 65535");
                }

                mtu = m;
            }
            else if (!KindOptionKeys.Contains(key) && !s_passThrough.Contains(key))
            {
                throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidOption, subject, $"unknown {DriverName} option \"{key}\"");
            }
        }

        var mode = ParseMode(request.DriverOptions, subject);

        // libnetwork: an internal network always gets an internal parent ("empty --parent= and --internal are the same").
        var parent = request.Internal ? null : ParentName.Parse(parentText, subject);
        var parentName = parent?.Name ?? ParentName.Internal(request.NetworkId);

        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_networks.ContainsKey(request.NetworkId))
            {
                throw new CnmConflictException(CnmErrorCodes.NetworkExists, subject, $"the {DriverName} driver already has network {request.NetworkId}");
            }

            foreach (var other in _networks.Values)
            {
                if (string.Equals(other.Record.Parent, parentName, StringComparison.Ordinal))
                {
                    throw new CnmConflictException(CnmErrorCodes.DriverForbidden, subject, $"network {other.Record.Name} ({other.Record.Id}) is already using parent interface {parentName}");
                }
            }

            // 2. The parent, resolved in the host namespace; still nothing is made.
            var (parentMtu, create) = await ResolveParentAsync(parent, parentName, subject, cancellationToken).ConfigureAwait(false);
            if (mtu is { } wanted && parentMtu is { } limit && wanted > limit)
            {
                throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidOption, subject, $"{NetLabels.DriverMtu} {wanted} is larger than the MTU {limit} of parent interface {parentName}");
            }

            var record = new ParentLinkNetworkRecord
            {
                Id = request.NetworkId,
                Name = request.NetworkName,
                Parent = parentName,
                Mode = mode.Mode,
                Flag = mode.Flag,
                Mtu = mtu ?? parentMtu ?? DefaultMtu,
                Internal = request.Internal,
                EnableIPv6 = request.EnableIPv6,
                IPv4Pools = [.. request.IPv4Data.Select(ToPool)],
                IPv6Pools = [.. request.IPv6Data.Select(ToPool)],
                CreatedParent = create is null ? null : new CreatedParentRecord { Kind = create },
            };

            // 3. The record first (so a crash leaves a record that proves what is ours), then the parent; any failure
            // undoes both.
            await _store.PutAsync(record, cancellationToken).ConfigureAwait(false);
            _faults.Hit(FaultPoint.ParentLinkNetworkRecordPersisted);
            try
            {
                if (record.CreatedParent is not null)
                {
                    record = await CreateParentAsync(record, parent, cancellationToken).ConfigureAwait(false);
                    _faults.Hit(FaultPoint.ParentLinkNetworkParentCreated);
                }
            }
            catch
            {
                await UndoCreateAsync(record).ConfigureAwait(false);
                throw;
            }

            _networks[record.Id] = new ParentLinkNetwork(record);
            ParentLinkLog.NetworkCreated(Logger, DriverName, record.Id, parentName, record.CreatedParent is { } made ? "made, " + made.Kind : "existing");
        }
        catch (NetlinkException ex)
        {
            throw KernelError(subject, ex);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Finds the parent (or, for a sub-interface to make, its base) and checks it. Returns the MTU a child may
    /// have at most (null: no limit, an internal parent is made to measure) and the kind to make (null: none).</summary>
    private async ValueTask<(int? Mtu, string? Create)> ResolveParentAsync(ParentName? parent, string parentName, string subject, CancellationToken cancellationToken)
    {
        var netlink = _kernel.Netlink;
        if (parent is null)
        {
            if (await netlink.GetLinkAsync(parentName, cancellationToken).ConfigureAwait(false) is { } taken)
            {
                throw new CnmConflictException(CnmErrorCodes.DriverForbidden, subject, $"internal parent {parentName} cannot be made: a {taken.Kind ?? "link"} of that name exists");
            }

            if (await netlink.GetLinkAsync(InternalPeer(parentName), cancellationToken).ConfigureAwait(false) is { } peerTaken)
            {
                throw new CnmConflictException(CnmErrorCodes.DriverForbidden, subject, $"internal parent {parentName} cannot be made: a {peerTaken.Kind ?? "link"} named {InternalPeer(parentName)} exists");
            }

            return (null, "dummy");
        }

        var link = await netlink.GetLinkAsync(parent.Name, cancellationToken).ConfigureAwait(false);
        if (link is not null)
        {
            RefuseLoopback(link, parent.Name, subject);
            return (link.Mtu, null);
        }

        if (!parent.IsVlan)
        {
            throw new CnmNotFoundException(CnmErrorCodes.InvalidOption, subject, $"parent interface {parent.Name} does not exist in the host namespace");
        }

        var baseLink = await netlink.GetLinkAsync(parent.BaseName!, cancellationToken).ConfigureAwait(false)
            ?? throw new CnmNotFoundException(CnmErrorCodes.InvalidOption, subject, $"parent interface {parent.BaseName} (of sub-interface {parent.Name}) does not exist in the host namespace");
        RefuseLoopback(baseLink, parent.BaseName!, subject);
        return (baseLink.Mtu, "vlan");
    }

    /// <summary>Loopback is refused by what the link is (IFF_LOOPBACK, ARPHRD_LOOPBACK), not by its name.</summary>
    private static void RefuseLoopback(LinkInfo link, string name, string subject)
    {
        const ushort ArphrdLoopback = 772;
        if ((link.Flags & LinkFlags.Loopback) != 0 || link.LinkType == ArphrdLoopback)
        {
            throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidOption, subject, $"loopback interface {name} is not a valid parent");
        }
    }

    /// <summary>Makes the parent the record says this driver makes, and records its kind and index. The internal parent
    /// is a <c>dummy</c>, or, where the kernel has none, a veth pair whose far end is idle (see docs/drivers.md).</summary>
    private async ValueTask<ParentLinkNetworkRecord> CreateParentAsync(ParentLinkNetworkRecord record, ParentName? parent, CancellationToken cancellationToken)
    {
        var netlink = _kernel.Netlink;
        var subject = $"network \"{record.Name}\"";
        if (parent is { IsVlan: true })
        {
            var baseLink = await netlink.GetLinkAsync(parent.BaseName!, cancellationToken).ConfigureAwait(false)
                ?? throw new CnmNotFoundException(CnmErrorCodes.InvalidOption, subject, $"parent interface {parent.BaseName} does not exist in the host namespace");
            try
            {
                await netlink.CreateLinkAsync(new VlanLinkSpec(parent.Name, baseLink.Index, parent.VlanId) { Up = true }, cancellationToken).ConfigureAwait(false);
            }
            catch (NetlinkException ex) when (IsMissingKind(ex))
            {
                throw new CnmNotImplementedException(CnmErrorCodes.NotImplemented, subject, $"cannot make 802.1Q sub-interface {parent.Name}: the kernel has no 'vlan' device kind", ex);
            }
        }
        else
        {
            try
            {
                await netlink.CreateLinkAsync(new DummyLinkSpec(record.Parent) { Up = true, Mtu = record.Mtu }, cancellationToken).ConfigureAwait(false);
                record = record with { CreatedParent = new CreatedParentRecord { Kind = "dummy" } };
            }
            catch (NetlinkException ex) when (IsMissingKind(ex))
            {
                // The stand-in, recorded before it is made so a crash leaves nothing we would not recognise: a veth
                // pair with both ends up in the host namespace. Its carrier depends on nothing else, the far end has no
                // address and no master, so the network's devices reach each other (bridge mode) and nothing more. An
                // empty bridge was tried first and is not reliable: its carrier is a kernel detail (here an empty
                // bridge whose MAC was set stays NO-CARRIER, and with no carrier macvlans on it pass nothing).
                ParentLinkLog.InternalParentStandIn(Logger, DriverName, "dummy", record.Parent, "a veth pair (far end " + InternalPeer(record.Parent) + ")");
                record = record with { CreatedParent = new CreatedParentRecord { Kind = "veth" } };
                await _store.PutAsync(record, cancellationToken).ConfigureAwait(false);
                await netlink.CreateLinkAsync(new VethLinkSpec(record.Parent, InternalPeer(record.Parent)) { Up = true, Mtu = record.Mtu }, cancellationToken).ConfigureAwait(false);
                var peer = await netlink.GetLinkAsync(InternalPeer(record.Parent), cancellationToken).ConfigureAwait(false)
                    ?? throw new CnmInternalException(CnmErrorCodes.KernelError, subject, $"the far end of internal parent {record.Parent} vanished right after it was made");
                await netlink.SetLinkUpAsync(peer.Index, cancellationToken).ConfigureAwait(false);
            }
        }

        var made = await netlink.GetLinkAsync(record.Parent, cancellationToken).ConfigureAwait(false)
            ?? throw new CnmInternalException(CnmErrorCodes.KernelError, subject, $"parent {record.Parent} vanished right after it was made");
        record = record with { CreatedParent = new CreatedParentRecord { Kind = made.Kind ?? record.CreatedParent!.Kind, Index = made.Index } };
        await _store.PutAsync(record, cancellationToken).ConfigureAwait(false);
        return record;
    }

    private async ValueTask UndoCreateAsync(ParentLinkNetworkRecord record)
    {
        try
        {
            await DeleteOwnParentAsync(record, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            ParentLinkLog.UndoFailed(Logger, ex, DriverName, $"parent {record.Parent}");
        }

        try
        {
            await _store.DeleteNetworkAsync(record.Id, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            ParentLinkLog.UndoFailed(Logger, ex, DriverName, $"record of network {record.Id}");
        }
    }

    /// <summary>Deletes the parent when the record says this driver made it and the link found still is that one
    /// (name, kind, and index once known); anything else is left alone.</summary>
    private async ValueTask DeleteOwnParentAsync(ParentLinkNetworkRecord record, CancellationToken cancellationToken)
    {
        // The record's own kind, read again: a record made before the stand-in was chosen says "dummy".
        var current = await _store.GetNetworkAsync(record.Id, cancellationToken).ConfigureAwait(false) ?? record;
        if (current.CreatedParent is not { } made)
        {
            return;
        }

        var link = await _kernel.Netlink.GetLinkAsync(current.Parent, cancellationToken).ConfigureAwait(false);
        if (link is null)
        {
            return;
        }

        if (!string.Equals(link.Kind, made.Kind, StringComparison.Ordinal) || (made.Index != 0 && link.Index != made.Index))
        {
            ParentLinkLog.ParentNotOwned(Logger, DriverName, current.Parent, current.Id, $"kind {link.Kind ?? "none"}, index {link.Index}; recorded kind {made.Kind}, index {made.Index}");
            return;
        }

        try
        {
            await _kernel.Netlink.DeleteLinkAsync(link.Index, cancellationToken).ConfigureAwait(false);
        }
        catch (NetlinkException ex) when (ex.IsNotFound)
        {
            // Gone already.
        }
    }

    /// <inheritdoc />
    public async ValueTask DeleteNetworkAsync(string networkId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(networkId);
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var record = _networks.TryGetValue(networkId, out var known) ? known.Record
                : await _store.GetNetworkAsync(networkId, cancellationToken).ConfigureAwait(false);
            if (record is null)
            {
                return;
            }

            await DeleteOwnParentAsync(record, cancellationToken).ConfigureAwait(false);
            _faults.Hit(FaultPoint.ParentLinkNetworkParentDeleted);
            foreach (var endpoint in await _store.ListEndpointsAsync(networkId, cancellationToken).ConfigureAwait(false))
            {
                await _store.DeleteEndpointAsync(networkId, endpoint.Id, cancellationToken).ConfigureAwait(false);
            }

            await _store.DeleteNetworkAsync(networkId, cancellationToken).ConfigureAwait(false);
            _networks.TryRemove(networkId, out _);
            ParentLinkLog.NetworkDeleted(Logger, DriverName, networkId, record.Parent);
        }
        catch (NetlinkException ex)
        {
            throw KernelError($"network {networkId}", ex);
        }
        finally
        {
            _gate.Release();
        }
    }

    // ---------------------------------------------------------------- endpoints

    /// <inheritdoc />
    public async ValueTask CreateEndpointAsync(EndpointCreateRequest request, IInterfaceInfo interfaceInfo, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(interfaceInfo);
        var subject = $"endpoint \"{request.EndpointName}\"";
        if (request.PortBindings.Count > 0)
        {
            throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidOption, subject, $"the {DriverName} driver does not publish ports");
        }

        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var network = GetNetwork(request.NetworkId);
            if (network.Endpoints.ContainsKey(request.EndpointId))
            {
                throw new CnmConflictException(CnmErrorCodes.EndpointExists, subject, $"the {DriverName} driver already has endpoint {request.EndpointId}");
            }

            CheckNewEndpoint(network, subject);
            FillInterface(network, interfaceInfo, subject);
            var record = new ParentLinkEndpointRecord
            {
                Id = request.EndpointId,
                NetworkId = request.NetworkId,
                MacAddress = interfaceInfo.MacAddress is { } mac ? MacAddresses.Format(mac) : null,
                Address = interfaceInfo.Address?.ToString(),
                AddressIPv6 = interfaceInfo.AddressIPv6?.ToString(),
            };
            await _store.PutAsync(record, cancellationToken).ConfigureAwait(false);
            _faults.Hit(FaultPoint.ParentLinkEndpointRecordPersisted);
            network.Endpoints[record.Id] = record;
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Forgets the endpoint. Its device lives only inside the sandbox: the core deletes it at leave, and
    /// deleting the sandbox's namespace reaps it, so there is nothing in the host namespace to delete.</summary>
    public async ValueTask DeleteEndpointAsync(string networkId, string endpointId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(networkId);
        ArgumentException.ThrowIfNullOrEmpty(endpointId);
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await _store.DeleteEndpointAsync(networkId, endpointId, cancellationToken).ConfigureAwait(false);
            if (_networks.TryGetValue(networkId, out var network))
            {
                network.Endpoints.TryRemove(endpointId, out _);
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <inheritdoc />
    public ValueTask<IReadOnlyDictionary<string, string>> GetEndpointOperationalInfoAsync(string networkId, string endpointId, CancellationToken cancellationToken = default)
    {
        var endpoint = GetEndpoint(GetNetwork(networkId), endpointId);
        IReadOnlyDictionary<string, string> info = endpoint.MacAddress is { } mac
            ? new Dictionary<string, string>(StringComparer.Ordinal) { [NetLabels.MacAddress] = mac }
            : EmptyOptions.Instance;
        return ValueTask.FromResult(info);
    }

    /// <summary>Creates the endpoint's device in one <c>RTM_NEWLINK</c> directly inside the sandbox's namespace (the
    /// parent's index from the host namespace), so no device is moved between namespaces, and reports it with
    /// <see cref="InterfacePlacement.Sandbox"/>. A name taken inside the sandbox gets the next one.</summary>
    public async ValueTask JoinAsync(JoinRequest request, IJoinInfo joinInfo, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(joinInfo);
        var network = GetNetwork(request.NetworkId);
        var endpoint = GetEndpoint(network, request.EndpointId);
        var subject = $"endpoint {request.EndpointId}";
        if (request.SandboxUsesHostNamespace)
        {
            throw new CnmConflictException(CnmErrorCodes.DriverForbidden, subject, $"a {DriverName} endpoint cannot join a sandbox that uses the host namespace");
        }

        var netlink = _kernel.Netlink;
        SafeHandle sandbox;
        try
        {
            sandbox = _kernel.OpenNamespace(request.SandboxKey);
        }
        catch (NamespaceException ex)
        {
            throw new CnmNotFoundException(CnmErrorCodes.NoSuchSandbox, $"sandbox {request.SandboxId}", $"cannot open its namespace {request.SandboxKey}", ex);
        }

        using (sandbox)
        {
            try
            {
                var parent = await netlink.GetLinkAsync(network.Record.Parent, cancellationToken).ConfigureAwait(false)
                    ?? throw new CnmNotFoundException(CnmErrorCodes.InvalidOption, subject, $"parent interface {network.Record.Parent} of network {network.Record.Name} does not exist any more");
                for (var attempt = 0; ; attempt++)
                {
                    var name = DeviceName(endpoint.Id, attempt);
                    try
                    {
                        await netlink.CreateLinkAsync(DeviceSpec(name, parent.Index, network, endpoint, sandbox), cancellationToken).ConfigureAwait(false);
                    }
                    catch (NetlinkException ex) when (ex.IsAlreadyExists && attempt + 1 < MaxJoinAttempts)
                    {
                        continue; // a name taken inside the sandbox (not ours to touch)
                    }
                    catch (NetlinkException ex) when (IsMissingKind(ex))
                    {
                        throw new CnmNotImplementedException(CnmErrorCodes.NotImplemented, subject, $"the kernel has no '{DeviceKind}' device kind", ex);
                    }

                    _faults.Hit(FaultPoint.ParentLinkJoinDeviceCreated);
                    joinInfo.SetInterfaceName(name, "eth", InterfacePlacement.Sandbox);
                    break;
                }

                ReportGateway(network, endpoint, joinInfo);
            }
            catch (NetlinkException ex)
            {
                throw KernelError(subject, ex);
            }
        }
    }

    /// <summary>Nothing to do: the core deletes the device inside the sandbox at leave (it was created there), and a
    /// sandbox whose namespace is gone took it along.</summary>
    public ValueTask LeaveAsync(string networkId, string endpointId, CancellationToken cancellationToken = default) => ValueTask.CompletedTask;

    // ---------------------------------------------------------------- helpers for the kinds

    /// <summary>Reports the IPAM gateways of the pools holding the endpoint's addresses (not for internal networks).</summary>
    protected static void ReportIpamGateways(ParentLinkNetwork network, ParentLinkEndpointRecord endpoint, IJoinInfo joinInfo)
    {
        ArgumentNullException.ThrowIfNull(network);
        ArgumentNullException.ThrowIfNull(endpoint);
        ArgumentNullException.ThrowIfNull(joinInfo);
        if (network.Record.Internal)
        {
            return;
        }

        if (endpoint.Address is { } a && network.GatewayFor(CidrAddress.Parse(a).Address) is { } gateway)
        {
            joinInfo.SetGateway(gateway);
        }

        if (network.Record.EnableIPv6 && endpoint.AddressIPv6 is { } a6 && network.GatewayFor(CidrAddress.Parse(a6).Address) is { } gateway6)
        {
            joinInfo.SetGatewayIPv6(gateway6);
        }
    }

    protected static bool IsMissingKind(NetlinkException ex) =>
        ex.IsNotSupported || string.Equals(ex.ExtendedMessage, "Unknown device type", StringComparison.Ordinal);

    /// <summary>The far end of an internal parent made as a veth pair: <c>dp-</c> instead of <c>dm-</c>.</summary>
    internal static string InternalPeer(string parentName) => "dp-" + parentName[3..];

    /// <summary>The device's name inside the sandbox before the core renames it: the prefix and the first 8 characters
    /// of the endpoint id, then <c>-1</c>, <c>-2</c>, ... when taken there.</summary>
    internal string DeviceName(string endpointId, int attempt)
    {
        var stem = DevicePrefix + (endpointId.Length > 8 ? endpointId[..8] : endpointId);
        return attempt == 0 ? stem : stem + "-" + attempt.ToString(CultureInfo.InvariantCulture);
    }

    private ParentLinkNetwork GetNetwork(string networkId) =>
        _networks.TryGetValue(networkId, out var network)
            ? network
            : throw new CnmNotFoundException(CnmErrorCodes.NoSuchNetwork, $"network {networkId}", $"the {DriverName} driver has no such network");

    private ParentLinkEndpointRecord GetEndpoint(ParentLinkNetwork network, string endpointId) =>
        network.Endpoints.TryGetValue(endpointId, out var endpoint)
            ? endpoint
            : throw new CnmNotFoundException(CnmErrorCodes.NoSuchEndpoint, $"endpoint {endpointId}", $"the {DriverName} driver has no such endpoint");

    private static CnmInternalException KernelError(string subject, NetlinkException ex) => new(CnmErrorCodes.KernelError, subject, ex.Message, ex);

    private static ParentLinkPoolRecord ToPool(IpamData data) => new() { Subnet = data.Pool.ToString(), Gateway = data.Gateway?.ToString() };
}

/// <summary>A network a link-on-a-parent driver holds: its record and its endpoints' records.</summary>
internal sealed class ParentLinkNetwork(ParentLinkNetworkRecord record)
{
    public ParentLinkNetworkRecord Record { get; set; } = record;

    public ConcurrentDictionary<string, ParentLinkEndpointRecord> Endpoints { get; } = new(StringComparer.Ordinal);

    /// <summary>The gateway of the pool holding <paramref name="address"/>, or null.</summary>
    public IPAddress? GatewayFor(IPAddress address)
    {
        var pools = address.AddressFamily == AddressFamily.InterNetwork ? Record.IPv4Pools : Record.IPv6Pools;
        foreach (var pool in pools)
        {
            if (pool.Gateway is { } gateway && IPNetwork.Parse(pool.Subnet).Contains(address))
            {
                return CidrAddress.Parse(gateway).Address;
            }
        }

        return null;
    }
}
