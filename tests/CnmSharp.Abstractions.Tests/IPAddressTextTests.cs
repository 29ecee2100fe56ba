using System.Net;
using CnmSharp.Drivers;

namespace CnmSharp.Abstractions.Tests;

public class IPAddressTextTests
{
    [TestCase("1.2.3.4")]
    [TestCase("0.0.0.0")]
    [TestCase("255.255.255.255")]
    [TestCase("10.0.0.1")]
    [TestCase("::")]
    [TestCase("::1")]
    [TestCase("fe80::1")]
    [TestCase("2001:db8::")]
    [TestCase("2001:DB8:0:0:0:0:0:1")]
    [TestCase("::ffff:10.0.0.1")]
    [TestCase("64:ff9b::192.0.2.33")]
    public void Accepts_standard_text(string text)
    {
        Assert.That(IPAddressText.TryParseStrict(text, out var address), Is.True);
        Assert.That(address, Is.EqualTo(IPAddress.Parse(text)));
    }

    [TestCase("1.2.3", Description = "inet_aton reads it as 1.2.0.3")]
    [TestCase("1")]
    [TestCase("1.2")]
    [TestCase("0x7f.1")]
    [TestCase("0x7f.0.0.1")]
    [TestCase("010.0.0.1", Description = "octal-looking")]
    [TestCase("10.0.0.01")]
    [TestCase("00.0.0.0")]
    [TestCase("256.0.0.1")]
    [TestCase("1.2.3.4.5")]
    [TestCase("1..3.4")]
    [TestCase("1.2.3.4 ")]
    [TestCase(" 1.2.3.4")]
    [TestCase("+1.2.3.4")]
    [TestCase("fe80::1%1", Description = "scope id")]
    [TestCase("fe80::1%eth0")]
    [TestCase("[::1]")]
    [TestCase("::1/128")]
    [TestCase("1:::2")]
    [TestCase("1::2::3")]
    [TestCase("12345::1")]
    [TestCase("::ffff:1.2.3")]
    [TestCase("::ffff:010.0.0.1")]
    [TestCase("g::1")]
    [TestCase("")]
    [TestCase("localhost")]
    public void Refuses_legacy_and_scoped_forms(string text)
    {
        Assert.That(IPAddressText.TryParseStrict(text, out var address), Is.False);
        Assert.That(address, Is.Null);
        var ex = Assert.Throws<CnmInvalidArgumentException>(() => IPAddressText.ParseStrict(text, "option x"));
        Assert.That(ex!.Code, Is.EqualTo(CnmErrorCodes.InvalidAddress));
        Assert.That(ex.Subject, Does.StartWith("option x"));
    }

    [Test]
    public void A_scope_id_is_accepted_only_when_the_caller_allows_it()
    {
        Assert.That(IPAddressText.TryParseStrict("fe80::1%1", out var scoped, allowScopeId: true), Is.True);
        Assert.Multiple(() =>
        {
            Assert.That(scoped!.ScopeId, Is.EqualTo(1));
            Assert.That(IPAddressText.HasScopeId(scoped), Is.True);
            Assert.That(IPAddressText.TryParseStrict("10.0.0.1%1", out _, allowScopeId: true), Is.False, "no scope on IPv4");
            Assert.That(IPAddressText.TryParseStrict("fe80::1%", out _, allowScopeId: true), Is.False, "empty zone");
            Assert.That(IPAddressText.HasScopeId(IPAddress.Parse("fe80::1")), Is.False);
        });
    }

    [Test]
    public void Null_is_not_an_address()
    {
        Assert.That(IPAddressText.TryParseStrict((string?)null, out _), Is.False);
        Assert.Throws<CnmInvalidArgumentException>(() => IPAddressText.ParseStrict(null));
    }

    [Test]
    public void A_control_character_is_escaped_in_the_error()
    {
        var ex = Assert.Throws<CnmInvalidArgumentException>(() => IPAddressText.ParseStrict("1.2.3.4\n"));
        Assert.That(ex!.Message, Does.Not.Contain("\n").And.Contain("\\x0a"));
    }

    [TestCase("1.2.3/24")]
    [TestCase("010.0.0.0/8")]
    [TestCase("10.0.0.0/08")]
    [TestCase("10.0.0.0/0008")]
    [TestCase("0x0a.0.0.0/8")]
    [TestCase("fe80::%1/64")]
    public void Cidr_parsing_is_strict_too(string text)
    {
        Assert.That(CidrAddress.TryParse(text, out _), Is.False);
        Assert.That(IPNetworks.TryParse(text, allowHostBits: true, out _), Is.False);
    }

    [Test]
    public void A_port_map_round_trips()
    {
        PortBinding[] bindings =
        [
            new(TransportProtocol.Tcp, 80, IPAddress.Any, 32768),
            new(TransportProtocol.Udp, 53, IPAddress.Parse("::1"), 5353, 5360),
        ];

        var text = PortMap.Format(bindings);

        Assert.That(PortMap.TryParse(text, out var parsed), Is.True);
        Assert.That(parsed, Is.EqualTo(bindings));
        Assert.That(text, Does.Contain("\"hostPort\":32768"));
    }

    [TestCase("")]
    [TestCase("{}")]
    [TestCase("[{\"protocol\":6,\"containerPort\":80,\"hostIP\":\"1.2.3\",\"hostPort\":1}]")]
    [TestCase("[{\"protocol\":99,\"containerPort\":80,\"hostIP\":\"0.0.0.0\",\"hostPort\":1}]")]
    [TestCase("[{\"protocol\":6,\"containerPort\":70000,\"hostIP\":\"0.0.0.0\"}]")]
    [TestCase("not json")]
    public void A_bad_port_map_does_not_parse(string text) =>
        Assert.That(PortMap.TryParse(text, out _), Is.False);
}
