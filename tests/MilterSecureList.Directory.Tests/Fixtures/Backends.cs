using MilterSecureList.Testing;

namespace MilterSecureList.Directory.Tests.Fixtures;

/// <summary>
/// Shared by every backend test class (xUnit collection fixture): starts PostgreSQL once, lazily,
/// and stops it at the end. SQLite needs nothing shared.
/// </summary>
public sealed class BackendFixture : IDisposable
{
    private readonly SharedPostgres _postgres = new();

    /// <summary>"sqlite" always; "postgres" unless its binaries are missing (then <see cref="PostgresFactAttribute"/> reports the skip).</summary>
    public static TheoryData<string> Names => new(SharedPostgres.Names("back-end"));

    /// <summary>Options for a fresh, empty directory of the named back end.</summary>
    public DirectoryOptions NewDirectory(string backend, string tempDirectory) => backend switch
    {
        "sqlite" => new DirectoryOptions { Provider = DirectoryProvider.Sqlite, Path = Path.Combine(tempDirectory, "db", "lists.db"), CacheRefreshSeconds = 1 },
        "postgres" => new DirectoryOptions { Provider = DirectoryProvider.Postgres, ConnectionString = _postgres.CreateDatabase(), CacheRefreshSeconds = 1 },
        _ => throw new ArgumentOutOfRangeException(nameof(backend), backend, null),
    };

    public void Dispose() => _postgres.Dispose();
}

[CollectionDefinition(Name)]
public sealed class BackendCollection : ICollectionFixture<BackendFixture>
{
    public const string Name = "backends";
}

/// <summary>A fact that shows up as SKIPPED, with the reason, when PostgreSQL cannot run here.</summary>
public sealed class PostgresFactAttribute : FactAttribute
{
    public PostgresFactAttribute()
    {
        if (PostgresServer.UnavailableReason is { } reason)
        {
            Skip = $"PostgreSQL back-end tests skipped: {reason}";
        }
    }
}

/// <summary>A temp directory deleted at Dispose.</summary>
public sealed class TempDirectory : IDisposable
{
    public TempDirectory()
    {
        Path = System.IO.Directory.CreateTempSubdirectory("securelist-test-").FullName;
    }

    public string Path { get; }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        System.IO.Directory.Delete(Path, recursive: true);
    }
}

/// <summary>A clock the test moves by hand.</summary>
public sealed class ManualTimeProvider(DateTimeOffset now) : TimeProvider
{
    private DateTimeOffset _now = now;

    public override DateTimeOffset GetUtcNow() => _now;

    public void Advance(TimeSpan by) => _now += by;
}
