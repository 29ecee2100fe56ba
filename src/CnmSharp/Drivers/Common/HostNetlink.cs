using CnmSharp.Netlink;

namespace CnmSharp.Drivers.Common;

/// <summary>
/// A driver's netlink socket inside the host namespace, with the namespace manager that opens it (the bridge, macvlan
/// and ipvlan kernels each hold one). Opened when first used, not when the driver is created: a controller start
/// creates every registered driver, and a driver with no network to restore (or one that a command never touches)
/// then costs no namespace entry and no socket. Kept for the driver's life once opened. Failures to open either are
/// <see cref="CnmInternalException"/> (<see cref="CnmErrorCodes.KernelError"/>), thrown by the first use.
/// </summary>
internal sealed class HostNetlink : IDisposable
{
    private readonly string _path;
    private readonly Lock _gate = new();
    private NetworkNamespace? _host;
    private RtnetlinkClient? _client;
    private bool _disposed;

    /// <summary>Remembers the host namespace (the process's own when <paramref name="hostNamespacePath"/> is null);
    /// nothing is opened yet.</summary>
    /// <param name="hostNamespacePath">The host namespace file, or null for the process's namespace.</param>
    public HostNetlink(string? hostNamespacePath) => _path = hostNamespacePath ?? "/proc/self/ns/net";

    /// <summary>The manager that opens the host namespace (and opens others, enters them for sysctls).</summary>
    public NetworkNamespaceManager Manager { get; } = new();

    /// <summary>The host namespace (opened on first use).</summary>
    public NetworkNamespace Host
    {
        get
        {
            EnsureOpen();
            return _host!;
        }
    }

    /// <summary>The socket inside the host namespace (opened on first use).</summary>
    public RtnetlinkClient Client
    {
        get
        {
            EnsureOpen();
            return _client!;
        }
    }

    private void EnsureOpen()
    {
        if (Volatile.Read(ref _client) is not null)
        {
            return;
        }

        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_client is not null)
            {
                return;
            }

            NetworkNamespace host;
            try
            {
                host = Manager.Open(_path);
            }
            catch (NamespaceException ex)
            {
                throw new CnmInternalException(CnmErrorCodes.KernelError, $"host namespace {_path}", ex.Message, ex);
            }

            RtnetlinkClient client;
            try
            {
                client = RtnetlinkClient.Open(host.Handle);
            }
            catch (NetlinkException ex)
            {
                host.Dispose();
                throw new CnmInternalException(CnmErrorCodes.KernelError, $"netlink socket in host namespace {_path}", ex.Message, ex);
            }

            // The host first: a reader that sees the client (without the lock) reads the host next.
            _host = host;
            Volatile.Write(ref _client, client);
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        lock (_gate)
        {
            _disposed = true;
            _client?.Dispose();
            _host?.Dispose();
        }
    }
}
