using CnmSharp.Firewall;
using CnmSharp.Firewall.Iptables;
using CnmSharp.Firewall.Nftables;

namespace CnmSharp.IntegrationTests.Firewall;

/// <summary>What the both-backend firewall fixtures share: the backend a fixture argument names, created for a private
/// host namespace, and the check that the root namespace is left without rules.</summary>
public abstract class FirewallBackendFixture(string backendName)
{
    /// <summary>The fixture argument: <see cref="IptablesFirewallBackend.BackendName"/> or <see cref="NftablesFirewallBackend.BackendName"/>.</summary>
    protected string BackendName => backendName;

    protected bool IsNftables => backendName == NftablesFirewallBackend.BackendName;

    private protected IFirewallBackend CreateBackend(TestNamespace host) => IsNftables
        ? new NftablesFirewallBackend(new NftablesFirewallBackendOptions { HostNamespacePath = host.Path })
        : new IptablesFirewallBackend(host.Path);

    protected static void AssertRootHasNoRules() => Assert.That(Sh.RootRuleCount(), Is.Zero, "the root namespace must still have no rules");
}
