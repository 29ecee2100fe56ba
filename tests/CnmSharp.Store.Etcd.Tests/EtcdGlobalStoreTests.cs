using CnmSharp.Store;
using CnmSharp.Store.Etcd;
using CnmSharp.Testing;
using CnmSharp.Tests.Core;

namespace CnmSharp.Store.Etcd.Tests;

/// <summary>The global store scenarios on a real etcd (Debian's etcd-server, started for the fixture on loopback):
/// each host is its own etcd client, and each test its own key prefix.</summary>
[TestFixture]
[NonParallelizable]
public sealed class EtcdGlobalStoreTests : GlobalStoreScenarios
{
    private EtcdCluster _etcd = null!;
    private string _prefix = string.Empty;

    [OneTimeSetUp]
    public async Task StartEtcd() => _etcd = await EtcdCluster.StartAsync();

    [OneTimeTearDown]
    public async Task StopEtcd() => await _etcd.DisposeAsync();

    protected override ValueTask SetUpGlobalStoreAsync()
    {
        _prefix = $"g-{Guid.NewGuid():N}/";
        return ValueTask.CompletedTask;
    }

    protected override async ValueTask<ISharedKeyValueStore> OpenGlobalClientAsync()
    {
        var options = new EtcdStoreOptions { KeyPrefix = _prefix };
        foreach (var url in _etcd.ClientUrls)
        {
            options.Endpoints.Add(url);
        }

        return await EtcdKeyValueStore.ConnectAsync(options);
    }
}
