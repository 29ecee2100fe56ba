using System.Net;
using CnmSharp.Core;
using CnmSharp.Core.Persistence;
using CnmSharp.Drivers;
using Moq;

namespace CnmSharp.Tests.Core;

/// <summary>Every value that reaches a file, a kernel name or the store is checked when the call is made: an invalid
/// one is refused with <see cref="CnmInvalidArgumentException"/> and nothing is written.</summary>
public sealed class InputValidationTests : ControllerTestBase
{
    private NetworkController _c = null!;

    [SetUp]
    public async Task StartController() => _c = await F.StartAsync();

    private static readonly IPAddress Any4 = IPAddress.Parse("10.0.0.5");

    private static IEnumerable<TestCaseData> InvalidSandboxes()
    {
        static TestCaseData Case(string name, SandboxCreateOptions options, string code, string containerId = "c1") =>
            new TestCaseData(containerId, options, code).SetArgDisplayNames(name);

        yield return Case("container id empty", new(), CnmErrorCodes.InvalidId, "");
        yield return Case("container id blank", new(), CnmErrorCodes.InvalidId, "   ");
        yield return Case("container id with slash", new(), CnmErrorCodes.InvalidId, "a/b");
        yield return Case("container id dot-dot", new(), CnmErrorCodes.InvalidId, "../x");
        yield return Case("container id newline", new(), CnmErrorCodes.InvalidId, "abc\n");
        yield return Case("container id hash", new(), CnmErrorCodes.InvalidId, "a#b");
        yield return Case("container id 256", new(), CnmErrorCodes.InvalidId, new string('a', 256));
        yield return Case("hostname empty", new() { Hostname = "" }, CnmErrorCodes.InvalidName);
        yield return Case("hostname blank", new() { Hostname = "  " }, CnmErrorCodes.InvalidName);
        yield return Case("hostname hash", new() { Hostname = "web#1" }, CnmErrorCodes.InvalidName);
        yield return Case("hostname newline", new() { Hostname = "web\n10.0.0.9 evil" }, CnmErrorCodes.InvalidName);
        yield return Case("hostname trailing newline", new() { Hostname = "web\n" }, CnmErrorCodes.InvalidName);
        yield return Case("hostname tab", new() { Hostname = "web\t1" }, CnmErrorCodes.InvalidName);
        yield return Case("hostname underscore", new() { Hostname = "web_1" }, CnmErrorCodes.InvalidName);
        yield return Case("hostname leading hyphen", new() { Hostname = "-web" }, CnmErrorCodes.InvalidName);
        yield return Case("hostname empty label", new() { Hostname = "a..b" }, CnmErrorCodes.InvalidName);
        yield return Case("hostname 65", new() { Hostname = new string('a', 60) + ".bcde" }, CnmErrorCodes.InvalidName);
        yield return Case("hostname label 64", new() { Hostname = new string('a', 64) }, CnmErrorCodes.InvalidName);
        yield return Case("domain space", new() { DomainName = "example com" }, CnmErrorCodes.InvalidName);
        yield return Case("domain newline", new() { DomainName = "example.com\n" }, CnmErrorCodes.InvalidName);
        yield return Case("domain empty", new() { DomainName = "" }, CnmErrorCodes.InvalidName);
        yield return Case("domain trailing hyphen", new() { DomainName = "example-.com" }, CnmErrorCodes.InvalidName);
        yield return Case("dns server short", new() { DnsServers = ["1.2.3"] }, CnmErrorCodes.InvalidAddress);
        yield return Case("dns server line", new() { DnsServers = ["8.8.8.8\nnameserver 10.6.6.6"] }, CnmErrorCodes.InvalidAddress);
        yield return Case("dns server zone", new() { DnsServers = ["fe80::1%eth0"] }, CnmErrorCodes.InvalidAddress);
        yield return Case("dns server name", new() { DnsServers = ["dns.google"] }, CnmErrorCodes.InvalidAddress);
        yield return Case("dns search space", new() { DnsSearch = ["a.example b.example"] }, CnmErrorCodes.InvalidOption);
        yield return Case("dns search hash", new() { DnsSearch = ["#"] }, CnmErrorCodes.InvalidOption);
        yield return Case("dns search empty", new() { DnsSearch = [""] }, CnmErrorCodes.InvalidOption);
        yield return Case("dns option space", new() { DnsOptions = ["ndots:1 rotate"] }, CnmErrorCodes.InvalidOption);
        yield return Case("dns option newline", new() { DnsOptions = ["rotate\nnameserver 10.6.6.6"] }, CnmErrorCodes.InvalidOption);
        yield return Case("dns option empty", new() { DnsOptions = [""] }, CnmErrorCodes.InvalidOption);
        yield return Case("dns option semicolon", new() { DnsOptions = ["ndots:1;x"] }, CnmErrorCodes.InvalidOption);
        yield return Case("extra host space", new() { ExtraHosts = [new HostEntry("a b", Any4)] }, CnmErrorCodes.InvalidName);
        yield return Case("extra host hash", new() { ExtraHosts = [new HostEntry("db#", Any4)] }, CnmErrorCodes.InvalidName);
        yield return Case("extra host newline", new() { ExtraHosts = [new HostEntry("db\n10.6.6.6 evil", Any4)] }, CnmErrorCodes.InvalidName);
        yield return Case("extra host empty", new() { ExtraHosts = [new HostEntry("", Any4)] }, CnmErrorCodes.InvalidName);
        yield return Case("extra host scoped address", new() { ExtraHosts = [new HostEntry("db", IPAddress.Parse("fe80::1%2"))] }, CnmErrorCodes.InvalidAddress);
        yield return Case("extra host null address", new() { ExtraHosts = [new HostEntry("db", null!)] }, CnmErrorCodes.InvalidAddress);
    }

    [TestCaseSource(nameof(InvalidSandboxes))]
    public async Task An_invalid_sandbox_value_is_refused_and_nothing_is_written(string containerId, SandboxCreateOptions options, string code)
    {
        var keysBefore = await F.KeysAsync(CnmSharp.Core.Persistence.CoreStore.Root);

        await ThrowsAsync<CnmInvalidArgumentException>(() => _c.CreateSandboxAsync(containerId, options).AsTask(), code);

        Assert.Multiple(async () =>
        {
            Assert.That(await F.KeysAsync(CoreStore.Root), Is.EqualTo(keysBefore), "no new store key (no sandbox record, no intent)");
            F.Netns.Verify(n => n.CreateNamespaceAsync(It.IsAny<string>(), It.IsAny<CancellationToken>()), Times.Never);
            var files = Path.Combine(F.Directory, "run", "sandboxes");
            Assert.That(Directory.Exists(files) ? Directory.GetFileSystemEntries(files) : [], Is.Empty, "no sandbox directory");
            Assert.That(_c.Sandboxes, Is.Empty);
        });
    }

    [Test]
    public async Task After_a_refused_hostname_the_container_can_be_created_and_a_new_controller_starts()
    {
        // The defect: a hostname with '#' was accepted, the join threw ArgumentException from the hosts file, left its
        // intent, and every later start failed in recovery.
        await ThrowsAsync<CnmInvalidArgumentException>(() => _c.CreateSandboxAsync("c1", new() { Hostname = "bad#name" }).AsTask(), CnmErrorCodes.InvalidName);
        var sandbox = await _c.CreateSandboxAsync("c1", new() { Hostname = "good" });
        var network = await _c.CreateNetworkAsync("net", ControllerFixture.DriverName, Subnet("10.70.0.0/24"));
        var endpoint = await network.CreateEndpointAsync("ep");
        await endpoint.JoinAsync(sandbox);

        var restarted = await F.StartAsync();

        Assert.That(restarted.FindSandboxByContainerId("c1")?.Hostname, Is.EqualTo("good"));
        Assert.That(await File.ReadAllTextAsync(sandbox.HostsPath), Does.Contain("10.70.0.2\tgood"));
    }

    private static IEnumerable<TestCaseData> ValidSandboxes()
    {
        yield return new TestCaseData("0123456789ab", new SandboxCreateOptions()).SetArgDisplayNames("hex id");
        yield return new TestCaseData("my_container.1-a", new SandboxCreateOptions { Hostname = "web-1", DomainName = "example.com" }).SetArgDisplayNames("name and domain");
        yield return new TestCaseData("c", new SandboxCreateOptions { Hostname = "web.example.org" }).SetArgDisplayNames("dotted hostname");
        yield return new TestCaseData("c", new SandboxCreateOptions { Hostname = new string('a', 63) }).SetArgDisplayNames("63-character label");
        yield return new TestCaseData("c", new SandboxCreateOptions
        {
            DnsServers = ["8.8.8.8", "2001:4860:4860::8888"],
            DnsSearch = ["example.com.", "corp"],
            DnsOptions = ["ndots:2", "rotate", "single-request-reopen", "timeout:1"],
            ExtraHosts = [new HostEntry("db.internal", Any4), new HostEntry("v6host", IPAddress.Parse("fd00::5"))],
        }).SetArgDisplayNames("dns and extra hosts");
        yield return new TestCaseData("c", new SandboxCreateOptions { DnsSearch = ["."] }).SetArgDisplayNames("search dot");
    }

    [TestCaseSource(nameof(ValidSandboxes))]
    public async Task A_valid_sandbox_is_accepted(string containerId, SandboxCreateOptions options)
    {
        var sandbox = await _c.CreateSandboxAsync(containerId, options);

        Assert.That(File.Exists(sandbox.HostsPath), Is.True);
        Assert.That(File.Exists(sandbox.ResolvConfPath), Is.True);
    }

    private static IEnumerable<TestCaseData> InvalidEndpoints()
    {
        yield return new TestCaseData("", new EndpointCreateOptions()).SetArgDisplayNames("empty name");
        yield return new TestCaseData("a b", new EndpointCreateOptions()).SetArgDisplayNames("name with space");
        yield return new TestCaseData("ep\n", new EndpointCreateOptions()).SetArgDisplayNames("name with trailing newline");
        yield return new TestCaseData("ep#1", new EndpointCreateOptions()).SetArgDisplayNames("name with hash");
        yield return new TestCaseData("ep", new EndpointCreateOptions { Aliases = ["web", "x\ny"] }).SetArgDisplayNames("alias with newline");
        yield return new TestCaseData("ep", new EndpointCreateOptions { Aliases = [""] }).SetArgDisplayNames("empty alias");
        yield return new TestCaseData("ep", new EndpointCreateOptions { Aliases = ["a b"] }).SetArgDisplayNames("alias with space");
        yield return new TestCaseData("ep", new EndpointCreateOptions { Aliases = ["#x"] }).SetArgDisplayNames("alias with hash");
    }

    [TestCaseSource(nameof(InvalidEndpoints))]
    public async Task An_invalid_endpoint_name_or_alias_is_refused_and_nothing_is_written(string name, EndpointCreateOptions options)
    {
        var network = await _c.CreateNetworkAsync("net", ControllerFixture.DriverName, Subnet("10.71.0.0/24"));
        var keysBefore = await F.KeysAsync(CoreStore.Root);

        await ThrowsAsync<CnmInvalidArgumentException>(() => network.CreateEndpointAsync(name, options).AsTask(), CnmErrorCodes.InvalidName);

        Assert.That(await F.KeysAsync(CoreStore.Root), Is.EqualTo(keysBefore), "no endpoint record, intent or address");
        F.Driver.Verify(d => d.CreateEndpointAsync(It.IsAny<EndpointCreateRequest>(), It.IsAny<IInterfaceInfo>(), It.IsAny<CancellationToken>()), Times.Never);
        Assert.That(network.Endpoints, Is.Empty);
    }

    [Test]
    public async Task Valid_aliases_are_kept()
    {
        var network = await _c.CreateNetworkAsync("net", ControllerFixture.DriverName, Subnet("10.72.0.0/24"));

        var endpoint = await network.CreateEndpointAsync("ep", new EndpointCreateOptions { Aliases = ["web", "web.prod", "api_v2"] });

        Assert.That(endpoint.Aliases, Is.EqualTo(new[] { "web", "web.prod", "api_v2" }));
    }

    [TestCase("net\n")]
    [TestCase("net work")]
    [TestCase("-net")]
    [TestCase("")]
    public async Task An_invalid_network_name_is_refused_and_nothing_is_written(string name)
    {
        var keysBefore = await F.KeysAsync(CoreStore.Root);

        await ThrowsAsync<CnmInvalidArgumentException>(() => _c.CreateNetworkAsync(name, ControllerFixture.DriverName).AsTask(), CnmErrorCodes.InvalidName);

        Assert.That(await F.KeysAsync(CoreStore.Root), Is.EqualTo(keysBefore));
        F.Driver.Verify(d => d.CreateNetworkAsync(It.IsAny<NetworkCreateRequest>(), It.IsAny<CancellationToken>()), Times.Never);
    }

    [TestCase("id\n")]
    [TestCase("a/b")]
    public async Task An_invalid_explicit_network_id_is_refused(string id)
    {
        await ThrowsAsync<CnmInvalidArgumentException>(() => _c.CreateNetworkAsync("net", ControllerFixture.DriverName, new NetworkCreateOptions { Id = id }).AsTask(), CnmErrorCodes.InvalidId);
    }

    [TestCase("veth0/x", "eth")]
    [TestCase("veth 0", "eth")]
    [TestCase("a-very-long-interface", "eth")]
    [TestCase("..", "eth")]
    [TestCase("veth0", "e:th")]
    [TestCase("veth0", "averylongprefix")]
    public void A_driver_interface_name_that_is_not_a_kernel_name_is_refused(string source, string prefix)
    {
        var join = new JoinInfo(new InterfaceInfo());

        var ex = Assert.Throws<CnmInvalidArgumentException>(() => join.SetInterfaceName(source, prefix));

        Assert.That(ex!.Code, Is.EqualTo(CnmErrorCodes.InvalidName));
        Assert.That(join.SourceName, Is.Null);
    }

    [TestCase("../../etc")]
    [TestCase("ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789")]
    [TestCase("0123")]
    [TestCase("")]
    public void A_stored_sandbox_id_that_is_not_64_lowercase_hex_builds_no_path(string id)
    {
        var ex = Assert.Throws<CnmInternalException>(() => Validation.StoredSandboxId(id));

        Assert.That(ex!.Code, Is.EqualTo(CnmErrorCodes.CorruptRecord));
    }

    [Test]
    public void A_generated_id_is_a_valid_stored_sandbox_id()
    {
        var id = Ids.NewId();

        Assert.That(Validation.StoredSandboxId(id), Is.EqualTo(id));
    }

    [TestCase("relative/state", null, null)]
    [TestCase("/state", "run", null)]
    [TestCase("/state", null, "netns/h1")]
    public async Task Relative_paths_in_the_options_are_refused(string state, string? run, string? hostNamespace)
    {
        var builder = F.NewBuilder().Configure(o =>
        {
            o.StateDirectory = state;
            o.RunDirectory = run ?? "/nonexistent-cnmsharp-run";
            o.HostNamespacePath = hostNamespace;
        });

        await ThrowsAsync<CnmInvalidArgumentException>(() => builder.BuildAsync().AsTask(), CnmErrorCodes.InvalidOption);
        Assert.That(Directory.Exists("/nonexistent-cnmsharp-run"), Is.False);
    }
}
