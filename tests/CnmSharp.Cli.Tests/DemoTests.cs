using System.Security.Cryptography;
using System.Text.RegularExpressions;
using CnmSharp.Testing;

namespace CnmSharp.Cli.Tests;

/// <summary>
/// <c>cnm demo</c> removes only what it made: its own temporary directory by default; in a directory it is given, only
/// its own entries (a given directory that holds anything the demo did not make is refused untouched). Three real demo
/// runs in all: one default, one kept and one that cleans up what the kept one left.
/// </summary>
[TestFixture]
[RequiresRoot]
public sealed partial class DemoTests
{
    private string _root = null!;

    [SetUp]
    public void SetUp()
    {
        _root = Path.Combine(Path.GetTempPath(), "cnmdemo-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4)));
        Directory.CreateDirectory(_root);
    }

    [TearDown]
    public async Task TearDown()
    {
        // What a failed demo may have left: sandbox namespaces and the host namespace in the run directories under the
        // test's own folder (nothing else), then the folder.
        foreach (var run in Directory.EnumerateDirectories(_root, "*", SearchOption.AllDirectories).Where(d => File.Exists(Path.Combine(d, "cnm-demo-host")) || Directory.Exists(Path.Combine(d, "netns"))).ToList())
        {
            await Cleanup.RemoveRunDirectoryAsync(run);
            if (File.Exists(Path.Combine(run, "cnm-demo-host")))
            {
                await new CnmSharp.Netlink.NetworkNamespaceManager(new CnmSharp.Netlink.NetworkNamespaceManagerOptions { RunDirectory = run, MakeRunDirectoryShared = false }).DeleteAsync("cnm-demo-host");
            }
        }

        Directory.Delete(_root, recursive: true);
    }

    [GeneratedRegex(@"\[ *[0-9.]+ ms\] pinged demo-b \(10\.89\.0\.\d+\) from demo-a \(ok\)")]
    private static partial Regex Pinged();

    [Test]
    public async Task By_default_the_demo_works_in_a_temporary_directory_of_its_own_and_removes_it()
    {
        // TMPDIR points the demo's temporary directory into this test's folder.
        var tmp = Path.Combine(_root, "tmp");
        Directory.CreateDirectory(tmp);

        var r = await CnmRunner.CnmWithEnvironmentAsync(new Dictionary<string, string?> { ["TMPDIR"] = tmp }, [], "demo");

        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        Assert.That(r.StdOut, Does.Match(Pinged().ToString()));
        Assert.That(r.StdOut, Does.Contain("demo succeeded"));
        var temporary = Regex.Match(r.StdOut, @"temporary directory (\S+), removed at the end").Groups[1].Value;
        Assert.That(temporary, Does.StartWith(tmp + "/cnm-demo-"), r.StdOut);
        Assert.That(r.StdOut, Does.Contain("removed directory " + temporary + "\n"), "the removal is printed");
        Assert.That(r.StdOut, Does.Contain("removed namespace " + temporary + "/run/cnm-demo-host"));
        Assert.That(Directory.Exists(temporary), Is.False, "the temporary directory is gone");
        Assert.That(Directory.EnumerateFileSystemEntries(tmp), Is.Empty, "nothing else was left");
    }

    [Test]
    public async Task In_a_given_empty_directory_the_demo_removes_only_its_own_entries_and_a_kept_run_is_cleaned_up_by_the_next()
    {
        var state = Path.Combine(_root, "state");
        Directory.CreateDirectory(state);
        var run = Path.Combine(_root, "new", "run"); // missing: the demo creates it (and "new") and may remove them
        string[] global = ["--state-dir", state + "/", "--run-dir", run];

        var kept = await CnmRunner.CnmAsync(global, "demo", "--keep");
        Assert.That(kept.ExitCode, Is.Zero, kept.ToString());
        Assert.That(File.Exists(Path.Combine(run, "cnm-demo-host")), Is.True, "--keep keeps the host namespace");
        Assert.That(File.Exists(Path.Combine(state, ".cnm-demo")), Is.True, "the demo marks the directory it claimed");

        var again = await CnmRunner.CnmAsync(global, "demo");
        Assert.That(again.ExitCode, Is.Zero, again.ToString());
        Assert.That(again.StdOut, Does.Match(Pinged().ToString()));
        Assert.That(again.StdOut, Does.Contain("removed sandboxes demo-a, demo-b").And.Contain("removed network demo-net"), "leftovers removed through a controller on the old state");

        Assert.That(Directory.Exists(state), Is.True, "the given directory stays");
        Assert.That(Directory.EnumerateFileSystemEntries(state), Is.Empty, "and is empty again");
        Assert.That(Directory.Exists(Path.Combine(_root, "new")), Is.False, "the directories the demo created are gone");
        Assert.That(again.StdOut, Does.Contain("removed directory " + run + "\n").And.Contain("removed directory " + Path.Combine(_root, "new") + "\n"));
    }

    [Test]
    public async Task A_given_directory_holding_a_file_the_demo_did_not_make_is_refused_untouched()
    {
        var precious = Path.Combine(_root, "precious");
        Directory.CreateDirectory(precious);
        var thesis = Path.Combine(precious, "thesis.txt");
        await File.WriteAllTextAsync(thesis, "years of work");
        var link = Path.Combine(_root, "link");
        File.CreateSymbolicLink(link, precious);
        var run = Path.Combine(_root, "run");

        // Every way of naming it: the option, a trailing slash, a symbolic link, CNM_STATE_DIR, and as the run directory.
        var attempts = new List<ProcessResult>
        {
            await CnmRunner.CnmAsync(["--state-dir", precious, "--run-dir", run], "demo"),
            await CnmRunner.CnmAsync(["--state-dir", precious + "/", "--run-dir", run], "demo"),
            await CnmRunner.CnmAsync(["--state-dir", link, "--run-dir", run], "demo"),
            await CnmRunner.CnmWithEnvironmentAsync(new Dictionary<string, string?> { ["CNM_STATE_DIR"] = precious + "//" }, ["--run-dir", run], "demo"),
            await CnmRunner.CnmAsync(["--state-dir", Path.Combine(_root, "state"), "--run-dir", link + "/"], "demo"),
        };

        foreach (var r in attempts)
        {
            Assert.That(r.ExitCode, Is.EqualTo(1), r.ToString());
            Assert.That(r.StdErrLines, Has.Length.EqualTo(1), r.ToString());
            Assert.That(r.StdErr, Does.StartWith("cnm: demo: refusing ").And.Contain(precious + ":"));
            Assert.That(r.StdOut, Is.Empty, "nothing was done");
        }

        Assert.That(Directory.EnumerateFileSystemEntries(precious), Is.EqualTo(new[] { thesis }));
        Assert.That(await File.ReadAllTextAsync(thesis), Is.EqualTo("years of work"));
        Assert.That(Directory.EnumerateFileSystemEntries(_root).Order(), Is.EqualTo(new[] { link, precious }), "no state or run directory was created");
    }

    [Test]
    public async Task A_real_state_directory_without_the_demo_marker_is_refused()
    {
        // A state directory of a real cnm: its store, no marker.
        var real = Path.Combine(_root, "real-state");
        Directory.CreateDirectory(real);
        var db = Path.Combine(real, "cnm.db");
        await File.WriteAllBytesAsync(db, [1, 2, 3]);

        var r = await CnmRunner.CnmWithEnvironmentAsync(new Dictionary<string, string?> { ["CNM_STATE_DIR"] = real }, ["--run-dir", Path.Combine(_root, "run")], "demo");

        Assert.That(r.ExitCode, Is.EqualTo(1), r.ToString());
        Assert.That(r.StdErrLines, Has.Length.EqualTo(1));
        Assert.That(r.StdErr, Does.Contain("no .cnm-demo marker"));
        Assert.That(await File.ReadAllBytesAsync(db), Is.EqualTo(new byte[] { 1, 2, 3 }));
        Assert.That(Directory.Exists(Path.Combine(_root, "run")), Is.False);
    }
}
