using System.Globalization;
using CnmSharp.Netlink;
using CnmSharp.Testing;

namespace CnmSharp.Netlink.Tests.Namespaces;

/// <summary>
/// Kernel tests of the namespace manager. Each test gets a private run directory under /tmp; teardown deletes every
/// namespace the test made there and the directory, also after a failure.
/// </summary>
[RequiresRoot]
public sealed class NetworkNamespaceManagerTests
{
    private string _runDirectory = null!;
    private NetworkNamespaceManager _manager = null!;

    [SetUp]
    public void SetUp()
    {
        _runDirectory = Path.Combine(Path.GetTempPath(), TestHostNamespace.UniqueName("cnmt-run"));
        _manager = new NetworkNamespaceManager(new NetworkNamespaceManagerOptions { RunDirectory = _runDirectory, MakeRunDirectoryShared = false });
    }

    [TearDown]
    public void TearDown()
    {
        if (Directory.Exists(_runDirectory))
        {
            foreach (var file in Directory.EnumerateFiles(_runDirectory))
            {
                try
                {
                    _manager.DeleteAsync(Path.GetFileName(file)).GetAwaiter().GetResult();
                }
                catch (NamespaceException)
                {
                }
            }

            if (MountTable.IsMountPoint(_runDirectory))
            {
                _ = IpTool.ExecAsync("umount", "-l", _runDirectory).GetAwaiter().GetResult();
            }

            Directory.Delete(_runDirectory);
        }

        Assert.That(MountTable.LinesUnder(_runDirectory), Is.Empty, "mounts left behind");
    }

    private static ulong ThreadNamespaceInode() =>
        NetworkNamespace.TryParseInode(new FileInfo("/proc/thread-self/ns/net").LinkTarget, out var inode)
            ? inode
            : throw new InvalidOperationException("cannot read /proc/thread-self/ns/net");

    [Test]
    public async Task Create_open_and_delete_a_named_namespace()
    {
        var name = TestHostNamespace.UniqueName();
        var path = _manager.GetPath(name);
        using var current = _manager.OpenCurrent();

        using (var created = await _manager.CreateAsync(name))
        {
            Assert.Multiple(() =>
            {
                Assert.That(created.Name, Is.EqualTo(name));
                Assert.That(created.Path, Is.EqualTo(path));
                Assert.That(created.Inode, Is.Not.EqualTo(current.Inode));
                Assert.That(File.Exists(path), Is.True);
                Assert.That(_manager.Exists(name), Is.True);
                Assert.That(MountTable.IsMountPoint(path), Is.True, "the namespace is bind-mounted on its file");
            });

            using var byName = _manager.OpenByName(name);
            using var byPath = _manager.Open(path);
            Assert.Multiple(() =>
            {
                Assert.That(byName.IsSameNamespace(created), Is.True);
                Assert.That(byPath.Inode, Is.EqualTo(created.Inode));
                Assert.That(byPath.Name, Is.Null);
            });

            // The oracle sees a brand-new namespace: only a down loopback.
            var links = await IpTool.JsonAsync(path, "link", "show");
            Assert.That(links.EnumerateArray().Select(l => l.GetProperty("ifname").GetString()), Is.EqualTo(new[] { "lo" }));
            Assert.That(IpTool.HasFlag(links[0], "UP"), Is.False);

            var oracleInode = (await IpTool.ExecAsync("nsenter", $"--net={path}", "readlink", "/proc/self/ns/net")).StandardOutput.Trim();
            Assert.That(oracleInode, Is.EqualTo(string.Create(CultureInfo.InvariantCulture, $"net:[{created.Inode}]")));
        }

        await _manager.DeleteAsync(name);
        Assert.Multiple(() =>
        {
            Assert.That(File.Exists(path), Is.False, "the file is removed");
            Assert.That(_manager.Exists(name), Is.False);
            Assert.That(MountTable.LinesUnder(path), Is.Empty, "no mount remains");
        });
    }

    [Test]
    public async Task Deleting_while_a_handle_is_open_keeps_the_namespace_alive_for_the_holder()
    {
        var name = TestHostNamespace.UniqueName();
        using var ns = await _manager.CreateAsync(name);
        await _manager.DeleteAsync(name);
        Assert.That(_manager.Exists(name), Is.False);

        var inside = await _manager.RunInsideAsync(ns, ThreadNamespaceInode);
        Assert.That(inside, Is.EqualTo(ns.Inode));
    }

    [Test]
    public async Task Run_inside_switches_a_dedicated_thread_and_returns_it()
    {
        await using var host = await TestHostNamespace.CreateAsync();
        var callerInode = ThreadNamespaceInode();
        var callerThread = Environment.CurrentManagedThreadId;

        var (inode, isPoolThread, threadId) = await _manager.RunInsideAsync(
            host.Namespace,
            () => (ThreadNamespaceInode(), Thread.CurrentThread.IsThreadPoolThread, Environment.CurrentManagedThreadId));

        Assert.Multiple(() =>
        {
            Assert.That(inode, Is.EqualTo(host.Namespace.Inode));
            Assert.That(inode, Is.Not.EqualTo(callerInode));
            Assert.That(isPoolThread, Is.False, "never a thread-pool thread");
            Assert.That(threadId, Is.Not.EqualTo(callerThread));
            Assert.That(ThreadNamespaceInode(), Is.EqualTo(callerInode), "the caller did not move");
        });

        // The worker threads are back home afterwards: run plain work on all of them.
        using var home = _manager.OpenForProcess(Environment.ProcessId);
        var after = await Task.WhenAll(Enumerable.Range(0, 16).Select(_ => NamespaceExecutor.RunAsync(ThreadNamespaceInode, CancellationToken.None)));
        Assert.That(after, Is.All.EqualTo(home.Inode));
    }

    [Test]
    public async Task Nested_run_inside_runs_inline_and_returns_to_the_outer_namespace()
    {
        await using var outer = await TestHostNamespace.CreateAsync();
        await using var inner = await TestHostNamespace.CreateAsync();

        var (innerSeen, outerAfter) = await _manager.RunInsideAsync(outer.Namespace, () =>
        {
            var seen = _manager.RunInsideAsync(inner.Namespace, ThreadNamespaceInode).GetAwaiter().GetResult();
            return (seen, ThreadNamespaceInode());
        });

        Assert.Multiple(() =>
        {
            Assert.That(innerSeen, Is.EqualTo(inner.Namespace.Inode));
            Assert.That(outerAfter, Is.EqualTo(outer.Namespace.Inode));
        });
    }

    [Test]
    public async Task Exceptions_from_the_action_reach_the_caller_and_the_thread_still_returns()
    {
        await using var host = await TestHostNamespace.CreateAsync();
        Assert.That(
            async () => await _manager.RunInsideAsync<int>(host.Namespace, () => throw new InvalidOperationException("boom")),
            Throws.InvalidOperationException.With.Message.EqualTo("boom"));

        using var home = _manager.OpenForProcess(Environment.ProcessId);
        var after = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => NamespaceExecutor.RunAsync(ThreadNamespaceInode, CancellationToken.None)));
        Assert.That(after, Is.All.EqualTo(home.Inode));
    }

    [Test]
    public async Task Sysctl_read_and_write_inside_a_namespace_leave_the_root_value_unchanged()
    {
        const string Key = "net.ipv4.ip_forward";
        var rootBefore = File.ReadAllText("/proc/sys/net/ipv4/ip_forward").Trim();
        await using var host = await TestHostNamespace.CreateAsync();

        Assert.That(await _manager.ReadSysctlAsync(host.Namespace, Key), Is.EqualTo("0"), "a new namespace starts with forwarding off");
        var wanted = rootBefore == "1" ? "0" : "1";
        await _manager.WriteSysctlAsync(host.Namespace, Key, wanted);

        Assert.Multiple(async () =>
        {
            Assert.That(await _manager.ReadSysctlAsync(host.Namespace, Key), Is.EqualTo(wanted));
            Assert.That(await _manager.ReadSysctlAsync(host.Namespace, "net/ipv4/ip_forward"), Is.EqualTo(wanted));
            var oracle = await IpTool.ExecAsync("nsenter", $"--net={host.Path}", "cat", "/proc/sys/net/ipv4/ip_forward");
            Assert.That(oracle.StandardOutput.Trim(), Is.EqualTo(wanted), "seen by another process in the namespace");
            Assert.That(File.ReadAllText("/proc/sys/net/ipv4/ip_forward").Trim(), Is.EqualTo(rootBefore), "root namespace unchanged");
        });

        // A per-interface key inside the namespace.
        await _manager.WriteSysctlAsync(host.Namespace, "net.ipv6.conf.lo.disable_ipv6", "1");
        Assert.That(await _manager.ReadSysctlAsync(host.Namespace, "net.ipv6.conf.lo.disable_ipv6"), Is.EqualTo("1"));
    }

    [Test]
    public async Task Sysctl_errors_are_typed()
    {
        await using var host = await TestHostNamespace.CreateAsync();
        Assert.Multiple(() =>
        {
            Assert.That(
                async () => await _manager.ReadSysctlAsync(host.Namespace, "net.ipv4.no_such_key"),
                Throws.InstanceOf<NamespaceNotFoundException>().With.Property(nameof(NamespaceException.Path)).EqualTo("/proc/sys/net/ipv4/no_such_key"));
            Assert.That(
                async () => await _manager.WriteSysctlAsync(host.Namespace, "net.ipv4.ip_forward", "banana"),
                Throws.InstanceOf<NamespaceException>().With.Property(nameof(NamespaceException.ErrorNumber)).EqualTo(22));
            Assert.That(
                async () => await _manager.ReadSysctlAsync(host.Namespace, "kernel.hostname"),
                Throws.InstanceOf<ArgumentException>());
            Assert.That(
                async () => await _manager.WriteSysctlAsync(host.Namespace, "net.ipv4.ip_forward", "1\n0"),
                Throws.InstanceOf<ArgumentException>());
        });
    }

    [Test]
    public async Task Duplicate_name_is_a_typed_error_and_keeps_the_first_namespace()
    {
        var name = TestHostNamespace.UniqueName();
        using var first = await _manager.CreateAsync(name);
        var ex = await Assert.ThrowsAsync<NamespaceAlreadyExistsException>(async () => await _manager.CreateAsync(name));
        Assert.Multiple(() =>
        {
            Assert.That(ex!.Path, Is.EqualTo(_manager.GetPath(name)));
            Assert.That(ex.ErrorNumber, Is.EqualTo(17));
        });

        using var reopened = _manager.OpenByName(name);
        Assert.That(reopened.Inode, Is.EqualTo(first.Inode));
    }

    [Test]
    public async Task Deleting_or_opening_a_missing_namespace_is_a_typed_error()
    {
        var name = TestHostNamespace.UniqueName();
        Directory.CreateDirectory(_runDirectory);
        var ex = await Assert.ThrowsAsync<NamespaceNotFoundException>(async () => await _manager.DeleteAsync(name));
        Assert.Multiple(() =>
        {
            Assert.That(ex!.Path, Is.EqualTo(_manager.GetPath(name)));
            Assert.That(ex.ErrorNumber, Is.EqualTo(2));
            Assert.That(() => _manager.OpenByName(name), Throws.InstanceOf<NamespaceNotFoundException>());
            Assert.That(_manager.Exists(name), Is.False);
        });
    }

    [Test]
    public void Opening_bad_paths_is_a_typed_error()
    {
        Directory.CreateDirectory(_runDirectory);
        var regular = Path.Combine(_runDirectory, "not-a-namespace");
        File.WriteAllText(regular, "x");
        try
        {
            Assert.Multiple(() =>
            {
                Assert.That(() => _manager.Open(Path.Combine(_runDirectory, "missing")), Throws.InstanceOf<NamespaceNotFoundException>());
                Assert.That(
                    () => _manager.Open(regular),
                    Throws.TypeOf<NamespaceException>().With.Message.Contain("not a namespace file").And.Property(nameof(NamespaceException.Path)).EqualTo(regular));
                Assert.That(
                    () => _manager.Open("/proc/self/ns/uts"),
                    Throws.TypeOf<NamespaceException>().With.Message.Contain("not a network namespace"));
                Assert.That(() => _manager.OpenForProcess(int.MaxValue), Throws.InstanceOf<NamespaceNotFoundException>());
                Assert.That(() => _manager.Open(string.Empty), Throws.InstanceOf<ArgumentException>());
                Assert.That(_manager.Exists("not-a-namespace"), Is.False, "a plain file is not a namespace");
            });
        }
        finally
        {
            File.Delete(regular);
        }
    }

    [Test]
    public void A_cancelled_create_makes_nothing()
    {
        var name = TestHostNamespace.UniqueName();
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        Assert.That(async () => await _manager.CreateAsync(name, cts.Token), Throws.InstanceOf<OperationCanceledException>());
        Assert.That(File.Exists(_manager.GetPath(name)), Is.False);
    }

    [Test]
    public async Task Open_for_process_and_open_current_agree_with_proc()
    {
        using var mine = _manager.OpenForProcess(Environment.ProcessId);
        using var current = _manager.OpenCurrent();
        Assert.Multiple(() =>
        {
            Assert.That(mine.Inode, Is.EqualTo(ThreadNamespaceInode()));
            Assert.That(current.IsSameNamespace(mine), Is.True);
            Assert.That(mine.Path, Is.EqualTo($"/proc/{Environment.ProcessId}/ns/net"));
        });

        // A process started inside a namespace is seen there.
        await using var host = await TestHostNamespace.CreateAsync();
        var start = new System.Diagnostics.ProcessStartInfo("nsenter") { ArgumentList = { $"--net={host.Path}", "sleep", "30" } };
        using var sleeper = System.Diagnostics.Process.Start(start)!;
        try
        {
            using var theirs = _manager.OpenForProcess(sleeper.Id);
            for (var i = 0; i < 100 && !theirs.IsSameNamespace(host.Namespace); i++)
            {
                // nsenter may not have called setns yet; reopen until it has.
                await Task.Delay(10);
                using var again = _manager.OpenForProcess(sleeper.Id);
                if (again.IsSameNamespace(host.Namespace))
                {
                    return;
                }
            }

            Assert.That(theirs.IsSameNamespace(host.Namespace), Is.True);
        }
        finally
        {
            sleeper.Kill();
            await sleeper.WaitForExitAsync();
        }
    }

    [Test]
    public async Task Twenty_namespaces_created_in_parallel_are_distinct_and_all_deleted()
    {
        var names = Enumerable.Range(0, 20).Select(_ => TestHostNamespace.UniqueName()).ToArray();
        var created = await Task.WhenAll(names.Select(n => Task.Run(() => _manager.CreateAsync(n))));
        try
        {
            Assert.That(created.Select(ns => ns.Inode).Distinct().Count(), Is.EqualTo(20));
            Assert.That(names.All(_manager.Exists), Is.True);
            var inside = await Task.WhenAll(created.Select(ns => _manager.RunInsideAsync(ns, ThreadNamespaceInode)));
            Assert.That(inside, Is.EqualTo(created.Select(ns => ns.Inode).ToArray()));
        }
        finally
        {
            foreach (var ns in created)
            {
                ns.Dispose();
            }
        }

        await Task.WhenAll(names.Select(n => Task.Run(() => _manager.DeleteAsync(n))));
        Assert.Multiple(() =>
        {
            Assert.That(Directory.EnumerateFileSystemEntries(_runDirectory), Is.Empty);
            Assert.That(MountTable.LinesUnder(_runDirectory), Is.Empty);
        });
    }

    [Test]
    public async Task Shared_run_directory_is_made_a_shared_mount_like_ip_netns()
    {
        var manager = new NetworkNamespaceManager(_runDirectory);
        var name = TestHostNamespace.UniqueName();
        using (await manager.CreateAsync(name))
        {
            var dirLine = MountTable.LinesUnder(_runDirectory).Single(l => l.Split(' ')[4] == _runDirectory);
            Assert.That(dirLine, Does.Contain(" shared:"), "the run directory is a shared mount point");
            Assert.That(MountTable.IsMountPoint(manager.GetPath(name)), Is.True);
        }

        await manager.DeleteAsync(name);
        Assert.That(MountTable.LinesUnder(_runDirectory), Has.Count.EqualTo(1), "only the directory's own mount stays, as with ip netns");

        // A second manager over the same directory finds it already shared.
        var again = new NetworkNamespaceManager(_runDirectory);
        using (await again.CreateAsync(name))
        {
            Assert.That(MountTable.LinesUnder(_runDirectory), Has.Count.EqualTo(2));
        }

        await again.DeleteAsync(name);
    }
}

/// <summary>The shared fixture itself.</summary>
[RequiresRoot]
public sealed class TestHostNamespaceTests
{
    [Test]
    public async Task Host_namespace_is_private_has_lo_up_and_is_removed_on_dispose()
    {
        string path, runDirectory;
        await using (var host = await TestHostNamespace.CreateAsync())
        {
            path = host.Path;
            runDirectory = host.RunDirectory;
            Assert.Multiple(() =>
            {
                Assert.That(host.Name, Does.Match("^cnmt-[0-9a-f]{8}$"));
                Assert.That(runDirectory, Does.StartWith(Path.GetTempPath().TrimEnd('/')));
                Assert.That(runDirectory, Is.Not.EqualTo("/var/run/netns"));
            });

            var lo = await IpTool.LinkAsync(path, "lo");
            Assert.That(lo, Is.Not.Null);
            Assert.That(IpTool.HasFlag(lo!.Value, "UP"), Is.True, "lo is up");
            Assert.That(await IpTool.LinkNamesAsync(path), Is.EqualTo(new[] { "lo" }));

            // A namespace the test makes through the fixture's manager is cleaned up with it.
            using var extra = await host.Manager.CreateAsync(TestHostNamespace.UniqueName());
        }

        Assert.Multiple(() =>
        {
            Assert.That(File.Exists(path), Is.False);
            Assert.That(Directory.Exists(runDirectory), Is.False);
            Assert.That(MountTable.LinesUnder(runDirectory), Is.Empty);
        });
    }

    [Test]
    public async Task Rtnetlink_client_opened_from_the_fixture_sees_only_the_namespace()
    {
        await using var host = await TestHostNamespace.CreateAsync();
        using var client = host.OpenClient();
        var links = await client.GetLinksAsync();
        Assert.That(links.Select(l => l.Name), Is.EqualTo(new[] { "lo" }));
    }
}
