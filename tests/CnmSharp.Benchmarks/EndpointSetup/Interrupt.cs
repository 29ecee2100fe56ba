using System.Runtime.InteropServices;

namespace CnmSharp.Benchmarks.EndpointSetup;

/// <summary>
/// SIGINT/SIGTERM stop the workload at the next container boundary instead of killing the process, so the fixtures'
/// cleanup (delete every namespace made, remove the private run directory) still runs.
/// </summary>
internal static class Interrupt
{
    private static readonly CancellationTokenSource s_source = new();
    private static PosixSignalRegistration? s_int;
    private static PosixSignalRegistration? s_term;

    public static CancellationToken Token => s_source.Token;

    public static void Install()
    {
        s_int ??= PosixSignalRegistration.Create(PosixSignal.SIGINT, Handle);
        s_term ??= PosixSignalRegistration.Create(PosixSignal.SIGTERM, Handle);
    }

    public static void ThrowIfRequested() => s_source.Token.ThrowIfCancellationRequested();

    private static void Handle(PosixSignalContext context)
    {
        context.Cancel = true;
        Console.Error.WriteLine("benchmark: interrupted, cleaning up");
        s_source.Cancel();
    }
}
