using System.Reflection;
using NUnit.Framework;

namespace CnmSharp.Testing;

/// <summary>Finds and starts a helper program of the test suite (a small exe project such as the store crash writer or
/// the controller test host) under the same <c>dotnet</c> host as the tests.</summary>
public static class HelperProgram
{
    /// <summary>The <c>dotnet</c> host running the tests (or <c>dotnet</c> from the path).</summary>
    public static string DotnetHost()
    {
        var host = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH");
        if (!string.IsNullOrEmpty(host) && File.Exists(host))
        {
            return host;
        }

        var current = Environment.ProcessPath;
        return current is not null && Path.GetFileNameWithoutExtension(current) == "dotnet" ? current : "dotnet";
    }

    /// <summary>
    /// The helper's dll: the path MSBuild recorded in the test assembly's metadata under the helper's name (see the
    /// test project's csproj), or, when the output was moved, the newest build found next to the tests.
    /// </summary>
    /// <param name="testAssembly">The test assembly that recorded the path.</param>
    /// <param name="name">The helper project's name.</param>
    /// <returns>The dll path.</returns>
    public static string Locate(Assembly testAssembly, string name)
    {
        ArgumentNullException.ThrowIfNull(testAssembly);
        var recorded = testAssembly.GetCustomAttributes<AssemblyMetadataAttribute>().FirstOrDefault(a => a.Key == name)?.Value;
        if (recorded is not null && File.Exists(recorded))
        {
            return recorded;
        }

        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            var project = Path.Combine(directory.FullName, name);
            if (File.Exists(Path.Combine(project, name + ".csproj")))
            {
                var found = Directory.EnumerateFiles(project, name + ".dll", SearchOption.AllDirectories)
                    .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal))
                    .OrderByDescending(File.GetLastWriteTimeUtc)
                    .FirstOrDefault();
                if (found is not null)
                {
                    return found;
                }
            }
        }

        Assert.Fail($"{name}.dll not found (recorded path: '{recorded}'); build the solution first");
        return null!;
    }
}
