using System.Diagnostics.Metrics;
using CnmSharp.Drivers;
using CnmSharp.Ipam;
using CnmSharp.Sandboxes;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace CnmSharp;

/// <summary>
/// Starts the <see cref="NetworkController"/> registered with <c>AddCnmSharp</c> on first use (options are validated
/// then) and disposes it with the container.
/// </summary>
public sealed class NetworkControllerProvider : IAsyncDisposable
{
    private readonly IServiceProvider _services;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private NetworkController? _controller;

    /// <summary>Creates the provider (resolved from DI).</summary>
    /// <param name="services">The services.</param>
    public NetworkControllerProvider(IServiceProvider services) => _services = services;

    /// <summary>The controller, started on the first call.</summary>
    /// <param name="cancellationToken">Cancels the start.</param>
    /// <returns>The controller.</returns>
    /// <exception cref="OptionsValidationException">The options are invalid.</exception>
    public async ValueTask<NetworkController> GetControllerAsync(CancellationToken cancellationToken = default)
    {
        if (Volatile.Read(ref _controller) is { } existing)
        {
            return existing;
        }

        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_controller is not null)
            {
                return _controller;
            }

            var options = _services.GetRequiredService<IOptions<CnmOptions>>().Value;
            var builder = new NetworkControllerBuilder(options)
                .WithoutBuiltIns()
                .UseLoggerFactory(_services.GetService<ILoggerFactory>() ?? NullLoggerFactory.Instance)
                .UseTimeProvider(_services.GetService<TimeProvider>() ?? TimeProvider.System)
                .UseServices(_services);
            if (_services.GetService<IMeterFactory>() is { } meters)
            {
                builder.UseMeterFactory(meters);
            }

            if (_services.GetService<ISandboxNetworking>() is { } sandboxNetworking)
            {
                builder.UseSandboxNetworking(sandboxNetworking);
            }

            builder.UseFirewall(_services.GetService<CnmSharp.Firewall.IFirewallBackendFactory>());
            if (_services.GetService<CnmStoreOpener>() is { } opener)
            {
                builder.UseStore(ct => opener.Open(_services, ct));
            }

            if (_services.GetService<CnmGlobalStoreOpener>() is { } globalOpener)
            {
                builder.UseGlobalStore(ct => globalOpener.Open(_services, ct));
            }

            foreach (var driver in _services.GetServices<INetworkDriverFactory>())
            {
                builder.AddDriver(driver);
            }

            foreach (var ipam in _services.GetServices<IIpamDriverFactory>())
            {
                builder.AddIpamDriver(ipam);
            }

            _controller = await builder.BuildAsync(cancellationToken).ConfigureAwait(false);
            return _controller;
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (_controller is not null)
        {
            await _controller.DisposeAsync().ConfigureAwait(false);
        }

        _gate.Dispose();
    }
}
