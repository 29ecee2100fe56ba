using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;

namespace CnmSharp.Store;

/// <summary>
/// The rules every <see cref="IKeyValueStore"/> of this assembly applies the same way: key and prefix validation,
/// expected-version checks, the conflict error and prefix range bounds.
/// </summary>
internal static class StoreRules
{
    /// <summary>The error code of a store that cannot be reached or is busy.</summary>
    internal const string StoreUnavailable = CnmErrorCodes.StoreUnavailable;

    /// <summary>The error code of an unexpected store failure that is neither busy nor corrupt.</summary>
    internal const string StoreFailure = "StoreFailure";

    /// <summary>Checks a key: not null, not empty, well-formed UTF-16, no NUL.</summary>
    internal static void ValidateKey(string key, [CallerArgumentExpression(nameof(key))] string? paramName = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(key, paramName);
        ValidateText(key, paramName);
    }

    /// <summary>Checks a prefix: not null (empty means every key), well-formed UTF-16, no NUL.</summary>
    internal static void ValidatePrefix(string prefix, [CallerArgumentExpression(nameof(prefix))] string? paramName = null)
    {
        ArgumentNullException.ThrowIfNull(prefix, paramName);
        ValidateText(prefix, paramName);
    }

    /// <summary>Checks an expected version: <see cref="StoreVersion.Any"/>, <see cref="StoreVersion.Absent"/> or positive.</summary>
    internal static void ValidateExpectedVersion(long expectedVersion, [CallerArgumentExpression(nameof(expectedVersion))] string? paramName = null)
    {
        if (expectedVersion < StoreVersion.Any)
        {
            throw new ArgumentOutOfRangeException(paramName, expectedVersion, "An expected version is StoreVersion.Any (-1), StoreVersion.Absent (0) or a positive version.");
        }
    }

    internal static void ValidateDurability(StoreDurability durability, [CallerArgumentExpression(nameof(durability))] string? paramName = null)
    {
        if (durability is not (StoreDurability.Durable or StoreDurability.Relaxed))
        {
            throw new ArgumentOutOfRangeException(paramName, durability, "A durability is StoreDurability.Durable or StoreDurability.Relaxed.");
        }
    }

    /// <summary>Checks the operations of a commit: none null, valid keys and versions, no key twice.</summary>
    internal static void ValidateOperations(IReadOnlyList<StoreOperation> operations)
    {
        ArgumentNullException.ThrowIfNull(operations);
        for (var i = 0; i < operations.Count; i++)
        {
            var op = operations[i] ?? throw new ArgumentException($"Operation {i} is null.", nameof(operations));
            if (op.Kind is not (StoreOperationKind.Put or StoreOperationKind.Delete or StoreOperationKind.Check))
            {
                throw new ArgumentException($"Operation {i} has an unknown kind {op.Kind}.", nameof(operations));
            }

            ValidateKey(op.Key, nameof(operations));
            ValidateExpectedVersion(op.ExpectedVersion, nameof(operations));
        }

        if (operations.Count < 2)
        {
            return;
        }

        if (operations.Count <= 16)
        {
            for (var i = 1; i < operations.Count; i++)
            {
                for (var j = 0; j < i; j++)
                {
                    if (string.Equals(operations[i].Key, operations[j].Key, StringComparison.Ordinal))
                    {
                        throw new ArgumentException($"Key \"{operations[i].Key}\" appears more than once in one commit.", nameof(operations));
                    }
                }
            }

            return;
        }

        var seen = new HashSet<string>(operations.Count, StringComparer.Ordinal);
        foreach (var op in operations)
        {
            if (!seen.Add(op.Key))
            {
                throw new ArgumentException($"Key \"{op.Key}\" appears more than once in one commit.", nameof(operations));
            }
        }
    }

    /// <summary>True when a key currently at <paramref name="found"/> (0 when absent) satisfies <paramref name="expected"/>.</summary>
    internal static bool Matches(long expected, long found) => expected == StoreVersion.Any || expected == found;

    /// <summary>The error of a failed version check.</summary>
    internal static CnmConflictException Conflict(string key, long expected, long found) =>
        new(
            CnmErrorCodes.VersionConflict,
            $"key \"{key}\"",
            string.Create(CultureInfo.InvariantCulture, $"expected version {Describe(expected)}, found {Describe(found)}"));

    /// <summary>The error of a listing or watch at a revision whose history is gone.</summary>
    internal static CnmConflictException Compacted(long requested, long compacted) =>
        new(
            CnmErrorCodes.RevisionCompacted,
            string.Create(CultureInfo.InvariantCulture, $"revision {requested}"),
            string.Create(CultureInfo.InvariantCulture, $"the store's history starts after revision {compacted} (compacted); list again"));

    /// <summary>The error of a lease that does not exist.</summary>
    internal static CnmNotFoundException LeaseNotFound(long lease) =>
        new(CnmErrorCodes.LeaseNotFound, string.Create(CultureInfo.InvariantCulture, $"lease {lease}"), "the lease does not exist (expired or revoked)");

    /// <summary>Checks a revision argument: <see cref="StoreRevision.Latest"/> or positive.</summary>
    internal static void ValidateRevision(long revision, [CallerArgumentExpression(nameof(revision))] string? paramName = null)
    {
        if (revision < 0)
        {
            throw new ArgumentOutOfRangeException(paramName, revision, "A revision is StoreRevision.Latest (0) or positive.");
        }
    }

    /// <summary>A lease TTL in whole seconds, rounded up, at least one.</summary>
    internal static long LeaseSeconds(TimeSpan ttl, [CallerArgumentExpression(nameof(ttl))] string? paramName = null)
    {
        if (ttl <= TimeSpan.Zero || ttl > TimeSpan.FromDays(365))
        {
            throw new ArgumentOutOfRangeException(paramName, ttl, "A lease time to live is positive and at most a year.");
        }

        return Math.Max(1, (long)Math.Ceiling(ttl.TotalSeconds));
    }

    /// <summary>A stream that fails with <paramref name="error"/> when enumerated (errors of a watch are reported by
    /// the stream, not by the call that creates it).</summary>
    internal static async IAsyncEnumerable<StoreEvent> Failed(Exception error)
    {
        await Task.CompletedTask.ConfigureAwait(false);
        throw error;
#pragma warning disable CS0162 // an iterator needs a yield
        yield break;
#pragma warning restore CS0162
    }

    /// <summary>True when <paramref name="key"/> is under <paramref name="prefix"/> (ordinal).</summary>
    internal static bool IsUnder(string key, string prefix) => key.StartsWith(prefix, StringComparison.Ordinal);

    /// <summary>
    /// The smallest string greater than every string that starts with <paramref name="prefix"/>, in code point order
    /// (which is the byte order of UTF-8 and so SQLite's BINARY collation), or null when there is none. The keys under
    /// the prefix are exactly the range <c>[prefix, bound)</c>.
    /// </summary>
    internal static string? PrefixUpperBound(string prefix)
    {
        var end = prefix.Length;
        while (end > 0)
        {
            Rune.DecodeLastFromUtf16(prefix.AsSpan(0, end), out var last, out var consumed);
            if (last.Value == 0x10FFFF)
            {
                // No code point follows U+10FFFF: drop it and increment the one before.
                end -= consumed;
                continue;
            }

            var next = last.Value == 0xD7FF ? 0xE000 : last.Value + 1; // skip the surrogate range
            return string.Concat(prefix.AsSpan(0, end - consumed), new Rune(next).ToString());
        }

        return null;
    }

    private static string Describe(long version) =>
        version == StoreVersion.Absent ? "0 (absent)" : version.ToString(CultureInfo.InvariantCulture);

    private static void ValidateText(string text, string? paramName)
    {
        if (text.Contains('\0', StringComparison.Ordinal))
        {
            throw new ArgumentException("A store key or prefix must not contain NUL characters.", paramName);
        }

        var span = text.AsSpan();
        if (span.IndexOfAnyInRange('\uD800', '\uDFFF') < 0)
        {
            return;
        }

        while (!span.IsEmpty)
        {
            if (Rune.DecodeFromUtf16(span, out _, out var consumed) != System.Buffers.OperationStatus.Done)
            {
                throw new ArgumentException("A store key or prefix must be well-formed UTF-16 (no lone surrogates).", paramName);
            }

            span = span[consumed..];
        }
    }
}
