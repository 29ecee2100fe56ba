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

// Kill-harness mode (tests/CnmSharp.IntegrationTests/Core/FaultPointKillTests.cs): runs a scenario's setup, then its
// operation with the fault points armed. "record" prints "point <name>" at each point reached, then "done"; a
// "<point>#<n>" kills this process with SIGKILL at the n-th time that point is reached (it prints "done" only if it
// never is).
// Scenarios that need a global store get three more arguments: etcd endpoint, key prefix, advertise address.
if (args is ["fault", var scenarioName, var faultState, var faultRun, var faultHost, var parent, var spec, .. var globalArguments])
{
    var scenario = FaultScenarios.Find(scenarioName);
    var armed = false;
    var target = spec == "record" ? null : spec[..spec.LastIndexOf('#')];
    var occurrence = target is null ? 0 : int.Parse(spec[(spec.LastIndexOf('#') + 1)..], CultureInfo.InvariantCulture);
    var seen = 0;
    var faults = new CnmSharp.Diagnostics.FaultPoints(name =>
    {
        if (!Volatile.Read(ref armed))
        {
            return;
        }

        if (target is null)
        {
            Console.Out.WriteLine("point " + name);
            Console.Out.Flush();
        }
        else if (name == target && Interlocked.Increment(ref seen) == occurrence)
        {
            // SIGKILL, this very process: no finally block, no dispose, no flush runs after this.
            System.Diagnostics.Process.GetCurrentProcess().Kill();
            Thread.Sleep(Timeout.Infinite);
        }
    });
    var context = FaultScenarioContext.FromArguments(parent, globalArguments);
    var global = scenario.NeedsGlobalStore ? context : null;
    if (target is null)
    {
        // The recording run sets up in a controller of its own, so that the operation, as in the kill runs, starts on a
        // controller freshly started over the set-up state (a setup may plant a state its own controller's memory hides).
        await using var setUp = await FaultScenarios.BuildAsync(faultHost, faultState, faultRun, scenario.Firewall, faults: null, global: global);
        await scenario.Setup(setUp, context);
    }

    await using (var faulted = await FaultScenarios.BuildAsync(faultHost, faultState, faultRun, scenario.Firewall, faults, global: global))
    {
        await scenario.Setup(faulted, context);
        Volatile.Write(ref armed, true);
        await scenario.Operation(faulted, context);
        Volatile.Write(ref armed, false);
    }

    Console.Out.WriteLine("done");
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
