namespace CnmSharp.Store.Etcd;

/// <summary>Where the etcd cluster is and how to reach it (see <see cref="EtcdKeyValueStore.ConnectAsync"/>).</summary>
public sealed class EtcdStoreOptions
{
    /// <summary>The client URLs of the cluster's members, for example <c>http://10.0.0.1:2379</c>; calls are spread
    /// over the members that answer, so one member down is no outage. <c>https</c> URLs need every other one to be
    /// <c>https</c> too.</summary>
    public IList<string> Endpoints { get; } = [];

    /// <summary>A prefix put in front of every key, so several applications (or test runs) can share one cluster;
    /// empty by default. Keys and listings are reported without it.</summary>
    public string KeyPrefix { get; set; } = string.Empty;

    /// <summary>A PEM file with the certificate authorities that sign the members' certificates (for <c>https</c>
    /// endpoints; the system's trust store when null).</summary>
    public string? CaCertificatePath { get; set; }

    /// <summary>A PEM client certificate for mutual TLS (with <see cref="ClientKeyPath"/>).</summary>
    public string? ClientCertificatePath { get; set; }

    /// <summary>The PEM private key of <see cref="ClientCertificatePath"/>.</summary>
    public string? ClientKeyPath { get; set; }

    /// <summary>The etcd user, when the cluster has authentication on (with <see cref="Password"/>).</summary>
    public string? Username { get; set; }

    /// <summary>The password of <see cref="Username"/>.</summary>
    public string? Password { get; set; }

    /// <summary>How long one call may take, retries over the members included, before it fails with
    /// <see cref="CnmUnavailableException"/>; also the connect timeout. Five seconds by default.</summary>
    public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Checks the options and returns the endpoint URIs.</summary>
    /// <returns>The endpoints.</returns>
    /// <exception cref="CnmInvalidArgumentException">An option is wrong (<see cref="CnmErrorCodes.InvalidOption"/>).</exception>
    public IReadOnlyList<Uri> Validate()
    {
        if (Endpoints.Count == 0)
        {
            throw Invalid("Endpoints", "at least one etcd endpoint (http://HOST:PORT) is needed");
        }

        List<Uri> uris = [];
        foreach (var endpoint in Endpoints)
        {
            if (!Uri.TryCreate(endpoint, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https") ||
                uri.IsDefaultPort || (uri.AbsolutePath != "/" && uri.AbsolutePath.Length != 0) || !string.IsNullOrEmpty(uri.Query) || !string.IsNullOrEmpty(uri.UserInfo))
            {
                throw Invalid("Endpoints", $"\"{endpoint}\" is not an etcd client URL of the form http://HOST:PORT or https://HOST:PORT");
            }

            uris.Add(uri);
        }

        if (uris.Select(u => u.Scheme).Distinct(StringComparer.Ordinal).Count() != 1)
        {
            throw Invalid("Endpoints", "all endpoints must use the same scheme (http or https)");
        }

        var tls = uris[0].Scheme == "https";
        if ((ClientCertificatePath is null) != (ClientKeyPath is null))
        {
            throw Invalid("ClientCertificatePath", "a client certificate and its key go together");
        }

        if (!tls && (CaCertificatePath is not null || ClientCertificatePath is not null))
        {
            throw Invalid("CaCertificatePath", "TLS files are given but the endpoints are http: use https endpoints");
        }

        foreach (var (name, path) in new[] { ("CaCertificatePath", CaCertificatePath), ("ClientCertificatePath", ClientCertificatePath), ("ClientKeyPath", ClientKeyPath) })
        {
            if (path is not null && !File.Exists(path))
            {
                throw Invalid(name, $"the file \"{path}\" does not exist");
            }
        }

        if (string.IsNullOrEmpty(Username) != string.IsNullOrEmpty(Password))
        {
            throw Invalid("Username", "a user and a password go together");
        }

        if (RequestTimeout <= TimeSpan.Zero || RequestTimeout > TimeSpan.FromMinutes(5))
        {
            throw Invalid("RequestTimeout", "must be positive and at most five minutes");
        }

        if (KeyPrefix.Contains('\0', StringComparison.Ordinal))
        {
            throw Invalid("KeyPrefix", "must not contain NUL");
        }

        return uris;
    }

    private static CnmInvalidArgumentException Invalid(string option, string reason) =>
        new(CnmErrorCodes.InvalidOption, $"etcd store option {option}", reason);
}
