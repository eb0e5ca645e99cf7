namespace MilterSecureList.Testing;

/// <summary>
/// The back ends a directory test runs on, for an xUnit collection fixture: SQLite always, PostgreSQL unless its
/// server binaries are missing. One throwaway PostgreSQL server, started on first use and stopped with the fixture;
/// each caller gets a fresh database in it.
/// </summary>
public sealed class SharedPostgres : IDisposable
{
    private readonly Lazy<PostgresServer> _server = new(PostgresServer.StartNew);

    /// <summary>"sqlite", and "postgres" when it can run here (else the skip, naming <paramref name="cases"/>, is said
    /// on standard error).</summary>
    public static IReadOnlyList<string> Names(string cases)
    {
        var data = new List<string> { "sqlite" };
        if (PostgresServer.UnavailableReason is { } reason)
        {
            Console.Error.WriteLine($"SKIPPING PostgreSQL {cases} cases: {reason}");
        }
        else
        {
            data.Add("postgres");
        }

        return data;
    }

    /// <summary>A connection string to a fresh, empty database (starts the server on first use).</summary>
    public string CreateDatabase() => _server.Value.CreateDatabase();

    public void Dispose()
    {
        if (_server.IsValueCreated)
        {
            Npgsql.NpgsqlConnection.ClearAllPools();
            _server.Value.Dispose();
        }
    }
}
