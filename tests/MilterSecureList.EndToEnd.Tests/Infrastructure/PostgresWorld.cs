using MilterSecureList.Testing;

namespace MilterSecureList.EndToEnd.Tests.Infrastructure;

/// <summary>
/// A <see cref="ListWorld"/> whose directory is a PostgreSQL server of its own (the shared back end of several milter
/// nodes), so that a test can take the directory away as a real server outage would.
/// </summary>
public abstract class PostgresWorld : ListWorld
{
    public PostgresServer Database { get; private set; } = null!;

    /// <summary>No pooling: each lookup really reaches the server; short timeouts: an outage shows at once.</summary>
    protected override string DirectorySection =>
        $"Provider = postgres\nConnectionString = {Database.ConnectionString("postgres")};Timeout=5;Command Timeout=5;Pooling=false";

    protected override async Task PrepareAsync() => Database = await PostgresServer.StartNewAsync();

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        if (Database is not null)
        {
            await Database.DisposeAsync();
        }
    }
}
