using System.Globalization;
using System.Net.Security;
using System.Runtime.CompilerServices;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Etcdserverpb;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;
using Grpc.Net.Client.Balancer;
using Grpc.Net.Client.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace CnmSharp.Store.Etcd;

/// <summary>
/// <see cref="ISharedKeyValueStore"/> on etcd v3: a key's version is its <c>mod_revision</c>, the store revision is
/// etcd's, a compare-and-swap is one transaction comparing <c>mod_revision</c>, a commit is one transaction (one
/// revision for all its keys), a listing is a range read at a revision, a watch is etcd's watch from a revision, and
/// leases are etcd's leases.
/// </summary>
/// <remarks>
/// <para>Errors: an unreachable cluster (no member answers within <see cref="EtcdStoreOptions.RequestTimeout"/>), a
/// cluster without a leader, or refused credentials throw <see cref="CnmUnavailableException"/>
/// (<see cref="CnmErrorCodes.StoreUnavailable"/>); failed checks throw <see cref="CnmConflictException"/>
/// (<see cref="CnmErrorCodes.VersionConflict"/>), compacted history <see cref="CnmErrorCodes.RevisionCompacted"/>.</para>
/// <para>Retries: reads are retried over the members until the timeout; a write is retried only after a failure to
/// reach a member (the request was not delivered). A write whose answer was lost (the member failed after receiving
/// it) fails with <see cref="CnmUnavailableException"/> and may have been applied: a compare-and-swap caller that
/// retries then sees a conflict and re-reads.</para>
/// <para>Durability hints are accepted and ignored: every etcd commit is replicated to a quorum and synced.</para>
/// </remarks>
public sealed class EtcdKeyValueStore : ISharedKeyValueStore
{
    private static readonly ByteString Probe = ByteString.CopyFromUtf8("\0cnmsharp-revision-probe");

    private readonly GrpcChannel _channel;
    private readonly KV.KVClient _kv;
    private readonly Watch.WatchClient _watch;
    private readonly Lease.LeaseClient _lease;
    private readonly Auth.AuthClient _auth;
    private readonly EtcdStoreOptions _options;
    private readonly byte[] _prefix;
    private readonly string _subject;
    private readonly CancellationTokenSource _disposing = new();
    private Metadata? _headers;
    private long _lastSeen;
    private volatile bool _disposed;

    private EtcdKeyValueStore(GrpcChannel channel, EtcdStoreOptions options, string subject)
    {
        _channel = channel;
        _options = options;
        _subject = subject;
        _prefix = Encoding.UTF8.GetBytes(options.KeyPrefix);
        var invoker = channel.CreateCallInvoker();
        _kv = new KV.KVClient(invoker);
        _watch = new Watch.WatchClient(invoker);
        _lease = new Lease.LeaseClient(invoker);
        _auth = new Auth.AuthClient(invoker);
    }

    /// <summary>The highest etcd revision this client has seen in any answer.</summary>
    public long LastSeenRevision => Interlocked.Read(ref _lastSeen);

    /// <summary>Connects to the cluster: checks the options, authenticates when a user is given, and reads the
    /// revision (so an unreachable cluster fails here, within the timeout).</summary>
    /// <param name="options">The options.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The store.</returns>
    /// <exception cref="CnmInvalidArgumentException">An option is wrong.</exception>
    /// <exception cref="CnmUnavailableException">No member answered, or the credentials were refused.</exception>
    public static async ValueTask<EtcdKeyValueStore> ConnectAsync(EtcdStoreOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        var endpoints = options.Validate();
        var subject = "etcd " + string.Join(',', endpoints.Select(e => e.Authority));
        var tls = endpoints[0].Scheme == "https";
        var handler = new SocketsHttpHandler
        {
            ConnectTimeout = options.RequestTimeout,
            EnableMultipleHttp2Connections = true,
            KeepAlivePingDelay = TimeSpan.FromSeconds(10),
            KeepAlivePingTimeout = TimeSpan.FromSeconds(5),
            KeepAlivePingPolicy = HttpKeepAlivePingPolicy.Always,
        };
        if (tls)
        {
            handler.SslOptions = TlsOptions(options);
        }

        var services = new ServiceCollection();
        services.AddSingleton<ResolverFactory>(new StaticResolverFactory(_ => endpoints.Select(e => new BalancerAddress(e.Host, e.Port)).ToArray()));
        var channel = GrpcChannel.ForAddress("static:///etcd", new GrpcChannelOptions
        {
            HttpHandler = handler,
            Credentials = tls ? ChannelCredentials.SecureSsl : ChannelCredentials.Insecure,
            ServiceConfig = new ServiceConfig { LoadBalancingConfigs = { new RoundRobinConfig() } },
            ServiceProvider = services.BuildServiceProvider(),
            MaxReceiveMessageSize = 64 << 20,
            DisposeHttpClient = true,
        });

        var store = new EtcdKeyValueStore(channel, options, subject);
        try
        {
            if (!string.IsNullOrEmpty(options.Username))
            {
                await store.AuthenticateAsync(cancellationToken).ConfigureAwait(false);
            }

            await store.GetRevisionAsync(cancellationToken).ConfigureAwait(false);
            return store;
        }
        catch
        {
            await store.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <inheritdoc />
    public async ValueTask<StoreEntry?> GetAsync(string key, CancellationToken cancellationToken = default)
    {
        StoreRules.ValidateKey(key);
        var response = await CallAsync((h, d, c) => _kv.RangeAsync(new RangeRequest { Key = Key(key) }, h, d, c).ResponseAsync, idempotent: true, cancellationToken).ConfigureAwait(false);
        Seen(response.Header);
        return response.Kvs.Count == 0 ? null : new StoreEntry(key, response.Kvs[0].Value.ToByteArray(), response.Kvs[0].ModRevision);
    }

    /// <inheritdoc />
    public async ValueTask<long> GetRevisionAsync(CancellationToken cancellationToken = default)
    {
        var response = await CallAsync((h, d, c) => _kv.RangeAsync(new RangeRequest { Key = Probe, CountOnly = true }, h, d, c).ResponseAsync, idempotent: true, cancellationToken).ConfigureAwait(false);
        Seen(response.Header);
        return response.Header.Revision;
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<StoreEntry>> ListAsync(string prefix, CancellationToken cancellationToken = default) =>
        (await ListAtAsync(prefix, StoreRevision.Latest, cancellationToken).ConfigureAwait(false)).Entries;

    /// <inheritdoc />
    public async ValueTask<StoreListing> ListAtAsync(string prefix, long revision = StoreRevision.Latest, CancellationToken cancellationToken = default)
    {
        StoreRules.ValidatePrefix(prefix);
        StoreRules.ValidateRevision(revision);
        var (from, to) = Range(prefix);
        RangeResponse response;
        try
        {
            response = await CallAsync((h, d, c) => _kv.RangeAsync(new RangeRequest { Key = from, RangeEnd = to, Revision = revision }, h, d, c).ResponseAsync, idempotent: true, cancellationToken).ConfigureAwait(false);
        }
        catch (CnmInternalException ex) when (ex.InnerException is RpcException { StatusCode: StatusCode.OutOfRange } rpc && rpc.Status.Detail.Contains("future", StringComparison.Ordinal))
        {
            throw new ArgumentOutOfRangeException(nameof(revision), revision, $"Revision {revision} is in the future.");
        }

        Seen(response.Header);
        var entries = response.Kvs.Select(kv => new StoreEntry(UserKey(kv.Key), kv.Value.ToByteArray(), kv.ModRevision)).ToList();
        entries.Sort(static (a, b) => string.CompareOrdinal(a.Key, b.Key));
        return new StoreListing(entries, revision == StoreRevision.Latest ? response.Header.Revision : revision);
    }

    /// <inheritdoc />
    public ValueTask<long> PutAsync(string key, ReadOnlyMemory<byte> value, long expectedVersion = StoreVersion.Any, CancellationToken cancellationToken = default) =>
        PutAsync(key, value, expectedVersion, StoreDurability.Durable, cancellationToken);

    /// <inheritdoc />
    public ValueTask<bool> DeleteAsync(string key, long expectedVersion = StoreVersion.Any, CancellationToken cancellationToken = default) =>
        DeleteAsync(key, expectedVersion, StoreDurability.Durable, cancellationToken);

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<long>> CommitAsync(IReadOnlyList<StoreOperation> operations, CancellationToken cancellationToken = default) =>
        CommitAsync(operations, StoreDurability.Durable, cancellationToken);

    /// <inheritdoc />
    public async ValueTask<long> PutAsync(string key, ReadOnlyMemory<byte> value, long expectedVersion, StoreDurability durability, CancellationToken cancellationToken = default)
    {
        StoreRules.ValidateDurability(durability);
        StoreRules.ValidateKey(key);
        StoreRules.ValidateExpectedVersion(expectedVersion);
        var (results, _) = await ApplyAsync([StoreOperation.Put(key, value, expectedVersion)], cancellationToken).ConfigureAwait(false);
        return results[0];
    }

    /// <inheritdoc />
    public async ValueTask<bool> DeleteAsync(string key, long expectedVersion, StoreDurability durability, CancellationToken cancellationToken = default)
    {
        StoreRules.ValidateDurability(durability);
        StoreRules.ValidateKey(key);
        StoreRules.ValidateExpectedVersion(expectedVersion);
        var (_, changed) = await ApplyAsync([StoreOperation.Delete(key, expectedVersion)], cancellationToken).ConfigureAwait(false);
        return changed;
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<long>> CommitAsync(IReadOnlyList<StoreOperation> operations, StoreDurability durability, CancellationToken cancellationToken = default)
    {
        StoreRules.ValidateDurability(durability);
        StoreRules.ValidateOperations(operations);
        if (operations.Count == 0)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            cancellationToken.ThrowIfCancellationRequested();
            return [];
        }

        var (results, _) = await ApplyAsync(operations, cancellationToken).ConfigureAwait(false);
        return results;
    }

    /// <inheritdoc />
    /// <remarks>Starts after the last revision this client has seen (its own writes and reads move that mark).</remarks>
    public IAsyncEnumerable<StoreEvent> WatchAsync(string prefix, CancellationToken cancellationToken = default)
    {
        StoreRules.ValidatePrefix(prefix);
        ObjectDisposedException.ThrowIf(_disposed, this);
        return WatchCoreAsync(prefix, LastSeenRevision + 1, cancellationToken);
    }

    /// <inheritdoc />
    /// <remarks><see cref="StoreRevision.Latest"/> starts after the last revision this client has seen.</remarks>
    public IAsyncEnumerable<StoreEvent> WatchFromAsync(string prefix, long fromRevision, CancellationToken cancellationToken = default)
    {
        StoreRules.ValidatePrefix(prefix);
        StoreRules.ValidateRevision(fromRevision);
        ObjectDisposedException.ThrowIf(_disposed, this);
        return WatchCoreAsync(prefix, fromRevision == StoreRevision.Latest ? LastSeenRevision + 1 : fromRevision, cancellationToken);
    }

    /// <summary>Compacts etcd's history up to <paramref name="revision"/> (etcd's own auto-compaction, when the
    /// cluster runs with it, does the same).</summary>
    /// <param name="revision">The revision.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when etcd has compacted.</returns>
    public async ValueTask CompactAsync(long revision, CancellationToken cancellationToken = default)
    {
        var response = await CallAsync((h, d, c) => _kv.CompactAsync(new CompactionRequest { Revision = revision, Physical = true }, h, d, c).ResponseAsync, idempotent: true, cancellationToken).ConfigureAwait(false);
        Seen(response.Header);
    }

    /// <inheritdoc />
    public async ValueTask<StoreLease> GrantLeaseAsync(TimeSpan ttl, CancellationToken cancellationToken = default)
    {
        var seconds = StoreRules.LeaseSeconds(ttl);
        var response = await CallAsync((h, d, c) => _lease.LeaseGrantAsync(new LeaseGrantRequest { TTL = seconds }, h, d, c).ResponseAsync, idempotent: false, cancellationToken).ConfigureAwait(false);
        if (!string.IsNullOrEmpty(response.Error))
        {
            throw new CnmUnavailableException(CnmErrorCodes.StoreUnavailable, _subject, "lease grant refused: " + response.Error);
        }

        return new StoreLease(response.ID, TimeSpan.FromSeconds(Math.Max(response.TTL, seconds)));
    }

    /// <inheritdoc />
    public async ValueTask<TimeSpan> KeepLeaseAliveAsync(long leaseId, CancellationToken cancellationToken = default)
    {
        var ttl = await CallAsync(
            async (h, d, c) =>
            {
                using var call = _lease.LeaseKeepAlive(h, d, c);
                await call.RequestStream.WriteAsync(new LeaseKeepAliveRequest { ID = leaseId }, c).ConfigureAwait(false);
                await call.RequestStream.CompleteAsync().ConfigureAwait(false);
                return await call.ResponseStream.MoveNext(c).ConfigureAwait(false) ? call.ResponseStream.Current.TTL : 0;
            },
            idempotent: true,
            cancellationToken).ConfigureAwait(false);
        return ttl > 0 ? TimeSpan.FromSeconds(ttl) : throw StoreRules.LeaseNotFound(leaseId);
    }

    /// <inheritdoc />
    public async ValueTask<bool> RevokeLeaseAsync(long leaseId, CancellationToken cancellationToken = default)
    {
        try
        {
            var response = await CallAsync((h, d, c) => _lease.LeaseRevokeAsync(new LeaseRevokeRequest { ID = leaseId }, h, d, c).ResponseAsync, idempotent: true, cancellationToken).ConfigureAwait(false);
            Seen(response.Header);
            return true;
        }
        catch (CnmNotFoundException ex) when (ex.Code == CnmErrorCodes.LeaseNotFound)
        {
            return false;
        }
    }

    /// <summary>Closes the connection and ends every watch (without an exception). Safe to call twice.</summary>
    /// <returns>A completed task.</returns>
    public ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return ValueTask.CompletedTask;
        }

        _disposed = true;
        _disposing.Cancel(); // not disposed: a watch enumerated after the dispose still links to it, and ends at once
        _channel.Dispose();
        return ValueTask.CompletedTask;
    }

    private static SslClientAuthenticationOptions TlsOptions(EtcdStoreOptions options)
    {
        var ssl = new SslClientAuthenticationOptions();
        if (options.ClientCertificatePath is not null)
        {
            using var pem = X509Certificate2.CreateFromPemFile(options.ClientCertificatePath, options.ClientKeyPath);

            // Re-import so the private key is usable by SslStream on every platform.
            var certificate = X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), null);
            ssl.ClientCertificates = [certificate];
        }

        if (options.CaCertificatePath is not null)
        {
            var roots = new X509Certificate2Collection();
            roots.ImportFromPemFile(options.CaCertificatePath);
            ssl.CertificateChainPolicy = new X509ChainPolicy
            {
                TrustMode = X509ChainTrustMode.CustomRootTrust,
                RevocationMode = X509RevocationMode.NoCheck,
            };
            ssl.CertificateChainPolicy.CustomTrustStore.AddRange(roots);
        }

        return ssl;
    }

    private async ValueTask<(long[] Results, bool Changed)> ApplyAsync(IReadOnlyList<StoreOperation> operations, CancellationToken cancellationToken)
    {
        var txn = new TxnRequest();
        List<StoreOperation> compared = [];
        foreach (var op in operations)
        {
            var key = Key(op.Key);
            if (op.ExpectedVersion != StoreVersion.Any)
            {
                txn.Compare.Add(new Compare { Key = key, Target = Compare.Types.CompareTarget.Mod, Result = Compare.Types.CompareResult.Equal, ModRevision = op.ExpectedVersion });
                txn.Failure.Add(new RequestOp { RequestRange = new RangeRequest { Key = key } });
                compared.Add(op);
            }

            switch (op.Kind)
            {
                case StoreOperationKind.Put:
                    txn.Success.Add(new RequestOp { RequestPut = new PutRequest { Key = key, Value = ByteString.CopyFrom(op.Value.Span), Lease = op.Lease } });
                    break;
                case StoreOperationKind.Delete:
                    txn.Success.Add(new RequestOp { RequestDeleteRange = new DeleteRangeRequest { Key = key } });
                    break;
                default:
                    break;
            }
        }

        TxnResponse response;
        try
        {
            response = await CallAsync((h, d, c) => _kv.TxnAsync(txn, h, d, c).ResponseAsync, idempotent: false, cancellationToken).ConfigureAwait(false);
        }
        catch (CnmNotFoundException ex) when (ex.Code == CnmErrorCodes.LeaseNotFound)
        {
            throw StoreRules.LeaseNotFound(operations.FirstOrDefault(o => o.Kind == StoreOperationKind.Put && o.Lease != StoreLease.None)?.Lease ?? 0);
        }

        Seen(response.Header);
        if (!response.Succeeded)
        {
            for (var i = 0; i < compared.Count; i++)
            {
                var kvs = response.Responses[i].ResponseRange.Kvs;
                var found = kvs.Count == 0 ? StoreVersion.Absent : kvs[0].ModRevision;
                if (found != compared[i].ExpectedVersion)
                {
                    throw StoreRules.Conflict(compared[i].Key, compared[i].ExpectedVersion, found);
                }
            }

            throw StoreRules.Conflict(compared[0].Key, compared[0].ExpectedVersion, StoreVersion.Absent);
        }

        var results = new long[operations.Count];
        var changed = false;
        var index = 0;
        for (var i = 0; i < operations.Count; i++)
        {
            switch (operations[i].Kind)
            {
                case StoreOperationKind.Put:
                    results[i] = response.Header.Revision;
                    changed = true;
                    index++;
                    break;
                case StoreOperationKind.Delete:
                    changed |= response.Responses[index].ResponseDeleteRange.Deleted > 0;
                    index++;
                    break;
                default:
                    break;
            }
        }

        return (results, changed);
    }

    private async IAsyncEnumerable<StoreEvent> WatchCoreAsync(string prefix, long fromRevision, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        if (_disposed)
        {
            yield break;
        }

        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _disposing.Token);
        var token = linked.Token;
        var (from, to) = Range(prefix);
        AsyncDuplexStreamingCall<WatchRequest, WatchResponse>? call = null;
        try
        {
            try
            {
                call = _watch.Watch(_headers, deadline: null, token);
                await call.RequestStream.WriteAsync(new WatchRequest { CreateRequest = new WatchCreateRequest { Key = from, RangeEnd = to, StartRevision = fromRevision } }, token).ConfigureAwait(false);
            }
            catch (Exception ex) when (token.IsCancellationRequested && ex is RpcException or OperationCanceledException or ObjectDisposedException)
            {
                yield break;
            }
            catch (RpcException ex)
            {
                throw Map(ex);
            }

            while (true)
            {
                WatchResponse response;
                try
                {
                    if (!await call.ResponseStream.MoveNext(token).ConfigureAwait(false))
                    {
                        throw new CnmUnavailableException(CnmErrorCodes.StoreUnavailable, _subject, "the watch stream ended");
                    }

                    response = call.ResponseStream.Current;
                }
                catch (Exception ex) when (token.IsCancellationRequested && ex is RpcException or OperationCanceledException or ObjectDisposedException or InvalidOperationException)
                {
                    yield break;
                }
                catch (RpcException ex)
                {
                    throw Map(ex);
                }

                if (response.CompactRevision != 0)
                {
                    throw StoreRules.Compacted(fromRevision, response.CompactRevision);
                }

                if (response.Canceled)
                {
                    throw new CnmUnavailableException(CnmErrorCodes.StoreUnavailable, _subject, "the watch was cancelled by etcd: " + response.CancelReason);
                }

                foreach (var e in response.Events)
                {
                    var delete = e.Type == Mvccpb.Event.Types.EventType.Delete;
                    yield return new StoreEvent(
                        delete ? StoreEventKind.Delete : StoreEventKind.Put,
                        UserKey(e.Kv.Key),
                        delete ? ReadOnlyMemory<byte>.Empty : e.Kv.Value.ToByteArray(),
                        e.Kv.ModRevision);
                }
            }
        }
        finally
        {
            call?.Dispose();
        }
    }

    private async ValueTask AuthenticateAsync(CancellationToken cancellationToken)
    {
        try
        {
            var response = await _auth.AuthenticateAsync(
                new AuthenticateRequest { Name = _options.Username, Password = _options.Password },
                deadline: DateTime.UtcNow + _options.RequestTimeout,
                cancellationToken: cancellationToken).ResponseAsync.ConfigureAwait(false);
            _headers = new Metadata { { "token", response.Token } };
        }
        catch (RpcException ex)
        {
            throw Map(ex);
        }
    }

    /// <summary>Runs a call with the deadline of <see cref="EtcdStoreOptions.RequestTimeout"/>; retries over the
    /// members on failures to reach one (any failure of an idempotent call), re-authenticates once on an expired token,
    /// and maps gRPC errors to the store's.</summary>
    private async Task<T> CallAsync<T>(Func<Metadata?, DateTime, CancellationToken, Task<T>> call, bool idempotent, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        cancellationToken.ThrowIfCancellationRequested();
        var deadline = DateTime.UtcNow + _options.RequestTimeout;
        var reauthenticated = false;
        while (true)
        {
            try
            {
                return await call(_headers, deadline, cancellationToken).ConfigureAwait(false);
            }
            catch (RpcException ex) when (ex.StatusCode == StatusCode.Cancelled && cancellationToken.IsCancellationRequested)
            {
                throw new OperationCanceledException(cancellationToken);
            }
            catch (RpcException ex) when (ex.StatusCode == StatusCode.Unauthenticated && !reauthenticated && !string.IsNullOrEmpty(_options.Username))
            {
                reauthenticated = true;
                await AuthenticateAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (RpcException ex) when (ex.StatusCode == StatusCode.Unavailable && (idempotent || !ex.Status.Detail.StartsWith("etcdserver:", StringComparison.Ordinal)) && DateTime.UtcNow + TimeSpan.FromMilliseconds(100) < deadline)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(100), cancellationToken).ConfigureAwait(false);
            }
            catch (RpcException ex)
            {
                throw Map(ex);
            }
            catch (ObjectDisposedException) when (_disposed)
            {
                throw new ObjectDisposedException(nameof(EtcdKeyValueStore));
            }
        }
    }

    private CnmException Map(RpcException ex)
    {
        var detail = ex.Status.Detail ?? string.Empty;
        return ex.StatusCode switch
        {
            StatusCode.OutOfRange when detail.Contains("compacted", StringComparison.Ordinal) =>
                new CnmConflictException(CnmErrorCodes.RevisionCompacted, _subject, detail, ex),
            StatusCode.NotFound when detail.Contains("lease not found", StringComparison.Ordinal) =>
                new CnmNotFoundException(CnmErrorCodes.LeaseNotFound, _subject, detail, ex),
            StatusCode.Unavailable or StatusCode.DeadlineExceeded or StatusCode.Cancelled or StatusCode.Aborted or StatusCode.ResourceExhausted =>
                new CnmUnavailableException(CnmErrorCodes.StoreUnavailable, _subject, $"etcd did not answer ({ex.StatusCode}): {detail}", ex),
            StatusCode.Unauthenticated or StatusCode.PermissionDenied =>
                new CnmUnavailableException(CnmErrorCodes.StoreUnavailable, _subject, $"etcd refused the credentials ({ex.StatusCode}): {detail}", ex),
            _ => new CnmInternalException(StoreRules.StoreFailure, _subject, $"etcd failed ({ex.StatusCode}): {detail}", ex),
        };
    }

    private void Seen(ResponseHeader? header)
    {
        if (header is null)
        {
            return;
        }

        var revision = header.Revision;
        var last = Interlocked.Read(ref _lastSeen);
        while (revision > last)
        {
            var previous = Interlocked.CompareExchange(ref _lastSeen, revision, last);
            if (previous == last)
            {
                return;
            }

            last = previous;
        }
    }

    private ByteString Key(string key)
    {
        var bytes = new byte[_prefix.Length + Encoding.UTF8.GetByteCount(key)];
        _prefix.CopyTo(bytes, 0);
        Encoding.UTF8.GetBytes(key, bytes.AsSpan(_prefix.Length));
        return UnsafeByteOperations.UnsafeWrap(bytes);
    }

    private string UserKey(ByteString key) => Encoding.UTF8.GetString(key.Span[_prefix.Length..]);

    /// <summary>The etcd range of the keys under <paramref name="prefix"/>: from the prefixed key to the next byte
    /// string after every string that starts with it (<c>"\0"</c>: to the end of the key space).</summary>
    private (ByteString From, ByteString To) Range(string prefix)
    {
        var from = Key(prefix);
        if (from.Length == 0)
        {
            return (ByteString.CopyFrom(0), ByteString.CopyFrom(0));
        }

        var end = from.ToByteArray();
        for (var i = end.Length - 1; i >= 0; i--)
        {
            if (end[i] < 0xFF)
            {
                end[i]++;
                return (from, UnsafeByteOperations.UnsafeWrap(end.AsMemory(0, i + 1)));
            }
        }

        return (from, ByteString.CopyFrom(0));
    }

    /// <inheritdoc />
    public override string ToString() => _subject.ToString(CultureInfo.InvariantCulture);
}
