using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using System.Text;
using CnmSharp.Store;
using CnmSharp.TestHost;
using CnmSharp.Testing;

namespace CnmSharp.IntegrationTests.Core;

/// <summary>
/// The SIGKILL half of the stop test: a controller in a child process (CnmSharp.TestHost) with 8 workers joining and
/// leaving (and now and then deleting and re-creating sandboxes and endpoints) is killed with SIGKILL at a random
/// moment; a new controller started in the test process on the same state, run directory and host namespace (its
/// start recovers) must then be consistent (<see cref="StopInvariants"/>), 20 rounds. The seed is printed; set
/// <c>CNM_KILLTEST_SEED</c> to replay one.
/// </summary>
[RequiresRoot]
[NonParallelizable]
public sealed class KillDuringWorkTests
{
    private const int Rounds = 20;
    private static readonly TimeSpan Budget = TimeSpan.FromMinutes(2);

    [Test]
    public async Task A_controller_process_killed_at_random_moments_while_8_workers_join_and_leave_is_consistent_after_each_restart()
    {
        var testHost = HelperProgram.Locate(typeof(KillDuringWorkTests).Assembly, "CnmSharp.TestHost");
        var seed = Environment.GetEnvironmentVariable("CNM_KILLTEST_SEED") is { Length: > 0 } s
            ? int.Parse(s, CultureInfo.InvariantCulture)
            : Random.Shared.Next();
        TestContext.Out.WriteLine($"seed {seed} (CNM_KILLTEST_SEED={seed} replays it)");
        var random = new Random(seed);
        using var deadline = new CancellationTokenSource(Budget);

        await using var host = await TestHostNamespace.CreateAsync();
        var temp = Directory.CreateTempSubdirectory("cnmkill-").FullName;
        var state = Path.Combine(temp, "state");
        var run = Path.Combine(temp, "run");
        var failures = new List<string>();
        var operations = 0;
        var clock = Stopwatch.StartNew();
        try
        {
            // A loaded machine (CI runs test projects in parallel on 2 cores) may complete nothing in 400 ms: after a
            // round with no completed operation the window doubles (up to 8 times), so the kills still land in work.
            var scale = 1;
            for (var round = 0; round < Rounds; round++)
            {
                var work = random.Next(50, 401) * scale;
                var (done, workerErrors, childStderr) = await RunAndKillAsync(testHost, state, run, host.Path, seed + round, TimeSpan.FromMilliseconds(work), deadline.Token);

                var controller = await StopWork.BuildAsync(host.Path, state, run, store: null);
                try
                {
                    await controller.WaitForTeardownsAsync(deadline.Token);
                    await using var store = await SqliteKeyValueStore.OpenAsync(new SqliteStoreOptions { Path = Path.Combine(state, "cnm.db") }, deadline.Token);
                    var found = await StopInvariants.FindAsync(controller, store, host.Path, round);
                    var joined = controller.Sandboxes.Sum(x => x.Endpoints.Count);
                    operations += done;
                    scale = done == 0 ? Math.Min(scale * 2, 8) : scale;
                    TestContext.Out.WriteLine(
                        $"round {round}: killed after {work} ms of work and {done} completed operations; {controller.Sandboxes.Count} sandboxes, {joined} joined endpoints; " +
                        $"{workerErrors} worker errors in the child; {found.Count} inconsistencies; at {clock.ElapsedMilliseconds} ms");
                    if (found.Count > 0 && childStderr.Length > 0)
                    {
                        TestContext.Out.WriteLine($"round {round}: child stderr (last part): {childStderr[Math.Max(0, childStderr.Length - 2000)..]}");
                    }

                    failures.AddRange(found);
                }
                finally
                {
                    await controller.DisposeAsync();
                }
            }

            var last = await StopWork.BuildAsync(host.Path, state, run, store: null);
            foreach (var sandbox in last.Sandboxes.ToArray())
            {
                await sandbox.DeleteAsync();
            }

            await last.WaitForTeardownsAsync();
            await last.DisposeAsync();
        }
        finally
        {
            // Sandbox namespaces a failed round left mounted go first, or the directory cannot be deleted.
            await StopInvariants.UnmountSandboxesAsync(run);
            Directory.Delete(temp, recursive: true);
        }

        Assert.Multiple(() =>
        {
            Assert.That(failures, Is.Empty);
            Assert.That(operations, Is.GreaterThan(Rounds), "the children worked before they were killed");
        });
    }

    /// <summary>Starts the test host, waits for "ready", lets it work, kills it (SIGKILL, this very process only) and
    /// waits for it to exit. Returns how many operations completed and how many worker errors it reported, and its
    /// stderr.</summary>
    private static async Task<(int Operations, int WorkerErrors, string Stderr)> RunAndKillAsync(
        string testHost, string state, string run, string hostNamespacePath, int seed, TimeSpan work, CancellationToken deadline)
    {
        var start = new ProcessStartInfo(HelperProgram.DotnetHost())
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(testHost);
        start.ArgumentList.Add(state);
        start.ArgumentList.Add(run);
        start.ArgumentList.Add(hostNamespacePath);
        start.ArgumentList.Add(seed.ToString(CultureInfo.InvariantCulture));

        using var process = Process.Start(start) ?? throw new InvalidOperationException("cannot start the test host");
        var stderr = new StringBuilder();
        var errors = 0;
        var operations = 0;
        var drainErrors = Task.Run(async () =>
        {
            while (await process.StandardError.ReadLineAsync(CancellationToken.None) is { } line)
            {
                if (line.StartsWith("worker ", StringComparison.Ordinal))
                {
                    errors++;
                }

                lock (stderr)
                {
                    if (stderr.Length < 1_000_000)
                    {
                        stderr.AppendLine(line);
                    }
                }
            }
        }, CancellationToken.None);
        try
        {
            string? first;
            try
            {
                first = await process.StandardOutput.ReadLineAsync(deadline);
            }
            catch (OperationCanceledException)
            {
                first = "(no line within the test's time budget)";
            }

            if (first != "ready")
            {
                process.Kill();
                await process.WaitForExitAsync(CancellationToken.None);
                await drainErrors;
                Assert.Fail($"the test host did not start: '{first}', stderr: {stderr}");
            }

            // Count the operations (and keep the pipe drained) while the child works, then kill it.
            var drainOutput = Task.Run(
                async () =>
                {
                    var count = 0;
                    while (await process.StandardOutput.ReadLineAsync(CancellationToken.None) is not null)
                    {
                        count++;
                    }

                    return count;
                },
                CancellationToken.None);
            await Task.Delay(work, CancellationToken.None);
            process.Kill(); // SIGKILL
            await process.WaitForExitAsync(CancellationToken.None);
            operations = await drainOutput;
        }
        finally
        {
            if (!process.HasExited)
            {
                process.Kill(); // SIGKILL
                await process.WaitForExitAsync(CancellationToken.None);
            }
        }

        await drainErrors;
        return (operations, errors, stderr.ToString());
    }
}
