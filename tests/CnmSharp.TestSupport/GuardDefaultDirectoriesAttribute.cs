using NUnit.Framework;
using NUnit.Framework.Interfaces;

namespace CnmSharp.Testing;

/// <summary>
/// Fails the test after which one of CnmSharp's default directories (<c>/run/cnmsharp</c>, <c>/var/run/cnmsharp</c>,
/// <c>/var/lib/cnmsharp</c>) exists when it did not when the test assembly started: tests must use only their own
/// temporary directories, never the machine's. Applied to every test assembly by <c>tests/Directory.Build.props</c>.
/// The directory is not removed (something may have to be looked at, and it may not be the test run's); the message
/// says what to remove.
/// </summary>
[AttributeUsage(AttributeTargets.Assembly, AllowMultiple = false)]
public sealed class GuardDefaultDirectoriesAttribute : Attribute, ITestAction
{
    /// <summary>The library's default run and state directories.</summary>
    public static readonly IReadOnlyList<string> Guarded = ["/run/cnmsharp", "/var/run/cnmsharp", "/var/lib/cnmsharp"];

    // Which guarded directories existed before the first test of this assembly (one process per test assembly).
    private static readonly Lazy<HashSet<string>> s_before = new(() => [.. Guarded.Where(Exists)]);

    /// <inheritdoc />
    public ActionTargets Targets => ActionTargets.Test;

    /// <inheritdoc />
    public void BeforeTest(ITest test) => _ = s_before.Value;

    /// <inheritdoc />
    public void AfterTest(ITest test)
    {
        var appeared = Appeared();
        if (appeared.Count > 0)
        {
            Assert.Fail($"{string.Join(", ", appeared)} appeared during this test run (found after {test?.FullName}); it did not exist when the run started. " +
                "Tests must use their own temporary state and run directories. Remove it (rmdir, or rm -r if only this run wrote it) before the next run.");
        }
    }

    /// <summary>The guarded directories that exist now but did not before the first test.</summary>
    /// <returns>Their paths.</returns>
    public static IReadOnlyList<string> Appeared() => [.. Guarded.Where(p => !s_before.Value.Contains(p) && Exists(p))];

    private static bool Exists(string path) => Directory.Exists(path) || File.Exists(path) || new FileInfo(path).LinkTarget is not null;
}
