using CnmSharp.Worker;

var builder = Host.CreateApplicationBuilder(args);

// CnmOptions from the "CnmSharp" section (StateDirectory, RunDirectory, HostNamespacePath, ...).
builder.Services.AddCnmSharp(o => builder.Configuration.GetSection("CnmSharp").Bind(o));
builder.Services.AddOptions<DesiredNetworksOptions>().Bind(builder.Configuration);
builder.Services.AddHostedService<NetworkReconciler>();

await builder.Build().RunAsync();
