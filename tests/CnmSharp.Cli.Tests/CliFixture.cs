using System.Security.Cryptography;
using CnmSharp.Testing;

namespace CnmSharp.Cli.Tests;

/// <summary>
/// The fixture of the tests that run <c>cnm</c> as a user does: a private host namespace and a temporary directory
/// holding the state and run directories, made once per fixture and removed at its end, failed or not.
/// </summary>
/// <param name="prefix">The temporary directory's name prefix (which fixture made it).</param>
public abstract class CliFixture(string prefix)
{
    /// <summary>The private host namespace every <c>cnm</c> process of the fixture uses.</summary>
    protected TestHostNamespace Host { get; private set; } = null!;

    /// <summary>The fixture's temporary directory (<c>state</c> and <c>run</c> under it).</summary>
    protected string Root { get; private set; } = null!;

    /// <summary>The global options that point <c>cnm</c> at the fixture's state, run directory and namespace.</summary>
    protected string[] Global { get; private set; } = null!;

    /// <summary>Creates the namespace and the directory.</summary>
    [OneTimeSetUp]
    public async Task CreateFixtureAsync()
    {
        Host = await TestHostNamespace.CreateAsync();
        Root = Path.Combine(Path.GetTempPath(), prefix + "-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4)));
        Directory.CreateDirectory(Root);
        Global = ["--state-dir", Path.Combine(Root, "state"), "--run-dir", Path.Combine(Root, "run"), "--host-netns", Host.Path];
    }

    /// <summary>Removes the run directory's namespaces and mounts, the directory, and the namespace.</summary>
    [OneTimeTearDown]
    public async Task RemoveFixtureAsync()
    {
        try
        {
            await Cleanup.RemoveRunDirectoryAsync(Path.Combine(Root, "run"));
            Directory.Delete(Root, recursive: true);
        }
        finally
        {
            await Host.DisposeAsync();
        }
    }

    /// <summary>Runs <c>cnm</c> with the fixture's global options.</summary>
    private protected Task<ProcessResult> Cnm(params string[] args) => CnmRunner.CnmAsync(Global, args);

    /// <summary>A name unique to this run.</summary>
    protected static string Unique(string prefix) => $"{prefix}-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(3))}";
}
