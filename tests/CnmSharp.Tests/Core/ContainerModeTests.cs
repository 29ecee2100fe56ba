using System.Text;
using CnmSharp.Core.Persistence;
using CnmSharp.Drivers;
using CnmSharp.Sandboxes;
using CnmSharp.Store;
using Moq;

namespace CnmSharp.Tests.Core;

/// <summary>Container mode (<see cref="SandboxCreateOptions.ShareNetworkWith"/>) over mocked sandbox networking: which
/// namespace a sharer uses, who removes it, and what is refused.</summary>
public sealed class ContainerModeTests : ControllerTestBase
{
    private NetworkController _c = null!;

    [SetUp]
    public async Task StartController() => _c = await F.StartAsync();

    private static SandboxCreateOptions Share(string with) => new() { ShareNetworkWith = with };

    private static JoinOptions InSandbox => new() { DriverOptions = new Dictionary<string, string> { [ControllerFixture.InSandbox] = "1" } };

    private void VerifyNamespaceDeleted(string key, Func<Times> times) =>
        F.Netns.Verify(n => n.DeleteNamespaceAsync(key, It.IsAny<CancellationToken>()), times);

    [Test]
    public async Task A_sharer_uses_the_namespace_files_and_hostname_of_the_sandbox_it_names_by_container_or_sandbox_id()
    {
        var original = await _c.CreateSandboxAsync("c1", new SandboxCreateOptions { Hostname = "web", DomainName = "example.org" });
        var byContainer = await _c.CreateSandboxAsync("side1", Share("c1"));
        var byId = await _c.CreateSandboxAsync("side2", Share(original.Id));

        F.Netns.Verify(n => n.CreateNamespaceAsync(It.IsAny<string>(), It.IsAny<CancellationToken>()), Times.Once);
        Assert.Multiple(() =>
        {
            foreach (var sharer in new[] { byContainer, byId })
            {
                Assert.That(sharer.Key, Is.EqualTo(original.Key));
                Assert.That(sharer.SharesNetwork, Is.True);
                Assert.That(sharer.SharedFrom, Is.EqualTo(original.Id));
                Assert.That(sharer.SharedFromContainerId, Is.EqualTo("c1"));
                Assert.That(sharer.NetworkSandboxId, Is.EqualTo(original.Id));
                Assert.That(sharer.HostsPath, Is.EqualTo(original.HostsPath), "Docker: the sharer uses the other's /etc/hosts");
                Assert.That(sharer.ResolvConfPath, Is.EqualTo(original.ResolvConfPath));
                Assert.That(sharer.Hostname, Is.EqualTo("web"));
                Assert.That(sharer.DomainName, Is.EqualTo("example.org"));
                Assert.That(sharer.UsesHostNamespace, Is.False);
                Assert.That(sharer.Endpoints, Is.Empty);
            }

            Assert.That(original.SharesNetwork, Is.False);
            Assert.That(original.SharedFrom, Is.Null);
            Assert.That(original.NetworkSandboxId, Is.EqualTo(original.Id));
            Assert.That(Directory.Exists(Path.Combine(F.Directory, "run", "sandboxes", byContainer.Id)), Is.False, "a sharer has no files of its own");
            Assert.That(_c.FindSandboxByContainerId("side1"), Is.SameAs(byContainer));
        });
    }

    [Test]
    public async Task A_sharer_of_a_sharer_uses_the_namespace_of_the_sandbox_that_made_it()
    {
        var a = await _c.CreateSandboxAsync("a");
        var b = await _c.CreateSandboxAsync("b", Share("a"));
        var c = await _c.CreateSandboxAsync("c", Share("b"));

        Assert.Multiple(() =>
        {
            Assert.That(c.Key, Is.EqualTo(a.Key));
            Assert.That(c.NetworkSandboxId, Is.EqualTo(a.Id));
            Assert.That(c.SharedFrom, Is.EqualTo(b.Id), "it names the sandbox it was given");
            Assert.That(c.SharedFromContainerId, Is.EqualTo("b"));
        });
    }

    [Test]
    public async Task Joining_an_endpoint_to_a_sharer_is_refused_and_changes_nothing()
    {
        var network = await _c.CreateNetworkAsync("net", ControllerFixture.DriverName);
        var endpoint = await network.CreateEndpointAsync("ep");
        await _c.CreateSandboxAsync("c1");
        var sharer = await _c.CreateSandboxAsync("side", Share("c1"));

        var ex = await ThrowsAsync<CnmConflictException>(() => endpoint.JoinAsync(sharer).AsTask(), CnmErrorCodes.SharedNetworkNamespace);

        Assert.Multiple(() =>
        {
            Assert.That(ex.Reason, Does.Contain("container \"c1\""));
            Assert.That(endpoint.Sandbox, Is.Null);
            Assert.That(sharer.Endpoints, Is.Empty);
        });
        F.Driver.Verify(d => d.JoinAsync(It.IsAny<JoinRequest>(), It.IsAny<IJoinInfo>(), It.IsAny<CancellationToken>()), Times.Never);
        Assert.That(await F.KeysAsync(CoreStore.IntentPrefix), Is.Empty);
    }

    [Test]
    public async Task A_missing_sandbox_to_share_is_not_found_and_conflicting_options_are_invalid_and_neither_leaves_anything()
    {
        var original = await _c.CreateSandboxAsync("c1");

        await ThrowsAsync<CnmNotFoundException>(() => _c.CreateSandboxAsync("side", Share("nope")).AsTask(), CnmErrorCodes.NoSuchSandbox);
        await ThrowsAsync<CnmInvalidArgumentException>(() => _c.CreateSandboxAsync("side", Share("c1") with { Hostname = "x" }).AsTask(), CnmErrorCodes.InvalidOption);
        await ThrowsAsync<CnmInvalidArgumentException>(() => _c.CreateSandboxAsync("side", Share("c1") with { UseHostNamespace = true }).AsTask(), CnmErrorCodes.InvalidOption);
        await ThrowsAsync<CnmInvalidArgumentException>(() => _c.CreateSandboxAsync("side", Share("c1") with { DnsServers = ["192.0.2.53"] }).AsTask(), CnmErrorCodes.InvalidOption);
        await ThrowsAsync<CnmInvalidArgumentException>(() => _c.CreateSandboxAsync("side", Share("bad/name")).AsTask(), CnmErrorCodes.InvalidId);

        // A sandbox being deleted cannot be shared either.
        await original.DeleteAsync();
        await ThrowsAsync<CnmNotFoundException>(() => _c.CreateSandboxAsync("side", Share("c1")).AsTask(), CnmErrorCodes.NoSuchSandbox);

        Assert.Multiple(async () =>
        {
            Assert.That(_c.Sandboxes, Is.Empty);
            Assert.That(await F.KeysAsync(CoreStore.SandboxPrefix), Is.Empty);
        });

        // The container is free again.
        var later = await _c.CreateSandboxAsync("side");
        Assert.That(later.SharesNetwork, Is.False);
    }

    [Test]
    public async Task Deleting_the_original_while_a_sharer_lives_removes_its_interfaces_and_hosts_lines_and_keeps_namespace_and_files()
    {
        var network = await _c.CreateNetworkAsync("net", ControllerFixture.DriverName, Subnet("10.160.0.0/24"));
        var original = await _c.CreateSandboxAsync("c1");
        var sharer = await _c.CreateSandboxAsync("side", Share("c1"));
        var inside = await network.CreateEndpointAsync("inside");
        var moved = await network.CreateEndpointAsync("moved");

        // Joining the original while a sharer lives is allowed: the sharer sees it (same namespace).
        await inside.JoinAsync(original, InSandbox);
        await moved.JoinAsync(original);
        var hosts = await File.ReadAllTextAsync(sharer.HostsPath);
        Assert.That(hosts, Does.Contain(inside.Address!.Value.Address.ToString()), "the shared hosts file names the original's addresses");
        var (insideName, movedName) = (inside.InterfaceName, moved.InterfaceName);

        await original.DeleteAsync();
        await _c.WaitForTeardownsAsync();

        VerifyNamespaceDeleted(original.Key, Times.Never);
        F.Netns.Verify(n => n.RemoveInterfaceAsync(original.Key, It.Is<SandboxInterface>(i => i.DestinationName == insideName && i.Placement == InterfacePlacement.Sandbox), It.IsAny<CancellationToken>()), Times.Once);
        F.Netns.Verify(n => n.RemoveInterfaceAsync(original.Key, It.Is<SandboxInterface>(i => i.DestinationName == movedName && i.Placement == InterfacePlacement.HostNamespace), It.IsAny<CancellationToken>()), Times.Once);
        Assert.Multiple(async () =>
        {
            Assert.That(_c.Sandboxes, Is.EqualTo(new[] { sharer }));
            Assert.That(File.Exists(sharer.HostsPath), Is.True, "the shared files stay with the namespace");
            Assert.That(File.Exists(sharer.ResolvConfPath), Is.True);
            Assert.That(await File.ReadAllTextAsync(sharer.HostsPath), Does.Not.Contain(inside.Address!.Value.Address.ToString()), "the original's hosts lines go with its endpoints");
            Assert.That(network.Endpoints, Is.Empty, "the original's endpoints are deleted");
            Assert.That(sharer.Key, Is.EqualTo(original.Key));
        });

        await sharer.DeleteAsync();
        VerifyNamespaceDeleted(original.Key, Times.Once);
        Assert.Multiple(async () =>
        {
            Assert.That(Directory.Exists(sharer.FilesDirectory), Is.False, "the last user takes the files");
            Assert.That(_c.Sandboxes, Is.Empty);
            Assert.That(await F.KeysAsync(CoreStore.SandboxPrefix), Is.Empty);
        });
    }

    [Test]
    public async Task Deleting_the_sharer_first_keeps_the_namespace_and_the_original_then_takes_it_with_the_fast_path()
    {
        var network = await _c.CreateNetworkAsync("net", ControllerFixture.DriverName, Subnet("10.161.0.0/24"));
        var original = await _c.CreateSandboxAsync("c1");
        var sharer = await _c.CreateSandboxAsync("side", Share("c1"));
        var endpoint = await network.CreateEndpointAsync("ep");
        await endpoint.JoinAsync(original, InSandbox);

        await sharer.DeleteAsync();
        VerifyNamespaceDeleted(original.Key, Times.Never);
        Assert.Multiple(() =>
        {
            Assert.That(endpoint.Sandbox, Is.SameAs(original));
            Assert.That(File.Exists(original.HostsPath), Is.True);
        });

        await original.DeleteAsync();
        VerifyNamespaceDeleted(original.Key, Times.Once);
        F.Netns.Verify(n => n.RemoveInterfaceAsync(It.IsAny<string>(), It.IsAny<SandboxInterface>(), It.IsAny<CancellationToken>()), Times.Never, "the namespace deletion reaps the interface");
    }

    [Test]
    public async Task The_sharing_survives_a_restart_and_the_user_count_comes_from_the_records()
    {
        var original = await _c.CreateSandboxAsync("c1");
        var sharer = await _c.CreateSandboxAsync("side", Share("c1"));
        var third = await _c.CreateSandboxAsync("third", Share("side"));
        await _c.DisposeAsync();

        var restarted = await F.StartAsync();
        var side = restarted.FindSandboxByContainerId("side")!;
        Assert.Multiple(() =>
        {
            Assert.That(side.SharesNetwork, Is.True);
            Assert.That(side.SharedFrom, Is.EqualTo(original.Id));
            Assert.That(side.NetworkSandboxId, Is.EqualTo(original.Id));
            Assert.That(side.Key, Is.EqualTo(original.Key));
            Assert.That(restarted.FindSandboxByContainerId("third")!.NetworkSandboxId, Is.EqualTo(original.Id));
        });

        await restarted.FindSandboxByContainerId("c1")!.DeleteAsync();
        await side.DeleteAsync();
        VerifyNamespaceDeleted(original.Key, Times.Never);
        Assert.That(File.Exists(third.HostsPath), Is.True);

        // One more restart with only the third user left: it is still a user, and the last.
        await restarted.DisposeAsync();
        var again = await F.StartAsync();
        await again.FindSandboxByContainerId("third")!.DeleteAsync();
        VerifyNamespaceDeleted(original.Key, Times.Once);
        Assert.That(Directory.Exists(sharer.FilesDirectory), Is.False);
    }

    [Test]
    public async Task Two_controllers_on_one_state_count_each_others_sharers()
    {
        var a = _c;
        var b = await F.StartAsync();
        var original = await a.CreateSandboxAsync("c1");
        await b.CreateSandboxAsync("side", Share("c1"));

        // A never refreshed, yet its delete sees B's sharer (the delete reloads under the state lease).
        await a.FindSandboxByContainerId("c1")!.DeleteAsync();
        VerifyNamespaceDeleted(original.Key, Times.Never);

        // B's view of the original is gone after its next operation; deleting its sharer is the last user's.
        await b.RefreshAsync();
        Assert.That(b.FindSandboxByContainerId("c1"), Is.Null);
        await b.FindSandboxByContainerId("side")!.DeleteAsync();
        VerifyNamespaceDeleted(original.Key, Times.Once);
    }

    [Test]
    public async Task Deleting_the_last_two_users_at_once_removes_the_namespace_exactly_once()
    {
        for (var round = 0; round < 20; round++)
        {
            var original = await _c.CreateSandboxAsync("c" + round);
            var sharer = await _c.CreateSandboxAsync("side" + round, Share("c" + round));
            await Task.WhenAll(original.DeleteAsync().AsTask(), sharer.DeleteAsync().AsTask());
            VerifyNamespaceDeleted(original.Key, Times.Once);
        }

        Assert.That(_c.Sandboxes, Is.Empty);
    }

    [Test]
    public async Task A_sharer_of_a_host_mode_sandbox_uses_the_host_namespace_which_is_never_deleted()
    {
        var host = await _c.CreateSandboxAsync("h", new SandboxCreateOptions { UseHostNamespace = true });
        var sharer = await _c.CreateSandboxAsync("side", Share("h"));

        Assert.Multiple(() =>
        {
            Assert.That(sharer.UsesHostNamespace, Is.True);
            Assert.That(sharer.Key, Is.EqualTo(host.Key));
            Assert.That(sharer.HostsPath, Is.EqualTo(host.HostsPath));
        });

        await host.DeleteAsync();
        Assert.That(File.Exists(sharer.HostsPath), Is.True);
        await sharer.DeleteAsync();
        Assert.That(File.Exists(sharer.HostsPath), Is.False);
        F.Netns.Verify(n => n.DeleteNamespaceAsync(It.IsAny<string>(), It.IsAny<CancellationToken>()), Times.Never);
    }

    [Test]
    public async Task A_sandbox_record_written_before_container_mode_reads_as_not_sharing()
    {
        await _c.DisposeAsync();
        var id = new string('a', 64);
        var key = Path.Combine(F.Directory, "run", "netns", id[..12]);
        var old = $$"""{"schema":1,"id":"{{id}}","containerId":"old","key":"{{key}}","usesHostNamespace":false,"extraHosts":[],"dnsServers":[],"dnsSearch":[],"dnsOptions":[]}""";
        await F.Store.PutAsync(CoreStore.SandboxKey(id), Encoding.UTF8.GetBytes(old), StoreVersion.Absent);

        var c = await F.StartAsync();
        var sandbox = c.FindSandboxByContainerId("old")!;
        Assert.Multiple(() =>
        {
            Assert.That(sandbox.SharesNetwork, Is.False);
            Assert.That(sandbox.SharedFrom, Is.Null);
            Assert.That(sandbox.NetworkSandboxId, Is.EqualTo(id));
        });
        var sharer = await c.CreateSandboxAsync("side", Share("old"));
        Assert.That(sharer.Key, Is.EqualTo(key));
    }

    [Test]
    public async Task A_stored_sharer_whose_namespace_path_is_not_its_makers_is_set_aside()
    {
        var original = await _c.CreateSandboxAsync("c1");
        var sharer = await _c.CreateSandboxAsync("side", Share("c1"));
        await _c.DisposeAsync();

        var entry = (await F.Store.GetAsync(CoreStore.SandboxKey(sharer.Id)))!;
        var tampered = Encoding.UTF8.GetString(entry.Value.Span).Replace(original.Id, new string('b', 64), StringComparison.Ordinal);
        await F.Store.PutAsync(CoreStore.SandboxKey(sharer.Id), Encoding.UTF8.GetBytes(tampered), entry.Version);

        var c = await F.StartAsync();
        Assert.Multiple(async () =>
        {
            Assert.That(c.FindSandboxByContainerId("side"), Is.Null);
            Assert.That((await c.GetQuarantinedRecordsAsync()).Select(q => q.Key), Is.EqualTo(new[] { CoreStore.SandboxKey(sharer.Id) }));
        });
    }
}
