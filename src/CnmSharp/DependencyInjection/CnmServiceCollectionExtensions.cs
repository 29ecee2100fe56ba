using System.Diagnostics.CodeAnalysis;
using CnmSharp;
using CnmSharp.Drivers;
using CnmSharp.Ipam;
using CnmSharp.Ipam.Default;
using CnmSharp.Store;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers CnmSharp in a service collection.</summary>
public static class CnmServiceCollectionExtensions
{
    /// <summary>
    /// Adds CnmSharp: validated <see cref="CnmOptions"/>, the built-in drivers and IPAMs, the embedded store, and a
    /// <see cref="NetworkControllerProvider"/> that starts the controller on first use. Calling it again only
    /// applies <paramref name="configure"/>.
    /// </summary>
    /// <param name="services">The services.</param>
    /// <param name="configure">Changes the options.</param>
    /// <returns>A builder for drivers, IPAMs and the store.</returns>
    public static ICnmBuilder AddCnmSharp(this IServiceCollection services, Action<CnmOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        var options = services.AddOptions<CnmOptions>();
        if (configure is not null)
        {
            options.Configure(configure);
        }

        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<CnmOptions>, CnmOptionsValidator>());
        services.AddOptions<DefaultIpamOptions>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<INetworkDriverFactory, CnmSharp.Drivers.Null.NullDriverFactory>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<INetworkDriverFactory, CnmSharp.Drivers.Host.HostDriverFactory>());
        services.AddOptions<CnmSharp.Drivers.Bridge.BridgeDriverOptions>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<INetworkDriverFactory, CnmSharp.Drivers.Bridge.BridgeDriverFactory>(sp => new CnmSharp.Drivers.Bridge.BridgeDriverFactory(sp.GetRequiredService<IOptions<CnmSharp.Drivers.Bridge.BridgeDriverOptions>>().Value)));

        services.TryAddEnumerable(ServiceDescriptor.Singleton<INetworkDriverFactory, CnmSharp.Drivers.Macvlan.MacvlanDriverFactory>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<INetworkDriverFactory, CnmSharp.Drivers.Ipvlan.IpvlanDriverFactory>());

        // Overlay (VXLAN across hosts; needs the global store, node name and advertise address to create networks).
        services.AddOptions<CnmSharp.Drivers.Overlay.OverlayDriverOptions>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<INetworkDriverFactory, CnmSharp.Drivers.Overlay.OverlayDriverFactory>(sp => new CnmSharp.Drivers.Overlay.OverlayDriverFactory(sp.GetRequiredService<IOptions<CnmSharp.Drivers.Overlay.OverlayDriverOptions>>().Value)));

        services.TryAddEnumerable(ServiceDescriptor.Singleton<IIpamDriverFactory, DefaultIpamFactory>(sp => new DefaultIpamFactory(sp.GetRequiredService<IOptions<DefaultIpamOptions>>().Value)));
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IIpamDriverFactory, CnmSharp.Ipam.Null.NullIpamFactory>());
        // The firewall backend CnmOptions.Firewall names (iptables, nftables, auto); None is applied by the builder.
        services.TryAddSingleton<CnmSharp.Firewall.IFirewallBackendFactory>(sp => new CnmSharp.Firewall.SelectingFirewallBackendFactory(
            sp.GetRequiredService<IOptions<CnmOptions>>().Value.Firewall is var choice && choice == CnmSharp.Firewall.FirewallBackendChoice.None
                ? CnmSharp.Firewall.FirewallBackendChoice.Iptables : choice,
            nftablesOptions: sp.GetRequiredService<IOptions<CnmOptions>>().Value.FirewallDriftWatch ? new CnmSharp.Firewall.Nftables.NftablesFirewallBackendOptions { WatchForDrift = true } : null,
            loggerFactory: sp.GetService<Microsoft.Extensions.Logging.ILoggerFactory>()));
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<NetworkControllerProvider>();
        return new CnmBuilder(services);
    }

    private sealed class CnmBuilder(IServiceCollection services) : ICnmBuilder
    {
        public IServiceCollection Services { get; } = services;

        public ICnmBuilder AddDriver<[DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicConstructors)] TFactory>()
            where TFactory : class, INetworkDriverFactory
        {
            Services.TryAddEnumerable(ServiceDescriptor.Singleton<INetworkDriverFactory, TFactory>());
            return this;
        }

        public ICnmBuilder AddDriver(INetworkDriverFactory factory)
        {
            ArgumentNullException.ThrowIfNull(factory);
            Services.AddSingleton(factory);
            return this;
        }

        public ICnmBuilder AddIpamDriver<[DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicConstructors)] TFactory>()
            where TFactory : class, IIpamDriverFactory
        {
            Services.TryAddEnumerable(ServiceDescriptor.Singleton<IIpamDriverFactory, TFactory>());
            return this;
        }

        public ICnmBuilder AddIpamDriver(IIpamDriverFactory factory)
        {
            ArgumentNullException.ThrowIfNull(factory);
            Services.AddSingleton(factory);
            return this;
        }

        public ICnmBuilder UseStore(Func<IServiceProvider, CancellationToken, ValueTask<IKeyValueStore>> open)
        {
            ArgumentNullException.ThrowIfNull(open);
            Services.RemoveAll<CnmStoreOpener>();
            Services.AddSingleton(new CnmStoreOpener(open));
            return this;
        }

        public ICnmBuilder UseInMemoryStore() =>
            UseStore((_, _) => ValueTask.FromResult<IKeyValueStore>(new InMemoryKeyValueStore()));

        public ICnmBuilder ConfigureDefaultIpam(Action<DefaultIpamOptions> configure)
        {
            Services.Configure(configure);
            return this;
        }
    }
}

/// <summary>Configures CnmSharp registered with <see cref="CnmServiceCollectionExtensions.AddCnmSharp"/>.</summary>
public interface ICnmBuilder
{
    /// <summary>The services.</summary>
    IServiceCollection Services { get; }

    /// <summary>Registers a driver factory type (once).</summary>
    /// <typeparam name="TFactory">The factory.</typeparam>
    /// <returns>This builder.</returns>
    ICnmBuilder AddDriver<[DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicConstructors)] TFactory>()
        where TFactory : class, INetworkDriverFactory;

    /// <summary>Registers a driver factory instance.</summary>
    /// <param name="factory">The factory.</param>
    /// <returns>This builder.</returns>
    ICnmBuilder AddDriver(INetworkDriverFactory factory);

    /// <summary>Registers an IPAM factory type (once).</summary>
    /// <typeparam name="TFactory">The factory.</typeparam>
    /// <returns>This builder.</returns>
    ICnmBuilder AddIpamDriver<[DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicConstructors)] TFactory>()
        where TFactory : class, IIpamDriverFactory;

    /// <summary>Registers an IPAM factory instance.</summary>
    /// <param name="factory">The factory.</param>
    /// <returns>This builder.</returns>
    ICnmBuilder AddIpamDriver(IIpamDriverFactory factory);

    /// <summary>Uses a store opened when the controller starts and disposed with it.</summary>
    /// <param name="open">Opens the store.</param>
    /// <returns>This builder.</returns>
    ICnmBuilder UseStore(Func<IServiceProvider, CancellationToken, ValueTask<IKeyValueStore>> open);

    /// <summary>Uses an in-memory store (state is lost with the process).</summary>
    /// <returns>This builder.</returns>
    ICnmBuilder UseInMemoryStore();

    /// <summary>Configures the default IPAM's pools.</summary>
    /// <param name="configure">The change.</param>
    /// <returns>This builder.</returns>
    ICnmBuilder ConfigureDefaultIpam(Action<DefaultIpamOptions> configure);
}

/// <summary>The cluster-wide store of <see cref="NetworkControllerBuilder.UseGlobalStore(CnmSharp.Store.ISharedKeyValueStore)"/>, with dependency injection.</summary>
public static class CnmGlobalStoreExtensions
{
    /// <summary>Uses a global store (opened when the controller starts and disposed with it) for global-scope
    /// networks, their endpoints and the default IPAM's <c>GlobalDefault</c> space, shared by every host's controller;
    /// <see cref="CnmOptions.Cluster"/> names this host. <c>CnmSharp.Store.Etcd</c> adds <c>AddEtcdGlobalStore</c>.</summary>
    /// <param name="builder">The CnmSharp builder.</param>
    /// <param name="open">Opens the store.</param>
    /// <returns>The builder.</returns>
    public static ICnmBuilder UseGlobalStore(this ICnmBuilder builder, Func<IServiceProvider, CancellationToken, ValueTask<ISharedKeyValueStore>> open)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(open);
        builder.Services.RemoveAll<CnmGlobalStoreOpener>();
        builder.Services.AddSingleton(new CnmGlobalStoreOpener(open));
        return builder;
    }
}

/// <summary>Opens the global store selected with <see cref="CnmGlobalStoreExtensions.UseGlobalStore"/>.</summary>
/// <param name="Open">The opener.</param>
public sealed record CnmGlobalStoreOpener(Func<IServiceProvider, CancellationToken, ValueTask<ISharedKeyValueStore>> Open);

/// <summary>Opens the store selected with <see cref="ICnmBuilder.UseStore"/>.</summary>
/// <param name="Open">The opener.</param>
public sealed record CnmStoreOpener(Func<IServiceProvider, CancellationToken, ValueTask<IKeyValueStore>> Open);
