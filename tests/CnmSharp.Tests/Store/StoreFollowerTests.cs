using System.Runtime.CompilerServices;
using System.Text;
using CnmSharp.Store;
using Moq;

namespace CnmSharp.Tests.Store;

public sealed class StoreFollowerTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    [Test]
    public async Task A_disconnect_inside_a_commit_resumes_at_that_revision_without_repeating_and_a_compaction_lists_again()
    {
        await using var inner = new InMemoryKeyValueStore();
        await inner.PutAsync("f/a", Encoding.UTF8.GetBytes("1"));
        var store = new Mock<ISharedKeyValueStore>(MockBehavior.Strict);
        store.Setup(s => s.ListAtAsync("f/", StoreRevision.Latest, It.IsAny<CancellationToken>()))
            .Returns((string p, long r, CancellationToken c) => inner.ListAtAsync(p, r, c));
        var watches = new List<long>();
        store.Setup(s => s.WatchFromAsync("f/", It.IsAny<long>(), It.IsAny<CancellationToken>()))
            .Returns((string p, long from, CancellationToken c) =>
            {
                watches.Add(from);
                return watches.Count switch
                {
                    1 => FailAfter(inner.WatchFromAsync(p, from, c), 1, new CnmUnavailableException(CnmErrorCodes.StoreUnavailable, "store", "connection lost"), c),
                    2 => FailAfter(inner.WatchFromAsync(p, from, c), 2, new CnmConflictException(CnmErrorCodes.RevisionCompacted, "revision", "compacted"), c),
                    _ => inner.WatchFromAsync(p, from, c),
                };
            });
        var unavailable = 0;
        using var cts = new CancellationTokenSource(Timeout);
        await using var updates = store.Object.FollowAsync("f/", TimeSpan.FromMilliseconds(10), _ => unavailable++, cancellationToken: cts.Token).GetAsyncEnumerator(cts.Token);

        Assert.That(await updates.MoveNextAsync(), Is.True);
        var first = updates.Current.Snapshot!;
        var versions = await inner.CommitAsync([StoreOperation.Put("f/b", Encoding.UTF8.GetBytes("2")), StoreOperation.Put("f/c", Encoding.UTF8.GetBytes("3"))]);
        var next = await inner.PutAsync("f/d", Encoding.UTF8.GetBytes("4"));

        var seen = new List<StoreFollowUpdate>();
        while (seen.Count < 3)
        {
            Assert.That(await updates.MoveNextAsync().AsTask().WaitAsync(Timeout), Is.True);
            seen.Add(updates.Current);
        }

        var last = await inner.PutAsync("f/e", Encoding.UTF8.GetBytes("5"));
        Assert.That(await updates.MoveNextAsync().AsTask().WaitAsync(Timeout), Is.True);
        seen.Add(updates.Current);

        Assert.That(first.Entries.Select(e => e.Key), Is.EqualTo(new[] { "f/a" }));
        Assert.That(watches, Is.EqualTo(new[] { first.Revision + 1, versions[0], next + 1 }));
        Assert.That(seen[0].Change!.Key, Is.EqualTo("f/b"));
        Assert.That(seen[1].Change!.Key, Is.EqualTo("f/c"), "resumed inside the commit, without repeating f/b");
        Assert.That(seen[2].Snapshot!.Entries.Select(e => e.Key), Is.EqualTo(new[] { "f/a", "f/b", "f/c", "f/d" }), "a compaction lists again");
        Assert.That((seen[3].Change!.Key, seen[3].Change!.Version), Is.EqualTo(("f/e", last)));
        Assert.That(unavailable, Is.EqualTo(1));
    }

    private static async IAsyncEnumerable<StoreEvent> FailAfter(IAsyncEnumerable<StoreEvent> events, int count, Exception error, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var given = 0;
        await foreach (var e in events.WithCancellation(cancellationToken))
        {
            if (given++ == count)
            {
                throw error;
            }

            yield return e;
        }
    }
}
