namespace CnmSharp.Ipam;

/// <summary>
/// An IPAM that can lose its state while the controller runs (a remote plugin that restarted) and that says so
/// (<see cref="IpamCapability.RequiresRequestReplay"/>). The core gives it a handler that requests again every pool,
/// gateway, auxiliary address and endpoint address its networks hold; the IPAM awaits it when it finds its state
/// gone, before it carries on with the call that found it. The core also replays at start and when the IPAM is
/// registered after start (libnetwork's replay for IPAMs that keep no state).
/// </summary>
public interface IIpamRequestReplay
{
    /// <summary>Sets the handler that replays the requests (called once, when the IPAM is registered).</summary>
    /// <param name="replay">Replays every request of the networks that use this IPAM; failures of single requests
    /// are logged by the core, not thrown.</param>
    void SetReplayHandler(Func<CancellationToken, ValueTask> replay);
}
