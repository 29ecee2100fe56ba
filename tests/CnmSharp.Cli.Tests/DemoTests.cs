using System.Security.Cryptography;
using CnmSharp.Testing;

namespace CnmSharp.Cli.Tests;

/// <summary><c>cnm demo</c>, twice in a row, in temporary state and run directories: both succeed, nothing is left.</summary>
[TestFixture]
[RequiresRoot]
public sealed class DemoTests
{
    [Test]
    public async Task Demo_runs_twice_in_a_row_and_leaves_nothing()
    {
        var root = Path.Combine(Path.GetTempPath(), "cnmcli-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4)));
        var state = Path.Combine(root, "demo-state");
        var run = Path.Combine(root, "demo-run");
        Directory.CreateDirectory(root);
        try
        {
            for (var i = 1; i <= 2; i++)
            {
                var r = await CnmRunner.CnmAsync(["--state-dir", state, "--run-dir", run], "demo");
                Assert.That(r.ExitCode, Is.Zero, $"run {i}: {r}");
                Assert.That(r.StdOut, Does.Match(@"\[ *[0-9.]+ ms\] pinged demo-b \(10\.89\.0\.\d+\) from demo-a \(ok\)"), $"run {i}");
                Assert.That(r.StdOut, Does.Contain("demo succeeded"));
                Assert.That(File.Exists(Path.Combine(run, "cnm-demo-host")), Is.False, $"run {i}: host namespace removed");
                Assert.That(Directory.Exists(run), Is.False, $"run {i}: run directory removed");
                Assert.That(Directory.Exists(state), Is.False, $"run {i}: state directory removed");
            }
        }
        finally
        {
            if (Directory.Exists(run))
            {
                await Cleanup.RemoveRunDirectoryAsync(run);
                if (File.Exists(Path.Combine(run, "cnm-demo-host")))
                {
                    await new CnmSharp.Netlink.NetworkNamespaceManager(new CnmSharp.Netlink.NetworkNamespaceManagerOptions { RunDirectory = run, MakeRunDirectoryShared = false }).DeleteAsync("cnm-demo-host");
                }
            }

            Directory.Delete(root, recursive: true);
        }
    }

    [Test]
    public async Task Demo_cleans_up_what_a_kept_run_left()
    {
        var root = Path.Combine(Path.GetTempPath(), "cnmcli-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4)));
        var state = Path.Combine(root, "demo-state");
        var run = Path.Combine(root, "demo-run");
        Directory.CreateDirectory(root);
        try
        {
            var kept = await CnmRunner.CnmAsync(["--state-dir", state, "--run-dir", run], "demo", "--keep");
            Assert.That(kept.ExitCode, Is.Zero, kept.ToString());
            Assert.That(File.Exists(Path.Combine(run, "cnm-demo-host")), Is.True, "--keep keeps the host namespace");

            var again = await CnmRunner.CnmAsync(["--state-dir", state, "--run-dir", run], "demo");
            Assert.That(again.ExitCode, Is.Zero, again.ToString());
            Assert.That(again.StdOut, Does.Contain("sandbox demo-a, sandbox demo-b, network demo-net"), "leftovers removed through a controller on the old state");
            Assert.That(Directory.Exists(run) || Directory.Exists(state), Is.False);
        }
        finally
        {
            if (Directory.Exists(run))
            {
                await Cleanup.RemoveRunDirectoryAsync(run);
                if (File.Exists(Path.Combine(run, "cnm-demo-host")))
                {
                    await new CnmSharp.Netlink.NetworkNamespaceManager(new CnmSharp.Netlink.NetworkNamespaceManagerOptions { RunDirectory = run, MakeRunDirectoryShared = false }).DeleteAsync("cnm-demo-host");
                }
            }

            Directory.Delete(root, recursive: true);
        }
    }
}
