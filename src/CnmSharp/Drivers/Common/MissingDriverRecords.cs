using CnmSharp.Diagnostics;

namespace CnmSharp.Drivers.Common;

/// <summary>
/// The <see cref="InvariantKinds.MissingDriverRecord"/> findings of a driver's check: the core's networks and endpoints
/// the driver must have a record of (<see cref="DriverCheckRequest.ExpectedNetworkIds"/>,
/// <see cref="DriverCheckRequest.ExpectedEndpointIds"/>) and has none. Reported only: the driver cannot know what the
/// network or endpoint had.
/// </summary>
internal static class MissingDriverRecords
{
    /// <summary>Adds a finding for each expected network and endpoint that is not among the driver's records.</summary>
    /// <param name="request">The check request.</param>
    /// <param name="networkIds">The networks the driver has a record of.</param>
    /// <param name="endpointIds">The endpoints the driver has a record of.</param>
    /// <param name="networkDetail">What a missing network record means for this driver.</param>
    /// <param name="endpointDetail">What a missing endpoint record means for this driver.</param>
    /// <param name="findings">Where the findings go.</param>
    public static void Report(DriverCheckRequest request, IEnumerable<string> networkIds, IEnumerable<string> endpointIds, string networkDetail, string endpointDetail, List<InvariantFinding> findings)
    {
        var recordedNetworks = networkIds.ToHashSet(StringComparer.Ordinal);
        var recordedEndpoints = endpointIds.ToHashSet(StringComparer.Ordinal);
        foreach (var (expected, recorded, what, detail, repair) in new[]
        {
            (request.ExpectedNetworkIds, recordedNetworks, "network", networkDetail, "not repaired (the driver cannot know what the network had): delete the network and create it again"),
            (request.ExpectedEndpointIds, recordedEndpoints, "endpoint", endpointDetail, "not repaired: disconnect and delete the endpoint, then create it again"),
        })
        {
            foreach (var id in expected.Where(id => !recorded.Contains(id)).Order(StringComparer.Ordinal))
            {
                findings.Add(new InvariantFinding
                {
                    Kind = InvariantKinds.MissingDriverRecord,
                    Subject = $"{what} {(id.Length > 12 ? id[..12] : id)}",
                    Detail = detail,
                    Repair = request.Repair ? repair : null,
                });
            }
        }
    }
}
