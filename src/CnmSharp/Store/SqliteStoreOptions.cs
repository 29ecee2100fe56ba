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
}

/// <summary>Options of <see cref="SqliteKeyValueStore"/>.</summary>
public sealed class SqliteStoreOptions
{
    /// <summary>The database file. Missing directories are created with mode 0700 and a missing file with mode 0600.</summary>
    public string Path { get; set; } = string.Empty;

    /// <summary>What an acknowledged write survives; <see cref="SqliteDurability.PowerLoss"/> by default.</summary>
    public SqliteDurability Durability { get; set; } = SqliteDurability.PowerLoss;

    /// <summary>
    /// How long a write waits for another connection (another process, or another store on the same file) to release
    /// the write lock before failing with <see cref="CnmUnavailableException"/>. Five seconds by default. Waits shorter
    /// than one second last about one second, because Microsoft.Data.Sqlite retries a busy statement for at least its
    /// command timeout, which counts whole seconds.
    /// </summary>
    public TimeSpan BusyTimeout { get; set; } = TimeSpan.FromSeconds(5);
}
