namespace CnmSharp.Netlink.Internal;

#pragma warning disable CA1707 // Names follow the kernel UAPI headers.

/// <summary>Constants from include/uapi/linux/netfilter/nfnetlink.h and nf_tables.h.</summary>
internal static class Nft
{
    public const int GenMsgSize = 4;
    public const byte SubsysNftables = 10;
    public const ushort NFNL_MSG_BATCH_BEGIN = 0x10;
    public const ushort NFNL_MSG_BATCH_END = 0x11;
    public const ushort NFNL_BATCH_GENID = 1;

    public const byte NEWTABLE = 0, GETTABLE = 1, DELTABLE = 2;
    public const byte NEWCHAIN = 3, GETCHAIN = 4, DELCHAIN = 5;
    public const byte NEWRULE = 6, GETRULE = 7, DELRULE = 8;
    public const byte NEWSET = 9, GETSET = 10, DELSET = 11;
    public const byte NEWSETELEM = 12, GETSETELEM = 13, DELSETELEM = 14;
    public const byte NEWGEN = 15, GETGEN = 16;
    public const byte DESTROYTABLE = 26, DESTROYCHAIN = 27, DESTROYRULE = 28, DESTROYSET = 29, DESTROYSETELEM = 30;

    public static ushort Type(byte message) => (ushort)((SubsysNftables << 8) | message);

    public const ushort NFTA_TABLE_NAME = 1, NFTA_TABLE_FLAGS = 2, NFTA_TABLE_USE = 3, NFTA_TABLE_HANDLE = 4;

    public const ushort NFTA_CHAIN_TABLE = 1, NFTA_CHAIN_HANDLE = 2, NFTA_CHAIN_NAME = 3, NFTA_CHAIN_HOOK = 4,
        NFTA_CHAIN_POLICY = 5, NFTA_CHAIN_TYPE = 7, NFTA_CHAIN_USERDATA = 12;

    public const ushort NFTA_HOOK_HOOKNUM = 1, NFTA_HOOK_PRIORITY = 2;

    public const ushort NFTA_RULE_TABLE = 1, NFTA_RULE_CHAIN = 2, NFTA_RULE_HANDLE = 3, NFTA_RULE_EXPRESSIONS = 4,
        NFTA_RULE_POSITION = 6, NFTA_RULE_USERDATA = 7;

    public const ushort NFTA_LIST_ELEM = 1;
    public const ushort NFTA_EXPR_NAME = 1, NFTA_EXPR_DATA = 2;

    public const ushort NFTA_SET_TABLE = 1, NFTA_SET_NAME = 2, NFTA_SET_FLAGS = 3, NFTA_SET_KEY_TYPE = 4,
        NFTA_SET_KEY_LEN = 5, NFTA_SET_DATA_TYPE = 6, NFTA_SET_DATA_LEN = 7, NFTA_SET_ID = 10, NFTA_SET_USERDATA = 13,
        NFTA_SET_HANDLE = 16;

    public const ushort NFTA_SET_ELEM_LIST_TABLE = 1, NFTA_SET_ELEM_LIST_SET = 2, NFTA_SET_ELEM_LIST_ELEMENTS = 3,
        NFTA_SET_ELEM_LIST_SET_ID = 4;

    public const ushort NFTA_SET_ELEM_KEY = 1, NFTA_SET_ELEM_DATA = 2, NFTA_SET_ELEM_FLAGS = 3, NFTA_SET_ELEM_USERDATA = 6;

    public const ushort NFTA_DATA_VALUE = 1, NFTA_DATA_VERDICT = 2;
    public const ushort NFTA_VERDICT_CODE = 1, NFTA_VERDICT_CHAIN = 2;

    public const ushort NFTA_GEN_ID = 1, NFTA_GEN_PROC_PID = 2, NFTA_GEN_PROC_NAME = 3;

    /// <summary>NFNLGRP_NFTABLES: the multicast group of nf_tables change notifications.</summary>
    public const int NFNLGRP_NFTABLES = 7;
}
