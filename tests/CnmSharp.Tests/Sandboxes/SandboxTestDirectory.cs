namespace CnmSharp.Tests.Sandboxes;

/// <summary>A unique temporary directory for one test, deleted with everything in it on dispose.</summary>
internal sealed class SandboxTestDirectory : IDisposable
{
    public SandboxTestDirectory()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "cnmsharp-sbfiles-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string File(string name) => System.IO.Path.Combine(Path, name);

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

    public void Dispose()
    {
        if (Directory.Exists(Path))
        {
            Directory.Delete(Path, recursive: true);
        }
    }
}
