namespace CnmSharp.Store.Etcd;

/// <summary>etcd as the global store of a controller built with <see cref="NetworkControllerBuilder"/>.</summary>
public static class EtcdNetworkControllerBuilderExtensions
{
    /// <summary>Uses an etcd cluster as the global store of a controller built without dependency injection:
    /// connected when it is built, closed with it.</summary>
    /// <param name="builder">The controller builder.</param>
    /// <param name="options">The etcd endpoints, TLS files, credentials and key prefix (checked now).</param>
    /// <returns>The builder.</returns>
    public static NetworkControllerBuilder UseEtcdGlobalStore(this NetworkControllerBuilder builder, EtcdStoreOptions options)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        return builder.UseGlobalStore(async ct => (ISharedKeyValueStore)await EtcdKeyValueStore.ConnectAsync(options, ct).ConfigureAwait(false));
    }
}
