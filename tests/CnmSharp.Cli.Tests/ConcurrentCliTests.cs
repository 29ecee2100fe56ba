using System.Collections.Concurrent;
using System.Globalization;
using System.Security.Cryptography;
using CnmSharp.Testing;

namespace CnmSharp.Cli.Tests;

/// <summary>
/// Many <c>cnm</c> processes on one state directory at once (issue 9): batches of processes started together, with
/// and without a long-lived library controller working beside them, and with processes SIGKILLed at random moments.
/// Each test has its own private host namespace, state and run directories (<see cref="CliLab"/>); the checks are
/// those of <see cref="StateInvariants"/>.
/// </summary>
[TestFixture]
[RequiresRoot]
[NonParallelizable]
public sealed class ConcurrentCliTests
{
    /// <summary>The longest one batch may take (the tests' whole runtime stays far below it).</summary>
    private static readonly TimeSpan BatchTimeout = TimeSpan.FromSeconds(120);

    private CliLab _lab = null!;

    [SetUp]
    public async Task SetUp() => _lab = await CliLab.CreateAsync();

    [TearDown]
    public async Task TearDown() => await _lab.DisposeAsync();

    [Test]
    public async Task Parallel_cnm_processes_on_one_state_hand_out_nothing_twice_and_leave_only_the_defaults()
    {
        var scenario = new BatchScenario(_lab, library: null);
        await scenario.RunAsync();
    }

    [Test]
    public async Task Parallel_cnm_processes_beside_a_long_lived_library_controller()
    {
        using var library = new LibraryLoad(_lab);
        var scenario = new BatchScenario(_lab, library);
        await scenario.RunAsync();
    }

    [Test]
    public async Task Cnm_processes_killed_at_random_moments_leave_a_state_the_next_command_makes_consistent()
    {
        var seed = int.TryParse(Environment.GetEnvironmentVariable("CNM_KILL_SEED"), CultureInfo.InvariantCulture, out var s)
            ? s
            : RandomNumberGenerator.GetInt32(int.MaxValue);
        await TestContext.Progress.WriteLineAsync($"kill test: seed {seed} (CNM_KILL_SEED={seed} repeats its choices)");
        var scenario = new KillScenario(_lab, new Random(seed));
        var failures = await scenario.RunAsync();
        if (failures.Count > 0)
        {
            Assert.Fail($"seed {seed}: {failures.Count} failure(s):\n" + string.Join("\n", failures));
        }
    }

    /// <summary>
    /// Three networks, 8 sandboxes each connected to one of them (all must succeed); then two rounds of mixed
    /// commands started at once (connect, disconnect, sandbox rm, network create and rm, sandbox create; each object
    /// touched by at most one command of a round, so none depends on another) of which about 40% are SIGKILLed at
    /// a random moment within the first 4 s. Every process not killed must exit 0; after each round one more
    /// <c>cnm network ls</c> (which recovers) must exit 0 and the invariants must hold. At the end everything is
    /// removed and the host namespace must hold what the default networks hold.
    /// </summary>
    private sealed class KillScenario(CliLab lab, Random rng)
    {
        private const int Rounds = 2;
        private readonly List<string> _failures = [];

        public async Task<List<string>> RunAsync()
        {
            var first = await lab.CnmAsync("network", "ls");
            Assert.That(first.ExitCode, Is.Zero, "the first cnm command (creates the default networks): " + first);
            var baseline = await HostSnapshot.TakeAsync(lab.Host.Path);

            var networks = Enumerable.Range(0, 3).Select(i => $"k{i}-{lab.Suffix}").ToArray();
            var containers = Enumerable.Range(0, 8).Select(i => $"kc{i}-{lab.Suffix}").ToArray();
            await SetupBatchAsync("network create", [
                ["network", "create", "--subnet", "10.170.0.0/24", networks[0]],
                ["network", "create", networks[1]],
                ["network", "create", "--subnet", "10.170.2.0/24", networks[2]]]);
            await SetupBatchAsync("sandbox create", [.. containers.Select(c => new[] { "sandbox", "create", c })]);
            await SetupBatchAsync("network connect", [.. containers.Select((c, i) => new[] { "network", "connect", networks[i % 3], c })]);

            for (var round = 1; round <= Rounds; round++)
            {
                var view = await StoreView.ReadAsync(lab);
                var commands = PlanRound(view, round);
                var results = await RunWithKillsAsync(commands);
                var killed = results.Count(r => r.Process.Killed);
                var survivors = results.Where(r => !r.Process.Killed).ToList();
                await TestContext.Progress.WriteLineAsync($"kill test: round {round}: {commands.Count} processes, {killed} killed");
                var failed = CliLab.DescribeFailures(survivors);
                if (failed.Length > 0)
                {
                    _failures.Add($"round {round}: processes that were not killed: {failed}");
                }

                var recover = await lab.CnmAsync("network", "ls");
                await TestContext.Progress.WriteLineAsync($"kill test: round {round}: cnm network ls after the kills: exit {recover.ExitCode}\n{recover.StdErr.TrimEnd()}");
                if (recover.ExitCode != 0)
                {
                    _failures.Add($"round {round}: cnm network ls after the kills: {recover}");
                    return _failures;
                }

                var after = await StoreView.ReadAsync(lab);
                var violations = await StateInvariants.CheckAsync(lab, after);
                if (violations.Count > 0)
                {
                    _failures.Add($"round {round}: after recovery, {violations.Count} invariant violation(s):\n  " + string.Join("\n  ", violations));
                }
            }

            await RemoveEverythingAsync();
            _failures.AddRange((await StateInvariants.OnlyDefaultsProblemsAsync(lab, baseline)).Select(p => "after removing everything: " + p));
            return _failures;
        }

        private async Task SetupBatchAsync(string what, IReadOnlyList<string[]> commands)
        {
            var results = await lab.RunBatchAsync(commands, BatchTimeout);
            var failed = CliLab.DescribeFailures(results);
            Assert.That(failed, Is.Empty, $"setup batch {what} (no process killed yet)");
        }

        /// <summary>One command per sandbox (connect to a network it is not on, disconnect from one it is joined to,
        /// rm, or nothing), the removal of at most one empty network that no other command names, two network creates
        /// (one with --subnet), three sandbox creates.</summary>
        private List<string[]> PlanRound(StoreView view, int round)
        {
            var targets = view.Networks.Where(n => n.Driver == "bridge" && n.Name != "bridge").OrderBy(n => n.Name, StringComparer.Ordinal).ToList();
            var empty = targets.Where(n => n.Endpoints.Count == 0).ToList();
            var removed = empty.Count > 0 && rng.Next(2) == 0 ? empty[rng.Next(empty.Count)] : null;
            var connectable = targets.Where(n => n != removed).ToList();
            var commands = new List<string[]>();
            if (removed is not null)
            {
                commands.Add(["network", "rm", removed.Name]);
            }

            foreach (var sandbox in view.Sandboxes.OrderBy(x => x.ContainerId, StringComparer.Ordinal))
            {
                var c = sandbox.ContainerId;
                var off = connectable.Where(n => n.Endpoints.All(e => e.Name != c)).ToList();
                var joined = connectable.Where(n => n.Endpoints.Any(e => e.Name == c && e.Joined)).ToList();
                var pick = rng.Next(10);
                if (pick < 5 && off.Count > 0)
                {
                    commands.Add(["network", "connect", off[rng.Next(off.Count)].Name, c]);
                }
                else if (pick < 8 && joined.Count > 0)
                {
                    commands.Add(["network", "disconnect", joined[rng.Next(joined.Count)].Name, c]);
                }
                else if (pick < 9)
                {
                    commands.Add(["sandbox", "rm", c]);
                }
            }

            var r = round.ToString(CultureInfo.InvariantCulture);
            commands.Add(["network", "create", "--subnet", $"10.171.{r}.0/24", $"r{r}a-{lab.Suffix}"]);
            commands.Add(["network", "create", $"r{r}b-{lab.Suffix}"]);
            commands.AddRange(Enumerable.Range(0, 3).Select(k => new[] { "sandbox", "create", $"r{r}c{k}-{lab.Suffix}" }));
            return commands;
        }

        /// <summary>Starts all at once; about 40% get a SIGKILL (by PID) at a random moment in [0.2 s, 4 s).</summary>
        private async Task<IReadOnlyList<BatchResult>> RunWithKillsAsync(List<string[]> commands)
        {
            var delays = commands.Select(_ => rng.NextDouble() < 0.4 ? TimeSpan.FromMilliseconds(200 + rng.Next(3800)) : (TimeSpan?)null).ToList();
            var started = commands.Select(lab.Start).ToList();
            var kills = started.Select(async (p, i) =>
            {
                if (delays[i] is { } delay)
                {
                    await Task.Delay(delay);
                    p.Kill();
                }
            }).ToList();
            var results = await Task.WhenAll(started.Select(p => CliLab.WaitOrTimeOutAsync(p, BatchTimeout)));
            await Task.WhenAll(kills);
            return [.. commands.Select((c, i) => new BatchResult(c, started[i], results[i]))];
        }

        /// <summary>Removes every sandbox and non-default network through cnm; an endpoint a killed connect created
        /// but never joined (the CLI has no command for it) is deleted through a library controller.</summary>
        private async Task RemoveEverythingAsync()
        {
            var view = await StoreView.ReadAsync(lab);
            if (view.Sandboxes.Count > 0)
            {
                var rm = await lab.CnmAsync(["sandbox", "rm", .. view.Sandboxes.Select(x => x.ContainerId)]);
                if (rm.ExitCode != 0)
                {
                    _failures.Add("cnm sandbox rm (everything): " + rm);
                }
            }

            var unjoined = view.Networks.SelectMany(n => n.Endpoints.Where(e => !e.Joined)).ToList();
            if (unjoined.Count > 0)
            {
                await TestContext.Progress.WriteLineAsync($"kill test: {unjoined.Count} endpoint(s) never joined (a connect killed between create and join): {string.Join(", ", unjoined.Select(e => e.Name))}");
                await using var controller = await lab.OpenControllerAsync();
                foreach (var e in unjoined)
                {
                    var endpoint = controller.FindNetworkById(e.NetworkId)?.Endpoints.FirstOrDefault(x => x.Id == e.Id);
                    if (endpoint is not null)
                    {
                        await endpoint.DeleteAsync(force: true);
                    }
                }
            }

            var names = view.Networks.Select(n => n.Name).Where(n => n is not ("bridge" or "host" or "none")).ToList();
            if (names.Count > 0)
            {
                var rm = await lab.CnmAsync(["network", "rm", .. names]);
                if (rm.ExitCode != 0)
                {
                    _failures.Add("cnm network rm (everything): " + rm);
                }
            }
        }
    }

    /// <summary>
    /// The batches of issue 9: 6 <c>network create</c> (half with <c>--subnet</c>, half chosen by IPAM), 16
    /// <c>sandbox create</c>, 32 <c>network connect</c> (16 on one network), 16 <c>network disconnect</c>, 16
    /// <c>sandbox rm</c>, 6 <c>network rm</c>; each batch started at once. With a <see cref="LibraryLoad"/>, its
    /// workers run during every batch and stop before each check.
    /// </summary>
    private sealed class BatchScenario(CliLab lab, LibraryLoad? library)
    {
        private const int Sandboxes = 16;

        private readonly List<string> _failures = [];

        public async Task RunAsync()
        {
            var first = await lab.CnmAsync("network", "ls");
            Assert.That(first.ExitCode, Is.Zero, "the first cnm command (creates the default networks): " + first);
            var baseline = await HostSnapshot.TakeAsync(lab.Host.Path);

            var networks = Enumerable.Range(0, 6).Select(i => $"n{i}-{lab.Suffix}").ToArray();
            var containers = Enumerable.Range(0, Sandboxes).Select(i => $"c{i}-{lab.Suffix}").ToArray();
            string Other(int i) => networks[1 + (i % 5)];

            if (library is not null)
            {
                await library.StartAsync();
            }

            // 1. 6 network create: n0, n2, n4 with --subnet (n4 with its gateway at the top), n1, n3, n5 chosen by IPAM.
            await BatchAsync("network create", networks.Select((n, i) => i switch
            {
                0 => new[] { "network", "create", "--subnet", "10.150.0.0/24", n },
                2 => ["network", "create", "--subnet", "10.150.2.0/24", n],
                4 => ["network", "create", "--subnet", "10.150.4.0/24", "--gateway", "10.150.4.254", n],
                _ => ["network", "create", n],
            }).ToList());
            if (library is not null)
            {
                await library.AfterNetworksCreatedAsync(networks[0], _failures);
            }

            var view = await CheckAsync("after network create");
            Expect(networks.All(n => view.Networks.Any(x => x.Name == n)), $"all 6 networks exist (found {string.Join(", ", view.Networks.Select(n => n.Name))})");

            // 2. 16 sandbox create.
            await BatchAsync("sandbox create", containers.Select((c, i) => new[] { "sandbox", "create", "--hostname", $"h{i}", c }).ToList());
            view = await CheckAsync("after sandbox create");
            Expect(containers.All(c => view.Sandboxes.Any(s => s.ContainerId == c)), "all 16 sandboxes exist");

            // 3. 32 network connect: every sandbox to n0, and each to one of n1..n5.
            await BatchAsync("network connect", [
                .. containers.Select(c => new[] { "network", "connect", networks[0], c }),
                .. containers.Select((c, i) => new[] { "network", "connect", Other(i), c })]);
            view = await CheckAsync("after network connect");
            Expect(view.Networks.FirstOrDefault(n => n.Name == networks[0])?.Endpoints.Count(e => containers.Contains(e.Name)) == Sandboxes, $"{networks[0]} has the 16 CLI endpoints");
            Expect(containers.All(c => view.Sandboxes.FirstOrDefault(s => s.ContainerId == c)?.Endpoints.Count == 2), "every CLI sandbox has 2 endpoints");

            // 4. 16 network disconnect: even sandboxes leave n0, odd ones leave their other network.
            await BatchAsync("network disconnect", containers.Select((c, i) => new[] { "network", "disconnect", i % 2 == 0 ? networks[0] : Other(i), c }).ToList());
            view = await CheckAsync("after network disconnect");
            Expect(containers.All(c => view.Sandboxes.FirstOrDefault(s => s.ContainerId == c)?.Endpoints.Count == 1), "every CLI sandbox has 1 endpoint");

            // 5. 16 sandbox rm.
            await BatchAsync("sandbox rm", containers.Select(c => new[] { "sandbox", "rm", c }).ToList());
            view = await CheckAsync("after sandbox rm");
            Expect(view.Sandboxes.All(s => !containers.Contains(s.ContainerId)), "no CLI sandbox is left");

            // 6. 6 network rm (the library's sandboxes left the CLI network before).
            if (library is not null)
            {
                await library.LeaveCliNetworkAsync();
            }

            await BatchAsync("network rm", networks.Select(n => new[] { "network", "rm", n }).ToList());
            if (library is not null)
            {
                await library.RemoveEverythingAsync();
                _failures.AddRange(library.Failures);
            }

            _failures.AddRange((await StateInvariants.OnlyDefaultsProblemsAsync(lab, baseline)).Select(p => "after network rm: " + p));
            if (_failures.Count > 0)
            {
                Assert.Fail($"{_failures.Count} failure(s):\n" + string.Join("\n", _failures));
            }
        }

        private async Task BatchAsync(string what, IReadOnlyList<string[]> commands)
        {
            if (library is not null)
            {
                library.Resume();
            }

            IReadOnlyList<BatchResult> results;
            var clock = System.Diagnostics.Stopwatch.StartNew();
            try
            {
                results = await lab.RunBatchAsync(commands, BatchTimeout);
                await TestContext.Progress.WriteLineAsync($"batch {what}: {commands.Count} processes, {results.Count(r => r.Result.ExitCode == 0)} exit 0, {clock.Elapsed.TotalSeconds:F1} s");
            }
            finally
            {
                if (library is not null)
                {
                    await library.PauseAsync();
                }
            }

            var failures = CliLab.DescribeFailures(results);
            if (failures.Length > 0)
            {
                _failures.Add($"batch {what} ({commands.Count} processes): {failures}");
            }

            if (results.Any(r => r.Result.ExitCode == CliLab.TimedOutExitCode))
            {
                // More batches would only wait as long again: stop here with what is known.
                Assert.Fail($"batch {what}: processes did not finish within {BatchTimeout}; stopped.\n" + string.Join("\n", _failures));
            }
        }

        private async Task<StoreView> CheckAsync(string when)
        {
            var view = await StoreView.ReadAsync(lab);
            var violations = await StateInvariants.CheckAsync(lab, view);
            if (violations.Count > 0)
            {
                _failures.Add($"{when}: {violations.Count} invariant violation(s):\n  " + string.Join("\n  ", violations));
            }

            return view;
        }

        private void Expect(bool condition, string what)
        {
            if (!condition)
            {
                _failures.Add("expected: " + what);
            }
        }
    }
}

/// <summary>
/// A library controller in the test process on the CLI's state directory, run directory and host namespace, with a
/// few workers that create sandboxes, join them to the library's own networks (and to a network the CLI created),
/// delete their oldest sandboxes and create and delete networks, while the CLI batches run. Paused before every check
/// so that the state is quiet; its live objects are checked with the CLI's.
/// </summary>
internal sealed class LibraryLoad(CliLab lab) : IDisposable
{
    private const int Workers = 3;
    private const int HeldPerWorker = 2;

    private readonly ConcurrentQueue<string> _failures = new();
    private readonly List<Sandbox>[] _held = [.. Enumerable.Range(0, Workers).Select(_ => new List<Sandbox>())];
    private NetworkController _controller = null!;
    private Network[] _own = [];
    private volatile Network? _cliNetwork;
    private CancellationTokenSource? _run;
    private Task[] _workers = [];
    private int _counter;

    /// <summary>What failed in the library's work: the first 10 in full, then how many more.</summary>
    public IEnumerable<string> Failures =>
        [.. _failures.Take(10).Select(f => "library: " + f), .. _failures.Count > 10 ? [$"library: and {_failures.Count - 10} more failures"] : Array.Empty<string>()];

    /// <summary>Builds the controller (after the first <c>cnm</c> command made the defaults).</summary>
    public async Task StartAsync()
    {
        _controller = await lab.OpenControllerAsync();
    }

    /// <summary>Starts the workers. The first time, they begin by creating the library's two networks (one with a
    /// given subnet, one chosen by IPAM), at the same time as the CLI creates its own.</summary>
    public void Resume()
    {
        _run = new CancellationTokenSource();
        var token = _run.Token;
        _workers = [.. Enumerable.Range(0, Workers).Select(w => Task.Run(() => WorkAsync(w, token)))];
    }

    /// <summary>Stops the workers after their current step.</summary>
    public async Task PauseAsync()
    {
        await _run!.CancelAsync();
        await Task.WhenAll(_workers);
        _run.Dispose();
        _run = null;
    }

    public void Dispose() => _run?.Dispose();

    /// <summary>Checks that the library sees what the CLI created: a name the CLI took is refused with a conflict, the
    /// CLI's network is found by name after a refresh, and the CLI refuses a name the library took.</summary>
    public async Task AfterNetworksCreatedAsync(string cliNetworkName, List<string> failures)
    {
        if (_own.Length == 0)
        {
            failures.Add("library: its own networks were not created");
            return;
        }

        try
        {
            var dup = await _controller.CreateNetworkAsync(cliNetworkName, "bridge");
            failures.Add($"library: creating network {cliNetworkName}, a name the CLI took, succeeded (id {dup.Id[..12]})");
            await dup.DeleteAsync();
        }
        catch (CnmConflictException)
        {
            // Expected: the name is taken.
        }
        catch (CnmException ex)
        {
            failures.Add($"library: creating network {cliNetworkName}, a name the CLI took, failed with {ex.GetType().Name} instead of a conflict: {ex.Message}");
        }

        await _controller.RefreshAsync();
        _cliNetwork = _controller.FindNetworkByName(cliNetworkName);
        if (_cliNetwork is null)
        {
            failures.Add($"library: does not find the CLI's network {cliNetworkName} by name after a refresh");
        }

        var taken = await lab.CnmAsync("network", "create", _own[0].Name);
        if (taken.ExitCode != 1 || !taken.StdErr.Contains(_own[0].Name, StringComparison.Ordinal))
        {
            failures.Add($"cnm network create {_own[0].Name} (a name the library took): expected exit 1 naming it, got {taken}");
        }
    }

    /// <summary>Deletes the library's sandboxes and stops joining the CLI's network (before the CLI removes it).</summary>
    public async Task LeaveCliNetworkAsync()
    {
        _cliNetwork = null;
        await DeleteHeldAsync();
    }

    /// <summary>Deletes all the library created.</summary>
    public async Task RemoveEverythingAsync()
    {
        await DeleteHeldAsync();
        foreach (var n in _own)
        {
            await Try($"delete network {n.Name}", () => n.DeleteAsync().AsTask());
        }

        await _controller.WaitForTeardownsAsync();
    }

    private async Task DeleteHeldAsync()
    {
        foreach (var held in _held)
        {
            foreach (var s in held)
            {
                await Try($"delete sandbox {s.ContainerId}", () => s.DeleteAsync().AsTask());
            }

            held.Clear();
        }
    }

    private async Task WorkAsync(int w, CancellationToken token)
    {
        if (_own.Length == 0)
        {
            if (w == 0)
            {
                var given = await Try("create network with --subnet", () => _controller.CreateNetworkAsync($"lib-a-{lab.Suffix}", "bridge",
                    new NetworkCreateOptions { IPv4Config = [new IpamConfig { Subnet = "10.160.0.0/24" }] }).AsTask());
                var chosen = await Try("create network chosen by IPAM", () => _controller.CreateNetworkAsync($"lib-b-{lab.Suffix}", "bridge").AsTask());
                _own = [.. new[] { given, chosen }.OfType<Network>()];
            }

            return;
        }

        var held = _held[w];
        while (!token.IsCancellationRequested)
        {
            var i = Interlocked.Increment(ref _counter);
            var name = $"lib{w}-{i.ToString(CultureInfo.InvariantCulture)}-{lab.Suffix}";
            if (i % 4 == 0)
            {
                // A network that comes and goes, its pool chosen by IPAM while the CLI's processes choose theirs.
                var temp = await Try($"create network {name}", () => _controller.CreateNetworkAsync("net" + name, "bridge").AsTask());
                if (temp is not null)
                {
                    await Try($"delete network net{name}", () => temp.DeleteAsync().AsTask());
                }

                continue;
            }

            var sandbox = await Try($"create sandbox {name}", () => _controller.CreateSandboxAsync(name).AsTask());
            if (sandbox is null)
            {
                continue;
            }

            held.Add(sandbox);
            await JoinAsync(_own[w % _own.Length], sandbox);
            if (_cliNetwork is { } cli)
            {
                await JoinAsync(cli, sandbox);
            }

            while (held.Count > HeldPerWorker)
            {
                var oldest = held[0];
                held.RemoveAt(0);
                await Try($"delete sandbox {oldest.ContainerId}", () => oldest.DeleteAsync().AsTask());
            }
        }
    }

    private async Task JoinAsync(Network network, Sandbox sandbox)
    {
        var endpoint = await Try($"create endpoint {sandbox.ContainerId} on {network.Name}", () => network.CreateEndpointAsync(sandbox.ContainerId).AsTask());
        if (endpoint is null)
        {
            return;
        }

        var joined = await Try($"join {sandbox.ContainerId} to {network.Name}", async () =>
        {
            await endpoint.JoinAsync(sandbox);
            return true;
        });
        if (!joined)
        {
            await Try($"delete endpoint {sandbox.ContainerId} on {network.Name}", () => endpoint.DeleteAsync(force: true).AsTask());
        }
    }

    private async Task<T?> Try<T>(string what, Func<Task<T>> action)
    {
        try
        {
            return await action();
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            _failures.Enqueue($"{what}: {ex.GetType().Name}: {ex.Message.ReplaceLineEndings(" ")}");
            return default;
        }
    }

    private Task Try(string what, Func<Task> action) => Try(what, async () =>
    {
        await action();
        return true;
    });
}
