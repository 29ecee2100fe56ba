using System.Buffers.Binary;
using System.Text;
using CnmSharp.Netlink.Internal;

namespace CnmSharp.Netlink.Nftables;

/// <summary>
/// nf_tables changes to commit atomically with <see cref="NftablesClient.ExecuteAsync"/>: the client sends
/// <c>NFNL_MSG_BATCH_BEGIN</c>, these messages (each asking for an ACK) and <c>NFNL_MSG_BATCH_END</c> in one datagram;
/// the kernel applies all of them or none. Messages are encoded when added. A set added to the batch gets a batch-local
/// id, and later messages of the batch that name it carry that id too (as nft does).
/// </summary>
public sealed class NftablesBatch : IDisposable
{
    private readonly GrowableBuffer _buffer = new(2048);
    private readonly List<int> _offsets = [];
    private readonly List<string> _descriptions = [];
    private readonly Dictionary<string, uint> _setIds = new(StringComparer.Ordinal);
    private int _length;
    private bool _disposed;

    /// <summary>The number of messages (BEGIN and END not counted).</summary>
    public int Count => _offsets.Count;

    /// <summary>What each message does, in order (<c>add rule ip cnmsharp forward</c>), for errors and logs.</summary>
    public IReadOnlyList<string> Descriptions => _descriptions;

    internal ReadOnlySpan<byte> Bytes => _buffer.Array.AsSpan(0, _length);

    internal IReadOnlyList<int> Offsets => _offsets;

    internal uint? SetIdOf(string set) => _setIds.TryGetValue(set, out var id) ? id : null;

    /// <summary>Adds a table (no error when it exists).</summary>
    /// <param name="family">The family.</param>
    /// <param name="name">The table.</param>
    /// <returns>This batch.</returns>
    public NftablesBatch AddTable(NftFamily family, string name)
    {
        CheckName(name);
        var w = Begin(Nft.NEWTABLE, 0, family);
        w.WriteString(Nft.NFTA_TABLE_NAME, name);
        w.WriteBe32(Nft.NFTA_TABLE_FLAGS, 0);
        return End(ref w, $"add table {Family(family)} {name}");
    }

    /// <summary>Deletes a table with everything in it; ENOENT when it does not exist.</summary>
    /// <param name="family">The family.</param>
    /// <param name="name">The table.</param>
    /// <returns>This batch.</returns>
    public NftablesBatch DeleteTable(NftFamily family, string name) => TableOnly(Nft.DELTABLE, family, name, "delete");

    /// <summary>Deletes a table with everything in it, with no error when it does not exist (kernel 6.3 and later).</summary>
    /// <param name="family">The family.</param>
    /// <param name="name">The table.</param>
    /// <returns>This batch.</returns>
    public NftablesBatch DestroyTable(NftFamily family, string name) => TableOnly(Nft.DESTROYTABLE, family, name, "destroy");

    private NftablesBatch TableOnly(byte message, NftFamily family, string name, string verb)
    {
        CheckName(name);
        var w = Begin(message, 0, family);
        w.WriteString(Nft.NFTA_TABLE_NAME, name);
        return End(ref w, $"{verb} table {Family(family)} {name}");
    }

    /// <summary>Adds a chain (no error when it exists); a base chain when <paramref name="baseChain"/> is given.</summary>
    /// <param name="family">The family.</param>
    /// <param name="table">The table.</param>
    /// <param name="name">The chain.</param>
    /// <param name="baseChain">Type, hook, priority and policy of a base chain; null for a regular chain.</param>
    /// <param name="comment">A comment (nft shows it; at most 127 bytes), or null.</param>
    /// <returns>This batch.</returns>
    public NftablesBatch AddChain(NftFamily family, string table, string name, NftBaseChain? baseChain = null, string? comment = null)
    {
        CheckName(table);
        CheckName(name);
        var w = Begin(Nft.NEWCHAIN, Nl.NLM_F_CREATE, family);
        w.WriteString(Nft.NFTA_CHAIN_TABLE, table);
        w.WriteString(Nft.NFTA_CHAIN_NAME, name);
        if (baseChain is not null)
        {
            w.WriteString(Nft.NFTA_CHAIN_TYPE, baseChain.Type);
            w.WriteBe32(Nft.NFTA_CHAIN_POLICY, unchecked((uint)(int)baseChain.Policy));
            var hook = w.BeginNested(Nft.NFTA_CHAIN_HOOK, setNestedFlag: true);
            w.WriteBe32(Nft.NFTA_HOOK_HOOKNUM, (uint)baseChain.Hook);
            w.WriteBe32(Nft.NFTA_HOOK_PRIORITY, unchecked((uint)baseChain.Priority));
            w.EndNested(hook);
        }

        if (comment is not null)
        {
            WriteComment(ref w, Nft.NFTA_CHAIN_USERDATA, comment);
        }

        return End(ref w, $"add chain {Family(family)} {table} {name}");
    }

    /// <summary>Deletes an empty chain nothing jumps to; ENOENT when it does not exist.</summary>
    /// <param name="family">The family.</param>
    /// <param name="table">The table.</param>
    /// <param name="name">The chain.</param>
    /// <returns>This batch.</returns>
    public NftablesBatch DeleteChain(NftFamily family, string table, string name)
    {
        var w = Begin(Nft.DELCHAIN, 0, family);
        w.WriteString(Nft.NFTA_CHAIN_TABLE, table);
        w.WriteString(Nft.NFTA_CHAIN_NAME, name);
        return End(ref w, $"delete chain {Family(family)} {table} {name}");
    }

    /// <summary>Removes every rule of a chain.</summary>
    /// <param name="family">The family.</param>
    /// <param name="table">The table.</param>
    /// <param name="chain">The chain.</param>
    /// <returns>This batch.</returns>
    public NftablesBatch FlushChain(NftFamily family, string table, string chain)
    {
        var w = Begin(Nft.DELRULE, 0, family);
        w.WriteString(Nft.NFTA_RULE_TABLE, table);
        w.WriteString(Nft.NFTA_RULE_CHAIN, chain);
        return End(ref w, $"flush chain {Family(family)} {table} {chain}");
    }

    /// <summary>Appends a rule to a chain.</summary>
    /// <param name="family">The family.</param>
    /// <param name="table">The table.</param>
    /// <param name="chain">The chain.</param>
    /// <param name="expressions">The expressions, in order.</param>
    /// <param name="comment">A comment (nft shows it; at most 127 bytes), or null.</param>
    /// <returns>This batch.</returns>
    public NftablesBatch AddRule(NftFamily family, string table, string chain, IReadOnlyList<NftExpression> expressions, string? comment = null)
    {
        ArgumentNullException.ThrowIfNull(expressions);
        var w = Begin(Nft.NEWRULE, Nl.NLM_F_CREATE | Nl.NLM_F_APPEND, family);
        w.WriteString(Nft.NFTA_RULE_TABLE, table);
        w.WriteString(Nft.NFTA_RULE_CHAIN, chain);
        var list = w.BeginNested(Nft.NFTA_RULE_EXPRESSIONS, setNestedFlag: true);
        foreach (var expression in expressions)
        {
            expression.Encode(ref w, this);
        }

        w.EndNested(list);
        if (comment is not null)
        {
            WriteComment(ref w, Nft.NFTA_RULE_USERDATA, comment);
        }

        return End(ref w, $"add rule {Family(family)} {table} {chain}{(comment is null ? "" : $" comment \"{comment}\"")}");
    }

    /// <summary>Deletes one rule by handle; ENOENT when it does not exist.</summary>
    /// <param name="family">The family.</param>
    /// <param name="table">The table.</param>
    /// <param name="chain">The chain.</param>
    /// <param name="handle">The rule's handle (from a dump).</param>
    /// <returns>This batch.</returns>
    public NftablesBatch DeleteRule(NftFamily family, string table, string chain, ulong handle)
    {
        var w = Begin(Nft.DELRULE, 0, family);
        w.WriteString(Nft.NFTA_RULE_TABLE, table);
        w.WriteString(Nft.NFTA_RULE_CHAIN, chain);
        w.WriteU64Be(Nft.NFTA_RULE_HANDLE, handle);
        return End(ref w, $"delete rule {Family(family)} {table} {chain} handle {handle}");
    }

    /// <summary>Adds a set or map (no error when an identical one exists). Later messages of this batch that name it
    /// carry its batch id.</summary>
    /// <param name="family">The family.</param>
    /// <param name="table">The table.</param>
    /// <param name="set">The set.</param>
    /// <returns>This batch.</returns>
    public NftablesBatch AddSet(NftFamily family, string table, NftSetSpec set)
    {
        ArgumentNullException.ThrowIfNull(set);
        CheckName(set.Name);
        var id = (uint)_setIds.Count + 1;
        _setIds[set.Name] = id;
        var w = Begin(Nft.NEWSET, Nl.NLM_F_CREATE, family);
        w.WriteString(Nft.NFTA_SET_TABLE, table);
        w.WriteString(Nft.NFTA_SET_NAME, set.Name);
        w.WriteBe32(Nft.NFTA_SET_FLAGS, (uint)set.Flags);
        w.WriteBe32(Nft.NFTA_SET_KEY_TYPE, set.KeyType);
        w.WriteBe32(Nft.NFTA_SET_KEY_LEN, set.KeyLength);
        if (set.DataType is { } dataType)
        {
            w.WriteBe32(Nft.NFTA_SET_DATA_TYPE, dataType);
            w.WriteBe32(Nft.NFTA_SET_DATA_LEN, set.DataLength);
        }

        w.WriteBe32(Nft.NFTA_SET_ID, id);
        if (set.UserData is { Length: > 0 } userData)
        {
            w.WriteBytes(Nft.NFTA_SET_USERDATA, userData);
        }

        return End(ref w, $"add {((set.Flags & NftSetOptions.Map) != 0 ? "map" : "set")} {Family(family)} {table} {set.Name}");
    }

    /// <summary>Deletes a set no rule refers to; ENOENT when it does not exist.</summary>
    /// <param name="family">The family.</param>
    /// <param name="table">The table.</param>
    /// <param name="name">The set.</param>
    /// <returns>This batch.</returns>
    public NftablesBatch DeleteSet(NftFamily family, string table, string name)
    {
        var w = Begin(Nft.DELSET, 0, family);
        w.WriteString(Nft.NFTA_SET_TABLE, table);
        w.WriteString(Nft.NFTA_SET_NAME, name);
        return End(ref w, $"delete set {Family(family)} {table} {name}");
    }

    /// <summary>Adds elements to a set or map. An identical element is a no-op; a map key with other data is EEXIST
    /// (delete it first, in the same batch).</summary>
    /// <param name="family">The family.</param>
    /// <param name="table">The table.</param>
    /// <param name="set">The set.</param>
    /// <param name="elements">The elements.</param>
    /// <returns>This batch.</returns>
    public NftablesBatch AddElements(NftFamily family, string table, string set, IReadOnlyList<NftSetElement> elements) =>
        Elements(Nft.NEWSETELEM, Nl.NLM_F_CREATE, "add", family, table, set, elements);

    /// <summary>Deletes elements of a set or map; ENOENT when one does not exist.</summary>
    /// <param name="family">The family.</param>
    /// <param name="table">The table.</param>
    /// <param name="set">The set.</param>
    /// <param name="elements">The elements (keys; data is ignored by the kernel).</param>
    /// <returns>This batch.</returns>
    public NftablesBatch DeleteElements(NftFamily family, string table, string set, IReadOnlyList<NftSetElement> elements) =>
        Elements(Nft.DELSETELEM, 0, "delete", family, table, set, elements);

    /// <summary>Removes every element of a set or map.</summary>
    /// <param name="family">The family.</param>
    /// <param name="table">The table.</param>
    /// <param name="set">The set.</param>
    /// <returns>This batch.</returns>
    public NftablesBatch FlushSet(NftFamily family, string table, string set)
    {
        var w = Begin(Nft.DELSETELEM, 0, family);
        w.WriteString(Nft.NFTA_SET_ELEM_LIST_TABLE, table);
        w.WriteString(Nft.NFTA_SET_ELEM_LIST_SET, set);
        return End(ref w, $"flush set {Family(family)} {table} {set}");
    }

    private NftablesBatch Elements(byte message, ushort flags, string verb, NftFamily family, string table, string set, IReadOnlyList<NftSetElement> elements)
    {
        ArgumentNullException.ThrowIfNull(elements);
        var w = Begin(message, flags, family);
        w.WriteString(Nft.NFTA_SET_ELEM_LIST_TABLE, table);
        w.WriteString(Nft.NFTA_SET_ELEM_LIST_SET, set);
        if (SetIdOf(set) is { } id)
        {
            w.WriteBe32(Nft.NFTA_SET_ELEM_LIST_SET_ID, id);
        }

        var list = w.BeginNested(Nft.NFTA_SET_ELEM_LIST_ELEMENTS, setNestedFlag: true);
        foreach (var element in elements)
        {
            var item = w.BeginNested(Nft.NFTA_LIST_ELEM, setNestedFlag: true);
            NftExpression.WriteValue(ref w, Nft.NFTA_SET_ELEM_KEY, element.Key);
            if (element.Verdict is { } verdict)
            {
                NftExpression.WriteVerdict(ref w, Nft.NFTA_SET_ELEM_DATA, verdict);
            }
            else if (element.Data is { } data)
            {
                NftExpression.WriteValue(ref w, Nft.NFTA_SET_ELEM_DATA, data);
            }

            if (element.Comment is not null)
            {
                WriteComment(ref w, Nft.NFTA_SET_ELEM_USERDATA, element.Comment);
            }

            w.EndNested(item);
        }

        w.EndNested(list);
        return End(ref w, $"{verb} {elements.Count} element(s) {Family(family)} {table} {set}");
    }

    /// <summary>A comment as nft keeps it: a user-data TLV of type 0, one byte length, the NUL-terminated text.</summary>
    private static void WriteComment(ref NetlinkWriter w, ushort type, string comment)
    {
        var bytes = Encoding.UTF8.GetByteCount(comment);
        if (bytes > 127)
        {
            throw new ArgumentException("an nf_tables comment is at most 127 bytes", nameof(comment));
        }

        Span<byte> userData = stackalloc byte[bytes + 3];
        userData[0] = 0;
        userData[1] = (byte)(bytes + 1);
        Encoding.UTF8.GetBytes(comment, userData[2..]);
        userData[^1] = 0;
        w.WriteBytes(type, userData);
    }

    private static string Family(NftFamily family) => family switch
    {
        NftFamily.IPv4 => "ip",
        NftFamily.IPv6 => "ip6",
        NftFamily.Inet => "inet",
        _ => ((byte)family).ToString(System.Globalization.CultureInfo.InvariantCulture),
    };

    private static void CheckName(string name)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        if (Encoding.UTF8.GetByteCount(name) > 255)
        {
            throw new ArgumentException($"nf_tables name \"{name}\" is longer than 255 bytes", nameof(name));
        }
    }

    private NetlinkWriter Begin(byte message, ushort flags, NftFamily family)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var w = new NetlinkWriter(_buffer, _length);
        _offsets.Add(_length);
        w.BeginMessage(Nft.Type(message), (ushort)(Nl.NLM_F_REQUEST | Nl.NLM_F_ACK | flags), 0);
        WriteGenMsg(ref w, (byte)family, 0);
        return w;
    }

    private NftablesBatch End(ref NetlinkWriter w, string description)
    {
        w.EndMessage(_offsets[^1]);
        _length = w.Length;
        _descriptions.Add(description);
        return this;
    }

    internal static void WriteGenMsg(ref NetlinkWriter w, byte family, ushort resId)
    {
        var header = w.Reserve(Nft.GenMsgSize);
        header[0] = family;
        header[1] = 0;
        BinaryPrimitives.WriteUInt16BigEndian(header[2..], resId);
    }

    /// <summary>
    /// Writes BEGIN (sequence <paramref name="firstSequence"/>, with the generation guard when given), the messages
    /// (sequences first+1..first+Count) and END (first+Count+1) into a buffer; returns the length.
    /// </summary>
    internal int WriteDatagram(GrowableBuffer buffer, uint firstSequence, uint portId, uint? generation)
    {
        var w = new NetlinkWriter(buffer);
        var begin = w.BeginMessage(Nft.NFNL_MSG_BATCH_BEGIN, Nl.NLM_F_REQUEST, firstSequence, portId);
        WriteGenMsg(ref w, 0, Nft.SubsysNftables);
        if (generation is { } genId)
        {
            w.WriteBe32(Nft.NFNL_BATCH_GENID, genId);
        }

        w.EndMessage(begin);
        var start = w.Length;
        w.Reserve(_length).Clear();
        var span = buffer.Array.AsSpan(start, _length);
        Bytes.CopyTo(span);
        for (var i = 0; i < _offsets.Count; i++)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(span[(_offsets[i] + 8)..], unchecked(firstSequence + 1 + (uint)i));
            BinaryPrimitives.WriteUInt32LittleEndian(span[(_offsets[i] + 12)..], portId);
        }

        var end = w.BeginMessage(Nft.NFNL_MSG_BATCH_END, Nl.NLM_F_REQUEST, unchecked(firstSequence + 1 + (uint)_offsets.Count), portId);
        WriteGenMsg(ref w, 0, Nft.SubsysNftables);
        w.EndMessage(end);
        return w.Length;
    }

    /// <summary>Returns the buffer to the pool.</summary>
    public void Dispose()
    {
        if (!_disposed)
        {
            _disposed = true;
            _buffer.Dispose();
        }
    }
}
