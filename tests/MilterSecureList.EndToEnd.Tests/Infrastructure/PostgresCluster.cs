using MilterSecureList.Testing;

namespace MilterSecureList.EndToEnd.Tests.Infrastructure;

/// <summary>
/// A throwaway PostgreSQL 15 cluster (Debian's server binaries): initdb in a temp dir as the postgres user,
/// listening on a free 127.0.0.1 port. <see cref="StopAsync"/> and <see cref="StartAsync"/> let a test take the
/// shared directory away from a running milter, as an outage of the database server would.
/// </summary>
public sealed class PostgresCluster : IAsyncDisposable
{
    public const string BinDirectory = "/usr/lib/postgresql/15/bin";

    private readonly string _root;
    private readonly string _data;

    private PostgresCluster(string root, int port)
    {
        _root = root;
        _data = Path.Combine(root, "data");
        Port = port;
    }

    public int Port { get; }

    /// <summary>For milter.ini [Directory] ConnectionString (no pooling: each lookup really reaches the server).</summary>
    public string ConnectionString => $"Host=127.0.0.1;Port={Port};Username=postgres;Database=postgres;Timeout=5;Command Timeout=5;Pooling=false";

    public static async Task<PostgresCluster> CreateAsync()
    {
        if (!File.Exists(Path.Combine(BinDirectory, "initdb")))
        {
            throw new InvalidOperationException($"PostgreSQL 15 server binaries not found in {BinDirectory} (apt-get install -y postgresql)");
        }

        ExternalTool.Require("runuser", "util-linux");
        string root = System.IO.Directory.CreateTempSubdirectory("msl-e2e-pg-").FullName;
        await ExternalTool.RunAsync("chown", ["-R", "postgres:postgres", root]);
        var cluster = new PostgresCluster(root, ExternalTool.FreeTcpPort());
        await PgAsync("initdb", "-D", cluster._data, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync");
        await cluster.StartAsync();
        return cluster;
    }

    public Task StartAsync() => PgAsync("pg_ctl", "-D", _data, "-l", Path.Combine(_root, "server.log"), "-w", "-t", "60",
        "-o", $"-c listen_addresses=127.0.0.1 -p {Port} -k {_root} -c fsync=off", "start");

    public Task StopAsync() => PgAsync("pg_ctl", "-D", _data, "-m", "fast", "-w", "-t", "60", "stop");

    private static async Task PgAsync(string tool, params string[] args)
    {
        (int rc, string o, string e) = await ExternalTool.RunAsync("runuser", ["-u", "postgres", "--", Path.Combine(BinDirectory, tool), .. args], TimeSpan.FromSeconds(120));
        if (rc != 0)
        {
            throw new InvalidOperationException($"{tool} {string.Join(' ', args)} failed ({rc}): {e}{o}");
        }
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await ExternalTool.RunAsync("runuser", ["-u", "postgres", "--", Path.Combine(BinDirectory, "pg_ctl"), "-D", _data, "-m", "immediate", "-w", "-t", "60", "stop"], TimeSpan.FromSeconds(90));
        }
        finally
        {
            try
            {
                System.IO.Directory.Delete(_root, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }
}
