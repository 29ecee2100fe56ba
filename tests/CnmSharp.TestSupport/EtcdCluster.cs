using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using NUnit.Framework;

namespace CnmSharp.Testing;

/// <summary>
/// Debian's <c>etcd</c> (package <c>etcd-server</c>) run by a test: one or more members on loopback, free ports, a
/// temporary data directory per member, fast elections (heartbeat 50 ms, election 500 ms). Members are killed by
/// PID and their directories removed on dispose, even when the test failed. A missing binary fails the test (it is
/// installed by <c>.ci/setup</c>), so CI never hides these tests behind a skip.
/// </summary>
public sealed class EtcdCluster : IAsyncDisposable
{
    private const string Binary = "/usr/bin/etcd";
    private readonly List<Member> _members;

    private EtcdCluster(List<Member> members) => _members = members;

    /// <summary>The members, in start order.</summary>
    public IReadOnlyList<Member> Members => _members;

    /// <summary>The client URLs of the members still running.</summary>
    public IReadOnlyList<string> ClientUrls => [.. _members.Where(m => m.IsRunning).Select(m => m.ClientUrl)];

    /// <summary>Starts a cluster of <paramref name="size"/> members and waits until every one reports healthy.</summary>
    /// <param name="size">How many members (1 or 3 in practice).</param>
    /// <returns>The running cluster.</returns>
    public static async Task<EtcdCluster> StartAsync(int size = 1)
    {
        if (!File.Exists(Binary))
        {
            Assert.Fail($"{Binary} is missing: install the etcd-server package (.ci/setup does)");
        }

        var token = Guid.NewGuid().ToString("N")[..8];
        var members = Enumerable.Range(1, size).Select(i => new Member(
            $"m{i}-{token}",
            FreePort(),
            FreePort(),
            Path.Combine(Path.GetTempPath(), $"cnmsharp-etcd-{token}-m{i}"))).ToList();
        var cluster = new EtcdCluster(members);
        try
        {
            var initial = string.Join(',', members.Select(m => $"{m.Name}={m.PeerUrl}"));
            foreach (var member in members)
            {
                member.Start(initial, token);
            }

            await Task.WhenAll(members.Select(m => m.WaitHealthyAsync())).ConfigureAwait(false);
            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>The member that is the raft leader now (asked with <c>etcdctl endpoint status</c>).</summary>
    /// <returns>The leader.</returns>
    public async Task<Member> FindLeaderAsync()
    {
        var hang = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (DateTime.UtcNow < hang)
        {
            foreach (var member in _members.Where(m => m.IsRunning))
            {
                var status = await member.StatusAsync().ConfigureAwait(false);
                if (status is { } s && s.MemberId == s.LeaderId && s.LeaderId != 0)
                {
                    return member;
                }
            }

            await Task.Delay(100).ConfigureAwait(false);
        }

        Assert.Fail("no etcd member reported itself leader");
        return null!;
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        foreach (var member in _members)
        {
            await member.DisposeAsync().ConfigureAwait(false);
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>One etcd process.</summary>
    public sealed class Member : IAsyncDisposable
    {
        private readonly int _clientPort;
        private readonly int _peerPort;
        private Process? _process;
        private bool _createdDirectory;

        internal Member(string name, int clientPort, int peerPort, string dataDirectory)
        {
            Name = name;
            _clientPort = clientPort;
            _peerPort = peerPort;
            DataDirectory = dataDirectory;
        }

        /// <summary>The member name.</summary>
        public string Name { get; }

        /// <summary>Its data directory (created by the test, removed on dispose).</summary>
        public string DataDirectory { get; }

        /// <summary>The client URL, <c>http://127.0.0.1:PORT</c>.</summary>
        public string ClientUrl => string.Create(CultureInfo.InvariantCulture, $"http://127.0.0.1:{_clientPort}");

        /// <summary>The peer URL.</summary>
        public string PeerUrl => string.Create(CultureInfo.InvariantCulture, $"http://127.0.0.1:{_peerPort}");

        /// <summary>True while the process runs.</summary>
        public bool IsRunning => _process is { HasExited: false };

        /// <summary>The process id.</summary>
        public int Pid => _process?.Id ?? 0;

        /// <summary>Kills the process (SIGKILL, by PID) and waits for it to exit.</summary>
        public void Kill()
        {
            if (_process is { HasExited: false } process)
            {
                process.Kill();
                process.WaitForExit(10_000);
            }
        }

        /// <inheritdoc />
        public ValueTask DisposeAsync()
        {
            Kill();
            _process?.Dispose();
            _process = null;
            if (_createdDirectory && Directory.Exists(DataDirectory))
            {
                Directory.Delete(DataDirectory, recursive: true);
            }

            return ValueTask.CompletedTask;
        }

        private string? _initialCluster;
        private string? _token;

        /// <summary>Starts the killed member again on its data directory (same name, ports and cluster) and waits until
        /// it reports healthy.</summary>
        /// <returns>A task that completes when the member is healthy.</returns>
        public async Task RestartAsync()
        {
            if (IsRunning || _initialCluster is null || _token is null)
            {
                throw new InvalidOperationException($"etcd member {Name} is running or was never started");
            }

            _process?.Dispose();
            Start(_initialCluster, _token);
            await WaitHealthyAsync().ConfigureAwait(false);
        }

        internal void Start(string initialCluster, string token)
        {
            _initialCluster = initialCluster;
            _token = token;
            Directory.CreateDirectory(DataDirectory);
            _createdDirectory = true;
            var info = new ProcessStartInfo(Binary)
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            foreach (var argument in new[]
            {
                "--name", Name, "--data-dir", DataDirectory,
                "--listen-client-urls", ClientUrl, "--advertise-client-urls", ClientUrl,
                "--listen-peer-urls", PeerUrl, "--initial-advertise-peer-urls", PeerUrl,
                "--initial-cluster", initialCluster, "--initial-cluster-state", "new", "--initial-cluster-token", token,
                "--heartbeat-interval", "50", "--election-timeout", "500",
                "--logger", "zap", "--log-outputs", "stderr", "--log-level", "error",
            })
            {
                info.ArgumentList.Add(argument);
            }

            _process = Process.Start(info) ?? throw new InvalidOperationException("etcd did not start");
            _process.OutputDataReceived += (_, _) => { };
            _process.ErrorDataReceived += (_, _) => { };
            _process.BeginOutputReadLine();
            _process.BeginErrorReadLine();
        }

        internal async Task WaitHealthyAsync()
        {
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
            var hang = DateTime.UtcNow + TimeSpan.FromSeconds(30);
            while (DateTime.UtcNow < hang)
            {
                if (!IsRunning)
                {
                    Assert.Fail($"etcd member {Name} exited with code {_process?.ExitCode}");
                }

                try
                {
                    var body = await http.GetStringAsync(new Uri(ClientUrl + "/health")).ConfigureAwait(false);
                    if (body.Contains("\"health\":\"true\"", StringComparison.Ordinal))
                    {
                        return;
                    }
                }
                catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
                {
                }

                await Task.Delay(50).ConfigureAwait(false);
            }

            Assert.Fail($"etcd member {Name} never became healthy at {ClientUrl}");
        }

        internal async Task<(ulong MemberId, ulong LeaderId)?> StatusAsync()
        {
            var info = new ProcessStartInfo("/usr/bin/etcdctl") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (var argument in new[] { "--endpoints", ClientUrl, "--command-timeout", "2s", "endpoint", "status", "-w", "json" })
            {
                info.ArgumentList.Add(argument);
            }

            info.Environment["ETCDCTL_API"] = "3";
            using var process = Process.Start(info)!;
            var output = await process.StandardOutput.ReadToEndAsync().ConfigureAwait(false);
            await process.WaitForExitAsync().ConfigureAwait(false);
            if (process.ExitCode != 0)
            {
                return null;
            }

            using var json = JsonDocument.Parse(output);
            var status = json.RootElement[0].GetProperty("Status");
            return (status.GetProperty("header").GetProperty("member_id").GetUInt64(), status.GetProperty("leader").GetUInt64());
        }
    }
}
