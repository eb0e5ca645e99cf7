using MilterSecureList.Directory;
using MilterSecureList.Testing;

namespace MilterSecureList.KeyRelease.Tests;

/// <summary>
/// The directory back ends the key-server tests run on (xUnit collection fixture; <see cref="SharedPostgres"/>): each
/// world gets a fresh database.
/// </summary>
public sealed class ReleaseBackends : IDisposable
{
    public const string Name = "release-backends";

    private readonly SharedPostgres _postgres = new();

    /// <summary>"sqlite", and "postgres" when it can run here (else the skip is said on standard error).</summary>
    public static TheoryData<string> Names => new(SharedPostgres.Names("key-server"));

    /// <summary>A release list and key-server files on a fresh directory of <paramref name="backend"/>.</summary>
    public ReleaseWorld NewWorld(string backend) => backend switch
    {
        "sqlite" => new ReleaseWorld(),
        "postgres" => new ReleaseWorld(new DirectoryOptions
        {
            Provider = DirectoryProvider.Postgres,
            ConnectionString = _postgres.CreateDatabase(),
            CacheRefreshSeconds = 1,
        }),
        _ => throw new ArgumentOutOfRangeException(nameof(backend), backend, null),
    };

    public void Dispose() => _postgres.Dispose();
}

[CollectionDefinition(ReleaseBackends.Name)]
public sealed class ReleaseBackendCollection : ICollectionFixture<ReleaseBackends>;
