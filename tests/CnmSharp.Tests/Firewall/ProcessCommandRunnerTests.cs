using CnmSharp.Firewall.Internal;

namespace CnmSharp.Tests.Firewall;

public class ProcessCommandRunnerTests
{
    [Test]
    public async Task A_program_that_ignores_its_input_reports_its_exit_code()
    {
        var input = new string('x', 1 << 20);
        var result = await ProcessCommandRunner.Instance.RunAsync("sh", ["-c", "echo oops >&2; exit 3"], input, CancellationToken.None);
        Assert.That(result.ExitCode, Is.EqualTo(3));
        Assert.That(result.StandardError.Trim(), Is.EqualTo("oops"));
    }

    [Test]
    public async Task Input_and_output_are_passed_through()
    {
        var result = await ProcessCommandRunner.Instance.RunAsync("cat", [], "*nat\nCOMMIT\n", CancellationToken.None);
        Assert.That((result.ExitCode, result.StandardOutput), Is.EqualTo((0, "*nat\nCOMMIT\n")));
    }

    [Test]
    public async Task A_missing_program_is_exit_code_127()
    {
        var result = await ProcessCommandRunner.Instance.RunAsync("/nonexistent/cnmfw-tool", [], null, CancellationToken.None);
        Assert.That(result.ExitCode, Is.EqualTo(127));
    }

    [Test]
    public void Namespace_wrapping_uses_nsenter()
    {
        var (file, args) = ProcessCommandRunner.InNamespace("/run/netns/h", "iptables-restore", "--noflush", "--wait");
        Assert.That(file, Is.EqualTo("nsenter"));
        Assert.That(args, Is.EqualTo(new[] { "--net=/run/netns/h", "iptables-restore", "--noflush", "--wait" }));
        Assert.That(ProcessCommandRunner.InNamespace(null, "iptables-save").FileName, Is.EqualTo("iptables-save"));
    }
}
