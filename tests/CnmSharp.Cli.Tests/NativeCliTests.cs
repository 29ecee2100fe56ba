using System.Security.Cryptography;
using System.Text.Json;
using CnmSharp.Testing;

namespace CnmSharp.Cli.Tests;

/// <summary>
/// The form users install (docs/cli.md, README): <c>dotnet publish samples/CnmSharp.Cli</c> makes a Native AOT
/// executable. Published here into a temporary directory and run through real commands in a private host namespace,
/// so that trimming or AOT cannot break what the JIT-run tests (<c>dotnet cnm.dll</c>) do not see: the JSON of inspect,
/// the template engine, SQLite's native library, netlink, the firewall.
/// </summary>
[TestFixture]
[RequiresRoot]
[NonParallelizable]
public sealed class NativeCliTests
{
    [Test]
    [CancelAfter(900_000)]
    public async Task The_published_native_cnm_runs_a_network_lifecycle()
    {
        var output = Path.Combine(Path.GetTempPath(), "cnmaot-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4)));
        try
        {
            // The libraries are built already (this project references them): publish the CLI alone.
            var publish = await CnmRunner.RunAsync("dotnet", ["publish", Path.Combine(CnmRunner.RepoRoot, "samples", "CnmSharp.Cli"), "-c", CnmRunner.Configuration,
                "--no-dependencies", "--nologo", "-o", output], TimeSpan.FromMinutes(12));
            Assert.That(publish.ExitCode, Is.Zero, publish.ToString());
            Assert.That(publish.StdOut + publish.StdErr, Does.Not.Contain("warning"), "the AOT publish is warning-free");
            var cnm = Path.Combine(output, "cnm");
            var header = new byte[4];
            await using (var file = File.OpenRead(cnm))
            {
                await file.ReadExactlyAsync(header);
            }

            Assert.Multiple(() =>
            {
                Assert.That(header, Is.EqualTo(new byte[] { 0x7f, (byte)'E', (byte)'L', (byte)'F' }), "a native executable");
                Assert.That(File.Exists(Path.Combine(output, "cnm.dll")), Is.False, "no IL to JIT");
            });

            await using var lab = await CliLab.CreateAsync();
            async Task<ProcessResult> Run(params string[] args)
            {
                var r = await CnmRunner.RunAsync(cnm, [.. lab.GlobalArgs, .. args], TimeSpan.FromMinutes(2));
                Assert.That(r.ExitCode, Is.Zero, $"cnm {string.Join(' ', args)}: {r}");
                return r;
            }

            var net = "aot-" + lab.Suffix;
            var c1 = "c1-" + lab.Suffix;
            var help = await Run("--help");
            Assert.That(help.StdOut, Does.Contain("network"));
            var id = (await Run("network", "create", "--subnet", "10.95.7.0/24", "--label", "k=v", net)).StdOut.Trim();
            await Run("sandbox", "create", "--hostname", "h1", c1);
            var published = await Run("network", "connect", "--ip", "10.95.7.9", "-p", "8080:80", net, c1);
            var ls = await Run("network", "ls");
            var quiet = await Run("network", "ls", "-q", "--no-trunc");
            var inspect = await Run("network", "inspect", net);
            var template = await Run("sandbox", "inspect", "-f", "{{range .Endpoints}}{{.IPv4Address}}{{end}} {{.Hostname}}", c1);
            var json = await Run("sandbox", "ls", "--format", "json");
            await Run("network", "disconnect", net, c1);
            await Run("sandbox", "rm", c1);
            await Run("network", "rm", net);
            var after = await Run("network", "ls", "--format", "{{.Name}}");

            using var doc = JsonDocument.Parse(inspect.StdOut);
            Assert.Multiple(() =>
            {
                Assert.That(published.StdOut.Trim(), Is.EqualTo("80/tcp -> 0.0.0.0:8080"));
                Assert.That(ls.StdOut, Does.Contain(id[..12]).And.Contain(net));
                Assert.That(quiet.StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries), Does.Contain(id));
                Assert.That(doc.RootElement[0].GetProperty("Id").GetString(), Is.EqualTo(id));
                Assert.That(doc.RootElement[0].GetProperty("Labels").GetProperty("k").GetString(), Is.EqualTo("v"));
                Assert.That(template.StdOut.Trim(), Is.EqualTo("10.95.7.9/24 h1"));
                Assert.That(json.StdOut, Does.Contain($"\"Container\":\"{c1}\""));
                Assert.That(after.StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries), Does.Not.Contain(net));
            });
        }
        finally
        {
            if (Directory.Exists(output))
            {
                Directory.Delete(output, recursive: true);
            }
        }
    }
}
