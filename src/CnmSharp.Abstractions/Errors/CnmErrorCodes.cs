namespace CnmSharp;

/// <summary>Stable identifiers of the rules behind <see cref="CnmException.Code"/>.</summary>
public static class CnmErrorCodes
{
    /// <summary>No network with that name or id.</summary>
    public const string NoSuchNetwork = "NoSuchNetwork";
    /// <summary>No endpoint with that name or id.</summary>
    public const string NoSuchEndpoint = "NoSuchEndpoint";
    /// <summary>No sandbox with that id.</summary>
    public const string NoSuchSandbox = "NoSuchSandbox";
    /// <summary>No driver registered under that name.</summary>
    public const string UnknownDriver = "UnknownDriver";
    /// <summary>No IPAM driver registered under that name.</summary>
    public const string UnknownIpamDriver = "UnknownIpamDriver";
    /// <summary>A name is empty or malformed.</summary>
    public const string InvalidName = "InvalidName";
    /// <summary>An id is empty or malformed.</summary>
    public const string InvalidId = "InvalidId";
    /// <summary>An option key or value is not valid.</summary>
    public const string InvalidOption = "InvalidOption";
    /// <summary>A network with that name (or id) exists already.</summary>
    public const string NetworkExists = "NetworkExists";
    /// <summary>An endpoint with that name exists already on the network.</summary>
    public const string EndpointExists = "EndpointExists";
    /// <summary>The network still has endpoints.</summary>
    public const string ActiveEndpoints = "ActiveEndpoints";
    /// <summary>The network is configuration-only: it holds a configuration for other networks and takes no endpoints.</summary>
    public const string ConfigOnlyNetwork = "ConfigOnlyNetwork";
    /// <summary>The configuration-only network is the configuration of another network (config-from), which must be
    /// deleted first.</summary>
    public const string ConfigNetworkInUse = "ConfigNetworkInUse";
    /// <summary>The endpoint is still joined to a sandbox.</summary>
    public const string ActiveContainer = "ActiveContainer";
    /// <summary>The endpoint is joined to a sandbox already.</summary>
    public const string AlreadyJoined = "AlreadyJoined";
    /// <summary>The endpoint is not joined to that sandbox.</summary>
    public const string NotJoined = "NotJoined";
    /// <summary>The container has a sandbox already.</summary>
    public const string SandboxExists = "SandboxExists";
    /// <summary>The sandbox shares the network namespace of another sandbox (container mode, Docker's
    /// <c>--network container:&lt;id&gt;</c>): it has no endpoints of its own, so none can join it.</summary>
    public const string SharedNetworkNamespace = "SharedNetworkNamespace";
    /// <summary>The object is being deleted.</summary>
    public const string BeingDeleted = "BeingDeleted";
    /// <summary>The driver refuses the operation.</summary>
    public const string DriverForbidden = "DriverForbidden";
    /// <summary>The network is one of the controller's pre-defined (default) networks, which cannot be removed (Docker:
    /// "is a pre-defined network and cannot be removed", a forbidden error).</summary>
    public const string PreDefinedNetwork = "PreDefinedNetwork";
    /// <summary>A driver or IPAM name is already registered.</summary>
    public const string ActiveRegistration = "ActiveRegistration";
    /// <summary>A scope rule forbids the network (for example downgrading a global driver to local).</summary>
    public const string InvalidScope = "InvalidScope";
    /// <summary>A store record changed since it was read (compare-and-swap failed).</summary>
    public const string VersionConflict = "VersionConflict";
    /// <summary>The store cannot be reached or written (busy, I/O error, full disk).</summary>
    public const string StoreUnavailable = "StoreUnavailable";
    /// <summary>A store record is corrupt or of an unknown schema.</summary>
    public const string CorruptRecord = "CorruptRecord";
    /// <summary>The driver already set that value (interface info setters refuse overwrites).</summary>
    public const string AlreadySet = "AlreadySet";
    /// <summary>The address space is unknown or empty.</summary>
    public const string InvalidAddressSpace = "InvalidAddressSpace";
    /// <summary>The pool is not a valid CIDR.</summary>
    public const string InvalidPool = "InvalidPool";
    /// <summary>The sub-pool is invalid or given without a pool.</summary>
    public const string InvalidSubPool = "InvalidSubPool";
    /// <summary>The pool id is unknown.</summary>
    public const string PoolNotFound = "PoolNotFound";
    /// <summary>The pool overlaps another pool of the same address space.</summary>
    public const string PoolOverlap = "PoolOverlap";
    /// <summary>The address is outside the pool or sub-pool.</summary>
    public const string IPOutOfRange = "IPOutOfRange";
    /// <summary>The address is already allocated.</summary>
    public const string IPAlreadyAllocated = "IPAlreadyAllocated";
    /// <summary>The host port is already allocated for that protocol and host address (or no port of the requested
    /// range is free).</summary>
    public const string PortAlreadyAllocated = "PortAlreadyAllocated";
    /// <summary>No predefined pool is free.</summary>
    public const string NoAvailablePool = "NoAvailablePool";
    /// <summary>The pool has no free address.</summary>
    public const string NoAvailableIPs = "NoAvailableIPs";
    /// <summary>The request is invalid for this IPAM.</summary>
    public const string InvalidRequest = "InvalidRequest";
    /// <summary>The operation is not implemented.</summary>
    public const string NotImplemented = "NotImplemented";
    /// <summary>A kernel call failed.</summary>
    public const string KernelError = "KernelError";
    /// <summary>An address or subnet is malformed.</summary>
    public const string InvalidAddress = "InvalidAddress";
    /// <summary>The gateway is outside the subnet, or otherwise unusable.</summary>
    public const string InvalidGateway = "InvalidGateway";
    /// <summary>A state or run directory, or the store file, is not safely the controller's own (owned by another
    /// user, or writable by group or others), so it is refused.</summary>
    public const string UnsafeDirectory = "UnsafeDirectory";
    /// <summary>A path to unmount or delete is not inside the controller's own run directory (or is a symbolic link), so
    /// it is left untouched.</summary>
    public const string UnownedPath = "UnownedPath";
    /// <summary>The controller was opened read-only (<c>CnmOptions.ReadOnly</c>): it refuses every change, driver
    /// registration and recovery.</summary>
    public const string ReadOnlyController = "ReadOnlyController";
    /// <summary>The store has never been started by a read-write controller (no controller record, or its default
    /// networks were never created), so a read-only open has nothing consistent to show.</summary>
    public const string StateNotInitialized = "StateNotInitialized";

    // ---- shared and global stores (issue 13) ----
    /// <summary>A listing or a watch asked for a revision the store no longer keeps the history of (compacted): list
    /// again and watch from the new listing's revision.</summary>
    public const string RevisionCompacted = "RevisionCompacted";
    /// <summary>The store lease does not exist (never granted, revoked, or expired).</summary>
    public const string LeaseNotFound = "LeaseNotFound";
    /// <summary>A global-scope object (a network whose driver's data scope is global, the <c>GlobalDefault</c> address
    /// space, a VNI) needs a global store, and the controller has none (<c>CnmOptions.GlobalStore</c>).</summary>
    public const string GlobalStoreRequired = "GlobalStoreRequired";
    /// <summary>Every VXLAN network identifier of the allowed range is taken.</summary>
    public const string NoAvailableVni = "NoAvailableVni";

    // Remote plugins (Docker's plugin protocol), issue 11.

    /// <summary>No plugin of that name is found in the plugin directories, or its discovery file is invalid.</summary>
    public const string PluginNotFound = "PluginNotFound";
    /// <summary>The plugin cannot be reached (connection refused, socket gone, timed out after the retries).</summary>
    public const string PluginUnavailable = "PluginUnavailable";
    /// <summary>The plugin answered, but not as the protocol says (malformed JSON, a missing or invalid field).</summary>
    public const string PluginProtocolError = "PluginProtocolError";
    /// <summary>The plugin reported an error (<c>Err</c> or <c>Error</c>, or a non-200 status).</summary>
    public const string PluginError = "PluginError";
    /// <summary>The plugin does not implement the interface asked for (<c>NetworkDriver</c>, <c>IpamDriver</c>).</summary>
    public const string PluginNotImplemented = "PluginNotImplemented";
}
