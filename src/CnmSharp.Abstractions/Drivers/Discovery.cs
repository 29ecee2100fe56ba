namespace CnmSharp.Drivers;

/// <summary>A discovery event pushed to drivers and IPAMs.</summary>
public abstract record DiscoveryEvent;

/// <summary>A node joined or left (wire type 1). Sent to drivers with global connectivity scope.</summary>
/// <param name="Address">The node's advertise address.</param>
/// <param name="BindAddress">The node's bind address.</param>
/// <param name="Self">True for this node itself.</param>
public sealed record NodeDiscovery(string Address, string BindAddress, bool Self) : DiscoveryEvent;

/// <summary>A datastore became available (wire type 2).</summary>
/// <param name="Scope">The store's scope.</param>
/// <param name="Provider">The provider, for example <c>etcd</c>.</param>
/// <param name="Address">The store's address.</param>
public sealed record DatastoreDiscovery(DriverScope Scope, string Provider, string Address) : DiscoveryEvent;
