using MilterSecureList.Directory;
using MilterSecureList.Testing;

namespace MilterSecureList.KeyRelease.Tests;

/// <summary>
/// The directory back ends the key-server tests run on (xUnit collection fixture): SQLite always, PostgreSQL unless its
/// server binaries are missing. One throwaway PostgreSQL server, started on first use and stopped at the end; each
/// world gets a fresh database in it.
/// </summary>
public sealed class ReleaseBackends : IDisposable
{
    public const string Name = "release-backends";

    private readonly Lazy<PostgresServer> _postgres = new(PostgresServer.StartNew);

    /// <summary>"sqlite", and "postgres" when it can run here (else the skip is said on standard error).</summary>
    public static TheoryData<string> Names
    {
        get
        {
            var data = new TheoryData<string> { "sqlite" };
            if (PostgresServer.UnavailableReason is { } reason)
            {
                Console.Error.WriteLine($"SKIPPING PostgreSQL key-server cases: {reason}");
            }
            else
            {
                data.Add("postgres");
            }

            return data;
        }
    }

    /// <summary>A release list and key-server files on a fresh directory of <paramref name="backend"/>.</summary>
    public ReleaseWorld NewWorld(string backend) => backend switch
    {
        "sqlite" => new ReleaseWorld(),
        "postgres" => new ReleaseWorld(new DirectoryOptions
        {
            Provider = DirectoryProvider.Postgres,
            ConnectionString = _postgres.Value.CreateDatabase(),
            CacheRefreshSeconds = 1,
        }),
        _ => throw new ArgumentOutOfRangeException(nameof(backend), backend, null),
    };

    public void Dispose()
    {
        if (_postgres.IsValueCreated)
        {
            Npgsql.NpgsqlConnection.ClearAllPools();
            _postgres.Value.Dispose();
        }
    }
}

[CollectionDefinition(ReleaseBackends.Name)]
public sealed class ReleaseBackendCollection : ICollectionFixture<ReleaseBackends>;
