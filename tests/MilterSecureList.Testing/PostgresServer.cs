using Npgsql;

namespace MilterSecureList.Testing;

/// <summary>
/// A throwaway PostgreSQL 15 from Debian's server binaries: initdb in its own temp directory, listening on a free
/// 127.0.0.1 port and on a unix socket in that directory, stopped and deleted on dispose. initdb and the server
/// refuse to run as root, so when the tests run as root they run as the unprivileged postgres user (runuser).
/// <see cref="StopAsync"/> and <see cref="StartAsync()"/> let a test take the server away, as an outage would.
/// </summary>
public sealed class PostgresServer : IAsyncDisposable, IDisposable
{
    public const string BinDirectory = "/usr/lib/postgresql/15/bin";

    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(120);
    private readonly string _data;
    private int _databases;

    private PostgresServer(string root, int port)
    {
        Directory = root;
        _data = Path.Combine(root, "data");
        Port = port;
    }

    /// <summary>Null when the server can run here; else why not (for a test that reports a skip).</summary>
    public static string? UnavailableReason =>
        !File.Exists(Path.Combine(BinDirectory, "initdb")) || !File.Exists(Path.Combine(BinDirectory, "pg_ctl"))
            ? $"PostgreSQL 15 server binaries not found in {BinDirectory} (apt-get install -y postgresql)"
            : IsRoot && ExternalTool.Find("runuser") is null ? "runuser is missing (needed to run initdb as postgres; apt-get install -y util-linux)" : null;

    /// <summary>The temp directory: data directory, server log and the unix socket.</summary>
    public string Directory { get; }

    public int Port { get; }

    /// <summary>The directory holding the server's unix socket (Npgsql's Host for a socket connection).</summary>
    public string SocketDirectory => Directory;

    /// <summary>The superuser's connection to the postgres database over loopback TCP, without pooling.</summary>
    public string AdminConnectionString => ConnectionString("postgres") + ";Pooling=false";

    private static bool IsRoot => Environment.UserName == "root";

    /// <summary>initdb and start; throws (with the tool's stderr) when PostgreSQL cannot run here.</summary>
    public static async Task<PostgresServer> StartNewAsync()
    {
        if (UnavailableReason is { } reason)
        {
            throw new InvalidOperationException(reason);
        }

        string root = System.IO.Directory.CreateTempSubdirectory("msl-pg-").FullName;
        var server = new PostgresServer(root, ExternalTool.FreeTcpPort());
        try
        {
            if (IsRoot)
            {
                (await ExternalTool.RunAsync("chown", ["-R", "postgres:postgres", root]).ConfigureAwait(false)).EnsureSuccess();
            }

            await PgAsync("initdb", "-D", server._data, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync").ConfigureAwait(false);
            await server.StartAsync().ConfigureAwait(false);
            return server;
        }
        catch
        {
            await server.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>The blocking form of <see cref="StartNewAsync"/>, for synchronous fixtures.</summary>
    public static PostgresServer StartNew() => StartNewAsync().GetAwaiter().GetResult();

    /// <summary>Starts the (stopped) server again on the same port and socket directory.</summary>
    public Task StartAsync() => PgAsync("pg_ctl", "-D", _data, "-l", Path.Combine(Directory, "server.log"), "-w", "-t", "60",
        "-o", $"-c listen_addresses=127.0.0.1 -p {Port} -k {Directory} -c fsync=off -c max_connections=200", "start");

    /// <summary>Stops the server (fast shutdown: open sessions are ended), leaving the data directory in place.</summary>
    public Task StopAsync() => PgAsync("pg_ctl", "-D", _data, "-m", "fast", "-w", "-t", "60", "stop");

    /// <summary>The superuser's connection to <paramref name="database"/> over loopback TCP; callers append their own options.</summary>
    public string ConnectionString(string database) => $"Host=127.0.0.1;Port={Port};Username=postgres;Database={database};Timeout=30";

    /// <summary>Creates an empty database and returns its connection string.</summary>
    public string CreateDatabase()
    {
        string name = $"t{Interlocked.Increment(ref _databases)}_{Guid.NewGuid():N}"[..20];
        using (var connection = new NpgsqlConnection(AdminConnectionString))
        {
            connection.Open();
            using var cmd = new NpgsqlCommand($"CREATE DATABASE {name}", connection);
            cmd.ExecuteNonQuery();
        }

        return ConnectionString(name);
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (File.Exists(Path.Combine(_data, "postmaster.pid")))
            {
                await PgAsync("pg_ctl", "-D", _data, "-m", "immediate", "-w", "-t", "60", "stop").ConfigureAwait(false);
            }
        }
        finally
        {
            try
            {
                System.IO.Directory.Delete(Directory, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    public void Dispose() => DisposeAsync().AsTask().GetAwaiter().GetResult();

    private static async Task PgAsync(string tool, params string[] args)
    {
        string path = Path.Combine(BinDirectory, tool);
        ToolResult result = IsRoot
            ? await ExternalTool.RunAsync("runuser", ["-u", "postgres", "--", path, .. args], new ToolOptions { Timeout = s_timeout }).ConfigureAwait(false)
            : await ExternalTool.RunAsync(path, args, new ToolOptions { Timeout = s_timeout }).ConfigureAwait(false);
        result.EnsureSuccess();
    }
}
