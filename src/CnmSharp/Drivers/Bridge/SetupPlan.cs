using Microsoft.Extensions.Logging;

namespace CnmSharp.Drivers.Bridge;

/// <summary>
/// An ordered list of small steps, each with its undo (libnetwork's <c>setup_*.go</c> order, with rollback): when a
/// step fails, the steps already done are undone in reverse and the failure is rethrown, so nothing is left behind.
/// </summary>
internal sealed class SetupPlan(string operation, ILogger logger)
{
    private readonly List<Step> _steps = [];

    /// <summary>The step names, in order.</summary>
    public IReadOnlyList<string> StepNames => [.. _steps.Select(s => s.Name)];

    /// <summary>Adds a step.</summary>
    public SetupPlan Add(string name, Func<CancellationToken, ValueTask> run, Func<ValueTask>? undo = null)
    {
        _steps.Add(new Step(name, run, undo));
        return this;
    }

    /// <summary>Runs the steps; on failure undoes the done ones in reverse and rethrows.</summary>
    public async ValueTask RunAsync(CancellationToken cancellationToken)
    {
        var done = new Stack<Step>();
        try
        {
            foreach (var step in _steps)
            {
                cancellationToken.ThrowIfCancellationRequested();
                await step.Run(cancellationToken).ConfigureAwait(false);
                done.Push(step);
            }
        }
        catch (Exception failure)
        {
            BridgeLog.StepFailed(logger, failure, operation, _steps[done.Count].Name);
            while (done.TryPop(out var step))
            {
                if (step.Undo is null)
                {
                    continue;
                }

                try
                {
                    await step.Undo().ConfigureAwait(false);
                }
                catch (Exception ex)
                {
                    BridgeLog.UndoFailed(logger, ex, operation, step.Name);
                }
            }

            throw;
        }
    }

    private sealed record Step(string Name, Func<CancellationToken, ValueTask> Run, Func<ValueTask>? Undo);
}
