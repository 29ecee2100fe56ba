using System.Diagnostics;
using System.Text;
using CnmSharp.Store;
using CnmSharp.Store.Etcd;
using CnmSharp.Testing;
using CnmSharp.Tests.Store;

namespace CnmSharp.Store.Etcd.Tests;

/// <summary>The store conformance suite on a one-member etcd started for the fixture; each test gets its own key
/// prefix, so tests never see each other's keys.</summary>
[TestFixture]
[NonParallelizable]
public sealed class EtcdKeyValueStoreConformance : KeyValueStoreConformance
{
    private EtcdCluster _etcd = null!;
    private string _prefix = string.Empty;

    protected override bool FreshRevisionIsZero => false;

    protected override bool DeliversEventsPublishedBeforeDispose => false;

    [OneTimeSetUp]
    public async Task StartEtcd() => _etcd = await EtcdCluster.StartAsync();

    [OneTimeTearDown]
    public async Task StopEtcd() => await _etcd.DisposeAsync();

    protected override async ValueTask<IKeyValueStore> CreateStoreAsync()
    {
        _prefix = $"t-{Guid.NewGuid():N}/";
        return await Connect(_prefix);
    }

    protected override ValueTask CompactAsync(long revision) => ((EtcdKeyValueStore)Store).CompactAsync(revision);

    protected override async ValueTask<ISharedKeyValueStore> OpenSecondClientAsync() => await Connect(_prefix);

    private ValueTask<EtcdKeyValueStore> Connect(string prefix)
    {
        var options = new EtcdStoreOptions { KeyPrefix = prefix };
        foreach (var url in _etcd.ClientUrls)
        {
            options.Endpoints.Add(url);
        }

        return EtcdKeyValueStore.ConnectAsync(options);
    }
}

public sealed class EtcdKeyValueStoreTests
{
    [Test]
    public void Options_are_validated()
    {
        Assert.That(Code(new EtcdStoreOptions()), Is.EqualTo(CnmErrorCodes.InvalidOption));
        Assert.That(Code(With("127.0.0.1:2379")), Is.EqualTo(CnmErrorCodes.InvalidOption), "a URL, not HOST:PORT");
        Assert.That(Code(With("http://127.0.0.1")), Is.EqualTo(CnmErrorCodes.InvalidOption), "a port is required");
        Assert.That(Code(With("http://127.0.0.1:1", "https://127.0.0.1:2")), Is.EqualTo(CnmErrorCodes.InvalidOption), "one scheme");
        var ca = With("http://127.0.0.1:2379");
        ca.CaCertificatePath = "/etc/hostname";
        Assert.That(Code(ca), Is.EqualTo(CnmErrorCodes.InvalidOption), "TLS files need https");
        var half = With("https://127.0.0.1:2379");
        half.ClientCertificatePath = "/etc/hostname";
        Assert.That(Code(half), Is.EqualTo(CnmErrorCodes.InvalidOption), "a certificate without its key");
        var missing = With("https://127.0.0.1:2379");
        missing.CaCertificatePath = "/nonexistent/ca.pem";
        Assert.That(Code(missing), Is.EqualTo(CnmErrorCodes.InvalidOption), "a missing file");
        var user = With("http://127.0.0.1:2379");
        user.Username = "root";
        Assert.That(Code(user), Is.EqualTo(CnmErrorCodes.InvalidOption), "a user without a password");
        Assert.That(With("http://127.0.0.1:2379", "http://[::1]:2380").Validate(), Has.Count.EqualTo(2));
    }

    [Test]
    public async Task An_unreachable_cluster_fails_with_a_typed_error_within_the_timeout()
    {
        var options = With("http://127.0.0.1:9"); // discard port: nothing listens
        options.RequestTimeout = TimeSpan.FromSeconds(1);
        var clock = Stopwatch.StartNew();

        var ex = await Assert.ThrowsAsync<CnmUnavailableException>(async () => await EtcdKeyValueStore.ConnectAsync(options));

        Assert.That(ex!.Code, Is.EqualTo(CnmErrorCodes.StoreUnavailable));
        Assert.That(clock.Elapsed, Is.LessThan(TimeSpan.FromSeconds(30)), "bounded by the request timeout, not hanging");
    }

    [Test]
    public async Task A_store_whose_members_all_died_fails_fast_and_works_again_when_one_returns()
    {
        await using var etcd = await EtcdCluster.StartAsync();
        var options = With(etcd.ClientUrls.ToArray());
        options.KeyPrefix = $"t-{Guid.NewGuid():N}/";
        options.RequestTimeout = TimeSpan.FromSeconds(1);
        await using var store = await EtcdKeyValueStore.ConnectAsync(options);
        await store.PutAsync("k", Encoding.UTF8.GetBytes("1"));

        etcd.Members[0].Kill();
        var ex = await Assert.ThrowsAsync<CnmUnavailableException>(async () => await store.PutAsync("k", Encoding.UTF8.GetBytes("2")));

        Assert.That(ex!.Code, Is.EqualTo(CnmErrorCodes.StoreUnavailable));
    }

    [Test]
    public async Task With_the_leader_of_three_members_killed_the_store_still_reads_writes_and_watches()
    {
        await using var etcd = await EtcdCluster.StartAsync(3);
        var options = With(etcd.ClientUrls.ToArray());
        options.KeyPrefix = $"t-{Guid.NewGuid():N}/";
        await using var store = await EtcdKeyValueStore.ConnectAsync(options);
        var v1 = await store.PutAsync("net/a", Encoding.UTF8.GetBytes("1"), StoreVersion.Absent);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await using var follow = store.FollowAsync("net/", TimeSpan.FromMilliseconds(100), cancellationToken: cts.Token).GetAsyncEnumerator(cts.Token);
        Assert.That(await follow.MoveNextAsync(), Is.True);
        Assert.That(follow.Current.Snapshot!.Entries, Has.Count.EqualTo(1));

        var leader = await etcd.FindLeaderAsync();
        leader.Kill();

        // Writes may fail while the two others elect a leader (fast, typed); then they go through.
        var v2 = 0L;
        var hang = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (v2 == 0)
        {
            try
            {
                v2 = await store.PutAsync("net/a", Encoding.UTF8.GetBytes("2"), v1);
            }
            catch (CnmUnavailableException) when (DateTime.UtcNow < hang)
            {
                await Task.Delay(100);
            }
        }

        var v3 = await store.PutAsync("net/b", Encoding.UTF8.GetBytes("3"), StoreVersion.Absent);
        Assert.That((await store.GetAsync("net/a"))!.Version, Is.EqualTo(v2));
        Assert.That(v3, Is.GreaterThan(v2));

        var seen = new List<string>();
        while (!seen.Contains("net/b"))
        {
            Assert.That(await follow.MoveNextAsync(), Is.True);
            if (follow.Current.Change is { } change)
            {
                seen.Add(change.Key);
            }
            else
            {
                seen.AddRange(follow.Current.Snapshot!.Entries.Select(e => e.Key));
            }
        }

        Assert.That(seen, Does.Contain("net/a"));
    }

    private static string? Code(EtcdStoreOptions options)
    {
        try
        {
            options.Validate();
            return null;
        }
        catch (CnmInvalidArgumentException ex)
        {
            return ex.Code;
        }
    }

    private static EtcdStoreOptions With(params string[] endpoints)
    {
        var options = new EtcdStoreOptions();
        foreach (var endpoint in endpoints)
        {
            options.Endpoints.Add(endpoint);
        }

        return options;
    }
}
