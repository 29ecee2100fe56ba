using System.Collections.Concurrent;
using System.Net;
using CnmSharp.Core.Persistence;
using CnmSharp.Dns;
using CnmSharp.Sandboxes.Files;

namespace CnmSharp;

/// <summary>
/// The core's side of the embedded DNS: which sandboxes get one, which names each network holds, and when the resolver
/// is told (after every committed join, leave and sandbox delete, at start, and after a reload of what other processes
/// wrote). The resolver itself (<c>Dns/</c>) is reached only through <see cref="IEmbeddedDns"/>.
/// </summary>
public sealed partial class NetworkController
{
    private readonly SemaphoreSlim _dnsGate = new(1, 1);
    private readonly ConcurrentDictionary<string, IReadOnlyList<IPEndPoint>> _dnsUpstreams = new(StringComparer.Ordinal);
    private readonly Func<IEmbeddedDns>? _dnsFactory;
    private IEmbeddedDns? _dns;

    /// <summary>
    /// Serves the embedded DNS of every sandbox in this controller's state from this process, then returns: call it
    /// again whenever the state may have changed (it reads again what other processes wrote first). The listeners stay
    /// open until the next call or until the controller is disposed. This is for a process that serves the DNS of
    /// controllers running elsewhere with <see cref="EmbeddedDnsMode.External"/> (such as <c>cnm dns serve</c>); it
    /// works on a read-only controller.
    /// </summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The number of sandboxes served.</returns>
    /// <exception cref="CnmConflictException">The controller serves its DNS itself (<see cref="EmbeddedDnsMode.InProcess"/>
    /// and not read-only), or its embedded DNS is disabled.</exception>
    public ValueTask<int> ServeDnsAsync(CancellationToken cancellationToken = default)
    {
        if (_options.Dns.Mode == EmbeddedDnsMode.Disabled || (_options.Dns.Mode == EmbeddedDnsMode.InProcess && !_readOnly))
        {
            throw new CnmConflictException(CnmErrorCodes.InvalidOption, "embedded DNS", "the controller's DNS mode is not External (or it is read-only)");
        }

        return RunAsync(RefreshOperation, async () =>
        {
            await _dnsGate.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                _dns ??= (_dnsFactory ?? DefaultDnsFactory)();
                var state = await BuildDnsStateAsync(cancellationToken).ConfigureAwait(false);
                await _dns.ApplyAsync(state, cancellationToken).ConfigureAwait(false);
                return state.Sandboxes.Count;
            }
            finally
            {
                _dnsGate.Release();
            }
        }, cancellationToken);
    }

    /// <summary>The number of sandboxes whose resolv.conf points at the embedded DNS (what <c>cnm</c> checks to decide
    /// whether its resolver process is needed).</summary>
    public int EmbeddedDnsSandboxCount => _sandboxes.Values.Count(s => !s.Deleting && s.Record.EmbeddedDns);

    private EmbeddedDnsServer DefaultDnsFactory() => new EmbeddedDnsServer(_options.Dns, new LinuxDnsNamespaces(), _loggerFactory);

    /// <summary>Whether a join of this endpoint turns the embedded DNS of its sandbox on.</summary>
    private bool TurnsDnsOn(Endpoint endpoint, Sandbox sandbox, SandboxRecord record) =>
        _options.Dns.Mode != EmbeddedDnsMode.Disabled
        && !record.EmbeddedDns
        && !sandbox.UsesHostNamespace
        && ResolvesOn(endpoint);

    /// <summary>An endpoint gives its sandbox names on its network when neither it nor its network disables
    /// resolution and it has an address.</summary>
    private static bool ResolvesOn(Endpoint endpoint) =>
        !endpoint.Record.DisableResolution && !endpoint.Network.Record.DisableDns
        && (endpoint.Record.Address is not null || endpoint.Record.AddressIPv6 is not null);

    /// <summary>Tells the in-process resolver the current state (best effort: a failure is logged, never thrown, so DNS
    /// cannot fail a join or a leave). Nothing happens without an in-process resolver: one this controller serves
    /// itself (<see cref="EmbeddedDnsMode.InProcess"/>), or one a <see cref="ServeDnsAsync"/> call started.</summary>
    private async ValueTask UpdateDnsAsync(CancellationToken cancellationToken)
    {
        if (Volatile.Read(ref _disposed) != 0
            || (_dns is null && (_dnsFactory is null || _readOnly || _options.Dns.Mode != EmbeddedDnsMode.InProcess)))
        {
            return;
        }

        try
        {
            await _dnsGate.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                if (_dns is null && EmbeddedDnsSandboxCount == 0)
                {
                    return;
                }

                _dns ??= _dnsFactory!();
                await _dns.ApplyAsync(await BuildDnsStateAsync(cancellationToken).ConfigureAwait(false), cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                _dnsGate.Release();
            }
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            DnsLog.ApplyFailed(_logger, ex);
        }
    }

    /// <summary>What the resolver serves: every sandbox whose resolv.conf points at it (with the networks it resolves on
    /// and its upstream servers), and the names of every joined endpoint with an address on a network that does not
    /// disable DNS: its endpoint name (unless anonymous), its container id and hostname (unless anonymous), its aliases.</summary>
    private async ValueTask<DnsState> BuildDnsStateAsync(CancellationToken cancellationToken)
    {
        var hosts = new List<DnsHost>();
        var sandboxes = new List<DnsSandbox>();
        foreach (var sandbox in _sandboxes.Values)
        {
            if (sandbox.Deleting || sandbox.SharesNetwork || sandbox.UsesHostNamespace)
            {
                continue;
            }

            var endpoints = sandbox.Endpoints;
            foreach (var endpoint in endpoints)
            {
                if (endpoint.Network.Record.DisableDns || endpoint.Record.Join is null)
                {
                    continue;
                }

                var addresses = new[] { endpoint.Address?.Address, endpoint.AddressIPv6?.Address }.OfType<IPAddress>().ToArray();
                if (addresses.Length == 0)
                {
                    continue;
                }

                IEnumerable<string?> names = endpoint.Anonymous ? [] : [endpoint.Name, sandbox.ContainerId, sandbox.Hostname];
                hosts.Add(new DnsHost(endpoint.Network.Id, endpoint.Network.Name, names.Concat(endpoint.Aliases).OfType<string>().ToArray(), addresses));
            }

            if (!sandbox.Record.EmbeddedDns)
            {
                continue;
            }

            var networks = endpoints.Where(ResolvesOn).Select(e => e.Network.Id).Distinct(StringComparer.Ordinal).ToArray();
            if (!_dnsUpstreams.TryGetValue(sandbox.Id, out var upstreams))
            {
                upstreams = await UpstreamsOfAsync(sandbox.Record, cancellationToken).ConfigureAwait(false);
                _dnsUpstreams[sandbox.Id] = upstreams;
            }

            sandboxes.Add(new DnsSandbox(sandbox.Id, sandbox.Key, networks, upstreams));
        }

        foreach (var gone in _dnsUpstreams.Keys.Where(id => !_sandboxes.ContainsKey(id)).ToArray())
        {
            _dnsUpstreams.TryRemove(gone, out _);
        }

        return new DnsState(sandboxes, hosts);
    }

    /// <summary>The servers a sandbox's names go to when they are not local: the IPv4 nameservers its resolv.conf would
    /// list without the embedded DNS (its own DNS servers, or the host's without loopback ones), port 53.</summary>
    private async ValueTask<IReadOnlyList<IPEndPoint>> UpstreamsOfAsync(SandboxRecord record, CancellationToken cancellationToken)
    {
        var hostPath = await ResolvConf.ResolveHostPathAsync(_options.HostResolvConfPath, cancellationToken: cancellationToken).ConfigureAwait(false);
        var host = await ResolvConf.ReadAsync(hostPath, cancellationToken).ConfigureAwait(false);
        var generated = ResolvConf.Generate(host, record.DnsServers, record.DnsSearch, record.DnsOptions, ipv6Enabled: false);
        return ResolvConf.BuildForEmbeddedDns(ResolvConf.Parse(generated)).ExternalNameservers.Take(3).Select(a => new IPEndPoint(a, 53)).ToArray();
    }

    private async ValueTask DisposeDnsAsync()
    {
        if (_dns is not null)
        {
            await _dns.DisposeAsync().ConfigureAwait(false);
        }

        _dnsGate.Dispose();
    }
}
