namespace CnmSharp.Diagnostics;

/// <summary>
/// The fault injector of one controller (tests only): every multi-step operation calls <see cref="FaultPointExtensions.Hit"/>
/// with a name from <see cref="FaultPoint"/> between its steps, and the injector's handler decides what happens there
/// (record the name, kill the process, throw). A controller without one (the default) pays one null check per point.
/// There is no global state: a controller gets its injector from <c>NetworkControllerBuilder.UseFaultPoints</c>
/// (internal, visible to the test projects only), and hands it to its drivers through
/// <see cref="Drivers.DriverContext.Services"/>, its firewall backend and its sandbox networking.
/// </summary>
internal sealed class FaultPoints(Action<string> reached)
{
    /// <summary>Called at a fault point: returns to go on, throws to fail the operation there, or ends the process.</summary>
    public void Reach(string name) => reached(name);

    /// <summary>The injector a driver finds in its context's services, or null (the normal case).</summary>
    public static FaultPoints? From(IServiceProvider? services) => services?.GetService(typeof(FaultPoints)) as FaultPoints;
}

/// <summary>Calls a fault point on an injector that is usually null.</summary>
internal static class FaultPointExtensions
{
    /// <summary>Reaches the fault point <paramref name="name"/> when an injector is set; nothing otherwise.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    public static void Hit(this FaultPoints? faults, string name)
    {
        if (faults is not null)
        {
            faults.Reach(name);
        }
    }
}

/// <summary>The services a controller gives its drivers when it has a fault injector: the injector, then the caller's.</summary>
internal sealed class FaultPointServices(FaultPoints faults, IServiceProvider? inner) : IServiceProvider
{
    /// <inheritdoc/>
    public object? GetService(Type serviceType) => serviceType == typeof(FaultPoints) ? faults : inner?.GetService(serviceType);
}
