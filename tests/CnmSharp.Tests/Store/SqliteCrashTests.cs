using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using System.Text;
using CnmSharp.Store;
using CnmSharp.Testing;

namespace CnmSharp.Tests.Store;

/// <summary>
/// Kills a process that is writing atomic multi-key commits (CnmSharp.StoreCrashWriter) with SIGKILL at a random point,
/// several times, and checks after each kill that the file opens, that every commit is all-or-nothing, that the
/// revision counter agrees with the records, and that no acknowledged commit was lost.
/// </summary>
[TestFixture]
public sealed class SqliteCrashTests
{
    private const int Pairs = 16;
    private static readonly TimeSpan LineTimeout = TimeSpan.FromSeconds(60);
    private TempDirectory _directory = null!;

    [SetUp]
    public void CreateDirectory() => _directory = new TempDirectory();

    [TearDown]
    public void DeleteDirectory() => _directory.Dispose();

    [TestCase(SqliteDurability.ProcessCrash)]
    [TestCase(SqliteDurability.PowerLoss)]
    [TestCase(SqliteDurability.Tiered)]
    public async Task A_writer_killed_mid_commit_leaves_whole_commits_and_loses_no_acknowledged_one(SqliteDurability durability)
    {
        var writer = HelperProgram.Locate(typeof(SqliteCrashTests).Assembly, "CnmSharp.StoreCrashWriter");
        var path = _directory.File("crash.db");
        var random = new Random(11 + (2 * (int)durability));
        long acknowledged = 0;

        var clock = Stopwatch.StartNew();
        for (var round = 0; round < 3; round++)
        {
            var target = acknowledged + 150 + random.Next(150);
            var (started, lastAcknowledged, stderr) = await RunAndKill(writer, path, durability, target, TimeSpan.FromMilliseconds(random.Next(0, 40)));
            TestContext.Out.WriteLine($"round {round}: killed at {clock.ElapsedMilliseconds} ms");

            Assert.That(started, Is.InRange(acknowledged, acknowledged + 1), $"round {round}: the writer resumed from the last commit");
            Assert.That(lastAcknowledged, Is.GreaterThanOrEqualTo(target), $"round {round}: stderr: {stderr}");

            var stored = await VerifyThroughStore(path);
            Assert.That(stored, Is.InRange(lastAcknowledged, lastAcknowledged + 1), $"round {round}: every acknowledged commit survived, at most one more committed before the kill");
            VerifyRaw(path, stored);
            TestContext.Out.WriteLine($"round {round}: acknowledged {lastAcknowledged}, stored {stored}, at {clock.ElapsedMilliseconds} ms");
            acknowledged = stored;
        }
    }

    private static async Task<(long Started, long LastAcknowledged, string Stderr)> RunAndKill(
        string writer, string path, SqliteDurability durability, long target, TimeSpan extra)
    {
        var start = new ProcessStartInfo(HelperProgram.DotnetHost())
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(writer);
        start.ArgumentList.Add(path);
        start.ArgumentList.Add(durability.ToString());

        using var process = Process.Start(start) ?? throw new InvalidOperationException("cannot start the crash writer");
        var stderr = process.StandardError.ReadToEndAsync();
        try
        {
            var output = process.StandardOutput;
            var first = await output.ReadLineAsync().WaitAsync(LineTimeout);
            if (first is null || !first.StartsWith("start ", StringComparison.Ordinal))
            {
                Assert.Fail($"the crash writer did not start: '{first}', stderr: {await stderr.WaitAsync(LineTimeout)}");
            }

            var started = long.Parse(first!.AsSpan(6), CultureInfo.InvariantCulture);
            var last = started;
            while (last < target)
            {
                var line = await output.ReadLineAsync().WaitAsync(LineTimeout);
                if (line is null)
                {
                    Assert.Fail($"the crash writer stopped at {last}: {await stderr.WaitAsync(LineTimeout)}");
                }

                last = long.Parse(line!, CultureInfo.InvariantCulture);
            }

            // Keep draining (so the writer never blocks on a full pipe) while it goes on writing, then kill it.
            var drain = Task.Run(async () =>
            {
                var highest = last;
                while (await output.ReadLineAsync() is { } line)
                {
                    highest = long.Parse(line, CultureInfo.InvariantCulture);
                }

                return highest;
            });
            await Task.Delay(extra);
            process.Kill(); // SIGKILL
            await process.WaitForExitAsync().WaitAsync(LineTimeout);
            var highest = await drain.WaitAsync(LineTimeout); // lines printed before the kill were acknowledged commits
            return (started, highest, await stderr.WaitAsync(LineTimeout));
        }
        finally
        {
            if (!process.HasExited)
            {
                process.Kill();
                await process.WaitForExitAsync();
            }
        }
    }

    private static async Task<long> VerifyThroughStore(string path)
    {
        await using var store = await SqliteKeyValueStore.OpenAsync(new SqliteStoreOptions { Path = path });
        var pairs = await store.ListAsync("crash/pair/");
        Assert.That(pairs, Has.Count.EqualTo(2 * Math.Min(Pairs, pairs.Count / 2)));
        for (var i = 0; i < pairs.Count; i += 2)
        {
            Assert.That(pairs[i].Key, Does.EndWith("/a"));
            Assert.That(pairs[i + 1].Key, Is.EqualTo(pairs[i].Key[..^1] + "b"));
            Assert.That(pairs[i + 1].Value.Span.SequenceEqual(pairs[i].Value.Span), Is.True, $"{pairs[i].Key}: both keys of a commit hold the same value");
            Assert.That(pairs[i + 1].Version, Is.EqualTo(pairs[i].Version), $"{pairs[i].Key}: both keys of a commit have the same version");
        }

        var last = await store.GetAsync("crash/last");
        Assert.That(last, Is.Not.Null);
        return Number(last!.Value.Span);
    }

    private static void VerifyRaw(string path, long stored)
    {
        using var connection = SqliteKeyValueStoreTests.Raw(path);
        Assert.That(SqliteKeyValueStoreTests.Scalar(connection, "PRAGMA integrity_check"), Is.EqualTo("ok"));
        var revision = (long)SqliteKeyValueStoreTests.Scalar(connection, "SELECT revision FROM meta WHERE id = 1")!;
        var highest = (long)SqliteKeyValueStoreTests.Scalar(connection, "SELECT max(version) FROM kv")!;
        var lastVersion = (long)SqliteKeyValueStoreTests.Scalar(connection, "SELECT version FROM kv WHERE key = 'crash/last'")!;

        Assert.That(highest, Is.EqualTo(revision), "the writer only puts, so the newest record carries the current revision");
        Assert.That(lastVersion, Is.EqualTo(revision));

        using var command = connection.CreateCommand();
        command.CommandText = "SELECT key, value, version FROM kv WHERE key LIKE 'crash/pair/%' ORDER BY key";
        using var reader = command.ExecuteReader();
        var numbers = new List<long>();
        while (reader.Read())
        {
            var key = reader.GetString(0);
            var number = Number(reader.GetFieldValue<byte[]>(1));
            var pair = int.Parse(key.AsSpan("crash/pair/".Length, 2), CultureInfo.InvariantCulture);
            Assert.That(number % Pairs, Is.EqualTo(pair), $"{key} holds commit {number}, which wrote another pair");
            numbers.Add(number);
        }

        Assert.That(numbers.Max(), Is.EqualTo(stored), "crash/last was written by the newest commit");
    }

    private static long Number(ReadOnlySpan<byte> value)
    {
        var space = value.IndexOf((byte)' ');
        return long.Parse(Encoding.ASCII.GetString(space < 0 ? value : value[..space]), CultureInfo.InvariantCulture);
    }
}
