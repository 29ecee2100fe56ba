using CnmSharp.Worker;

// appsettings.json is read from the app's own directory, wherever it is started from.
var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { Args = args, ContentRootPath = AppContext.BaseDirectory });

// CnmOptions from the "CnmSharp" section (StateDirectory, RunDirectory, HostNamespacePath, ...).
builder.Services.AddCnmSharp(o => builder.Configuration.GetSection("CnmSharp").Bind(o));
builder.Services.AddOptions<DesiredNetworksOptions>().Bind(builder.Configuration);
builder.Services.AddHostedService<NetworkReconciler>();

await builder.Build().RunAsync();
