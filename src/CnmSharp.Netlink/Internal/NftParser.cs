using CnmSharp.Netlink.Nftables;

namespace CnmSharp.Netlink.Internal;

/// <summary>Parses nf_tables dump messages (after the nfgenmsg header) into records.</summary>
internal static class NftParser
{
    private static ReadOnlySpan<byte> Attributes(ReadOnlySpan<byte> payload) => FamilyHeaders.Attributes(payload, Nft.GenMsgSize);

    private static NftFamily Family(ReadOnlySpan<byte> payload) => (NftFamily)payload[0];

    private static ulong GetBe64(NetlinkAttribute attribute) =>
        attribute.Payload.Length >= 8 ? System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(attribute.Payload)
            : ThrowHelper.ThrowProtocol<ulong>($"attribute {attribute.Type} has {attribute.Payload.Length} bytes, needs 8");

    public static void Table(ushort message, ReadOnlySpan<byte> payload, List<NftTable> results)
    {
        if (message != Nft.NEWTABLE)
        {
            return;
        }

        string? name = null;
        uint flags = 0;
        ulong handle = 0;
        foreach (var a in new NetlinkAttributeEnumerator(Attributes(payload)))
        {
            switch (a.Type)
            {
                case Nft.NFTA_TABLE_NAME: name = a.GetString(); break;
                case Nft.NFTA_TABLE_FLAGS: flags = a.GetBe32(); break;
                case Nft.NFTA_TABLE_HANDLE: handle = GetBe64(a); break;
            }
        }

        results.Add(new NftTable(Family(payload), name ?? ThrowHelper.ThrowProtocol<string>("table without a name"), flags, handle));
    }

    public static void Chain(ushort message, ReadOnlySpan<byte> payload, List<NftChain> results)
    {
        if (message != Nft.NEWCHAIN)
        {
            return;
        }

        string? table = null, name = null, type = null, comment = null;
        ulong handle = 0;
        int? hook = null;
        var priority = 0;
        var policy = NftVerdictCode.Accept;
        foreach (var a in new NetlinkAttributeEnumerator(Attributes(payload)))
        {
            switch (a.Type)
            {
                case Nft.NFTA_CHAIN_TABLE: table = a.GetString(); break;
                case Nft.NFTA_CHAIN_NAME: name = a.GetString(); break;
                case Nft.NFTA_CHAIN_TYPE: type = a.GetString(); break;
                case Nft.NFTA_CHAIN_HANDLE: handle = GetBe64(a); break;
                case Nft.NFTA_CHAIN_USERDATA: comment = Comment(a.Payload); break;
                case Nft.NFTA_CHAIN_POLICY: policy = (NftVerdictCode)(int)a.GetBe32(); break;
                case Nft.NFTA_CHAIN_HOOK:
                    foreach (var h in a.GetNested())
                    {
                        if (h.Type == Nft.NFTA_HOOK_HOOKNUM)
                        {
                            hook = (int)h.GetBe32();
                        }
                        else if (h.Type == Nft.NFTA_HOOK_PRIORITY)
                        {
                            priority = (int)h.GetBe32();
                        }
                    }

                    break;
            }
        }

        var baseChain = hook is { } number && type is not null ? new NftBaseChain(type, (NftHook)number, priority, policy) : null;
        results.Add(new NftChain(Family(payload), table ?? "", name ?? ThrowHelper.ThrowProtocol<string>("chain without a name"), handle, baseChain, comment));
    }

    public static void Rule(ushort message, ReadOnlySpan<byte> payload, List<NftRule> results)
    {
        if (message != Nft.NEWRULE)
        {
            return;
        }

        string? table = null, chain = null, comment = null;
        ulong handle = 0;
        var names = new List<string>();
        byte[]? expressions = null;
        foreach (var a in new NetlinkAttributeEnumerator(Attributes(payload)))
        {
            switch (a.Type)
            {
                case Nft.NFTA_RULE_TABLE: table = a.GetString(); break;
                case Nft.NFTA_RULE_CHAIN: chain = a.GetString(); break;
                case Nft.NFTA_RULE_HANDLE: handle = GetBe64(a); break;
                case Nft.NFTA_RULE_USERDATA: comment = Comment(a.Payload); break;
                case Nft.NFTA_RULE_EXPRESSIONS:
                    expressions = a.Payload.ToArray();
                    foreach (var element in a.GetNested())
                    {
                        foreach (var e in element.GetNested())
                        {
                            if (e.Type == Nft.NFTA_EXPR_NAME)
                            {
                                names.Add(e.GetString());
                            }
                        }
                    }

                    break;
            }
        }

        results.Add(new NftRule(Family(payload), table ?? "", chain ?? "", handle, comment, names) { ExpressionBytes = expressions ?? [] });
    }

    /// <summary>The comment TLV (type 0) of a rule's user data.</summary>
    internal static string? Comment(ReadOnlySpan<byte> userData)
    {
        while (userData.Length >= 2)
        {
            int type = userData[0], length = userData[1];
            if (2 + length > userData.Length)
            {
                return null;
            }

            if (type == 0)
            {
                var value = userData.Slice(2, length);
                var nul = value.IndexOf((byte)0);
                return System.Text.Encoding.UTF8.GetString(nul < 0 ? value : value[..nul]);
            }

            userData = userData[(2 + length)..];
        }

        return null;
    }

    public static void Set(ushort message, ReadOnlySpan<byte> payload, List<NftSet> results)
    {
        if (message != Nft.NEWSET)
        {
            return;
        }

        string? table = null, name = null;
        uint flags = 0, keyType = 0, keyLength = 0, dataLength = 0;
        uint? dataType = null;
        foreach (var a in new NetlinkAttributeEnumerator(Attributes(payload)))
        {
            switch (a.Type)
            {
                case Nft.NFTA_SET_TABLE: table = a.GetString(); break;
                case Nft.NFTA_SET_NAME: name = a.GetString(); break;
                case Nft.NFTA_SET_FLAGS: flags = a.GetBe32(); break;
                case Nft.NFTA_SET_KEY_TYPE: keyType = a.GetBe32(); break;
                case Nft.NFTA_SET_KEY_LEN: keyLength = a.GetBe32(); break;
                case Nft.NFTA_SET_DATA_TYPE: dataType = a.GetBe32(); break;
                case Nft.NFTA_SET_DATA_LEN: dataLength = a.GetBe32(); break;
            }
        }

        results.Add(new NftSet(Family(payload), table ?? "", name ?? ThrowHelper.ThrowProtocol<string>("set without a name"),
            (NftSetOptions)flags, keyType, keyLength, dataType, dataLength));
    }

    public static void Elements(ushort message, ReadOnlySpan<byte> payload, List<NftSetElement> results)
    {
        if (message != Nft.NEWSETELEM && message != Nft.DELSETELEM)
        {
            return;
        }

        foreach (var a in new NetlinkAttributeEnumerator(Attributes(payload)))
        {
            if (a.Type != Nft.NFTA_SET_ELEM_LIST_ELEMENTS)
            {
                continue;
            }

            foreach (var element in a.GetNested())
            {
                byte[]? key = null, data = null;
                NftVerdict? verdict = null;
                string? comment = null;
                foreach (var e in element.GetNested())
                {
                    if (e.Type == Nft.NFTA_SET_ELEM_USERDATA)
                    {
                        comment = Comment(e.Payload);
                    }
                    else if (e.Type == Nft.NFTA_SET_ELEM_KEY)
                    {
                        key = Value(e);
                    }
                    else if (e.Type == Nft.NFTA_SET_ELEM_DATA)
                    {
                        foreach (var d in e.GetNested())
                        {
                            if (d.Type == Nft.NFTA_DATA_VALUE)
                            {
                                data = d.Payload.ToArray();
                            }
                            else if (d.Type == Nft.NFTA_DATA_VERDICT)
                            {
                                verdict = Verdict(d);
                            }
                        }
                    }
                }

                if (key is not null)
                {
                    results.Add(new NftSetElement(key, data, verdict) { Comment = comment });
                }
            }
        }
    }

    private static byte[]? Value(NetlinkAttribute nest)
    {
        foreach (var v in nest.GetNested())
        {
            if (v.Type == Nft.NFTA_DATA_VALUE)
            {
                return v.Payload.ToArray();
            }
        }

        return null;
    }

    private static NftVerdict Verdict(NetlinkAttribute nest)
    {
        var code = NftVerdictCode.Continue;
        string? chain = null;
        foreach (var v in nest.GetNested())
        {
            if (v.Type == Nft.NFTA_VERDICT_CODE)
            {
                code = (NftVerdictCode)(int)v.GetBe32();
            }
            else if (v.Type == Nft.NFTA_VERDICT_CHAIN)
            {
                chain = v.GetString();
            }
        }

        return new NftVerdict(code, chain);
    }

    /// <summary>One notification of the NFNLGRP_NFTABLES group, or null for a message the monitor does not report.</summary>
    public static NftEvent? Event(ushort message, ReadOnlySpan<byte> payload)
    {
        var family = Family(payload);
        switch (message)
        {
            case Nft.NEWTABLE or Nft.DELTABLE:
                {
                    var list = new List<NftTable>(1);
                    Table(Nft.NEWTABLE, payload, list);
                    var t = list[0];
                    return new NftEvent(message == Nft.NEWTABLE ? NftEventKind.NewTable : NftEventKind.DeleteTable, family, t.Name) { Handle = t.Handle };
                }

            case Nft.NEWCHAIN or Nft.DELCHAIN:
                {
                    var list = new List<NftChain>(1);
                    Chain(Nft.NEWCHAIN, payload, list);
                    var c = list[0];
                    return new NftEvent(message == Nft.NEWCHAIN ? NftEventKind.NewChain : NftEventKind.DeleteChain, family, c.Table)
                    {
                        Chain = c.Name, Handle = c.Handle, Comment = c.Comment,
                    };
                }

            case Nft.NEWRULE or Nft.DELRULE:
                {
                    var list = new List<NftRule>(1);
                    Rule(Nft.NEWRULE, payload, list);
                    var r = list[0];
                    return new NftEvent(message == Nft.NEWRULE ? NftEventKind.NewRule : NftEventKind.DeleteRule, family, r.Table)
                    {
                        Chain = r.Chain, Handle = r.Handle, Comment = r.Comment, Rule = r,
                    };
                }

            case Nft.NEWSET or Nft.DELSET:
                {
                    var list = new List<NftSet>(1);
                    Set(Nft.NEWSET, payload, list);
                    var set = list[0];
                    return new NftEvent(message == Nft.NEWSET ? NftEventKind.NewSet : NftEventKind.DeleteSet, family, set.Table) { Set = set.Name };
                }

            case Nft.NEWSETELEM or Nft.DELSETELEM:
                {
                    string? table = null, set = null;
                    foreach (var a in new NetlinkAttributeEnumerator(Attributes(payload)))
                    {
                        if (a.Type == Nft.NFTA_SET_ELEM_LIST_TABLE)
                        {
                            table = a.GetString();
                        }
                        else if (a.Type == Nft.NFTA_SET_ELEM_LIST_SET)
                        {
                            set = a.GetString();
                        }
                    }

                    var elements = new List<NftSetElement>();
                    Elements(message, payload, elements);
                    return new NftEvent(message == Nft.NEWSETELEM ? NftEventKind.NewElement : NftEventKind.DeleteElement, family, table ?? "")
                    {
                        Set = set, Elements = elements,
                    };
                }

            case Nft.NEWGEN:
                {
                    uint id = 0, pid = 0;
                    string? name = null;
                    foreach (var a in new NetlinkAttributeEnumerator(Attributes(payload)))
                    {
                        switch (a.Type)
                        {
                            case Nft.NFTA_GEN_ID: id = a.GetBe32(); break;
                            case Nft.NFTA_GEN_PROC_PID: pid = a.GetBe32(); break;
                            case Nft.NFTA_GEN_PROC_NAME: name = a.GetString(); break;
                        }
                    }

                    return new NftEvent(NftEventKind.Generation, NftFamily.Unspecified, null) { Generation = id, ProcessId = (int)pid, ProcessName = name };
                }

            default:
                return null;
        }
    }
}
