using CnmSharp;

// No kernel work: an in-memory store, no default networks, no sandbox; the null driver takes no IPAM pools. The state
// and run directories are a fresh temporary directory of the app's own, removed at the end (the run directory is
// created when the controller starts).
var scratch = Directory.CreateTempSubdirectory("cnmsharp-smoke-");
try
{
    await using var controller = await new NetworkControllerBuilder()
        .Configure(o =>
        {
            o.StateDirectory = Path.Combine(scratch.FullName, "state");
            o.RunDirectory = Path.Combine(scratch.FullName, "run");
            o.CreateDefaultNetworks = false;
        })
        .UseInMemoryStore()
        .BuildAsync();

    // The null driver holds one network and refuses to delete it (like libnetwork's "none"): create and look it up only.
    var network = await controller.CreateNetworkAsync("smoke", "null");
    var found = controller.FindNetworkByName("smoke")?.Id == network.Id;
    Console.WriteLine($"package smoke ok: drivers {string.Join(',', controller.Drivers.Order(StringComparer.Ordinal))}; network smoke {(found ? "created" : "MISSING")} ({network.Driver})");
}
finally
{
    scratch.Delete(recursive: true);
}
