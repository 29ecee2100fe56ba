using System.Security.Cryptography;
using CnmSharp.Testing;

namespace CnmSharp.Cli.Tests;

/// <summary>
/// Strict input: what the command line alone shows to be wrong is a usage error (exit 2), what the library refuses is
/// exit 1; each is one line on stderr with control characters escaped, and nothing is left behind. Run against a private
/// host namespace and temporary directories, so a check that let something through could harm nothing.
/// </summary>
[TestFixture]
[RequiresRoot]
public sealed class CliStrictInputTests : CliFixture
{
    private static void AssertOneLine(ProcessResult r, int exitCode)
    {
        Assert.That(r.ExitCode, Is.EqualTo(exitCode), r.ToString());
        Assert.That(r.StdErrLines, Has.Length.EqualTo(1), r.ToString());
        Assert.That(r.StdErr, Does.StartWith("cnm: "));
        Assert.That(r.StdErr, Does.Not.Contain(" at ").And.Not.Contain("Exception"), "no stack trace");
        Assert.That(r.StdErr.TrimEnd('\n').Any(char.IsControl), Is.False, "no raw control character");
    }

    [TestCase("--state-dir")]
    [TestCase("--run-dir")]
    [TestCase("--host-netns")]
    public async Task An_empty_directory_option_is_a_usage_error(string option)
    {
        var r = await CnmRunner.CnmAsync([option, ""], "network", "ls");
        AssertOneLine(r, 2);
        Assert.That(r.StdErr, Does.Contain(option));
    }

    [TestCase("--subnet", "foo")]
    [TestCase("--subnet", "10.96/16")]
    [TestCase("--subnet", "010.96.0.0/16")]
    [TestCase("--subnet", "10.96.0.0/+16")]
    [TestCase("--gateway", "foo")]
    [TestCase("--gateway", "10.96.3")]
    [TestCase("--gateway", "10.97.0.1")]
    [TestCase("--gateway", "fd00::1")]
    [TestCase("--ip-range", "10.96.0.128/2x")]
    [TestCase("--ip-range", "10.97.0.0/25")]
    public async Task A_malformed_address_in_network_create_is_a_usage_error(string option, string value)
    {
        string[] args = option == "--subnet"
            ? ["network", "create", "--subnet", value, "strict-a"]
            : ["network", "create", "--subnet", "10.96.0.0/24", option, value, "strict-a"];
        var r = await Cnm(args);
        AssertOneLine(r, 2);
        Assert.That(r.StdErr, Does.StartWith($"cnm: {option} {value}"));
    }

    [TestCase("--ip", "foo")]
    [TestCase("--ip", "1.2.3")]
    [TestCase("--ip", "fd00::5")]
    [TestCase("--ip6", "10.0.0.1")]
    [TestCase("--ip6", "fe80::1%1")]
    public async Task A_malformed_or_wrong_family_address_in_connect_is_a_usage_error(string option, string value)
    {
        var r = await Cnm("network", "connect", option, value, "no-such-net", "no-such-sandbox");
        AssertOneLine(r, 2);
        Assert.That(r.StdErr, Does.StartWith($"cnm: {option} {value}"));
    }

    [TestCase("network", "connect", "--no-such-option", "x", "net", "sb")]
    [TestCase("network", "connect", "net")]
    [TestCase("network", "frobnicate")]
    public async Task Unknown_options_and_missing_arguments_are_one_line_usage_errors(params string[] args)
    {
        var r = await Cnm(args);
        AssertOneLine(r, 2);
        Assert.That(r.StdErr, Does.Contain("--help"));
    }

    [Test]
    public async Task A_name_with_control_characters_is_refused_by_the_library_and_shown_escaped()
    {
        var create = await Cnm("network", "create", "--subnet", "10.98.0.0/24", "bad\u001b[31mred");
        AssertOneLine(create, 1);
        Assert.That(create.StdErr, Does.Contain("bad\\x1b[31mred"));

        var inspect = await Cnm("network", "inspect", "no\nsuch\u0007net");
        AssertOneLine(inspect, 1);
        Assert.That(inspect.StdErr, Does.Contain("no\\nsuch\\x07net").And.Contain("no such network"));
    }

    [Test]
    public async Task A_newline_in_a_container_id_is_refused_and_does_not_break_the_sandbox_table()
    {
        var good = "strict-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(3));
        Assert.That((await Cnm("sandbox", "create", good)).ExitCode, Is.Zero);
        try
        {
            var bad = await Cnm("sandbox", "create", "c1\nFAKE   ROW");
            AssertOneLine(bad, 1);
            Assert.That(bad.StdErr, Does.Contain("c1\\x0aFAKE").Or.Contain("c1\\nFAKE"), "the newline is shown escaped");

            var ls = await Cnm("sandbox", "ls");
            Assert.That(ls.ExitCode, Is.Zero, ls.ToString());
            var lines = ls.StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.That(lines, Has.Length.EqualTo(2), "the header and one row: " + ls.StdOut);
            Assert.That(lines[1], Does.Contain(good));
            Assert.That(ls.StdOut, Does.Not.Contain("FAKE"));
        }
        finally
        {
            Assert.That((await Cnm("sandbox", "rm", good)).ExitCode, Is.Zero);
        }
    }
}

/// <summary><c>cnm</c> run by an unprivileged user (nobody, no capabilities): one line saying it needs root, exit 1,
/// and no file created (no store, no -wal, -shm or lock file); <c>--help</c> still works. Root is needed to switch to
/// nobody.</summary>
[TestFixture]
[RequiresRoot]
public sealed class CliUnprivilegedTests
{
    private string _root = null!;

    [SetUp]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public void SetUp()
    {
        _root = Path.Combine(Path.GetTempPath(), "cnmnobody-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4)));
        Directory.CreateDirectory(Path.Combine(_root, "home"));
        Directory.CreateDirectory(Path.Combine(_root, "dirs"));

        // World-writable: nobody could create the store there, so only the capability check keeps it empty.
        File.SetUnixFileMode(Path.Combine(_root, "home"), (UnixFileMode)0x1ff);
        File.SetUnixFileMode(Path.Combine(_root, "dirs"), (UnixFileMode)0x1ff);
        File.SetUnixFileMode(_root, (UnixFileMode)0x1ed);
    }

    [TearDown]
    public void TearDown() => Directory.Delete(_root, recursive: true);

    private Task<ProcessResult> AsNobodyAsync(params string[] args)
    {
        var home = Path.Combine(_root, "home");
        return CnmRunner.RunAsync(
            "setpriv",
            ["--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", "--",
                "env", $"HOME={home}", $"DOTNET_CLI_HOME={home}", "dotnet", CnmRunner.CnmDll, .. args],
            TimeSpan.FromMinutes(2));
    }

    [TestCase("network", "ls")]
    [TestCase("sandbox", "ls")]
    [TestCase("network", "inspect", "bridge")]
    [TestCase("network", "create", "--subnet", "10.99.0.0/24", "n1")]
    [TestCase("demo")]
    public async Task Without_CAP_NET_ADMIN_and_CAP_SYS_ADMIN_it_says_it_needs_root_and_creates_nothing(params string[] command)
    {
        var dirs = Path.Combine(_root, "dirs");
        string[] global = command[0] == "demo"
            ? ["--state-dir", Path.Combine(dirs, "state")]
            : ["--state-dir", Path.Combine(dirs, "state"), "--run-dir", Path.Combine(dirs, "run")];

        var r = await AsNobodyAsync([.. global, .. command]);

        Assert.That(r.ExitCode, Is.EqualTo(1), r.ToString());
        Assert.That(r.StdErrLines, Has.Length.EqualTo(1), r.ToString());
        Assert.That(r.StdErr, Does.StartWith("cnm: ").And.Contain("needs root").And.Contain("CAP_NET_ADMIN").And.Contain("CAP_SYS_ADMIN"));
        Assert.That(Directory.EnumerateFileSystemEntries(dirs, "*", SearchOption.AllDirectories), Is.Empty, "no directory, store, -wal, -shm or lock file");
    }

    [Test]
    public async Task Help_works_unprivileged()
    {
        var r = await AsNobodyAsync("--help");
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        Assert.That(r.StdOut, Does.Contain("Usage:"));
    }
}
