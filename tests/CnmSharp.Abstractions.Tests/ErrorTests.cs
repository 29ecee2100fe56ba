namespace CnmSharp.Abstractions.Tests;

public class ErrorTests
{
    private static IEnumerable<TestCaseData> Kinds()
    {
        yield return new TestCaseData(new CnmNotFoundException("C", "network \"a\"", "gone"), CnmErrorKind.NotFound);
        yield return new TestCaseData(new CnmInvalidArgumentException("C", "network \"a\"", "gone"), CnmErrorKind.InvalidArgument);
        yield return new TestCaseData(new CnmConflictException("C", "network \"a\"", "gone"), CnmErrorKind.Conflict);
        yield return new TestCaseData(new CnmUnavailableException("C", "network \"a\"", "gone"), CnmErrorKind.Unavailable);
        yield return new TestCaseData(new CnmNotImplementedException("C", "network \"a\"", "gone"), CnmErrorKind.NotImplemented);
        yield return new TestCaseData(new CnmInternalException("C", "network \"a\"", "gone"), CnmErrorKind.Internal);
    }

    [TestCaseSource(nameof(Kinds))]
    public void Each_type_reports_its_kind_code_subject_and_reason(CnmException error, CnmErrorKind kind)
    {
        Assert.Multiple(() =>
        {
            Assert.That(error.Kind, Is.EqualTo(kind));
            Assert.That(error.Code, Is.EqualTo("C"));
            Assert.That(error.Subject, Is.EqualTo("network \"a\""));
            Assert.That(error.Reason, Is.EqualTo("gone"));
            Assert.That(error.Message, Is.EqualTo("network \"a\": gone"));
        });
    }

    [Test]
    public void An_empty_subject_leaves_only_the_reason_and_the_cause_is_kept()
    {
        var cause = new IOException("disk");
        var error = new CnmInternalException(CnmErrorCodes.KernelError, "", "kernel said no", cause);

        Assert.Multiple(() =>
        {
            Assert.That(error.Message, Is.EqualTo("kernel said no"));
            Assert.That(error.InnerException, Is.SameAs(cause));
        });
    }
}

public class NetLabelsTests
{
    [TestCase("a=b", "a", "b")]
    [TestCase("a=b=c", "a", "b=c")]
    [TestCase(" key = value ", "key", "value")]
    [TestCase("flag", "flag", "")]
    [TestCase("k=", "k", "")]
    public void Split_at_the_first_equals_sign(string text, string key, string value) =>
        Assert.That(NetLabels.Split(text), Is.EqualTo((key, value)));

    [Test]
    public void Well_known_keys_are_spelled_as_docker_spells_them()
    {
        Assert.Multiple(() =>
        {
            Assert.That(NetLabels.Generic, Is.EqualTo("com.docker.network.generic"));
            Assert.That(NetLabels.RequestAddressTypeGateway, Is.EqualTo("com.docker.network.gateway"));
            Assert.That(NetLabels.IpamSerial, Is.EqualTo("com.docker.network.ipam.serial"));
            Assert.That(NetLabels.DriverMtu, Is.EqualTo("com.docker.network.driver.mtu"));
            Assert.That(NetLabels.PortMap, Is.EqualTo("com.docker.network.portmap"));
        });
    }
}
