namespace CnmSharp.Diagnostics;

/// <summary>
/// An opt-in safety net against changing the process's own network namespace by accident. When the AppContext switch
/// <c>CnmSharp.RequireExplicitHostNamespace</c> is on (the test projects turn it on in their runtimeconfig), every
/// component that would change a host namespace's links, addresses, sysctls or firewall refuses to work without an
/// explicit host namespace path (<see cref="CnmOptions.HostNamespacePath"/>) instead of falling back to the process's.
/// </summary>
internal static class HostNamespaceGuard
{
    /// <summary>The AppContext switch.</summary>
    public const string SwitchName = "CnmSharp.RequireExplicitHostNamespace";

    /// <summary>Throws when the switch is on and <paramref name="hostNamespacePath"/> is null.</summary>
    /// <param name="hostNamespacePath">The host namespace the component would change, or null for the process's own.</param>
    /// <param name="component">What would change it (for the message).</param>
    /// <exception cref="CnmInvalidArgumentException">The process's own namespace is forbidden here.</exception>
    public static void Check(string? hostNamespacePath, string component)
    {
        if (hostNamespacePath is null && AppContext.TryGetSwitch(SwitchName, out var required) && required)
        {
            throw new CnmInvalidArgumentException(
                CnmErrorCodes.InvalidOption,
                component,
                $"would change the process's own network namespace, which the AppContext switch {SwitchName} forbids; set CnmOptions.HostNamespacePath");
        }
    }
}
