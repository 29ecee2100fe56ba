using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;

namespace CnmSharp.Cli;

/// <summary>
/// <c>cnm dns serve</c>: the one resolver process of a state (netavark/aardvark-dns's model). Every <c>cnm</c> command
/// is a short process, so the controllers it opens only write the sandboxes' resolv.conf
/// (<see cref="EmbeddedDnsMode.External"/>); this process serves <c>127.0.0.11:53</c> in each sandbox that needs it,
/// with the library's resolver. It is started on demand by <c>network connect</c>, runs once per run directory (a lock
/// on <c>dns.lock</c>, its PID in <c>dns.pid</c>), follows what other processes write (told at once through <c>dns.sock</c> after each connect,
/// disconnect and sandbox removal; re-reads the state every second otherwise), and exits when no sandbox needs it or
/// on SIGTERM/SIGINT.
/// </summary>
internal static class DnsCommands
{
    private static readonly TimeSpan s_poll = TimeSpan.FromSeconds(1);

    public static Command Build()
    {
        var serve = new Command("serve", "Serve the embedded DNS (127.0.0.11) of every sandbox of the state until none needs it (started on demand by 'network connect')");
        serve.SetAction((parse, ct) => CliApp.RunAsync(parse, context => ServeAsync(context, ct)));
        return new Command("dns", "The embedded DNS resolver process") { serve };
    }

    /// <summary>The resolver's PID file and its control socket, in the run directory.</summary>
    public static string PidPath(CliContext context) => Path.Combine(context.RunDirectory, "dns.pid");

    private static string SocketPath(CliContext context) => Path.Combine(context.RunDirectory, "dns.sock");

    private static string LogPath(CliContext context) => Path.Combine(context.RunDirectory, "dns.log");

    /// <summary>
    /// After a command changed joins: tells the running resolver to re-read the state now and waits until it has. When
    /// none runs and <paramref name="needed"/> (a sandbox's resolv.conf points at 127.0.0.11), starts one and waits for
    /// it. A resolver that cannot be reached or started is a warning, never a failure of the command.
    /// </summary>
    public static async Task NotifyAsync(CliContext context, bool needed, CancellationToken cancellationToken)
    {
        if (await TrySyncAsync(context, cancellationToken).ConfigureAwait(false) || !needed)
        {
            return;
        }

        // One command starts the resolver (it holds dns.spawn meanwhile); the others wait for it to answer.
        FileStream? spawnLock = null;
        try
        {
            try
            {
                spawnLock = new FileStream(Path.Combine(context.RunDirectory, "dns.spawn"), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
                if (!await TrySyncAsync(context, cancellationToken).ConfigureAwait(false))
                {
                    Spawn(context);
                }
            }
            catch (IOException)
            {
                // Another command is starting it.
            }

            var deadline = Stopwatch.StartNew();
            while (deadline.Elapsed < TimeSpan.FromSeconds(30))
            {
                await Task.Delay(50, cancellationToken).ConfigureAwait(false);
                if (await TrySyncAsync(context, cancellationToken).ConfigureAwait(false))
                {
                    return;
                }
            }
        }
        catch (Exception ex) when (ex is IOException or System.ComponentModel.Win32Exception or InvalidOperationException)
        {
            await Console.Error.WriteLineAsync("cnm: warning: cannot start the DNS resolver: " + CliApp.OneLine(ex.Message)).ConfigureAwait(false);
            return;
        }
        finally
        {
            if (spawnLock is not null)
            {
                await spawnLock.DisposeAsync().ConfigureAwait(false);
            }
        }

        await Console.Error.WriteLineAsync($"cnm: warning: the DNS resolver did not come up; see {LogPath(context)}").ConfigureAwait(false);
    }

    /// <summary>Asks the resolver to sync; false when none answers.</summary>
    private static async Task<bool> TrySyncAsync(CliContext context, CancellationToken cancellationToken)
    {
        var path = SocketPath(context);
        if (!File.Exists(path))
        {
            return false;
        }

        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(10));
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(path), timeout.Token).ConfigureAwait(false);
            await socket.SendAsync("sync\n"u8.ToArray(), SocketFlags.None, timeout.Token).ConfigureAwait(false);
            var buffer = new byte[64];
            var n = await socket.ReceiveAsync(buffer, SocketFlags.None, timeout.Token).ConfigureAwait(false);
            return n > 0 && Encoding.ASCII.GetString(buffer, 0, n).StartsWith("ok", StringComparison.Ordinal);
        }
        catch (Exception ex) when (ex is SocketException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
        {
            return false;
        }
    }

    /// <summary>Starts <c>cnm dns serve</c> with the same global options, in its own session, its output appended to
    /// <c>dns.log</c>; it holds none of this process's pipes.</summary>
    private static void Spawn(CliContext context)
    {
        var self = Environment.ProcessPath ?? throw new InvalidOperationException("the path of this program is unknown");
        var command = new List<string> { self };
        if (Path.GetFileNameWithoutExtension(self) == "dotnet")
        {
            command.Add(Environment.GetCommandLineArgs()[0]); // cnm.dll, run through the dotnet host
        }

        command.AddRange(["--state-dir", context.StateDirectory, "--run-dir", context.RunDirectory]);
        if (context.HostNamespacePath is { } host)
        {
            command.AddRange(["--host-netns", host]);
        }

        command.AddRange(["dns", "serve"]);
        var start = new ProcessStartInfo("sh") { UseShellExecute = false };
        foreach (var arg in (string[])["-c", "setsid \"$@\" </dev/null >>\"$0\" 2>&1 &", LogPath(context), .. command])
        {
            start.ArgumentList.Add(arg);
        }

        start.Environment.Remove("CNM_STATE_DIR");
        using var shell = Process.Start(start) ?? throw new InvalidOperationException("cannot start sh");
        shell.WaitForExit();
    }

    private static async Task<int> ServeAsync(CliContext context, CancellationToken cancellationToken)
    {
        // One resolver per run directory: the lock on dns.lock (flock, through FileShare.None) is held while it runs;
        // dns.pid names it for others to read. A second one waits a moment (the first may be exiting because it had
        // nothing left to serve), then leaves.
        FileStream? lockFile = null;
        for (var attempt = 0; lockFile is null; attempt++)
        {
            try
            {
                lockFile = new FileStream(Path.Combine(context.RunDirectory, "dns.lock"), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException) when (attempt < 50)
            {
                await Task.Delay(100, cancellationToken).ConfigureAwait(false);
            }
            catch (IOException)
            {
                return 0; // another one serves
            }
        }

        await using (lockFile.ConfigureAwait(false))
        {
            await File.WriteAllTextAsync(PidPath(context), Environment.ProcessId.ToString(CultureInfo.InvariantCulture) + "\n", cancellationToken).ConfigureAwait(false);
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; stop.Cancel(); });
            using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; stop.Cancel(); });
            var socketPath = SocketPath(context);
            File.Delete(socketPath); // ours: we hold the lock
            using var control = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            control.Bind(new UnixDomainSocketEndPoint(socketPath));
            if (!OperatingSystem.IsWindows())
            {
                File.SetUnixFileMode(socketPath, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            }
            control.Listen(64);
            try
            {
                await using var controller = await context.OpenControllerAsync(ControllerAccess.ReadOnly, stop.Token).ConfigureAwait(false);
                await LoopAsync(controller, control, PidPath(context), stop.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
            }
            finally
            {
                File.Delete(socketPath);
                File.Delete(PidPath(context));
            }
        }

        return 0;
    }

    /// <summary>Serves until a sync finds no sandbox that needs DNS (or its PID file is gone: the run directory was
    /// removed): at each control request and every second. Requests that arrive together share one re-read, and each
    /// is answered once the state is applied.</summary>
    private static async Task LoopAsync(NetworkController controller, Socket control, string pidPath, CancellationToken cancellationToken)
    {
        var accept = control.AcceptAsync(cancellationToken).AsTask();
        while (true)
        {
            var served = await controller.ServeDnsAsync(cancellationToken).ConfigureAwait(false);
            if (served == 0 || !File.Exists(pidPath))
            {
                return;
            }

            var tick = Task.Delay(s_poll, cancellationToken);
            if (await Task.WhenAny(accept, tick).ConfigureAwait(false) != accept)
            {
                await tick.ConfigureAwait(false);
                continue;
            }

            var clients = new List<Socket> { await accept.ConfigureAwait(false) };
            while (control.Poll(0, SelectMode.SelectRead))
            {
                clients.Add(await control.AcceptAsync(cancellationToken).ConfigureAwait(false));
            }

            accept = control.AcceptAsync(cancellationToken).AsTask();
            try
            {
                var buffer = new byte[16];
                foreach (var client in clients)
                {
                    using var read = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                    read.CancelAfter(TimeSpan.FromSeconds(1));
                    try
                    {
                        _ = await client.ReceiveAsync(buffer, SocketFlags.None, read.Token).ConfigureAwait(false);
                    }
                    catch (Exception ex) when (ex is SocketException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
                    {
                    }
                }

                served = await controller.ServeDnsAsync(cancellationToken).ConfigureAwait(false);
                foreach (var client in clients)
                {
                    try
                    {
                        await client.SendAsync(Encoding.ASCII.GetBytes($"ok {served}\n"), SocketFlags.None, cancellationToken).ConfigureAwait(false);
                    }
                    catch (SocketException)
                    {
                    }
                }
            }
            finally
            {
                foreach (var client in clients)
                {
                    client.Dispose();
                }
            }

            if (served == 0)
            {
                return;
            }
        }
    }
}
