using CnmSharp.Netlink;

namespace CnmSharp.Netlink.Tests.Namespaces;

/// <summary>Argument validation and parsing: no kernel needed.</summary>
public sealed class NamespaceValidationTests
{
    [TestCase("")]
    [TestCase(".")]
    [TestCase("..")]
    [TestCase("a/b")]
    [TestCase("/abs")]
    [TestCase("nul\0byte")]
    public void Invalid_names_are_rejected(string name)
    {
        var manager = new NetworkNamespaceManager("/nonexistent-cnmt-dir");
        Assert.Multiple(() =>
        {
            Assert.That(NetworkNamespaceManager.IsValidName(name), Is.False);
            Assert.That(() => manager.GetPath(name), Throws.InstanceOf<ArgumentException>());
            Assert.That(async () => await manager.CreateAsync(name), Throws.InstanceOf<ArgumentException>());
            Assert.That(async () => await manager.DeleteAsync(name), Throws.InstanceOf<ArgumentException>());
            Assert.That(() => manager.Exists(name), Throws.InstanceOf<ArgumentException>());
        });
        Assert.That(Directory.Exists("/nonexistent-cnmt-dir"), Is.False);
    }

    [Test]
    public void Name_length_limit_is_255_bytes()
    {
        Assert.Multiple(() =>
        {
            Assert.That(NetworkNamespaceManager.IsValidName(new string('a', 255)), Is.True);
            Assert.That(NetworkNamespaceManager.IsValidName(new string('a', 256)), Is.False);
            Assert.That(NetworkNamespaceManager.IsValidName(new string('é', 128)), Is.False, "256 UTF-8 bytes");
            Assert.That(NetworkNamespaceManager.IsValidName("blue..red"), Is.True);
        });
    }

    [Test]
    public void Default_run_directory_is_var_run_netns()
    {
        Assert.Multiple(() =>
        {
            Assert.That(new NetworkNamespaceManager().RunDirectory, Is.EqualTo("/var/run/netns"));
            Assert.That(new NetworkNamespaceManager("/tmp/x/").GetPath("blue"), Is.EqualTo("/tmp/x/blue"));
            Assert.That(() => new NetworkNamespaceManager("relative/dir"), Throws.InstanceOf<ArgumentException>());
        });
    }

    [TestCase("net.ipv4.ip_forward", "/proc/sys/net/ipv4/ip_forward")]
    [TestCase("net/ipv4/ip_forward", "/proc/sys/net/ipv4/ip_forward")]
    [TestCase("net/ipv4/conf/eth0.10/forwarding", "/proc/sys/net/ipv4/conf/eth0.10/forwarding")]
    [TestCase("net.ipv6.conf.all.disable_ipv6", "/proc/sys/net/ipv6/conf/all/disable_ipv6")]
    [TestCase("net.ipv4.ping_group_range", "/proc/sys/net/ipv4/ping_group_range")]
    public void Sysctl_keys_map_to_proc_sys(string key, string path) =>
        Assert.That(Sysctl.GetPath(key), Is.EqualTo(path));

    [TestCase("")]
    [TestCase("kernel.hostname")]
    [TestCase("vm.swappiness")]
    [TestCase("net")]
    [TestCase("net.")]
    [TestCase("net/ipv4/../../kernel/hostname")]
    [TestCase("net.ipv4..ip_forward")]
    [TestCase("NET.ipv4.ip_forward")]
    [TestCase("net.ipv4.ip forward")]
    [TestCase("net//ipv4")]
    [TestCase("/net/ipv4/ip_forward")]
    public void Bad_sysctl_keys_are_rejected(string key) =>
        Assert.That(() => Sysctl.GetPath(key), Throws.InstanceOf<ArgumentException>());

    [TestCase("net:[4026531833]", true, 4026531833UL)]
    [TestCase("net:[1]", true, 1UL)]
    [TestCase("uts:[4026531838]", false, 0UL)]
    [TestCase("net:[]", false, 0UL)]
    [TestCase("net:[12", false, 0UL)]
    [TestCase(null, false, 0UL)]
    public void Namespace_links_are_parsed(string? link, bool ok, ulong inode)
    {
        Assert.Multiple(() =>
        {
            Assert.That(NetworkNamespace.TryParseInode(link, out var parsed), Is.EqualTo(ok));
            Assert.That(parsed, Is.EqualTo(inode));
        });
    }

    [Test]
    public void Errors_carry_errno_and_path()
    {
        var ex = new NamespaceNotFoundException("open", 2, "/x/y");
        Assert.Multiple(() =>
        {
            Assert.That(ex, Is.InstanceOf<NamespaceException>());
            Assert.That(ex.ErrorNumber, Is.EqualTo(2));
            Assert.That(ex.Path, Is.EqualTo("/x/y"));
            Assert.That(ex.Operation, Is.EqualTo("open"));
            Assert.That(ex.Message, Does.Contain("/x/y").And.Contain("errno 2"));
        });
    }
}
