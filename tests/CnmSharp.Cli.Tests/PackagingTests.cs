using System.IO.Compression;
using System.Security.Cryptography;
using System.Xml.Linq;

namespace CnmSharp.Cli.Tests;

/// <summary>
/// The three libraries pack into .nupkg + .snupkg with README, license expression, XML docs and Source Link metadata,
/// and a console app that references the CnmSharp <em>package</em> from a local feed builds and runs.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class PackagingTests
{
    private static readonly string[] Libraries = ["CnmSharp.Netlink", "CnmSharp.Abstractions", "CnmSharp.Plugins.Protocol", "CnmSharp"];

    [Test]
    [CancelAfter(300_000)]
    public async Task Libraries_pack_and_the_smoke_app_runs_from_the_package()
    {
        // A unique version, so the global packages folder never serves a stale CnmSharp from an earlier run.
        var version = $"0.1.0-smoke.{DateTime.UtcNow:yyyyMMddHHmmss}.{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(2))}";
        var root = Path.Combine(Path.GetTempPath(), "cnmpack-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4)));
        var feed = Path.Combine(root, "feed");
        var app = Path.Combine(root, "app");
        Directory.CreateDirectory(feed);
        Directory.CreateDirectory(app);
        try
        {
            // Source Link maps sources to the URL of the git remote, and only for hosts it knows (GitHub here); a clone
            // whose origin is a local path (as CI's is) or that has no remote gets no mapping.
            var remote = await CnmRunner.RunAsync("git", ["remote", "get-url", "origin"], TimeSpan.FromSeconds(30));
            var hasRemote = remote.ExitCode == 0 && remote.StdOut.Contains("github.com", StringComparison.OrdinalIgnoreCase);
            if (!hasRemote)
            {
                await TestContext.Out.WriteLineAsync("note: the origin remote is not on GitHub, so the PDBs carry no Source Link map; checked the nuspec repository commit only");
            }

            foreach (var library in Libraries)
            {
                // The libraries are built already (the CLI this project depends on references them): pack only.
                var pack = await CnmRunner.RunAsync("dotnet", ["pack", Path.Combine(CnmRunner.RepoRoot, "src", library), "-c", CnmRunner.Configuration,
                    "--no-build", "--nologo", "-o", feed, $"-p:PackageVersion={version}"], TimeSpan.FromMinutes(3));
                Assert.That(pack.ExitCode, Is.Zero, pack.ToString());
                AssertPackage(Path.Combine(feed, $"{library}.{version}.nupkg"), library, version);
                AssertSymbols(Path.Combine(feed, $"{library}.{version}.snupkg"), library, hasRemote);
            }

            var smoke = Path.Combine(CnmRunner.RepoRoot, "samples", "CnmSharp.PackageSmoke");
            File.Copy(Path.Combine(smoke, "CnmSharp.PackageSmoke.csproj"), Path.Combine(app, "CnmSharp.PackageSmoke.csproj"));
            File.Copy(Path.Combine(smoke, "Program.cs"), Path.Combine(app, "Program.cs"));

            // The local feed in addition to the sources the machine already has.
            await File.WriteAllTextAsync(Path.Combine(app, "nuget.config"), $"""
                <?xml version="1.0" encoding="utf-8"?>
                <configuration>
                  <packageSources>
                    <add key="cnmsharp-local" value="{feed}" />
                  </packageSources>
                </configuration>
                """);
            var restore = await CnmRunner.RunAsync("dotnet", ["restore", "--nologo", $"-p:CnmSharpVersion={version}"], TimeSpan.FromMinutes(3), app);
            Assert.That(restore.ExitCode, Is.Zero, restore.ToString());
            var run = await CnmRunner.RunAsync("dotnet", ["run", "--no-restore", $"-p:CnmSharpVersion={version}"], TimeSpan.FromMinutes(3), app);
            Assert.That(run.ExitCode, Is.Zero, run.ToString());
            Assert.That(run.StdOut, Does.Contain("package smoke ok: drivers bridge,host,ipvlan,macvlan,null,overlay; network smoke created (null)"));

            var assets = await File.ReadAllTextAsync(Path.Combine(app, "obj", "project.assets.json"));
            Assert.That(assets, Does.Contain($"\"CnmSharp/{version}\""), "CnmSharp came from the package, not a project");
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    private static void AssertPackage(string path, string id, string version)
    {
        Assert.That(File.Exists(path), Is.True, path);
        using var zip = ZipFile.OpenRead(path);
        var names = zip.Entries.Select(e => e.FullName).ToList();
        Assert.That(names, Does.Contain("README.md"));
        Assert.That(names, Does.Contain($"lib/net10.0/{id}.dll"));
        Assert.That(names, Does.Contain($"lib/net10.0/{id}.xml"), "XML docs");

        using var nuspecStream = zip.GetEntry($"{id}.nuspec")!.Open();
        var nuspec = XDocument.Load(nuspecStream);
        var ns = nuspec.Root!.GetDefaultNamespace();
        var metadata = nuspec.Root.Element(ns + "metadata")!;
        Assert.That(metadata.Element(ns + "version")!.Value, Is.EqualTo(version));
        var license = metadata.Element(ns + "license")!;
        Assert.That((license.Attribute("type")!.Value, license.Value), Is.EqualTo(("expression", "MIT")));
        Assert.That(metadata.Element(ns + "readme")!.Value, Is.EqualTo("README.md"));
        var repository = metadata.Element(ns + "repository")!;
        Assert.That(repository.Attribute("url")!.Value, Does.StartWith("https://github.com/"), "Source Link repository");
        Assert.That(repository.Attribute("commit")?.Value, Does.Match("^[0-9a-f]{40}$"), "Source Link commit");
    }

    private static void AssertSymbols(string path, string id, bool expectSourceLink)
    {
        Assert.That(File.Exists(path), Is.True, path);
        using var zip = ZipFile.OpenRead(path);
        var pdb = zip.GetEntry($"lib/net10.0/{id}.pdb");
        Assert.That(pdb, Is.Not.Null, "the symbol package holds the PDB");
        if (expectSourceLink)
        {
            using var stream = pdb!.Open();
            using var memory = new MemoryStream();
            stream.CopyTo(memory);
            Assert.That(System.Text.Encoding.UTF8.GetString(memory.ToArray()), Does.Contain("\"documents\""), "Source Link map in the PDB");
        }
    }
}
