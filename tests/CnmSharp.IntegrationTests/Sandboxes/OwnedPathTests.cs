using System.Diagnostics;
using CnmSharp.Core;
using CnmSharp.Core.Persistence;
using CnmSharp.Sandboxes;
using CnmSharp.Store;
using CnmSharp.Testing;
using Microsoft.Extensions.Logging.Abstractions;

namespace CnmSharp.IntegrationTests.Sandboxes;

/// <summary>
/// Recovery and deletion unmount and unlink only what lies in the controller's own namespace directory: a stored
/// sandbox key outside it, a symbolic link inside it pointing out, and the host namespace are left untouched.
/// Every mount here is a bind mount of a namespace the test made (in its private run directory) onto a file in the
/// test's temporary directory; it is not the host namespace, so only the path rules can protect it.
/// </summary>
[RequiresRoot]
[NonParallelizable]
public sealed class OwnedPathTests
{
    private TestHostNamespace _host = null!;
    private string _temp = null!;
    private readonly List<string> _mounts = [];
    private string _other = null!;

    private string RunDirectory => Path.Combine(_temp, "run");

    private string NamespaceDirectory => Path.Combine(RunDirectory, "netns");

    [SetUp]
    public async Task SetUp()
    {
        _host = await TestHostNamespace.CreateAsync();
        _temp = Directory.CreateTempSubdirectory("cnmown-").FullName;
        using var other = await _host.Manager.CreateAsync(TestHostNamespace.UniqueName());
        _other = other.Path!;
    }

    [TearDown]
    public async Task TearDown()
    {
        foreach (var mount in Enumerable.Reverse(_mounts))
        {
            if (MountTable.IsMountPoint(mount))
            {
                Run("umount", mount);
            }
        }

        await _host.DisposeAsync();
        Directory.Delete(_temp, recursive: true);
    }

    /// <summary>Bind-mounts a namespace (by default one the test made, not the host's) onto a new file at <paramref name="path"/>.</summary>
    private string MountNamespaceAt(string path, string? source = null)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, string.Empty);
        Run("mount", "--bind", source ?? _other, path);
        _mounts.Add(path);
        Assert.That(MountTable.IsMountPoint(path), Is.True, "test setup: the bind mount exists");
        return path;
    }

    private static void Run(string file, params string[] arguments)
    {
        using var process = Process.Start(new ProcessStartInfo(file, arguments) { RedirectStandardError = true })!;
        var error = process.StandardError.ReadToEnd();
        process.WaitForExit();
        Assert.That(process.ExitCode, Is.Zero, $"{file} {string.Join(' ', arguments)}: {error}");
    }

    /// <summary>A store holding one sandbox record whose key is <paramref name="key"/>.</summary>
    private static async Task<(InMemoryKeyValueStore Store, string SandboxId)> StoreWithSandboxAsync(string key)
    {
        var store = new InMemoryKeyValueStore();
        var id = Ids.NewId();
        var record = new SandboxRecord { Id = id, ContainerId = "c1", Key = key };
        await store.PutAsync(CoreStore.SandboxKey(id), CoreStore.Serialize(record, CoreJsonContext.Default.SandboxRecord), StoreVersion.Absent);
        return (store, id);
    }

    private ValueTask<NetworkController> StartAsync(IKeyValueStore store) =>
        new NetworkControllerBuilder(new CnmOptions
        {
            HostNamespacePath = _host.Path,
            RunDirectory = RunDirectory,
            StateDirectory = Path.Combine(_temp, "state"),
            CreateDefaultNetworks = false,
        })
        .WithoutBuiltIns()
        .AddDriver(new CnmSharp.Drivers.Null.NullDriverFactory())
        .AddIpamDriver(new CnmSharp.Ipam.Default.DefaultIpamFactory())
        .AddIpamDriver(new CnmSharp.Ipam.Null.NullIpamFactory())
        .UseFirewall(null)
        .UseStore(store)
        .BuildAsync();

    [Test]
    public async Task A_stored_key_outside_the_run_directory_is_not_unmounted_by_recovery_or_delete()
    {
        var outside = MountNamespaceAt(Path.Combine(_temp, "elsewhere", "precious"));
        var (store, id) = await StoreWithSandboxAsync(outside);

        await using var controller = await StartAsync(store);

        Assert.Multiple(() =>
        {
            Assert.That(MountTable.IsMountPoint(outside), Is.True, "recovery left the mount alone");
            Assert.That(File.Exists(outside), Is.True);
        });
        // The record names a path this controller never gives a sandbox: it is set aside, listed for an explicit
        // repair, and nothing acts on it.
        Assert.That(controller.FindSandboxById(id), Is.Null);
        Assert.That((await controller.GetQuarantinedRecordsAsync()).Select(q => q.Key), Is.EqualTo(new[] { CoreStore.SandboxKey(id) }));
        Assert.That(await store.GetAsync(CoreStore.SandboxKey(id)), Is.Null);
        await controller.RecoverAsync();
        Assert.That(MountTable.IsMountPoint(outside), Is.True, "a later recovery left the mount alone too");
    }

    [Test]
    public async Task A_symbolic_link_in_the_namespace_directory_is_not_followed()
    {
        var outside = MountNamespaceAt(Path.Combine(_temp, "elsewhere", "precious"));
        Directory.CreateDirectory(NamespaceDirectory);
        var link = Path.Combine(NamespaceDirectory, "0123456789ab");
        File.CreateSymbolicLink(link, outside);
        var (store, id) = await StoreWithSandboxAsync(link);

        // The controller sets the record aside (the key is not the one it gives that sandbox id); the sandbox
        // networking, asked directly, refuses the link as well.
        await using var controller = await StartAsync(store);
        Assert.That(controller.FindSandboxById(id), Is.Null);
        await using var networking = new LinuxSandboxNetworking(_host.Path, NamespaceDirectory, NullLoggerFactory.Instance);
        var ex = await Assert.ThrowsAsync<CnmInvalidArgumentException>(async () => await networking.DeleteNamespaceAsync(link));

        Assert.Multiple(() =>
        {
            Assert.That(ex!.Code, Is.EqualTo(CnmErrorCodes.UnownedPath));
            Assert.That(MountTable.IsMountPoint(outside), Is.True, "the link's target stays mounted");
            Assert.That(new FileInfo(link).LinkTarget, Is.EqualTo(outside), "the link stays");
        });
    }

    [Test]
    public async Task The_host_namespace_is_never_unmounted_even_inside_the_namespace_directory()
    {
        var key = MountNamespaceAt(Path.Combine(NamespaceDirectory, "0123456789ab"), _host.Path);
        var (store, id) = await StoreWithSandboxAsync(key);

        await using var controller = await StartAsync(store);
        Assert.That(controller.FindSandboxById(id), Is.Null, "set aside: not a key this controller gives that sandbox");
        await using var networking = new LinuxSandboxNetworking(_host.Path, NamespaceDirectory, NullLoggerFactory.Instance);
        var ex = await Assert.ThrowsAsync<CnmInvalidArgumentException>(async () => await networking.DeleteNamespaceAsync(key));

        Assert.That(ex!.Code, Is.EqualTo(CnmErrorCodes.UnownedPath));
        Assert.That(MountTable.IsMountPoint(key), Is.True);
    }

    [TestCase("elsewhere/precious")]
    [TestCase("run/netns/../../elsewhere/precious")]
    public async Task Sandbox_networking_refuses_keys_outside_its_directory(string relative)
    {
        var outside = MountNamespaceAt(Path.Combine(_temp, "elsewhere", "precious"));
        await using var networking = new LinuxSandboxNetworking(_host.Path, NamespaceDirectory, NullLoggerFactory.Instance);
        var key = Path.Combine(_temp, relative);

        var delete = await Assert.ThrowsAsync<CnmInvalidArgumentException>(async () => await networking.DeleteNamespaceAsync(key));
        var create = await Assert.ThrowsAsync<CnmInvalidArgumentException>(async () => await networking.CreateNamespaceAsync(Path.Combine(_temp, "elsewhere", "new")));

        Assert.Multiple(async () =>
        {
            Assert.That(delete!.Code, Is.EqualTo(CnmErrorCodes.UnownedPath));
            Assert.That(create!.Code, Is.EqualTo(CnmErrorCodes.UnownedPath));
            Assert.That(await networking.NamespaceExistsAsync(key), Is.False, "not a namespace of this controller's");
            Assert.That(MountTable.IsMountPoint(outside), Is.True);
            Assert.That(File.Exists(Path.Combine(_temp, "elsewhere", "new")), Is.False);
        });
    }

    [Test]
    public async Task A_sandbox_of_its_own_is_still_created_and_deleted()
    {
        await using var controller = await StartAsync(new InMemoryKeyValueStore());

        var sandbox = await controller.CreateSandboxAsync("c1");
        Assert.That(MountTable.IsMountPoint(sandbox.Key), Is.True);
        Assert.That(Path.GetDirectoryName(sandbox.Key), Is.EqualTo(NamespaceDirectory));
        await sandbox.DeleteAsync();

        Assert.That(File.Exists(sandbox.Key), Is.False);
        Assert.That(Directory.Exists(sandbox.FilesDirectory), Is.False);
    }
}
