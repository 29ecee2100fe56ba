using System.Net;
using CnmSharp.Sandboxes.Files;

namespace CnmSharp.Tests.Sandboxes;

[TestFixture]
public sealed class HostsFileTests
{
    private const string Base =
        "127.0.0.1\tlocalhost\n" +
        "::1\tlocalhost ip6-localhost ip6-loopback\n" +
        "fe00::0\tip6-localnet\n" +
        "ff00::0\tip6-mcastprefix\n" +
        "ff02::1\tip6-allnodes\n" +
        "ff02::2\tip6-allrouters\n";

    private SandboxTestDirectory _dir = null!;
    private string _hosts = null!;

    [SetUp]
    public void SetUp()
    {
        _dir = new SandboxTestDirectory();
        _hosts = _dir.File("hosts");
    }

    [TearDown]
    public void TearDown() => _dir.Dispose();

    private static HostEntry Entry(string name, string address) => new(name, IPAddress.Parse(address));

    private static readonly HostEntry s_c1v4 = Entry("c1.example.com c1", "172.17.0.2");
    private static readonly HostEntry s_c1v6 = Entry("c1.example.com c1", "fd00::2");

    [Test]
    public void Build_without_extra_hosts_is_exactly_the_base_content()
    {
        Assert.That(HostsFile.Build([]), Is.EqualTo(Base));
        Assert.That(HostsFile.BaseContent, Is.EqualTo(Base));
    }

    [Test]
    public void Build_appends_extra_hosts_in_order_tab_separated()
    {
        var content = HostsFile.Build([Entry("db", "10.0.0.5"), Entry("cache", "2001:db8::1"), Entry("db", "10.0.0.6")]);

        Assert.That(content, Is.EqualTo(Base + "10.0.0.5\tdb\n2001:db8::1\tcache\n10.0.0.6\tdb\n"));
    }

    [TestCase("")]
    [TestCase(" ")]
    [TestCase("a\tb")]
    [TestCase("a\nb")]
    [TestCase("a#b")]
    [TestCase("a  b")]
    [TestCase(" a")]
    public void Invalid_names_are_refused(string name)
    {
        Assert.Throws<ArgumentException>(() => HostsFile.Build([Entry(name, "10.0.0.1")]));
    }

    [Test]
    public void Container_entries_use_fqdn_and_hostname_for_first_ipv4_and_first_ipv6()
    {
        var entries = HostsFile.ContainerEntries(
            "c1", "example.com",
            [IPAddress.Parse("fd00::2"), IPAddress.Parse("172.17.0.2"), IPAddress.Parse("172.18.0.2"), IPAddress.Parse("fd00::3")]);

        Assert.That(entries, Is.EqualTo(new[] { s_c1v4, s_c1v6 }));
        Assert.That(entries.Select(HostsFile.FormatLine), Is.EqualTo(new[] { "172.17.0.2\tc1.example.com c1", "fd00::2\tc1.example.com c1" }));
    }

    [TestCase("c1", null, "c1")]
    [TestCase("c1", "", "c1")]
    [TestCase("c1.corp.local", null, "c1.corp.local c1")]
    [TestCase("c1", "corp", "c1.corp c1")]
    public void Container_entry_names(string hostname, string? domain, string expected)
    {
        var entries = HostsFile.ContainerEntries(hostname, domain, [IPAddress.Parse("10.1.2.3")]);

        Assert.That(entries.Single().Name, Is.EqualTo(expected));
    }

    [Test]
    public void Container_entries_without_addresses_are_empty()
    {
        Assert.That(HostsFile.ContainerEntries("c1", null, []), Is.Empty);
    }

    [Test]
    public async Task Write_creates_the_file_with_mode_0644_and_no_temporary_files()
    {
        await HostsFile.WriteAsync(_hosts, [Entry("db", "10.0.0.5")]);

        Assert.That(File.ReadAllText(_hosts), Is.EqualTo(Base + "10.0.0.5\tdb\n"));
        Assert.That(_dir.TemporaryFiles(), Is.Empty);
        if (!OperatingSystem.IsWindows())
        {
            Assert.That(File.GetUnixFileMode(_hosts), Is.EqualTo(
                UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead));
        }
    }

    [Test]
    public async Task Add_appends_exact_lines_and_is_idempotent()
    {
        await HostsFile.WriteAsync(_hosts, []);

        Assert.That(await HostsFile.AddEntriesAsync(_hosts, [s_c1v4, s_c1v6]), Is.EqualTo(2));
        Assert.That(await HostsFile.AddEntriesAsync(_hosts, [s_c1v4, s_c1v6]), Is.Zero);

        Assert.That(File.ReadAllText(_hosts), Is.EqualTo(Base + "172.17.0.2\tc1.example.com c1\nfd00::2\tc1.example.com c1\n"));
        Assert.That(_dir.TemporaryFiles(), Is.Empty);
    }

    [Test]
    public async Task Remove_by_address_removes_only_lines_cnmsharp_added()
    {
        await HostsFile.WriteAsync(_hosts, []);
        await HostsFile.AddEntriesAsync(_hosts, [s_c1v4, s_c1v6]);
        // The user adds lines of their own, one with the same address.
        File.AppendAllText(_hosts, "# mine\n172.17.0.2\tmyalias\n10.9.9.9 printer\n");

        var removed = await HostsFile.RemoveEntriesAsync(_hosts, [IPAddress.Parse("172.17.0.2"), IPAddress.Parse("fd00::2")]);

        Assert.That(removed, Is.EqualTo(2));
        Assert.That(File.ReadAllText(_hosts), Is.EqualTo(Base + "# mine\n172.17.0.2\tmyalias\n10.9.9.9 printer\n"));
        Assert.That(File.Exists(_hosts + HostsFile.LedgerSuffix), Is.False);
    }

    [Test]
    public async Task Remove_is_idempotent()
    {
        await HostsFile.WriteAsync(_hosts, []);
        await HostsFile.AddEntriesAsync(_hosts, [s_c1v4]);

        Assert.That(await HostsFile.RemoveEntriesAsync(_hosts, [s_c1v4.Address]), Is.EqualTo(1));
        Assert.That(await HostsFile.RemoveEntriesAsync(_hosts, [s_c1v4.Address]), Is.Zero);
        Assert.That(File.ReadAllText(_hosts), Is.EqualTo(Base));
    }

    [Test]
    public async Task Remove_by_name_matches_any_name_of_a_line_case_insensitively()
    {
        await HostsFile.WriteAsync(_hosts, []);
        await HostsFile.AddEntriesAsync(_hosts, [s_c1v4, s_c1v6, Entry("other", "172.17.0.9")]);

        Assert.That(await HostsFile.RemoveEntriesAsync(_hosts, ["C1"]), Is.EqualTo(2));
        Assert.That(File.ReadAllText(_hosts), Is.EqualTo(Base + "172.17.0.9\tother\n"));
        Assert.That(File.ReadAllText(_hosts + HostsFile.LedgerSuffix), Is.EqualTo("172.17.0.9\tother\n"));
    }

    [Test]
    public async Task Remove_never_touches_base_content_or_extra_hosts()
    {
        await HostsFile.WriteAsync(_hosts, [Entry("db", "10.0.0.5")]);

        Assert.That(await HostsFile.RemoveEntriesAsync(_hosts, ["localhost", "db"]), Is.Zero);
        Assert.That(await HostsFile.RemoveEntriesAsync(_hosts, [IPAddress.Loopback, IPAddress.Parse("10.0.0.5")]), Is.Zero);
        Assert.That(File.ReadAllText(_hosts), Is.EqualTo(Base + "10.0.0.5\tdb\n"));
    }

    [Test]
    public async Task A_line_the_user_already_wrote_is_neither_duplicated_nor_claimed()
    {
        await HostsFile.WriteAsync(_hosts, []);
        File.AppendAllText(_hosts, "172.17.0.2\tc1.example.com c1\n");

        Assert.That(await HostsFile.AddEntriesAsync(_hosts, [s_c1v4]), Is.Zero);
        Assert.That(await HostsFile.RemoveEntriesAsync(_hosts, [s_c1v4.Address]), Is.Zero);
        Assert.That(File.ReadAllText(_hosts), Is.EqualTo(Base + "172.17.0.2\tc1.example.com c1\n"));
    }

    [Test]
    public async Task User_edits_survive_add_and_remove_including_a_missing_final_newline()
    {
        await HostsFile.WriteAsync(_hosts, []);
        File.AppendAllText(_hosts, "10.9.9.9\tprinter");

        await HostsFile.AddEntriesAsync(_hosts, [s_c1v4]);
        Assert.That(File.ReadAllText(_hosts), Is.EqualTo(Base + "10.9.9.9\tprinter\n172.17.0.2\tc1.example.com c1\n"));

        await HostsFile.RemoveEntriesAsync(_hosts, [s_c1v4.Address]);
        Assert.That(File.ReadAllText(_hosts), Is.EqualTo(Base + "10.9.9.9\tprinter\n"));
    }

    [Test]
    public async Task Add_repeated_after_a_crash_between_ledger_and_file_appends_the_line()
    {
        await HostsFile.WriteAsync(_hosts, []);
        // State after a crash: the ledger names the line, the file does not have it yet.
        File.WriteAllText(_hosts + HostsFile.LedgerSuffix, "172.17.0.2\tc1.example.com c1\n");

        Assert.That(await HostsFile.AddEntriesAsync(_hosts, [s_c1v4]), Is.EqualTo(1));
        Assert.That(File.ReadAllText(_hosts), Is.EqualTo(Base + "172.17.0.2\tc1.example.com c1\n"));
        Assert.That(File.ReadAllText(_hosts + HostsFile.LedgerSuffix), Is.EqualTo("172.17.0.2\tc1.example.com c1\n"));
    }

    [Test]
    public async Task Add_to_a_missing_file_fails()
    {
        await Assert.ThrowsAsync<FileNotFoundException>(() => HostsFile.AddEntriesAsync(_hosts, [s_c1v4]));
    }

    [Test]
    public async Task Remove_from_a_missing_file_is_harmless()
    {
        Assert.That(await HostsFile.RemoveEntriesAsync(_hosts, [s_c1v4.Address]), Is.Zero);
        Assert.That(File.Exists(_hosts), Is.False);
    }

    [Test]
    public async Task Write_replaces_an_old_ledger()
    {
        await HostsFile.WriteAsync(_hosts, []);
        await HostsFile.AddEntriesAsync(_hosts, [s_c1v4]);

        await HostsFile.WriteAsync(_hosts, []);

        Assert.That(File.Exists(_hosts + HostsFile.LedgerSuffix), Is.False);
        Assert.That(File.ReadAllText(_hosts), Is.EqualTo(Base));
    }
}
