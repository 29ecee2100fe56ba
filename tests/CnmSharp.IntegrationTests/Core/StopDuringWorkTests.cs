using CnmSharp.Store;
using CnmSharp.TestHost;
using CnmSharp.Testing;

namespace CnmSharp.IntegrationTests.Core;

/// <summary>
/// A controller stopped at a random moment while 8 workers join and leave; after each restart on the same store,
/// every joined endpoint's interface is in its sandbox with its address, and no interface is there that no endpoint
/// names (<see cref="StopInvariants"/>). The SIGKILL half, with the controller in a child process, is
/// <see cref="KillDuringWorkTests"/>.
/// </summary>
[RequiresRoot]
[NonParallelizable]
public sealed class StopDuringWorkTests
{
    private const int Rounds = 20;

    [Test]
    public async Task A_controller_disposed_at_random_moments_while_8_workers_join_and_leave_is_consistent_after_each_restart()
    {
        await using var host = await TestHostNamespace.CreateAsync();
        var temp = Directory.CreateTempSubdirectory("cnmstop-").FullName;
        await using var store = new InMemoryKeyValueStore();
        var random = new Random(20260);
        var failures = new List<string>();
        try
        {
            for (var round = 0; round < Rounds; round++)
            {
                var controller = await BuildAsync(host, temp, store);
                var network = await StopWork.EnsureNetworkAsync(controller);
                if (round > 0)
                {
                    failures.AddRange(await StopInvariants.FindAsync(controller, store, host.Path, round));
                }

                using var stop = new CancellationTokenSource();
                var workers = Enumerable.Range(0, StopWork.Workers).Select(w => Task.Run(() => StopWork.WorkAsync(controller, network, w, null, stop.Token))).ToArray();
                await Task.Delay(random.Next(20, 400));
                await controller.DisposeAsync();
                await stop.CancelAsync();
                await Task.WhenAll(workers);
            }

            var last = await BuildAsync(host, temp, store);
            failures.AddRange(await StopInvariants.FindAsync(last, store, host.Path, Rounds));
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
            await StopInvariants.UnmountSandboxesAsync(Path.Combine(temp, "run"));
            Directory.Delete(temp, recursive: true);
        }

        Assert.That(failures, Is.Empty);
    }

    private static ValueTask<NetworkController> BuildAsync(TestHostNamespace host, string temp, IKeyValueStore store) =>
        StopWork.BuildAsync(host.Path, Path.Combine(temp, "state"), Path.Combine(temp, "run"), store);
}
