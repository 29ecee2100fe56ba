using System.Globalization;
using CnmSharp.Testing;

namespace CnmSharp.Cli.Tests;

/// <summary>
/// <c>cnm plugin serve</c> as a user runs it, in the lab's host namespace: it serves until SIGTERM or SIGINT, either
/// ends it with exit 0 and removes its socket (or its discovery file), and it refuses plain http off loopback. The
/// server is stopped by its PID whatever happens.
/// </summary>
[TestFixture]
[RequiresRoot]
[NonParallelizable]
public sealed class PluginServeCliTests : CliFixture
{
    private static async Task<string> ActivateAsync(HttpClient client, string url)
    {
        using var reply = await client.PostAsync(url + "/Plugin.Activate", null);
        Assert.That((int)reply.StatusCode, Is.EqualTo(200));
        Assert.That(reply.Content.Headers.ContentType?.MediaType, Is.EqualTo("application/vnd.docker.plugins.v1+json"));
        return await reply.Content.ReadAsStringAsync();
    }

    private static async Task<ProcessResult> StopAsync(StartedProcess server, string signal)
    {
        var kill = await CnmRunner.RunAsync("kill", ["-" + signal, server.Pid.ToString(CultureInfo.InvariantCulture)], TimeSpan.FromSeconds(10));
        Assert.That(kill.ExitCode, Is.Zero, kill.ToString());
        return await server.WaitAsync(TimeSpan.FromSeconds(30));
    }

    [TestCase("TERM")]
    [TestCase("INT")]
    public async Task Serve_on_a_socket_until_a_signal_then_exit_0_with_the_socket_removed(string signal)
    {
        var name = Unique("plg");
        var socket = Path.Combine(Root, "plugins", name + ".sock");
        // Started as from a terminal, with SIGINT at its default: a test run started with SIGINT ignored (a background
        // job of a non-interactive shell) would pass that on, and the server rightly keeps a signal ignored at entry
        // ignored (the .NET runtime installs no handler for it), so SIGINT would not stop it. `env --default-signal`
        // (coreutils 8.31 and later) resets it before exec, so the PID is the server's.
        using var server = StartedProcess.Start("env", ["--default-signal=INT", "dotnet", CnmRunner.CnmDll, .. Global, "plugin", "serve", "--name", name, "--driver", "bridge", "--ipam-driver", "default", "--socket", socket], "cnm plugin serve");
        try
        {
            await Until.TrueAsync(() => File.Exists(socket) || server.HasExited, "the socket appears");
            Assert.That(server.HasExited, Is.False, "serving");
            Assert.That(OperatingSystem.IsWindows() ? default : File.GetUnixFileMode(socket), Is.EqualTo(UnixFileMode.UserRead | UnixFileMode.UserWrite));
            using var client = new HttpClient(new SocketsHttpHandler
            {
                ConnectCallback = async (_, ct) =>
                {
                    var s = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Unspecified);
                    await s.ConnectAsync(new System.Net.Sockets.UnixDomainSocketEndPoint(socket), ct);
                    return new System.Net.Sockets.NetworkStream(s, ownsSocket: true);
                },
            });
            Assert.That(await ActivateAsync(client, "http://plugin"), Is.EqualTo("{\"Implements\":[\"NetworkDriver\",\"IpamDriver\"]}"));

            var result = await StopAsync(server, signal);
            Assert.Multiple(() =>
            {
                Assert.That(result.ExitCode, Is.Zero, result.ToString());
                Assert.That(result.StdOut, Is.EqualTo($"serving plugin {name} on unix://{socket}\n"));
                Assert.That(File.Exists(socket), Is.False, "the socket is removed");
                Assert.That(File.Exists(Path.Combine(Lab.StateDirectory, "plugins", name + ".db")), Is.True, "its store is in the state directory");
            });
        }
        finally
        {
            server.Kill();
        }
    }

    [Test]
    public async Task Serve_on_loopback_tcp_writes_the_spec_file_and_removes_it_on_SIGTERM()
    {
        var name = Unique("plg");
        var specDir = Path.Combine(Root, "spec");
        var spec = Path.Combine(specDir, name + ".spec");
        using var server = CnmRunner.StartCnm(Global, ["plugin", "serve", "--name", name, "--driver", "bridge", "--listen", "http://127.0.0.1:0", "--spec-dir", specDir]);
        try
        {
            await Until.TrueAsync(() => File.Exists(spec) || server.HasExited, "the spec file appears");
            var url = File.ReadAllText(spec).Trim();
            Assert.That(url, Does.Match(@"^http://127\.0\.0\.1:[0-9]+$"));
            using var client = new HttpClient();
            Assert.That(await ActivateAsync(client, url), Is.EqualTo("{\"Implements\":[\"NetworkDriver\"]}"));

            var result = await StopAsync(server, "TERM");
            Assert.That(result.ExitCode, Is.Zero, result.ToString());
            Assert.That(File.Exists(spec), Is.False, "the spec file is removed");
        }
        finally
        {
            server.Kill();
        }
    }

    [Test]
    public async Task Plain_http_off_loopback_and_two_listeners_are_refused()
    {
        var offLoopback = await Cnm("plugin", "serve", "--name", Unique("plg"), "--driver", "bridge", "--listen", "http://10.1.2.3:23750");
        Assert.That(offLoopback.ExitCode, Is.EqualTo(1), offLoopback.ToString());
        Assert.That(offLoopback.StdErr, Does.Contain("plain http is only served on a loopback address"));

        var both = await Cnm("plugin", "serve", "--name", Unique("plg"), "--driver", "bridge", "--listen", "http://127.0.0.1:0", "--socket", Path.Combine(Root, "x.sock"));
        Assert.That(both.ExitCode, Is.EqualTo(2), both.ToString());

        var badDriver = await Cnm("plugin", "serve", "--name", Unique("plg"), "--driver", "overlay2");
        Assert.That(badDriver.ExitCode, Is.EqualTo(2), badDriver.ToString());
    }
}
