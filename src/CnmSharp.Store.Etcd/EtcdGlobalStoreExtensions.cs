using CnmSharp.Store.Etcd;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>etcd as the controller's global store (global-scope networks, their endpoints, <c>GlobalDefault</c>,
/// drivers' cluster-wide records), shared by the controllers of every host.</summary>
public static class EtcdGlobalStoreExtensions
{
    /// <summary>Uses an etcd cluster as the global store: connected when the controller starts, closed with it.</summary>
    /// <param name="builder">The CnmSharp builder (<c>services.AddCnmSharp()</c>).</param>
    /// <param name="configure">Sets the endpoints, TLS files, credentials and key prefix.</param>
    /// <returns>The builder.</returns>
    /// <example><code>services.AddCnmSharp(o => o.Cluster.NodeName = "h1").AddEtcdGlobalStore(e => e.Endpoints.Add("http://10.0.0.1:2379"));</code></example>
    public static ICnmBuilder AddEtcdGlobalStore(this ICnmBuilder builder, Action<EtcdStoreOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(configure);
        var options = new EtcdStoreOptions();
        configure(options);
        options.Validate();
        return builder.UseGlobalStore(async (_, ct) => await EtcdKeyValueStore.ConnectAsync(options, ct).ConfigureAwait(false));
    }
}
