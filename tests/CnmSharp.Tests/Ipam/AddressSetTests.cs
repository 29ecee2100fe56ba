using System.Net;
using CnmSharp.Ipam.Default;
using CsCheck;

namespace CnmSharp.Tests.Ipam;

[TestFixture]
public sealed class AddressSetTests
{
    [Test]
    public void Adjacent_offsets_merge_into_one_run()
    {
        var set = new AddressSet();
        Assert.That(set.Add(5), Is.True);
        Assert.That(set.Add(7), Is.True);
        Assert.That(set.RunCount, Is.EqualTo(2));
        Assert.That(set.Add(6), Is.True);
        Assert.That(set.RunCount, Is.EqualTo(1));
        Assert.That(set.Add(6), Is.False);
        Assert.That(set.Count, Is.EqualTo((UInt128)3));
        Assert.That(set.Remove(6), Is.True);
        Assert.That(set.RunCount, Is.EqualTo(2));
        Assert.That(set.Remove(6), Is.False);
        Assert.That(set.Enumerate(), Is.EqualTo(new UInt128[] { 5, 7 }));
    }

    [Test]
    public void First_free_is_the_first_gap()
    {
        var set = new AddressSet();
        for (UInt128 i = 1; i <= 1000; i++)
        {
            set.Add(i);
        }

        Assert.That(set.RunCount, Is.EqualTo(1));
        Assert.That(set.TryFindFree(1, 5000, out var free), Is.True);
        Assert.That(free, Is.EqualTo((UInt128)1001));
        set.Remove(500);
        Assert.That(set.TryFindFree(1, 5000, out free) && free == 500, Is.True);
        Assert.That(set.TryFindFree(1, 499, out _), Is.False);
        Assert.That(set.TryFindFreeFrom(501, 1, 5000, out free) && free == 1001, Is.True);
        Assert.That(set.TryFindFreeFrom(1001, 1, 1000, out free) && free == 500, Is.True, "wraps");
    }

    [Test]
    public void Works_at_the_top_of_the_128_bit_range()
    {
        var set = new AddressSet();
        var max = UInt128.MaxValue;
        Assert.That(set.Add(max), Is.True);
        Assert.That(set.Add(max - 1), Is.True);
        Assert.That(set.RunCount, Is.EqualTo(1));
        Assert.That(set.TryFindFree(max - 1, max, out _), Is.False);
        Assert.That(set.TryFindFree(max - 5, max, out var free) && free == max - 5, Is.True);
        Assert.That(set.Remove(max), Is.True);
        Assert.That(set.TryFindFree(max - 1, max, out free) && free == max, Is.True);
    }

    [Test]
    public void Memory_does_not_depend_on_the_range()
    {
        var set = new AddressSet();
        var before = GC.GetAllocatedBytesForCurrentThread();
        set.Add(UInt128.One << 100);
        set.TryFindFree(1, UInt128.MaxValue, out _);
        Assert.That(GC.GetAllocatedBytesForCurrentThread() - before, Is.LessThan(1024));
    }

    [Test]
    public void Behaves_like_a_set_model()
    {
        var gen = Gen.Select(Gen.Bool, Gen.Select(Gen.Int[0, 3], Gen.Int[0, 40], Gen.Int[0, 40], (k, a, b) => (k, a, b)).Array[1, 120]);
        gen.Sample((top, ops) =>
        {
            UInt128 basis = top ? UInt128.MaxValue - 40 : 0;
            var set = new AddressSet();
            var model = new SortedSet<int>();
            foreach (var (kind, a, b) in ops)
            {
                switch (kind)
                {
                    case 0:
                    case 1:
                        Assert.That(set.Add(basis + (UInt128)a), Is.EqualTo(model.Add(a)));
                        break;
                    case 2:
                        Assert.That(set.Remove(basis + (UInt128)a), Is.EqualTo(model.Remove(a)));
                        break;
                    default:
                        var (lo, hi) = (Math.Min(a, b), Math.Max(a, b));
                        var expected = Enumerable.Range(lo, hi - lo + 1).Where(x => !model.Contains(x)).Cast<int?>().FirstOrDefault();
                        var found = set.TryFindFree(basis + (UInt128)lo, basis + (UInt128)hi, out var free);
                        Assert.That(found ? (int?)(int)(free - basis) : null, Is.EqualTo(expected));
                        var wrapped = Enumerable.Range(b, 41 - b).Concat(Enumerable.Range(0, b)).Where(x => !model.Contains(x)).Cast<int?>().FirstOrDefault();
                        found = set.TryFindFreeFrom(basis + (UInt128)b, basis, basis + 40, out free);
                        Assert.That(found ? (int?)(int)(free - basis) : null, Is.EqualTo(wrapped));
                        break;
                }

                Assert.That(set.Count, Is.EqualTo((UInt128)model.Count));
                Assert.That(set.Contains(basis + (UInt128)a), Is.EqualTo(model.Contains(a)));
            }

            Assert.That(set.Enumerate().Select(x => (int)(x - basis)), Is.EqualTo(model));
        }, iter: 500);
    }
}

[TestFixture]
public sealed class PredefinedPoolsTests
{
    [Test]
    public void Numbers_pools_across_splits_without_materializing_them()
    {
        var pools = new PredefinedPools([PoolSplit.Parse("10.0.0.0/8", 24), PoolSplit.Parse("fd00::/16", 64)]);
        Assert.That(pools.Total, Is.EqualTo((UInt128)65536 + (UInt128.One << 48)));
    }

    [Test]
    public void Skips_blockers_and_wraps()
    {
        var pools = new PredefinedPools([PoolSplit.Parse("10.0.0.0/22", 24)]);
        var blockers = new List<(UInt128, UInt128)> { Range("10.0.2.0/23") };
        Assert.That(pools.TryFind(2, blockers, out var pool, out var index), Is.True);
        Assert.That((pool, index), Is.EqualTo((IPNetwork.Parse("10.0.0.0/24"), (UInt128)0)));
        blockers.Add(Range("10.0.0.128/25"));
        Assert.That(pools.TryFind(0, blockers, out pool, out index), Is.True);
        Assert.That(pool, Is.EqualTo(IPNetwork.Parse("10.0.1.0/24")));
        blockers.Add(Range("10.0.1.1/32"));
        Assert.That(pools.TryFind(0, blockers, out _, out _), Is.False);
    }

    [Test]
    public void A_huge_blocked_range_is_skipped_in_one_step()
    {
        var pools = new PredefinedPools([PoolSplit.Parse("fd00::/16", 64)]);
        var blockers = new List<(UInt128, UInt128)> { Range("fd00::/17") };
        Assert.That(pools.TryFind(0, blockers, out var pool, out var index), Is.True);
        Assert.That(pool, Is.EqualTo(IPNetwork.Parse("fd00:8000::/64")));
        Assert.That(index, Is.EqualTo(UInt128.One << 47));
    }

    private static (UInt128, UInt128) Range(string cidr) => IpMath.Range(IPNetwork.Parse(cidr));
}
