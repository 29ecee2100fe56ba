using NUnit.Framework;
using NUnit.Framework.Interfaces;
using NUnit.Framework.Internal;

namespace CnmSharp.Testing;

/// <summary>
/// Marks a test (or fixture) that needs root: it is put in the <c>Root</c> category and, when the process is not
/// privileged, skipped with a reason. Under <c>CI=true</c> it is made not runnable instead, so it counts as a failure:
/// CI must never hide a root test behind a skip.
/// </summary>
[AttributeUsage(AttributeTargets.Method | AttributeTargets.Class, AllowMultiple = false, Inherited = true)]
public sealed class RequiresRootAttribute : NUnitAttribute, IApplyToTest
{
    /// <summary>The NUnit category given to root-only tests.</summary>
    public const string Category = "Root";

    /// <inheritdoc />
    public void ApplyToTest(Test test)
    {
        ArgumentNullException.ThrowIfNull(test);
        test.Properties.Add(PropertyNames.Category, Category);
        if (test.RunState == RunState.NotRunnable || Environment.IsPrivilegedProcess)
        {
            return;
        }

        if (TestEnvironment.IsCi)
        {
            test.RunState = RunState.NotRunnable;
            test.Properties.Set(PropertyNames.SkipReason, "requires root, and CI=true forbids skipping it");
        }
        else
        {
            test.RunState = RunState.Ignored;
            test.Properties.Set(PropertyNames.SkipReason, "requires root");
        }
    }
}

/// <summary>Facts about the environment the tests run in.</summary>
public static class TestEnvironment
{
    /// <summary>True under <c>CI=true</c>.</summary>
    public static bool IsCi => string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase);

    /// <summary>The one allowed skip: the kernel lacks a device kind. The reason names the kind.</summary>
    /// <param name="kind">The device kind, e.g. <c>dummy</c>.</param>
    public static void IgnoreMissingDeviceKind(string kind) =>
        Assert.Ignore($"kernel lacks device kind '{kind}'");
}
