using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Text;

namespace CnmSharp.Tests.Plugins;

/// <summary>One request the fake plugin received.</summary>
internal sealed record PluginRequest(string Method, string Path, string Body, IReadOnlyDictionary<string, string> Headers);

/// <summary>What the fake plugin answers: a status and a raw body, or <see cref="Hang"/> (never answers) or
/// <see cref="Drop"/> (closes the connection without an answer).</summary>
public sealed record PluginReply(int Status, string Body)
{
    public static PluginReply Ok(string body) => new(200, body);

    public static PluginReply Hang { get; } = new(-1, "");

    public static PluginReply Drop { get; } = new(-2, "");
}

/// <summary>
/// A minimal HTTP/1.1 server on a unix socket, written for the test (no framework): it reads a request line, headers
/// and a Content-Length body, answers what the handler says (with keep-alive), and records every request.
/// </summary>
internal sealed class FakePluginServer : IAsyncDisposable
{
    private readonly Socket _listener;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _accept;
    private readonly ConcurrentBag<Socket> _connections = [];

    public FakePluginServer(string socketPath, Func<PluginRequest, PluginReply> handler)
    {
        SocketPath = socketPath;
        Handler = handler;
        _listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        _listener.Bind(new UnixDomainSocketEndPoint(socketPath));
        _listener.Listen(16);
        _accept = AcceptLoopAsync();
    }

    public string SocketPath { get; }

    public Func<PluginRequest, PluginReply> Handler { get; set; }

    public ConcurrentQueue<PluginRequest> Requests { get; } = new();

    public IReadOnlyList<string> Paths => Requests.Select(r => r.Path).ToArray();

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket connection;
            try
            {
                connection = await _listener.AcceptAsync(_stop.Token);
            }
            catch (Exception)
            {
                return;
            }

            _connections.Add(connection);
            _ = ServeAsync(connection);
        }
    }

    private async Task ServeAsync(Socket connection)
    {
        await using var stream = new NetworkStream(connection, ownsSocket: true);
        var buffer = new List<byte>();
        var chunk = new byte[8192];
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                int headerEnd;
                while ((headerEnd = IndexOf(buffer, "\r\n\r\n"u8)) < 0)
                {
                    var n = await stream.ReadAsync(chunk, _stop.Token);
                    if (n == 0)
                    {
                        return;
                    }

                    buffer.AddRange(chunk.AsSpan(0, n).ToArray());
                }

                var head = Encoding.ASCII.GetString(buffer.GetRange(0, headerEnd).ToArray()).Split("\r\n");
                var requestLine = head[0].Split(' ');
                var headers = head.Skip(1).Select(h => h.Split(':', 2)).ToDictionary(h => h[0].Trim().ToLowerInvariant(), h => h[1].Trim());
                var length = headers.TryGetValue("content-length", out var l) ? int.Parse(l, System.Globalization.CultureInfo.InvariantCulture) : 0;
                buffer.RemoveRange(0, headerEnd + 4);
                while (buffer.Count < length)
                {
                    var n = await stream.ReadAsync(chunk, _stop.Token);
                    if (n == 0)
                    {
                        return;
                    }

                    buffer.AddRange(chunk.AsSpan(0, n).ToArray());
                }

                var body = Encoding.UTF8.GetString(buffer.GetRange(0, length).ToArray());
                buffer.RemoveRange(0, length);
                var request = new PluginRequest(requestLine[0], requestLine[1], body, headers);
                Requests.Enqueue(request);
                var reply = Handler(request);
                if (ReferenceEquals(reply, PluginReply.Hang))
                {
                    await Task.Delay(Timeout.Infinite, _stop.Token);
                }

                if (ReferenceEquals(reply, PluginReply.Drop))
                {
                    return;
                }

                var bytes = Encoding.UTF8.GetBytes(reply.Body);
                var response = $"HTTP/1.1 {reply.Status} X\r\nContent-Type: application/vnd.docker.plugins.v1+json\r\nContent-Length: {bytes.Length}\r\n\r\n";
                await stream.WriteAsync(Encoding.ASCII.GetBytes(response).Concat(bytes).ToArray(), _stop.Token);
            }
        }
        catch (Exception)
        {
            // The test stopped the server, or the client went away.
        }
    }

    private static int IndexOf(List<byte> buffer, ReadOnlySpan<byte> pattern)
    {
        for (var i = 0; i + pattern.Length <= buffer.Count; i++)
        {
            var match = true;
            for (var j = 0; j < pattern.Length && match; j++)
            {
                match = buffer[i + j] == pattern[j];
            }

            if (match)
            {
                return i;
            }
        }

        return -1;
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Dispose();
        foreach (var connection in _connections)
        {
            connection.Dispose();
        }

        try
        {
            await _accept;
        }
        catch (OperationCanceledException)
        {
        }

        File.Delete(SocketPath);
        _stop.Dispose();
    }
}
