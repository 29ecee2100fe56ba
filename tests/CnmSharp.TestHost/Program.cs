// A controller on the given state, with 8 workers joining and leaving (and now and then deleting and re-creating their
// sandboxes and endpoints), until it is killed. Prints "ready" on stdout once the controller has started and the
// workers run, then one line "op" after each operation that completed. Errors of a worker go to stderr and the worker starts again. Used by the SIGKILL stop test
// (tests/CnmSharp.IntegrationTests/Core/KillDuringWorkTests.cs). The runtimeconfig turns on
// CnmSharp.RequireExplicitHostNamespace (tests/Directory.Build.props), so it never acts in the root namespace.
using System.Globalization;
using CnmSharp;
using CnmSharp.TestHost;

// One-shot mode, used by the container-mode test (tests/CnmSharp.IntegrationTests/Sandboxes/ContainerModeIntegrationTests.cs):
// a controller in a second process deletes the sandbox of a container, then exits.
if (args is ["delete-sandbox", var deleteState, var deleteRun, var deleteHost, var deleteContainer])
{
    await using var once = await StopWork.BuildAsync(deleteHost, deleteState, deleteRun, store: null);
    var doomed = once.FindSandboxByContainerId(deleteContainer);
    if (doomed is null)
    {
        Console.Error.WriteLine($"no sandbox for container {deleteContainer}");
        return 1;
    }

    await doomed.DeleteAsync();
    await once.WaitForTeardownsAsync();
    Console.WriteLine("deleted");
    return 0;
}

if (args.Length != 4)
{
    Console.Error.WriteLine("usage: CnmSharp.TestHost <state directory> <run directory> <host namespace path> <seed>");
    return 2;
}

var seed = int.Parse(args[3], CultureInfo.InvariantCulture);
var controller = await StopWork.BuildAsync(args[2], args[0], args[1], store: null);
var network = await StopWork.EnsureNetworkAsync(controller);
var workers = Enumerable.Range(0, StopWork.Workers).Select(w => Task.Run(() => RunAsync(w))).ToArray();
Console.WriteLine("ready");
await Task.WhenAll(workers);
return 0;

async Task RunAsync(int worker)
{
    var random = new Random(seed * 31 + worker);
    while (true)
    {
        var error = await StopWork.WorkAsync(controller, network, worker, random, CancellationToken.None, () => Console.WriteLine("op"));
        await Console.Error.WriteLineAsync($"worker {worker}: {error?.GetType().Name}: {error?.Message}");
        await Task.Delay(10);
    }
}
