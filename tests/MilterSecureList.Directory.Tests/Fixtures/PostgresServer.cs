using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Npgsql;

namespace MilterSecureList.Directory.Tests.Fixtures;

/// <summary>
/// A throwaway PostgreSQL from Debian's package: initdb in a temp dir (as the postgres user when
/// we are root, since initdb refuses root), listening on a free 127.0.0.1 port, stopped and
/// deleted on Dispose. Each test gets its own database.
/// </summary>
public sealed class PostgresServer : IDisposable
{
    public const string BinDirectory = "/usr/lib/postgresql/15/bin";

    private readonly string _root;
    private readonly string _data;
    private int _databases;

    /// <summary>Null when the binaries are present; else why PostgreSQL tests cannot run here.</summary>
    public static string? UnavailableReason =>
        File.Exists(Path.Combine(BinDirectory, "initdb")) && File.Exists(Path.Combine(BinDirectory, "pg_ctl"))
            ? (Environment.UserName == "root" && !File.Exists("/usr/sbin/runuser") && !File.Exists("/sbin/runuser") ? "runuser is missing (needed to run initdb as postgres)" : null)
            : $"PostgreSQL 15 server binaries not found in {BinDirectory} (apt-get install postgresql)";

    public PostgresServer()
    {
        if (UnavailableReason is { } reason)
        {
            throw new InvalidOperationException(reason);
        }

        _root = System.IO.Directory.CreateTempSubdirectory("securelist-pg-").FullName;
        _data = Path.Combine(_root, "data");
        Port = FreePort();
        if (Environment.UserName == "root")
        {
            Run("chown", "-R", "postgres:postgres", _root);
        }

        RunAsPostgres("initdb", "-D", _data, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync");
        RunAsPostgres(
            "pg_ctl",
            "-D", _data,
            "-l", Path.Combine(_root, "server.log"),
            "-w", "-t", "60",
            "-o", $"-c listen_addresses=127.0.0.1 -p {Port} -k {_root} -c fsync=off -c max_connections=200",
            "start");
    }

    public int Port { get; }

    public string AdminConnectionString => $"Host=127.0.0.1;Port={Port};Username=postgres;Database=postgres;Pooling=false;Timeout=30";

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

        return $"Host=127.0.0.1;Port={Port};Username=postgres;Database={name};Timeout=30";
    }

    public void Dispose()
    {
        try
        {
            NpgsqlConnection.ClearAllPools();
            RunAsPostgres("pg_ctl", "-D", _data, "-m", "immediate", "-w", "-t", "60", "stop");
        }
        finally
        {
            System.IO.Directory.Delete(_root, recursive: true);
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static void RunAsPostgres(string tool, params string[] args)
    {
        string path = Path.Combine(BinDirectory, tool);
        if (Environment.UserName == "root")
        {
            Run("runuser", ["-u", "postgres", "--", path, .. args]);
        }
        else
        {
            Run(path, args);
        }
    }

    private static void Run(string file, params string[] args)
    {
        var info = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        using Process process = Process.Start(info) ?? throw new InvalidOperationException($"cannot start {file}");
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromSeconds(120)))
        {
            process.Kill(entireProcessTree: true);
            throw new InvalidOperationException($"{file} {string.Join(' ', args)} did not finish in 120 s");
        }

        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{file} {string.Join(' ', args)} failed ({process.ExitCode}): {stderr.Result} {stdout.Result}");
        }
    }
}
