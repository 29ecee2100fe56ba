using CnmSharp;

// No kernel work: an in-memory store, no default networks, no sandbox; the null driver takes no IPAM pools.
await using var controller = await new NetworkControllerBuilder()
    .Configure(o =>
    {
        o.StateDirectory = Path.Combine(Path.GetTempPath(), "cnmsharp-smoke");
        o.CreateDefaultNetworks = false;
    })
    .UseInMemoryStore()
    .BuildAsync();

var network = await controller.CreateNetworkAsync("smoke", "null");
var found = controller.FindNetworkByName("smoke") is not null;
await network.DeleteAsync();
Console.WriteLine($"package smoke ok: drivers {string.Join(',', controller.Drivers.Order(StringComparer.Ordinal))}; created and deleted network {(found ? "smoke" : "?")}");
