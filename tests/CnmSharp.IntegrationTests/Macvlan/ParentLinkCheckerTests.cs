using System.Text.Json.Nodes;
using CnmSharp.Diagnostics;
using CnmSharp.Store;
using CnmSharp.Testing;

namespace CnmSharp.IntegrationTests.Macvlan;

/// <summary><see cref="NetworkController.CheckAsync"/> on the macvlan driver's records, in a private host namespace: a
/// network record the core has no network for is deleted with the parent it proves the driver made (same name, kind and
/// index), and a link that only has the recorded name (another index) stays.</summary>
[RequiresRoot]
[NonParallelizable]
public sealed class ParentLinkCheckerTests
{
    [Test]
    public async Task An_orphan_network_record_goes_with_the_parent_it_proves_the_driver_made_and_nothing_else()
    {
        await using var lab = await ParentLinkHarness.CreateAsync(vethParent: false);
        var network = await lab.NetworkAsync("macvlan", "mvck", "10.89.0.0/24", []);
        await lab.ContainerAsync(network, "c1");
        Assert.That((await lab.Controller.CheckAsync()).Findings, Is.Empty);

        // Two records the core has no network for: one whose created parent is the link of that name (its index), one
        // whose recorded index is not the link's (someone else made a link of that name since).
        await IpTool.RunAsync(lab.Host.Path, "link", "add", "ckpm0", "type", "veth", "peer", "name", "ckpm1");
        await IpTool.RunAsync(lab.Host.Path, "link", "add", "ckpo0", "type", "veth", "peer", "name", "ckpo1");
        var mine = await PlantAsync(lab, network.Id, "ckpm0", (await IpTool.LinkAsync(lab.Host.Path, "ckpm0"))!.Value.GetProperty("ifindex").GetInt32());
        var other = await PlantAsync(lab, network.Id, "ckpo0", (await IpTool.LinkAsync(lab.Host.Path, "ckpo0"))!.Value.GetProperty("ifindex").GetInt32() + 1000);

        var report = await lab.Controller.CheckAsync();
        var text = string.Join("\n", report.Findings);
        Assert.That(report.Findings.Select(f => f.Kind), Is.EqualTo(new[] { InvariantKinds.OrphanDriverRecord, InvariantKinds.OrphanDriverRecord }), text);
        Assert.That(report.Findings.Select(f => f.Subject), Has.Some.Contain(mine[..12]).And.Some.Contain(other[..12]), text);

        var repaired = await lab.Controller.CheckAsync(new CheckOptions { Repair = true });
        Assert.That(repaired.AllRepaired, Is.True, string.Join("\n", repaired.Findings));
        Assert.That(await lab.Store.ListAsync("cnm/v1/driver/macvlan/network/"), Has.Count.EqualTo(1), "only the live network's record is left");
        Assert.That(await IpTool.LinkAsync(lab.Host.Path, "ckpm0"), Is.Null, "the parent the record proves the driver made is gone");
        Assert.That(await IpTool.LinkAsync(lab.Host.Path, "ckpo0"), Is.Not.Null, "a link with another index is not the one the driver made");
        Assert.That(await IpTool.LinkAsync(lab.Host.Path, "dm-" + network.Id[..12]), Is.Not.Null, "the live network's parent stays");

        var after = await lab.Controller.CheckAsync();
        Assert.That(after.Findings, Is.Empty, string.Join("\n", after.Findings));
    }

    /// <summary>A copy of the live network's driver record under a new id, naming <paramref name="parent"/> as a veth the
    /// driver made with <paramref name="index"/>.</summary>
    private static async Task<string> PlantAsync(ParentLinkHarness lab, string networkId, string parent, int index)
    {
        var entry = (await lab.Store.GetAsync("cnm/v1/driver/macvlan/network/" + networkId))!;
        var node = JsonNode.Parse(entry.Value.Span)!.AsObject();
        string Key(string name) => node.Select(p => p.Key).Single(k => string.Equals(k, name, StringComparison.OrdinalIgnoreCase));
        var id = Convert.ToHexStringLower(Guid.NewGuid().ToByteArray()) + Convert.ToHexStringLower(Guid.NewGuid().ToByteArray());
        node[Key("id")] = id;
        node[Key("name")] = "orphan-" + parent;
        node[Key("parent")] = parent;
        node[Key("createdParent")] = new JsonObject { ["kind"] = "veth", ["index"] = index };
        await lab.Store.PutAsync("cnm/v1/driver/macvlan/network/" + id, System.Text.Encoding.UTF8.GetBytes(node.ToJsonString()), StoreVersion.Absent);
        return id;
    }
}
