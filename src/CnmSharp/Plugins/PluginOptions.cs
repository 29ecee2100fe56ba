namespace CnmSharp.Plugins;

/// <summary>
/// How a controller finds and calls Docker network and IPAM plugins (<see cref="CnmOptions.Plugins"/>). A network or IPAM
/// driver name that no registered driver has is looked up as a plugin when it is needed (network create, and the
/// restore of a network at start), as Docker's plugin getter does.
/// </summary>
public sealed class PluginOptions
{
    /// <summary>Look unknown driver names up as plugins. Default true.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>Where plugins' unix sockets are (<c>N.sock</c>, <c>N/N.sock</c>), searched first, in order. Default
    /// <c>/run/docker/plugins</c>. Absolute paths.</summary>
    public IList<string> SocketDirectories { get; set; } = ["/run/docker/plugins"];

    /// <summary>Where <c>.spec</c> and <c>.json</c> discovery files are (<c>N.spec</c>, <c>N/N.spec</c>, <c>N.json</c>,
    /// <c>N/N.json</c>), searched after the sockets, in order. Default <c>/etc/docker/plugins</c>, then
    /// <c>/usr/lib/docker/plugins</c>. Absolute paths.</summary>
    public IList<string> SpecDirectories { get; set; } = ["/etc/docker/plugins", "/usr/lib/docker/plugins"];

    /// <summary>Accept a plugin reached over plain HTTP (<c>http://</c> or <c>tcp://</c>) at an address that is not a
    /// loopback address; each such plugin is logged as a warning. Default false: such a plugin is refused (loopback
    /// addresses, as kuryr-libnetwork's <c>http://127.0.0.1:23750</c>, are always accepted).</summary>
    public bool AllowInsecureRemotePlugins { get; set; }

    /// <summary>The waits between attempts when a plugin cannot be reached (activation and connection failures; a
    /// plugin's error reply is not retried). Default 1, 2, 4 and 8 seconds, Docker's back-off of about 15 s. Empty:
    /// one attempt. A plugin with no discovery file or socket fails at once, whatever this says.</summary>
    public IList<TimeSpan> RetryDelays { get; set; } = [TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(4), TimeSpan.FromSeconds(8)];

    /// <summary>How long one call may take before it is abandoned (Docker's plugin client uses 30 s). Default 30 s.</summary>
    public TimeSpan CallTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Checks the options; throws <see cref="CnmInvalidArgumentException"/> (<see cref="CnmErrorCodes.InvalidOption"/>).</summary>
    internal void Validate()
    {
        foreach (var dir in SocketDirectories.Concat(SpecDirectories))
        {
            if (string.IsNullOrEmpty(dir) || !Path.IsPathFullyQualified(dir))
            {
                throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidOption, "plugin options", $"plugin directory \"{dir}\" must be an absolute path");
            }
        }

        if (RetryDelays.Any(d => d < TimeSpan.Zero || d > TimeSpan.FromHours(1)))
        {
            throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidOption, "plugin options", "retry delays must be between 0 and 1 hour");
        }

        if (CallTimeout <= TimeSpan.Zero || CallTimeout > TimeSpan.FromHours(1))
        {
            throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidOption, "plugin options", "the call timeout must be more than 0 and at most 1 hour");
        }
    }
}
