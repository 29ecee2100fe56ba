using System.Net;
using System.Text.Json;
using CnmSharp.Diagnostics;
using CnmSharp.Plugins.Protocol;
using Microsoft.Extensions.Logging;

namespace CnmSharp.Plugins;

/// <summary>
/// Finds a plugin by name as Docker does (<c>pkg/plugins/discovery.go</c>): first a unix socket
/// <c>&lt;dir&gt;/N.sock</c> or <c>&lt;dir&gt;/N/N.sock</c> in each socket directory (it must really be a socket), then in
/// each spec directory <c>N.spec</c>, <c>N/N.spec</c>, <c>N.json</c>, <c>N/N.json</c>; the first match wins. Nothing is
/// cached: a plugin that appears later is found by the next lookup.
/// </summary>
public sealed class PluginDiscovery
{
    private readonly PluginOptions _options;
    private readonly ILogger _logger;

    /// <summary>Creates a discovery over the given directories.</summary>
    /// <param name="options">The directories and the insecure-transport rule.</param>
    /// <param name="logger">Where warnings go.</param>
    public PluginDiscovery(PluginOptions options, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(logger);
        options.Validate();
        _options = options;
        _logger = logger;
    }

    /// <summary>True when <paramref name="name"/> can name a plugin: 1 to 255 of <c>[A-Za-z0-9_.-]</c>, starting
    /// with a letter or digit (so it never walks out of the plugin directories).</summary>
    /// <param name="name">The name.</param>
    /// <returns>True when valid.</returns>
    public static bool IsValidName(string? name) =>
        !string.IsNullOrEmpty(name) && name.Length <= 255 && char.IsAsciiLetterOrDigit(name[0])
        && name.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '.' or '-');

    /// <summary>Finds a plugin.</summary>
    /// <param name="name">The plugin's name.</param>
    /// <returns>How to reach it, or null when no socket or discovery file of that name exists.</returns>
    /// <exception cref="CnmInvalidArgumentException">A discovery file exists but is invalid (<see cref="CnmErrorCodes.PluginNotFound"/>
    /// is not used for it: the file is there and wrong), or it names plain HTTP off loopback without
    /// <see cref="PluginOptions.AllowInsecureRemotePlugins"/>.</exception>
    public PluginSpec? Find(string name)
    {
        if (!IsValidName(name))
        {
            return null;
        }

        foreach (var dir in _options.SocketDirectories)
        {
            foreach (var path in new[] { Path.Combine(dir, name + ".sock"), Path.Combine(dir, name, name + ".sock") })
            {
                if (FileKinds.IsSocket(path))
                {
                    return new PluginSpec(name, new Uri("unix://" + path), path);
                }
            }
        }

        foreach (var dir in _options.SpecDirectories)
        {
            foreach (var path in new[] { Path.Combine(dir, name + ".spec"), Path.Combine(dir, name, name + ".spec"), Path.Combine(dir, name + ".json"), Path.Combine(dir, name, name + ".json") })
            {
                if (File.Exists(path))
                {
                    var spec = path.EndsWith(".json", StringComparison.Ordinal) ? ReadJson(name, path) : ReadSpec(name, path);
                    CheckTransport(spec);
                    return spec;
                }
            }
        }

        return null;
    }

    private static PluginSpec ReadSpec(string name, string path)
    {
        string text;
        try
        {
            text = File.ReadAllText(path).Trim();
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw Invalid(name, path, $"cannot be read: {ex.Message}");
        }

        return new PluginSpec(name, ParseAddress(name, path, text, tls: null), path);
    }

    private static PluginSpec ReadJson(string name, string path)
    {
        PluginSpecFile? file;
        try
        {
            using var stream = File.OpenRead(path);
            file = JsonSerializer.Deserialize(stream, PluginJsonContext.Default.PluginSpecFile);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or JsonException)
        {
            throw Invalid(name, path, $"cannot be read: {ex.Message}");
        }

        if (file?.Addr is not { Length: > 0 } addr)
        {
            throw Invalid(name, path, "it gives no \"Addr\"");
        }

        PluginTls? tls = null;
        if (file.TlsConfig is { } t)
        {
            // Docker's rule: a TLS configuration without a CA file does not verify the server.
            tls = new PluginTls(t.InsecureSkipVerify || string.IsNullOrEmpty(t.CAFile), NullIfEmpty(t.CAFile), NullIfEmpty(t.CertFile), NullIfEmpty(t.KeyFile));
        }

        return new PluginSpec(name, ParseAddress(name, path, addr.Trim(), tls), path, tls);
    }

    private static string? NullIfEmpty(string? s) => string.IsNullOrEmpty(s) ? null : s;

    private static Uri ParseAddress(string name, string path, string text, PluginTls? tls)
    {
        if (!Uri.TryCreate(text, UriKind.Absolute, out var uri) || string.IsNullOrEmpty(uri.Scheme))
        {
            throw Invalid(name, path, $"Unknown protocol: \"{text}\" is not a unix://, tcp://, http:// or https:// URL");
        }

        switch (uri.Scheme)
        {
            case "unix":
                if (string.IsNullOrEmpty(uri.AbsolutePath) || uri.AbsolutePath == "/")
                {
                    throw Invalid(name, path, $"\"{text}\" names no socket path");
                }

                return uri;
            case "tcp" or "http" or "https":
                if (string.IsNullOrEmpty(uri.Host) || uri.IsDefaultPort && uri.Scheme == "tcp")
                {
                    throw Invalid(name, path, $"\"{text}\" names no host and port");
                }

                var scheme = uri.Scheme == "https" ? "https" : "http";
                return new UriBuilder(uri) { Scheme = scheme, Path = "/", Port = uri.Port }.Uri;
            default:
                throw Invalid(name, path, $"Unknown protocol \"{uri.Scheme}\"");
        }
    }

    private void CheckTransport(PluginSpec spec)
    {
        if (spec.Address.Scheme != "http" || IsLoopback(spec.Address.Host))
        {
            if (spec.Tls is { InsecureSkipVerify: true } && spec.Address.Scheme == "https")
            {
                PluginLog.InsecurePlugin(_logger, spec.Name, spec.Address + " (TLS without certificate verification)");
            }

            return;
        }

        if (!_options.AllowInsecureRemotePlugins)
        {
            throw new CnmInvalidArgumentException(CnmErrorCodes.InvalidOption, $"plugin \"{spec.Name}\"", $"{spec.Source} names plain HTTP at {spec.Address}, which is not a loopback address; use https, or set PluginOptions.AllowInsecureRemotePlugins");
        }

        PluginLog.InsecurePlugin(_logger, spec.Name, spec.Address.ToString());
    }

    private static bool IsLoopback(string host) =>
        string.Equals(host, "localhost", StringComparison.OrdinalIgnoreCase)
        || (IPAddress.TryParse(host.Trim('[', ']'), out var address) && IPAddress.IsLoopback(address));

    private static CnmInvalidArgumentException Invalid(string name, string path, string reason) =>
        new(CnmErrorCodes.InvalidOption, $"plugin \"{name}\"", $"discovery file {path}: {reason}");
}
