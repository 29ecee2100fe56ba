using System.Text.Json;
using CnmSharp.Testing;

namespace CnmSharp.Cli.Tests;

/// <summary>The controller's warnings reach the user: one line each on stderr, nothing below Warning.</summary>
[TestFixture]
[RequiresRoot]
public sealed class CliWarningTests
{
    private CliLab _lab = null!;

    [SetUp]
    public async Task SetUp() => _lab = await CliLab.CreateAsync();

    [TearDown]
    public async Task TearDown() => await _lab.DisposeAsync();

    [Test]
    public async Task Removing_a_sandbox_whose_namespace_vanished_is_reported_on_stderr()
    {
        var container = $"w-{_lab.Suffix}";
        var create = await _lab.CnmAsync("sandbox", "create", container);
        Assert.That(create.ExitCode, Is.Zero, create.ToString());
        Assert.That(create.StdErr, Is.Empty, "information (the default networks, the sandbox) is not printed");
        var sandboxId = create.StdOut.Trim();

        var inspect = await _lab.CnmAsync("sandbox", "inspect", container);
        Assert.That(inspect.ExitCode, Is.Zero, inspect.ToString());
        string key;
        using (var doc = JsonDocument.Parse(inspect.StdOut))
        {
            key = doc.RootElement[0].GetProperty("Key").GetString()!;
        }

        // Behind the controller's back, as when `ip netns exec` drops the mount with its private mount namespace.
        var umount = await CnmRunner.RunAsync("umount", [key], TimeSpan.FromSeconds(10));
        Assert.That(umount.ExitCode, Is.Zero, umount.ToString());
        File.Delete(key);

        var ls = await _lab.CnmAsync("network", "ls");
        Assert.That(ls.ExitCode, Is.Zero, ls.ToString());
        Assert.That(ls.StdOut, Does.StartWith("NETWORK ID"), "stdout holds only the table");
        Assert.That(ls.StdOut, Does.Not.Contain("warning"));
        var warnings = ls.StdErrLines.Where(l => l.Contains(sandboxId, StringComparison.Ordinal)).ToList();
        Assert.That(warnings, Has.Count.EqualTo(1), "one line names the removed sandbox: " + ls);
        Assert.That(warnings[0], Does.StartWith("cnm: warning: ").And.Contain(key));
        Assert.That(ls.StdErrLines, Has.All.StartWith("cnm: warning: "), "every stderr line is one warning");

        var again = await _lab.CnmAsync("sandbox", "ls");
        Assert.That(again.ExitCode, Is.Zero, again.ToString());
        Assert.That(again.StdOut, Does.Not.Contain(container), "the stale sandbox is gone");
        Assert.That(again.StdErr, Is.Empty, "nothing left to report");
    }
}
