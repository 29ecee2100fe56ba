namespace CnmSharp.Tests.Core;

/// <summary>Which resolv.conf the controller gives a sandbox: host-namespace sandboxes get the host's file as is
/// (libnetwork's host mode), the others a filtered one.</summary>
public sealed class SandboxResolvConfTests : ControllerTestBase
{
    // CR LF, no final line end, a byte that is not UTF-8, and localhost servers: all must survive a copy.
    private static readonly byte[] HostFile =
        [.. "# host's own\r\nnameserver 127.0.0.1\nnameserver ::1\n\tsearch corp.example\n# \u00e9 "u8, 0xff, .. "\nnameserver 10.0.0.1"u8];

    private string _hostResolvConf = null!;

    [SetUp]
    public void WriteHostFile()
    {
        _hostResolvConf = Path.Combine(F.Directory, "host-resolv.conf");
        File.WriteAllBytes(_hostResolvConf, HostFile);
        F.Configure = o => o.HostResolvConfPath = _hostResolvConf;
    }

    [Test]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public async Task A_host_namespace_sandbox_gets_a_byte_for_byte_copy_of_the_hosts_resolv_conf_mode_0644()
    {
        File.SetUnixFileMode(_hostResolvConf, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        var c = await F.StartAsync();

        var sb = await c.CreateSandboxAsync("hostmode", new SandboxCreateOptions { UseHostNamespace = true });

        Assert.Multiple(() =>
        {
            Assert.That(File.ReadAllBytes(sb.ResolvConfPath), Is.EqualTo(HostFile));
            Assert.That(File.GetUnixFileMode(sb.ResolvConfPath), Is.EqualTo(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead));
        });
    }

    [Test]
    public async Task Other_sandboxes_and_host_namespace_sandboxes_with_dns_settings_of_their_own_keep_the_filtered_file()
    {
        var c = await F.StartAsync();

        var normal = await c.CreateSandboxAsync("normal");
        var hostWithDns = await c.CreateSandboxAsync("hostdns", new SandboxCreateOptions { UseHostNamespace = true, DnsSearch = ["other.example"] });

        Assert.Multiple(() =>
        {
            Assert.That(File.ReadAllText(normal.ResolvConfPath), Does.Contain("nameserver 10.0.0.1").And.Not.Contain("127.0.0.1").And.Not.Contain("::1"));
            Assert.That(File.ReadAllText(hostWithDns.ResolvConfPath), Is.EqualTo("search other.example\nnameserver 10.0.0.1\n"));
        });
    }

    [Test]
    public async Task A_host_namespace_sandbox_gets_an_empty_file_when_the_host_has_none()
    {
        File.Delete(_hostResolvConf);
        var c = await F.StartAsync();

        var sb = await c.CreateSandboxAsync("hostmode", new SandboxCreateOptions { UseHostNamespace = true });

        Assert.That(File.ReadAllBytes(sb.ResolvConfPath), Is.Empty);
    }
}
