using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using CnmSharp.Drivers;
using CnmSharp.Store;
using Microsoft.Extensions.Logging.Abstractions;
using Moq;

namespace CnmSharp.Plugins.Hosting.Tests;

/// <summary>
/// The server around the handler, without root: the socket's life (stale one replaced, live one refused, removed on
/// stop), TCP with the discovery file (http on loopback only; https with a certificate writes <c>.json</c>), all in a
/// temporary directory and on loopback.
/// </summary>
public sealed class PluginHostTests
{
    private string _dir = null!;
    private InMemoryKeyValueStore _store = null!;
    private PluginRequestHandler _handler = null!;

    [SetUp]
    public void SetUp()
    {
        _dir = Directory.CreateTempSubdirectory("cnmhost-").FullName;
        _store = new InMemoryKeyValueStore();
        var driver = new Mock<INetworkDriver>();
        driver.SetupGet(d => d.Capability).Returns(DriverCapability.LocalScope);
        _handler = new PluginRequestHandler(driver.Object, null, _store, NullLogger.Instance);
    }

    [TearDown]
    public async Task TearDown()
    {
        await _store.DisposeAsync();
        Directory.Delete(_dir, recursive: true);
    }

    private Task<PluginHost> StartAsync(PluginHostOptions options) => PluginHost.StartAsync(options, _handler, NullLoggerFactory.Instance);

    private static HttpClient UnixClient(string path) => new(new SocketsHttpHandler
    {
        ConnectCallback = async (_, ct) =>
        {
            var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(path), ct);
            return new NetworkStream(socket, ownsSocket: true);
        },
    });

    [Test]
    public async Task A_stale_socket_is_replaced_a_live_one_refused_and_the_socket_goes_on_stop()
    {
        var path = Path.Combine(_dir, "p.sock");
        using (var stale = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
        {
            stale.Bind(new UnixDomainSocketEndPoint(path)); // bound, never listening: what a killed host leaves
        }

        var host = await StartAsync(new PluginHostOptions { Name = "p", SocketPath = path });
        try
        {
            using var client = UnixClient(path);
            using var reply = await client.PostAsync("http://plugin/NetworkDriver.GetCapabilities", null);
            Assert.That((int)reply.StatusCode, Is.EqualTo(200));
            Assert.That(await reply.Content.ReadAsStringAsync(), Is.EqualTo("{\"Scope\":\"local\",\"ConnectivityScope\":\"local\"}"));

            using var get = await client.GetAsync("http://plugin/Plugin.Activate");
            Assert.That((int)get.StatusCode, Is.EqualTo(405), "only POST");

            var ex = await Assert.ThrowsAsync<CnmConflictException>(async () => await StartAsync(new PluginHostOptions { Name = "p", SocketPath = path }));
            Assert.That(ex!.Code, Is.EqualTo(CnmErrorCodes.ActiveRegistration));
            Assert.That(Directory.GetFileSystemEntries(_dir), Is.EqualTo(new[] { path }), "no hidden bind name left");
        }
        finally
        {
            await host.DisposeAsync();
        }

        Assert.That(File.Exists(path), Is.False);
    }

    [Test]
    public async Task A_file_that_is_not_a_socket_is_never_replaced()
    {
        var path = Path.Combine(_dir, "p.sock");
        File.WriteAllText(path, "mine");
        var ex = await Assert.ThrowsAsync<CnmInvalidArgumentException>(async () => await StartAsync(new PluginHostOptions { Name = "p", SocketPath = path }));
        Assert.That(ex!.Code, Is.EqualTo(CnmErrorCodes.InvalidOption));
        Assert.That(File.ReadAllText(path), Is.EqualTo("mine"));
    }

    [TestCase("http://10.1.2.3:23750", TestName = "Plain http off loopback is refused")]
    [TestCase("https://127.0.0.1:0", TestName = "https without a certificate is refused")]
    [TestCase("tcp://127.0.0.1:23750", TestName = "Another scheme is refused")]
    [TestCase("http://127.0.0.1:0/path", TestName = "A URL with a path is refused")]
    public async Task Bad_listen_urls_are_refused_before_anything_is_written(string url)
    {
        var ex = await Assert.ThrowsAsync<CnmInvalidArgumentException>(async () => await StartAsync(new PluginHostOptions { Name = "p", ListenUrl = new Uri(url), SpecDirectory = Path.Combine(_dir, "spec") }));
        Assert.That(ex!.Code, Is.EqualTo(CnmErrorCodes.InvalidOption));
        Assert.That(Directory.Exists(Path.Combine(_dir, "spec")), Is.False);
    }

    [Test]
    public async Task A_bad_name_is_refused()
    {
        var ex = await Assert.ThrowsAsync<CnmInvalidArgumentException>(async () => await StartAsync(new PluginHostOptions { Name = "../x", SocketPath = Path.Combine(_dir, "x.sock") }));
        Assert.That(ex!.Code, Is.EqualTo(CnmErrorCodes.InvalidOption));
    }

    [Test]
    public async Task Https_writes_a_json_discovery_file_with_the_CA_and_removes_it_on_stop()
    {
        using var key = RSA.Create(2048);
        var request = new CertificateRequest("CN=127.0.0.1", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var san = new SubjectAlternativeNameBuilder();
        san.AddIpAddress(IPAddress.Loopback);
        request.CertificateExtensions.Add(san.Build());
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddHours(1));
        var certFile = Path.Combine(_dir, "cert.pem");
        var keyFile = Path.Combine(_dir, "key.pem");
        File.WriteAllText(certFile, certificate.ExportCertificatePem());
        File.WriteAllText(keyFile, key.ExportPkcs8PrivateKeyPem());
        var specDir = Path.Combine(_dir, "spec");

        var host = await StartAsync(new PluginHostOptions { Name = "tlsplug", ListenUrl = new Uri("https://127.0.0.1:0"), SpecDirectory = specDir, CertificateFile = certFile, KeyFile = keyFile, CAFile = certFile });
        var json = Path.Combine(specDir, "tlsplug.json");
        try
        {
            Assert.That(host.DiscoveryFile, Is.EqualTo(json));
            using var doc = JsonDocument.Parse(File.ReadAllText(json));
            var root = doc.RootElement;
            Assert.Multiple(() =>
            {
                Assert.That(root.GetProperty("Name").GetString(), Is.EqualTo("tlsplug"));
                Assert.That(root.GetProperty("Addr").GetString(), Is.EqualTo($"https://127.0.0.1:{host.Address!.Port}"));
                Assert.That(root.GetProperty("TLSConfig").GetProperty("CAFile").GetString(), Is.EqualTo(certFile));
                Assert.That(root.GetProperty("TLSConfig").GetProperty("InsecureSkipVerify").GetBoolean(), Is.False);
            });

            // A client that trusts exactly that certificate gets an answer.
            using var handler = new HttpClientHandler { ServerCertificateCustomValidationCallback = (_, cert, _, _) => cert is not null && cert.Thumbprint == certificate.Thumbprint };
            using var client = new HttpClient(handler);
            using var reply = await client.PostAsync(root.GetProperty("Addr").GetString() + "/Plugin.Activate", null);
            Assert.That(await reply.Content.ReadAsStringAsync(), Is.EqualTo("{\"Implements\":[\"NetworkDriver\"]}"));
        }
        finally
        {
            await host.DisposeAsync();
        }

        Assert.That(File.Exists(json), Is.False, "removed on stop");
    }
}
