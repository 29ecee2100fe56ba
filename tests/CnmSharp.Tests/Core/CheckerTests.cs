using System.Text.Json.Nodes;
using CnmSharp.Core;
using CnmSharp.Core.Persistence;
using CnmSharp.Diagnostics;
using CnmSharp.Drivers;
using CnmSharp.Store;
using Moq;

namespace CnmSharp.Tests.Core;

/// <summary><see cref="NetworkController.CheckAsync"/> on a controller whose kernel is mocked: the store-side
/// invariants (duplicates, allocation maps, intents) and the driver contract.</summary>
public sealed class CheckerTests : ControllerTestBase
{
    [Test]
    public async Task A_consistent_state_is_clean()
    {
        var c = await F.StartAsync();
        var n = await c.CreateNetworkAsync("n", ControllerFixture.DriverName, Subnet("10.61.0.0/24"));
        await n.CreateEndpointAsync("a");
        await n.CreateEndpointAsync("b");

        var report = await c.CheckAsync();

        Assert.That(report.Findings, Is.Empty);
        Assert.That(report.IsClean, Is.True);
    }

    [Test]
    public async Task A_duplicated_endpoint_record_is_reported_once_as_the_copy_and_repair_deletes_the_copy_only()
    {
        var c = await F.StartAsync();
        var n = await c.CreateNetworkAsync("n", ControllerFixture.DriverName, Subnet("10.62.0.0/24"));
        var a = await n.CreateEndpointAsync("a");
        var copyId = await CopyEndpointRecordAsync(n.Id, a.Id);

        var report = await c.CheckAsync();

        Assert.That(report.Findings.Select(f => f.Kind), Is.EqualTo(new[] { InvariantKinds.DuplicateAddress }), string.Join("\n", report.Findings));
        Assert.That(report.Findings[0].Subject, Does.Contain(copyId[..12]));
        Assert.That(report.Findings[0].Detail, Does.Contain(a.Address!.Value.Address.ToString()).And.Contain(a.Id[..12]));
        Assert.That(report.Findings[0].Repaired, Is.False);

        var repaired = await c.CheckAsync(new CheckOptions { Repair = true });
        Assert.That(repaired.AllRepaired, Is.True, string.Join("\n", repaired.Findings));
        Assert.That(await F.KeysAsync(CoreStore.EndpointPrefix), Is.EqualTo(new[] { CoreStore.EndpointKey(n.Id, a.Id) }));
        Assert.That((await c.CheckAsync()).Findings, Is.Empty);
    }

    [Test]
    public async Task An_allocation_whose_endpoint_record_is_gone_is_an_orphan_and_repair_releases_it()
    {
        var c = await F.StartAsync();
        var n = await c.CreateNetworkAsync("n", ControllerFixture.DriverName, Subnet("10.63.0.0/24"));
        var a = await n.CreateEndpointAsync("a");
        Assert.That(await F.Store.DeleteAsync(CoreStore.EndpointKey(n.Id, a.Id), StoreVersion.Any), Is.True);

        var report = await c.CheckAsync();
        Assert.That(report.Findings.Select(f => f.Kind), Is.EqualTo(new[] { InvariantKinds.OrphanAllocation }), string.Join("\n", report.Findings));
        Assert.That(report.Findings[0].Subject, Does.Contain(a.Address!.Value.Address.ToString()));

        var repaired = await c.CheckAsync(new CheckOptions { Repair = true });
        Assert.That(repaired.Findings.Single().Repaired, Is.True);
        Assert.That((await c.CheckAsync()).Findings, Is.Empty);
    }

    [Test]
    public async Task An_endpoint_whose_address_is_not_allocated_to_it_is_a_mismatch()
    {
        var c = await F.StartAsync();
        var n = await c.CreateNetworkAsync("n", ControllerFixture.DriverName, Subnet("10.64.0.0/24"));
        var a = await n.CreateEndpointAsync("a");
        var key = CoreStore.EndpointKey(n.Id, a.Id);
        var entry = (await F.Store.GetAsync(key))!;
        var node = JsonNode.Parse(entry.Value.Span)!;
        node["address"] = "10.64.0.200/24";
        await F.Store.PutAsync(key, System.Text.Encoding.UTF8.GetBytes(node.ToJsonString()), StoreVersion.Any);

        var kinds = (await c.CheckAsync()).Findings.Select(f => f.Kind).ToList();

        // The old address is allocated to the endpoint, whose record holds another; the new one is allocated to nobody.
        Assert.That(kinds, Is.EqualTo(new[] { InvariantKinds.AllocationMismatch, InvariantKinds.AllocationMismatch }));
    }

    [Test]
    public async Task An_intent_of_a_dead_owner_written_by_another_writer_is_rolled_back_before_the_check_looks()
    {
        // Another writer changed the store: taking the state lock reloads it and runs recovery (the state lease's
        // rule), so the check sees the state after the rollback, not the intent.
        var c = await F.StartAsync();
        var n = await c.CreateNetworkAsync("n", ControllerFixture.DriverName, Subnet("10.65.0.0/24"));
        var intent = new IntentRecord
        {
            Id = Ids.NewId(),
            Kind = IntentKind.CreateEndpoint,
            NetworkId = n.Id,
            EndpointId = Ids.NewId(),
            Driver = ControllerFixture.DriverName,
            Owner = new IntentOwnerRecord { Instance = Ids.NewId(), Pid = int.MaxValue, Host = Environment.MachineName },
        };
        await F.Store.PutAsync(CoreStore.IntentKey(intent.Id), CoreStore.Serialize(intent, CoreJsonContext.Default.IntentRecord), StoreVersion.Absent);

        var report = await c.CheckAsync();

        Assert.That(report.Findings, Is.Empty, string.Join("\n", report.Findings));
        Assert.That(await F.KeysAsync(CoreStore.IntentPrefix), Is.Empty);
        F.Driver.Verify(d => d.DeleteEndpointAsync(n.Id, intent.EndpointId, It.IsAny<CancellationToken>()), Times.Once);
    }

    [Test]
    public async Task A_driver_with_diagnostics_is_asked_with_its_networks_and_endpoints_and_its_findings_are_reported()
    {
        DriverCheckRequest? asked = null;
        var finding = new InvariantFinding { Kind = InvariantKinds.LeakedLink, Subject = "link x", Detail = "test" };
        F.AddDriver("diag", DriverCapability.LocalScope, m => m.As<IDriverDiagnostics>()
            .Setup(d => d.CheckAsync(It.IsAny<DriverCheckRequest>(), It.IsAny<CancellationToken>()))
            .Callback<DriverCheckRequest, CancellationToken>((r, _) => asked = r)
            .ReturnsAsync([finding]));
        var c = await F.StartAsync();
        var n = await c.CreateNetworkAsync("n", "diag", Subnet("10.66.0.0/24"));
        var other = await c.CreateNetworkAsync("o", ControllerFixture.DriverName, Subnet("10.67.0.0/24"));
        var a = await n.CreateEndpointAsync("a");
        await other.CreateEndpointAsync("b");

        var report = await c.CheckAsync(new CheckOptions { Repair = true });

        Assert.That(report.Findings, Is.EqualTo(new[] { finding }));
        Assert.That(asked, Is.Not.Null);
        Assert.That(asked!.NetworkIds, Is.EquivalentTo(new[] { n.Id }));
        Assert.That(asked.EndpointIds, Is.EquivalentTo(new[] { a.Id }));
        Assert.That(asked.Repair, Is.True);
        Assert.That(report.AllRepaired, Is.False);
    }

    [Test]
    public async Task A_quarantined_record_is_reported_with_its_key_and_reason_never_repaired_and_gone_once_discarded()
    {
        await (await F.StartAsync()).DisposeAsync();
        var garbage = CoreStore.IntentKey("garbage");
        await F.Store.PutAsync(garbage, System.Text.Encoding.UTF8.GetBytes("{ not json"), StoreVersion.Any);
        var c = await F.StartAsync();
        Assert.That((await c.GetQuarantinedRecordsAsync()).Select(q => q.Key), Is.EqualTo(new[] { garbage }), "the start set it aside");

        var report = await c.CheckAsync();
        var finding = report.Findings.Single();
        Assert.That(finding.Kind, Is.EqualTo(InvariantKinds.QuarantinedRecord), string.Join("\n", report.Findings));
        Assert.That(finding.Subject, Is.EqualTo("store key " + garbage));
        Assert.That(finding.Detail, Does.Contain(CoreStore.QuarantineKey(garbage)).And.Contain("10 bytes"));

        var repaired = await c.CheckAsync(new CheckOptions { Repair = true });
        Assert.That(repaired.Findings.Single().Repaired, Is.False);
        Assert.That(repaired.Findings.Single().Repair, Does.Contain("never automatic"));
        Assert.That(repaired.AllRepaired, Is.False);
        Assert.That(await F.KeysAsync(CoreStore.QuarantinePrefix), Is.EqualTo(new[] { CoreStore.QuarantineKey(garbage) }), "a repair never deletes it");

        Assert.That(await c.DiscardQuarantinedRecordAsync(garbage), Is.True);
        Assert.That((await c.CheckAsync()).Findings, Is.Empty);
    }

    [Test]
    public async Task A_quarantine_entry_that_cannot_be_read_is_an_unreadable_record_and_is_left()
    {
        var c = await F.StartAsync();
        var key = CoreStore.QuarantinePrefix + "intent/broken";
        await F.Store.PutAsync(key, System.Text.Encoding.UTF8.GetBytes("nope"), StoreVersion.Any);

        var report = await c.CheckAsync(new CheckOptions { Repair = true });

        Assert.That(report.Findings.Select(f => f.Kind), Is.EqualTo(new[] { InvariantKinds.UnreadableRecord }), string.Join("\n", report.Findings));
        Assert.That(report.Findings[0].Subject, Does.Contain(key));
        Assert.That(report.Findings[0].Repaired, Is.False);
        Assert.That(await F.KeysAsync(CoreStore.QuarantinePrefix), Is.EqualTo(new[] { key }));
    }

    [Test]
    public async Task A_driver_is_expected_to_hold_records_of_its_local_objects_but_not_of_those_an_unfinished_operation_names()
    {
        var requests = new List<DriverCheckRequest>();
        F.AddDriver("diag", DriverCapability.LocalScope, m => m.As<IDriverDiagnostics>()
            .Setup(d => d.CheckAsync(It.IsAny<DriverCheckRequest>(), It.IsAny<CancellationToken>()))
            .Callback<DriverCheckRequest, CancellationToken>((r, _) => requests.Add(r))
            .ReturnsAsync([]));
        var c = await F.StartAsync();
        var n = await c.CreateNetworkAsync("n", "diag", Subnet("10.68.0.0/24"));
        var m = await c.CreateNetworkAsync("m", "diag", Subnet("10.69.0.0/24"));
        var a = await n.CreateEndpointAsync("a");
        var b = await n.CreateEndpointAsync("b");
        var d = await m.CreateEndpointAsync("d");

        // Intents of operations this instance runs (registered as live, as a running operation registers its own):
        // an endpoint being deleted, a network being deleted. Their driver records may be gone already.
        var core = (CoreStore)typeof(NetworkController).GetField("_store", System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Instance)!.GetValue(c)!;
        foreach (var (kind, networkId, endpointId) in new[] { (IntentKind.DeleteEndpoint, n.Id, (string?)b.Id), (IntentKind.DeleteNetwork, m.Id, null) })
        {
            var intent = new IntentRecord { Id = Ids.NewId(), Kind = kind, NetworkId = networkId, EndpointId = endpointId, Driver = "diag", Owner = core.Owner };
            core.LiveIntents.TryAdd(intent.Id, 0);
            await F.Store.PutAsync(CoreStore.IntentKey(intent.Id), CoreStore.Serialize(intent, CoreJsonContext.Default.IntentRecord), StoreVersion.Absent);
        }

        await c.CheckAsync();

        var asked = requests.Last();
        Assert.That(asked.NetworkIds, Is.EquivalentTo(new[] { n.Id, m.Id }));
        Assert.That(asked.EndpointIds, Is.EquivalentTo(new[] { a.Id, b.Id, d.Id }));
        Assert.That(asked.ExpectedNetworkIds, Is.EquivalentTo(new[] { n.Id }));
        Assert.That(asked.ExpectedEndpointIds, Is.EquivalentTo(new[] { a.Id }));
    }

    [Test]
    public async Task A_read_only_controller_refuses_to_check()
    {
        var c = await F.StartAsync();
        await c.DisposeAsync();
        F.Configure = o => o.ReadOnly = true;
        var reader = await F.StartAsync();

        await ThrowsAsync<CnmConflictException>(async () => await reader.CheckAsync(), CnmErrorCodes.ReadOnlyController);
    }

    /// <summary>Writes a copy of an endpoint record under a new id and name, without its join: one address (and MAC)
    /// held by two records.</summary>
    private async Task<string> CopyEndpointRecordAsync(string networkId, string endpointId)
    {
        var entry = (await F.Store.GetAsync(CoreStore.EndpointKey(networkId, endpointId)))!;
        var record = CoreStore.Deserialize(entry, CoreJsonContext.Default.EndpointRecord);
        var copy = record with { Id = Ids.NewId(), Name = record.Name + "-copy", Join = null };
        await F.Store.PutAsync(CoreStore.EndpointKey(networkId, copy.Id), CoreStore.Serialize(copy, CoreJsonContext.Default.EndpointRecord), StoreVersion.Absent);
        return copy.Id;
    }
}
