namespace CnmSharp.Store;

/// <summary>What a committed write of <see cref="SqliteKeyValueStore"/> survives.</summary>
public enum SqliteDurability
{
    /// <summary>
    /// Write-ahead log with <c>synchronous=NORMAL</c>: every acknowledged write survives a crash or kill of the
    /// process at any point. After a power loss or kernel crash the last writes before it may be lost, but the file
    /// stays consistent (whole commits or nothing). Faster: no fsync per commit, only at checkpoints.
    /// </summary>
    ProcessCrash,

    /// <summary>
    /// Write-ahead log with <c>synchronous=FULL</c>: the log is synced to disk before a write is acknowledged, so
    /// every acknowledged write also survives a power loss or kernel crash (given a disk that honours flushes).
    /// Costs one fsync per write.
    /// </summary>
    PowerLoss,

    /// <summary>
    /// Write-ahead log, <c>synchronous</c> chosen per commit from the caller's <see cref="StoreDurability"/> hint:
    /// <see cref="StoreDurability.Durable"/> writes commit with <c>FULL</c> (they survive a power loss, and so does
    /// every earlier commit, because the sync covers the whole log), <see cref="StoreDurability.Relaxed"/> writes with
    /// <c>NORMAL</c> (they survive a process crash; a power loss may lose those made since the last durable commit or
    /// checkpoint). The controller marks what a user declares (networks, pools) durable and per-container records
    /// (endpoints, sandboxes, joins, port allocations) relaxed. The default.
    /// </summary>
    Tiered,
}

/// <summary>Options of <see cref="SqliteKeyValueStore"/>.</summary>
public sealed class SqliteStoreOptions
{
    /// <summary>The database file. Missing directories are created with mode 0700 and a missing file with mode 0600.</summary>
    public string Path { get; set; } = string.Empty;

    /// <summary>What an acknowledged write survives; <see cref="SqliteDurability.Tiered"/> by default.</summary>
    public SqliteDurability Durability { get; set; } = SqliteDurability.Tiered;

    /// <summary>
    /// How long a write waits for another connection (another process, or another store on the same file) to release
    /// the write lock before failing with <see cref="CnmUnavailableException"/>. Five seconds by default. Waits shorter
    /// than one second last about one second, because Microsoft.Data.Sqlite retries a busy statement for at least its
    /// command timeout, which counts whole seconds.
    /// </summary>
    public TimeSpan BusyTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>How many revisions of history the change log keeps for listings at, and watches from, past revisions
    /// (older ones are compacted away as writes go on). 10,000 by default.</summary>
    public long HistoryRevisions { get; set; } = 10_000;

    /// <summary>How often a cross-process watch (<see cref="SqliteKeyValueStore.WatchFromAsync"/>) checks the file's
    /// revision for other processes' writes, and expired leases are looked for. 100 ms by default.</summary>
    public TimeSpan WatchPollInterval { get; set; } = TimeSpan.FromMilliseconds(100);
}
