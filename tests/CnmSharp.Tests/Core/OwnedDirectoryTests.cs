using System.Runtime.InteropServices;
using CnmSharp.Core;
using CnmSharp.Sandboxes;
using CnmSharp.Sandboxes.Files;
using CnmSharp.Testing;
using CnmSharp.Tests.Store;
using Moq;

namespace CnmSharp.Tests.Core;

/// <summary>
/// The state and run directories are the controller's own: created with explicit modes whatever the umask, refused
/// when another user owns them or group or others can write them; sandbox files are deleted only inside the run
/// directory's own subfolder, and no symbolic link is followed out of it.
/// </summary>
[NonParallelizable]
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed partial class OwnedDirectoryTests
{
    private const UnixFileMode Mode0700 = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
    private const UnixFileMode Mode0711 = Mode0700 | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute;
    private const UnixFileMode Mode0755 = Mode0711 | UnixFileMode.GroupRead | UnixFileMode.OtherRead;
    private const UnixFileMode Mode0777 = Mode0755 | UnixFileMode.GroupWrite | UnixFileMode.OtherWrite;
    private const int Nobody = 65534;

    private TempDirectory _temp = null!;
    private string _state = null!;
    private string _run = null!;

    [SetUp]
    public void CreateDirectories()
    {
        _temp = new TempDirectory("cnmsharp-owned-");
        _state = Path.Combine(_temp.Path, "state");
        _run = Path.Combine(_temp.Path, "run");
    }

    [TearDown]
    public void DeleteDirectories() => _temp.Dispose();

    /// <summary>A controller on the default (SQLite) store in <see cref="_state"/> and the default sandbox files in
    /// <see cref="_run"/>, with mocked sandbox networking: nothing reaches the kernel.</summary>
    private NetworkControllerBuilder Builder(bool defaultNetworking = false)
    {
        var builder = new NetworkControllerBuilder()
            .WithoutBuiltIns()
            .AddDriver(new CnmSharp.Drivers.Null.NullDriverFactory())
            .AddIpamDriver(new CnmSharp.Ipam.Default.DefaultIpamFactory())
            .AddIpamDriver(new CnmSharp.Ipam.Null.NullIpamFactory())
            .UseFirewall(null)
            .Configure(o =>
            {
                o.StateDirectory = _state;
                o.RunDirectory = _run;
                o.HostNamespacePath = "/nonexistent-cnmsharp-host";
                o.CreateDefaultNetworks = false;
            });
        if (!defaultNetworking)
        {
            var netns = new Mock<ISandboxNetworking>();
            netns.Setup(n => n.NamespaceExistsAsync(It.IsAny<string>(), It.IsAny<CancellationToken>())).ReturnsAsync(true);
            builder.UseSandboxNetworking(netns.Object);
        }

        return builder;
    }

    private static async Task<CnmInvalidArgumentException> RefusedAsync(NetworkControllerBuilder builder)
    {
        try
        {
            await using var controller = await builder.BuildAsync();
        }
        catch (CnmInvalidArgumentException ex)
        {
            Assert.That(ex.Code, Is.EqualTo(CnmErrorCodes.UnsafeDirectory), ex.Message);
            return ex;
        }

        Assert.Fail("the controller started");
        return null!;
    }

    [Test]
    public async Task New_directories_get_their_modes_even_under_umask_000()
    {
        var previous = Umask(0);
        try
        {
            await using (var controller = await Builder(defaultNetworking: true).BuildAsync())
            {
                await controller.CreateSandboxAsync("c1", new SandboxCreateOptions { UseHostNamespace = true });
            }
        }
        finally
        {
            _ = Umask(previous);
        }

        Assert.Multiple(() =>
        {
            Assert.That(File.GetUnixFileMode(_state), Is.EqualTo(Mode0700), "state directory");
            Assert.That(File.GetUnixFileMode(Path.Combine(_state, "cnm.db")), Is.EqualTo(UnixFileMode.UserRead | UnixFileMode.UserWrite), "store file");
            Assert.That(File.GetUnixFileMode(_run), Is.EqualTo(Mode0711), "run directory");
            Assert.That(File.GetUnixFileMode(Path.Combine(_run, "netns")), Is.EqualTo(Mode0711), "namespace directory");
            Assert.That(File.GetUnixFileMode(Path.Combine(_run, "sandboxes")), Is.EqualTo(Mode0711), "sandbox files directory");
            var sandboxDirectory = Directory.GetDirectories(Path.Combine(_run, "sandboxes")).Single();
            Assert.That(File.GetUnixFileMode(sandboxDirectory), Is.EqualTo(Mode0755), "a sandbox's directory");
        });
    }

    [Test]
    public async Task Missing_parents_are_created_0755_under_umask_000()
    {
        _state = Path.Combine(_temp.Path, "a", "b", "state");
        var previous = Umask(0);
        try
        {
            await using var controller = await Builder().BuildAsync();
        }
        finally
        {
            _ = Umask(previous);
        }

        Assert.That(File.GetUnixFileMode(Path.Combine(_temp.Path, "a")), Is.EqualTo(Mode0755));
        Assert.That(File.GetUnixFileMode(Path.Combine(_temp.Path, "a", "b")), Is.EqualTo(Mode0755));
        Assert.That(File.GetUnixFileMode(_state), Is.EqualTo(Mode0700));
    }

    [TestCase(Mode0777)]
    [TestCase(Mode0700 | UnixFileMode.GroupWrite)]
    [TestCase(Mode0700 | UnixFileMode.OtherWrite)]
    public async Task A_state_directory_that_others_can_write_is_refused(UnixFileMode mode)
    {
        Directory.CreateDirectory(_state);
        File.SetUnixFileMode(_state, mode);

        var ex = await RefusedAsync(Builder());

        Assert.That(ex.Subject, Does.Contain(_state));
        Assert.That(File.Exists(Path.Combine(_state, "cnm.db")), Is.False, "no store was created in it");
        Assert.That(File.GetUnixFileMode(_state), Is.EqualTo(mode), "its mode is left alone");
    }

    [Test]
    public async Task A_run_directory_that_others_can_write_is_refused()
    {
        Directory.CreateDirectory(_run);
        File.SetUnixFileMode(_run, Mode0777);

        var ex = await RefusedAsync(Builder());

        Assert.That(ex.Subject, Does.Contain(_run));
        Assert.That(Directory.GetFileSystemEntries(_run), Is.Empty, "nothing made in it");
    }

    [Test]
    public async Task A_sandbox_files_directory_that_others_can_write_is_refused()
    {
        Directory.CreateDirectory(Path.Combine(_run, "sandboxes"));
        File.SetUnixFileMode(Path.Combine(_run, "sandboxes"), Mode0777);

        await RefusedAsync(Builder());
    }

    [Test]
    public async Task A_store_file_that_others_can_write_is_refused()
    {
        await using (await Builder().BuildAsync())
        {
        }

        File.SetUnixFileMode(Path.Combine(_state, "cnm.db"), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.OtherWrite);

        await RefusedAsync(Builder());
    }

    [Test]
    [RequiresRoot]
    public async Task A_state_directory_owned_by_another_user_is_refused()
    {
        Directory.CreateDirectory(_state);
        File.SetUnixFileMode(_state, Mode0700);
        Chown(_state, Nobody);

        var ex = await RefusedAsync(Builder());

        Assert.That(ex.Reason, Does.Contain("65534"));
        Assert.That(File.Exists(Path.Combine(_state, "cnm.db")), Is.False);
    }

    [Test]
    [RequiresRoot]
    public async Task A_run_directory_owned_by_another_user_is_refused()
    {
        Directory.CreateDirectory(_run);
        File.SetUnixFileMode(_run, Mode0755);
        Chown(_run, Nobody);

        await RefusedAsync(Builder());

        Assert.That(Directory.GetFileSystemEntries(_run), Is.Empty);
    }

    [Test]
    [RequiresRoot]
    public async Task A_store_file_owned_by_another_user_is_refused()
    {
        await using (await Builder().BuildAsync())
        {
        }

        Chown(Path.Combine(_state, "cnm.db"), Nobody);

        await RefusedAsync(Builder());
    }

    [Test]
    public async Task A_store_file_that_is_a_symbolic_link_is_refused()
    {
        Directory.CreateDirectory(_state);
        File.SetUnixFileMode(_state, Mode0700);
        var elsewhere = Path.Combine(_temp.Path, "elsewhere.db");
        await File.WriteAllTextAsync(elsewhere, string.Empty);
        File.CreateSymbolicLink(Path.Combine(_state, "cnm.db"), elsewhere);

        await RefusedAsync(Builder());
    }

    [Test]
    public async Task Sandbox_files_outside_their_root_are_not_deleted()
    {
        var root = Path.Combine(_run, "sandboxes");
        Directory.CreateDirectory(root);
        var outside = Path.Combine(_temp.Path, "precious");
        Directory.CreateDirectory(outside);
        await File.WriteAllTextAsync(Path.Combine(outside, "data"), "keep");
        var files = new SandboxFiles(root);

        foreach (var path in new[] { outside, Path.Combine(root, "..", "..", "precious"), Path.Combine(root, "a", "..", "..", "..", "precious"), "/" })
        {
            var ex = await Assert.ThrowsAsync<CnmInvalidArgumentException>(() => files.DeleteAsync(path), path);
            Assert.That(ex!.Code, Is.EqualTo(CnmErrorCodes.UnownedPath), path);
        }

        Assert.That(File.ReadAllText(Path.Combine(outside, "data")), Is.EqualTo("keep"));
    }

    [Test]
    public async Task A_symbolic_link_in_the_sandbox_files_root_is_not_followed()
    {
        var root = Path.Combine(_run, "sandboxes");
        Directory.CreateDirectory(root);
        var outside = Path.Combine(_temp.Path, "precious");
        Directory.CreateDirectory(outside);
        await File.WriteAllTextAsync(Path.Combine(outside, "hosts"), "keep");
        var link = Path.Combine(root, new string('a', 64));
        Directory.CreateSymbolicLink(link, outside);
        var files = new SandboxFiles(root);

        var ex = await Assert.ThrowsAsync<CnmInvalidArgumentException>(() => files.DeleteAsync(link));
        var exAdd = await Assert.ThrowsAsync<CnmInvalidArgumentException>(() => files.AddHostEntriesAsync(link, [new HostEntry("x", System.Net.IPAddress.Loopback)]));

        Assert.That(ex!.Code, Is.EqualTo(CnmErrorCodes.UnownedPath));
        Assert.That(exAdd!.Code, Is.EqualTo(CnmErrorCodes.UnownedPath));
        Assert.That(File.ReadAllText(Path.Combine(outside, "hosts")), Is.EqualTo("keep"));
        Assert.That(Directory.Exists(link), Is.True, "the link itself stays too");
    }

    [Test]
    public async Task A_root_reached_through_a_symbolic_link_still_confines()
    {
        // A run directory given as a path through a symbolic link is the same directory: its children are its own.
        var real = Path.Combine(_temp.Path, "real-sandboxes");
        Directory.CreateDirectory(real);
        var alias = Path.Combine(_temp.Path, "alias");
        Directory.CreateSymbolicLink(alias, real);
        var files = new SandboxFiles(alias);
        var sandbox = Path.Combine(alias, new string('b', 64));
        await files.CreateAsync(sandbox, new SandboxFileOptions { HostResolvConfPath = Path.Combine(_temp.Path, "none") });

        await files.DeleteAsync(sandbox);

        Assert.That(Directory.GetFileSystemEntries(real), Is.Empty);
    }

    [Test]
    public async Task Deleting_a_sandbox_whose_stored_files_directory_is_a_symbolic_link_leaves_the_target()
    {
        var outside = Path.Combine(_temp.Path, "precious");
        Directory.CreateDirectory(outside);
        await File.WriteAllTextAsync(Path.Combine(outside, "data"), "keep");
        await using var controller = await Builder().BuildAsync();
        var sandbox = await controller.CreateSandboxAsync("c1");
        Directory.Delete(sandbox.FilesDirectory, recursive: true);
        Directory.CreateSymbolicLink(sandbox.FilesDirectory, outside);

        var ex = await Assert.ThrowsAsync<CnmInvalidArgumentException>(async () => await sandbox.DeleteAsync());

        Assert.That(ex!.Code, Is.EqualTo(CnmErrorCodes.UnownedPath));
        Assert.That(File.ReadAllText(Path.Combine(outside, "data")), Is.EqualTo("keep"));
    }

    private static void Chown(string path, int uid)
    {
        if (ChownNative(path, uid, uid) != 0)
        {
            Assert.Fail($"chown {path}: errno {Marshal.GetLastPInvokeError()}");
        }
    }

    [LibraryImport("libc", EntryPoint = "chown", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int ChownNative(string path, int uid, int gid);

    [LibraryImport("libc", EntryPoint = "umask")]
    private static partial int Umask(int mask);
}
