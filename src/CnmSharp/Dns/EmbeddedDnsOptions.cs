namespace CnmSharp;

/// <summary>Who serves the embedded DNS (<c>127.0.0.11</c>) of the sandboxes.</summary>
public enum EmbeddedDnsMode
{
    /// <summary>The controller serves it in its own process while it runs (the default).</summary>
    InProcess,

    /// <summary>The controller writes each sandbox's resolv.conf for the embedded DNS but serves nothing: another
    /// process serves the state (<see cref="NetworkController.ServeDnsAsync(CancellationToken)"/>), as the <c>cnm</c> command line does
    /// with <c>cnm dns serve</c>.</summary>
    External,

    /// <summary>No embedded DNS: resolv.conf lists the upstream servers themselves.</summary>
    Disabled,
}

/// <summary>The embedded DNS server's settings (<see cref="CnmOptions.Dns"/>).</summary>
public sealed class EmbeddedDnsOptions
{
    /// <summary>Who serves it. Default <see cref="EmbeddedDnsMode.InProcess"/>.</summary>
    public EmbeddedDnsMode Mode { get; set; } = EmbeddedDnsMode.InProcess;

    /// <summary>How long to wait for each upstream server before trying the next; when all three (at most) are silent
    /// the client gets SERVFAIL. Default 4 s (libnetwork's).</summary>
    public TimeSpan UpstreamTimeout { get; set; } = TimeSpan.FromSeconds(4);

    /// <summary>Forwarded queries in flight per sandbox; beyond it a query gets REFUSED. Default 1024 (libnetwork's).</summary>
    public int MaxConcurrentQueries { get; set; } = 1024;
}
