using System.Globalization;
using System.Net;
using System.Net.Sockets;
using CnmSharp.Drivers;

namespace CnmSharp.Firewall;

/// <summary>Settings of a <see cref="HostPortAllocator"/>.</summary>
public sealed record HostPortAllocatorOptions
{
    /// <summary>Docker's fallback ephemeral range start, used when the kernel's range cannot be read.</summary>
    public const ushort DefaultEphemeralStart = 49153;

    /// <summary>Docker's fallback ephemeral range end (inclusive).</summary>
    public const ushort DefaultEphemeralEnd = 65535;

    /// <summary>First port handed out for host port 0.</summary>
    public ushort EphemeralStart { get; init; } = DefaultEphemeralStart;

    /// <summary>Last port (inclusive) handed out for host port 0.</summary>
    public ushort EphemeralEnd { get; init; } = DefaultEphemeralEnd;
}

/// <summary>
/// Allocates host ports for published ports, per controller (no shared state: each controller has its own allocator).
/// A port is taken per protocol and host address; the wildcard address of a family (<c>0.0.0.0</c> or <c>::</c>)
/// conflicts with every address of that family on the same protocol and port. Thread-safe.
/// </summary>
public sealed class HostPortAllocator
{
    private readonly Lock _lock = new();
    private readonly Dictionary<(TransportProtocol Protocol, ushort Port), List<IPAddress>> _taken = [];
    private readonly Dictionary<TransportProtocol, ushort> _nextEphemeral = [];

    /// <summary>Creates an allocator.</summary>
    /// <param name="options">The ephemeral range; null for Docker's fallback 49153-65535.</param>
    /// <exception cref="ArgumentException">The range is empty or starts at 0.</exception>
    public HostPortAllocator(HostPortAllocatorOptions? options = null)
    {
        options ??= new HostPortAllocatorOptions();
        if (options.EphemeralStart == 0 || options.EphemeralStart > options.EphemeralEnd)
        {
            throw new ArgumentException($"invalid ephemeral range {options.EphemeralStart}-{options.EphemeralEnd}", nameof(options));
        }

        EphemeralStart = options.EphemeralStart;
        EphemeralEnd = options.EphemeralEnd;
    }

    /// <summary>First port of the ephemeral range.</summary>
    public ushort EphemeralStart { get; }

    /// <summary>Last port (inclusive) of the ephemeral range.</summary>
    public ushort EphemeralEnd { get; }

    /// <summary>
    /// Creates an allocator whose ephemeral range is the kernel's <c>net.ipv4.ip_local_port_range</c> of the given
    /// network namespace (read in process, from a thread that enters it), or the fallback 49153-65535 when it cannot be read.
    /// </summary>
    /// <param name="hostNamespacePath">The host namespace path, or null for the process's own.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The allocator.</returns>
    public static async ValueTask<HostPortAllocator> CreateForNamespaceAsync(string? hostNamespacePath, CancellationToken cancellationToken = default)
    {
        const string RangeFile = "/proc/sys/net/ipv4/ip_local_port_range";
        string? text = null;
        try
        {
            if (hostNamespacePath is null)
            {
                text = await File.ReadAllTextAsync(RangeFile, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                // Read in process, from a thread that enters the namespace (no nsenter process: every controller
                // start with a bridge driver reads it, and a cnm command is one start).
                var manager = new CnmSharp.Netlink.NetworkNamespaceManager();
                using var ns = manager.Open(hostNamespacePath);
                text = await manager.ReadSysctlAsync(ns, "net.ipv4.ip_local_port_range", cancellationToken).ConfigureAwait(false);
            }
        }
        catch (IOException)
        {
        }
        catch (CnmSharp.Netlink.NamespaceException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }

        return new HostPortAllocator(TryParseRange(text, out var start, out var end)
            ? new HostPortAllocatorOptions { EphemeralStart = start, EphemeralEnd = end }
            : null);
    }

    /// <summary>Parses the kernel's <c>ip_local_port_range</c> text (two numbers).</summary>
    /// <param name="text">The text, for example <c>32768\t60999</c>.</param>
    /// <param name="start">The first port.</param>
    /// <param name="end">The last port.</param>
    /// <returns>True when it parsed into a non-empty range not starting at 0.</returns>
    public static bool TryParseRange(string? text, out ushort start, out ushort end)
    {
        start = end = 0;
        var parts = text?.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
        return parts is { Length: 2 }
            && ushort.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out start)
            && ushort.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out end)
            && start != 0 && start <= end;
    }

    /// <summary>
    /// Allocates the host port of one binding: a specific port (<c>HostPort</c>, <c>HostPortEnd</c> 0 or equal), the
    /// first free port of a range (<c>HostPort..HostPortEnd</c>), or an ephemeral port (<c>HostPort</c> 0), handed out
    /// round-robin so a released port is not reused at once.
    /// </summary>
    /// <param name="binding">The requested binding.</param>
    /// <returns>The binding with <see cref="PortBinding.HostPort"/> resolved and <see cref="PortBinding.HostPortEnd"/> 0.</returns>
    /// <exception cref="CnmInvalidArgumentException">The protocol is not tcp, udp or sctp, or the range is reversed
    /// (<see cref="CnmErrorCodes.InvalidOption"/>); nothing is allocated.</exception>
    /// <exception cref="CnmConflictException">The port (or every port of the range) is taken
    /// (<see cref="CnmErrorCodes.PortAlreadyAllocated"/>).</exception>
    /// <exception cref="CnmUnavailableException">The ephemeral range is exhausted.</exception>
    public PortBinding Allocate(PortBinding binding)
    {
        ArgumentNullException.ThrowIfNull(binding);
        if (!Enum.IsDefined(binding.Protocol))
        {
            throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidOption,
                string.Create(CultureInfo.InvariantCulture, $"host port {binding.HostPort}, protocol {(byte)binding.Protocol}"),
                "unknown protocol: only tcp, udp and sctp");
        }

        var hostIP = Normalize(binding.HostIP);
        lock (_lock)
        {
            var port = Pick(binding, hostIP);
            Take(binding.Protocol, port, hostIP);
            return binding with { HostIP = hostIP, HostPort = port, HostPortEnd = 0 };
        }
    }

    /// <summary>Allocates every binding, or none: when one fails, those already allocated by this call are released.</summary>
    /// <param name="bindings">The requested bindings.</param>
    /// <returns>The resolved bindings, in order.</returns>
    /// <exception cref="CnmException">As <see cref="Allocate"/>.</exception>
    public IReadOnlyList<PortBinding> AllocateAll(IEnumerable<PortBinding> bindings)
    {
        ArgumentNullException.ThrowIfNull(bindings);
        var done = new List<PortBinding>();
        lock (_lock)
        {
            try
            {
                foreach (var binding in bindings)
                {
                    done.Add(Allocate(binding));
                }
            }
            catch
            {
                foreach (var allocated in done)
                {
                    Release(allocated);
                }

                throw;
            }
        }

        return done;
    }

    /// <summary>Releases the host port of a resolved binding.</summary>
    /// <param name="binding">A binding returned by <see cref="Allocate"/>.</param>
    /// <returns>True when it was allocated.</returns>
    public bool Release(PortBinding binding)
    {
        ArgumentNullException.ThrowIfNull(binding);
        var hostIP = Normalize(binding.HostIP);
        lock (_lock)
        {
            var key = (binding.Protocol, binding.HostPort);
            if (!_taken.TryGetValue(key, out var addresses))
            {
                return false;
            }

            var removed = addresses.Remove(hostIP);
            if (addresses.Count == 0)
            {
                _taken.Remove(key);
            }

            return removed;
        }
    }

    /// <summary>True when the port is taken for that protocol and address (directly or through a wildcard).</summary>
    /// <param name="protocol">The protocol.</param>
    /// <param name="hostIP">The host address.</param>
    /// <param name="port">The port.</param>
    /// <returns>True when an allocation of it would conflict.</returns>
    public bool IsAllocated(TransportProtocol protocol, IPAddress hostIP, ushort port)
    {
        ArgumentNullException.ThrowIfNull(hostIP);
        lock (_lock)
        {
            return !IsFree(protocol, port, Normalize(hostIP));
        }
    }

    private ushort Pick(PortBinding binding, IPAddress hostIP)
    {
        if (binding.HostPort == 0)
        {
            return PickEphemeral(binding.Protocol, hostIP);
        }

        var end = binding.HostPortEnd == 0 ? binding.HostPort : binding.HostPortEnd;
        if (end < binding.HostPort)
        {
            throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidOption, Describe(binding.Protocol, hostIP, binding.HostPort),
                $"host port range {binding.HostPort}-{binding.HostPortEnd} is reversed");
        }

        for (int port = binding.HostPort; port <= end; port++)
        {
            if (IsFree(binding.Protocol, (ushort)port, hostIP))
            {
                return (ushort)port;
            }
        }

        throw new CnmConflictException(CnmErrorCodes.PortAlreadyAllocated, Describe(binding.Protocol, hostIP, binding.HostPort),
            end == binding.HostPort ? "port is already allocated" : $"every port of {binding.HostPort}-{end} is already allocated");
    }

    private ushort PickEphemeral(TransportProtocol protocol, IPAddress hostIP)
    {
        var size = EphemeralEnd - EphemeralStart + 1;
        var next = _nextEphemeral.TryGetValue(protocol, out var n) && n >= EphemeralStart && n <= EphemeralEnd ? n : EphemeralStart;
        for (var i = 0; i < size; i++)
        {
            var port = (ushort)(EphemeralStart + ((next - EphemeralStart + i) % size));
            if (IsFree(protocol, port, hostIP))
            {
                _nextEphemeral[protocol] = port == EphemeralEnd ? EphemeralStart : (ushort)(port + 1);
                return port;
            }
        }

        throw new CnmUnavailableException(CnmErrorCodes.PortAlreadyAllocated, Describe(protocol, hostIP, 0),
            $"every port of the ephemeral range {EphemeralStart}-{EphemeralEnd} is already allocated");
    }

    private bool IsFree(TransportProtocol protocol, ushort port, IPAddress hostIP)
    {
        if (!_taken.TryGetValue((protocol, port), out var addresses))
        {
            return true;
        }

        var wildcard = IsWildcard(hostIP);
        foreach (var taken in addresses)
        {
            if (taken.AddressFamily != hostIP.AddressFamily)
            {
                continue;
            }

            if (wildcard || IsWildcard(taken) || taken.Equals(hostIP))
            {
                return false;
            }
        }

        return true;
    }

    private void Take(TransportProtocol protocol, ushort port, IPAddress hostIP)
    {
        if (!_taken.TryGetValue((protocol, port), out var addresses))
        {
            _taken[(protocol, port)] = addresses = [];
        }

        addresses.Add(hostIP);
    }

    private static bool IsWildcard(IPAddress address) =>
        address.Equals(IPAddress.Any) || address.Equals(IPAddress.IPv6Any);

    private static IPAddress Normalize(IPAddress? address)
    {
        if (address is null)
        {
            return IPAddress.Any;
        }

        return address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;
    }

    private static string Describe(TransportProtocol protocol, IPAddress hostIP, ushort port) =>
        string.Create(CultureInfo.InvariantCulture, $"host port {(hostIP.AddressFamily == AddressFamily.InterNetworkV6 ? $"[{hostIP}]" : hostIP.ToString())}:{port}/{protocol.ToString().ToLowerInvariant()}");
}
