namespace CnmSharp.Worker;

/// <summary>The networks the worker keeps in place, and how often it checks.</summary>
internal sealed class DesiredNetworksOptions
{
    /// <summary>Seconds between two checks.</summary>
    public int ReconcileIntervalSeconds { get; set; } = 30;

    /// <summary>The networks.</summary>
    public IList<DesiredNetwork> DesiredNetworks { get; } = [];
}

/// <summary>One desired network.</summary>
internal sealed class DesiredNetwork
{
    public string Name { get; set; } = "";

    public string Driver { get; set; } = "bridge";

    public string? Subnet { get; set; }

    public string? Gateway { get; set; }

    public Dictionary<string, string> Options { get; } = new(StringComparer.Ordinal);
}
