using System.Collections.Frozen;
using System.Net;

namespace CnmSharp.Dns;

/// <summary>
/// The local names, indexed for lookups: per network, name to addresses (names lower-case); per address, the names
/// a PTR answers. Immutable: a change builds a new table, swapped in atomically.
/// </summary>
internal sealed class DnsRecordTable
{
    private readonly FrozenDictionary<string, NetworkNames> _networks;
    private readonly FrozenSet<string> _allNames;
    private readonly FrozenDictionary<IPAddress, (string NetworkId, string Name)[]> _reverse;

    private DnsRecordTable(FrozenDictionary<string, NetworkNames> networks, FrozenSet<string> allNames, FrozenDictionary<IPAddress, (string NetworkId, string Name)[]> reverse)
    {
        _networks = networks;
        _allNames = allNames;
        _reverse = reverse;
    }

    /// <summary>No names.</summary>
    public static DnsRecordTable Empty { get; } = Build([]);

    /// <summary>Builds the table.</summary>
    /// <param name="hosts">Every endpoint's names.</param>
    /// <returns>The table.</returns>
    public static DnsRecordTable Build(IEnumerable<DnsHost> hosts)
    {
        var byNetwork = new Dictionary<string, (string Name, Dictionary<string, List<IPAddress>> Names)>(StringComparer.Ordinal);
        var reverse = new Dictionary<IPAddress, List<(string, string)>>();
        var all = new HashSet<string>(StringComparer.Ordinal);
        foreach (var host in hosts)
        {
            if (!byNetwork.TryGetValue(host.NetworkId, out var network))
            {
                network = (host.NetworkName.ToLowerInvariant(), new Dictionary<string, List<IPAddress>>(StringComparer.Ordinal));
                byNetwork[host.NetworkId] = network;
            }

            var names = host.Names.Where(n => !string.IsNullOrEmpty(n)).Select(n => n.ToLowerInvariant()).Distinct(StringComparer.Ordinal).ToList();
            foreach (var name in names)
            {
                all.Add(name);
                all.Add(name + "." + network.Name);
                if (!network.Names.TryGetValue(name, out var addresses))
                {
                    addresses = [];
                    network.Names[name] = addresses;
                }

                foreach (var address in host.Addresses)
                {
                    if (!addresses.Contains(address))
                    {
                        addresses.Add(address);
                    }
                }
            }

            if (names.Count > 0)
            {
                foreach (var address in host.Addresses)
                {
                    if (!reverse.TryGetValue(address, out var list))
                    {
                        list = [];
                        reverse[address] = list;
                    }

                    list.Add((host.NetworkId, names[0] + "." + network.Name));
                }
            }
        }

        return new DnsRecordTable(
            byNetwork.ToFrozenDictionary(p => p.Key, p => new NetworkNames(p.Value.Name, p.Value.Names.ToFrozenDictionary(n => n.Key, n => n.Value.ToArray(), StringComparer.Ordinal)), StringComparer.Ordinal),
            all.ToFrozenSet(StringComparer.Ordinal),
            reverse.ToFrozenDictionary(p => p.Key, p => p.Value.ToArray()));
    }

    /// <summary>Whether a name (lower-case) is a local name on any network, visible or not.</summary>
    /// <param name="name">The name.</param>
    /// <returns>True when some endpoint has it.</returns>
    public bool IsKnown(string name) => _allNames.Contains(name);

    /// <summary>Whether an address belongs to some endpoint with a name.</summary>
    /// <param name="address">The address.</param>
    /// <returns>True when a PTR could name it on some network.</returns>
    public bool IsKnownAddress(IPAddress address) => _reverse.ContainsKey(address);

    /// <summary>The addresses of a name (lower-case; <c>name</c> or <c>name.network</c>) on the given networks.</summary>
    /// <param name="networkIds">The networks the asking sandbox is on.</param>
    /// <param name="name">The name.</param>
    /// <param name="found">Whether the name exists there (it may have no address of the wanted family).</param>
    /// <returns>The addresses, both families, without duplicates.</returns>
    public List<IPAddress> Lookup(IReadOnlyList<string> networkIds, string name, out bool found)
    {
        found = false;
        var result = new List<IPAddress>();
        foreach (var id in networkIds)
        {
            if (!_networks.TryGetValue(id, out var network))
            {
                continue;
            }

            var key = name;
            if (!network.Names.ContainsKey(key) && name.Length > network.Name.Length + 1 && name.EndsWith(network.Name, StringComparison.Ordinal) && name[^(network.Name.Length + 1)] == '.')
            {
                key = name[..^(network.Name.Length + 1)];
            }

            if (network.Names.TryGetValue(key, out var addresses))
            {
                found = true;
                foreach (var address in addresses)
                {
                    if (!result.Contains(address))
                    {
                        result.Add(address);
                    }
                }
            }
        }

        return result;
    }

    /// <summary>The names (<c>name.network</c>) an address has on the given networks.</summary>
    /// <param name="networkIds">The networks the asking sandbox is on.</param>
    /// <param name="address">The address.</param>
    /// <returns>The names; empty when none is visible.</returns>
    public List<string> ReverseLookup(IReadOnlyList<string> networkIds, IPAddress address)
    {
        var result = new List<string>();
        if (_reverse.TryGetValue(address, out var entries))
        {
            foreach (var (networkId, name) in entries)
            {
                if (networkIds.Contains(networkId) && !result.Contains(name))
                {
                    result.Add(name);
                }
            }
        }

        return result;
    }

    private sealed record NetworkNames(string Name, FrozenDictionary<string, IPAddress[]> Names);
}
