using System.Net;

namespace CnmSharp.Sandboxes.Files;

/// <summary>
/// The files a sandbox's containers mount: <c>hosts</c> and <c>resolv.conf</c> (with <c>resolv.conf.hash</c>) in a
/// directory the caller owns (<c>&lt;stateDir&gt;/sandboxes/&lt;id&gt;/</c>). Every method is idempotent so crash recovery
/// can repeat it, and keeps what the user edited.
/// </summary>
public interface ISandboxFiles
{
    /// <summary>
    /// Creates the directory and writes each file that does not exist yet: <c>hosts</c> (base content and extra hosts)
    /// (in host mode without extra hosts, a copy of the host's) and <c>resolv.conf</c> with its hash. Existing files are
    /// kept (with the lines joins added and the user's edits).
    /// </summary>
    /// <param name="sandboxDirectory">The sandbox's directory.</param>
    /// <param name="options">What to generate.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when both files exist.</returns>
    Task CreateAsync(string sandboxDirectory, SandboxFileOptions options, CancellationToken cancellationToken = default);

    /// <summary>Adds hosts lines (a join; see <see cref="HostsFile.ContainerEntries"/>). Lines already there are not repeated.</summary>
    /// <param name="sandboxDirectory">The sandbox's directory.</param>
    /// <param name="entries">The entries.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when the file is updated.</returns>
    /// <exception cref="FileNotFoundException">The sandbox's hosts file does not exist.</exception>
    Task AddHostEntriesAsync(string sandboxDirectory, IEnumerable<HostEntry> entries, CancellationToken cancellationToken = default);

    /// <summary>Removes the hosts lines CnmSharp added for these addresses (a leave); a missing file is not an error.</summary>
    /// <param name="sandboxDirectory">The sandbox's directory.</param>
    /// <param name="addresses">The endpoint's addresses.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when the file is updated.</returns>
    Task RemoveHostEntriesAsync(string sandboxDirectory, IEnumerable<IPAddress> addresses, CancellationToken cancellationToken = default);

    /// <summary>
    /// Regenerates resolv.conf from the options and the host's current file (for example once IPv6 or the embedded DNS is
    /// known), unless the user edited it.
    /// </summary>
    /// <param name="sandboxDirectory">The sandbox's directory.</param>
    /// <param name="options">What to generate.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>What happened.</returns>
    Task<ResolvConfUpdateResult> UpdateResolvConfAsync(string sandboxDirectory, SandboxFileOptions options, CancellationToken cancellationToken = default);

    /// <summary>Removes the sandbox's directory with everything in it; a missing directory is not an error.</summary>
    /// <param name="sandboxDirectory">The sandbox's directory.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when the directory is gone.</returns>
    Task DeleteAsync(string sandboxDirectory, CancellationToken cancellationToken = default);
}
