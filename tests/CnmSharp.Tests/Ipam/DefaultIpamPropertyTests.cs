using System.Net;
using CnmSharp.Ipam;
using CnmSharp.Ipam.Default;
using CsCheck;
using static CnmSharp.Tests.Ipam.IpamTestHelpers;

namespace CnmSharp.Tests.Ipam;

/// <summary>Random request/release sequences on random pools, checked against a model.</summary>
[TestFixture]
public sealed class DefaultIpamPropertyTests
{
    private sealed record PoolSpec(bool Global, bool IPv6, int K, int J, int Prefix)
    {
        public IPNetwork Network => IPv6
            ? (Prefix >= 27
                ? IPNetwork.Parse($"fd00:0:0:{K}::{J * 256:x}/120")
                : IPNetwork.Parse($"fd00:0:0:{K}::/64"))
            : IPNetworks.Containing(IPAddress.Parse($"10.0.{K}.{J * 64}"), Prefix);

        public string Space => Global ? IpamTestHelpers.Global : Local;
    }

    private sealed record Op(int Kind, int Pool, int Pick);

    private sealed class ModelPool(string id, string space, IPNetwork network)
    {
        public string Id { get; } = id;

        public string Space { get; } = space;

        public IPNetwork Network { get; } = network;

        public UInt128 First { get; } = IpMath.ToUInt128(network.BaseAddress);

        public int HostBits => IpMath.Bits(Network.BaseAddress) - Network.PrefixLength;

        public HashSet<UInt128> Held { get; } = [];

        public UInt128 Usable => (UInt128.One << HostBits) - (Network.IsIPv6() ? UInt128.One : 2);

        public bool Reserved(UInt128 offset) => offset == 0 || (!Network.IsIPv6() && offset == (UInt128.One << HostBits) - 1);

        public IPAddress At(UInt128 offset) => IpMath.FromUInt128(First + offset, Network.IsIPv6());
    }

    private static readonly Gen<PoolSpec> s_pool =
        Gen.Select(Gen.Bool, Gen.Bool, Gen.Int[0, 2], Gen.Int[0, 3], Gen.Int[24, 30], (g, v6, k, j, p) => new PoolSpec(g, v6, k, j, p));

    private static readonly Gen<Op> s_op =
        Gen.Select(Gen.Frequency((3, Gen.Const(0)), (1, Gen.Const(1)), (2, Gen.Const(2)), (3, Gen.Const(3))), Gen.Int[0, 5], Gen.Int[0, 100_000], (k, p, n) => new Op(k, p, n));

    [Test]
    public async Task Random_request_release_sequences_match_the_model()
    {
        await Gen.Select(s_pool.Array[1, 5], s_op.Array[1, 120]).SampleAsync(async (specs, ops) =>
        {
            var store = new FakeStore();
            var ipam = await CreateAsync(store);
            var pools = new List<ModelPool>();
            foreach (var spec in specs)
            {
                var network = spec.Network;
                var overlaps = pools.Any(p => p.Space == spec.Space && p.Network.Overlaps(network));
                try
                {
                    var pool = await ipam.PoolAsync(network.ToString(), space: spec.Space, ipv6: spec.IPv6);
                    Assert.That(overlaps, Is.False, $"{network} overlaps a pool of {spec.Space} but was granted");
                    pools.Add(new ModelPool(pool.PoolId, spec.Space, network));
                }
                catch (CnmConflictException ex) when (ex.Code == CnmErrorCodes.PoolOverlap)
                {
                    Assert.That(overlaps, Is.True, $"{network} refused as overlapping");
                }
            }

            foreach (var op in ops)
            {
                var p = pools[op.Pool % pools.Count];
                switch (op.Kind)
                {
                    case 0 or 1:
                        {
                            if ((UInt128)p.Held.Count == p.Usable)
                            {
                                await ThrowsCnmAsync<CnmUnavailableException>(() => ipam.AddressAsync(p.Id, options: op.Kind == 1 ? Serial : NoOptions), CnmErrorCodes.NoAvailableIPs);
                                break;
                            }

                            var result = await ipam.RequestAddressAsync(p.Id, null, op.Kind == 1 ? Serial : NoOptions);
                            Assert.That(result.Address!.Value.PrefixLength, Is.EqualTo(p.Network.PrefixLength));
                            var address = result.Address.Value.Address;
                            Assert.That(p.Network.Contains(address), Is.True);
                            var offset = IpMath.ToUInt128(address) - p.First;
                            Assert.That(p.Reserved(offset), Is.False, $"{address} is reserved");
                            Assert.That(p.Held.Add(offset), Is.True, $"{address} handed out twice");
                            break;
                        }

                    case 2:
                        {
                            var size = UInt128.One << p.HostBits;
                            var offset = (UInt128)op.Pick % UInt128.Min(size, 1024);
                            if (p.Reserved(offset) || p.Held.Contains(offset))
                            {
                                await ThrowsCnmAsync<CnmConflictException>(() => ipam.AddressAsync(p.Id, p.At(offset).ToString()), CnmErrorCodes.IPAlreadyAllocated);
                            }
                            else
                            {
                                Assert.That(await ipam.AddressAsync(p.Id, p.At(offset).ToString()), Is.EqualTo(p.At(offset)));
                                p.Held.Add(offset);
                            }

                            break;
                        }

                    default:
                        {
                            if (p.Held.Count == 0)
                            {
                                await ipam.ReleaseAddressAsync(p.Id, p.At(1));
                                break;
                            }

                            var offset = p.Held.OrderBy(x => x).ElementAt(op.Pick % p.Held.Count);
                            await ipam.ReleaseAddressAsync(p.Id, p.At(offset));
                            p.Held.Remove(offset);

                            // Released means allocatable again.
                            Assert.That(await ipam.AddressAsync(p.Id, p.At(offset).ToString()), Is.EqualTo(p.At(offset)));
                            await ipam.ReleaseAddressAsync(p.Id, p.At(offset));
                            break;
                        }
                }
            }

            var snapshot = ipam.Snapshot().ToDictionary(u => u.PoolId, u => u.Allocated);
            var restarted = await CreateAsync(store);
            foreach (var p in pools)
            {
                Assert.That(snapshot[p.Id], Is.EqualTo((UInt128)p.Held.Count));
                var stored = await restarted.GetAllocationsAsync(p.Id);
                Assert.That(stored.Select(a => IpMath.ToUInt128(a.Address) - p.First), Is.EquivalentTo(p.Held));
            }

            Assert.That(restarted.Snapshot().ToDictionary(u => u.PoolId, u => u.Allocated), Is.EqualTo(snapshot));
        }, iter: 150);
    }

    [Test]
    public async Task Predefined_pools_never_overlap_within_an_address_space()
    {
        var gen = Gen.Select(Gen.Int[0, 2], Gen.Int[0, 30], Gen.Int[0, 3]).Array[1, 60];
        await gen.SampleAsync(async ops =>
        {
            var options = new DefaultIpamOptions { LocalPools = [PoolSplit.Parse("10.0.0.0/22", 26), PoolSplit.Parse("10.0.8.0/24", 28)] };
            var ipam = await CreateAsync(options: options);
            var held = new List<AllocatedPool>();
            foreach (var (kind, pick, len) in ops)
            {
                if (kind < 2)
                {
                    AllocatedPool pool;
                    try
                    {
                        pool = kind == 0
                            ? await ipam.PoolAsync(null)
                            : await ipam.PoolAsync(IPNetworks.Containing(IPAddress.Parse($"10.0.{pick % 4}.{pick * 8 % 256}"), 24 + len).ToString());
                    }
                    catch (CnmException ex) when (ex.Code is CnmErrorCodes.PoolOverlap or CnmErrorCodes.NoAvailablePool)
                    {
                        continue;
                    }

                    Assert.That(held.Where(h => h.Pool.Overlaps(pool.Pool)), Is.Empty, $"{pool.Pool} overlaps");
                    held.Add(pool);
                }
                else if (held.Count > 0)
                {
                    var victim = held[pick % held.Count];
                    await ipam.ReleasePoolAsync(victim.PoolId);
                    held.Remove(victim);
                }
            }

            Assert.That(await ipam.GetPoolIdsAsync(), Is.EquivalentTo(held.Select(h => h.PoolId)));
        }, iter: 200);
    }
}
