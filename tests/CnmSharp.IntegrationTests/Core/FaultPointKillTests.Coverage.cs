using CnmSharp.Diagnostics;
using CnmSharp.Testing;

namespace CnmSharp.IntegrationTests.Core;

/// <summary>The coverage property of the kill harness: an unfiltered run reaches every point of
/// <see cref="FaultPoint.All"/>, except the points that only a device kind the running kernel lacks can reach.</summary>
public sealed partial class FaultPointKillTests
{
    /// <summary>The points that need a device kind of the kernel, with the kinds (any one suffices) and what the kernel
    /// lacks then. The internal parent of a macvlan network without a "parent" option is a dummy, or, where the kernel
    /// has none, a veth pair (ParentLinkDriver.CreateParentAsync): so parent-created/-deleted need dummy or veth.</summary>
    private static readonly (Func<string, bool> Points, string[] Kinds, string Why)[] KernelDependentPoints =
    [
        (p => p is FaultPoint.ParentLinkNetworkParentCreated or FaultPoint.ParentLinkNetworkParentDeleted, ["dummy", "veth"], "no dummy link kind and no veth for the stand-in"),
        (p => p == FaultPoint.ParentLinkJoinDeviceCreated, ["macvlan"], "no macvlan link kind"),
        (p => p.StartsWith("overlay.", StringComparison.Ordinal), ["vxlan"], "no vxlan link kind"),
    ];

    /// <summary>Probes, in the test's namespace, each device kind <see cref="KernelDependentPoints"/> names (and 802.1Q
    /// vlan, printed only), by making a link of that kind and deleting it again; returns the points that no kind of this
    /// kernel reaches, with the reason.</summary>
    private static async Task<Dictionary<string, string>> PointsNotReachableOnThisKernelAsync(string hostNamespacePath)
    {
        var has = new Dictionary<string, bool>(StringComparer.Ordinal);
        foreach (var kind in KernelDependentPoints.SelectMany(k => k.Kinds).Append("vlan").Distinct(StringComparer.Ordinal))
        {
            has[kind] = await ProbeLinkKindAsync(hostNamespacePath, kind);
        }

        TestContext.Out.WriteLine($"link kinds of this kernel: {string.Join(", ", has.Select(k => (k.Value ? "" : "no ") + k.Key))}; a macvlan network's internal parent is {(has["dummy"] ? "a dummy" : "the veth stand-in")}");
        var unreachable = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var point in FaultPoint.All)
        {
            foreach (var (points, kinds, why) in KernelDependentPoints)
            {
                if (points(point) && !kinds.Any(k => has[k]))
                {
                    unreachable[point] = why;
                }
            }
        }

        return unreachable;
    }

    /// <summary>Whether the kernel makes a link of <paramref name="kind"/> (the probe's link, fkprobe0, is deleted at
    /// once; macvlan and vlan sit on the test's own parent veth).</summary>
    private static async Task<bool> ProbeLinkKindAsync(string hostNamespacePath, string kind)
    {
        const string Probe = "fkprobe0";
        string[] add = kind switch
        {
            "veth" => ["link", "add", Probe, "type", "veth", "peer", "name", "fkprobe1"],
            "macvlan" => ["link", "add", "link", MacvlanParent, "name", Probe, "type", "macvlan", "mode", "bridge"],
            "vlan" => ["link", "add", "link", MacvlanParent, "name", Probe, "type", "vlan", "id", "9"],
            "vxlan" => ["link", "add", Probe, "type", "vxlan", "id", "4242", "dstport", "4789"],
            _ => ["link", "add", Probe, "type", kind],
        };
        var result = await IpTool.TryRunAsync(hostNamespacePath, add);
        if (result.ExitCode != 0)
        {
            return false;
        }

        await IpTool.RunAsync(hostNamespacePath, "link", "del", Probe);
        return true;
    }
}
