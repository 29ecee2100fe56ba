using System.Security.Cryptography;
using CnmSharp.Testing;

namespace CnmSharp.Cli.Tests;

/// <summary>
/// The base of the fixtures that run <c>cnm</c> as a user does: one <see cref="CliLab"/> (private host namespace,
/// temporary state and run directories) made once per fixture and disposed at its end, failed or not.
/// </summary>
public abstract class CliFixture
{
    private CliLab _lab = null!;

    /// <summary>The private host namespace every <c>cnm</c> process of the fixture uses.</summary>
    protected TestHostNamespace Host => _lab.Host;

    /// <summary>The fixture's temporary directory (<c>state</c> and <c>run</c> under it).</summary>
    protected string Root => _lab.Root;

    /// <summary>The fixture's lab.</summary>
    private protected CliLab Lab => _lab;

    /// <summary>The global options that point <c>cnm</c> at the fixture's state, run directory and namespace.</summary>
    protected string[] Global => _lab.GlobalArgs;

    /// <summary>Creates the lab.</summary>
    [OneTimeSetUp]
    public async Task CreateFixtureAsync() => _lab = await CliLab.CreateAsync();

    /// <summary>Disposes the lab (its processes, namespaces, directories).</summary>
    [OneTimeTearDown]
    public async Task RemoveFixtureAsync() => await _lab.DisposeAsync();

    /// <summary>Runs <c>cnm</c> with the fixture's global options.</summary>
    private protected Task<ProcessResult> Cnm(params string[] args) => _lab.CnmAsync(args);

    /// <summary>A name unique to this run.</summary>
    protected static string Unique(string prefix) => $"{prefix}-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(3))}";
}
