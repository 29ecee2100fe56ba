using System.Net;
using CnmSharp.Drivers;
using CnmSharp.Ipam;
using CnmSharp.Ipam.Default;
using Microsoft.Extensions.Logging.Abstractions;

namespace CnmSharp.Tests.Ipam;

internal static class IpamTestHelpers
{
    public const string Prefix = "ipam/default/";
    public const string Local = IpamNames.LocalDefaultAddressSpace;
    public const string Global = IpamNames.GlobalDefaultAddressSpace;

    public static readonly IReadOnlyDictionary<string, string> NoOptions = new Dictionary<string, string>();

    public static readonly IReadOnlyDictionary<string, string> Serial = new Dictionary<string, string> { [NetLabels.IpamSerial] = "true" };

    public static DriverContext Context(FakeStore store) => new()
    {
        ControllerId = "test",
        RunDirectory = Path.GetTempPath(),
        Store = store,
        StoreKeyPrefix = Prefix,
        LoggerFactory = NullLoggerFactory.Instance,
    };

    public static async Task<DefaultIpam> CreateAsync(FakeStore? store = null, DefaultIpamOptions? options = null)
    {
        var factory = options is null ? new DefaultIpamFactory() : new DefaultIpamFactory(options);
        return (DefaultIpam)await factory.CreateAsync(Context(store ?? new FakeStore()));
    }

    public static Task<AllocatedPool> PoolAsync(this IIpamDriver ipam, string? pool, string? subPool = null, string space = Local, bool ipv6 = false) =>
        ipam.RequestPoolAsync(new PoolRequest { AddressSpace = space, Pool = pool, SubPool = subPool, IPv6 = ipv6 }).AsTask();

    public static async Task<IPAddress> AddressAsync(this IIpamDriver ipam, string poolId, string? preferred = null, IReadOnlyDictionary<string, string>? options = null)
    {
        var result = await ipam.RequestAddressAsync(poolId, preferred is null ? null : IPAddress.Parse(preferred), options ?? NoOptions);
        Assert.That(result.Address, Is.Not.Null);
        return result.Address!.Value.Address;
    }

    public static async Task<string> AddressTextAsync(this IIpamDriver ipam, string poolId, string? preferred = null, IReadOnlyDictionary<string, string>? options = null) =>
        (await ipam.AddressAsync(poolId, preferred, options)).ToString();

    public static IReadOnlyDictionary<string, string> Owner(string owner) => new Dictionary<string, string> { [NetLabels.IpamOwner] = owner };

    public static async Task<T> ThrowsCnmAsync<T>(Func<Task> action, string code)
        where T : CnmException
    {
        try
        {
            await action();
        }
        catch (T ex)
        {
            Assert.That(ex.Code, Is.EqualTo(code), ex.Message);
            return ex;
        }

        Assert.Fail($"expected {typeof(T).Name} with code {code}");
        throw new InvalidOperationException();
    }
}
