using System.Net;
using System.Net.Sockets;
using CnmSharp.Netlink;

namespace CnmSharp.Cli;

/// <summary>
/// The demo's DNS upstream: a UDP socket on the gateway address inside the demo's private host namespace that answers
/// every query with NXDOMAIN, so nothing the sandboxes ask can leave the machine.
/// </summary>
internal sealed class DemoUpstream : IAsyncDisposable
{
    private readonly Socket _socket;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;

    private DemoUpstream(Socket socket)
    {
        _socket = socket;
        _loop = Task.Run(LoopAsync);
    }

    public static async Task<DemoUpstream> StartAsync(NetworkNamespaceManager namespaces, string hostNamespacePath, string address, CancellationToken cancellationToken)
    {
        using var ns = namespaces.Open(hostNamespacePath);
        var socket = await namespaces.RunInsideAsync(ns, () =>
        {
            var s = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            s.Bind(new IPEndPoint(IPAddress.Parse(address), 53));
            return s;
        }, cancellationToken).ConfigureAwait(false);
        return new DemoUpstream(socket);
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        _socket.Dispose();
        try
        {
            await _loop.ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException or SocketException)
        {
        }

        _stop.Dispose();
    }

    private async Task LoopAsync()
    {
        var buffer = new byte[1500];
        while (!_stop.IsCancellationRequested)
        {
            var received = await _socket.ReceiveFromAsync(buffer, SocketFlags.None, new IPEndPoint(IPAddress.Any, 0), _stop.Token).ConfigureAwait(false);
            if (received.ReceivedBytes < 12 || (buffer[2] & 0x80) != 0)
            {
                continue;
            }

            // The query back, as a response: QR, RD kept, RA, NXDOMAIN; the question stays, the other sections go.
            buffer[2] = (byte)(0x80 | (buffer[2] & 0x01));
            buffer[3] = 0x83;
            var end = 12;
            if (buffer[4] == 0 && buffer[5] == 1)
            {
                while (end < received.ReceivedBytes && buffer[end] != 0 && buffer[end] < 64)
                {
                    end += 1 + buffer[end];
                }

                end += 5;
            }

            if (end > received.ReceivedBytes)
            {
                continue;
            }

            buffer.AsSpan(6, 6).Clear();
            if (end == 12)
            {
                buffer[4] = buffer[5] = 0;
            }

            await _socket.SendToAsync(buffer.AsMemory(0, end), SocketFlags.None, received.RemoteEndPoint, _stop.Token).ConfigureAwait(false);
        }
    }
}
