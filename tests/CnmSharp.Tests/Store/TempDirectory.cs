namespace CnmSharp.Tests.Store;

/// <summary>A unique temporary directory, deleted with everything in it on dispose.</summary>
internal class TempDirectory : IDisposable
{
    public TempDirectory(string prefix = "cnmsharp-store-")
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), prefix + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        if (Directory.Exists(Path))
        {
            Directory.Delete(Path, recursive: true);
        }

        GC.SuppressFinalize(this);
    }
}
