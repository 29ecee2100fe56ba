using CnmSharp.Core.Persistence;

namespace CnmSharp.Tests.Core;

/// <summary>Control characters (C0, DEL, C1: a terminal escape, a tab, a carriage return) in a network or endpoint name
/// or a container id are refused as invalid arguments, nothing is written, and the error shows them escaped.</summary>
public sealed class ControlCharacterValidationTests : ControllerTestBase
{
    private NetworkController _c = null!;

    [SetUp]
    public async Task StartController() => _c = await F.StartAsync();

    private static IEnumerable<TestCaseData> Names()
    {
        // Display names without the characters themselves: test reporters mangle some of them.
        yield return new TestCaseData("a\u001b[31mred").SetArgDisplayNames("escape");
        yield return new TestCaseData("a\tb").SetArgDisplayNames("tab");
        yield return new TestCaseData("a\rb").SetArgDisplayNames("carriage return");
        yield return new TestCaseData("ab\u007f").SetArgDisplayNames("DEL");
        yield return new TestCaseData("a\u0085b").SetArgDisplayNames("C1 next line");
        yield return new TestCaseData("a\u0000b").SetArgDisplayNames("NUL");
    }

    private static void AssertEscaped(CnmException ex) =>
        Assert.That(ex.Message.Any(char.IsControl), Is.False, "the message holds no raw control character: " + ex.Message);

    [TestCaseSource(nameof(Names))]
    public async Task A_network_name_with_a_control_character_is_refused(string name)
    {
        var keysBefore = await F.KeysAsync(CoreStore.Root);
        var ex = await ThrowsAsync<CnmInvalidArgumentException>(() => _c.CreateNetworkAsync(name, ControllerFixture.DriverName, Subnet("10.73.0.0/24")).AsTask(), CnmErrorCodes.InvalidName);
        AssertEscaped(ex);
        Assert.That(await F.KeysAsync(CoreStore.Root), Is.EqualTo(keysBefore));
    }

    [TestCaseSource(nameof(Names))]
    public async Task An_endpoint_name_with_a_control_character_is_refused(string name)
    {
        var network = await _c.CreateNetworkAsync("net", ControllerFixture.DriverName, Subnet("10.74.0.0/24"));
        var keysBefore = await F.KeysAsync(CoreStore.Root);
        var ex = await ThrowsAsync<CnmInvalidArgumentException>(() => network.CreateEndpointAsync(name).AsTask(), CnmErrorCodes.InvalidName);
        AssertEscaped(ex);
        Assert.That(await F.KeysAsync(CoreStore.Root), Is.EqualTo(keysBefore));
        Assert.That(network.Endpoints, Is.Empty);
    }

    [TestCaseSource(nameof(Names))]
    public async Task A_container_id_with_a_control_character_is_refused(string containerId)
    {
        var keysBefore = await F.KeysAsync(CoreStore.Root);
        var ex = await ThrowsAsync<CnmInvalidArgumentException>(() => _c.CreateSandboxAsync(containerId).AsTask(), CnmErrorCodes.InvalidId);
        AssertEscaped(ex);
        Assert.That(await F.KeysAsync(CoreStore.Root), Is.EqualTo(keysBefore));
        Assert.That(_c.Sandboxes, Is.Empty);
    }
}
