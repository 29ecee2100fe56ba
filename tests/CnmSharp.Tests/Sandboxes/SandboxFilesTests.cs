using System.Net;
using CnmSharp.Sandboxes.Files;

namespace CnmSharp.Tests.Sandboxes;

[TestFixture]
public sealed class SandboxFilesTests
{
    private const string Base =
        "127.0.0.1\tlocalhost\n" +
        "::1\tlocalhost ip6-localhost ip6-loopback\n" +
        "fe00::0\tip6-localnet\n" +
        "ff00::0\tip6-mcastprefix\n" +
        "ff02::1\tip6-allnodes\n" +
        "ff02::2\tip6-allrouters\n";

    private SandboxTestDirectory _dir = null!;
    private string _sandbox = null!;
    private SandboxFiles _files = null!;
    private SandboxFileOptions _options = null!;

    [SetUp]
    public void SetUp()
    {
        _dir = new SandboxTestDirectory();
        _sandbox = Path.Combine(_dir.Path, "sandboxes", "0123456789ab");
        _files = new SandboxFiles();
        var host = _dir.Write("host-resolv.conf", "# host file\nnameserver 127.0.0.1\nnameserver 10.0.0.1\nsearch corp.example\n");
        _options = new SandboxFileOptions
        {
            Hostname = "c1",
            DomainName = "example.com",
            ExtraHosts = [new HostEntry("db", IPAddress.Parse("10.0.0.5"))],
            HostResolvConfPath = host,
            SystemdResolvedConfPath = _dir.File("no-systemd-resolv.conf"),
        };
    }

    [TearDown]
    public void TearDown() => _dir.Dispose();

    private string Hosts => File.ReadAllText(SandboxFiles.HostsPath(_sandbox));

    private string Resolv => File.ReadAllText(SandboxFiles.ResolvConfPath(_sandbox));

    private static IPAddress[] EndpointAddresses => [IPAddress.Parse("172.17.0.2"), IPAddress.Parse("fd00::2")];

    [Test]
    public async Task Create_writes_hosts_resolv_conf_and_hash()
    {
        await _files.CreateAsync(_sandbox, _options);

        Assert.That(Hosts, Is.EqualTo(Base + "10.0.0.5\tdb\n"));
        Assert.That(Resolv, Is.EqualTo("# host file\nnameserver 10.0.0.1\nsearch corp.example\n"));
        Assert.That(File.ReadAllText(SandboxFiles.ResolvConfPath(_sandbox) + ".hash"),
            Is.EqualTo(ResolvConf.ComputeHash(Resolv) + "\n"));
        Assert.That(Directory.GetFiles(_sandbox).Select(Path.GetFileName).Order(),
            Is.EqualTo(new[] { "hosts", "resolv.conf", "resolv.conf.hash" }));
    }

    [Test]
    public async Task Create_in_host_mode_without_extra_hosts_copies_the_hosts_hosts_file()
    {
        var hostHosts = _dir.Write("host-hosts", "127.0.0.1 localhost myhost\n# host's own\n");

        await _files.CreateAsync(_sandbox, _options with { UseHostNetwork = true, ExtraHosts = [], HostHostsPath = hostHosts });

        Assert.That(Hosts, Is.EqualTo("127.0.0.1 localhost myhost\n# host's own\n"));
    }

    [Test]
    public async Task Host_mode_without_dns_settings_copies_the_hosts_resolv_conf_as_is_and_an_update_keeps_it()
    {
        var host = _dir.Write("host-resolv-loopback", "nameserver 127.0.0.53\r\noptions edns0");

        await _files.CreateAsync(_sandbox, _options with { UseHostNetwork = true, HostResolvConfPath = host });
        var update = await _files.UpdateResolvConfAsync(_sandbox, _options with { UseHostNetwork = true, HostResolvConfPath = host, EnableIPv6 = true });

        Assert.Multiple(() =>
        {
            Assert.That(File.ReadAllBytes(SandboxFiles.ResolvConfPath(_sandbox)), Is.EqualTo(File.ReadAllBytes(host)));
            Assert.That(update, Is.EqualTo(ResolvConfUpdateResult.Unchanged));
        });
    }

    [Test]
    public async Task Create_in_host_mode_with_extra_hosts_or_without_a_host_file_writes_the_base_content()
    {
        var hostHosts = _dir.Write("host-hosts", "127.0.0.1 localhost myhost\n");
        var other = Path.Combine(_dir.Path, "sandboxes", "other");

        await _files.CreateAsync(_sandbox, _options with { UseHostNetwork = true, HostHostsPath = hostHosts });
        await _files.CreateAsync(other, _options with { UseHostNetwork = true, ExtraHosts = [], HostHostsPath = _dir.File("absent") });

        Assert.That(Hosts, Is.EqualTo(Base + "10.0.0.5\tdb\n"));
        Assert.That(File.ReadAllText(SandboxFiles.HostsPath(other)), Is.EqualTo(Base));
    }

    [Test]
    public async Task A_failed_write_leaves_no_temporary_file_and_keeps_the_old_file()
    {
        await _files.CreateAsync(_sandbox, _options);
        var before = Hosts;
        // A target that cannot be replaced: the rename fails after the temporary file was written and flushed.
        var blocked = Path.Combine(_sandbox, "blocked");
        Directory.CreateDirectory(blocked);
        File.WriteAllText(Path.Combine(blocked, "inside"), "x");

        var writeError = await Assert.CatchAsync(() => AtomicFile.WriteTextAsync(blocked, "nameserver 1.1.1.1\n", CancellationToken.None));
        var addError = await Assert.CatchAsync(() => HostsFile.AddEntriesAsync(blocked, [new HostEntry("x", IPAddress.Parse("10.1.1.1"))]));

        Assert.That(writeError, Is.InstanceOf<IOException>().Or.InstanceOf<UnauthorizedAccessException>());
        Assert.That(addError, Is.InstanceOf<IOException>().Or.InstanceOf<UnauthorizedAccessException>());
        Assert.That(Hosts, Is.EqualTo(before));
        Assert.That(_dir.TemporaryFiles(), Is.Empty);
    }

    [Test]
    public async Task Create_with_user_dns_builds_from_it()
    {
        await _files.CreateAsync(_sandbox, _options with { DnsServers = ["1.1.1.1"], DnsOptions = ["ndots:2"] });

        Assert.That(Resolv, Is.EqualTo("search corp.example\nnameserver 1.1.1.1\noptions ndots:2\n"));
    }

    [Test]
    public async Task Create_follows_systemd_resolved()
    {
        var stub = _dir.Write("stub-resolv.conf", "nameserver 127.0.0.53\noptions edns0 trust-ad\n");
        var real = _dir.Write("real-resolv.conf", "# real\nnameserver 192.168.1.1\n");

        await _files.CreateAsync(_sandbox, _options with { HostResolvConfPath = stub, SystemdResolvedConfPath = real });

        Assert.That(Resolv, Is.EqualTo("# real\nnameserver 192.168.1.1\n"));
    }

    [Test]
    public async Task Create_with_a_missing_host_file_uses_the_defaults()
    {
        await _files.CreateAsync(_sandbox, _options with { HostResolvConfPath = _dir.File("absent"), EnableIPv6 = true });

        Assert.That(Resolv, Is.EqualTo(
            "nameserver 8.8.8.8\nnameserver 8.8.4.4\nnameserver 2001:4860:4860::8888\nnameserver 2001:4860:4860::8844\n"));
    }

    [Test]
    public async Task Create_with_embedded_dns_writes_the_embedded_variant()
    {
        await _files.CreateAsync(_sandbox, _options with { UseEmbeddedDns = true });

        Assert.That(Resolv, Is.EqualTo("search corp.example\nnameserver 127.0.0.11\noptions ndots:0\n"));
    }

    [Test]
    public async Task Create_is_idempotent_and_keeps_joins_and_user_edits()
    {
        await _files.CreateAsync(_sandbox, _options);
        await _files.AddHostEntriesAsync(_sandbox, HostsFile.ContainerEntries("c1", "example.com", EndpointAddresses));
        File.AppendAllText(SandboxFiles.HostsPath(_sandbox), "10.9.9.9\tprinter\n");
        File.WriteAllText(SandboxFiles.ResolvConfPath(_sandbox), "nameserver 192.168.7.7\n");
        var hosts = Hosts;

        await _files.CreateAsync(_sandbox, _options);

        Assert.That(Hosts, Is.EqualTo(hosts));
        Assert.That(Resolv, Is.EqualTo("nameserver 192.168.7.7\n"));
    }

    [Test]
    public async Task Create_after_a_crash_that_wrote_only_the_hosts_file_completes_the_sandbox()
    {
        Directory.CreateDirectory(_sandbox);
        await HostsFile.WriteAsync(SandboxFiles.HostsPath(_sandbox), []);

        await _files.CreateAsync(_sandbox, _options);

        Assert.That(Resolv, Is.EqualTo("# host file\nnameserver 10.0.0.1\nsearch corp.example\n"));
    }

    [Test]
    public async Task Join_and_leave_add_and_remove_exact_lines_and_repeat_harmlessly()
    {
        await _files.CreateAsync(_sandbox, _options);
        var entries = HostsFile.ContainerEntries("c1", "example.com", EndpointAddresses);

        await _files.AddHostEntriesAsync(_sandbox, entries);
        await _files.AddHostEntriesAsync(_sandbox, entries);
        Assert.That(Hosts, Is.EqualTo(Base + "10.0.0.5\tdb\n172.17.0.2\tc1.example.com c1\nfd00::2\tc1.example.com c1\n"));

        await _files.RemoveHostEntriesAsync(_sandbox, EndpointAddresses);
        await _files.RemoveHostEntriesAsync(_sandbox, EndpointAddresses);
        Assert.That(Hosts, Is.EqualTo(Base + "10.0.0.5\tdb\n"));
    }

    [Test]
    public async Task Leave_keeps_the_users_lines()
    {
        await _files.CreateAsync(_sandbox, _options);
        await _files.AddHostEntriesAsync(_sandbox, HostsFile.ContainerEntries("c1", "example.com", EndpointAddresses));
        File.AppendAllText(SandboxFiles.HostsPath(_sandbox), "172.17.0.2\tc1-alias\n");

        await _files.RemoveHostEntriesAsync(_sandbox, EndpointAddresses);

        Assert.That(Hosts, Is.EqualTo(Base + "10.0.0.5\tdb\n172.17.0.2\tc1-alias\n"));
    }

    [Test]
    public async Task Update_regenerates_resolv_conf_for_ipv6_unless_the_user_edited_it()
    {
        _dir.Write("host-resolv.conf", "nameserver 10.0.0.1\nnameserver fd00::53\n");
        await _files.CreateAsync(_sandbox, _options);
        Assert.That(Resolv, Is.EqualTo("nameserver 10.0.0.1\n"));

        Assert.That(await _files.UpdateResolvConfAsync(_sandbox, _options with { EnableIPv6 = true }),
            Is.EqualTo(ResolvConfUpdateResult.Updated));
        Assert.That(Resolv, Is.EqualTo("nameserver 10.0.0.1\nnameserver fd00::53\n"));
        Assert.That(await _files.UpdateResolvConfAsync(_sandbox, _options with { EnableIPv6 = true }),
            Is.EqualTo(ResolvConfUpdateResult.Unchanged));

        File.WriteAllText(SandboxFiles.ResolvConfPath(_sandbox), "nameserver 192.168.7.7\n");
        Assert.That(await _files.UpdateResolvConfAsync(_sandbox, _options with { UseEmbeddedDns = true }),
            Is.EqualTo(ResolvConfUpdateResult.UserModified));
        Assert.That(Resolv, Is.EqualTo("nameserver 192.168.7.7\n"));
    }

    [Test]
    public async Task Update_switches_to_embedded_dns()
    {
        await _files.CreateAsync(_sandbox, _options);

        Assert.That(await _files.UpdateResolvConfAsync(_sandbox, _options with { UseEmbeddedDns = true }),
            Is.EqualTo(ResolvConfUpdateResult.Updated));
        Assert.That(Resolv, Is.EqualTo("search corp.example\nnameserver 127.0.0.11\noptions ndots:0\n"));
    }

    [Test]
    public async Task Delete_removes_the_directory_and_repeats_harmlessly()
    {
        await _files.CreateAsync(_sandbox, _options);

        await _files.DeleteAsync(_sandbox);
        await _files.DeleteAsync(_sandbox);

        Assert.That(Directory.Exists(_sandbox), Is.False);
        await _files.RemoveHostEntriesAsync(_sandbox, EndpointAddresses);
        Assert.That(await _files.UpdateResolvConfAsync(_sandbox, _options), Is.EqualTo(ResolvConfUpdateResult.Missing));
    }

    [Test]
    public async Task Concurrent_joins_on_one_sandbox_lose_no_line()
    {
        await _files.CreateAsync(_sandbox, _options);
        var entries = Enumerable.Range(1, 40).Select(i => new HostEntry("c" + i, IPAddress.Parse("172.17.1." + i))).ToList();

        await Task.WhenAll(entries.Select(e => Task.Run(() => _files.AddHostEntriesAsync(_sandbox, [e]))));

        var lines = Hosts.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.That(lines, Has.Length.EqualTo(7 + 40));
        Assert.That(_dir.TemporaryFiles(), Is.Empty);
    }

    [Test]
    public async Task No_temporary_files_are_left_after_a_full_lifecycle()
    {
        await _files.CreateAsync(_sandbox, _options);
        await _files.AddHostEntriesAsync(_sandbox, HostsFile.ContainerEntries("c1", null, EndpointAddresses));
        await _files.UpdateResolvConfAsync(_sandbox, _options with { UseEmbeddedDns = true });
        await _files.RemoveHostEntriesAsync(_sandbox, EndpointAddresses);

        Assert.That(_dir.TemporaryFiles(), Is.Empty);
        Assert.That(Directory.GetFiles(_sandbox).Select(Path.GetFileName).Order(),
            Is.EqualTo(new[] { "hosts", "resolv.conf", "resolv.conf.hash" }));
    }

    [Test]
    public async Task The_interface_can_be_mocked()
    {
        var mock = new Moq.Mock<ISandboxFiles>(Moq.MockBehavior.Strict);
        mock.Setup(f => f.DeleteAsync("x", default)).Returns(Task.CompletedTask);

        await mock.Object.DeleteAsync("x");

        mock.VerifyAll();
    }
}
