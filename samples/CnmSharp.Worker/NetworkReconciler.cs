using Microsoft.Extensions.Options;

namespace CnmSharp.Worker;

/// <summary>Creates the desired networks that are missing, at start and then every <c>ReconcileIntervalSeconds</c>.</summary>
internal sealed partial class NetworkReconciler(
    NetworkControllerProvider provider,
    IOptionsMonitor<DesiredNetworksOptions> desired,
    ILogger<NetworkReconciler> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var controller = await provider.GetControllerAsync(stoppingToken);
        LogStarted(controller.Id, controller.HostNamespacePath ?? "(own namespace)");
        while (!stoppingToken.IsCancellationRequested)
        {
            var options = desired.CurrentValue;
            foreach (var spec in options.DesiredNetworks)
            {
                await EnsureAsync(controller, spec, stoppingToken);
            }

            try
            {
                await Task.Delay(TimeSpan.FromSeconds(Math.Max(1, options.ReconcileIntervalSeconds)), stoppingToken);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }
    }

    private async Task EnsureAsync(NetworkController controller, DesiredNetwork spec, CancellationToken cancellationToken)
    {
        if (controller.FindNetworkByName(spec.Name) is { } existing)
        {
            LogPresent(spec.Name, existing.Id[..12]);
            return;
        }

        try
        {
            var network = await controller.CreateNetworkAsync(spec.Name, spec.Driver, new NetworkCreateOptions
            {
                DriverOptions = spec.Options,
                IPv4Config = spec.Subnet is null ? [] : [new IpamConfig { Subnet = spec.Subnet, Gateway = spec.Gateway }],
            }, cancellationToken);
            LogCreated(spec.Name, spec.Driver, network.Id[..12]);
        }
        catch (CnmException ex)
        {
            LogFailed(ex, spec.Name, ex.Code);
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Controller {ControllerId} started on host namespace {HostNamespace}")]
    private partial void LogStarted(string controllerId, string hostNamespace);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Network {Name} present ({Id})")]
    private partial void LogPresent(string name, string id);

    [LoggerMessage(Level = LogLevel.Information, Message = "Created network {Name} (driver {Driver}, id {Id})")]
    private partial void LogCreated(string name, string driver, string id);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Cannot create network {Name} ({Code})")]
    private partial void LogFailed(Exception exception, string name, string code);
}
