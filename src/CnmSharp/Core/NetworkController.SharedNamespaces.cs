using CnmSharp.Core;
using CnmSharp.Core.Persistence;
using CnmSharp.Store;
using Microsoft.Extensions.Logging;

namespace CnmSharp;

/// <summary>
/// Container mode (Docker's <c>--network container:&lt;id&gt;</c>): sandboxes that share another sandbox's network
/// namespace. A namespace is named after the sandbox that made it (<see cref="Sandbox.NetworkSandboxId"/>); its users
/// are the sandboxes whose records name it, counted from the records (the controller's view, which the state lease
/// reloads before every operation when another process wrote), never kept as a counter. It goes with its last user.
/// </summary>
public sealed partial class NetworkController
{
    /// <summary>Orders the decisions about a namespace's users within this controller: a sharer that registers itself
    /// and a delete that decides whether it is the last user. Held only for in-memory bookkeeping.</summary>
    private readonly Lock _namespaceLock = new();

    /// <summary>
    /// The body of a container-mode sandbox creation (the container already reserved): the sandbox to share is
    /// resolved to the namespace it uses (a sharer's sharer resolves to the namespace's maker, as Docker joins the
    /// namespace the named container's process runs in; a host-mode sandbox to the host's namespace), and the record is
    /// written. No namespace, no files: the sharer uses the shared namespace's. The sharer is registered as a user only
    /// if the namespace still has one when its record is written (a delete may have decided meanwhile that it was the
    /// last); otherwise the record goes and the creation fails as if the sandbox to share were gone.
    /// </summary>
    private async ValueTask<Sandbox> CreateSharingSandboxAsync(string id, string containerId, string shared, CancellationToken cancellationToken)
    {
        var target = FindSandboxToShare(shared);
        var group = target.NetworkSandboxId;
        var record = new SandboxRecord
        {
            Id = id,
            ContainerId = containerId,
            Key = target.Key,
            UsesHostNamespace = target.UsesHostNamespace,
            Hostname = target.Hostname ?? target.ContainerId,
            DomainName = target.DomainName,
            SharedFrom = target.Id,
            SharedFromContainer = target.ContainerId,
            NetworkSandboxId = group,
        };

        var version = await _store.Store.PutAsync(CoreStore.SandboxKey(id), CoreStore.Serialize(record, CoreJsonContext.Default.SandboxRecord), StoreVersion.Absent, StoreDurability.Relaxed, cancellationToken).ConfigureAwait(false);
        var sandbox = new Sandbox(this, record, version);
        bool registered;
        lock (_namespaceLock)
        {
            registered = HasOtherNamespaceUser(sandbox);
            if (registered)
            {
                _sandboxes[id] = sandbox;
                _containerSandboxes[containerId] = id;
            }
        }

        if (!registered)
        {
            await UndoAsync("sandbox.create", [
                ("delete record", async () => await _store.Store.DeleteAsync(CoreStore.SandboxKey(id), version, StoreDurability.Relaxed, CancellationToken.None).ConfigureAwait(false)),
            ]).ConfigureAwait(false);
            throw new CnmNotFoundException(CnmErrorCodes.NoSuchSandbox, $"sandbox \"{shared}\"", "the sandbox to share is being deleted");
        }

        SharedLog.SandboxSharing(_logger, id, containerId, target.Id, group, record.Key);
        return sandbox;
    }

    /// <summary>The sandbox to share, by container id, then by sandbox id; NotFound when there is none (or it is being
    /// deleted).</summary>
    private Sandbox FindSandboxToShare(string shared)
    {
        var target = (_containerSandboxes.TryGetValue(shared, out var byContainer) && byContainer.Length > 0 && _sandboxes.TryGetValue(byContainer, out var found) ? found : null)
            ?? (_sandboxes.TryGetValue(shared, out var byId) ? byId : null);
        return target is null || target.Deleting
            ? throw new CnmNotFoundException(CnmErrorCodes.NoSuchSandbox, $"sandbox \"{shared}\"", "no such sandbox to share the network namespace of")
            : target;
    }

    /// <summary>
    /// Called by a sandbox's delete before its endpoints leave: decides, from the sandbox records, whether another
    /// sandbox still uses its network namespace (the sandbox stops counting as a user from here on). Two deletes of the
    /// last two users decide one after the other, so exactly one of them removes the namespace.
    /// </summary>
    /// <returns>True when the namespace (and its files) must stay.</returns>
    private bool LeaveNamespace(Sandbox sandbox)
    {
        lock (_namespaceLock)
        {
            var others = HasOtherNamespaceUser(sandbox);
            sandbox.LeftNamespace = true;
            if (others)
            {
                SharedLog.NamespaceKept(_logger, sandbox.Id, sandbox.NetworkSandboxId);
            }

            return others;
        }
    }

    /// <summary>A delete that failed counts as a user again (its record is still there).</summary>
    private void RejoinNamespace(Sandbox sandbox)
    {
        lock (_namespaceLock)
        {
            sandbox.LeftNamespace = false;
        }
    }

    /// <summary>True when a sandbox other than <paramref name="sandbox"/>, whose delete has not decided yet, uses the same
    /// namespace. The caller holds <see cref="_namespaceLock"/>.</summary>
    private bool HasOtherNamespaceUser(Sandbox sandbox)
    {
        var group = sandbox.NetworkSandboxId;
        foreach (var other in _sandboxes.Values)
        {
            if (!ReferenceEquals(other, sandbox) && !other.LeftNamespace && string.Equals(other.NetworkSandboxId, group, StringComparison.Ordinal))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>The refusal of a join to a sandbox that shares another's namespace.</summary>
    private static CnmConflictException SharedNamespaceRefusal(Sandbox sandbox) =>
        new(
            CnmErrorCodes.SharedNetworkNamespace,
            sandbox.ToString(),
            $"the sandbox shares the network namespace of container \"{sandbox.SharedFromContainerId}\" (container mode) and cannot be connected to a network: connect that container's sandbox instead");

    /// <summary>Log messages of container mode.</summary>
    private static partial class SharedLog
    {
        [LoggerMessage(130, LogLevel.Debug, "Sandbox {SandboxId} for container {ContainerId} shares the network namespace of sandbox {SharedFrom} (made by {NetworkSandboxId}) at {Key}")]
        public static partial void SandboxSharing(ILogger logger, string sandboxId, string containerId, string sharedFrom, string networkSandboxId, string key);

        [LoggerMessage(131, LogLevel.Debug, "Sandbox {SandboxId} is deleted while another sandbox uses its network namespace (made by {NetworkSandboxId}): its endpoints' interfaces are removed and the namespace stays")]
        public static partial void NamespaceKept(ILogger logger, string sandboxId, string networkSandboxId);
    }
}
