using CnmSharp.Testing;

namespace CnmSharp.Cli.Tests;

/// <summary><c>-q/--quiet</c> and <c>--no-trunc</c> on <c>network ls</c> and <c>sandbox ls</c>, as Docker has them.</summary>
[TestFixture]
[RequiresRoot]
public sealed class ListOptionsCliTests : CliFixture
{
    [Test]
    public async Task Network_ls_quiet_prints_short_ids_and_no_trunc_whole_ones()
    {
        var net = Unique("lsq");
        var create = await Cnm("network", "create", "--subnet", "10.97.41.0/24", net);
        Assert.That(create.ExitCode, Is.Zero, create.ToString());
        var id = create.StdOut.Trim();

        var quiet = await Cnm("network", "ls", "-q");
        var quietWhole = await Cnm("network", "ls", "--quiet", "--no-trunc");
        var table = await Cnm("network", "ls", "--no-trunc");
        var format = await Cnm("network", "ls", "--no-trunc", "--format", "{{.ID}} {{.Name}}");
        var formatWins = await Cnm("network", "ls", "-q", "--format", "{{.Name}}");
        Assert.Multiple(() =>
        {
            Assert.That(quiet.ExitCode, Is.Zero, quiet.ToString());
            Assert.That(Lines(quiet), Does.Contain(id[..12]));
            Assert.That(Lines(quiet), Has.All.Match("^[0-9a-f]{12}$"), "ids only, 12 characters");
            Assert.That(Lines(quiet), Has.Length.EqualTo(4), "none, host, bridge and the new one");
            Assert.That(Lines(quietWhole), Does.Contain(id));
            Assert.That(Lines(quietWhole), Has.All.Match("^[0-9a-f]{64}$"));
            Assert.That(Lines(table)[0], Does.Match(@"^NETWORK ID\s+NAME\s+DRIVER\s+SCOPE$"));
            Assert.That(Lines(table).Single(l => l.EndsWith("local", StringComparison.Ordinal) && l.Contains(net, StringComparison.Ordinal)), Does.StartWith(id + " "));
            Assert.That(Lines(format), Does.Contain($"{id} {net}"));
            Assert.That(Lines(formatWins), Does.Contain(net), "a --format given wins over -q, as in Docker");
        });
    }

    [Test]
    public async Task Sandbox_ls_quiet_prints_short_ids_and_no_trunc_whole_ones()
    {
        var name = Unique("lsqs");
        var create = await Cnm("sandbox", "create", name);
        Assert.That(create.ExitCode, Is.Zero, create.ToString());
        var id = create.StdOut.Trim();
        try
        {
            var quiet = await Cnm("sandbox", "ls", "-q");
            var whole = await Cnm("sandbox", "ls", "-q", "--no-trunc");
            var table = await Cnm("sandbox", "ls");
            var tableWhole = await Cnm("sandbox", "ls", "--no-trunc");
            Assert.Multiple(() =>
            {
                Assert.That(Lines(quiet), Is.EqualTo(new[] { id[..12] }), quiet.ToString());
                Assert.That(Lines(whole), Is.EqualTo(new[] { id }), whole.ToString());
                Assert.That(Lines(table)[1], Does.StartWith(id[..12] + " "));
                Assert.That(Lines(tableWhole)[1], Does.StartWith(id + " "));
            });
        }
        finally
        {
            await Cnm("sandbox", "rm", name);
        }
    }

    private static string[] Lines(ProcessResult r) => r.StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries);
}
