using CnmSharp.Netlink.Tests.Support;
using CnmSharp.Testing;

namespace CnmSharp.Netlink.Tests;

/// <summary>Failures surface typed, with the kernel's words, and leave nothing behind.</summary>
[RequiresRoot]
[Parallelizable(ParallelScope.All)]
public class RootErrorTests
{
    [Test]
    public async Task Creating_an_existing_link_is_EEXIST()
    {
        using var ns = TestNamespace.Create();
        await using var client = RtnetlinkClient.Open(ns.Handle);
        await client.CreateLinkAsync(new VethLinkSpec("dup0", "dup1"));
        var e = (await Assert.ThrowsAsync<NetlinkException>(async () => await client.CreateLinkAsync(new VethLinkSpec("dup0", "dup2"))))!;
        Assert.Multiple(() =>
        {
            Assert.That(e.ErrorName, Is.EqualTo("EEXIST"));
            Assert.That(e.Errno, Is.EqualTo(17));
            Assert.That(e.IsAlreadyExists, Is.True);
            Assert.That(e.Message, Does.Contain("create link"));
            Assert.That(ns.Link("dup2"), Is.Null);
        });
    }

    [Test]
    public async Task Deleting_a_missing_link_is_ENODEV()
    {
        using var ns = TestNamespace.Create();
        await using var client = RtnetlinkClient.Open(ns.Handle);
        var byName = (await Assert.ThrowsAsync<NetlinkException>(async () => await client.DeleteLinkAsync("nope0")))!;
        var byIndex = (await Assert.ThrowsAsync<NetlinkException>(async () => await client.DeleteLinkAsync(9999)))!;
        Assert.Multiple(() =>
        {
            Assert.That(byName.ErrorName, Is.EqualTo("ENODEV"));
            Assert.That(byIndex.ErrorName, Is.EqualTo("ENODEV"));
            Assert.That(byIndex.IsNotFound, Is.True);
        });
    }

    [Test]
    public async Task Names_longer_than_15_bytes_fail_before_sending()
    {
        using var ns = TestNamespace.Create();
        await using var client = RtnetlinkClient.Open(ns.Handle);
        var e = (await Assert.ThrowsAsync<ArgumentException>(async () => await client.CreateLinkAsync(new VethLinkSpec("a-name-of-16-byt", "ok0"))))!;
        Assert.That(e.Message, Does.Contain("16 bytes").And.Contain("15"));
        await Assert.ThrowsAsync<ArgumentException>(async () => await client.CreateLinkAsync(new VethLinkSpec("ok0", "peer-name-16-byt")));
        await Assert.ThrowsAsync<ArgumentException>(async () => await client.SetLinkNameAsync(1, "ééééééééé"));
        await Assert.ThrowsAsync<ArgumentException>(async () => await client.CreateLinkAsync(new BridgeLinkSpec("bad/name")));
        Assert.That(ns.LinkNames(), Is.EquivalentTo(new[] { "lo" }));
    }

    [Test]
    public async Task A_handle_that_is_not_a_namespace_is_EINVAL_and_creates_nothing()
    {
        using var ns = TestNamespace.Create();
        await using var client = RtnetlinkClient.Open(ns.Handle);
        using var notANamespace = File.OpenHandle("/proc/self/stat");
        var e = (await Assert.ThrowsAsync<NetlinkException>(async () => await client.CreateLinkAsync(new VethLinkSpec("bad0", "bad1") { PeerNamespace = notANamespace })))!;
        Assert.That(e.ErrorName, Is.AnyOf("EINVAL", "EBADF"));
        Assert.That(ns.LinkNames(), Is.EquivalentTo(new[] { "lo" }));
    }

    [Test]
    public async Task A_closed_fd_number_is_EBADF()
    {
        using var ns = TestNamespace.Create();
        await using var client = RtnetlinkClient.Open(ns.Handle);
        using var bogus = new Microsoft.Win32.SafeHandles.SafeFileHandle(987654, ownsHandle: false);
        var e = (await Assert.ThrowsAsync<NetlinkException>(async () => await client.CreateLinkAsync(new BridgeLinkSpec("bad2") { Namespace = bogus })))!;
        Assert.That(e.ErrorName, Is.AnyOf("EBADF", "EINVAL"));
        Assert.That(ns.LinkNames(), Is.EquivalentTo(new[] { "lo" }));
    }

    [Test]
    public void Opening_a_client_in_something_that_is_not_a_namespace_is_EINVAL()
    {
        using var notANamespace = File.OpenHandle("/proc/self/stat");
        var e = Assert.Throws<NetlinkException>(() => RtnetlinkClient.Open(notANamespace))!;
        Assert.That(e.ErrorName, Is.EqualTo("EINVAL"));
    }

    [Test]
    public async Task A_kind_the_kernel_lacks_is_EOPNOTSUPP_with_its_message()
    {
        using var ns = TestNamespace.Create();
        await using var client = RtnetlinkClient.Open(ns.Handle);
        var e = (await Assert.ThrowsAsync<NetlinkException>(async () => await client.CreateLinkAsync(new NoSuchKindSpec("k2"))))!;
        Assert.Multiple(() =>
        {
            Assert.That(e.ErrorName, Is.EqualTo("EOPNOTSUPP"));
            Assert.That(e.ExtendedMessage, Is.EqualTo("Unknown device type"));
            Assert.That(e.Message, Does.Contain("Unknown device type"));
        });
    }

    [Test]
    public async Task GetLink_of_a_missing_link_is_null()
    {
        using var ns = TestNamespace.Create();
        await using var client = RtnetlinkClient.Open(ns.Handle);
        Assert.That(await client.GetLinkAsync("missing0"), Is.Null);
        Assert.That(await client.GetLinkAsync(4242), Is.Null);
    }

    [Test]
    public async Task A_disposed_client_throws_ObjectDisposedException()
    {
        using var ns = TestNamespace.Create();
        var client = RtnetlinkClient.Open(ns.Handle);
        await client.DisposeAsync();
        await Assert.ThrowsAsync<ObjectDisposedException>(async () => await client.GetLinksAsync());
    }

    [Test]
    public async Task Cancelled_request_leaves_the_client_usable()
    {
        using var ns = TestNamespace.Create();
        await using var client = RtnetlinkClient.Open(ns.Handle);
        using var cts = new CancellationTokenSource();
        await cts.CancelAsync();
        Assert.That(async () => await client.GetLinksAsync(cts.Token), Throws.InstanceOf<OperationCanceledException>());
        Assert.That((await client.GetLinksAsync()).Select(l => l.Name), Does.Contain("lo"));
    }

    [Test]
    public async Task Requests_cancelled_in_flight_leave_the_client_usable()
    {
        using var ns = TestNamespace.Create();
        await using var client = RtnetlinkClient.Open(ns.Handle);
        for (var i = 0; i < 20; i++)
        {
            await client.CreateLinkAsync(new VethLinkSpec($"c{i}a", $"c{i}b"));
        }

        var cancelled = 0;
        for (var i = 0; i < 100; i++)
        {
            using var cts = new CancellationTokenSource();
            var dump = client.GetLinksAsync(cts.Token).AsTask();
            cts.CancelAfter(TimeSpan.FromTicks(i * 20));
            try
            {
                await dump;
            }
            catch (OperationCanceledException)
            {
                cancelled++;
            }

            // Whatever state the cancelled dump left behind, the next request must see only its own reply.
            using var guard = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            var links = await client.GetLinksAsync(guard.Token);
            Assert.That(links, Has.Count.EqualTo(41));
        }

        TestContext.Out.WriteLine($"{cancelled} of 100 dumps were cancelled in flight");
    }

    [Test]
    public async Task A_socket_whose_receive_was_cancelled_still_receives()
    {
        using var ns = TestNamespace.Create();
        using var socket = CnmSharp.Netlink.NamespaceExecutor.RunIn(ns.Handle, () => CnmSharp.Netlink.Internal.NetlinkSocket.Open());
        using (var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(100)))
        {
            Assert.That(async () => await socket.ReceiveAsync(cts.Token), Throws.InstanceOf<OperationCanceledException>());
        }

        var length = Encode(socket, 77);
        await socket.SendAsync(length, CancellationToken.None);
        using var guard = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var received = await socket.ReceiveAsync(guard.Token);
        Assert.That(received, Is.GreaterThan(16));

        static int Encode(CnmSharp.Netlink.Internal.NetlinkSocket socket, uint seq)
        {
            var writer = new CnmSharp.Netlink.Internal.NetlinkWriter(socket.SendBuffer);
            CnmSharp.Netlink.Internal.RtnetlinkEncoder.GetLink(ref writer, seq, "lo");
            return writer.Length;
        }
    }

    /// <summary>A kind no kernel has, to see the kernel's answer to an unknown kind.</summary>
    private sealed record NoSuchKindSpec(string Name) : LinkSpec(Name)
    {
        public override string Kind => "cnmnosuchkind";
    }
}
