namespace CnmSharp.Firewall.Internal;

/// <summary>The records a firewall backend (iptables or nftables) holds: networks and port forwards, in the order they
/// were set up. Each backend builds its ruleset from them (<c>IptablesRuleBuilder</c>, <c>NftablesRuleBuilder</c>).</summary>
internal sealed record FirewallRecords(IReadOnlyList<FirewallNetwork> Networks, IReadOnlyList<FirewallPortForward> Forwards)
{
    public static FirewallRecords Empty { get; } = new([], []);

    /// <summary>Validated records: bridges unique, forwards of known networks on their bridge.</summary>
    public static FirewallRecords From(IReadOnlyList<FirewallNetwork> networks, IReadOnlyList<FirewallPortForward> forwards)
    {
        ArgumentNullException.ThrowIfNull(networks);
        ArgumentNullException.ThrowIfNull(forwards);
        var records = Empty;
        foreach (var network in networks)
        {
            FirewallValidation.Validate(network);
            records = records.WithNetwork(network);
        }

        foreach (var forward in forwards)
        {
            FirewallValidation.Validate(forward);
            records = records.WithForward(forward);
        }

        records.Check();
        return records;
    }

    /// <summary>Throws when two networks share a bridge or a forward names an unknown network or another bridge.</summary>
    public void Check()
    {
        foreach (var network in Networks)
        {
            var clash = Networks.FirstOrDefault(n => n.NetworkId != network.NetworkId && n.BridgeName == network.BridgeName);
            if (clash is not null)
            {
                throw new CnmConflictException(CnmErrorCodes.NetworkExists, $"network \"{network.NetworkId}\"",
                    $"bridge {network.BridgeName} already has the rules of network \"{clash.NetworkId}\"");
            }
        }

        foreach (var forward in Forwards)
        {
            var network = NetworkOf(forward)
                ?? throw new CnmNotFoundException(CnmErrorCodes.NoSuchNetwork, $"network \"{forward.NetworkId}\"",
                    "the network has no firewall rules; set it up before its port forwards");
            if (network.BridgeName != forward.BridgeName)
            {
                throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidOption, $"endpoint \"{forward.EndpointId}\"",
                    $"bridge {forward.BridgeName} is not the bridge of network \"{forward.NetworkId}\" ({network.BridgeName})");
            }
        }
    }

    public FirewallNetwork? NetworkOf(FirewallPortForward forward) => Networks.FirstOrDefault(n => n.NetworkId == forward.NetworkId);

    public FirewallRecords WithNetwork(FirewallNetwork network)
    {
        var list = Networks.ToList();
        var index = list.FindIndex(n => n.NetworkId == network.NetworkId);
        if (index >= 0)
        {
            list[index] = network;
        }
        else
        {
            list.Add(network);
        }

        return this with { Networks = list };
    }

    public FirewallRecords WithoutNetwork(string networkId) => new(
        Networks.Where(n => n.NetworkId != networkId).ToList(),
        Forwards.Where(f => f.NetworkId != networkId).ToList());

    public FirewallRecords WithForward(FirewallPortForward forward)
    {
        var list = Forwards.ToList();
        var index = list.FindIndex(f => f.NetworkId == forward.NetworkId && f.EndpointId == forward.EndpointId);
        if (index >= 0)
        {
            list[index] = forward;
        }
        else
        {
            list.Add(forward);
        }

        return this with { Forwards = list };
    }

    public FirewallRecords WithoutForward(string networkId, string endpointId) =>
        this with { Forwards = Forwards.Where(f => !(f.NetworkId == networkId && f.EndpointId == endpointId)).ToList() };

    /// <summary>These records with one owner's replaced.</summary>
    public FirewallRecords WithOwner(string owner, FirewallRecords mine) => new(
        [.. Networks.Where(n => n.Owner != owner), .. mine.Networks],
        [.. Forwards.Where(f => NetworkOf(f)?.Owner != owner), .. mine.Forwards]);

    /// <summary>These records plus others (being torn down, maybe unknown).</summary>
    public FirewallRecords Plus(FirewallRecords extra) => new(
        [.. Networks, .. extra.Networks.Where(n => !Networks.Any(m => m.NetworkId == n.NetworkId))],
        [.. Forwards, .. extra.Forwards.Where(f => !Forwards.Contains(f))]);

    /// <summary>Only one owner's records.</summary>
    public FirewallRecords OfOwner(string owner) => new(
        Networks.Where(n => n.Owner == owner).ToList(),
        Forwards.Where(f => OwnerOf(f) == owner).ToList());

    /// <summary>The owner of a change's records (its network's), or null when it cannot be told.</summary>
    public string? OwnerOf(FirewallPortForward forward) => NetworkOf(forward)?.Owner;
}
