using System.Net;
using CnmSharp.Sandboxes.Files;
using CsCheck;

namespace CnmSharp.Tests.Sandboxes;

[TestFixture]
public sealed class ResolvConfPropertyTests
{
    private static readonly Gen<string> s_ipv4 =
        Gen.Int[0, 255].Array[4, 4].Select(b => new IPAddress(b.Select(x => (byte)x).ToArray()).ToString());

    private static readonly Gen<string> s_ipv6 =
        Gen.Int[0, 255].Array[16, 16].Select(b => new IPAddress(b.Select(x => (byte)x).ToArray()).ToString());

    private static readonly Gen<string> s_label =
        Gen.Char["abcdefghijklmnopqrstuvwxyz0123456789-"].Array[1, 12].Select(c => new string(c));

    private static readonly Gen<string> s_domain = s_label.Array[1, 4].Select(l => string.Join('.', l));

    private static readonly Gen<string> s_option = Gen.OneOf(
        Gen.Const("rotate"), Gen.Const("edns0"), Gen.Const("trust-ad"),
        Gen.Int[0, 15].Select(n => "ndots:" + n), Gen.Int[1, 30].Select(n => "timeout:" + n));

    [Test]
    public void Parse_of_Build_round_trips_nameservers_search_and_options()
    {
        Gen.Select(Gen.OneOf(s_ipv4, s_ipv6).Array[0, 6], s_domain.Array[0, 6], s_option.Array[0, 5]).Sample((servers, search, options) =>
        {
            var doc = ResolvConf.Parse(ResolvConf.Build(servers, search, options));

            Assert.That(doc.Nameservers, Is.EqualTo(servers));
            Assert.That(doc.Search, Is.EqualTo(search));
            Assert.That(doc.Options, Is.EqualTo(options));
        });
    }

    [Test]
    public void Generate_never_leaves_a_sandbox_without_a_usable_nameserver()
    {
        var server = Gen.OneOf(s_ipv4, s_ipv6, Gen.Const("127.0.0.1"), Gen.Const("127.0.0.53"), Gen.Const("::1"));
        Gen.Select(server.Array[0, 5], Gen.Bool).Sample((servers, ipv6) =>
        {
            var host = ResolvConf.Parse(string.Concat(servers.Select(s => "nameserver " + s + "\n")));

            var result = ResolvConf.Parse(ResolvConf.Generate(host, [], [], [], ipv6)).Nameservers;

            Assert.That(result, Is.Not.Empty);
            Assert.That(result.Any(ResolvConf.IsLocalhost), Is.False);
            if (!ipv6)
            {
                Assert.That(result.Any(s => s.Contains(':', StringComparison.Ordinal)), Is.False);
            }
        });
    }
}
