using System.Diagnostics;
using System.Security.Cryptography;
using System.Text.Json;
using Microsoft.Win32.SafeHandles;

namespace CnmSharp.Netlink.Tests.Support;

/// <summary>
/// A throw-away network namespace for one test: <c>ip netns add cnmnl-&lt;8 hex&gt;</c>, opened from /run/netns.
/// Disposing deletes it (and with it every link inside). The netns engineer will swap this for NetworkNamespace.
/// </summary>
internal sealed class TestNamespace : IDisposable
{
    private TestNamespace(string name, SafeFileHandle handle)
    {
        Name = name;
        Handle = handle;
    }

    public string Name { get; }

    public SafeFileHandle Handle { get; }

    public static TestNamespace Create()
    {
        var name = "cnmnl-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4));
        Run("ip", $"netns add {name}");
        try
        {
            var handle = File.OpenHandle($"/run/netns/{name}", FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            return new TestNamespace(name, handle);
        }
        catch
        {
            Run("ip", $"netns del {name}", check: false);
            throw;
        }
    }

    /// <summary>Runs <c>ip -n NS args</c> and returns stdout.</summary>
    public string Ip(string args) => Run("ip", $"-n {Name} {args}");

    /// <summary>Runs <c>ip -n NS -json args</c> and parses it.</summary>
    public JsonElement IpJson(string args) => ParseJson(Run("ip", $"-n {Name} -json {args}"));

    /// <summary>Runs <c>bridge -n NS -json args</c> and parses it.</summary>
    public JsonElement BridgeJson(string args) => ParseJson(Run("bridge", $"-n {Name} -json {args}"));

    /// <summary>The oracle's view of one link (<c>ip -details -json link show dev NAME</c>), or null.</summary>
    public JsonElement? Link(string name)
    {
        var result = Run("ip", $"-n {Name} -details -json link show dev {name}", check: false, allowFailure: true);
        if (string.IsNullOrWhiteSpace(result))
        {
            return null;
        }

        var array = ParseJson(result);
        return array.GetArrayLength() == 0 ? null : array[0];
    }

    public IEnumerable<string> LinkNames() =>
        IpJson("link show").EnumerateArray().Select(l => l.GetProperty("ifname").GetString()!);

    public void Dispose()
    {
        Handle.Dispose();
        Run("ip", $"netns del {Name}", check: false);
    }

    private static JsonElement ParseJson(string text)
    {
        using var doc = JsonDocument.Parse(string.IsNullOrWhiteSpace(text) ? "[]" : text);
        return doc.RootElement.Clone();
    }

    public static string Run(string file, string args, bool check = true, bool allowFailure = false)
    {
        var psi = new ProcessStartInfo(file, args)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        using var process = Process.Start(psi)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0)
        {
            if (allowFailure)
            {
                return string.Empty;
            }

            if (check)
            {
                throw new InvalidOperationException($"{file} {args} exited {process.ExitCode}: {stderr}");
            }
        }

        return stdout.Result;
    }
}
