using CnmSharp.Tests.Store;

namespace CnmSharp.Tests.Sandboxes;

/// <summary>A unique temporary directory for one sandbox-files test, with helpers to write and read its files.</summary>
internal sealed class SandboxTestDirectory() : TempDirectory("cnmsharp-sbfiles-")
{
    public string Write(string name, string content)
    {
        var path = File(name);
        System.IO.File.WriteAllText(path, content);
        return path;
    }

    public string Read(string name) => System.IO.File.ReadAllText(File(name));

    /// <summary>Files left by an interrupted atomic write, anywhere under the directory.</summary>
    public string[] TemporaryFiles() =>
        Directory.Exists(Path)
            ? Directory.GetFiles(Path, "*", SearchOption.AllDirectories).Where(f => f.EndsWith(".cnmtmp", StringComparison.Ordinal)).ToArray()
            : [];
}
