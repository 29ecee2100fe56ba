using System.Collections.Concurrent;
using CnmSharp.Netlink.Internal;
using CnmSharp.Netlink.Tests.Support;
using CnmSharp.Testing;

namespace CnmSharp.Netlink.Tests;

/// <summary>
/// Disposal at any moment, with requests, dumps, batches and monitors in flight: pooled buffers go back only after
/// the operations using them ended (never written after their return, never returned twice, none leaked), every caller
/// gets a result or a typed error, and nothing throws on a background thread. ENOBUFS on a request socket is typed and
/// the next request works.
/// </summary>
[RequiresRoot]
[NonParallelizable]
public class RootTeardownTests
{
    private const int Pairs = 10;

    [Test]
    public async Task A_receive_pending_at_dispose_ends_typed_and_its_buffer_returns_only_after_it()
    {
        using var ns = TestNamespace.Create();
        var pool = new TrackingPool();
        var socket = NamespaceExecutor.RunIn(ns.Handle, () => NetlinkSocket.Open(pool: pool));
        var leasesAtReturn = new ConcurrentQueue<int>();
        pool.OnReturn = _ => leasesAtReturn.Enqueue(socket.Leases);

        var receive = socket.ReceiveAsync(CancellationToken.None).AsTask(); // nothing was sent: it stays pending
        Assert.Multiple(() =>
        {
            Assert.That(receive.IsCompleted, Is.False);
            Assert.That(pool.Outstanding, Is.EqualTo(2), "the send buffer and the receive buffer are out");
            Assert.That(socket.Leases, Is.EqualTo(1));
        });

        socket.Dispose();
        Assert.That(async () => await receive.WaitAsync(TimeSpan.FromSeconds(10)), Throws.InstanceOf<ObjectDisposedException>());
        await socket.Drained.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Multiple(() =>
        {
            Assert.That(pool.Outstanding, Is.Zero);
            Assert.That(leasesAtReturn, Has.Count.EqualTo(2).And.All.EqualTo(0), "no buffer returns while an operation holds the socket");
            Assert.That(pool.WrittenAfterReturn(), Is.Zero);
            Assert.That(pool.Errors, Is.Empty);
        });
    }

    [Test]
    public async Task Dispose_keeps_the_buffers_while_a_lease_is_held_and_the_last_one_out_returns_them()
    {
        using var ns = TestNamespace.Create();
        var pool = new TrackingPool();
        var socket = NamespaceExecutor.RunIn(ns.Handle, () => NetlinkSocket.Open(pool: pool));
        Assert.That(socket.TryAcquire(), Is.True);

        // A request in the middle of reading its reply (as RtnetlinkClient holds a lease around each exchange).
        var sequence = socket.NextSequence();
        await socket.SendAsync(EncodeGetLo(socket, sequence), CancellationToken.None);
        using var guard = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var received = await socket.ReceiveAsync(guard.Token);
        var before = socket.Received(received).ToArray();

        socket.Dispose();
        Assert.Multiple(() =>
        {
            Assert.That(pool.ReturnedCount, Is.Zero, "Dispose must not pool buffers a lease still uses");
            Assert.That(socket.Received(received).SequenceEqual(before), Is.True);
            Assert.That(socket.Drained.IsCompleted, Is.False);
            Assert.That(socket.TryAcquire(), Is.False, "a disposed socket refuses new operations");
        });
        Assert.That(async () => await socket.SendAsync(1, CancellationToken.None), Throws.InstanceOf<ObjectDisposedException>());
        Assert.That(ReplyName(socket.Received(received), sequence, socket.PortId), Is.EqualTo("lo"));

        socket.Release();
        Assert.Multiple(() =>
        {
            Assert.That(socket.Drained.IsCompleted, Is.True);
            Assert.That(pool.Outstanding, Is.Zero);
            Assert.That(pool.ReturnedCount, Is.EqualTo(2));
            Assert.That(pool.Errors, Is.Empty);
        });
    }

    [Test]
    public async Task Disposing_a_client_while_requests_dumps_batches_and_a_monitor_run_is_safe()
    {
        using var ns = TestNamespace.Create();
        var expected = await CreatePairsAsync(ns);
        using var recorder = new UnhandledRecorder();
        var outcomes = new ConcurrentDictionary<string, int>();
        var random = new Random(9);
        const int rounds = 30;
        for (var round = 0; round < rounds; round++)
        {
            var pool = new TrackingPool();
            var client = RtnetlinkClient.Open(ns.Handle, 0, pool);
            using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            var workers = Enumerable.Range(0, 6).Select(w => Task.Run(() => ClientWorkerAsync(client, w, expected, outcomes, stop.Token))).ToList();
            workers.Add(Task.Run(() => MonitorWorkerAsync(client, outcomes, stop.Token)));
            await Task.Delay(random.Next(0, 25));
            if (round % 2 == 0)
            {
                client.Dispose();
            }
            else
            {
                await client.DisposeAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(30));
                Assert.That(client.Socket.Leases, Is.Zero, $"round {round}: DisposeAsync returns once no request runs");
            }

            await Task.WhenAll(workers).WaitAsync(TimeSpan.FromSeconds(60));
            Assert.Multiple(() =>
            {
                Assert.That(pool.Outstanding, Is.Zero, $"round {round}: every buffer back in the pool once the callers are done");
                Assert.That(pool.WrittenAfterReturn(), Is.Zero, $"round {round}: a buffer was written after its return");
                Assert.That(pool.Errors, Is.Empty, $"round {round}");
            });
        }

        UnhandledRecorder.Flush();
        TestContext.Out.WriteLine(string.Join(", ", outcomes.OrderBy(p => p.Key).Select(p => $"{p.Key}={p.Value}")));
        Assert.Multiple(() =>
        {
            Assert.That(recorder.Exceptions, Is.Empty, "no unhandled or unobserved exception");
            Assert.That(outcomes.Keys.Where(k => k.StartsWith("bad:", StringComparison.Ordinal)), Is.Empty, "every caller gets a result or a typed error");
            Assert.That(outcomes.GetValueOrDefault("ok:dump"), Is.Positive, "the workers did get results before the dispose");
            Assert.That(outcomes.GetValueOrDefault("disposed"), Is.EqualTo(rounds * 6), "each worker ends on ObjectDisposedException");
            Assert.That(outcomes.GetValueOrDefault("monitor:disposed"), Is.EqualTo(rounds), "each monitor ends on ObjectDisposedException");
        });
    }

    [Test]
    public async Task Disposing_a_raw_socket_while_tasks_exchange_on_it_is_safe()
    {
        using var ns = TestNamespace.Create();
        using var recorder = new UnhandledRecorder();
        var outcomes = new ConcurrentDictionary<string, int>();
        var random = new Random(7);
        for (var round = 0; round < 40; round++)
        {
            var pool = new TrackingPool();
            var socket = NamespaceExecutor.RunIn(ns.Handle, () => NetlinkSocket.Open(pool: pool));
            var workers = Enumerable.Range(0, 4).Select(_ => Task.Run(() => SocketWorkerAsync(socket, outcomes))).ToArray();
            await Task.Delay(random.Next(0, 10));
            socket.Dispose();
            await Task.WhenAll(workers).WaitAsync(TimeSpan.FromSeconds(60));
            await socket.Drained.WaitAsync(TimeSpan.FromSeconds(10));
            Assert.Multiple(() =>
            {
                Assert.That(pool.Outstanding, Is.Zero, $"round {round}");
                Assert.That(pool.WrittenAfterReturn(), Is.Zero, $"round {round}: a buffer was written after its return");
                Assert.That(pool.Errors, Is.Empty, $"round {round}");
            });
        }

        UnhandledRecorder.Flush();
        TestContext.Out.WriteLine(string.Join(", ", outcomes.OrderBy(p => p.Key).Select(p => $"{p.Key}={p.Value}")));
        Assert.Multiple(() =>
        {
            Assert.That(recorder.Exceptions, Is.Empty);
            Assert.That(outcomes.Keys.Where(k => k.StartsWith("bad:", StringComparison.Ordinal)), Is.Empty);
            Assert.That(outcomes.GetValueOrDefault("ok"), Is.Positive);
        });
    }

    [Test]
    public async Task A_monitor_ends_typed_when_its_client_is_disposed_and_returns_its_buffers()
    {
        using var ns = TestNamespace.Create();
        var pool = new TrackingPool();
        var client = RtnetlinkClient.Open(ns.Handle, 0, pool);
        await using var events = client.MonitorAsync(NetlinkGroups.Link).GetAsyncEnumerator();
        var before = pool.Outstanding;

        // MoveNextAsync runs the enumeration synchronously up to its first wait: when it returns, the monitor socket is
        // open, subscribed, and its receive has taken its buffer. Nothing changes in the namespace, so nothing comes.
        var next = events.MoveNextAsync().AsTask();
        Assert.Multiple(() =>
        {
            Assert.That(pool.Outstanding, Is.GreaterThan(before), "the monitor's receive is under way (its buffer is out)");
            Assert.That(next.IsCompleted, Is.False, next.IsFaulted ? next.Exception!.ToString() : "no event: the monitor waits");
        });
        client.Dispose();
        Assert.That(async () => await next.WaitAsync(TimeSpan.FromSeconds(10)), Throws.InstanceOf<ObjectDisposedException>());
        await events.DisposeAsync();
        Assert.Multiple(() =>
        {
            Assert.That(pool.Outstanding, Is.Zero);
            Assert.That(pool.WrittenAfterReturn(), Is.Zero);
            Assert.That(pool.Errors, Is.Empty);
        });
        Assert.That(() => client.MonitorAsync(NetlinkGroups.Link).GetAsyncEnumerator().MoveNextAsync().AsTask(), Throws.InstanceOf<ObjectDisposedException>());
    }

    [Test]
    public async Task ENOBUFS_on_a_request_socket_is_a_typed_error_and_the_next_request_works()
    {
        using var ns = TestNamespace.Create();

        // A receive queue of the kernel's minimum cannot hold 300 ACKs: the kernel drops most and flags ENOBUFS.
        await using var client = RtnetlinkClient.Open(ns.Handle, 1, null);
        using var flood = new RtnetlinkBatch();
        for (var i = 0; i < 300; i++)
        {
            flood.SetLinkUp("lo");
        }

        var portBefore = client.PortId;
        using var guard = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var e = (await Assert.ThrowsAsync<NetlinkException>(async () => await client.ExecuteBatchAsync(flood, guard.Token)))!;
        Assert.Multiple(() =>
        {
            Assert.That(e.Errno, Is.EqualTo(Errnos.ENOBUFS));
            Assert.That(e.ErrorName, Is.EqualTo("ENOBUFS"));
            Assert.That(e.Message, Does.Contain("netlink batch"));
        });

        var links = await client.GetLinksAsync(guard.Token);
        Assert.That(links.Select(l => l.Name), Is.EqualTo(new[] { "lo" }), "the next request sees only its own reply");
        Assert.That(client.PortId, Is.Not.EqualTo(portBefore), "the socket was replaced, dropping what the lost request left queued");
        using var small = new RtnetlinkBatch().SetLinkUp("lo").SetLinkDown("lo");
        Assert.That((await client.ExecuteBatchAsync(small, guard.Token)).Succeeded, Is.True);
        await client.SetLinkUpAsync(1, guard.Token);
    }

    /// <summary>Creates the veth pairs the workers act on; returns every link's name and index.</summary>
    private static async Task<Dictionary<string, int>> CreatePairsAsync(TestNamespace ns)
    {
        await using var setup = RtnetlinkClient.Open(ns.Handle);
        for (var i = 0; i < Pairs; i++)
        {
            await setup.CreateLinkAsync(new VethLinkSpec($"t{i}a", $"t{i}b"));
        }

        var links = (await setup.GetLinksAsync()).ToDictionary(l => l.Name, l => l.Index, StringComparer.Ordinal);
        Assert.That(links, Has.Count.EqualTo((2 * Pairs) + 1));
        return links;
    }

    private static async Task ClientWorkerAsync(RtnetlinkClient client, int worker, Dictionary<string, int> expected, ConcurrentDictionary<string, int> outcomes, CancellationToken stop)
    {
        for (var i = 0; !stop.IsCancellationRequested; i++)
        {
            try
            {
                switch ((i + worker) % 4)
                {
                    case 0:
                        var links = await client.GetLinksAsync(stop);
                        Count(outcomes, links.Count == expected.Count && links.All(l => expected.TryGetValue(l.Name, out var ix) && ix == l.Index) ? "ok:dump" : "bad:dump-malformed");
                        break;
                    case 1:
                        var lo = await client.GetLinkAsync("lo", stop);
                        Count(outcomes, lo is { Name: "lo", Index: 1 } ? "ok:get" : "bad:get-malformed");
                        break;
                    case 2:
                        var index = expected[$"t{worker % Pairs}a"];
                        if (i % 8 < 4)
                        {
                            await client.SetLinkUpAsync(index, stop);
                        }
                        else
                        {
                            await client.SetLinkDownAsync(index, stop);
                        }

                        Count(outcomes, "ok:set");
                        break;
                    default:
                        using (var batch = new RtnetlinkBatch().SetLinkUp("lo").SetLinkMtu($"t{worker % Pairs}b", 1400 + (i % 50)).SetLinkUp("lo"))
                        {
                            var result = await client.ExecuteBatchAsync(batch, stop);
                            Count(outcomes, result.Succeeded && result.Errors.Count == 3 ? "ok:batch" : "bad:batch-failed");
                        }

                        break;
                }
            }
            catch (ObjectDisposedException)
            {
                Count(outcomes, "disposed");
                return;
            }
            catch (NetlinkException ex)
            {
                Count(outcomes, "typed:" + ex.ErrorName);
            }
#pragma warning disable CA1031 // The test records every other exception as a failure.
            catch (Exception ex)
#pragma warning restore CA1031
            {
                Count(outcomes, "bad:" + ex.GetType().Name + ": " + ex.Message);
                return;
            }
        }

        Count(outcomes, "bad:worker-timed-out");
    }

    private static async Task MonitorWorkerAsync(RtnetlinkClient client, ConcurrentDictionary<string, int> outcomes, CancellationToken stop)
    {
        try
        {
            // A tiny buffer, read slowly: overruns and their resubscription race with the dispose too.
            await foreach (var e in client.MonitorAsync(NetlinkGroups.Link, receiveBufferSize: 1024, stop))
            {
                Count(outcomes, e.Kind == NetlinkEventKind.Resync ? "monitor:resync" : "monitor:event");
                await Task.Yield();
            }

            Count(outcomes, "bad:monitor-ended");
        }
        catch (ObjectDisposedException)
        {
            Count(outcomes, "monitor:disposed");
        }
#pragma warning disable CA1031 // The test records every other exception as a failure.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            Count(outcomes, "bad:monitor " + ex.GetType().Name + ": " + ex.Message);
        }
    }

    private static async Task SocketWorkerAsync(NetlinkSocket socket, ConcurrentDictionary<string, int> outcomes)
    {
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        while (!stop.IsCancellationRequested)
        {
            if (!socket.TryAcquire())
            {
                Count(outcomes, "refused");
                return;
            }

            try
            {
                await socket.Lock.WaitAsync(stop.Token);
                try
                {
                    var sequence = socket.NextSequence();
                    await socket.SendAsync(EncodeGetLo(socket, sequence), stop.Token);
                    string? name = null;
                    while (name is null)
                    {
                        var received = await socket.ReceiveAsync(stop.Token);
                        name = ReplyName(socket.Received(received), sequence, socket.PortId);
                    }

                    Count(outcomes, name == "lo" ? "ok" : "bad:reply-malformed");
                }
                finally
                {
                    socket.ReleaseReceiveBuffer();
                    socket.Lock.Release();
                }
            }
            catch (ObjectDisposedException)
            {
                Count(outcomes, "disposed");
                return;
            }
            catch (NetlinkException ex)
            {
                Count(outcomes, "typed:" + ex.ErrorName);
            }
#pragma warning disable CA1031 // The test records every other exception as a failure.
            catch (Exception ex)
#pragma warning restore CA1031
            {
                Count(outcomes, "bad:" + ex.GetType().Name + ": " + ex.Message);
                return;
            }
            finally
            {
                socket.Release();
            }
        }

        Count(outcomes, "bad:worker-timed-out");
    }

    private static int EncodeGetLo(NetlinkSocket socket, uint sequence)
    {
        var writer = new NetlinkWriter(socket.SendBuffer);
        RtnetlinkEncoder.GetLink(ref writer, sequence, "lo");
        return writer.Length;
    }

    /// <summary>The link name in the reply to <paramref name="sequence"/>, or null when the datagram holds none.</summary>
    private static string? ReplyName(ReadOnlySpan<byte> datagram, uint sequence, uint portId)
    {
        foreach (var message in new NetlinkMessageEnumerator(datagram))
        {
            if (message.Sequence == sequence && message.PortId == portId && message.Type == Rt.RTM_NEWLINK)
            {
                return RtnetlinkParser.ParseLinkInfo(message.Payload).Name;
            }
        }

        return null;
    }

    private static void Count(ConcurrentDictionary<string, int> outcomes, string key) => outcomes.AddOrUpdate(key, 1, (_, n) => n + 1);

    /// <summary>Records unhandled exceptions and unobserved task exceptions while it lives.</summary>
    private sealed class UnhandledRecorder : IDisposable
    {
        private readonly ConcurrentQueue<string> _exceptions = new();

        public UnhandledRecorder()
        {
            AppDomain.CurrentDomain.UnhandledException += OnUnhandled;
            TaskScheduler.UnobservedTaskException += OnUnobserved;
        }

        public IReadOnlyCollection<string> Exceptions => _exceptions;

        /// <summary>Collects, so tasks that failed unobserved report now.</summary>
        public static void Flush()
        {
            for (var i = 0; i < 2; i++)
            {
                GC.Collect();
                GC.WaitForPendingFinalizers();
            }
        }

        public void Dispose()
        {
            AppDomain.CurrentDomain.UnhandledException -= OnUnhandled;
            TaskScheduler.UnobservedTaskException -= OnUnobserved;
        }

        private void OnUnhandled(object? sender, UnhandledExceptionEventArgs e) => _exceptions.Enqueue("unhandled: " + e.ExceptionObject);

        private void OnUnobserved(object? sender, UnobservedTaskExceptionEventArgs e) => _exceptions.Enqueue("unobserved: " + e.Exception);
    }
}
