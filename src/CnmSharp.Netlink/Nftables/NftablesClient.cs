using System.Buffers.Binary;
using System.Runtime.InteropServices;
using CnmSharp.Netlink.Interop;
using CnmSharp.Netlink.Internal;
using Microsoft.Win32.SafeHandles;

namespace CnmSharp.Netlink.Nftables;

/// <summary>
/// An nf_tables client on one <c>NETLINK_NETFILTER</c> socket, bound to one network namespace: atomic batches
/// (<see cref="ExecuteAsync"/>), dumps of tables, chains, rules, sets and elements, and change notifications
/// (<see cref="MonitorAsync(CancellationToken)"/>). No <c>nft</c> process. One request
/// is in flight at a time per client. Needs CAP_NET_ADMIN in the namespace.
/// </summary>
public sealed class NftablesClient : IDisposable, IAsyncDisposable
{
    private const int MaxDumpAttempts = 5;

    private readonly NetlinkSocket _socket;
    private readonly SafeFileHandle _namespace;
    private readonly MonitorSockets _monitors = new();
    private Action? _reopen;
    private int _disposed;

    private NftablesClient(NetlinkSocket socket, SafeFileHandle networkNamespace)
    {
        _socket = socket;
        _namespace = networkNamespace;
    }

    private delegate void Parser<T>(ushort message, ReadOnlySpan<byte> payload, List<T> results);

    /// <summary>
    /// Opens a client. With no namespace the socket belongs to the calling thread's network namespace; with one it is
    /// created inside it (on a namespace worker thread). The handle passed in may be closed afterwards.
    /// </summary>
    /// <param name="networkNamespace">An open fd of a network namespace, or null.</param>
    /// <returns>The client.</returns>
    /// <exception cref="NetlinkException">The socket could not be created (EPROTONOSUPPORT: no nfnetlink in this kernel).</exception>
    public static NftablesClient Open(SafeHandle? networkNamespace = null)
    {
        if (networkNamespace is null)
        {
            return OpenHere();
        }

        try
        {
            return NamespaceExecutor.RunIn(networkNamespace, OpenHere);
        }
        catch (NamespaceException ex)
        {
            throw new NetlinkException(ex.ErrorNumber, null, ex.Message);
        }
    }

    private static NftablesClient OpenHere()
    {
        var socket = NetlinkSocket.Open(protocol: Libc.NETLINK_NETFILTER);
        try
        {
            return new NftablesClient(socket, NamespaceExecutor.OpenCurrentThreadNamespace());
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private bool IsDisposed => Volatile.Read(ref _disposed) != 0;

    /// <summary>
    /// Sends the batch between BEGIN and END in one datagram and waits for the kernel's answer to every message. The
    /// kernel commits all of it or nothing.
    /// </summary>
    /// <param name="batch">The messages.</param>
    /// <param name="generation">When given, the kernel refuses the batch (ERESTART, reported against the batch) if the
    /// ruleset's generation is no longer this one (<see cref="GetGenerationAsync"/>).</param>
    /// <param name="cancellationToken">Cancels before the send; a sent batch is waited for.</param>
    /// <returns>A task that completes when the batch is committed.</returns>
    /// <exception cref="NftablesBatchException">Something was refused: nothing was applied; every failing message is named.</exception>
    public async ValueTask ExecuteAsync(NftablesBatch batch, uint? generation = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(batch);
        var count = batch.Count;
        if (count == 0)
        {
            return;
        }

        const string operation = "nftables batch";
        await EnterAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var first = _socket.NextSequence(count + 2);
            var length = batch.WriteDatagram(_socket.SendBuffer, first, _socket.PortId, generation);
            await _socket.SendAsync(length, cancellationToken, operation).ConfigureAwait(false);
            var answered = new bool[count];
            var errors = new List<NftablesMessageError>();
            var pending = count;
            var batchFailed = false;

            // nfnetlink processes the batch inside sendmsg, so every reply is queued by now: wait for one per message
            // (or a failure of the batch itself), then take whatever else is queued (a commit failure on BEGIN's seq).
            while (pending > 0 && !batchFailed)
            {
                var received = await _socket.ReceiveAsync(CancellationToken.None, operation).ConfigureAwait(false);
                pending -= Collect(_socket.Received(received), first, batch, answered, errors, ref batchFailed);
            }

            while (_socket.Available > 0)
            {
                var received = await _socket.ReceiveAsync(CancellationToken.None, operation).ConfigureAwait(false);
                pending -= Collect(_socket.Received(received), first, batch, answered, errors, ref batchFailed);
            }

            if (errors.Count > 0)
            {
                errors.Sort((a, b) => a.Index.CompareTo(b.Index));
                throw new NftablesBatchException(errors);
            }
        }
        catch (NetlinkProtocolException)
        {
            _socket.MarkNeedsResync();
            throw;
        }
        finally
        {
            Exit();
        }
    }

    private int Collect(ReadOnlySpan<byte> datagram, uint first, NftablesBatch batch, bool[] answered, List<NftablesMessageError> errors, ref bool batchFailed)
    {
        var count = 0;
        foreach (var message in new NetlinkMessageEnumerator(datagram))
        {
            if (message.Type != Nl.NLMSG_ERROR || message.PortId != _socket.PortId)
            {
                continue;
            }

            var errno = RtnetlinkParser.ParseError(message.Payload, message.Flags, out var extended);
            var slot = unchecked((long)message.Sequence - first - 1);
            if (slot >= 0 && slot < answered.Length)
            {
                if (!answered[slot])
                {
                    answered[slot] = true;
                    count++;
                }

                if (errno != 0)
                {
                    errors.Add(new NftablesMessageError((int)slot, batch.Descriptions[(int)slot], errno, extended));
                }
            }
            else if ((message.Sequence == first || message.Sequence == unchecked(first + (uint)answered.Length + 1)) && errno != 0)
            {
                batchFailed = true;
                errors.Add(new NftablesMessageError(-1, "batch", errno, extended));
            }
        }

        return count;
    }

    /// <summary>The current ruleset generation (for the guard of <see cref="ExecuteAsync"/>).</summary>
    /// <param name="cancellationToken">Cancels the request.</param>
    /// <returns>The generation id.</returns>
    public async ValueTask<uint> GetGenerationAsync(CancellationToken cancellationToken = default)
    {
        var results = await QueryAsync<uint>(Nft.GETGEN, 0, NftFamily.Unspecified, null, null, null, ParseGeneration, "get generation", cancellationToken).ConfigureAwait(false);
        return results.Count > 0 ? results[0] : throw new NetlinkProtocolException("GETGEN: no NEWGEN reply");
    }

    /// <summary>Lists tables.</summary>
    /// <param name="family">A family, or <see cref="NftFamily.Unspecified"/> for all.</param>
    /// <param name="cancellationToken">Cancels the dump.</param>
    /// <returns>The tables.</returns>
    public async ValueTask<IReadOnlyList<NftTable>> ListTablesAsync(NftFamily family = NftFamily.Unspecified, CancellationToken cancellationToken = default) =>
        await QueryAsync<NftTable>(Nft.GETTABLE, Nl.NLM_F_DUMP, family, null, null, null, NftParser.Table, "list tables", cancellationToken).ConfigureAwait(false);

    /// <summary>Lists the chains of a table.</summary>
    /// <param name="family">The family.</param>
    /// <param name="table">The table.</param>
    /// <param name="cancellationToken">Cancels the dump.</param>
    /// <returns>The chains.</returns>
    public async ValueTask<IReadOnlyList<NftChain>> ListChainsAsync(NftFamily family, string table, CancellationToken cancellationToken = default) =>
        await QueryAsync<NftChain>(Nft.GETCHAIN, Nl.NLM_F_DUMP, family, table, null, null, NftParser.Chain, "list chains", cancellationToken).ConfigureAwait(false);

    /// <summary>Lists the rules of a table, or of one chain.</summary>
    /// <param name="family">The family.</param>
    /// <param name="table">The table.</param>
    /// <param name="chain">One chain, or null for all.</param>
    /// <param name="cancellationToken">Cancels the dump.</param>
    /// <returns>The rules, per chain in order.</returns>
    public async ValueTask<IReadOnlyList<NftRule>> ListRulesAsync(NftFamily family, string table, string? chain = null, CancellationToken cancellationToken = default) =>
        await QueryAsync<NftRule>(Nft.GETRULE, Nl.NLM_F_DUMP, family, table, chain, null, NftParser.Rule, "list rules", cancellationToken).ConfigureAwait(false);

    /// <summary>Lists the sets and maps of a table.</summary>
    /// <param name="family">The family.</param>
    /// <param name="table">The table.</param>
    /// <param name="cancellationToken">Cancels the dump.</param>
    /// <returns>The sets.</returns>
    public async ValueTask<IReadOnlyList<NftSet>> ListSetsAsync(NftFamily family, string table, CancellationToken cancellationToken = default) =>
        await QueryAsync<NftSet>(Nft.GETSET, Nl.NLM_F_DUMP, family, table, null, null, NftParser.Set, "list sets", cancellationToken).ConfigureAwait(false);

    /// <summary>Lists the elements of a set or map.</summary>
    /// <param name="family">The family.</param>
    /// <param name="table">The table.</param>
    /// <param name="set">The set.</param>
    /// <param name="cancellationToken">Cancels the dump.</param>
    /// <returns>The elements.</returns>
    public async ValueTask<IReadOnlyList<NftSetElement>> ListElementsAsync(NftFamily family, string table, string set, CancellationToken cancellationToken = default) =>
        await QueryAsync<NftSetElement>(Nft.GETSETELEM, Nl.NLM_F_DUMP, family, table, null, set, NftParser.Elements, "list elements", cancellationToken).ConfigureAwait(false);

    private static void ParseGeneration(ushort message, ReadOnlySpan<byte> payload, List<uint> results)
    {
        if (message != Nft.NEWGEN)
        {
            return;
        }

        foreach (var attribute in new NetlinkAttributeEnumerator(FamilyHeaders.Attributes(payload, Nft.GenMsgSize)))
        {
            if (attribute.Type == Nft.NFTA_GEN_ID)
            {
                results.Add(attribute.GetBe32());
            }
        }
    }

    private async ValueTask<List<T>> QueryAsync<T>(byte message, ushort flags, NftFamily family, string? table, string? chain, string? set,
        Parser<T> parser, string operation, CancellationToken cancellationToken)
    {
        var results = new List<T>();
        await EnterAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            for (var attempt = 1; ; attempt++)
            {
                results.Clear();
                var sequence = _socket.NextSequence();
                var length = EncodeQuery(message, flags, family, table, chain, set, sequence);
                await _socket.SendAsync(length, cancellationToken, operation).ConfigureAwait(false);
                int? generation = null;
                var changed = false;
                var done = false;
                while (!done)
                {
                    var received = await _socket.ReceiveAsync(cancellationToken, operation).ConfigureAwait(false);
                    done = Process(_socket.Received(received), sequence, flags == 0, parser, results, ref generation, ref changed, operation);
                }

                if (!changed)
                {
                    return results;
                }

                if (attempt == MaxDumpAttempts)
                {
                    throw new NetlinkException(Errnos.EAGAIN, $"the ruleset changed during the dump {MaxDumpAttempts} times", operation);
                }
            }
        }
        catch (NetlinkProtocolException)
        {
            _socket.MarkNeedsResync();
            throw;
        }
        finally
        {
            Exit();
        }
    }

    private int EncodeQuery(byte message, ushort flags, NftFamily family, string? table, string? chain, string? set, uint sequence)
    {
        var w = new NetlinkWriter(_socket.SendBuffer);
        var start = w.BeginMessage(Nft.Type(message), (ushort)(Nl.NLM_F_REQUEST | flags), sequence, _socket.PortId);
        NftablesBatch.WriteGenMsg(ref w, (byte)family, 0);
        if (table is not null)
        {
            // TABLE is attribute 1 of chains, rules, sets and element lists alike.
            w.WriteString(1, table);
        }

        if (chain is not null)
        {
            w.WriteString(Nft.NFTA_RULE_CHAIN, chain);
        }

        if (set is not null)
        {
            w.WriteString(Nft.NFTA_SET_ELEM_LIST_SET, set);
        }

        w.EndMessage(start);
        return w.Length;
    }

    /// <summary>Feeds one datagram to the parser; true when the reply is complete.</summary>
    private bool Process<T>(ReadOnlySpan<byte> datagram, uint sequence, bool single, Parser<T> parser, List<T> results, ref int? generation, ref bool changed, string operation)
    {
        foreach (var message in new NetlinkMessageEnumerator(datagram))
        {
            if (message.Sequence != sequence || message.PortId != _socket.PortId)
            {
                continue;
            }

            if ((message.Flags & Nl.NLM_F_DUMP_INTR) != 0)
            {
                changed = true;
            }

            switch (message.Type)
            {
                case Nl.NLMSG_NOOP:
                    continue;
                case Nl.NLMSG_DONE:
                    return true;
                case Nl.NLMSG_ERROR:
                    {
                        var errno = RtnetlinkParser.ParseError(message.Payload, message.Flags, out var extended);
                        if (errno != 0)
                        {
                            throw new NetlinkException(errno, extended, operation);
                        }

                        return true;
                    }

                case Nl.NLMSG_OVERRUN:
                    throw new NetlinkException(Errnos.ENOBUFS, "the kernel reported NLMSG_OVERRUN", operation);
            }

            if (message.Type >> 8 != Nft.SubsysNftables || message.Payload.Length < Nft.GenMsgSize)
            {
                continue;
            }

            int resId = BinaryPrimitives.ReadUInt16BigEndian(message.Payload[2..]);
            if (generation is { } seen && seen != resId)
            {
                changed = true;
            }

            generation = resId;
            parser((ushort)(message.Type & 0xff), message.Payload, results);
            if (single)
            {
                return true;
            }
        }

        return false;
    }

    private ValueTask EnterAsync(CancellationToken cancellationToken) => _socket.EnterRequestAsync(this, _reopen ??= () => NamespaceExecutor.RunIn(_namespace, () =>
    {
        _socket.Reopen();
        return true;
    }), cancellationToken);

    private void Exit() => _socket.ExitRequest();

    /// <summary>
    /// Subscribes to nf_tables change notifications (group NFNLGRP_NFTABLES) in the client's namespace, on a socket of
    /// its own. The subscription starts when this method returns (not at the first <c>MoveNextAsync</c>), so nothing
    /// committed after the call is missed. Each transaction's changes come as events followed by one
    /// <see cref="NftEventKind.Generation"/> event naming the committing process; lost notifications (ENOBUFS) come
    /// as one <see cref="NftEventKind.Resync"/> on a fresh subscription. Ends with <see cref="OperationCanceledException"/>
    /// when cancelled and <see cref="ObjectDisposedException"/> when the client is disposed; an enumeration that is
    /// never started keeps its socket until the client is disposed.
    /// </summary>
    /// <param name="cancellationToken">Ends the enumeration.</param>
    /// <returns>The events, in the order the kernel sent them.</returns>
    public IAsyncEnumerable<NftEvent> MonitorAsync(CancellationToken cancellationToken = default) => MonitorAsync(receiveBufferSize: 0, cancellationToken);

    /// <summary>Monitor with a chosen socket receive buffer (tests use a tiny one to provoke ENOBUFS).</summary>
    internal IAsyncEnumerable<NftEvent> MonitorAsync(int receiveBufferSize, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(IsDisposed, this);
        return _monitors.ReadAsync(
            OpenMonitorSocket(receiveBufferSize),
            () => OpenMonitorSocket(receiveBufferSize),
            ParseEvents,
            new NftEvent(NftEventKind.Resync, NftFamily.Unspecified, null),
            "nftables monitor",
            () => IsDisposed,
            this,
            cancellationToken);
    }

    internal static void ParseEvents(ReadOnlySpan<byte> datagram, List<NftEvent> events)
    {
        foreach (var message in new NetlinkMessageEnumerator(datagram))
        {
            if (message.Type == Nl.NLMSG_OVERRUN)
            {
                events.Add(new NftEvent(NftEventKind.Resync, NftFamily.Unspecified, null));
                continue;
            }

            if (message.Type >> 8 != Nft.SubsysNftables || message.Payload.Length < Nft.GenMsgSize)
            {
                continue;
            }

            if (NftParser.Event((ushort)(message.Type & 0xff), message.Payload) is { } e)
            {
                events.Add(e);
            }
        }
    }

    private NetlinkSocket OpenMonitorSocket(int receiveBufferSize)
    {
        NetlinkSocket socket;
        try
        {
            socket = NamespaceExecutor.RunIn(_namespace, () => NetlinkSocket.Open([Nft.NFNLGRP_NFTABLES], receiveBufferSize, protocol: Libc.NETLINK_NETFILTER));
        }
        catch (ObjectDisposedException ex) when (IsDisposed)
        {
            throw new ObjectDisposedException(GetType().FullName, ex);
        }
        catch (NamespaceException ex)
        {
            throw new NetlinkException(ex.ErrorNumber, null, ex.Message);
        }

        return _monitors.Add(socket, () => IsDisposed, this);
    }


    /// <summary>Closes the socket; requests in flight end with <see cref="ObjectDisposedException"/>.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _monitors.DisposeAll();

        _socket.Dispose();
        _namespace.Dispose();
    }

    /// <summary>Closes the client and waits until its requests have ended.</summary>
    /// <returns>A task that completes when no request runs any more.</returns>
    public async ValueTask DisposeAsync()
    {
        Dispose();
        await _socket.Drained.ConfigureAwait(false);
    }
}
