using CnmSharp.Drivers;
using CnmSharp.Ipam;

namespace CnmSharp.Core;

/// <summary>A driver instance of one controller, with its capability read once.</summary>
internal sealed record RegisteredDriver(string Name, INetworkDriver Driver, DriverCapability Capability);

/// <summary>An IPAM instance of one controller, with its default address spaces read once.</summary>
internal sealed record RegisteredIpam(string Name, IIpamDriver Ipam, AddressSpaces AddressSpaces)
{
    /// <summary>
    /// How reservations of an IPAM that the start's sweep cannot see (it does not list its allocations: a plugin)
    /// are released when it can release by owner: a create's rollback releases what its owner holds (also what a
    /// process killed before recording the reply left), and a delete releases by owner before the record goes. Null
    /// for an IPAM the sweep covers (<see cref="IIpamOwnedAllocations"/>) or one that cannot release by owner; those
    /// release the pools and addresses the intents and records name.
    /// </summary>
    public IIpamOwnerRelease? ReleaseByOwner { get; } =
        Ipam is IIpamOwnedAllocations ? null : IIpamOwnerRelease.Of(Ipam);
}

/// <summary>The drivers and IPAMs of one controller. Names are case-sensitive and taken once.</summary>
internal sealed class DriverRegistry
{
    private readonly Lock _lock = new();
    private readonly Dictionary<string, RegisteredDriver> _drivers = new(StringComparer.Ordinal);
    private readonly Dictionary<string, RegisteredIpam> _ipams = new(StringComparer.Ordinal);

    public void Add(RegisteredDriver driver)
    {
        lock (_lock)
        {
            if (!_drivers.TryAdd(driver.Name, driver))
            {
                throw new CnmConflictException(CnmErrorCodes.ActiveRegistration, $"driver \"{driver.Name}\"", "a driver with that name is already registered");
            }
        }
    }

    public void Add(RegisteredIpam ipam)
    {
        lock (_lock)
        {
            if (!_ipams.TryAdd(ipam.Name, ipam))
            {
                throw new CnmConflictException(CnmErrorCodes.ActiveRegistration, $"IPAM driver \"{ipam.Name}\"", "an IPAM driver with that name is already registered");
            }
        }
    }

    public bool ContainsDriver(string name)
    {
        lock (_lock)
        {
            return _drivers.ContainsKey(name);
        }
    }

    public bool ContainsIpam(string name)
    {
        lock (_lock)
        {
            return _ipams.ContainsKey(name);
        }
    }

    public RegisteredDriver GetDriver(string name)
    {
        lock (_lock)
        {
            return _drivers.TryGetValue(name, out var driver)
                ? driver
                : throw new CnmNotFoundException(CnmErrorCodes.UnknownDriver, $"driver \"{name}\"", "no such network driver is registered");
        }
    }

    public RegisteredIpam GetIpam(string name)
    {
        lock (_lock)
        {
            return _ipams.TryGetValue(name, out var ipam)
                ? ipam
                : throw new CnmNotFoundException(CnmErrorCodes.UnknownIpamDriver, $"IPAM driver \"{name}\"", "no such IPAM driver is registered");
        }
    }

    public IReadOnlyList<RegisteredDriver> Drivers
    {
        get
        {
            lock (_lock)
            {
                return [.. _drivers.Values];
            }
        }
    }

    public IReadOnlyList<RegisteredIpam> Ipams
    {
        get
        {
            lock (_lock)
            {
                return [.. _ipams.Values];
            }
        }
    }
}
